"""Operations: health, readiness, Prometheus metrics counted against the requests the test made,
the OpenAPI document against the list of endpoints the service must have, the /docs page served
from the binary, limits (concurrency, pool, timeout) and the monitor setting."""
import json
import re
import subprocess
import threading
import time
import unittest
import urllib.parse

from svctest import DB, DSN, READ_TOKEN, Service, fresh_database, one, psql, require_service, wait_for

# Every endpoint of issue 12 (the oracle for the OpenAPI document).
ENDPOINTS = [
    ("post", "/v1/metrics"), ("post", "/api/v2/write"), ("post", "/api/v1/write"), ("post", "/v1/logs"),
    ("get", "/v1/series"), ("get", "/v1/series/points"), ("get", "/v1/anomalies"), ("get", "/v1/anomalies/{id}"),
    ("get", "/v1/drift"), ("get", "/v1/logs/templates"), ("get", "/v1/logs/errors"),
    ("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"),
    ("post", "/v1/alerts/grafana"), ("get", "/v1/notifications"), ("post", "/v1/notifications/test"),
]
# Endpoints that also take another credential than the bearer token.
SECURITY = {"/v1/alerts/grafana": [{"bearer": []}, {"grafana_signature": []}]}
# The assistant (issue 13).
ENDPOINTS += [("get", "/v1/ask"), ("post", "/v1/ask")]


def hold_lock(seconds):
    """A superuser session that locks the metrics table against writes (not reads) for a while."""
    p = subprocess.Popen(["psql", "-X", "-q", "-d", f"{DSN} dbname={DB}", "-c",
                          f"BEGIN; LOCK TABLE metrics IN EXCLUSIVE MODE; SELECT pg_sleep({seconds}); COMMIT;"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if wait_for(lambda: one("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                            "WHERE c.relname = 'metrics' AND l.mode = 'ExclusiveLock' AND l.granted") == "1", 10, 0.05):
        return p
    p.kill()
    raise AssertionError("could not take the lock")


def in_thread(fn):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", fn()))
    t.start()
    return t, out


@require_service
class Ops(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        fresh_database()
        cls.svc = Service(read_tokens=READ_TOKEN)

    @classmethod
    def tearDownClass(cls):
        cls.svc.stop()

    def test_health_and_readiness(self):
        status, _, body = self.svc.get("/healthz", token=None)
        self.assertEqual((status, body["status"]), (200, "ok"))
        status, _, body = self.svc.get("/readyz", token=None)
        self.assertEqual((status, body["status"]), (200, "ready"))
        self.assertEqual(body["extension_version"], one("SELECT extversion FROM pg_extension WHERE extname = 'tidewatch'"))

    def test_prometheus_metrics_count_what_happened(self):
        def scrape():
            _, _, text = self.svc.get("/metrics", token=None)
            return text.decode()

        def value(text, name, **labels):
            want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            for line in text.splitlines():
                m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
                if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == want:
                    return float(m.group(3))
            return 0.0

        before = scrape()
        ok = [self.svc.post_json("/v1/metrics", [{"metric": "c", "ts": 1772445600 + i, "value": i}, {"metric": "c", "ts": 1772445600 + i, "value": i}])
              for i in range(7)]
        bad = [self.svc.post_json("/v1/metrics", [{"metric": "", "value": 1}]) for _ in range(3)]
        self.assertEqual([s for s, _, _ in ok], [200] * 7)
        self.assertEqual([s for s, _, _ in bad], [400] * 3)
        after = scrape()

        def delta(name, **labels):
            return value(after, name, **labels) - value(before, name, **labels)

        self.assertEqual(delta("tidewatch_http_requests_total", route="/v1/metrics", method="POST", status="200"), 7)
        self.assertEqual(delta("tidewatch_http_requests_total", route="/v1/metrics", method="POST", status="400"), 3)
        self.assertEqual(delta("tidewatch_points_ingested_total", format="json"), 7)
        self.assertEqual(delta("tidewatch_points_duplicate_total", format="json"), 7)
        self.assertEqual(delta("tidewatch_requests_rejected_total", reason="invalid_metric"), 3)
        self.assertEqual(delta("tidewatch_http_request_duration_seconds_count", route="/v1/metrics"), 10)
        self.assertGreaterEqual(value(after, "tidewatch_http_request_duration_seconds_bucket", route="/v1/metrics", le="+Inf"), 10)
        for gauge in ("tidewatch_pool_size", "tidewatch_pool_available", "tidewatch_pool_waiters", "tidewatch_pool_max_size"):
            self.assertIn(f"\n{gauge} ", "\n" + after)
        self.assertEqual(value(after, "tidewatch_pool_max_size"), 16)

    def test_openapi_documents_every_endpoint(self):
        status, _, doc = self.svc.get("/openapi.json", token=None)
        self.assertEqual(status, 200)
        self.assertTrue(doc["openapi"].startswith("3."))
        documented = {(m, p) for p, ops in doc["paths"].items() for m in ops if m in ("get", "post", "put", "delete", "patch")}
        self.assertEqual(documented - set(ENDPOINTS), set(), "documented but not in the issue's list (update the test)")
        self.assertEqual(set(ENDPOINTS) - documented, set(), "endpoints missing from the OpenAPI document")
        self.assertIn("bearer", doc["components"]["securitySchemes"])
        self.assertIn("ErrorBody", doc["components"]["schemas"])
        for method, path in ENDPOINTS:
            op = doc["paths"][path][method]
            codes = set(op["responses"])
            self.assertTrue(any(c.startswith("2") for c in codes), (method, path))
            if path.startswith(("/v1", "/api")):
                self.assertTrue({"400", "401"} <= codes or path == "/v1/anomalies/{id}" and "404" in codes, (method, path, codes))
                for c in codes - {"200", "204"}:
                    ref = json.dumps(op["responses"][c])
                    self.assertIn("ErrorBody", ref, (method, path, c))
                self.assertEqual(op.get("security"), SECURITY.get(path, [{"bearer": []}]), (method, path))
        # Every documented route is served (not the 404 of unknown routes).
        for method, path in ENDPOINTS:
            status, _, body = self.svc.request(method.upper(), path.replace("{id}", "1"), b"", token=None)
            self.assertFalse(status == 404 and isinstance(body, dict) and "no such endpoint" in body["message"], (method, path))

    def test_docs_page_is_served_from_the_binary(self):
        status, headers, html = self.svc.get("/docs/", token=None)
        self.assertEqual(status, 200)
        html = html.decode()
        self.assertIn("swagger-ui", html)
        # No CDN: every script and stylesheet is relative to this server.
        refs = re.findall(r'(?:src|href)="([^"]+)"', html)
        self.assertTrue(refs)
        for ref in refs:
            self.assertFalse(ref.startswith(("http:", "https:", "//")), ref)
            status, _, asset = self.svc.get(urllib.parse.urljoin("/docs/", ref), token=None)
            self.assertEqual(status, 200, ref)
            self.assertGreater(len(asset), 100, ref)
        _, _, init = self.svc.get("/docs/swagger-initializer.js", token=None)
        self.assertIn("/openapi.json", init.decode())
        # /docs itself leads there.
        status, _, _ = self.svc.get("/docs", token=None)
        self.assertEqual(status, 200)


@require_service
class Limits(unittest.TestCase):
    """Each case its own instance, with small limits."""

    @classmethod
    def setUpClass(cls):
        fresh_database()
        Service().stop()  # create the tables once

    def test_concurrency_limit_answers_503_at_once(self):
        svc = Service(max_concurrency=1)
        lock = hold_lock(3)
        try:
            t, slow = in_thread(lambda: svc.post_json("/v1/metrics", [{"metric": "slow", "value": 1}]))
            time.sleep(0.5)
            start = time.monotonic()
            status, headers, body = svc.post_json("/v1/metrics", [{"metric": "fast", "value": 1}])
            self.assertLess(time.monotonic() - start, 1.0, "refused at once, not queued")
            self.assertEqual((status, body["code"]), (503, "overloaded"))
            self.assertEqual(headers.get("Retry-After"), "1")
            self.assertEqual(svc.get("/healthz", token=None)[0], 200, "probes are not limited")
            t.join()
            self.assertEqual(slow["r"][0], 200)
        finally:
            lock.wait()
            svc.stop()

    def test_exhausted_pool_answers_503(self):
        svc = Service(pool_size=1, pool_timeout="300ms")
        lock = hold_lock(3)
        try:
            t, slow = in_thread(lambda: svc.post_json("/v1/metrics", [{"metric": "held", "ts": 1772445600, "value": 1}]))
            time.sleep(0.5)
            status, headers, body = svc.get("/v1/series", token=None)
            self.assertEqual((status, body["code"]), (503, "pool_exhausted"))
            self.assertEqual(headers.get("Retry-After"), "1")
            t.join()
            self.assertEqual(slow["r"][0], 200)
            self.assertEqual(one("SELECT count(*) FROM metrics WHERE metric = 'held'"), "1")
        finally:
            lock.wait()
            svc.stop()

    def test_request_timeout(self):
        svc = Service(request_timeout="1s")
        lock = hold_lock(3)
        try:
            start = time.monotonic()
            status, headers, body = svc.post_json("/v1/metrics", [{"metric": "late", "ts": 1772445600, "value": 1}])
            self.assertLess(time.monotonic() - start, 2.5)
            self.assertEqual((status, body["code"]), (503, "timeout"))
            self.assertEqual(headers.get("Retry-After"), "1")
        finally:
            lock.wait()
        try:
            # The write was not cut off mid-COPY: its transaction ended cleanly (here it committed
            # once the lock went), and a retry adds nothing.
            self.assertTrue(wait_for(lambda: one("SELECT count(*) FROM metrics WHERE metric = 'late'") == "1", 10))
            status, _, body = svc.post_json("/v1/metrics", [{"metric": "late", "ts": 1772445600, "value": 1}])
            self.assertEqual((status, body["inserted"]), (200, 0))
        finally:
            svc.stop()


@require_service
class MonitorSetting(unittest.TestCase):
    def test_off_sync_and_a_table_of_the_wrong_shape(self):
        fresh_database()
        svc = Service(monitor="off")
        try:
            self.assertEqual(one("SELECT count(*) FROM tidewatch.monitors") + one("SELECT count(*) FROM tidewatch.log_monitors"), "00")
            svc.post_json("/v1/metrics", [{"metric": "m", "ts": 1772445600 + i, "value": i} for i in range(5)])
            _, _, body = svc.get("/v1/series/points?metric=m&from=1772445600&to=1772445700", token=None)
            self.assertIsNone(body["series"][0]["band"])
            self.assertNotIn("expected", body["series"][0]["points"][0])
        finally:
            svc.stop()
        fresh_database()
        psql("CREATE SCHEMA ops; GRANT USAGE, CREATE ON SCHEMA ops TO tidewatch_service")
        svc = Service(monitor="sync", metrics_table="ops.telemetry", logs_table="ops_logs")
        try:
            self.assertEqual(psql("SELECT name, relid::regclass::text, mode FROM tidewatch.monitors"),
                             [["ops.telemetry", "ops.telemetry", "sync"]])
            self.assertEqual(psql("SELECT name, mode FROM tidewatch.log_monitors"), [["public.ops_logs", "sync"]])
        finally:
            svc.stop()

    def test_refuses_a_table_it_cannot_write_idempotently(self):
        fresh_database()
        psql("CREATE TABLE metrics (time timestamptz NOT NULL, metric text, labels jsonb, value float8);"
             "GRANT ALL ON metrics TO tidewatch_service")
        with self.assertRaises(AssertionError) as e:
            Service()
        self.assertIn("CREATE UNIQUE INDEX ON public.metrics (metric, labels, time)", str(e.exception))
        psql("DROP TABLE metrics; CREATE TABLE metrics (time timestamptz, metric text, labels text, value float8)")
        with self.assertRaises(AssertionError) as e:
            Service()
        self.assertIn('column "labels" of the metrics table public.metrics has type text, expected jsonb', str(e.exception))


if __name__ == "__main__":
    unittest.main()
