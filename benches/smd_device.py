"""The Server Machine Dataset through SQL: each machine's 38 metrics scored as one device by
`tidewatch.detect_device_anomalies`, and as 38 separate series by `tidewatch.detect_anomalies`
(a machine flagged when any of its series is), then scored with `../shared/tools/event_score.py`.

Each machine's training split followed by its test split is one series (one row a minute from
2020-01-01, as the in-process harness `cargo run --release -p tidewatch-anomaly --example eval`
reads it), so the two must give the same numbers: this is the SQL path of what the harness measures.
Flags are counted on the test split only. Default settings of `auto`.

Usage: TIDEWATCH_DSN='host=... port=... user=...' python3 benches/smd_device.py
(TIDEWATCH_SHARED: the shared data folder, default ../shared beside the repository; skips, saying
so, when its data/smd is absent).
"""
import csv
import gzip
import io
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TIDEWATCH_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
SMD = os.path.join(SHARED, "data", "smd")
DSN = os.environ.get("TIDEWATCH_DSN", "")
DB = "tidewatch_smd_bench"
METRICS = [f"m{i:02d}" for i in range(1, 39)]


def psql(sql, db=DB, stdin=None):
    out = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", f"{DSN} dbname={db}", "-c", sql],
                         input=stdin, capture_output=True, text=True, check=True)
    return [line.split("|") for line in out.stdout.splitlines() if line]


def main():
    if not os.path.isdir(SMD):
        print(f"skipped: {SMD} is absent (the shared data folder)")
        return
    if not DSN:
        sys.exit("set TIDEWATCH_DSN")
    machines = [r["machine"] for r in csv.DictReader(open(os.path.join(SMD, "index.csv")))]
    psql(f"DROP DATABASE IF EXISTS {DB}", db="postgres")
    psql(f"CREATE DATABASE {DB}", db="postgres")
    psql("CREATE EXTENSION tidewatch")
    cols = ", ".join(f"{m} float8" for m in METRICS)
    psql(f"CREATE TABLE smd (machine text, i int, test_t int, label int, ts timestamptz, {cols})")
    t0 = time.time()
    for m in machines:
        buf = io.StringIO()
        i = 0
        for split in ("train", "test"):
            with gzip.open(os.path.join(SMD, f"{m}.{split}.csv.gz"), "rt") as fh:
                for r in csv.DictReader(fh):
                    test_t = r["t"] if split == "test" else ""
                    label = r["label"] if split == "test" else ""
                    buf.write(f"{m},{i},{test_t},{label},2020-01-01 00:00:00+00,{','.join(r[x] for x in METRICS)}\n")
                    i += 1
        # ts from the row index: one row a minute.
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", f"{DSN} dbname={DB}", "-c",
                        f"\\copy smd FROM STDIN WITH (FORMAT csv, NULL '')"], input=buf.getvalue(), text=True, check=True)
    psql("UPDATE smd SET ts = timestamptz '2020-01-01 00:00+00' + i * interval '1 minute'; ANALYZE smd")
    rows = int(psql("SELECT count(*) FROM smd")[0][0])
    print(f"loaded {rows} rows of {len(machines)} machines in {time.time() - t0:.1f} s")
    cols_arr = "{" + ",".join(METRICS) + "}"
    labels = {(m, int(t)): int(lab) for m, t, lab in psql("SELECT machine, test_t, label FROM smd WHERE test_t IS NOT NULL")}
    normal = sum(1 for v in labels.values() if v == 0)
    for name, sql in [
        ("one device per machine (detect_device_anomalies)",
         f"SELECT d.series ->> 'machine', s.test_t FROM tidewatch.detect_device_anomalies('smd', '{cols_arr}', "
         f"'{{machine}}', 'ts', anomalies_only => true) d JOIN smd s ON s.machine = d.series ->> 'machine' AND s.ts = d.ts "
         f"WHERE s.test_t IS NOT NULL"),
        ("38 series per machine, any flagged (detect_anomalies)",
         " UNION ".join(
             f"SELECT d.series ->> 'machine', s.test_t FROM tidewatch.detect_anomalies('smd', '{m}', '{{machine}}', 'ts', "
             f"anomalies_only => true) d JOIN smd s ON s.machine = d.series ->> 'machine' AND s.ts = d.ts "
             f"WHERE s.test_t IS NOT NULL" for m in METRICS)),
    ]:
        t1 = time.time()
        flags = psql(sql)
        secs = time.time() - t1
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as fh:
            fh.write("entity,t,flag\n")
            for ent, t in flags:
                fh.write(f"{ent},{t},1\n")
            path = fh.name
        out = subprocess.run([sys.executable, os.path.join(SHARED, "tools", "event_score.py"), SMD, path],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()
        os.unlink(path)
        fa = sum(1 for ent, t in set(map(tuple, flags)) if labels.get((ent, int(t))) == 0)
        print(f"{name}: {out[-1]} ({fa} of {normal} normal test points flagged); "
              f"flagged test points {len(set(map(tuple, flags)))}; query {secs:.1f} s")


if __name__ == "__main__":
    main()
