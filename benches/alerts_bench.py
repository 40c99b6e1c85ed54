#!/usr/bin/env python3
"""Latency of POST /v1/alerts/grafana storing and enriching a 100-alert payload.

Data: SERIES series (4 satellites x SERIES/4 metrics, one point a minute for a day) with spikes
injected, inserted into the service's metrics table and scored by its async monitor. Each payload
holds 100 alerts, one per series, labelled as Grafana would label an alert on the service's
metrics ({alertname, metric, satellite, severity}), each starting at one of its series' anomaly
episodes: so every alert is matched to its episodes and gets explain_anomaly's top reasons,
stored as a new notification (fresh fingerprints each request), and queued to one webhook route
(a local receiver that answers 200, so the outbox worker delivers meanwhile, as in production).
A second run sends payloads whose alerts match no episode (the cost of storing alone). Those
runs are warm (the reasons cache holds the episodes after the first payload); the cold case is
measured apart: COLD times a service just started, and its first payload on the episodes.
Requests are sent one after another (sequential client, loopback); prints p50/p95/p99/max, and
checks every answer (stored == 100) and the stored links against psql.

Uses the integration tests' harness (tests/service/svctest.py): TIDEWATCH_DSN (superuser conninfo
of a cluster whose scheduler runs in tidewatch_svc) and TIDEWATCH_SERVICE_BIN (a release build);
benches/alerts.sh sets both up. Usage: python3 benches/alerts_bench.py [REQUESTS] [SERIES]
(defaults 200 and 100).
"""
import http.server
import json
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "service"))
from svctest import Service, fresh_database, one, psql  # noqa: E402

REQUESTS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
SERIES = int(sys.argv[2]) if len(sys.argv) > 2 else 100
ALERTS = 100
COLD = 5


class Sink(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def payload(alerts):
    return {"receiver": "tidewatch", "status": "firing", "orgId": 1, "alerts": alerts, "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://grafana.local/", "version": "1",
            "groupKey": "{}:{}", "truncatedAlerts": 0, "title": "[FIRING]", "state": "alerting", "message": ""}


def alert(fp, metric, sat, starts):
    return {"status": "firing", "labels": {"alertname": f"{metric} anomaly", "metric": metric, "satellite": sat,
                                           "severity": "warning"},
            "annotations": {"summary": f"{metric} of {sat} left its band"}, "startsAt": starts,
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://grafana.local/alerting/x/edit", "fingerprint": fp,
            "silenceURL": "", "dashboardURL": "", "panelURL": "http://grafana.local/d/x?viewPanel=1",
            "values": {"A": 31.5}, "valueString": "[ var='A' value=31.5 ]"}


def run(svc, name, make):
    ms, linked = [], 0
    for r in range(REQUESTS + 5):
        body = json.dumps(payload(make(r)))
        t0 = time.perf_counter()
        status, _, resp = svc.request("POST", "/v1/alerts/grafana", body, headers={"Content-Type": "application/json"})
        dt = (time.perf_counter() - t0) * 1000
        assert status == 200 and resp["stored"] == ALERTS, resp
        if r >= 5:  # the first five warm the plans and the pool
            ms.append(dt)
            if r == 5:
                ids = ",".join(map(str, resp["notifications"]))
                linked = int(one(f"SELECT count(*) FROM tidewatch.notifications WHERE id IN ({ids}) "
                                 f"AND cardinality(episodes) > 0 AND jsonb_array_length(reasons) > 0"))
    print(f"| {name} | {len(ms)} | {linked} of {ALERTS} | {statistics.median(ms):.1f} | {pct(ms, 95):.1f} | "
          f"**{pct(ms, 99):.1f}** | {max(ms):.1f} |")
    return ms


def main():
    fresh_database()
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    sink.daemon_threads = True
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    routes = [{"name": "sink", "kind": "webhook", "url": f"http://127.0.0.1:{sink.server_address[1]}/hook"}]
    svc = Service(alert_routes=json.dumps(routes), log="warn")
    t0 = 0
    try:
        t = time.monotonic()
        per_sat = SERIES // 4
        psql(f"""
            INSERT INTO metrics (time, metric, labels, value)
            SELECT date_trunc('minute', now()) - interval '1 day' + i * interval '1 minute', 'SCH.M' || m,
                   jsonb_build_object('satellite', 'SAT' || s),
                   20 + m + 2 * sin(2 * pi() * i / 1440) + ((i * 7919 + s * 104729 + m * 31) % 17) / 40.0
                   + CASE WHEN (i + 97 * s + 61 * m) % 480 = 0 THEN 12 ELSE 0 END
            FROM generate_series(0, 1439) i, generate_series(1, 4) s, generate_series(1, {per_sat}) m""", timeout=3600)
        psql("SELECT tidewatch.monitor_wait()", timeout=3600)
        load_s = time.monotonic() - t
        points = one("SELECT count(*) FROM metrics")
        # One episode start per series (its latest), for alerts that match.
        starts = psql("SELECT DISTINCT ON (series) series ->> 'metric', series -> 'labels' ->> 'satellite', "
                      "extract(epoch FROM started_at)::bigint FROM tidewatch.anomalies ORDER BY series, started_at DESC")
        episodes = one("SELECT count(*) FROM tidewatch.anomalies")
        assert len(starts) >= ALERTS, f"only {len(starts)} series have an episode; need {ALERTS}"
        starts = starts[:ALERTS]
        print(f"data: {points} points of {SERIES} series, {episodes} episodes, loaded and scored in {load_s:.0f} s")
        print(f"machine: {os.cpu_count()} cores; load average {open('/proc/loadavg').read().split()[:3]}")
        print(f"{REQUESTS} payloads of {ALERTS} alerts per run (after 5 warm-up), sequential, loopback\n")
        print("| payload | requests | alerts linked to episodes | p50 ms | p95 ms | p99 ms | max ms |")
        print("|---|---|---|---|---|---|---|")
        linked = run(svc, "100 alerts, each on an episode (enriched)",
                     lambda r: [alert(f"b{r}-{i}", m, s, iso(int(t0) + 30)) for i, (m, s, t0) in enumerate(starts)])
        # Metrics without data: no episode matches.
        plain = run(svc, "100 alerts, no episode (stored only)",
                    lambda r: [alert(f"p{r}-{i}", "NONE." + m, s, iso(int(t0) + 30)) for i, (m, s, t0) in enumerate(starts)])
        # Cold: a service just started (its reasons cache empty; plans warmed by one payload
        # without episodes), then one payload whose 100 alerts all need explain_anomaly.
        svc.stop()
        cold = []
        for k in range(COLD):
            svc = Service(alert_routes=json.dumps(routes), log="warn")
            svc.request("POST", "/v1/alerts/grafana", json.dumps(payload(
                [alert(f"cw{k}-{i}", "NONE." + m, s, iso(int(t0) + 30)) for i, (m, s, t0) in enumerate(starts)])),
                headers={"Content-Type": "application/json"})
            body = json.dumps(payload([alert(f"c{k}-{i}", m, s, iso(int(t0) + 30)) for i, (m, s, t0) in enumerate(starts)]))
            t0 = time.perf_counter()
            status, _, resp = svc.request("POST", "/v1/alerts/grafana", body, headers={"Content-Type": "application/json"})
            cold.append((time.perf_counter() - t0) * 1000)
            assert status == 200 and resp["stored"] == ALERTS, resp
            svc.stop()
        explained = one("SELECT count(DISTINCT e) FROM tidewatch.notifications, unnest(episodes) e WHERE fingerprint LIKE 'c0-%'")
        print(f"| 100 alerts on episodes, cold (service just started; {explained} episodes to explain) | {COLD} | "
              f"100 of 100 | {statistics.median(cold):.1f} | - | max **{max(cold):.1f}** | {max(cold):.1f} |")
        print(json.dumps({"p99_ms_enriched": round(pct(linked, 99), 1), "p99_ms_plain": round(pct(plain, 99), 1),
                          "max_ms_cold": round(max(cold), 1)}))
    finally:
        svc.stop()
        sink.shutdown()


if __name__ == "__main__":
    main()
