"""Ingest through the real service: what goes in over HTTP is what psql reads back, in every
format, exactly once per (metric, labels, time) whatever the label order or the retries."""
import json
import unittest

from svctest import (Service, fresh_database, gz, one, psql, remote_write_body, require_service, READ_TOKEN,
                     WRITE_TOKEN)


def rows(sql):
    return psql(sql)


@require_service
class Ingest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        fresh_database()
        cls.svc = Service(read_tokens=READ_TOKEN)

    @classmethod
    def tearDownClass(cls):
        cls.svc.stop()

    def setUp(self):
        psql("TRUNCATE metrics; TRUNCATE logs")

    def test_tables_and_monitors_are_created(self):
        # The default layout, a hypertable, unique on (metric, labels, time), owned by the service role.
        self.assertEqual(rows("SELECT attname, format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = 'metrics'::regclass"
                              " AND attnum > 0 ORDER BY attnum"),
                         [["time", "timestamp with time zone"], ["metric", "text"], ["labels", "jsonb"],
                          ["value", "double precision"]])
        self.assertEqual(one("SELECT count(*) FROM tidewatch.hypertables WHERE hypertable = 'metrics'::regclass"), "1")
        self.assertEqual(one("SELECT relowner::regrole FROM pg_class WHERE oid = 'metrics'::regclass"), "tidewatch_service")
        # The server is set up for async monitors (wal_level = logical, the scheduler in this
        # database, the slot function granted by roles.sql): auto picks async.
        self.assertEqual(rows("SELECT name, mode, method, series_columns FROM tidewatch.monitors"),
                         [["public.metrics", "async", "auto", "{metric,labels}"]])
        self.assertEqual(rows("SELECT name, mode FROM tidewatch.log_monitors"), [["public.logs", "async"]])
        status, _, ready = self.svc.get("/readyz")
        self.assertEqual(status, 200)
        self.assertEqual((ready["metrics_monitor"], ready["logs_monitor"]), ("public.metrics", "public.logs"))

    def test_json_points_land_as_sent(self):
        points = [{"metric": "SCH.M1", "labels": {"satellite": f"SAT{i % 3}", "unit": "V"},
                   "ts": f"2026-03-02T10:{i // 60:02d}:{i % 60:02d}Z", "value": i * 0.25 - 3}
                  for i in range(500)]
        status, _, body = self.svc.post_json("/v1/metrics", points)
        self.assertEqual((status, body), (200, {"accepted": 500, "inserted": 500, "duplicates": 0, "skipped": 0}))
        got = rows("SELECT metric, labels ->> 'satellite', labels ->> 'unit', "
                   "to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), value FROM metrics ORDER BY time")
        self.assertEqual(len(got), 500)
        for g, p in zip(got, points):
            self.assertEqual(g[:4], [p["metric"], p["labels"]["satellite"], "V", p["ts"]])
            self.assertEqual(float(g[4]), p["value"])

    def test_retries_and_label_order_never_duplicate(self):
        a = [{"metric": "m", "labels": {"a": "1", "b": "2"}, "ts": 1772445600 + i, "value": i} for i in range(100)]
        b = [{"metric": "m", "labels": {"b": "2", "a": "1"}, "ts": 1772445600 + i, "value": i} for i in range(150)]
        self.assertEqual(self.svc.post_json("/v1/metrics", a)[2]["inserted"], 100)
        self.assertEqual(self.svc.post_json("/v1/metrics", a)[2], {"accepted": 100, "inserted": 0, "duplicates": 100, "skipped": 0})
        self.assertEqual(self.svc.post_json("/v1/metrics", b)[2], {"accepted": 150, "inserted": 50, "duplicates": 100, "skipped": 0})
        self.assertEqual(rows("SELECT count(*), count(DISTINCT (labels, time)) FROM metrics"), [["150", "150"]])
        # Duplicates within one batch are kept once too.
        self.assertEqual(self.svc.post_json("/v1/metrics", a[:5] + a[:5])[2]["inserted"], 0)

    def test_epoch_precisions_and_server_time(self):
        t = 1772445605
        for precision, ts in [("s", t), ("ms", t * 1000 + 123), ("us", t * 1_000_000 + 123456), ("ns", t * 10**9 + 123456789)]:
            status, _, _ = self.svc.post_json(f"/v1/metrics?precision={precision}",
                                              [{"metric": f"p_{precision}", "ts": ts, "value": 1}])
            self.assertEqual(status, 200, precision)
        self.assertEqual(rows("SELECT metric, (extract(epoch FROM time) * 1000000)::bigint FROM metrics ORDER BY metric"),
                         [["p_ms", str(t * 1_000_000 + 123000)], ["p_ns", str(t * 1_000_000 + 123456)],
                          ["p_s", str(t * 1_000_000)], ["p_us", str(t * 1_000_000 + 123456)]])
        before = float(one("SELECT extract(epoch FROM now())"))
        self.svc.post_json("/v1/metrics", [{"metric": "now", "value": 1}])
        after = float(one("SELECT extract(epoch FROM now())"))
        at = float(one("SELECT extract(epoch FROM time) FROM metrics WHERE metric = 'now'"))
        self.assertTrue(before - 1 <= at <= after + 1, (before, at, after))

    def test_line_protocol_on_both_paths_and_gzip(self):
        lp = ("weather,station=a\\ b,region=eu temp=12.5,humidity=80i,ok=true,note=\"x, y\" 1772445605000000000\n"
              "weather,region=eu,station=a\\ b value=3u 1772445606000000000\n")
        status, _, body = self.svc.post_text("/v1/metrics", lp)
        self.assertEqual((status, body), (200, {"accepted": 3, "inserted": 3, "duplicates": 0, "skipped": 2}))
        # Telegraf's InfluxDB v2 output: Token auth, gzip, precision in the query.
        status, _, body = self.svc.request("POST", "/api/v2/write?bucket=b&org=o&precision=s",
                                           gz("weather,station=c temp=1 1772445607\n"),
                                           headers={"Content-Encoding": "gzip", "Authorization": f"Token {WRITE_TOKEN}"})
        self.assertEqual((status, body), (204, b""))
        self.assertEqual(rows("SELECT metric, labels::text, value, extract(epoch FROM time)::bigint FROM metrics ORDER BY time, metric"),
                         [["weather_humidity", '{"region": "eu", "station": "a b"}', "80", "1772445605"],
                          ["weather_temp", '{"region": "eu", "station": "a b"}', "12.5", "1772445605"],
                          ["weather", '{"region": "eu", "station": "a b"}', "3", "1772445606"],
                          ["weather_temp", '{"station": "c"}', "1", "1772445607"]])

    def test_remote_write(self):
        body = remote_write_body([
            ({"__name__": "up", "job": "node", "instance": "a:9100"}, [(1.0, 1772445600000), (0.0, 1772445615000)]),
            ({"__name__": "node_load1", "instance": "a:9100"}, [(0.42, 1772445600000), (0.5, 1772445615000)]),
        ])
        status, _, data = self.svc.request("POST", "/api/v1/write", body, headers={
            "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0"})
        self.assertEqual((status, data), (204, b""))
        self.assertEqual(rows("SELECT metric, labels::text, value, (extract(epoch FROM time) * 1000)::bigint FROM metrics ORDER BY metric, time"),
                         [["node_load1", '{"instance": "a:9100"}', "0.42", "1772445600000"],
                          ["node_load1", '{"instance": "a:9100"}', "0.5", "1772445615000"],
                          ["up", '{"job": "node", "instance": "a:9100"}', "1", "1772445600000"],
                          ["up", '{"job": "node", "instance": "a:9100"}', "0", "1772445615000"]])

    def test_remote_write_skips_stale_markers(self):
        import struct
        stale = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
        body = remote_write_body([({"__name__": "up", "job": "x"}, [(1.0, 1772445600000), (stale, 1772445615000)])])
        status, _, _ = self.svc.request("POST", "/api/v1/write", body, headers={"Content-Encoding": "snappy"})
        self.assertEqual(status, 204)
        self.assertEqual(one("SELECT count(*) FROM metrics"), "1")

    def test_logs_json_lines_and_text(self):
        ndjson = "\n".join(json.dumps(x) for x in [
            {"ts": "2026-03-02T10:00:00Z", "source": "etl", "labels": {"job": "nightly"}, "message": "ERROR: deadlock detected"},
            {"ts": 1772445601, "message": "could not connect to server: Connection refused"},
        ])
        status, _, body = self.svc.request("POST", "/v1/logs?source=web&labels=%7B%22env%22%3A%22prod%22%7D", ndjson,
                                           headers={"Content-Type": "application/x-ndjson"})
        self.assertEqual((status, body), (200, {"accepted": 2}))
        status, _, body = self.svc.request("POST", "/v1/logs?source=batch", gz("line one\n\nline two\n"),
                                           headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"})
        self.assertEqual((status, body), (200, {"accepted": 2}))
        self.assertEqual(rows("SELECT source, labels::text, message FROM logs ORDER BY time, message"),
                         [["etl", '{"job": "nightly"}', "ERROR: deadlock detected"],
                          ["web", '{"env": "prod"}', "could not connect to server: Connection refused"],
                          ["batch", "{}", "line one"], ["batch", "{}", "line two"]])
        # The log monitor classifies them (async: after the decoder's next poll).
        psql("SELECT tidewatch.monitor_wait()")
        self.assertEqual(rows("SELECT category, sum(n) FROM tidewatch.log_counts WHERE monitor = 'public.logs' "
                              "AND category IN ('lock', 'connection') GROUP BY 1 ORDER BY 1"),
                         [["connection", "1"], ["lock", "1"]])

    def test_pushed_metrics_are_scored_without_sql(self):
        # Two hours of one series every 10 s with one spike: the monitor the service put on the
        # table opens an episode, checked against the extension's batch detector as oracle.
        import math
        pts = [{"metric": "temp", "labels": {"site": "x"}, "ts": 1772445600 + 10 * i,
                "value": 20 + math.sin(i / 30) + (15 if i == 600 else 0) + 0.05 * ((i * 7919) % 13)}
               for i in range(720)]
        for k in range(0, 720, 240):
            self.assertEqual(self.svc.post_json("/v1/metrics", pts[k:k + 240])[0], 200)
        psql("SELECT tidewatch.monitor_wait()")
        episodes = rows("SELECT extract(epoch FROM started_at)::bigint, kind FROM tidewatch.anomalies "
                        "WHERE monitor = 'public.metrics' ORDER BY started_at")
        oracle = rows("SELECT extract(epoch FROM ts)::bigint FROM tidewatch.detect_anomalies('metrics', 'value', "
                      "'{metric,labels}', anomalies_only => true) ORDER BY ts")
        self.assertIn([str(1772445600 + 6000), "spike"], episodes)
        self.assertIn([str(1772445600 + 6000)], oracle)


if __name__ == "__main__":
    unittest.main()
