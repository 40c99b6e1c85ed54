"""A database with Tidewatch survives pg_dump and pg_restore: its catalog comes back whole and its
monitors go on where they stopped.

The oracle is the source database: every catalog table holds the same rows after the restore
(compared row by row, as text), and the monitors' counts grow by exactly the rows inserted after.
"""
import os
import shutil
import subprocess
import tempfile
import unittest

from pgtest import DB, DSN, fresh_database, one, psql, require_cluster

RESTORED = "tidewatch_it_restored"

# Catalog tables whose rows must come back (ordered by their key; volatile columns left out).
CATALOG = {
    "tidewatch.hypertable": "relid::text, time_column, chunk_interval",
    "tidewatch.monitors": "name, relid::text, value_column, series_columns, method, mode",
    "tidewatch.monitor_state": "monitor, series, n, md5(state)",
    "tidewatch.anomalies": "id, monitor, series, started_at, ended_at, score, severity, kind",
    "tidewatch.log_monitors": "name, relid::text, message_column, miner",
    "tidewatch.log_templates": "miner, id, template, count",
    "tidewatch.log_counts": "monitor, bucket, template_id, category, n",
    "tidewatch.drift_monitors": "name, relid::text, columns",
    "tidewatch.drift_results": "monitor, column_name, drifted",
    "tidewatch.models": "name, series, method, md5(state)",
    "tidewatch.job": "id, proc::text, schedule_interval, config",
}

SETUP = """
CREATE TABLE m (ts timestamptz NOT NULL, sat text, v float8);
SELECT tidewatch.create_hypertable('m', 'ts', chunk_time_interval => interval '1 day');
INSERT INTO m SELECT timestamptz '2026-01-01' + i * interval '1 minute', s, sin(i / 10.0)
FROM generate_series(0, 1999) i, (VALUES ('A'), ('B')) x(s);
SELECT tidewatch.monitor('m_mon', 'm', 'v', '{sat}', 'ewma', time_column => 'ts');
INSERT INTO m SELECT timestamptz '2026-01-03' + i * interval '1 minute', 'A',
       CASE WHEN i = 500 THEN 50 ELSE sin(i / 10.0) END
FROM generate_series(0, 999) i;
CREATE TABLE lg (ts timestamptz NOT NULL, msg text);
SELECT tidewatch.log_monitor('lg_mon', 'lg', 'msg', 'ts');
INSERT INTO lg SELECT timestamptz '2026-01-03' + i * interval '1 second', 'ERROR timeout after ' || i || ' ms'
FROM generate_series(1, 30) i;
SELECT tidewatch.monitor_drift('d', 'm', tstzrange('2026-01-01', '2026-01-02'), interval '1 hour',
                               columns => '{v}', time_column => 'ts');
SELECT count(*) FROM tidewatch.run_drift_monitor('d');
SELECT tidewatch.train_detector('mdl', 'm', 'v', '{sat}', interval '30 days', 'ewma');
"""


@require_cluster
class DumpRestore(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg_dump, cls.pg_restore = shutil.which("pg_dump"), shutil.which("pg_restore")
        if not (cls.pg_dump and cls.pg_restore):
            raise unittest.SkipTest("pg_dump or pg_restore is not on PATH")
        fresh_database()
        psql(SETUP)
        psql(f"DROP DATABASE IF EXISTS {RESTORED} WITH (FORCE)", db="postgres")
        psql(f"CREATE DATABASE {RESTORED}", db="postgres")
        with tempfile.TemporaryDirectory() as tmp:
            dump = os.path.join(tmp, "db.dump")
            subprocess.run([cls.pg_dump, "-Fc", "-d", f"{DSN} dbname={DB}", "-f", dump], check=True,
                           capture_output=True)
            cls.restore = subprocess.run([cls.pg_restore, "-d", f"{DSN} dbname={RESTORED}", dump],
                                         capture_output=True, text=True)

    @classmethod
    def tearDownClass(cls):
        psql(f"DROP DATABASE IF EXISTS {RESTORED} WITH (FORCE)", db="postgres", check=False)

    def test_the_restore_reports_no_error(self):
        self.assertEqual(self.restore.returncode, 0, self.restore.stderr)
        self.assertNotIn("error", self.restore.stderr.lower())

    def test_every_catalog_table_comes_back_row_for_row(self):
        for table, cols in CATALOG.items():
            with self.subTest(table=table):
                q = f"SELECT {cols} FROM {table} ORDER BY 1, 2"
                source = psql(q)
                self.assertTrue(source, f"the setup made no rows in {table}")  # the check can fail
                self.assertEqual(psql(q, db=RESTORED), source)

    def test_monitors_go_on_where_they_stopped(self):
        points = "SELECT sum(n) FROM tidewatch.monitor_state WHERE monitor = 'm_mon'"
        lines = "SELECT sum(n) FROM tidewatch.log_counts WHERE monitor = 'lg_mon'"
        before = (int(one(points, db=RESTORED)), int(one(lines, db=RESTORED)))
        psql("INSERT INTO m SELECT timestamptz '2026-01-04' + i * interval '1 minute', 'B', cos(i / 10.0)"
             " FROM generate_series(1, 40) i;"
             "INSERT INTO lg SELECT timestamptz '2026-01-04' + i * interval '1 second', 'ERROR timeout after 5 ms'"
             " FROM generate_series(1, 9) i", db=RESTORED)
        self.assertEqual((int(one(points, db=RESTORED)), int(one(lines, db=RESTORED))), (before[0] + 40, before[1] + 9))
        # The state carried over: the restored monitor scores the next point as the source does.
        nxt = "INSERT INTO m VALUES ('2026-01-05', 'A', 7.5); SELECT md5(state) FROM tidewatch.monitor_state" \
              " WHERE monitor = 'm_mon' AND series->>'sat' = 'A'"
        self.assertEqual(psql(nxt, db=RESTORED), psql(nxt))
        self.assertEqual(one("SELECT tidewatch.predict('mdl', '{\"sat\": \"A\"}', '2026-01-05', 1.0)::text", db=RESTORED),
                         one("SELECT tidewatch.predict('mdl', '{\"sat\": \"A\"}', '2026-01-05', 1.0)::text"))


if __name__ == "__main__":
    unittest.main()
