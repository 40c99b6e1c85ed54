#!/usr/bin/env python3
"""The load half of benches/service.sh (which builds, starts the cluster and the service).

1. Ingest throughput, side by side in each repeat: POINTS points (SERIES series) written
   - by one COPY straight into the service's metrics hypertable (the limit: same table, same
     unique index, same monitor), through psql's \\copy of a CSV file;
   - through the service in batches of 1,000 points from CONC concurrent keep-alive clients:
     JSON (POST /v1/metrics), line protocol (POST /api/v2/write) and remote write
     (POST /api/v1/write, snappy by cramjam when installed).
   The table is emptied before each, and every run uses its own times (the monitor sees new
   points each time). Rows/s are counted until the last commit; the monitor's decoder scores
   after (COPY) or meanwhile (HTTP batches). Medians of REPEATS.
2. Latency: oha at RATE requests/s for SECONDS s (a bounded request count) of 10-point JSON
   batches without times (each request writes 10 new rows), loopback only: p50, p99, errors.
3. Memory: the service's peak RSS (VmHWM) after all of it.
Standard library only (cramjam optional).
"""
import argparse
import http.client
import json
import os
import queue
import re
import statistics
import struct
import subprocess
import sys
import threading
import time

p = argparse.ArgumentParser()
p.add_argument("--url", required=True)
p.add_argument("--pid", type=int, required=True)
p.add_argument("--token", required=True)
p.add_argument("--psql-dsn", required=True, help="superuser conninfo of the bench database")
p.add_argument("--points", type=int, default=200_000)
p.add_argument("--series", type=int, default=200)
p.add_argument("--batch", type=int, default=1000)
p.add_argument("--conc", type=int, default=4)
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--rate", type=int, default=500)
p.add_argument("--seconds", type=int, default=30)
p.add_argument("--oha", default="oha")
p.add_argument("--workdir", default="/tmp")
args = p.parse_args()

HOST, PORT = re.match(r"http://([^:/]+):(\d+)", args.url).groups()
PSQL = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", args.psql_dsn]

try:
    import cramjam  # noqa: F401

    def snappy(data):
        return bytes(cramjam.snappy.compress_raw(data))
    SNAPPY = "cramjam (real snappy)"
except ImportError:
    def snappy(data):
        # Literals only: valid snappy that any decoder reads, not compressed.
        out = bytearray(varint(len(data)))
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
    SNAPPY = "literal-only snappy (cramjam not installed)"


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def field(num, wire, payload):
    key = varint((num << 3) | wire)
    return key + varint(len(payload)) + payload if wire == 2 else key + payload


def psql(sql):
    return subprocess.run(PSQL + ["-At", "-c", sql], check=True, capture_output=True, text=True).stdout.strip()


def points(run):
    """(ts seconds, series index, value) of one run: its own hour range."""
    base = 1_780_000_000 + run * 10_000_000
    per = args.points // args.series
    return [(base + t, s, 20 + (t % 60) / 10 + s / 100) for t in range(per) for s in range(args.series)]


def labels(s):
    return {"host": f"h{s:04d}", "dc": f"dc{s % 4}"}


def json_bodies(pts):
    out = []
    for i in range(0, len(pts), args.batch):
        out.append(json.dumps([{"metric": "cpu", "labels": labels(s), "ts": t, "value": v}
                               for t, s, v in pts[i:i + args.batch]]).encode())
    return out, "/v1/metrics", {"Content-Type": "application/json"}


def lp_bodies(pts):
    out = []
    for i in range(0, len(pts), args.batch):
        out.append("".join(f"cpu,dc=dc{s % 4},host=h{s:04d} value={v} {t}\n" for t, s, v in pts[i:i + args.batch]).encode())
    return out, "/api/v2/write?precision=s", {"Content-Type": "text/plain"}


def rw_bodies(pts):
    out = []
    for i in range(0, len(pts), args.batch):
        by_series = {}
        for t, s, v in pts[i:i + args.batch]:
            by_series.setdefault(s, []).append((t, v))
        msg = b""
        for s, samples in by_series.items():
            ts = b""
            for name, value in [("__name__", "cpu"), ("dc", f"dc{s % 4}"), ("host", f"h{s:04d}")]:
                ts += field(1, 2, field(1, 2, name.encode()) + field(2, 2, value.encode()))
            for t, v in samples:
                ts += field(2, 2, field(1, 1, struct.pack("<d", v)) + field(2, 0, varint(t * 1000)))
            msg += field(1, 2, ts)
        out.append(snappy(msg))
    return out, "/api/v1/write", {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}


def send_all(bodies, path, headers):
    q = queue.Queue()
    for b in bodies:
        q.put(b)
    errors = []

    def client():
        conn = http.client.HTTPConnection(HOST, int(PORT), timeout=120)
        h = {**headers, "Authorization": f"Bearer {args.token}"}
        while True:
            try:
                body = q.get_nowait()
            except queue.Empty:
                break
            conn.request("POST", path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            if r.status not in (200, 204):
                errors.append(f"{r.status} {data[:200]!r}")
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(args.conc)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        sys.exit(f"errors during ingest: {errors[:3]}")
    return elapsed


def reset():
    psql("SELECT tidewatch.monitor_wait(interval '120 seconds')")
    psql("TRUNCATE metrics")
    psql("CHECKPOINT")


def main():
    print(f"# {args.points} points, {args.series} series, batches of {args.batch}, {args.conc} clients, "
          f"{args.repeats} repeats; remote write bodies: {SNAPPY}", flush=True)
    results = {"copy": [], "json": [], "line_protocol": [], "remote_write": []}
    run = 0
    for r in range(args.repeats):
        for kind in ("copy", "json", "line_protocol", "remote_write"):
            run += 1
            pts = points(run)
            reset()
            if kind == "copy":
                csv_path = os.path.join(args.workdir, "points.csv")
                with open(csv_path, "w") as f:
                    for t, s, v in pts:
                        lab = json.dumps(labels(s)).replace('"', '""')
                        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(t))},cpu,\"{lab}\",{v}\n")
                out = subprocess.run(PSQL + ["-c", "\\timing on", "-c",
                                             f"\\copy metrics (time, metric, labels, value) FROM '{csv_path}' WITH (FORMAT csv)"],
                                     check=True, capture_output=True, text=True).stdout
                secs = float(re.findall(r"Time: ([0-9.]+) ms", out)[-1]) / 1000
            else:
                bodies, path, headers = {"json": json_bodies, "line_protocol": lp_bodies, "remote_write": rw_bodies}[kind](pts)
                secs = send_all(bodies, path, headers)
            n = int(psql("SELECT count(*) FROM metrics"))
            if n != len(pts):
                sys.exit(f"{kind}: {n} rows in the table, expected {len(pts)}")
            results[kind].append(len(pts) / secs)
            print(f"repeat {r + 1} {kind:14s} {len(pts) / secs:12,.0f} rows/s ({secs:.2f} s)", flush=True)
    copy = statistics.median(results["copy"])
    print("\n| path | rows/s (median) | × COPY |\n|---|---|---|")
    print(f"| COPY of the same points into the same hypertable (limit) | {copy:,.0f} | 1.00 |")
    for kind in ("json", "line_protocol", "remote_write"):
        m = statistics.median(results[kind])
        print(f"| HTTP {kind}, batches of {args.batch}, {args.conc} clients | {m:,.0f} | {m / copy:.2f} |")

    # Latency.
    reset()
    body = json.dumps([{"metric": "lat", "labels": {"probe": str(i)}, "value": i} for i in range(10)])
    n = args.rate * args.seconds
    cmd = [args.oha, "-n", str(n), "-q", str(args.rate), "-c", "16", "--no-tui", "--output-format", "json",
           "-m", "POST", "-H", f"Authorization: Bearer {args.token}", "-H", "Content-Type: application/json",
           "-d", body, f"{args.url}/v1/metrics"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    res = json.loads(out)
    pct = res["latencyPercentiles"]
    codes = res.get("statusCodeDistribution", {})
    errors = sum(v for k, v in codes.items() if k != "200") + sum(res.get("errorDistribution", {}).values())
    rows = int(psql("SELECT count(*) FROM metrics WHERE metric = 'lat'"))
    with open(f"/proc/{args.pid}/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    print(f"\nlatency: {n} requests of 10 points at {args.rate}/s: "
          f"p50 {pct['p50'] * 1000:.1f} ms, p99 {pct['p99'] * 1000:.1f} ms, max {res['summary']['slowest'] * 1000:.1f} ms, "
          f"achieved {res['summary']['requestsPerSec']:.0f} req/s, non-200 or errors: {errors}, rows written {rows} (expected {n * 10})")
    print(f"memory: service peak RSS {hwm / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
