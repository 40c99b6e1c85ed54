"""Async monitors: the decoder scores committed rows from the write-ahead log.

Checked against the sync monitor (the statement trigger) as the oracle: on the same rows both
must learn the same states and record the same episodes. Also: concurrent writers lose and
double nothing, a killed decoder resumes where it stopped, and the slot goes with the last
async monitor.
"""
import unittest

from pgtest import psql, one, fresh_database, require_cluster, run_concurrently, wait_for

SLOT = "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'tidewatch\\_%' AND database = current_database()"


@require_cluster
class AsyncMonitorTest(unittest.TestCase):
    def setUp(self):
        fresh_database()
        psql("CREATE TABLE live (ts timestamptz NOT NULL, sat text, unit int, value float8);"
             "SELECT tidewatch.create_hypertable('live', 'ts', chunk_time_interval => interval '6 hours')")

    def monitor(self, name, mode, method="auto"):
        psql(f"SELECT tidewatch.monitor('{name}', 'live', 'value', '{{sat,unit}}', '{method}', mode => '{mode}');"
             # The missing-data job would run against these 2026-01 timestamps; keep it out of the way.
             f"SELECT tidewatch.alter_job(job_id, scheduled => false) FROM tidewatch.monitors WHERE name = '{name}'")

    def test_async_learns_and_records_what_sync_does(self):
        self.monitor("sync_mon", "sync")
        self.monitor("async_mon", "async")
        # 3 series x 2000 minutes in 20 statements (each later in time), spikes, a level shift,
        # NULL and NaN values.
        for b in range(20):
            psql(f"""INSERT INTO live
                     SELECT timestamptz '2026-01-01' + i * interval '1 minute', 'SAT' || s, s,
                            CASE WHEN i % 397 = 0 THEN NULL WHEN i % 491 = 0 THEN 'NaN'::float8
                                 ELSE sin(i / 40.0) + 0.1 * sin(i * 7.3 + s)
                                      + CASE WHEN i IN (700, 1333) AND s = 1 THEN 12 ELSE 0 END
                                      + CASE WHEN i > 1500 AND s = 2 THEN 6 ELSE 0 END END
                     FROM generate_series({b * 100}, {b * 100 + 99}) i, generate_series(0, 2) s""")
        psql("SELECT tidewatch.monitor_wait()")
        state = """SELECT series, n, late, skipped, last_ts, open_episode IS NULL
                   FROM tidewatch.monitor_state WHERE monitor = '{}' ORDER BY series"""
        sync_state, async_state = psql(state.format("sync_mon")), psql(state.format("async_mon"))
        self.assertEqual(len(sync_state), 3)
        self.assertEqual(async_state, sync_state)
        episodes = """SELECT series, started_at, ended_at, peak_at, kind, severity, round(score::numeric, 9),
                             round(expected::numeric, 9)
                      FROM tidewatch.anomalies WHERE monitor = '{}' ORDER BY series, started_at"""
        sync_ep, async_ep = psql(episodes.format("sync_mon")), psql(episodes.format("async_mon"))
        self.assertGreaterEqual(len(sync_ep), 2)
        self.assertEqual(async_ep, sync_ep)
        # Labels are typed as to_jsonb types them (unit is a number).
        self.assertEqual(one("SELECT series FROM tidewatch.monitor_state WHERE monitor = 'async_mon' ORDER BY series LIMIT 1"),
                         '{"sat": "SAT0", "unit": 0}')

    def test_a_date_beyond_timestamptz_does_not_stop_the_decoder(self):
        # 300000-01-01 is a valid date but no timestamptz: converting it inside the decoding
        # callback raised an ERROR, and the decoder failed on that record at every poll.
        psql("CREATE TABLE dl (d date NOT NULL, sat text, value float8)")
        psql("SELECT tidewatch.monitor('dmon', 'dl', 'value', '{sat}', 'ewma', time_column => 'd', mode => 'async')")
        psql("SELECT tidewatch.alter_job(job_id, scheduled => false) FROM tidewatch.monitors WHERE name = 'dmon'")
        psql("INSERT INTO dl VALUES ('300000-01-01', 'A', 1)")
        psql("INSERT INTO dl SELECT date '2000-01-01' + i, 'A', sin(i) FROM generate_series(1, 300) i")
        psql("SET statement_timeout = '120s'; SELECT tidewatch.monitor_wait()")
        self.assertEqual(one("SELECT n FROM tidewatch.monitor_state WHERE monitor = 'dmon'"), "300")

    def test_async_device_monitor_records_what_the_sync_one_does(self):
        psql("CREATE TABLE dlive (ts timestamptz NOT NULL, host text, a float8, b real, c int);"
             "SELECT tidewatch.create_hypertable('dlive', 'ts', chunk_time_interval => interval '6 hours')")
        for name, mode in (("dev_sync", "sync"), ("dev_async", "async")):
            psql(f"SELECT tidewatch.monitor_device('{name}', 'dlive', '{{a,b,c}}', '{{host}}', mode => '{mode}');"
                 f"SELECT tidewatch.alter_job(job_id, scheduled => false) FROM tidewatch.monitors WHERE name = '{name}'")
        # 2 hosts x 1500 minutes in 15 statements: a jump of b on h1, NULL and NaN sensor values.
        for k in range(15):
            psql(f"""INSERT INTO dlive
                     SELECT timestamptz '2026-01-01' + i * interval '1 minute', 'h' || h,
                            CASE WHEN i % 491 = 0 THEN 'NaN'::float8 ELSE sin(i / 40.0) + 0.1 * sin(i * 7.3 + h) END,
                            (20 + 0.2 * sin(i * 3.1 + h) + CASE WHEN h = 1 AND i = 1200 THEN 9 ELSE 0 END)::real,
                            CASE WHEN i % 397 = 0 THEN NULL ELSE 100 + (i * 31 + h) % 11 END
                     FROM generate_series({k * 100}, {k * 100 + 99}) i, generate_series(0, 1) h""")
        psql("SELECT tidewatch.monitor_wait()")
        state = """SELECT series, n, late, skipped, last_ts, open_episode IS NULL
                   FROM tidewatch.monitor_state WHERE monitor = '{}' ORDER BY series"""
        sync_state, async_state = psql(state.format("dev_sync")), psql(state.format("dev_async"))
        self.assertEqual([r[1] for r in sync_state], ["1500", "1500"])
        self.assertEqual(async_state, sync_state)
        episodes = """SELECT series, started_at, ended_at, peak_at, kind, severity, round(score::numeric, 9),
                             detail ->> 'top_sensor', detail -> 'contributions'
                      FROM tidewatch.anomalies WHERE monitor = '{}' ORDER BY series, started_at"""
        sync_ep, async_ep = psql(episodes.format("dev_sync")), psql(episodes.format("dev_async"))
        self.assertTrue(any(r[0] == '{"host": "h1"}' and r[3].startswith("2026-01-01 20:00:00") and r[7] == "b"
                            for r in sync_ep), sync_ep)
        self.assertEqual(async_ep, sync_ep)

    def test_concurrent_writers_lose_and_double_nothing(self):
        self.monitor("async_mon", "async", "ewma")
        writers, batches, per_batch = 4, 10, 300

        def writer(w):
            # Interleaved hours across writers: many rows arrive late.
            for b in range(batches):
                psql(f"INSERT INTO live SELECT timestamptz '2026-01-01' + ({b} * {writers} + {w}) * interval '1 hour'"
                     f" + i * interval '1 second', 'SAT' || (i % 8), i % 8, 10 + random()"
                     f" FROM generate_series(1, {per_batch}) i ORDER BY random()")

        self.assertEqual(run_concurrently(writers, writer), [])
        psql("SELECT tidewatch.monitor_wait()")
        total = writers * batches * per_batch
        self.assertEqual(int(one("SELECT count(*) FROM live")), total)
        self.assertEqual(int(one("SELECT sum(n) FROM tidewatch.monitor_state")), total)
        self.assertEqual(int(one("SELECT count(*) FROM tidewatch.monitor_state")), 8)

    def test_a_killed_decoder_resumes_without_loss_or_double_scoring(self):
        self.monitor("async_mon", "async", "ewma")
        psql("INSERT INTO live SELECT timestamptz '2026-01-01' + i * interval '1 second', 'SAT1', 1, random()"
             " FROM generate_series(1, 5000) i")
        psql("SELECT tidewatch.monitor_wait()")
        killed = one("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'tidewatch decoder'"
                     " AND datname = current_database()")
        self.assertEqual(killed, "1")
        psql("INSERT INTO live SELECT timestamptz '2026-01-02' + i * interval '1 second', 'SAT1', 1, random()"
             " FROM generate_series(1, 5000) i")
        psql("SELECT tidewatch.monitor_wait()")
        self.assertEqual(one("SELECT n FROM tidewatch.monitor_state"), "10000")
        self.assertEqual(one("SELECT late FROM tidewatch.monitor_state"), "0")

    def test_rows_before_the_monitor_are_not_scored_and_the_slot_goes_with_it(self):
        psql("INSERT INTO live VALUES ('2026-01-01', 'SAT1', 1, 1)")
        self.monitor("async_mon", "async", "ewma")
        self.assertEqual(one(SLOT), "1")
        psql("INSERT INTO live VALUES ('2026-01-02', 'SAT1', 1, 2)")
        written = one("SELECT pg_current_wal_insert_lsn()")
        psql("SELECT tidewatch.monitor_wait()")
        self.assertEqual(one("SELECT n FROM tidewatch.monitor_state"), "1")
        lag = psql(f"SELECT monitor, kind, scored_upto >= '{written}', last_error IS NULL FROM tidewatch.monitor_lag()")
        self.assertEqual(lag, [["async_mon", "anomaly", "t", "t"]])
        psql("SELECT tidewatch.unmonitor('async_mon')")
        self.assertTrue(wait_for(lambda: one(SLOT) == "0", timeout=30), "the slot outlived the last async monitor")

    def test_a_slot_dropped_by_hand_is_created_again(self):
        self.monitor("async_mon", "async", "ewma")

        def drop():
            try:
                psql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                     " WHERE slot_name LIKE 'tidewatch\\_%' AND database = current_database()")
                return True
            except AssertionError:
                return False  # the decoder held it at that moment

        self.assertTrue(wait_for(drop, timeout=10, every=0.05))
        self.assertTrue(wait_for(lambda: one(SLOT) == "1", timeout=30), "the decoder did not recreate the slot")
        psql("INSERT INTO live SELECT timestamptz '2026-01-01' + i * interval '1 second', 'SAT1', 1, random()"
             " FROM generate_series(1, 10) i")
        psql("SELECT tidewatch.monitor_wait()")
        self.assertEqual(one("SELECT n FROM tidewatch.monitor_state"), "10")

    def test_rows_moved_out_of_the_default_partition_are_not_scored_twice(self):
        self.monitor("async_mon", "async", "ewma")
        # 2026-01 has no chunk yet: these rows wait in the default partition.
        psql("INSERT INTO live SELECT timestamptz '2026-01-01' + i * interval '1 minute', 'SAT1', 1, random()"
             " FROM generate_series(1, 1000) i")
        psql("SELECT tidewatch.monitor_wait()")
        # Maintenance (its job, or this call) moves them into new chunks.
        psql("SELECT * FROM tidewatch.run_maintenance('live')")
        self.assertEqual(one("SELECT count(*) FROM live WHERE tableoid ="
                             " (SELECT chunk FROM tidewatch._partitions('live') WHERE is_default)"), "0")
        self.assertEqual(one("SELECT count(DISTINCT tableoid) FROM live"), "3")
        # A row routed to one of the new chunks after their ATTACH is scored.
        psql("INSERT INTO live VALUES ('2026-01-01 10:00:30', 'SAT1', 1, 0.5)")
        psql("SELECT tidewatch.monitor_wait()")
        self.assertEqual(psql("SELECT n, late FROM tidewatch.monitor_state"), [["1001", "1"]])

    def test_bad_calls_are_clear_errors(self):
        with self.assertRaises(AssertionError) as e:
            psql("SELECT tidewatch.monitor('m', 'live', 'value', mode => 'later')")
        self.assertIn("unknown monitor mode", str(e.exception))
        with self.assertRaises(AssertionError) as e:
            psql("BEGIN; INSERT INTO live VALUES ('2026-01-01', 'SAT1', 1, 1);"
                 "SELECT tidewatch.monitor('m', 'live', 'value', mode => 'async'); COMMIT;")
        self.assertIn("in its own transaction", str(e.exception))
        with self.assertRaises(AssertionError) as e:
            psql("BEGIN; INSERT INTO live VALUES ('2026-01-01', 'SAT1', 1, 1); SELECT tidewatch.monitor_wait(); COMMIT;")
        self.assertIn("cannot wait for the writes of its own transaction", str(e.exception))
        self.assertEqual(one(SLOT), "0")


if __name__ == "__main__":
    unittest.main()


@require_cluster
class AsyncLogMonitorTest(unittest.TestCase):
    """Async log monitors against sync ones (the row triggers) as the oracle."""

    def setUp(self):
        fresh_database()
        psql("CREATE TABLE log_sync (ts timestamptz NOT NULL, message text);"
             "CREATE TABLE log_async (ts timestamptz NOT NULL, message text);"
             "SELECT tidewatch.log_monitor('sync_logs', 'log_sync', 'message', 'ts');")
        psql("SELECT tidewatch.log_monitor('async_logs', 'log_async', 'message', 'ts', mode => 'async')")

    def test_async_counts_templates_and_bursts_like_sync(self):
        lines = """SELECT timestamptz '2026-12-01 09:00' + i * interval '2 seconds',
                          CASE WHEN i % 50 = 0 THEN NULL
                               WHEN i % 7 = 0 THEN 'ERROR: connection to 10.0.0.' || (i % 200) || ':5432 timed out after 30s'
                               WHEN i % 11 = 0 THEN 'duplicate key value violates unique constraint "orders_pkey"'
                               WHEN i BETWEEN 5000 AND 5100 THEN 'FATAL: password authentication failed for user "etl' || i % 3 || '"'
                               ELSE 'job ' || i || ' finished in ' || (i % 97) || ' ms' END
                   FROM generate_series({lo}, {hi}) i"""
        # Bursts are checked at the end of each batch: per statement in sync mode, per decoder
        # poll in async mode. Waiting for the decoder after each statement makes them the same.
        for lo in range(0, 5400, 600):
            for table in ("log_sync", "log_async"):
                psql(f"INSERT INTO {table} " + lines.format(lo=lo, hi=lo + 599))
            psql("SELECT tidewatch.monitor_wait()")
        counts = """SELECT bucket, category, severity, sum(n) FROM tidewatch.log_counts WHERE monitor = '{}'
                    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
        sync_counts, async_counts = psql(counts.format("sync_logs")), psql(counts.format("async_logs"))
        self.assertGreater(len(sync_counts), 90)
        self.assertEqual(async_counts, sync_counts)
        templates = "SELECT template, count FROM tidewatch.log_templates WHERE miner = '{}' ORDER BY template"
        self.assertEqual(psql(templates.format("async_logs")), psql(templates.format("sync_logs")))
        episodes = """SELECT kind, started_at, round(score::numeric, 9) FROM tidewatch.anomalies
                      WHERE monitor = '{}' ORDER BY started_at"""
        sync_ep = psql(episodes.format("sync_logs"))
        self.assertGreaterEqual(len(sync_ep), 1)
        self.assertEqual(psql(episodes.format("async_logs")), sync_ep)
        # The rows themselves are left as inserted; the counts cover every non-NULL line.
        self.assertEqual(one("SELECT sum(n) FROM tidewatch.log_counts WHERE monitor = 'async_logs'"),
                         one("SELECT count(message) FROM log_async"))

    def test_async_log_monitor_rejects_row_columns(self):
        with self.assertRaises(AssertionError) as e:
            psql("SELECT tidewatch.log_monitor('x', 'log_async', 'message', 'ts', category_column => 'message', mode => 'async')")
        self.assertIn("do not write into the inserted rows", str(e.exception))
