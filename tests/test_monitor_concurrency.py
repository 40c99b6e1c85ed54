"""Real-time monitors under concurrent writers: no deadlock, no lost row, one state per series."""
import unittest

from pgtest import psql, one, fresh_database, require_cluster, run_concurrently


@require_cluster
class MonitorConcurrencyTest(unittest.TestCase):
    def setUp(self):
        fresh_database()
        psql("CREATE TABLE live (ts timestamptz NOT NULL, sat text, value float8);"
             "SELECT tidewatch.create_hypertable('live', 'ts');"
             "SELECT tidewatch.monitor('live_mon', 'live', 'value', '{sat}', 'ewma');"
             # The missing-data job would run against these 2026-01 timestamps; keep it out of the way.
             "SELECT tidewatch.alter_job(job_id, scheduled => false) FROM tidewatch.monitors")

    def test_concurrent_inserts_into_the_same_series(self):
        writers, batches, per_batch = 4, 10, 200

        def writer(w):
            # Each writer touches the same 8 series, listed in a different order, in every batch.
            order = "ASC" if w % 2 == 0 else "DESC"
            for b in range(batches):
                psql(f"INSERT INTO live SELECT timestamptz '2026-01-01' + ({w} * {batches} + {b}) * interval '1 hour'"
                     f" + i * interval '1 second', 'SAT' || (i % 8), 10 + random()"
                     f" FROM generate_series(1, {per_batch}) i ORDER BY i % 8 {order}")

        self.assertEqual(run_concurrently(writers, writer), [])
        total = writers * batches * per_batch
        self.assertEqual(int(one("SELECT count(*) FROM live")), total)
        # Every row was scored exactly once (late rows included), in one state row per series.
        self.assertEqual(int(one("SELECT sum(n) FROM tidewatch.monitor_state")), total)
        self.assertEqual(int(one("SELECT count(*) FROM tidewatch.monitor_state")), 8)


if __name__ == "__main__":
    unittest.main()
