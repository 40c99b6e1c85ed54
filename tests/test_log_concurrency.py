"""Log mining from several connections: no duplicate template, no deadlock, no lost count; a log
monitor fed by concurrent COPY-sized inserts counts every line once."""
import unittest

from pgtest import psql, one, fresh_database, require_cluster, run_concurrently

# Eight kinds of lines; every writer sends all of them, in its own order, so that two sessions
# meet each new template at about the same time.
KINDS = [
    "Connection to 10.0.{i}.1:5432 refused",
    "Loaded {i} rows into staging.orders",
    "Task load_{i} finished with state SUCCESS",
    "Task load_{i} finished with state FAILED",
    "read timeout after {i} ms talking to db-1",
    "User u{i} logged in from 192.168.0.{i}",
    "Worker pool exhausted on node n{i}",
    "Checkpoint {i} written in {i} ms",
]


@require_cluster
class LogConcurrencyTest(unittest.TestCase):
    def setUp(self):
        fresh_database()

    def run_writers(self, writers, work):
        self.assertEqual(run_concurrently(writers, work), [])

    def test_concurrent_log_parse_makes_each_template_once(self):
        writers, rounds = 4, 6

        def work(w):
            kinds = KINDS if w % 2 == 0 else list(reversed(KINDS))
            for r in range(rounds):
                values = ", ".join(f"('{k.format(i=100 + w * 100 + r)}')" for k in kinds)
                # One transaction per round: several log_parse calls hold the miner's lock together.
                psql(f"SELECT count(*) FROM (VALUES {values}) t(m), LATERAL tidewatch.log_parse(m)")

        self.run_writers(writers, work)
        self.assertEqual(int(one("SELECT count(*) FROM tidewatch.log_templates WHERE miner = 'default'")), len(KINDS))
        self.assertEqual(int(one("SELECT count(DISTINCT template) FROM tidewatch.log_templates WHERE miner = 'default'")),
                         len(KINDS))
        total = writers * rounds * len(KINDS)
        self.assertEqual(int(one("SELECT sum(count) FROM tidewatch.log_templates WHERE miner = 'default'")), total)
        self.assertEqual(int(one("SELECT lines FROM tidewatch.log_miners WHERE name = 'default'")), total)

    def test_concurrent_inserts_into_a_monitored_table(self):
        psql("CREATE TABLE app_log (ts timestamptz NOT NULL, message text, template_id bigint, category text);"
             "SELECT tidewatch.create_hypertable('app_log', 'ts');"
             "SELECT tidewatch.log_monitor('app', 'app_log', 'message', 'ts')")
        writers, batches, per_batch = 4, 5, 400

        def work(w):
            for b in range(batches):
                psql("INSERT INTO app_log (ts, message) SELECT timestamptz '2026-01-01' + i * interval '1 second',"
                     " (ARRAY[" + ", ".join(f"'{k}'" for k in KINDS).replace("{i}", "' || i || '") + "])[1 + (i + "
                     f"{w}) % {len(KINDS)}] FROM generate_series(101, 100 + {per_batch}) i")

        self.run_writers(writers, work)
        total = writers * batches * per_batch
        self.assertEqual(int(one("SELECT count(*) FROM app_log WHERE template_id IS NOT NULL AND category IS NOT NULL")),
                         total)
        self.assertEqual(int(one("SELECT sum(n) FROM tidewatch.log_counts WHERE monitor = 'app'")), total)
        self.assertEqual(int(one("SELECT count(*) FROM tidewatch.log_templates WHERE miner = 'app'")), len(KINDS))
        # Every row's template id is one of the miner's.
        self.assertEqual(int(one("SELECT count(*) FROM app_log a WHERE NOT EXISTS (SELECT 1 FROM tidewatch.log_templates t"
                                 " WHERE t.miner = 'app' AND t.id = a.template_id)")), 0)


if __name__ == "__main__":
    unittest.main()
