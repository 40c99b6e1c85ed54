"""Monitors follow a renamed column, and a column a monitor reads cannot be dropped.

Monitors name the columns they read. Before 0.2.0, renaming one made every later INSERT into
the table fail in the monitor's trigger ("column ... does not exist"): the rows were refused.
The oracle for "still monitored" is the monitor's own count of points or lines before and after
the rename (it must grow by exactly the rows inserted), and the catalog row naming the new column.
"""
import unittest

from pgtest import fresh_database, one, psql, require_cluster


@require_cluster
class SchemaChanges(unittest.TestCase):
    def setUp(self):
        fresh_database()
        psql("CREATE TABLE m (ts timestamptz NOT NULL, sat text, v float8, note text);"
             "SELECT tidewatch.create_hypertable('m', 'ts', chunk_time_interval => interval '1 day');"
             "INSERT INTO m SELECT timestamptz '2026-01-01' + i * interval '1 minute', 'A', sin(i / 10.0), 'x'"
             "  FROM generate_series(0, 999) i;"
             "CREATE TABLE lg (ts timestamptz NOT NULL, msg text);"
             "SELECT tidewatch.create_hypertable('lg', 'ts', chunk_time_interval => interval '1 day')")
        psql("SELECT tidewatch.monitor('m_sync', 'm', 'v', '{sat}', 'ewma', time_column => 'ts');"
             "SELECT tidewatch.log_monitor('lg_sync', 'lg', 'msg', 'ts')")

    def assert_refused(self, stmt, condition):
        """`stmt` must fail with the error `condition` (a PL/pgSQL condition name)."""
        psql(f"DO $$ BEGIN {stmt}; RAISE EXCEPTION 'not refused: {stmt.replace(chr(39), chr(39) * 2)}'; "
             f"EXCEPTION WHEN {condition} THEN NULL; END $$")

    def points(self, monitor="m_sync"):
        return int(one(f"SELECT coalesce(sum(n), 0) FROM tidewatch.monitor_state WHERE monitor = '{monitor}'"))

    def lines(self):
        return int(one("SELECT coalesce(sum(n), 0) FROM tidewatch.log_counts WHERE monitor = 'lg_sync'"))

    def insert(self, cols="ts, sat, v", n=10, start=1000):
        psql(f"INSERT INTO m ({cols}) SELECT timestamptz '2026-01-01' + i * interval '1 minute', 'A', cos(i / 10.0)"
             f"  FROM generate_series({start}, {start + n - 1}) i")

    def test_a_renamed_value_and_series_column_is_followed(self):
        self.insert()
        before = self.points()
        self.assertGreater(before, 0)
        psql("ALTER TABLE m RENAME COLUMN v TO value")
        psql("ALTER TABLE m RENAME COLUMN sat TO satellite")
        self.insert("ts, satellite, value", n=25, start=2000)
        self.assertEqual(self.points(), before + 25)
        self.assertEqual(psql("SELECT value_column, series_columns FROM tidewatch.monitors WHERE name = 'm_sync'"),
                         [["value", "{satellite}"]])

    def test_an_async_monitor_follows_a_renamed_column(self):
        psql("SELECT tidewatch.monitor('m_async', 'm', 'v', '{sat}', 'ewma', time_column => 'ts', mode => 'async')")
        self.insert(n=20, start=4000)
        one("SELECT tidewatch.monitor_wait(interval '60 seconds')")
        before = self.points("m_async")
        self.assertEqual(before, 20)
        psql("ALTER TABLE m RENAME COLUMN v TO value")
        self.insert("ts, sat, value", n=30, start=5000)
        one("SELECT tidewatch.monitor_wait(interval '60 seconds')")
        self.assertEqual(self.points("m_async"), before + 30)
        self.assertIsNone(one("SELECT last_error FROM tidewatch.monitors WHERE name = 'm_async'"))
        psql("SELECT tidewatch.unmonitor('m_async')")

    def test_a_renamed_message_column_is_followed(self):
        psql("INSERT INTO lg SELECT timestamptz '2026-01-01' + i * interval '1 second', 'ERROR timeout ' || i"
             "  FROM generate_series(1, 5) i")
        before = self.lines()
        self.assertEqual(before, 5)
        psql("ALTER TABLE lg RENAME COLUMN msg TO message")
        psql("INSERT INTO lg SELECT timestamptz '2026-01-01' + i * interval '1 second', 'ERROR timeout ' || i"
             "  FROM generate_series(6, 12) i")
        self.assertEqual(self.lines(), before + 7)
        self.assertEqual(one("SELECT message_column FROM tidewatch.log_monitors WHERE name = 'lg_sync'"), "message")

    def test_a_log_monitor_reads_partitions_made_after_a_column_was_dropped(self):
        # A chunk made after a column was dropped from its hypertable numbers its columns
        # differently; the row trigger, cloned onto each chunk, used the parent's numbers there.
        psql("CREATE TABLE lg2 (ts timestamptz NOT NULL, junk float8, msg text, template_id bigint, category text);"
             "SELECT tidewatch.create_hypertable('lg2', 'ts', chunk_time_interval => interval '1 day');"
             "SELECT tidewatch.log_monitor('lg2_sync', 'lg2', 'msg', 'ts')")
        add = ("INSERT INTO lg2 (ts, msg) SELECT now() + interval '{days} days' + i * interval '1 second', "
               "CASE WHEN i % 2 = 0 THEN 'ERROR connection refused by 10.0.0.' || i ELSE 'job ' || i || ' done' END "
               "FROM generate_series(1, {n}) i")
        psql(add.format(days=0, n=20))  # today's chunk, made with the column
        psql("ALTER TABLE lg2 DROP COLUMN junk")
        psql(add.format(days=10, n=1))  # the default partition, until maintenance makes its chunk
        psql("SELECT * FROM tidewatch.run_maintenance('lg2')")
        psql(add.format(days=10, n=20))  # that chunk: made without the column
        layouts = psql("SELECT DISTINCT a.attnum FROM pg_inherits i JOIN pg_attribute a ON a.attrelid = i.inhrelid"
                       " WHERE i.inhparent = 'lg2'::regclass AND a.attname = 'msg'")
        self.assertEqual(len(layouts), 2, "the setup did not make two chunk layouts")  # the check can fail
        rows = psql("SELECT ts::date > current_date, category, count(*), count(template_id) FROM lg2 GROUP BY 1, 2 ORDER BY 1, 2")
        self.assertEqual(rows, [["f", "connection", "10", "10"], ["f", "unknown", "10", "10"],
                                ["t", "connection", "10", "10"], ["t", "unknown", "11", "11"]])
        self.assertEqual(one("SELECT sum(n) FROM tidewatch.log_counts WHERE monitor = 'lg2_sync'"), "41")
        self.assertEqual(one("SELECT string_agg(DISTINCT template, ' | ' ORDER BY template) FROM tidewatch.log_templates"
                             " WHERE miner = 'lg2_sync'"), "ERROR connection refused by <*> | job <*> done")

    def test_a_renamed_column_of_a_drift_monitor_is_followed(self):
        psql("SELECT tidewatch.monitor_drift('d', 'm', tstzrange('2026-01-01', '2026-01-01 08:00'), interval '1 hour',"
             " columns => '{v}', time_column => 'ts')")
        psql("ALTER TABLE m RENAME COLUMN v TO value")
        self.assertEqual(one("SELECT columns FROM tidewatch.drift_monitors WHERE name = 'd'"), "{value}")
        # Its run reads the renamed column (it failed with "column v does not exist" before).
        self.assertGreater(int(one("SELECT count(*) FROM tidewatch.run_drift_monitor('d')")), 0)

    def test_a_column_a_monitor_reads_cannot_be_dropped(self):
        before = self.points()
        self.assert_refused("ALTER TABLE m DROP COLUMN v", "dependent_objects_still_exist")
        self.assert_refused("ALTER TABLE lg DROP COLUMN msg", "dependent_objects_still_exist")
        # The column is still there and the monitor still scores inserts.
        self.insert(n=10, start=3000)
        self.assertEqual(self.points(), before + 10)
        # A column no monitor reads may go (the check can pass), and so may a watched one once the
        # monitor is stopped.
        psql("ALTER TABLE m DROP COLUMN note")
        psql("SELECT tidewatch.unmonitor('m_sync')")
        psql("ALTER TABLE m DROP COLUMN v")

    def test_a_column_type_a_monitor_cannot_read_is_refused(self):
        for stmt, kind in (("ALTER TABLE m ALTER COLUMN v TYPE text", "monitor"),
                           ("ALTER TABLE lg ALTER COLUMN msg TYPE int USING length(msg)", "log monitor")):
            with self.subTest(stmt=stmt):
                self.assert_refused(stmt, "datatype_mismatch")
        # A type it can read passes (the check can pass), and the monitor goes on scoring.
        before = self.points()
        psql("ALTER TABLE m ALTER COLUMN v TYPE numeric USING v::numeric")
        self.insert(n=10, start=6000)
        self.assertEqual(self.points(), before + 10)

    def test_dropping_a_table_stops_its_monitors_and_keeps_their_episodes(self):
        psql("SELECT tidewatch.monitor_drift('d', 'm', tstzrange('2026-01-01', '2026-01-01 08:00'), interval '1 hour',"
             " columns => '{v}', time_column => 'ts')")
        self.insert(n=200, start=1000)
        psql("INSERT INTO m VALUES (timestamptz '2026-01-01' + interval '1300 minutes', 'A', 500)")  # an episode to keep
        episodes = int(one("SELECT count(*) FROM tidewatch.anomalies WHERE monitor = 'm_sync'"))
        self.assertGreater(episodes, 0)
        jobs = [r[0] for r in psql("SELECT job_id FROM tidewatch.monitors WHERE name = 'm_sync' "
                                   "UNION ALL SELECT job_id FROM tidewatch.drift_monitors WHERE name = 'd'")]
        self.assertEqual(len(jobs), 2)
        psql("DROP TABLE m; DROP TABLE lg")
        for table in ("monitors", "drift_monitors", "log_monitors"):
            with self.subTest(table=table):
                self.assertEqual(one(f"SELECT count(*) FROM tidewatch.{table}"), "0")
        self.assertEqual(one(f"SELECT count(*) FROM tidewatch.job WHERE id IN ({', '.join(jobs)})"), "0")
        self.assertEqual(int(one("SELECT count(*) FROM tidewatch.anomalies WHERE monitor = 'm_sync'")), episodes)

    def test_unmonitor_stops_a_monitor_whose_table_is_gone(self):
        # What 0.1.0 left behind when a table was dropped (unmonitor failed: "syntax error at or
        # near" the table's oid): made here by dropping the table with the event trigger off.
        psql("ALTER EVENT TRIGGER tidewatch_sql_drop DISABLE; DROP TABLE m; DROP TABLE lg;"
             "ALTER EVENT TRIGGER tidewatch_sql_drop ENABLE")
        self.assertEqual(one("SELECT count(*) FROM tidewatch.monitors WHERE name = 'm_sync'"), "1")
        self.assertEqual(psql("SELECT tidewatch.unmonitor('m_sync'), tidewatch.unmonitor_logs('lg_sync')"), [["t", "t"]])


if __name__ == "__main__":
    unittest.main()
