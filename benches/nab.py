#!/usr/bin/env python3
"""NAB harness: score the Numenta Anomaly Benchmark through SQL, causally.

Loads every series listed in ../shared/data/nab/labels/combined_windows.json into one hypertable
(`nab(file, ts, value)`), scores each row with the window aggregate
    tidewatch.anomaly_score(ts, value [, method, params]) OVER (PARTITION BY file ORDER BY ts)
which only sees the rows before and at the current one, writes NAB results files
(`OUT/<category>/<file>.csv` with timestamp,anomaly_score) and runs ../shared/tools/nab_score.py.

    python3 benches/nab.py --dsn "host=127.0.0.1 port=25443 user=postgres" [--method auto] [--out DIR]

Prints the scorer's output and a last line `nab standard=S low_fp=F low_fn=N`. Exits 77 (skip)
when the data or the scorer is absent. One configuration for every file: no per-file tuning.
"""
import argparse
import csv
import io
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("TIDEWATCH_SHARED", os.path.join(HERE, "..", "..", "shared"))


def psql(dsn, db, sql, stdin=None):
    p = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", f"{dsn} dbname={db}", "-c", sql],
        input=stdin, capture_output=True, text=True, env={**os.environ, "PGTZ": "UTC"})
    if p.returncode != 0:
        raise SystemExit(f"psql failed: {p.stderr.strip()}\nSQL: {sql[:300]}")
    return p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True, help="libpq conninfo without dbname")
    ap.add_argument("--db", default="tidewatch_nab")
    ap.add_argument("--method", default="auto")
    ap.add_argument("--params", default="{}")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    data = os.path.join(SHARED, "data", "nab")
    scorer = os.path.join(SHARED, "tools", "nab_score.py")
    if not (os.path.isdir(data) and os.path.isfile(scorer)):
        print(f"skip: NAB data or scorer not found under {SHARED}")
        sys.exit(77)
    with open(os.path.join(data, "labels", "combined_windows.json")) as fh:
        files = sorted(json.load(fh))

    psql(a.dsn, "postgres", f"DROP DATABASE IF EXISTS {a.db} WITH (FORCE)")
    psql(a.dsn, "postgres", f"CREATE DATABASE {a.db}")
    psql(a.dsn, a.db, "CREATE EXTENSION tidewatch")
    psql(a.dsn, a.db, "CREATE TABLE nab (file text NOT NULL, ts timestamptz NOT NULL, value float8);"
                      "SELECT tidewatch.create_hypertable('nab', 'ts', interval '30 days');")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for rel in files:
        with open(os.path.join(data, "data", rel), newline="") as fh:
            for row in list(csv.reader(fh))[1:]:
                w.writerow([rel, row[0] + "+00", row[1]])
    psql(a.dsn, a.db, "COPY nab FROM STDIN WITH (FORMAT csv)", stdin=buf.getvalue())
    psql(a.dsn, a.db, "SELECT tidewatch.run_maintenance('nab')")

    method = a.method.replace("'", "''")
    params = a.params.replace("'", "''")
    out = psql(a.dsn, a.db,
               "COPY (SELECT file, to_char(ts, 'YYYY-MM-DD HH24:MI:SS'),"
               f" tidewatch.anomaly_score(ts, value, '{method}', '{params}') OVER (PARTITION BY file ORDER BY ts)"
               " FROM nab ORDER BY file, ts) TO STDOUT WITH (FORMAT csv)")
    results = a.out or tempfile.mkdtemp(prefix="tidewatch-nab-")
    per_file = {}
    for file, ts, score in csv.reader(io.StringIO(out)):
        per_file.setdefault(file, []).append((ts, float(score) if score else 0.0))
    for rel, rows in per_file.items():
        dst = os.path.join(results, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "w", newline="") as fh:
            cw = csv.writer(fh, lineterminator="\n")
            cw.writerow(["timestamp", "anomaly_score"])
            for ts, s in rows:
                cw.writerow([ts, f"{min(max(s, 0.0), 1.0):.6f}"])
    psql(a.dsn, "postgres", f"DROP DATABASE IF EXISTS {a.db} WITH (FORCE)")
    p = subprocess.run([sys.executable, scorer, "--data", data, "--results", results],
                       capture_output=True, text=True)
    print(p.stdout.strip())
    if p.returncode != 0:
        raise SystemExit(f"nab_score.py failed: {p.stderr.strip()}")
    scores = {}
    for profile in ("standard", "reward_low_FP", "reward_low_FN"):
        m = re.search(rf"{profile}\D*?(-?\d+(?:\.\d+)?)", p.stdout)
        scores[profile] = float(m.group(1)) if m else float("nan")
    print(f"nab standard={scores['standard']:.2f} low_fp={scores['reward_low_FP']:.2f} "
          f"low_fn={scores['reward_low_FN']:.2f} files={len(per_file)} results={results}")


if __name__ == "__main__":
    main()
