"""Grafana alerts in, notifications out (POST /v1/alerts/grafana, GET /v1/notifications, the
outbox worker), against independent oracles: psql counts of tidewatch.notifications and its
outbox, the payloads the test sent, and a local HTTP receiver that counts what it is delivered.

Covers Grafana's documented payload examples (firing, resolved, repeated, unknown fields), the
zero start time as a key, malformed payloads storing nothing, the HMAC signature (both header
names, with and without timestamp, a stale timestamp, a custom timestamp header), links to
anomaly episodes with explain_anomaly's reasons, deliveries with retries, Retry-After and dead
letters, and a kill -9 of the service in the middle of deliveries.

(Named test_grafana_alerts so that it sorts after test_bad_input.py: importing svctest puts tests/
on sys.path, where another test_bad_input.py lives, and unittest discovery refuses the clash.)"""
import hashlib
import hmac
import http.server
import json
import os
import subprocess
import math
import threading
import time
import unittest
import urllib.parse
from datetime import datetime, timezone

import grafana_examples as gx
from svctest import (BIN, READ_TOKEN, WRITE_TOKEN, Service, fresh_database, psql, require_service, service_dsn, table_state,
                     wait_for)

SECRET = "grafana-hmac-secret-it"
PATH = "/v1/alerts/grafana"


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(body, secret=SECRET, ts=None):
    msg = body if ts is None else f"{ts}:".encode() + body
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


class Receiver:
    """A local webhook receiver that counts every request and honours Idempotency-Key: a key it has
    already accepted is answered 200 again but not counted as a new delivery. `failures` maps an
    alertname to canned answers [(status, headers), ...] given to the first attempts of each
    delivery of it."""

    def __init__(self, delay=0.0):
        self.lock = threading.Lock()
        self.requests = []       # (key, body dict, headers dict, raw body), every request
        self.accepted = {}       # key -> body, first acceptance
        self.delay = delay
        self.started = 0         # requests that arrived (counted before the delay)
        self.failures = {}       # alertname -> [(status, headers)]
        self.seen_attempts = {}  # key -> count of requests
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                with recv.lock:
                    recv.started += 1
                if recv.delay:
                    time.sleep(recv.delay)
                key = self.headers.get("Idempotency-Key")
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with recv.lock:
                    recv.requests.append((key, body, {k.lower(): v for k, v in self.headers.items()}, raw))
                    k = recv.seen_attempts.get(key, 0)
                    recv.seen_attempts[key] = k + 1
                    script = recv.failures.get((body or {}).get("alertname"), [])
                    if k < len(script):
                        status, headers = script[k]
                    else:
                        status, headers = 200, {}
                        if key and key not in recv.accepted:
                            recv.accepted[key] = body
                try:
                    self.send_response(status)
                    for h, v in headers.items():
                        self.send_header(h, v)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the service was killed while waiting for this answer

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 128

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def counts():
    return psql("SELECT (SELECT count(*) FROM tidewatch.notifications), (SELECT count(*) FROM tidewatch.notification_outbox)")[0]


def outbox(where="true"):
    return psql(f"SELECT o.idempotency_key, o.status, o.attempts, coalesce(o.last_http_status, 0), coalesce(o.last_error, '') "
                f"FROM tidewatch.notification_outbox o JOIN tidewatch.notifications n ON n.id = o.notification_id "
                f"WHERE {where} ORDER BY o.id")


def kill9(svc):
    """SIGKILL: no drain, no cleanup."""
    from svctest import _live
    if svc in _live:
        _live.remove(svc)
    svc.proc.kill()
    svc.proc.wait(15)
    svc._reader.join(5)
    svc.proc.stderr.close()


@require_service
class Receive(unittest.TestCase):
    """Receiving, deduplication, validation, signatures, episodes, listing and deliveries."""

    @classmethod
    def setUpClass(cls):
        fresh_database()
        cls.receiver = Receiver()
        cls.receiver.failures = {
            # 500, then 429 with Retry-After: 1, then accepted.
            "flaky": [(500, {}), (429, {"Retry-After": "1"})],
            # A permanent refusal.
            "refused": [(400, {})] * 10,
        }
        routes = [
            {"name": "all", "kind": "webhook", "url": cls.receiver.url, "matchers": ["route!=nowhere"], "max_attempts": 5},
            {"name": "nowhere", "kind": "webhook", "url": "http://127.0.0.1:9/closed", "matchers": ["route=nowhere"],
             "max_attempts": 2},
            {"name": "signed", "kind": "webhook", "url": cls.receiver.url, "matchers": ["team=~sig.*"],
             "hmac_secret": "route-secret"},
        ]
        cls.svc = Service(read_tokens=READ_TOKEN, monitor="sync", alert_hmac_secret=SECRET,
                          alert_routes=json.dumps(routes), alert_retry_base="200ms", alert_retry_max="2s",
                          alert_delivery_timeout="2s")
        # Telemetry with known spikes: SAT2 at minutes 200 and 300 of six hours, SAT1 quiet.
        cls.t0 = (int(time.time()) // 3600 - 7) * 3600
        for sat in (1, 2):
            pts = []
            for i in range(360):
                v = 20 + 2 * math.sin(i / 40) + 0.1 * (((i * 7919 + sat * 104729) % 17) / 17 - 0.5)
                if sat == 2 and i in (200, 300):
                    v += 12
                pts.append({"metric": "SCH.M1", "labels": {"satellite": f"SAT{sat}"}, "ts": cls.t0 + 60 * i, "value": round(v, 6)})
            for k in range(0, 360, 120):
                status, _, body = cls.svc.post_json("/v1/metrics", pts[k:k + 120])
                assert status == 200, body

    @classmethod
    def tearDownClass(cls):
        cls.svc.stop()
        cls.receiver.stop()

    def post(self, obj, token=WRITE_TOKEN, headers=None, raw=None):
        body = raw if raw is not None else json.dumps(obj).encode()
        h = {"Content-Type": "application/json", **(headers or {})}
        return self.svc.request("POST", PATH, body, headers=h, token=token)

    def row(self, fingerprint, status="firing"):
        """The notification's columns, as JSON (messages have newlines)."""
        rows = psql(f"SELECT json_build_array(id, repeats, starts_at::text, coalesce(ends_at::text, ''), alert, payload, "
                    f"subject, message, episodes, reasons, coalesce(severity, ''))::text FROM tidewatch.notifications "
                    f"WHERE fingerprint = '{fingerprint}' AND status = '{status}'")
        return [json.loads(r[0]) for r in rows]

    def test_documentation_example_stored_once_per_alert_with_every_field(self):
        p = gx.firing()
        p["someFutureField"] = {"x": 1}
        p["alerts"][0]["orgId"] = 1  # a field newer Grafanas add to alerts
        before = counts()
        status, _, body = self.post(p)
        self.assertEqual(status, 200, body)
        self.assertEqual((body["received"], body["stored"], body["duplicates"]), (2, 2, 0))
        after = counts()
        self.assertEqual(int(after[0]) - int(before[0]), 2)
        (r,) = self.row("c6eadffa33fcdf37")
        self.assertEqual(r[4], p["alerts"][0], "the alert is kept exactly as received")
        rest = r[5]
        self.assertEqual(rest, {k: v for k, v in p.items() if k != "alerts"})
        self.assertEqual(r[2], "2021-10-12 07:51:03.157076+00")
        self.assertEqual(r[3], "", "endsAt 0001-01-01 means not resolved")
        self.assertIn("[FIRING] High memory usage", r[6])
        self.assertIn("This alert was triggered for zone us-1", r[7])
        self.assertIn("How bad: values B=44.2394 C=1", r[7])
        self.assertIn("Source: https://play.grafana.org/alerting/1afz29v7z/edit", r[7])
        # Repeated (Grafana's repeat interval): stored once, counted, not notified again.
        outbox_before = counts()[1]
        for n in range(2):
            status, _, body = self.post(p)
            self.assertEqual((body["stored"], body["duplicates"]), (0, 2))
        self.assertEqual(counts(), [after[0], outbox_before])
        self.assertEqual(self.row("c6eadffa33fcdf37")[0][1], 2)
        # The v9.3 example's valueString variant is the same alerts: duplicates too.
        status, _, body = self.post(gx.with_value_string())
        self.assertEqual((status, body["stored"]), (200, 0))

    def test_resolved_is_a_notification_of_its_own(self):
        self.post(gx.firing())
        n0 = int(counts()[0])
        status, _, body = self.post(gx.resolved(1))
        self.assertEqual((status, body["stored"]), (200, 1), body)
        self.assertEqual(int(counts()[0]), n0 + 1)
        (r,) = self.row("bc97ff14869b13e3", "resolved")
        self.assertEqual(r[3], "2021-10-12 08:01:03.157076+00")
        self.assertTrue(r[6].startswith("[RESOLVED] High CPU usage"), r[6])
        self.assertIn("Resolved: 2021-10-12 08:01 UTC", r[7])
        status, _, body = self.post(gx.resolved(1))
        self.assertEqual(body["stored"], 0)

    def test_zero_start_time_is_a_key_like_any_other(self):
        a = gx.alert("zero-start", {"alertname": "zero"}, "0001-01-01T00:00:00Z")
        for n in range(3):
            status, _, body = self.post(gx.payload([a]))
            self.assertEqual(status, 200, body)
            self.assertEqual(body["stored"], 1 if n == 0 else 0)
        rows = self.row("zero-start")
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0][2], "0001-01-01 00:00:00+00")
        self.assertEqual(rows[0][1], 2)
        # The same alert twice in one payload: stored once.
        c = gx.alert("twice-in-one", {"alertname": "twice"}, "0001-01-01T00:00:00Z")
        status, _, body = self.post(gx.payload([c, c]))
        self.assertEqual((body["stored"], body["duplicates"]), (1, 1), body)
        self.assertEqual(len(set(body["notifications"])), 1)
        self.assertEqual([r[1] for r in self.row("twice-in-one")], [1])
        # Another start time is another notification.
        b = gx.alert("zero-start", {"alertname": "zero"}, "2024-01-01T00:00:00Z")
        self.assertEqual(self.post(gx.payload([b]))[2]["stored"], 1)

    def test_malformed_payloads_store_nothing(self):
        good = gx.alert("good-one", {"alertname": "ok"}, "2024-02-01T00:00:00Z")
        cases = [
            ("not json", None, b"this is not json", "invalid_json"),
            ("truncated json", None, json.dumps(gx.firing()).encode()[:-5], "invalid_json"),
            ("a list", [], None, "invalid_payload"),
            ("no alerts", {"receiver": "x"}, None, "invalid_payload"),
            ("alerts an object", {"alerts": {"a": 1}}, None, "invalid_payload"),
            ("alerts a string", {"alerts": "none"}, None, "invalid_payload"),
            ("alert a number", gx.payload([good, 3]), None, "invalid_payload"),
            ("startsAt unparsable", gx.payload([good, gx.alert("bad", {}, "yesterday at noon")]), None, "invalid_payload"),
            ("startsAt missing", gx.payload([good, {k: v for k, v in gx.alert("bad", {}, "x").items() if k != "startsAt"}]),
             None, "invalid_payload"),
            ("startsAt a number", gx.payload([good, gx.alert("bad", {}, 1700000000)]), None, "invalid_payload"),
            ("endsAt unparsable", gx.payload([good, gx.alert("bad", {}, "2024-01-01T00:00:00Z", ends_at="soon")]), None,
             "invalid_payload"),
            ("status unknown", gx.payload([good, gx.alert("bad", {}, "2024-01-01T00:00:00Z", status="pending")]), None,
             "invalid_payload"),
            ("label not a string", gx.payload([good, gx.alert("bad", {"n": 1}, "2024-01-01T00:00:00Z")]), None,
             "invalid_payload"),
            ("fingerprint not a string", gx.payload([good, gx.alert(7, {}, "2024-01-01T00:00:00Z")]), None, "invalid_payload"),
        ]
        before = table_state("tidewatch.notifications", "tidewatch.notification_outbox")
        for name, obj, raw, code in cases:
            with self.subTest(name):
                status, _, body = self.post(obj, raw=raw)
                self.assertEqual(status, 400, body)
                self.assertEqual(body["code"], code, body)
                self.assertTrue(body["message"])
        self.assertEqual(table_state("tidewatch.notifications", "tidewatch.notification_outbox"), before)

    def test_signatures(self):
        def case(fp):
            return json.dumps(gx.payload([gx.alert(fp, {"alertname": "signed"}, "2024-03-01T00:00:00Z")])).encode()

        now = str(int(time.time()))
        accepted = [
            ("body only, documented header", case("s1"), {"X-Grafana-Alerting-Signature": sign(case("s1"))}),
            ("body only, code's default header", case("s2"), {"X-Grafana-Alert-Signature": sign(case("s2"))}),
            ("with timestamp", case("s3"), {"X-Grafana-Alerting-Signature": sign(case("s3"), ts=now),
                                           "X-Grafana-Alerting-Timestamp": now}),
        ]
        for name, body, headers in accepted:
            with self.subTest(name):
                status, _, resp = self.post(None, token=None, raw=body, headers=headers)
                self.assertEqual((status, resp.get("stored")), (200, 1), resp)
        old = str(int(time.time()) - 400)
        refused = [
            ("no signature, no token", case("r1"), {}, "missing_signature"),
            ("wrong secret", case("r2"), {"X-Grafana-Alerting-Signature": sign(case("r2"), secret="nope")}, "invalid_signature"),
            ("signature of another body", case("r3"), {"X-Grafana-Alerting-Signature": sign(case("s1"))}, "invalid_signature"),
            ("not hex", case("r4"), {"X-Grafana-Alerting-Signature": "zz"}, "invalid_signature"),
            ("timestamp sent but not signed", case("r5"), {"X-Grafana-Alerting-Signature": sign(case("r5")),
                                                            "X-Grafana-Alerting-Timestamp": now}, "invalid_signature"),
            ("old timestamp", case("r6"), {"X-Grafana-Alerting-Signature": sign(case("r6"), ts=old),
                                           "X-Grafana-Alerting-Timestamp": old}, "stale_timestamp"),
            ("timestamp not a number", case("r7"), {"X-Grafana-Alerting-Signature": sign(case("r7"), ts="noon"),
                                                    "X-Grafana-Alerting-Timestamp": "noon"}, "invalid_timestamp"),
        ]
        before = table_state("tidewatch.notifications", "tidewatch.notification_outbox")
        for name, body, headers, code in refused:
            with self.subTest(name):
                status, _, resp = self.post(None, token=None, raw=body, headers=headers)
                self.assertEqual(status, 401, resp)
                self.assertEqual(resp["code"], code, resp)
        # A wrong token without a signature is refused; a read token is not a write token.
        self.assertEqual(self.post(None, token="wrong", raw=case("r8"))[0], 401)
        self.assertEqual(self.post(None, token=READ_TOKEN, raw=case("r9"))[0], 401)
        self.assertEqual(table_state("tidewatch.notifications", "tidewatch.notification_outbox"), before)
        # A valid write token needs no signature.
        status, _, resp = self.post(None, raw=case("t1"))
        self.assertEqual((status, resp["stored"]), (200, 1))

    def test_alerts_link_to_the_episodes_of_their_series_with_reasons(self):
        eps = psql("SELECT id, extract(epoch FROM started_at)::float8, coalesce(extract(epoch FROM ended_at)::float8, 'infinity') "
                   "FROM tidewatch.anomalies WHERE series ->> 'metric' = 'SCH.M1' AND series -> 'labels' ->> 'satellite' = 'SAT2' "
                   "ORDER BY started_at DESC, id DESC")
        self.assertTrue(eps, "the spikes of SAT2 made episodes")
        spike = self.t0 + 60 * 200
        starts, ends = spike + 60, spike + 600
        firing = gx.alert("ep-firing", {"alertname": "SCH.M1 anomaly", "metric": "SCH.M1", "satellite": "SAT2",
                                        "severity": "critical"}, iso(starts))
        resolved = gx.alert("ep-firing", {"alertname": "SCH.M1 anomaly", "metric": "SCH.M1", "satellite": "SAT2",
                                          "severity": "critical"}, iso(starts), status="resolved", ends_at=iso(ends))
        quiet = gx.alert("ep-quiet", {"alertname": "SCH.M1 anomaly", "metric": "SCH.M1", "satellite": "SAT1"}, iso(starts))
        # Tidewatch's own alert rules label the series as JSON (grafana/provisioning/alerting/rules.yaml).
        monitor = psql("SELECT monitor FROM tidewatch.anomalies LIMIT 1")[0][0]
        by_series = gx.alert("ep-series", {"alertname": "Anomaly episode", "monitor": monitor,
                                           "series": json.dumps({"labels": {"satellite": "SAT2"}, "metric": "SCH.M1"})},
                             iso(starts), status="resolved", ends_at=iso(ends))
        status, _, body = self.post(gx.payload([firing, resolved, quiet, by_series]))
        self.assertEqual(status, 200, body)

        def expect(lo, hi):
            """Overlapping [start - 30 min, end], nearest the alert's start first, at most 5."""
            hits = [(abs(float(e[1]) - starts), int(e[0])) for e in eps if float(e[1]) <= hi and float(e[2]) >= lo - 1800]
            return [i for _, i in sorted(hits)][:5]

        now = time.time()
        cases = [("ep-firing", "firing", expect(starts, now)), ("ep-firing", "resolved", expect(starts, ends)),
                 ("ep-quiet", "firing", []), ("ep-series", "resolved", expect(starts, ends))]
        self.assertTrue(expect(starts, ends), "an episode overlaps the resolved alert")
        for fp, st, want in cases:
            with self.subTest(fp=fp, status=st):
                (r,) = self.row(fp, st)
                got = r[8]
                self.assertEqual(got, want)
                reasons = r[9]
                oracle = []
                for ep in want:
                    for rank, reason in psql(f"SELECT rank, reason FROM tidewatch.explain_anomaly({ep}) ORDER BY rank LIMIT 3"):
                        oracle.append({"episode": ep, "rank": int(rank), "reason": reason})
                self.assertEqual(reasons, oracle)
                if want:
                    self.assertIn("Top reason: " + oracle[0]["reason"], r[7])
                    self.assertIn(f"/v1/anomalies/{want[0]}", r[7])
        # The severity label wins; without one, the episodes' highest severity.
        self.assertEqual(self.row("ep-firing")[0][10], "critical")
        want_sev = psql("SELECT severity FROM tidewatch.anomalies WHERE id = ANY('{%s}'::bigint[]) "
                        "ORDER BY array_position('{info,warning,critical}'::text[], severity) DESC LIMIT 1"
                        % ",".join(map(str, expect(starts, ends))))[0][0]
        self.assertEqual(self.row("ep-series", "resolved")[0][10], want_sev)

    def test_listing_with_delivery_state(self):
        a = gx.alert("list-1", {"alertname": "listed", "team": "x"}, "2024-04-01T00:00:00Z")
        b = gx.alert("list-1", {"alertname": "listed", "team": "x"}, "2024-04-01T00:00:00Z", status="resolved",
                     ends_at="2024-04-01T00:10:00Z")
        t_before = time.time() - 1
        status, _, body = self.post(gx.payload([a, b]))
        ids = body["notifications"]
        self.assertTrue(wait_for(lambda: outbox(f"n.fingerprint = 'list-1'") and
                                 all(r[1] == "delivered" for r in outbox("n.fingerprint = 'list-1'")), 30))
        status, _, body = self.svc.get("/v1/notifications?" + urllib.parse.urlencode({"from": iso(t_before)}))
        self.assertEqual(status, 200, body)
        got = {n["id"]: n for n in body["notifications"]}
        self.assertTrue(set(ids) <= set(got))
        n = got[ids[1]]
        self.assertEqual((n["status"], n["fingerprint"], n["ends_at"]), ("resolved", "list-1", "2024-04-01T00:10:00Z"))
        self.assertEqual([(d["route"], d["status"], d["idempotency_key"]) for d in n["deliveries"]],
                         [("all", "delivered", f"tidewatch-{ids[1]}-all")])
        self.assertEqual(n["alert"], b)
        # Filters, against psql.
        for params, where in [({"status": "resolved"}, "n.status = 'resolved'"),
                              ({"status": "firing"}, "n.status = 'firing'"),
                              ({"status": "dead"}, "EXISTS (SELECT 1 FROM tidewatch.notification_outbox o WHERE o.notification_id = n.id AND o.status = 'dead')"),
                              ({"from": iso(t_before)}, f"n.received_at >= '{iso(t_before)}'"),
                              ({"to": iso(t_before)}, f"n.received_at < '{iso(t_before)}'")]:
            with self.subTest(params=params):
                status, _, body = self.svc.get("/v1/notifications?" + urllib.parse.urlencode({**params, "limit": 1000}))
                self.assertEqual(status, 200, body)
                want = [int(r[0]) for r in psql(f"SELECT n.id FROM tidewatch.notifications n WHERE {where} "
                                                 "ORDER BY n.received_at DESC, n.id DESC")]
                self.assertEqual([x["id"] for x in body["notifications"]], want)
        for bad, code in [("status=bogus", "invalid_parameter"), ("from=yesterday", "invalid_parameter"),
                          ("limit=0", "invalid_parameter"), ("colour=red", "unknown_parameter")]:
            status, _, body = self.svc.get("/v1/notifications?" + bad)
            self.assertEqual((status, body["code"]), (400, code), bad)
        self.assertEqual(self.svc.get("/v1/notifications", token=None)[0], 401)

    def test_deliveries_retries_and_dead_letters(self):
        alerts = [gx.alert(f"deliver-{i}", {"alertname": "plain", "team": "a"}, "2024-05-01T00:00:00Z") for i in range(5)]
        alerts.append(gx.alert("deliver-flaky", {"alertname": "flaky"}, "2024-05-01T00:00:00Z"))
        alerts.append(gx.alert("deliver-refused", {"alertname": "refused"}, "2024-05-01T00:00:00Z"))
        alerts.append(gx.alert("deliver-nowhere", {"alertname": "nowhere", "route": "nowhere"}, "2024-05-01T00:00:00Z"))
        alerts.append(gx.alert("deliver-signed", {"alertname": "signed-route", "team": "signal"}, "2024-05-01T00:00:00Z"))
        status, _, body = self.post(gx.payload(alerts))
        self.assertEqual((status, body["stored"]), (200, len(alerts)), body)
        where = "n.fingerprint LIKE 'deliver-%'"
        done = lambda: all(r[1] in ("delivered", "dead") for r in outbox(where))  # noqa: E731
        self.assertTrue(wait_for(done, 60), outbox(where))
        rows = {r[0]: r for r in outbox(where)}
        self.assertEqual(len(rows), len(alerts) + 1, "the signed alert goes to two routes")
        ids = dict(zip([a["fingerprint"] for a in alerts], body["notifications"]))
        for i in range(5):
            self.assertEqual(rows[f"tidewatch-{ids[f'deliver-{i}']}-all"][1:4], ["delivered", "1", "200"])
        flaky = rows[f"tidewatch-{ids['deliver-flaky']}-all"]
        self.assertEqual(flaky[1:4], ["delivered", "3", "200"])
        refused = rows[f"tidewatch-{ids['deliver-refused']}-all"]
        self.assertEqual(refused[1:4], ["dead", "1", "400"], "a 400 is not retried")
        nowhere = rows[f"tidewatch-{ids['deliver-nowhere']}-nowhere"]
        self.assertEqual(nowhere[1:3], ["dead", "2"])
        self.assertTrue(nowhere[4], "the last error is kept")
        # Attempts history: flaky saw 500, 429, 200; Retry-After: 1 kept the third try >= 1 s after the second.
        att = psql(f"SELECT attempt, outcome, http_status, extract(epoch FROM at) FROM tidewatch.notification_attempts a "
                   f"JOIN tidewatch.notification_outbox o ON o.id = a.outbox_id WHERE o.idempotency_key = '{flaky[0]}' ORDER BY attempt")
        self.assertEqual([(r[0], r[1], r[2]) for r in att], [("1", "retry", "500"), ("2", "retry", "429"), ("3", "delivered", "200")])
        self.assertGreaterEqual(float(att[2][3]) - float(att[1][3]), 0.9)
        # The receiver: every delivered key exactly once among its accepted deliveries.
        with self.receiver.lock:
            accepted = dict(self.receiver.accepted)
            reqs = list(self.receiver.requests)
        delivered = {k for k, r in rows.items() if r[1] == "delivered"}
        self.assertEqual(delivered & set(accepted), delivered)
        self.assertEqual(sum(1 for k, *_ in reqs if k == flaky[0]), 3)
        body0 = accepted[f"tidewatch-{ids['deliver-0']}-all"]
        self.assertEqual((body0["notification_id"], body0["status"], body0["labels"]),
                         (ids["deliver-0"], "firing", {"alertname": "plain", "team": "a"}))
        self.assertEqual(body0["links"]["panel"], "http://grafana.local/d/x?viewPanel=1")
        # Our own signature on the signed route.
        skey = f"tidewatch-{ids['deliver-signed']}-signed"
        (h, raw), = [(h, r) for k, _, h, r in reqs if k == skey]
        self.assertEqual(h.get("x-tidewatch-signature"), sign(raw, secret="route-secret", ts=h.get("x-tidewatch-timestamp")))
        unsigned = [h for k, _, h, _ in reqs if k == f"tidewatch-{ids['deliver-signed']}-all"]
        self.assertEqual([h.get("x-tidewatch-signature") for h in unsigned], [None])


@require_service
class TimestampHeader(unittest.TestCase):
    def test_custom_timestamp_header(self):
        fresh_database()
        svc = Service(alert_hmac_secret=SECRET, alert_hmac_timestamp_header="X-My-Timestamp")
        try:
            body = json.dumps(gx.payload([gx.alert("custom-ts", {"alertname": "c"}, "2024-01-01T00:00:00Z")])).encode()
            now = str(int(time.time()))
            h = {"Content-Type": "application/json", "X-Grafana-Alerting-Signature": sign(body, ts=now)}
            # The default header is not the timestamp header any more: the signature is over the body alone.
            status, _, resp = svc.request("POST", PATH, body, headers={**h, "X-Grafana-Alerting-Timestamp": now}, token=None)
            self.assertEqual((status, resp["code"]), (401, "invalid_signature"))
            status, _, resp = svc.request("POST", PATH, body, headers={**h, "X-My-Timestamp": now}, token=None)
            self.assertEqual(status, 200, resp)
            old = str(int(time.time()) - 301 - 5)
            h2 = {"Content-Type": "application/json", "X-Grafana-Alerting-Signature": sign(body, ts=old), "X-My-Timestamp": old}
            status, _, resp = svc.request("POST", PATH, body, headers=h2, token=None)
            self.assertEqual((status, resp["code"]), (401, "stale_timestamp"))
            self.assertEqual(psql("SELECT count(*) FROM tidewatch.notifications")[0][0], "1")
        finally:
            svc.stop()


@require_service
class RouteConfiguration(unittest.TestCase):
    def check_config(self, routes, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEWATCH_")}
        env.update({"TIDEWATCH_DATABASE_URL": service_dsn(), "TIDEWATCH_WRITE_TOKENS": WRITE_TOKEN,
                    "TIDEWATCH_ALERT_ROUTES": routes, **extra})
        return subprocess.run([BIN, "check-config", "--offline"], env=env, capture_output=True, text=True, timeout=30)

    def test_routes_are_checked_at_start_and_secrets_not_shown(self):
        ok = self.check_config(json.dumps([{"name": "oncall", "kind": "webhook", "url": "http://127.0.0.1:1/x",
                                            "matchers": ["severity=critical", "sat=~SAT[0-9]+"], "hmac_secret": "route-s3cret"}]),
                               TIDEWATCH_ALERT_HMAC_SECRET="grafana-s3cret")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertIn("oncall (webhook)", ok.stdout)
        self.assertNotIn("s3cret", ok.stdout + ok.stderr)
        for routes, message in [
            ('[{"name": "x", "kind": "pager", "url": "http://a"}]', 'unknown kind "pager"'),
            ('[{"name": "x", "kind": "webhook", "url": "ftp://a"}]', "url must start with http"),
            ('[{"name": "x", "kind": "webhook", "url": "http://a", "matchers": ["sat=~("]}]', "bad regular expression"),
            ('[{"name": "x", "kind": "webhook", "url": "http://a", "matchers": ["severity"]}]', "has no operator"),
            ('[{"name": "x", "kind": "webhook", "url": "http://a"}, {"name": "x", "kind": "webhook", "url": "http://b"}]',
             'two routes are named "x"'),
            ('[{"name": "x", "kind": "webhook", "url": "http://a", "colour": "red"}]', "unknown field"),
            ("not json", "not a JSON array of routes"),
        ]:
            with self.subTest(routes):
                p = self.check_config(routes)
                self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
                self.assertIn(message, p.stderr)


@require_service
class KillDuringDeliveries(unittest.TestCase):
    def test_kill9_loses_nothing_and_the_receiver_sees_each_key_once(self):
        fresh_database()
        # Slow: each delivery takes a second, so that the kill finds some in flight.
        receiver = Receiver(delay=1.0)
        routes = [{"name": "hook", "kind": "webhook", "url": receiver.url, "max_attempts": 20}]
        settings = dict(alert_routes=json.dumps(routes), alert_retry_base="200ms", alert_retry_max="1s",
                        alert_delivery_timeout="2s")
        svc = Service(**settings)
        try:
            total = 0
            for batch in range(4):
                alerts = [gx.alert(f"k9-{batch}-{i}", {"alertname": "k9", "n": str(i)}, "2024-06-01T00:00:00Z")
                          for i in range(10)]
                status, _, body = svc.post_json(PATH, gx.payload(alerts))
                self.assertEqual((status, body["stored"]), (200, 10), body)
                total += 10
            # Kill once a second batch is on the wire (the first had at most 10).
            self.assertTrue(wait_for(lambda: receiver.started >= 12, 30, every=0.05), "deliveries started")
            kill9(svc)
            at_kill = dict(psql("SELECT status, count(*) FROM tidewatch.notification_outbox GROUP BY status"))
            self.assertGreater(int(at_kill.get("sending", 0)), 0, f"killed in the middle of deliveries: {at_kill}")
            self.assertGreater(int(at_kill.get("pending", 0)), 0, f"some not even tried: {at_kill}")
            svc = Service(**settings)
            self.assertTrue(wait_for(lambda: psql("SELECT count(*) FILTER (WHERE status = 'delivered'), count(*) "
                                                  "FROM tidewatch.notification_outbox")[0] == [str(total), str(total)], 90),
                            psql("SELECT status, count(*) FROM tidewatch.notification_outbox GROUP BY 1"))
            keys = {r[0] for r in psql("SELECT idempotency_key FROM tidewatch.notification_outbox")}
            self.assertEqual(len(keys), total)
            with receiver.lock:
                accepted = dict(receiver.accepted)
                raw = [k for k, *_ in receiver.requests]
            self.assertEqual(set(accepted), keys, "every notification reached the receiver")
            self.assertEqual(len(accepted), total, "none twice for a receiver that honours the key")
            # Deliveries in flight at the kill (and any that timed out) were sent again with the same
            # key; the receiver saw them and did not count them twice.
            self.assertGreater(len(raw), total)
            self.assertEqual(len(set(raw)), total)
            self.assertGreaterEqual(int(psql("SELECT count(*) FROM tidewatch.notification_outbox WHERE attempts > 1")[0][0]),
                                    int(at_kill["sending"]), "the deliveries cut off by the kill were sent again")
            status, _, body = svc.get("/v1/notifications?status=delivered&limit=1000", token=WRITE_TOKEN)
            self.assertEqual(len(body["notifications"]), total)
        finally:
            svc.stop()
            receiver.stop()


if __name__ == "__main__":
    unittest.main()
