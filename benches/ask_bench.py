#!/usr/bin/env python3
"""Latency of /v1/ask on demo-sized data: a week of 60 series (4 satellites x 15 metrics, one point
a minute: 604,800 points, scored by the service's async monitor), with spikes injected, and ETL log
lines. Questions of every intent are asked one after another (sequential client on loopback);
prints p50/p95/p99/max overall and per intent, as Markdown for benches/RESULTS.md.

Uses the integration tests' harness (tests/service/svctest.py): set TIDEWATCH_DSN (a superuser
conninfo of a cluster with the scheduler in database tidewatch_svc) and TIDEWATCH_SERVICE_BIN (a
release build). Usage: python3 benches/ask_bench.py [ROUNDS]   (default 25 rounds of 20 questions)
"""
import json
import os
import statistics
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "service"))
from svctest import READ_TOKEN, Service, fresh_database, one, psql  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 25
QUESTIONS = [
    "when did SAT2 SCH.M1 have anomalies last week?",
    "when did sat 3 sch m7 have anomalies yesterday?",
    "why was SCH.M3 anomalous yesterday?",
    "why did SAT4 spike in the last 2 days?",
    "how many anomalies yesterday?",
    "how many critical anomalies in the last 7 days?",
    "which satellites had critical anomalies today?",
    "which metrics had anomalies this week?",
    "what is wrong with SAT4 right now?",
    "is SCH.M7 drifting?",
    "which ETL jobs had errors this morning?",
    "which jobs had errors in the last 24 hours?",
    "what changed since Monday?",
    "when did shc.m12 have spikes?",
    "how many dips did stat1 have in the last 3 days?",
    "anomalies of SAT1 SCH.M15 in the last 6 hours",
    "tell me a joke",
    "when did SAT9 have anomalies?",
    "how many anomalies so far?",
    "which satellites had anomalies in the last 7 days?",
]


def main():
    fresh_database()
    svc = Service(read_tokens=READ_TOKEN)
    try:
        t = time.monotonic()
        psql("""
            INSERT INTO metrics (time, metric, labels, value)
            SELECT date_trunc('minute', now()) - interval '7 days' + i * interval '1 minute', 'SCH.M' || m,
                   jsonb_build_object('satellite', 'SAT' || s),
                   20 + m + 2 * sin(2 * pi() * i / 1440) + ((i * 7919 + s * 104729 + m * 31) % 17) / 40.0
                   + CASE WHEN (i + 997 * s + 613 * m) % 2880 = 0 THEN 12 ELSE 0 END
            FROM generate_series(0, 10079) i, generate_series(1, 4) s, generate_series(1, 15) m""", timeout=3600)
        psql("""
            INSERT INTO logs (time, source, labels, message)
            SELECT date_trunc('minute', now()) - interval '7 days' + i * interval '20 seconds', 'etl',
                   jsonb_build_object('job', CASE WHEN i % 3 = 0 THEN 'nightly' ELSE 'hourly' END),
                   CASE WHEN i % 97 = 0 THEN 'ERROR: deadlock detected'
                        WHEN i % 131 = 0 THEN 'could not connect to server: Connection refused'
                        ELSE 'Loaded ' || i || ' rows into staging.orders' END
            FROM generate_series(0, 30239) i""", timeout=3600)
        psql("SELECT tidewatch.monitor_wait()", timeout=3600)
        load_s = time.monotonic() - t
        points = one("SELECT count(*) FROM metrics")
        episodes = one("SELECT count(*) FROM tidewatch.anomalies")
        by_intent = {}
        all_ms = []
        for q in QUESTIONS:  # warm-up: the catalog cache, plans
            svc.get("/v1/ask?" + urllib.parse.urlencode({"q": q}))
        for _ in range(ROUNDS):
            for q in QUESTIONS:
                t0 = time.perf_counter()
                status, _, body = svc.get("/v1/ask?" + urllib.parse.urlencode({"q": q}))
                ms = (time.perf_counter() - t0) * 1000
                assert status == 200, body
                all_ms.append(ms)
                by_intent.setdefault(body["intent"], []).append(ms)

        def pct(xs, p):
            xs = sorted(xs)
            return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

        print(f"data: {points} points, {episodes} episodes, loaded and scored in {load_s:.0f} s")
        print(f"{len(all_ms)} questions ({ROUNDS} rounds of {len(QUESTIONS)}), sequential, loopback\n")
        print("| intent | questions | p50 ms | p95 ms | p99 ms | max ms |")
        print("|---|---|---|---|---|---|")
        for name, xs in sorted(by_intent.items()):
            print(f"| {name} | {len(xs)} | {statistics.median(xs):.1f} | {pct(xs, 95):.1f} | {pct(xs, 99):.1f} | {max(xs):.1f} |")
        print(f"| **all** | {len(all_ms)} | {statistics.median(all_ms):.1f} | {pct(all_ms, 95):.1f} | "
              f"**{pct(all_ms, 99):.1f}** | {max(all_ms):.1f} |")
        print(json.dumps({"p99_ms": round(pct(all_ms, 99), 1)}))
    finally:
        svc.stop()


if __name__ == "__main__":
    main()
