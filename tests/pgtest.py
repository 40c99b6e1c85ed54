"""Helpers for integration tests against a real cluster: psql subprocesses, nothing to install.

The cluster is given by TIDEWATCH_DSN (a libpq conninfo without dbname); tools/test.sh starts
one with tidewatch preloaded and its scheduler on database `tidewatch_it`. Without it the tests
skip, saying why.
"""
import os
import subprocess
import time
import unittest

DSN = os.environ.get("TIDEWATCH_DSN")
DB = "tidewatch_it"


def require_cluster(cls):
    if not DSN:
        return unittest.skip("TIDEWATCH_DSN is not set; run tools/test.sh")(cls)
    return cls


def psql(sql, db=DB, check=True, timeout=600, dsn=None):
    """Run SQL, return stdout as a list of rows (unaligned, tab-separated)."""
    proc = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d", f"{dsn or DSN} dbname={db}", "-c", sql],
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PGTZ": "UTC", "LC_MESSAGES": "C"},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"psql failed ({proc.returncode}): {proc.stderr.strip()}\nSQL: {sql[:500]}")
    return [line.split("\t") for line in proc.stdout.splitlines() if line != ""]


def psql_script(script, db=DB, check=True, timeout=600, dsn=None):
    """Run a script of many statements through one session (each autocommit statement is its own
    transaction), fed on stdin; return the exit code."""
    proc = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", f"{dsn or DSN} dbname={db}", "-f", "-"],
        input=script, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PGTZ": "UTC", "LC_MESSAGES": "C"},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"psql script failed ({proc.returncode}): {proc.stderr.strip()[:2000]}")
    return proc.returncode


def one(sql, db=DB, dsn=None):
    rows = psql(sql, db, dsn=dsn)
    return rows[0][0] if rows else None


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SpareCluster:
    """A private cluster on its own port, set up like tools/test.sh's (tidewatch preloaded, its
    scheduler in `tidewatch_it`, wal_level = logical), for tests that stop or crash the server.
    Started empty; removed when the test is done."""

    def __init__(self, name, pgbin=None):
        base = os.environ.get("TIDEWATCH_TEST_DIR", "/var/tmp/tidewatch-test")
        self.dir = os.path.join(base, f"spare-{name}")
        self.port = int(os.environ.get("TIDEWATCH_SPARE_PORT", "25451"))
        self.dsn = f"host=127.0.0.1 port={self.port} user=postgres"
        self.pgbin = pgbin or os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")

    def _lib(self, call):
        subprocess.run(["bash", "-c", f'source "{REPO}/tools/lib.sh" && {call}'], check=True,
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PGBIN": self.pgbin})

    def start(self):
        self._lib(f'cluster_start "{self.dir}" {self.port} {DB}')

    def stop(self, mode="fast"):
        """Stop the server; a fast shutdown that has not finished in 60 s becomes immediate
        (returns the mode that stopped it)."""
        done = subprocess.run(["runuser", "-u", "postgres", "--", f"{self.pgbin}/pg_ctl", "-D", f"{self.dir}/data",
                               "-m", mode, "-w", "-t", "60", "stop"], capture_output=True, timeout=120)
        if done.returncode != 0 and os.path.exists(f"{self.dir}/data/postmaster.pid"):
            subprocess.run(["runuser", "-u", "postgres", "--", f"{self.pgbin}/pg_ctl", "-D", f"{self.dir}/data",
                            "-m", "immediate", "-w", "stop"], capture_output=True, timeout=120)
            return "immediate"
        return mode

    def psql(self, sql, db=DB, check=True):
        return psql(sql, db, check=check, dsn=self.dsn)

    def one(self, sql, db=DB):
        return one(sql, db, dsn=self.dsn)

    def script(self, text, db=DB, check=True):
        return psql_script(text, db, check=check, dsn=self.dsn)


class spare_cluster:
    """`with spare_cluster("name") as c:` a fresh SpareCluster with database tidewatch_it."""

    def __init__(self, name, pgbin=None):
        self.c = SpareCluster(name, pgbin)

    def __enter__(self):
        self.c.stop(mode="immediate")
        subprocess.run(["rm", "-rf", self.c.dir], check=True)
        self.c.start()
        self.c.psql(f"CREATE DATABASE {DB}", db="postgres")
        return self.c

    def __exit__(self, *exc):
        self.c.stop(mode="immediate")
        if exc[0] is None:
            subprocess.run(["rm", "-rf", self.c.dir], check=False)
        return False


def fresh_database():
    # The scheduler runs in this database: a scheduler or job worker that connects while
    # DROP DATABASE ... WITH (FORCE) waits for the others to exit is not terminated by it, and the
    # drop fails with "being accessed by other users". Such a worker ends at the next drop's
    # SIGTERM, so try again a few times.
    # The decoder of async monitors holds the database's replication slot for a moment per poll,
    # and DROP DATABASE refuses while a slot is active (even WITH (FORCE)): stop it first.
    for attempt in range(5):
        psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{DB}'"
             " AND backend_type = 'tidewatch decoder'", db="postgres")
        psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", db="postgres", check=attempt == 4)
        if one(f"SELECT count(*) FROM pg_database WHERE datname = '{DB}'", db="postgres") == "0":
            break
        time.sleep(1)
    psql(f"CREATE DATABASE {DB}", db="postgres")
    psql("CREATE EXTENSION tidewatch")


def wait_for(predicate, timeout=45.0, every=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def run_concurrently(workers, work):
    """Run work(w) for w in range(workers) in threads at once; return the psql failures
    (deadlocks, unique violations, any error) as strings."""
    import threading
    errors = []

    def run(w):
        try:
            work(w)
        except AssertionError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
