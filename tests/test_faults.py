"""Faults: a backend killed with SIGKILL in the middle of a monitored COPY, and an immediate
shutdown in the middle of maintenance (rows moved out of the default partition) and of a
retention run. Each test counts the rows before and after (printed, for the record) and checks
that nothing committed is lost, nothing is duplicated, nothing uncommitted is scored, and the
monitors keep working. Each runs on a private cluster: SIGKILL of a backend makes the postmaster
reset every connection, and an immediate shutdown is a crash.
"""
import os
import signal
import subprocess
import threading
import time
import unittest

from pgtest import DB, require_cluster, spare_cluster, wait_for

COPY_ROWS = 3_000_000


def start_psql(c, sql, app):
    """A psql running `sql` in the background, with application_name `app`."""
    return subprocess.Popen(["psql", "-X", "-q", "-d", f"{c.dsn} dbname={DB} application_name={app}", "-c", sql],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def backend_pid(c, app):
    rows = c.psql(f"SELECT pid FROM pg_stat_activity WHERE application_name = '{app}' AND state = 'active'")
    return int(rows[0][0]) if rows else None


def wait_ready(c):
    return wait_for(lambda: c.psql("SELECT 1", check=False) == [["1"]], timeout=60, every=0.2)


@require_cluster
class BackendKilledDuringMonitoredCopyTest(unittest.TestCase):
    def run_copy_and_kill(self, mode):
        with spare_cluster(f"kill_copy_{mode}") as c:
            c.psql("CREATE EXTENSION tidewatch;"
                   "CREATE TABLE live (ts timestamptz NOT NULL, sat text, value float8);"
                   "SELECT tidewatch.create_hypertable('live', 'ts', chunk_time_interval => interval '1 day')")
            c.psql(f"SELECT tidewatch.monitor('m', 'live', 'value', '{{sat}}', 'ewma', mode => '{mode}');"
                   "SELECT tidewatch.alter_job(job_id, scheduled => false) FROM tidewatch.monitors")
            c.psql("INSERT INTO live SELECT timestamptz '2026-01-01' + i * interval '1 second', 'SAT1', i % 7"
                   " FROM generate_series(1, 5000) i")
            c.psql("SELECT tidewatch.monitor_wait(interval '60 seconds')")
            committed = int(c.one("SELECT count(*) FROM live"))
            # A COPY of 3M rows, killed with SIGKILL halfway.
            p = start_psql(c, "COPY live FROM PROGRAM 'seq 1 %d | sed \"s/^/2026-01-02 00:00:00+00\\tSAT1\\t/\"'" % COPY_ROWS,
                           "tw_killed_copy")
            self.assertTrue(wait_for(lambda: backend_pid(c, "tw_killed_copy") is not None, timeout=30, every=0.05))
            time.sleep(1.0)
            os.kill(backend_pid(c, "tw_killed_copy"), signal.SIGKILL)
            p.wait(timeout=60)
            self.assertNotEqual(p.returncode, 0, "the COPY finished before it was killed")
            self.assertTrue(wait_ready(c), "the server did not come back after the backend was killed")
            after = int(c.one("SELECT count(*) FROM live"))
            print(f"\n[faults] {mode} monitor, SIGKILL during COPY: rows committed before {committed}, after {after}")
            self.assertEqual(after, committed, "rows of the killed COPY are visible, or committed rows were lost")
            c.psql("SELECT tidewatch.monitor_wait(interval '90 seconds')")
            self.assertEqual(c.one("SELECT sum(n) FROM tidewatch.monitor_state"), str(committed),
                             "the monitor scored rows that never committed, or lost some")
            # The monitor keeps working.
            c.psql("INSERT INTO live SELECT timestamptz '2026-01-03' + i * interval '1 second', 'SAT1', i % 7"
                   " FROM generate_series(1, 1000) i")
            c.psql("SELECT tidewatch.monitor_wait(interval '90 seconds')")
            self.assertEqual(c.one("SELECT sum(n) FROM tidewatch.monitor_state"), str(committed + 1000))

    def test_sync_monitor(self):
        self.run_copy_and_kill("sync")

    def test_async_monitor(self):
        self.run_copy_and_kill("async")


@require_cluster
class ImmediateShutdownDuringMaintenanceTest(unittest.TestCase):
    ROWS = 400_000

    def test_rows_moved_out_of_the_default_partition(self):
        with spare_cluster("crash_maintenance") as c:
            c.psql("CREATE EXTENSION tidewatch;"
                   "CREATE TABLE live (id bigint, ts timestamptz NOT NULL, value float8);"
                   "SELECT tidewatch.create_hypertable('live', 'ts', chunk_time_interval => interval '1 day')")
            # Rows for days that have no chunk yet wait in the default partition.
            c.psql(f"INSERT INTO live SELECT i, timestamptz '2030-01-01' + i * interval '1 second', i"
                   f" FROM generate_series(1, {self.ROWS}) i")
            in_default = int(c.one("SELECT count(*) FROM live WHERE tableoid ="
                                   " (SELECT chunk FROM tidewatch._partitions('live') WHERE is_default)"))
            self.assertEqual(in_default, self.ROWS)
            for delay in (0.3, 0.8):
                p = start_psql(c, "SELECT * FROM tidewatch.run_maintenance('live')", "tw_maintenance")
                time.sleep(delay)
                c.stop(mode="immediate")
                p.wait(timeout=60)
                c.start()
                n, distinct, lo, hi = c.psql("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM live")[0]
                print(f"\n[faults] immediate shutdown {delay} s into maintenance: rows before {self.ROWS}, after {n}")
                self.assertEqual((int(n), int(distinct), int(lo), int(hi)), (self.ROWS, self.ROWS, 1, self.ROWS))
            # And maintenance still completes afterwards, losing nothing.
            c.psql("SELECT * FROM tidewatch.run_maintenance('live')")
            self.assertEqual(c.psql("SELECT count(*), count(DISTINCT id) FROM live"), [[str(self.ROWS)] * 2])

    def test_retention_run(self):
        hours = ("SELECT date_trunc('hour', ts) AS h, count(*) AS n FROM live GROUP BY 1")
        with spare_cluster("crash_retention") as c:
            c.psql("CREATE EXTENSION tidewatch;"
                   "CREATE TABLE live (id bigint, ts timestamptz NOT NULL, value float8);"
                   "SELECT tidewatch.create_hypertable('live', 'ts', chunk_time_interval => interval '1 hour')")
            # 48 hourly chunks; a retention of one day drops about half of them.
            c.psql("INSERT INTO live SELECT i, date_trunc('hour', now()) - interval '47 hours' + i * interval '1 second', i"
                   " FROM generate_series(0, 172799) i")
            c.psql("SELECT * FROM tidewatch.run_maintenance('live')")
            before = dict(tuple(r) for r in c.psql(hours))
            job = c.one("SELECT tidewatch.add_retention_policy('live', drop_after => interval '1 day')")
            c.psql(f"SELECT tidewatch.alter_job({job}, scheduled => false)")
            for delay in (0.0, 0.05, 0.2):
                p = start_psql(c, f"CALL tidewatch.run_job({job})", "tw_retention")
                time.sleep(delay)
                c.stop(mode="immediate")
                p.wait(timeout=60)
                c.start()
                after = dict(tuple(r) for r in c.psql(hours))
                n, distinct = map(int, c.psql("SELECT count(*), count(DISTINCT id) FROM live")[0])
                print(f"\n[faults] immediate shutdown {delay} s into retention: rows before {sum(map(int, before.values()))},"
                      f" after {n} ({len(after)} of {len(before)} hours)")
                self.assertEqual(n, distinct, "duplicated rows")
                # Whole chunks or nothing: each hour left has all its rows; only old hours went.
                self.assertEqual({h: before[h] for h in after}, after)
                self.assertTrue(all(h in after for h in sorted(before)[-24:]), "a recent chunk was dropped")
            c.psql(f"CALL tidewatch.run_job({job})")
            self.assertLessEqual(len(dict(tuple(r) for r in c.psql(hours))), 26)


if __name__ == "__main__":
    unittest.main()
