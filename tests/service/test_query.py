"""Query endpoints against independent oracles: the points the test sent (series, points,
time_bucket aggregates computed in Python), and psql for what the extension computed (episodes,
explanations, drift results, log counts)."""
import json
import math
import time
import unittest
import urllib.parse
from collections import defaultdict
from datetime import datetime, timezone

from svctest import READ_TOKEN, WRITE_TOKEN, Service, fresh_database, psql, require_service

STEP = 60
N = 360  # six hours a minute apart


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def q(params):
    return urllib.parse.urlencode(params)


def value(sat, i):
    # A daily-ish wave, a little deterministic noise, and spikes at known places.
    v = 20 + 2 * math.sin(i / 40) + 0.1 * (((i * 7919 + sat * 104729) % 17) / 17 - 0.5)
    if sat == 2 and i in (200, 300):
        v += 12
    if sat == 3 and i == 250:
        v -= 12
    return round(v, 6)


@require_service
class Query(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        fresh_database()
        cls.svc = Service(read_tokens=READ_TOKEN)
        # Keep the missing-data job out of the way: the comparisons below read the same episodes twice.
        psql("SELECT tidewatch.alter_job(job_id, scheduled => false) FROM tidewatch.monitors")
        cls.t0 = (int(time.time()) // 3600 - 7) * 3600
        cls.sent = []
        for sat in (1, 2, 3):
            pts = [{"metric": "SCH.M1", "labels": {"satellite": f"SAT{sat}"}, "ts": cls.t0 + STEP * i, "value": value(sat, i)}
                   for i in range(N)]
            cls.sent += pts
            for k in range(0, N, 120):
                status, _, body = cls.svc.post_json("/v1/metrics", pts[k:k + 120])
                assert status == 200, body
        status, _, _ = cls.svc.post_json("/v1/metrics", [{"metric": "other", "ts": cls.t0, "value": 1}])
        assert status == 200
        # Logs: a quiet hour, then a burst of timeouts.
        lines = [{"ts": cls.t0 + 10 * i, "source": "etl", "message": f"request handled in {i % 90} ms"} for i in range(360)]
        lines += [{"ts": cls.t0 + 3600 + 3 * i, "source": "etl", "message": f"read timeout after {3000 + i} ms talking to db-{i % 3}"}
                  for i in range(47)]
        lines += [{"ts": cls.t0 + 3700 + i, "source": "etl", "message": "ERROR: deadlock detected"} for i in range(5)]
        status, _, _ = cls.svc.request("POST", "/v1/logs", "\n".join(json.dumps(x) for x in lines),
                                       headers={"Content-Type": "application/x-ndjson"})
        assert status == 200
        cls.logs = lines
        psql("SELECT tidewatch.monitor_wait()")

    @classmethod
    def tearDownClass(cls):
        cls.svc.stop()

    def test_series(self):
        status, _, body = self.svc.get("/v1/series")
        self.assertEqual(status, 200)
        oracle = defaultdict(list)
        for p in self.sent:
            oracle[(p["metric"], json.dumps(p["labels"], sort_keys=True))].append(p["ts"])
        oracle[("other", "{}")] = [self.t0]
        got = {(s["metric"], json.dumps(s["labels"], sort_keys=True)): (s["first"], s["last"], s["count"]) for s in body["series"]}
        self.assertEqual(got, {k: (iso(min(v)), iso(max(v)), len(v)) for k, v in oracle.items()})
        _, _, body = self.svc.get("/v1/series?" + q({"metric": "SCH.M1", "labels": '{"satellite": "SAT2"}'}))
        self.assertEqual([s["labels"] for s in body["series"]], [{"satellite": "SAT2"}])
        _, _, body = self.svc.get("/v1/series?limit=2")
        self.assertEqual(len(body["series"]), 2)

    def test_raw_points_and_buckets(self):
        base = {"metric": "SCH.M1", "labels": '{"satellite": "SAT1"}', "from": iso(self.t0), "to": iso(self.t0 + 3600)}
        status, _, body = self.svc.get("/v1/series/points?" + q(base))
        self.assertEqual(status, 200, body)
        (series,) = body["series"]
        want = [(iso(p["ts"]), p["value"]) for p in self.sent
                if p["labels"]["satellite"] == "SAT1" and self.t0 <= p["ts"] < self.t0 + 3600]
        self.assertEqual([(p["ts"], p["value"]) for p in series["points"]], want)
        # time_bucket(5 minutes): mean, min, max, count per bucket, computed here.
        _, _, body = self.svc.get("/v1/series/points?" + q({**base, "step": "5m"}))
        buckets = defaultdict(list)
        for ts, v in [(p["ts"], p["value"]) for p in self.sent
                      if p["labels"]["satellite"] == "SAT1" and self.t0 <= p["ts"] < self.t0 + 3600]:
            buckets[ts // 300 * 300].append(v)
        got = [(p["ts"], round(p["value"], 9), p["min"], p["max"], p["count"]) for p in body["series"][0]["points"]]
        self.assertEqual(got, [(iso(b), round(sum(v) / len(v), 9), min(v), max(v), len(v)) for b, v in sorted(buckets.items())])
        self.assertEqual(body["step_seconds"], 300)

    def test_points_carry_the_monitors_band(self):
        params = {"metric": "SCH.M1", "labels": '{"satellite": "SAT2"}', "from": iso(self.t0 + 100 * STEP),
                  "to": iso(self.t0 + N * STEP)}
        _, _, body = self.svc.get("/v1/series/points?" + q(params))
        (series,) = body["series"]
        self.assertEqual(series["band"], "monitor:public.metrics")
        pts = series["points"]
        self.assertEqual(len(pts), N - 100)
        for p in pts:
            self.assertLessEqual(p["lower"], p["expected"])
            self.assertLessEqual(p["expected"], p["upper"])
        flagged = [p["ts"] for p in pts if p["is_anomaly"]]
        self.assertIn(iso(self.t0 + 200 * STEP), flagged)
        self.assertIn(iso(self.t0 + 300 * STEP), flagged)
        spike = next(p for p in pts if p["ts"] == iso(self.t0 + 200 * STEP))
        self.assertGreater(spike["value"], spike["upper"])
        # The same with a step: each bucket's band envelopes its points' bands.
        _, _, body = self.svc.get("/v1/series/points?" + q({**params, "step": "10m"}))
        buckets = body["series"][0]["points"]
        self.assertEqual(sum(b["count"] for b in buckets), N - 100)
        for b in buckets:
            inside = [p for p in pts if b["ts"] <= p["ts"] < iso(datetime.fromisoformat(b["ts"]).timestamp() + 600)]
            self.assertAlmostEqual(b["lower"], min(p["lower"] for p in inside), places=9)
            self.assertAlmostEqual(b["upper"], max(p["upper"] for p in inside), places=9)
            self.assertEqual(b["is_anomaly"], any(p["is_anomaly"] for p in inside))

    def sql_episodes(self, where="true"):
        rows = psql(f"SELECT id, extract(epoch FROM started_at)::bigint FROM tidewatch.anomalies WHERE {where} "
                    "ORDER BY started_at DESC, id DESC")
        return [int(r[0]) for r in rows]

    def test_anomalies_match_the_catalog_and_pages_cover_each_once(self):
        all_ids = self.sql_episodes()
        self.assertGreaterEqual(len(all_ids), 3, "the spikes should have opened episodes")
        status, _, body = self.svc.get("/v1/anomalies")
        self.assertEqual(status, 200)
        self.assertEqual([a["id"] for a in body["anomalies"]], all_ids)
        self.assertIsNone(body["next_cursor"])
        seen, cursor, pages = [], None, 0
        while True:
            _, _, page = self.svc.get("/v1/anomalies?" + q({"limit": 2, **({"cursor": cursor} if cursor else {})}))
            seen += [a["id"] for a in page["anomalies"]]
            pages += 1
            cursor = page["next_cursor"]
            if not cursor:
                break
        self.assertEqual(seen, all_ids)
        # Each page fetches one row more than it shows: no empty last page.
        self.assertEqual(pages, max(1, math.ceil(len(all_ids) / 2)))

    def test_anomaly_filters(self):
        cases = [
            ({"metric": "SCH.M1"}, "series ->> 'metric' = 'SCH.M1'"),
            ({"labels": '{"satellite": "SAT2"}'}, "series -> 'labels' @> '{\"satellite\": \"SAT2\"}'"),
            ({"kind": "spike,dip"}, "kind IN ('spike', 'dip')"),
            ({"kind": "log_burst"}, "kind = 'log_burst'"),
            ({"severity": "critical"}, "severity = 'critical'"),
            ({"monitor": "public.logs"}, "monitor = 'public.logs'"),
            ({"from": iso(self.t0 + 250 * STEP)}, f"coalesce(ended_at, 'infinity') >= to_timestamp({self.t0 + 250 * STEP})"),
            ({"to": iso(self.t0 + 250 * STEP)}, f"started_at < to_timestamp({self.t0 + 250 * STEP})"),
        ]
        for params, where in cases:
            with self.subTest(params):
                _, _, body = self.svc.get("/v1/anomalies?" + q(params))
                self.assertEqual([a["id"] for a in body["anomalies"]], self.sql_episodes(where))
        # The log burst is an episode too.
        self.assertTrue(self.sql_episodes("kind = 'log_burst'"))

    def test_one_anomaly_with_its_explanation(self):
        aid = self.sql_episodes("series -> 'labels' ->> 'satellite' = 'SAT2'")[-1]
        status, _, body = self.svc.get(f"/v1/anomalies/{aid}")
        self.assertEqual(status, 200)
        a = body["anomaly"]
        row = psql(f"SELECT monitor, series::text, extract(epoch FROM started_at)::bigint, kind, severity, peak_value "
                   f"FROM tidewatch.anomalies WHERE id = {aid}")[0]
        self.assertEqual([a["monitor"], a["series"], a["started_at"], a["kind"], a["severity"], a["peak_value"]],
                         [row[0], json.loads(row[1]), iso(int(row[2])), row[3], row[4], float(row[5])])
        self.assertEqual((a["metric"], a["labels"]), ("SCH.M1", {"satellite": "SAT2"}))
        reasons = psql(f"SELECT rank, reason FROM tidewatch.explain_anomaly({aid})")
        self.assertEqual([[str(r["rank"]), r["reason"]] for r in body["explanation"]], reasons)
        self.assertIn("detector fired", body["explanation"][0]["reason"])

    def test_drift(self):
        # The data end at the start of the hour before last: a 2-hour window was empty in the last
        # minute of an hour (a '*' row, CI at 11:59); 3 hours always hold an hour of data.
        psql(f"SELECT tidewatch.monitor_drift('m_drift', 'metrics', tstzrange(to_timestamp({self.t0}), to_timestamp({self.t0 + 3600})),"
             " interval '3 hours', interval '1 day', columns => '{value}')")
        psql("SELECT count(*) FROM tidewatch.run_drift_monitor('m_drift')")
        want = psql("SELECT column_name, method, statistic, drifted FROM tidewatch.drift_results WHERE monitor = 'm_drift'")
        status, _, body = self.svc.get("/v1/drift?monitor=m_drift")
        self.assertEqual(status, 200)
        got = [[r["column_name"], r["method"], r["statistic"], r["drifted"]] for r in body["results"]]
        self.assertEqual(len(got), len(want))
        for g, w in zip(got, want):
            self.assertEqual(g[:2], w[:2])
            self.assertAlmostEqual(g[2], float(w[2]), places=9)
            self.assertEqual(g[3], w[3] == "t")
        _, _, body = self.svc.get("/v1/drift?monitor=nope")
        self.assertEqual(body["results"], [])

    def test_log_templates_and_errors(self):
        status, _, body = self.svc.get("/v1/logs/templates")
        self.assertEqual(status, 200)
        self.assertEqual(body["miner"], "public.logs")
        by_template = {t["template"]: t["count"] for t in body["templates"]}
        self.assertEqual(sorted(by_template.values()), [5, 47, 360])
        self.assertEqual(sum(by_template.values()), len(self.logs))
        timeouts = next(t for t in by_template if t.startswith("read timeout after <*>"))
        status, _, body = self.svc.get("/v1/logs/errors")
        self.assertEqual(status, 200)
        counts = {(e["category"], e["template"]): e["count"] for e in body["errors"]}
        self.assertEqual(counts, {("timeout", timeouts): 47, ("lock", "ERROR: deadlock detected"): 5})
        _, _, body = self.svc.get("/v1/logs/errors?category=lock")
        self.assertEqual([e["count"] for e in body["errors"]], [5])
        # Counts are per minute: a minute counts when it starts in [from, to).
        for start in (self.t0 + 3660, self.t0 + 3700):
            _, _, body = self.svc.get("/v1/logs/errors?" + q({"from": iso(start)}))
            self.assertEqual(sum(e["count"] for e in body["errors"]),
                             sum(1 for x in self.logs if x["ts"] // 60 * 60 >= start and "handled" not in x["message"]))

    def test_read_tokens(self):
        self.assertEqual(self.svc.get("/v1/series", token=None)[0], 401)
        self.assertEqual(self.svc.get("/v1/series", token=READ_TOKEN)[0], 200)
        self.assertEqual(self.svc.get("/v1/series", token=WRITE_TOKEN)[0], 200)
        self.assertEqual(self.svc.get("/v1/series", token="guess")[0], 401)

    def test_reads_are_open_without_read_tokens(self):
        open_svc = Service()
        try:
            self.assertEqual(open_svc.get("/v1/series", token=None)[0], 200)
            self.assertEqual(open_svc.get("/v1/anomalies", token=None)[0], 200)
            # Writes never are.
            self.assertEqual(open_svc.post_json("/v1/metrics", [{"metric": "x", "value": 1}], token=None)[0], 401)
        finally:
            open_svc.stop()


if __name__ == "__main__":
    unittest.main()
