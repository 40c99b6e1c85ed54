"""Tidewatch on a 3-node local Citus cluster against a single-node table of the same rows.

All three nodes share this machine's cores, so this reports what moves to the coordinator and the
wall time, not a speed-up. The cluster is tests/test_citus.py's (tools/lib.sh citus_start: a
coordinator and two workers from the PostgreSQL copy of PG_CONFIG/PGBIN, with the extension build
installed there); the single-node table is a local table on the coordinator.

Bytes to the coordinator: every worker task of the query (EXPLAIN VERBOSE with all tasks shown)
is run again on its node and the text size of its result rows summed (Citus' own EXPLAIN ANALYZE
count fails on worker_partial_agg's cstring column).

Usage (after tools/lib.sh use_private_pg and install_extension, as tools/test.sh does):
  python3 benches/citus.py [ROWS] [SERIES] [REPEATS]     (defaults 1000000 100 3)
"""
import os
import re
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
SERIES = int(sys.argv[2]) if len(sys.argv) > 2 else 100
REPEATS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
PORT = int(os.environ.get("TIDEWATCH_CITUS_PORT", "25460"))
DIR = os.path.join(os.environ.get("TIDEWATCH_BENCH_DIR", "/var/tmp/tidewatch-bench-citus"), "citus")
DB = "tidewatch_citus_bench"
COORD = f"host=127.0.0.1 port={PORT} user=postgres"


def lib(call):
    subprocess.run(["bash", "-c", f'source "{REPO}/tools/lib.sh" && {call}'], check=True, timeout=3600)


def psql(sql, dsn=COORD, db=DB):
    out = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", f"{dsn} dbname={db}", "-c", sql],
                         capture_output=True, text=True, check=True, timeout=3600,
                         env={**os.environ, "PGTZ": "UTC"})
    return out.stdout.strip()


def timed(sql):
    runs = []
    for _ in range(REPEATS):
        t0 = time.monotonic()
        psql(sql)
        runs.append((time.monotonic() - t0) * 1000)
    return statistics.median(runs)


def moved(sql):
    plan = psql(f"SET citus.explain_all_tasks = on; EXPLAIN (VERBOSE, COSTS OFF) {sql}")
    tasks = re.findall(r"Query: (.*)\n\s*Node: host=(\S+) port=(\d+)", plan)
    return sum(int(psql(f"SELECT coalesce(sum(octet_length(x::text)), 0) FROM ({q}) x",
                        f"host={h} port={p} user=postgres")) for q, h, p in tasks), "worker_partial_agg" in plan


def hypertable(t, per, distribute):
    """SQL that creates hypertable t (7-day chunks made ahead for per minutes from 2026-01-01),
    distributed by series_id when distribute."""
    dist = f"SELECT create_distributed_table('{t}', 'series_id');" if distribute else ""
    return f"""
        CREATE TABLE {t} (series_id int NOT NULL, ts timestamptz NOT NULL, value float8, prediction float8);
        SELECT tidewatch.create_hypertable('{t}', 'ts', interval '7 days');
        SELECT tidewatch._ensure_chunk('{t}', b) FROM generate_series(timestamptz '2026-01-01',
               timestamptz '2026-01-01' + {per} * interval '1 minute', interval '1 day') b;
        {dist}"""


def main():
    lib("citus_install")
    lib(f'citus_start "{DIR}" {PORT} {DB} && citus_db {PORT} {DB}')
    try:
        per = ROWS // SERIES
        for t in ("loc", "dist"):
            psql(hypertable(t, per, t == "dist") + f"""
                SELECT setseed(0.42);
                INSERT INTO {t} SELECT s, timestamptz '2026-01-01' + i * interval '1 minute',
                       100 + 10 * sin(i / 229.0) + s % 7 + random() + CASE WHEN i % 2017 = 0 THEN 25 ELSE 0 END,
                       100 + 10 * sin(i / 229.0) + s % 7
                FROM generate_series(0, {per} - 1) i, generate_series(1, {SERIES}) s;
                ANALYZE {t};""")
        queries = [
            ("SELECT series_id, avg(value) … GROUP BY series_id", "SELECT series_id, avg(value) FROM {t} GROUP BY series_id"),
            ("detect_anomalies(…, anomalies_only => true)",
             "SELECT count(*) FROM tidewatch.detect_anomalies('{t}', 'value', '{{series_id}}', anomalies_only => true)"),
            ("regression_quality over the whole table",
             "SELECT (tidewatch.regression_quality(prediction, value)).* FROM {t}"),
            ("regression_quality GROUP BY day (not the distribution column)",
             "SELECT tidewatch.time_bucket('1 day', ts), (tidewatch.regression_quality(prediction, value)).n FROM {t} GROUP BY 1"),
            ("drift_agg(value, is_current) over the whole table (numeric: the values travel)",
             "SELECT (tidewatch.drift_agg(value, ts >= timestamptz '2026-01-04')).statistic FROM {t}"),
            ("drift_agg over the value read to 0.1 (numeric, repeating: distinct values travel with counts)",
             "SELECT (tidewatch.drift_agg(round(value::numeric, 1)::float8, ts >= timestamptz '2026-01-04')).statistic FROM {t}"),
            ("drift_report, 1 column, 2 windows of 1 day",
             "SELECT count(*) FROM tidewatch.drift_report('{t}', tstzrange('2026-01-01', '2026-01-02'), "
             "tstzrange('2026-01-03', '2026-01-04'), '{{value}}')"),
        ]
        print(f"{ROWS:,} rows, {SERIES} series; coordinator + 2 workers on one machine ({os.cpu_count()} cores, shared); "
              f"medians of {REPEATS} runs\n")
        print("| query | one node | Citus | bytes to the coordinator | partial aggregation on the workers |")
        print("|---|---|---|---|---|")
        for name, sql in queries:
            one, dist = timed(sql.format(t="loc")), timed(sql.format(t="dist"))
            if sql.startswith("SELECT count(*) FROM tidewatch."):
                b, partial = "(inside the function)", ""
            else:
                n, p = moved(sql.format(t="dist"))
                b, partial = f"{n:,}", "yes" if p else "no"
            print(f"| `{name}` | {one:,.0f} ms | {dist:,.0f} ms | {b} | {partial} |")
        raw, _ = moved("SELECT value FROM dist")
        print(f"\nFor scale: the table's value column alone is {raw:,} bytes in that form.")
        monitors(per)
    finally:
        lib(f'citus_stop "{DIR}"')


def monitors(per):
    """An async monitor on a local and on a distributed table: the same rows copied in (one
    commit per day of data), timed until every node's decoder has scored them and, on Citus, the
    coordinator has pulled the episodes; bytes: the JSON the workers send for a first pull."""
    workers = [f"host=127.0.0.1 port={PORT + i} user=postgres" for i in (1, 2)]
    days = max(1, per // 1440)
    print(f"\nAsync monitor ('auto', one per table), the same {ROWS:,} rows in {days} commits (one a day of data):\n")
    print("| table | rows in and scored | episodes | bytes to the coordinator |")
    print("|---|---|---|---|")
    for t in ("loc_m", "dist_m"):
        dist = t == "dist_m"
        psql(hypertable(t, per, dist))
        psql(f"SELECT tidewatch.monitor('m_{t}', '{t}', 'value', '{{series_id}}', mode => 'async', check_interval => interval '1 day')")
        t0 = time.monotonic()
        for d in range(days):
            psql(f"INSERT INTO {t} SELECT * FROM loc WHERE ts >= timestamptz '2026-01-01' + {d} * interval '1 day' "
                 f"AND ts < timestamptz '2026-01-01' + {d + 1} * interval '1 day'" + (" OR ts >= timestamptz '2026-01-01' + "
                 f"{days} * interval '1 day'" if d == days - 1 else ""))
        for dsn in [COORD] + (workers if dist else []):
            psql("SELECT tidewatch.monitor_wait(interval '1 hour')", dsn)
        if dist:
            psql(f"SELECT tidewatch.pull_episodes('m_{t}')")
        ms = (time.monotonic() - t0) * 1000
        n = psql(f"SELECT count(*) FROM tidewatch.anomalies WHERE monitor = 'm_{t}' AND kind <> 'missing_data'")
        sent = sum(int(psql(f"SELECT octet_length(tidewatch._monitor_episodes('m_{t}', NULL))", w)) for w in workers) if dist else 0
        print(f"| {'distributed (Citus)' if dist else 'local (one node)'} | {ms:,.0f} ms | {n} | {f'{sent:,}' if dist else '—'} |")


if __name__ == "__main__":
    main()
