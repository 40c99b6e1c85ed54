"""Tidewatch on Citus: a coordinator and two workers on loopback ports (tools/lib.sh citus_start),
each a cluster owned by postgres, run from the same private PostgreSQL copy as the other tests
(PG_CONFIG and PGBIN, which tools/test.sh exports). Citus 13.2.2 is built into that copy by
../shared/citus/install.sh the first time (about a minute; later runs find it installed there).
The tests skip, saying why, only where Citus cannot be built (no ../shared, no PG_CONFIG, a
failed build).

The same rows go into a distributed table and a local one on the coordinator; every function is
run on both and the outputs compared (the single-node output is the oracle). EXPLAIN (VERBOSE)
shows what runs on the workers, and the bytes Citus receives from the workers show that the
aggregates ship partial states whose size does not grow with the rows.
"""
import os
import re
import subprocess
import unittest

from pgtest import REPO, psql, psql_script, wait_for

TEST_DIR = os.environ.get("TIDEWATCH_TEST_DIR", "/var/tmp/tidewatch-test")
PORT = int(os.environ.get("TIDEWATCH_CITUS_PORT", "25460"))
DB = "tidewatch_citus"
DIR = os.path.join(TEST_DIR, "citus")
COORD = f"host=127.0.0.1 port={PORT} user=postgres"
WORKERS = [f"host=127.0.0.1 port={PORT + i} user=postgres" for i in (1, 2)]


def lib(call, timeout=1800):
    return subprocess.run(["bash", "-c", f'source "{REPO}/tools/lib.sh" && {call}'], capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ))


def q(sql, dsn=COORD, check=True):
    return psql(sql, DB, check=check, dsn=dsn)


def one(sql, dsn=COORD):
    rows = q(sql, dsn)
    return rows[0][0] if rows else None


SKIP = None
if not os.environ.get("PG_CONFIG") or not os.environ.get("PGBIN"):
    SKIP = "PG_CONFIG and PGBIN of the private PostgreSQL copy are not set; run tools/test.sh"
elif not os.path.isfile(os.path.join(os.environ.get("TIDEWATCH_SHARED", os.path.join(REPO, "..", "shared")),
                                     "citus", "install.sh")):
    SKIP = "../shared/citus/install.sh not found: Citus cannot be built here"

# Telemetry of 12 series (3 satellites x 4 metrics) over 3 days at 5-minute steps with injected
# spikes and a level shift, and an ETL log: the same rows go into the local and the distributed
# tables.
DATA = r"""
CREATE TABLE {t} (ts timestamptz NOT NULL, sat text NOT NULL, metric text NOT NULL, value float8, mode text);
SELECT tidewatch.create_hypertable('{t}', 'ts', interval '1 day');
CREATE TABLE {t}_logs (ts timestamptz NOT NULL, host text NOT NULL, message text);
{distribute}
INSERT INTO {t}
SELECT timestamptz '2026-03-01' + i * interval '5 minutes', 'SAT' || s, 'M' || m,
       10 * m + sin(i / 20.0 + s) + 0.1 * ((i * 7919 + s * 31 + m * 17) % 101) / 101.0
         + CASE WHEN i = 300 + 40 * s + m THEN 15 ELSE 0 END
         + CASE WHEN s = 2 AND m = 3 AND i > 700 THEN 4 ELSE 0 END,
       CASE WHEN (i + s) % 7 = 0 THEN 'safe' WHEN i > 600 AND s = 1 THEN 'burn' ELSE 'nominal' END
FROM generate_series(0, 863) i, generate_series(1, 3) s, generate_series(1, 4) m;
INSERT INTO {t}_logs
SELECT timestamptz '2026-03-01' + i * interval '1 minute', 'h' || (i % 5),
       CASE WHEN i % 11 = 0 THEN 'ERROR connection to 10.0.0.' || (i % 50) || ' timed out after ' || i || ' ms'
            WHEN i % 7 = 0 THEN 'WARN retry ' || (i % 3) || ' of job ' || i
            ELSE 'job ' || i || ' finished in ' || (i % 97) || ' ms' END
FROM generate_series(1, 3000) i;
"""


@unittest.skipIf(SKIP, SKIP or "")
class CitusTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        built = lib("citus_install")
        if built.returncode != 0:
            raise unittest.SkipTest(f"Citus cannot be built: {built.stderr.strip()[-800:]}")
        started = lib(f'citus_start "{DIR}" {PORT} {DB} && citus_db {PORT} {DB}', timeout=600)
        if started.returncode != 0:
            lib(f'citus_stop "{DIR}"')
            raise AssertionError(f"Citus cluster did not start:\n{started.stdout[-2000:]}\n{started.stderr[-3000:]}")
        # The order docs/scale-out.md gives: hypertable, then distribute, then load.
        psql_script(DATA.format(t="loc", distribute="") + DATA.format(t="dist", distribute="""
            SET citus.shard_count = 4;
            SELECT create_distributed_table('dist', 'sat');
            SELECT create_distributed_table('dist_logs', 'host');""") + """
            -- The tests move late rows themselves: keep the scheduler's maintenance jobs (due at
            -- once) from doing it between an INSERT and the count that follows it.
            SELECT tidewatch.alter_job(job_id, scheduled => false) FROM tidewatch.jobs
             WHERE hypertable IN ('loc'::regclass, 'dist'::regclass);
            SELECT * FROM tidewatch.run_maintenance('loc');
            SELECT * FROM tidewatch.run_maintenance('dist');
        """, DB, dsn=COORD)

    @classmethod
    def tearDownClass(cls):
        lib(f'citus_stop "{DIR}"')

    def same(self, sql_local, sql_dist, what):
        """Rows of sql_local on the local table and of sql_dist on the distributed one, sorted, must
        be equal; numbers to 1e-12 relative (sums over the workers' rows run in another order, so
        an average may differ in its last bit), everything else exactly."""
        a, b = sorted(q(sql_local)), sorted(q(sql_dist))
        self.assertGreater(len(a), 0, f"{what}: no rows on the local table")
        self.assertEqual(len(a), len(b), what)
        for ra, rb in zip(a, b):
            self.assertEqual(len(ra), len(rb), what)
            for x, y in zip(ra, rb):
                try:
                    fx, fy = float(x), float(y)
                except ValueError:
                    self.assertEqual(x, y, f"{what}: {ra} vs {rb}")
                    continue
                self.assertAlmostEqual(fx, fy, delta=1e-12 * max(1.0, abs(fx)), msg=f"{what}: {ra} vs {rb}")
        return a

    def test_extension_on_every_node(self):
        version = one("SELECT extversion FROM pg_extension WHERE extname = 'tidewatch'")
        self.assertIsNotNone(version)
        for w in WORKERS:
            self.assertEqual(one("SELECT extversion FROM pg_extension WHERE extname = 'tidewatch'", w), version)
        self.assertEqual(one("SELECT count(*) FROM citus_get_active_worker_nodes()"), "2")
        # The rows are on the workers, not on the coordinator.
        self.assertEqual(one("SELECT count(*) FROM dist"), one("SELECT count(*) FROM loc"))
        self.assertEqual(one("SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'dist'::regclass") != "0", True)

    def test_distributed_hypertable(self):
        chunks = ("SELECT range_start, range_end FROM tidewatch.chunks WHERE hypertable = '{t}'::regclass "
                  "AND NOT is_default")
        self.same(chunks.format(t="loc"), chunks.format(t="dist"), "chunks")
        # Every chunk (and the default partition) is distributed beside the hypertable's shards.
        self.assertEqual(one("""SELECT count(*) FROM tidewatch.chunks c WHERE c.hypertable = 'dist'::regclass
                                AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.chunk
                                                AND p.colocationid = (SELECT colocationid FROM pg_dist_partition
                                                                      WHERE logicalrelid = 'dist'::regclass))"""), "0")
        # The setup's maintenance moved the loaded rows out of the default partition, on the workers.
        self.assertEqual(one("SELECT count(*) FROM dist_default"), "0")
        self.assertEqual(one("SELECT count(*) FROM dist"), one("SELECT count(*) FROM loc"))
        # Late rows: into the default partition, then into a new chunk by maintenance.
        late = ("INSERT INTO {t} SELECT timestamptz '2025-06-01' + i * interval '1 hour', 'SAT' || (i % 3 + 1), 'M1', i, 'late' "
                "FROM generate_series(0, 29) i")
        for t in ("loc", "dist"):
            q(late.format(t=t))
            self.assertEqual(one(f"SELECT count(*) FROM {t}_default"), "30")
            self.assertEqual(q(f"SELECT chunks_created, rows_moved, rows_left_in_default FROM tidewatch.run_maintenance('{t}')"),
                             [["2", "30", "0"]])
            # In the new chunks (on Citus, tableoid is the shard's, named after the chunk).
            self.assertEqual(one(f"SELECT count(*) FROM {t} WHERE mode = 'late' AND tableoid::regclass::text LIKE '{t}_p2025060%'"),
                             "30")
        self.same("SELECT * FROM loc", "SELECT * FROM dist", "rows after maintenance")
        # Pruning by time on the workers: a day's query reads that day's chunk only.
        plan = "\n".join(r[0] for r in q("EXPLAIN (COSTS OFF) SELECT count(*) FROM dist "
                                          "WHERE ts >= '2026-03-02' AND ts < '2026-03-03'"))
        self.assertRegex(plan, r"dist_p20260302_\d+")
        self.assertNotRegex(plan, r"dist_p2026030[13]|dist_default")
        # show_chunks / drop_chunks as on one node.
        self.same("SELECT c::text FROM tidewatch.show_chunks('loc', older_than => timestamptz '2026-01-01') c",
                  "SELECT replace(c::text, 'dist', 'loc') FROM tidewatch.show_chunks('dist', older_than => timestamptz '2026-01-01') c",
                  "show_chunks")
        for t in ("loc", "dist"):
            self.assertEqual(len(q(f"SELECT tidewatch.drop_chunks('{t}', older_than => timestamptz '2026-01-01')")), 2)
        self.same("SELECT * FROM loc", "SELECT * FROM dist", "rows after drop_chunks")
        self.assertEqual(one("SELECT count(*) FROM dist WHERE mode = 'late'"), "0")

    def received(self, sql):
        """Bytes (in text form, as Citus' adaptive executor receives them) of the rows every
        worker task of sql sends to the coordinator, and the plan. Each task's query, from
        EXPLAIN VERBOSE with every task shown, is run again on its node. (Citus' own EXPLAIN
        ANALYZE count, "Tuple data received from nodes", fails on the cstring column of
        worker_partial_agg.)"""
        plan = "\n".join(r[0] for r in q(f"SET citus.explain_all_tasks = on; EXPLAIN (VERBOSE, COSTS OFF) {sql}"))
        tasks = re.findall(r"Query: (.*)\n\s*Node: host=(\S+) port=(\d+)", plan)
        self.assertTrue(tasks, plan)
        total = 0
        for query, host, port in tasks:
            total += int(one(f"SELECT coalesce(sum(octet_length(x::text)), 0) FROM ({query}) x",
                             f"host={host} port={port} user=postgres"))
        return total, plan

    def test_drift_agg_runs_partially_on_the_workers(self):
        for n, t in ((2000, "ds"), (16000, "db")):
            for suffix, dist in (("_loc", ""), ("", f"SELECT create_distributed_table('{t}', 'id');")):
                psql_script(f"""
                    SET citus.shard_count = 4;
                    CREATE TABLE {t}{suffix} (id int, x float8, xq float8, label text, cur boolean);
                    {dist}
                    INSERT INTO {t}{suffix} SELECT i, i / 7.0 + CASE WHEN i % 2 = 0 THEN 3 ELSE 0 END,
                           (i * 7919 % 50) / 10.0 + CASE WHEN i % 2 = 0 THEN 0.3 ELSE 0 END,
                           (ARRAY['ok','warn','fail'])[1 + (i * 31 + i / 7) % 3], i % 2 = 0
                    FROM generate_series(1, {n}) i;""", DB, dsn=COORD)
        queries = {
            "numeric": "SELECT (r).method, (r).statistic, (r).p_value, (r).drifted, (r).reference_count, (r).current_count "
                       "FROM (SELECT tidewatch.drift_agg(x, cur) AS r FROM {t}) s",
            "quantised": "SELECT (r).method, (r).statistic, (r).p_value, (r).drifted, (r).reference_count, (r).current_count "
                         "FROM (SELECT tidewatch.drift_agg(xq, cur) AS r FROM {t}) s",
            "categorical": "SELECT (r).method, (r).statistic, (r).p_value, (r).drifted, (r).reference_count, (r).current_count "
                           "FROM (SELECT tidewatch.drift_agg(label, cur) AS r FROM {t}) s",
            "several methods": "SELECT m.method, m.statistic, m.drifted FROM (SELECT tidewatch.drift_agg(x, cur, "
                               "ARRAY['ks', 'wasserstein', 'psi']) AS r FROM {t}) s, unnest(s.r) m",
        }
        sizes = {}
        for what, sql in queries.items():
            for t in ("ds", "db"):
                self.same(sql.format(t=t + "_loc"), sql.format(t=t), what)
            small, plan = self.received(sql.format(t="ds"))
            big, _ = self.received(sql.format(t="db"))
            self.assertIn("worker_partial_agg", plan, what)
            self.assertIn("coord_combine_agg", plan, what)
            sizes[what] = (small, big)
        # Categories travel as counts: 8 times the rows, about the same bytes.
        small, big = sizes["categorical"]
        self.assertLess(big, 1.25 * small, f"categorical: {small} bytes for 2,000 rows, {big} for 16,000")
        # Numbers that repeat (a sensor's resolution: 50 distinct values) travel as distinct values
        # with counts: 8 times the rows, about the same bytes.
        small, big = sizes["quantised"]
        self.assertLess(big, 1.25 * small, f"quantised: {small} bytes for 2,000 rows, {big} for 16,000")
        # Numbers that do not repeat travel as they are (exact tests need every value): the bytes
        # grow with the rows, as docs/scale-out.md says.
        small, big = sizes["numeric"]
        self.assertGreater(big, 6 * small)

    def test_quality_aggregates_run_partially_on_the_workers(self):
        for n, t in ((2000, "qs"), (16000, "qb")):
            for suffix, dist in (("_loc", ""), ("", f"SELECT create_distributed_table('{t}', 'id');")):
                psql_script(f"""
                    SET citus.shard_count = 4;
                    CREATE TABLE {t}{suffix} (id int, hour int, target float8, prediction float8, label text, guess text);
                    {dist}
                    INSERT INTO {t}{suffix} SELECT i, i % 24, (i % 97) * 1.5 + (i % 7), (i % 97) * 1.5 + (i % 11) - 3,
                           (ARRAY['ok','warn','fail'])[1 + i % 3], (ARRAY['ok','warn','fail'])[1 + (i % 5) % 3]
                    FROM generate_series(1, {n}) i;""", DB, dsn=COORD)
        queries = {
            "regression_quality": "SELECT (tidewatch.regression_quality(prediction, target)).* FROM {t}",
            "classification_quality": "SELECT (tidewatch.classification_quality(guess, label)).* FROM {t}",
            "regression_quality by hour": "SELECT hour, (tidewatch.regression_quality(prediction, target)).* FROM {t} GROUP BY hour",
        }
        for what, sql in queries.items():
            # The same numbers as on one node.
            for t in ("qs", "qb"):
                self.same(sql.format(t=t + "_loc"), sql.format(t=t), what)
            small, plan = self.received(sql.format(t="qs"))
            big, _ = self.received(sql.format(t="qb"))
            # Partial aggregation on the workers, combined on the coordinator.
            self.assertIn("worker_partial_agg", plan, what)
            self.assertIn("coord_combine_agg", plan, what)
            # 8 times the rows, about the same bytes: each shard sends its state, not its rows (the
            # numbers in a state take a few more digits as they grow).
            self.assertLess(big, 1.25 * small, f"{what}: {small} bytes for 2,000 rows, {big} for 16,000")
        # The measure sees rows when rows are sent.
        small, _ = self.received("SELECT prediction FROM qs")
        big, _ = self.received("SELECT prediction FROM qb")
        self.assertGreater(big, 6 * small)

    def test_jobs_of_a_distributed_hypertable_run_on_the_coordinator(self):
        """Maintenance and retention of a distributed hypertable are jobs of the coordinator's
        catalog, run by its scheduler; the workers have no job for it."""
        q("CREATE TABLE jobbed (ts timestamptz NOT NULL, sat text NOT NULL, v float8)")
        q("SELECT tidewatch.create_hypertable('jobbed', 'ts', interval '1 day')")
        maintenance = one("SELECT job_id FROM tidewatch.jobs WHERE hypertable = 'jobbed'::regclass "
                          "AND proc = 'tidewatch.policy_maintenance(integer, jsonb)'::regprocedure")
        self.assertIsNotNone(maintenance)
        # The maintenance job is due at once: let its first run (on the empty table) finish, then
        # hold it, so that the late rows below stay in the default partition until the test runs it
        # (a run between the INSERT and the count below moved them: seen once in CI).
        self.assertTrue(wait_for(lambda: one(f"SELECT total_runs FROM tidewatch.job_stats WHERE job_id = {maintenance}") != "0",
                                 timeout=60))
        q(f"SELECT tidewatch.alter_job({maintenance}, next_start => now() + interval '1 day')")
        q("SET citus.shard_count = 4; SELECT create_distributed_table('jobbed', 'sat')")
        q("INSERT INTO jobbed SELECT timestamptz '2025-01-01' + i * interval '1 hour', 'SAT' || (i % 3), i "
          "FROM generate_series(0, 71) i")
        self.assertEqual(one("SELECT count(*) FROM jobbed_default"), "72")
        for w in WORKERS:
            self.assertEqual(one("SELECT count(*) FROM tidewatch.job WHERE config::text LIKE '%jobbed%' "
                                 "OR application_name LIKE '%jobbed%'", w), "0")
        # The scheduler of the coordinator's database runs maintenance now: the late rows move into
        # chunks (inside the workers), then retention drops those chunks (older than a year).
        q(f"SELECT tidewatch.alter_job({maintenance}, next_start => now())")
        self.assertTrue(wait_for(lambda: one("SELECT count(*) FROM jobbed_default") == "0", timeout=60),
                        one(f"SELECT last_status || ' ' || coalesce(last_error, '') FROM tidewatch.job_stats WHERE job_id = {maintenance}"))
        self.assertEqual(one("SELECT count(*) FROM tidewatch.show_chunks('jobbed', older_than => timestamptz '2025-01-04')"), "3")
        self.assertEqual(one("SELECT count(*) FROM jobbed"), "72")
        retention = one("SELECT tidewatch.add_retention_policy('jobbed', drop_after => interval '1 year')")
        q(f"SELECT tidewatch.alter_job({retention}, next_start => now())")
        self.assertTrue(wait_for(lambda: one("SELECT count(*) FROM jobbed") == "0", timeout=60),
                        one(f"SELECT last_status || ' ' || coalesce(last_error, '') FROM tidewatch.job_stats WHERE job_id = {retention}"))
        self.assertEqual(one("SELECT count(*) FROM tidewatch.show_chunks('jobbed', older_than => timestamptz '2025-01-04')"), "0")
        self.assertEqual(one(f"SELECT last_status FROM tidewatch.job_stats WHERE job_id = {maintenance}"), "success")
        self.assertEqual(one(f"SELECT last_status FROM tidewatch.job_stats WHERE job_id = {retention}"), "success")

    def error_of(self, sql):
        """psql's verbose error output of sql on the coordinator (which must fail)."""
        out = subprocess.run(["psql", "-X", "-q", "-d", f"{COORD} dbname={DB}", "-v", "VERBOSITY=verbose",
                              "-c", sql], capture_output=True, text=True, env={**os.environ, "LC_MESSAGES": "C"})
        self.assertNotEqual(out.returncode, 0, sql)
        return out.stderr

    def refused(self, sql, message):
        err = self.error_of(sql)
        self.assertIn("ERROR:  0A000: ", err, sql)
        self.assertIn(message, err, sql)
        self.assertIn("HINT:", err, sql)

    def test_monitors_refused_where_they_cannot_work(self):
        # A sync monitor's trigger (refused by Citus on a distributed table), a log monitor, and an
        # async monitor whose series would be spread over shards: a clear 0A000, nothing created.
        self.refused("SELECT tidewatch.monitor('m_sync', 'dist', 'value', '{sat,metric}')",
                     "is not supported: it is a Citus distributed table")
        self.refused("SELECT tidewatch.log_monitor('lm', 'dist_logs', 'message')",
                     "is not supported: it is a Citus distributed table")
        self.refused("SELECT tidewatch.monitor('m_async', 'dist', 'value', '{metric}', mode => 'async')",
                     'needs its distribution column "sat" among the series columns')
        for dsn in [COORD] + WORKERS:
            self.assertEqual(one("SELECT count(*) FROM tidewatch.monitors WHERE name IN ('m_sync', 'm_async')", dsn), "0")
            self.assertEqual(one("SELECT count(*) FROM tidewatch.log_monitors", dsn), "0")

    def test_async_monitor_on_a_distributed_table_same_as_single_node(self):
        """An async monitor on a distributed hypertable: each worker's decoder scores the rows of
        its shards, the coordinator pulls their episodes; the episodes equal those of the same
        monitor on a local table of the same rows (the oracle)."""
        rows = ("INSERT INTO {t} SELECT timestamptz '2026-03-01' + i * interval '5 minutes', 'SAT' || s, 'M' || m, "
                "10 * m + sin(i / 20.0 + s) + 0.1 * ((i * 7919 + s * 31 + m * 17) % 101) / 101.0 "
                "+ CASE WHEN i = 300 + 40 * s + m THEN 15 ELSE 0 END + CASE WHEN s = 2 AND m = 3 AND i > 700 THEN 4 ELSE 0 END "
                "+ CASE WHEN i = 760 + 10 * s AND m = 2 THEN 12 ELSE 0 END "
                "FROM generate_series({lo}, {hi}) i, generate_series(1, 6) s, generate_series(1, 4) m ORDER BY i, s, m")
        for t, distribute in (("mon_loc", ""), ("mon_dist", "SET citus.shard_count = 4; "
                                                            "SELECT create_distributed_table('mon_dist', 'sat');")):
            psql_script(f"""
                CREATE TABLE {t} (ts timestamptz NOT NULL, sat text NOT NULL, metric text NOT NULL, value float8);
                SELECT tidewatch.create_hypertable('{t}', 'ts', interval '1 day');
                {distribute}
                SELECT tidewatch.alter_job(job_id, scheduled => false) FROM tidewatch.jobs WHERE hypertable = '{t}'::regclass;
                SELECT tidewatch.monitor('am_{t}', '{t}', 'value', '{{sat,metric}}', mode => 'async', check_interval => interval '1 hour');
            """, DB, dsn=COORD)
        # The monitor is on every worker too, each with its decoder's slot.
        for w in WORKERS:
            self.assertEqual(q("SELECT mode, relid::text FROM tidewatch.monitors WHERE name = 'am_mon_dist'", w),
                             [["async", "mon_dist"]])
        # Its shards are spread over both workers.
        self.assertEqual(one("SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 'mon_dist'::regclass"), "2")

        def settle():
            for dsn in [COORD] + WORKERS:
                q("SELECT tidewatch.monitor_wait(interval '2 minutes')", dsn)
            # The monitor's job on the coordinator pulls too (it runs once at creation, late under
            # load): what counts is what the coordinator holds after this pull, not what it copied.
            one("SELECT tidewatch.pull_episodes('am_mon_dist')")
            return int(one("SELECT count(*) FROM tidewatch.anomalies WHERE monitor = 'am_mon_dist' AND kind <> 'missing_data'"))

        cols = ("series::text, started_at, ended_at, peak_at, peak_value, expected, lower, upper, score, sigma, "
                "severity, kind, (detail - 'node')::text")
        # The monitors' jobs run once at creation, on each node, and may then find the series (March,
        # months ago) silent: their missing_data episodes depend on when the job ran, not on the rows.
        episodes = f"SELECT {cols} FROM tidewatch.anomalies WHERE monitor = '{{m}}' AND kind <> 'missing_data'"
        # Three commits, then a fourth that extends or closes the episodes open after the third.
        for batch, (lo, hi) in enumerate(((0, 400), (401, 700), (701, 800), (801, 863))):
            for t in ("mon_loc", "mon_dist"):
                q(rows.format(t=t, lo=lo, hi=hi))
            if batch in (0, 2):
                continue
            pulled = settle()
            self.assertGreater(pulled, 0, f"batch {batch}: no episode on the coordinator")
            self.same(episodes.format(m="am_mon_loc"), episodes.format(m="am_mon_dist"), f"episodes after batch {batch}")
        # Every row scored exactly once, on the worker that holds its series.
        self.assertEqual(sum(int(one("SELECT coalesce(sum(n), 0) FROM tidewatch.monitor_state WHERE monitor = 'am_mon_dist'", w))
                             for w in WORKERS), 864 * 24)
        self.assertEqual(one("SELECT count(*) FROM tidewatch.monitor_state WHERE monitor = 'am_mon_dist'"), "0")
        # Every worker's episode has one copy on the coordinator; a pull with nothing new copies nothing.
        self.assertEqual(sum(int(one("SELECT count(*) FROM tidewatch.anomalies WHERE monitor = 'am_mon_dist'", w)) for w in WORKERS),
                         int(one("SELECT count(*) FROM tidewatch.anomalies WHERE monitor = 'am_mon_dist'")))
        self.assertEqual(one("SELECT tidewatch.pull_episodes('am_mon_dist')"), "0")
        self.assertEqual(one("SELECT count(*) FROM tidewatch.monitor_pulls WHERE monitor = 'am_mon_dist' AND last_error IS NULL"), "2")
        # monitor_lag on the coordinator reports the pulls (when, and no error).
        self.assertEqual(q("SELECT last_scored_at IS NOT NULL, last_error IS NULL FROM tidewatch.monitor_lag() "
                           "WHERE monitor = 'am_mon_dist'"), [["t", "t"]])
        # A device monitor (each satellite's four metrics together) likewise, in one commit.
        for t, distribute in (("dmon_loc", ""), ("dmon_dist", "SELECT create_distributed_table('dmon_dist', 'sat');")):
            psql_script(f"""
                CREATE TABLE {t} (ts timestamptz NOT NULL, sat text NOT NULL, m1 float8, m2 float8, m3 float8, m4 float8);
                SELECT tidewatch.create_hypertable('{t}', 'ts', interval '1 day');
                {distribute}
                SELECT tidewatch.alter_job(job_id, scheduled => false) FROM tidewatch.jobs WHERE hypertable = '{t}'::regclass;
                SELECT tidewatch.monitor_device('am_{t}', '{t}', '{{m1,m2,m3,m4}}', '{{sat}}', mode => 'async',
                                                check_interval => interval '1 hour');
                INSERT INTO {t} SELECT ts, sat, """ + ", ".join(f"max(value) FILTER (WHERE metric = 'M{m}')" for m in range(1, 5))
                + " FROM mon_loc GROUP BY ts, sat ORDER BY ts, sat;", DB, dsn=COORD)
        settle()
        q("SELECT tidewatch.pull_episodes('am_dmon_dist')")
        device_cols = cols + ", detail ->> 'top_sensor'"
        got = self.same(f"SELECT {device_cols} FROM tidewatch.anomalies WHERE monitor = 'am_dmon_loc' AND kind <> 'missing_data'",
                        f"SELECT {device_cols} FROM tidewatch.anomalies WHERE monitor = 'am_dmon_dist' AND kind <> 'missing_data'",
                        "device episodes")
        self.assertTrue(all(r[-1] for r in got), got)
        # Another role pulls only what it owns: a monitor of a table it may read is refused (42501),
        # one of a table it may not read is not even seen.
        # (The role is the cluster's: an earlier run's may be left if that run stopped half-way.)
        q("DROP ROLE IF EXISTS tw_other")
        q("CREATE ROLE tw_other")
        q("GRANT SELECT ON mon_dist TO tw_other")
        self.assertIn('ERROR:  42501: permission denied for monitor "am_mon_dist"',
                      self.error_of("SET ROLE tw_other; SELECT tidewatch.pull_episodes('am_mon_dist')"))
        self.assertEqual(q("SET ROLE tw_other; SELECT tidewatch.pull_episodes('am_mon_loc'), tidewatch.pull_episodes()"),
                         [["0", "0"]])
        q("REVOKE SELECT ON mon_dist FROM tw_other")
        q("DROP ROLE tw_other")
        # A worker without the monitor (as one added to the cluster later) gets it at the next pull,
        # with the monitor's owner.
        q("SELECT tidewatch.unmonitor('am_mon_dist')", WORKERS[1])
        self.assertEqual(one("SELECT count(*) FROM tidewatch.monitors WHERE name = 'am_mon_dist'", WORKERS[1]), "0")
        q("SELECT tidewatch.pull_episodes('am_mon_dist')")
        self.assertEqual(q("SELECT mode, owner::text FROM tidewatch.monitors WHERE name = 'am_mon_dist'", WORKERS[1]),
                         q("SELECT mode, owner::text FROM tidewatch.monitors WHERE name = 'am_mon_dist'"))
        # explain_anomaly works on a pulled episode, from the distributed rows.
        eid = one("SELECT id FROM tidewatch.anomalies WHERE monitor = 'am_mon_dist' ORDER BY score DESC, id LIMIT 1")
        self.assertRegex(one(f"SELECT reason FROM tidewatch.explain_anomaly({eid}) WHERE rank = 1"), "detector fired at")
        # unmonitor on the coordinator drops it everywhere; the episodes stay.
        q("SELECT tidewatch.unmonitor('am_mon_dist')")
        for dsn in [COORD] + WORKERS:
            self.assertEqual(one("SELECT count(*) FROM tidewatch.monitors WHERE name = 'am_mon_dist'", dsn), "0")
        self.assertNotEqual(one("SELECT count(*) FROM tidewatch.anomalies WHERE monitor = 'am_mon_dist'"), "0")
        for m in ("am_mon_loc", "am_dmon_loc", "am_dmon_dist"):
            q(f"SELECT tidewatch.unmonitor('{m}')")

    def test_detect_anomalies_same_as_single_node(self):
        for method in ("auto", "robust", "ewma"):
            sql = ("SELECT series::text, ts, value, expected, lower, upper, score, is_anomaly "
                   "FROM tidewatch.detect_anomalies('{t}', 'value', '{{sat,metric}}', 'ts', method => '%s')" % method)
            rows = self.same(sql.format(t="loc"), sql.format(t="dist"), f"detect_anomalies {method}")
            self.assertEqual(len(rows), 864 * 12)
        sql = ("SELECT series::text, ts, score FROM tidewatch.detect_anomalies('{t}', 'value', '{{sat,metric}}', 'ts', "
               "anomalies_only => true)")
        flagged = self.same(sql.format(t="loc"), sql.format(t="dist"), "detect_anomalies anomalies_only")
        self.assertGreater(len(flagged), 0)

    def test_devices_same_as_single_node(self):
        # Each satellite as a device of its 4 metrics (pivoted), in a local and a distributed table.
        for t, distribute in (("loc_dev", ""), ("dist_dev", "SELECT create_distributed_table('dist_dev', 'sat');")):
            q(f"CREATE TABLE {t} (ts timestamptz NOT NULL, sat text NOT NULL, m1 float8, m2 float8, m3 float8, m4 float8);"
              f"SELECT tidewatch.create_hypertable('{t}', 'ts', interval '1 day'); {distribute}"
              f"INSERT INTO {t} SELECT ts, sat, " + ", ".join(
                  f"max(value) FILTER (WHERE metric = 'M{m}')" for m in range(1, 5)) + " FROM loc GROUP BY ts, sat")
        sql = ("SELECT series::text, ts, score, is_anomaly, kind, top_sensor, contributions::text "
               "FROM tidewatch.detect_device_anomalies('{t}', '{{m1,m2,m3,m4}}', '{{sat}}', 'ts')")
        rows = self.same(sql.format(t="loc_dev"), sql.format(t="dist_dev"), "detect_device_anomalies")
        self.assertEqual(len(rows), 864 * 3)
        self.assertTrue(any(r[3] == "t" for r in rows), "no device row flagged")
        for t in ("loc_dev", "dist_dev"):
            n = one(f"SELECT tidewatch.train_device_detector('d_{t}', '{t}', '{{m1,m2,m3,m4}}', '{{sat}}', interval '10 years')")
            self.assertEqual(n, "3")
        self.same("SELECT series::text, method, encode(sha256(state), 'hex') FROM tidewatch.models WHERE name = 'd_loc_dev'",
                  "SELECT series::text, method, encode(sha256(state), 'hex') FROM tidewatch.models WHERE name = 'd_dist_dev'",
                  "trained device models")

    def test_anomaly_agg_by_series_runs_on_the_workers(self):
        plan = "\n".join(r[0] for r in q(
            "EXPLAIN (VERBOSE, COSTS OFF) SELECT sat, metric, tidewatch.anomaly_agg(ts, value) FROM dist GROUP BY sat, metric"))
        # Grouped by the distribution column: the whole aggregate runs in each shard's query.
        self.assertRegex(plan, r"Task Count: \d+")
        self.assertRegex(plan, r"Query: SELECT .*tidewatch\.anomaly_agg\(ts, value\).* GROUP BY sat, metric")
        self.assertNotIn("worker_partial_agg", plan)

    def test_train_detector_same_as_single_node(self):
        for t in ("loc", "dist"):
            n = one(f"SELECT tidewatch.train_detector('m_{t}', '{t}', 'value', '{{sat,metric}}', interval '10 years', 'robust')")
            self.assertEqual(n, "12")
        self.same("SELECT series::text, method, encode(sha256(state), 'hex') FROM tidewatch.models WHERE name = 'm_loc'",
                  "SELECT series::text, method, encode(sha256(state), 'hex') FROM tidewatch.models WHERE name = 'm_dist'",
                  "trained models")
        self.same("SELECT tidewatch.score('m_loc', '{\"sat\": \"SAT1\", \"metric\": \"M1\"}', ts, value) FROM loc "
                  "WHERE sat = 'SAT1' AND metric = 'M1'",
                  "SELECT tidewatch.score('m_dist', '{\"sat\": \"SAT1\", \"metric\": \"M1\"}', ts, value) FROM loc "
                  "WHERE sat = 'SAT1' AND metric = 'M1'", "scores of the trained models")

    def test_drift_report_same_as_single_node(self):
        sql = ("SELECT column_name, method, statistic, p_value, drifted, reference_count, current_count, "
               "reference_nulls, current_nulls FROM tidewatch.drift_report('{t}', "
               "tstzrange('2026-03-01', '2026-03-02'), tstzrange('2026-03-03', '2026-03-04'), '{{value,mode}}', 'ts')")
        rows = self.same(sql.format(t="loc"), sql.format(t="dist"), "drift_report")
        self.assertEqual({r[0] for r in rows}, {"value", "mode"})

    def test_peer_outliers_same_as_single_node(self):
        sql = ("SELECT series::text, bucket_start, value, score, is_outlier FROM tidewatch.peer_outliers('{t}', 'value', "
               "'{{sat}}', interval '1 hour', '2026-03-01', '2026-03-04')")
        self.same(sql.format(t="loc"), sql.format(t="dist"), "peer_outliers")

    def test_mine_logs_same_as_single_node(self):
        sql = "SELECT template, lines, first_seen, last_seen, is_new FROM tidewatch.mine_logs('{t}_logs', 'message', 'ts', 'miner_{t}')"
        self.same(sql.format(t="loc"), sql.format(t="dist"), "mine_logs")

    def test_explain_anomaly_same_as_single_node(self):
        # An episode of each table's monitor (recorded as a monitor would), explained from the rows.
        out = {}
        for t in ("loc", "dist"):
            q(f"""INSERT INTO tidewatch.monitors (name, relid, time_column, value_column, series_columns, method, params)
                  VALUES ('mon_{t}', '{t}', 'ts', 'value', '{{sat,metric}}', 'robust', '{{}}')""")
            eid = one(f"""INSERT INTO tidewatch.anomalies (monitor, series, started_at, ended_at, peak_at, peak_value,
                              expected, lower, upper, score, sigma, severity, kind)
                          VALUES ('mon_{t}', '{{"sat": "SAT1", "metric": "M1"}}', '2026-03-02 05:40', '2026-03-02 05:45',
                                  '2026-03-02 05:40', 26, 10.5, 9, 12, 0.99, 9, 'critical', 'spike') RETURNING id""")
            out[t] = [(r[0], r[1], r[2].replace("mon_" + t, "mon_"))
                      for r in q(f"SELECT rank, reason, evidence::text FROM tidewatch.explain_anomaly({eid})")]
            q(f"DELETE FROM tidewatch.anomalies WHERE id = {eid}")
        self.assertGreater(len(out["loc"]), 0)
        self.assertEqual(out["loc"], out["dist"])


if __name__ == "__main__":
    unittest.main()
