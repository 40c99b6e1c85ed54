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
runs are warm (the reasons cache holds the episodes after the first payload). Then payloads of
resolved alerts on episodes no payload linked before (the other series, earlier episodes):
every episode explained in the request, on a running service; and COLD times a service just
started (new connections, empty caches), and its first payload on episodes.
Requests are sent one after another (sequential client, loopback); prints p50/p95/p99/max, and
checks every answer (stored == 100) and the stored links against psql.

Uses the integration tests' harness (tests/service/svctest.py): TIDEWATCH_DSN (superuser conninfo
of a cluster whose scheduler runs in tidewatch_svc) and TIDEWATCH_SERVICE_BIN (a release build);
benches/alerts.sh sets both up. Usage: python3 benches/alerts_bench.py [REQUESTS] [SERIES]
(defaults 200 and 400).
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
SERIES = int(sys.argv[2]) if len(sys.argv) > 2 else 400
ALERTS = 100
COLD = 3


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
        # Uncached on a running service: payloads of resolved alerts on episodes never linked
        # before (the other series, and the earlier episodes of every series), so each of their
        # episodes is explained in the request.
        eps = {}
        for m, sat, a, b in psql("SELECT series ->> 'metric', series -> 'labels' ->> 'satellite', "
                                 "extract(epoch FROM started_at)::bigint, extract(epoch FROM coalesce(ended_at, now()))::bigint "
                                 "FROM tidewatch.anomalies WHERE series ? 'metric' ORDER BY started_at DESC"):
            eps.setdefault((m, sat), []).append((int(a), int(b)))
        used = {(m, s_) for m, s_, _ in starts}
        series = sorted(eps)
        groups = [[k for k in series if k not in used][i:i + ALERTS] for i in range(0, len(series), ALERTS)]
        plans = [(g, 0) for g in groups if len(g) == ALERTS] + [(g, layer) for layer in (1, 2, 3)
                                                                for g in [sorted(used)] + groups if len(g) == ALERTS]
        uncached, n_eps = [], []
        for k, (group, layer) in enumerate(plans):
            alerts = []
            for i, key in enumerate(group):
                if len(eps[key]) > layer:
                    a, b = eps[key][layer]
                    x = alert(f"u{k}-{i}", key[0], key[1], iso(a + 30))
                    x["status"], x["endsAt"] = "resolved", iso(b + 60)
                else:
                    x = alert(f"u{k}-{i}", "NONE." + key[0], key[1], iso(int(time.time())))
                alerts.append(x)
            with_episode = sum(1 for key in group if len(eps[key]) > layer)
            if with_episode < ALERTS * 0.8:
                continue
            t1 = time.perf_counter()
            status, _, resp = svc.request("POST", "/v1/alerts/grafana", json.dumps(payload(alerts)),
                                          headers={"Content-Type": "application/json"})
            uncached.append((time.perf_counter() - t1) * 1000)
            assert status == 200 and resp["stored"] == ALERTS, resp
            n_eps.append(int(one(f"SELECT count(DISTINCT e) FROM tidewatch.notifications, unnest(episodes) e "
                                 f"WHERE fingerprint LIKE 'u{k}-%'")))
        if uncached:
            print(f"| 100 alerts on episodes never explained before (running service; {min(n_eps)}–{max(n_eps)} "
                  f"episodes to explain) | {len(uncached)} | ≥ 80 of 100 | {statistics.median(uncached):.1f} | "
                  f"{pct(uncached, 95):.1f} | **{pct(uncached, 99):.1f}** | {max(uncached):.1f} |")
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
                          "p99_ms_uncached": round(pct(uncached, 99), 1) if uncached else None,
                          "max_ms_cold": round(max(cold), 1)}))
    finally:
        svc.stop()
        sink.shutdown()


if __name__ == "__main__":
    main()
