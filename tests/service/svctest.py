"""Helpers for the service's integration tests: the real tidewatch-service binary against the
real cluster that tools/test.sh starts. Standard library only (urllib, gzip, json).

Environment (tools/test.sh sets it):
  TIDEWATCH_DSN           libpq conninfo of the cluster, as a superuser, without dbname
  TIDEWATCH_SERVICE_BIN   the built binary
  TIDEWATCH_CLUSTER_DATA  the cluster's data directory (the restart test restarts it)
  PGBIN                   where pg_ctl is (default /usr/lib/postgresql/15/bin)
  TIDEWATCH_SPARE_PORTS   optional range "a-b" of ports the service may listen on (else the
                          kernel picks a free one)
Without TIDEWATCH_DSN or the binary the tests skip, saying why.
"""
import atexit
import gzip
import itertools
import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# Appended, not prepended: tests/ has modules named like those here (test_bad_input), and discovery
# must import tests/service's.
sys.path.append(os.path.dirname(HERE))

from pgtest import DSN  # noqa: E402

DB = "tidewatch_svc"
BIN = os.environ.get("TIDEWATCH_SERVICE_BIN", "")
WRITE_TOKEN = "w-" + "x" * 30
READ_TOKEN = "r-" + "y" * 30
SERVICE_PASSWORD = "service-pw-it"
READER_PASSWORD = "reader-pw-it"
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")


def require_service(cls):
    if not DSN:
        return unittest.skip("TIDEWATCH_DSN is not set; run tools/test.sh")(cls)
    if not BIN or not os.access(BIN, os.X_OK):
        return unittest.skip("TIDEWATCH_SERVICE_BIN is not set to the built binary; run tools/test.sh")(cls)
    return cls


def psql(sql, db=DB, user=None, check=True, timeout=300):
    """Rows of a psql call (unaligned, tab-separated), as a superuser unless user is given."""
    conninfo = f"{DSN} dbname={db}" + (f" user={user}" if user else "")
    env = {**os.environ, "PGTZ": "UTC", "LC_MESSAGES": "C"}
    if user == "tidewatch_service":
        env["PGPASSWORD"] = SERVICE_PASSWORD
    proc = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"psql failed ({proc.returncode}): {proc.stderr.strip()}\nSQL: {sql[:500]}")
    return [line.split("\t") for line in proc.stdout.splitlines() if line != ""]


def one(sql, db=DB):
    rows = psql(sql, db)
    return rows[0][0] if rows else None


def fresh_database():
    """A new database with the extension and the roles of sql/roles.sql (with passwords)."""
    for attempt in range(5):
        psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{DB}' AND pid <> pg_backend_pid()",
             db="postgres")
        psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", db="postgres", check=attempt == 4)
        if one(f"SELECT count(*) FROM pg_database WHERE datname = '{DB}'", db="postgres") == "0":
            break
        time.sleep(1)
    psql(f"CREATE DATABASE {DB}", db="postgres")
    psql("CREATE EXTENSION tidewatch")
    proc = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", f"{DSN} dbname={DB}",
                           "-v", f"service_password={SERVICE_PASSWORD}", "-v", f"reader_password={READER_PASSWORD}",
                           "-f", os.path.join(REPO, "sql", "roles.sql")], capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"sql/roles.sql failed: {proc.stderr}")


def service_dsn():
    return f"{DSN} dbname={DB} user=tidewatch_service password={SERVICE_PASSWORD}"


_spare = None


def _listen_address():
    """A port of TIDEWATCH_SPARE_PORTS (round robin), else port 0 (the kernel picks)."""
    global _spare
    rng = os.environ.get("TIDEWATCH_SPARE_PORTS", "")
    m = re.fullmatch(r"(\d+)-(\d+)", rng)
    if not m:
        return "127.0.0.1:0"
    if _spare is None:
        _spare = itertools.cycle(range(int(m.group(1)), int(m.group(2)) + 1))
    return f"127.0.0.1:{next(_spare)}"


_live = []


@atexit.register
def _stop_all():
    """No service outlives the test run, whatever failed."""
    for svc in list(_live):
        svc.stop()


class Service:
    """A running tidewatch-service process; its stderr is kept in self.log."""

    def __init__(self, **settings):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEWATCH_")}
        env.update({
            "TIDEWATCH_DATABASE_URL": service_dsn(),
            "TIDEWATCH_WRITE_TOKENS": WRITE_TOKEN,
            "TIDEWATCH_LOG": "info",
        })
        for k, v in settings.items():
            env["TIDEWATCH_" + k.upper()] = str(v)
        self.env = env
        self.log_lines = []
        self.addr = None
        for attempt in range(3):
            env["TIDEWATCH_LISTEN"] = settings.get("listen", _listen_address())
            self.proc = subprocess.Popen([BIN, "serve"], env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            self._ready = threading.Event()
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()
            self._ready.wait(60)
            if self.addr:
                _live.append(self)
                return
            self.proc.wait(10)
            self._reader.join(5)
            self.proc.stderr.close()
            if "cannot listen" not in self.log:
                break
        raise AssertionError(f"the service did not start:\n{self.log}")

    def _read(self):
        for line in self.proc.stderr:
            self.log_lines.append(line)
            m = re.search(r"listening on (\S+)$", line.strip())
            if m and not self.addr:
                self.addr = m.group(1)
                self._ready.set()
        self._ready.set()

    @property
    def log(self):
        return "".join(self.log_lines)

    @property
    def url(self):
        return f"http://{self.addr}"

    def request(self, method, path, body=None, headers=None, token=WRITE_TOKEN, timeout=60):
        """(status, headers, body) where body is parsed JSON when the answer is JSON."""
        h = dict(headers or {})
        if token is not None and "Authorization" not in h:
            h["Authorization"] = f"Bearer {token}"
        if isinstance(body, str):
            body = body.encode()
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, rh, data = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, rh, data = e.code, e.headers, e.read()
        except urllib.error.URLError as e:
            # The server may answer (413 from Content-Length, say) and close before a large body
            # is sent: read its answer from the socket anyway, as curl does.
            if not isinstance(e.reason, (BrokenPipeError, ConnectionResetError)):
                raise
            status, rh, data = self._raw(method, path, body, h, timeout)
        # rh is an HTTPMessage: case-insensitive get().
        ctype = rh.get("Content-Type", "")
        if ctype.startswith("application/json") and data:
            data = json.loads(data)
        return status, rh, data

    def _raw(self, method, path, body, headers, timeout):
        import http.client
        import socket
        host, port = self.addr.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=timeout)
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.addr}\r\nContent-Length: {len(body or b'')}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        try:
            sock.sendall(head.encode() + (body or b""))
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        data = resp.read()
        sock.close()
        return resp.status, resp.headers, data

    def get(self, path, token=READ_TOKEN, **kw):
        return self.request("GET", path, token=token, **kw)

    def post_json(self, path, obj, **kw):
        headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
        return self.request("POST", path, json.dumps(obj), headers=headers, **kw)

    def post_text(self, path, text, **kw):
        headers = {"Content-Type": "text/plain", **kw.pop("headers", {})}
        return self.request("POST", path, text, headers=headers, **kw)

    def stop(self, sig=None):
        if self in _live:
            _live.remove(self)
        if self.proc.poll() is None:
            self.proc.terminate() if sig is None else self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        self.proc.stderr.close()
        return self.proc.returncode


def wait_for(predicate, timeout=30.0, every=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def table_state(*tables):
    """Count and a digest of every row of each table: equal before and after means the tables did
    not change."""
    tables = tables or ("metrics",)
    return psql(" UNION ALL ".join(
        f"SELECT '{t}', count(*), coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM {t} x" for t in tables))


def gz(data):
    if isinstance(data, str):
        data = data.encode()
    return gzip.compress(data)


# Prometheus remote write by hand: protobuf encoding and snappy's block format with literals only
# (a valid stream that any snappy decoder reads; the Rust unit tests cover back-references).
def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num, wire, payload):
    key = _varint((num << 3) | wire)
    if wire == 2:
        return key + _varint(len(payload)) + payload
    return key + payload


def remote_write_body(series, compress=True):
    """series: [(labels dict incl. __name__, [(value, ts_ms), ...]), ...]"""
    msg = b""
    for labels, samples in series:
        ts = b""
        for name, value in labels.items():
            ts += _field(1, 2, _field(1, 2, name.encode()) + _field(2, 2, value.encode()))
        for value, t in samples:
            sample = _field(1, 1, struct.pack("<d", value)) + _field(2, 0, _varint(t & 0xFFFFFFFFFFFFFFFF))
            ts += _field(2, 2, sample)
        msg += _field(1, 2, ts)
    return snappy_literal(msg) if compress else msg


def snappy_literal(data):
    out = bytearray(_varint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2, n & 0xFF, n >> 8])
        out += chunk
    return bytes(out)


def restart_cluster():
    """Restart the test cluster (fast shutdown: connections are cut)."""
    data = os.environ.get("TIDEWATCH_CLUSTER_DATA")
    if not data:
        raise unittest.SkipTest("TIDEWATCH_CLUSTER_DATA is not set; run tools/test.sh")
    log = os.path.join(os.path.dirname(data), "server.log")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    seen = os.path.getsize(log) if os.path.exists(log) else 0
    cmd = as_postgres + [os.path.join(PGBIN, "pg_ctl"), "-D", data, "-m", "fast", "-w", "-t", "60", "restart", "-l", log]
    done = subprocess.run(cmd, capture_output=True, timeout=120)
    # A port of the kernel's ephemeral range (TIDEWATCH_TEST_PORT may be set to one) can be held
    # by a client socket for a moment ("Address already in use"); start again, as tools/lib.sh
    # does.
    for _ in range(4):
        if done.returncode == 0:
            return
        with open(log, "rb") as fh:
            fh.seek(seen)
            if b"Address already in use" not in fh.read():
                break
        time.sleep(2)
        seen = os.path.getsize(log)
        done = subprocess.run(as_postgres + [os.path.join(PGBIN, "pg_ctl"), "-D", data, "-w", "-t", "60", "start",
                                             "-l", log], capture_output=True, timeout=120)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, cmd, done.stdout, done.stderr)
