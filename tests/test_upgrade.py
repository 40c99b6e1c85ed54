"""Upgrades keep users' data: the previous release (git tag v0.1.0) is built and installed into a
private copy of PostgreSQL, a database gets hypertables, jobs, a model, sync and async monitors,
a drift reference and monitor, miners and log monitors; then this build is installed over it,
`ALTER EXTENSION tidewatch UPDATE` runs, and everything must still be there and still work.
Then a fresh install of this version and the upgraded database must define the same objects
(tests/catalog.py compares them line by line).

Building the previous release takes a few minutes the first time (its own cargo target dir).
"""
import os
import shutil
import subprocess
import unittest

from catalog import snapshot
from pgtest import DB, REPO, require_cluster, spare_cluster

PREVIOUS = "v0.1.0"
# The commit of v0.1.0, for clones made without tags.
PREVIOUS_COMMIT = "95d0475"
TEST_DIR = os.environ.get("TIDEWATCH_TEST_DIR", "/var/tmp/tidewatch-test")
TARGET = os.environ.get("CARGO_TARGET_DIR", "/var/tmp/tidewatch-target")


def git(*args):
    return subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True)


def previous_rev():
    for rev in (PREVIOUS, PREVIOUS_COMMIT):
        if git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode == 0:
            return rev
    return None


def lib(call, env=None):
    proc = subprocess.run(["bash", "-c", f'source "{REPO}/tools/lib.sh" && {call}'], capture_output=True,
                          text=True, timeout=3600, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise AssertionError(f"{call} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


SETUP_OLD = r"""
CREATE TABLE metrics (ts timestamptz NOT NULL, sat text, value float8);
SELECT tidewatch.create_hypertable('metrics', 'ts', chunk_time_interval => interval '1 day');
INSERT INTO metrics SELECT timestamptz '2026-01-01' + i * interval '1 minute', 'SAT' || (i % 3),
       sin(i / 50.0) + CASE WHEN i IN (2000, 3100) THEN 12 ELSE 0 END
FROM generate_series(1, 5000) i;
CREATE TABLE logs (ts timestamptz NOT NULL, message text);
SELECT tidewatch.create_hypertable('logs', 'ts', chunk_time_interval => interval '1 day');
INSERT INTO logs SELECT timestamptz '2026-01-01' + i * interval '10 seconds',
       CASE WHEN i % 9 = 0 THEN 'ERROR connection to 10.0.0.' || (i % 50) || ' timed out after ' || i || ' ms'
            ELSE 'job ' || i || ' finished in ' || (i % 97) || ' ms' END
FROM generate_series(1, 2000) i;
SELECT tidewatch.add_retention_policy('metrics', drop_after => interval '100 years');
CREATE TABLE beats (at timestamptz);
CREATE PROCEDURE beat(job_id int, config jsonb) LANGUAGE sql AS $$ INSERT INTO beats VALUES (now()) $$;
SELECT tidewatch.add_job('beat', interval '1 second');
SELECT tidewatch.train_detector('mdl', 'metrics', 'value', '{sat}', interval '100 years', 'robust');
SELECT tidewatch.save_reference('ref', 'metrics', tstzrange('2026-01-01', '2026-01-02'), '{value}');
SELECT tidewatch.monitor_drift('drift', 'metrics', 'ref', interval '1 day', schedule => interval '1 hour');
SELECT tidewatch.create_log_miner('mnr');
SELECT count(*) FROM tidewatch.mine_logs('logs', 'message', 'ts', 'mnr');
SELECT tidewatch.record_event('user', 'a deploy', timestamptz '2026-01-02 10:00', 'deploy');
"""

COUNTS = {
    "rows": "SELECT (SELECT count(*) FROM metrics) || '/' || (SELECT count(*) FROM logs)",
    "models": "SELECT count(*) || '/' || sum(n) FROM tidewatch.models",
    "monitor_state": "SELECT monitor || ':' || count(*) || ':' || sum(n) FROM tidewatch.monitor_state GROUP BY monitor ORDER BY 1",
    "episodes": "SELECT monitor || ':' || count(*) FROM tidewatch.anomalies GROUP BY monitor ORDER BY 1",
    "templates": "SELECT miner || ':' || count(*) || ':' || sum(count) FROM tidewatch.log_templates GROUP BY miner ORDER BY 1",
    "log_counts": "SELECT monitor || ':' || sum(n) FROM tidewatch.log_counts GROUP BY monitor ORDER BY 1",
    "jobs": "SELECT count(*) FROM tidewatch.jobs",
    "references": "SELECT count(*) FROM tidewatch.references",
    "drift_results": "SELECT count(*) FROM tidewatch.drift_results",
    "events": "SELECT count(*) FROM tidewatch.events",
    "hypertables": "SELECT string_agg(hypertable::text, ',' ORDER BY hypertable::text) FROM tidewatch.hypertables",
}


@require_cluster
class UpgradeTest(unittest.TestCase):
    def test_upgrade_from_the_previous_release_keeps_data_and_matches_a_fresh_install(self):
        rev = previous_rev()
        if rev is None:
            self.skipTest(f"neither the tag {PREVIOUS} nor the commit {PREVIOUS_COMMIT} is in this clone")
        work = os.path.join(TEST_DIR, "upgrade")
        src = os.path.join(work, "old-src")
        shutil.rmtree(src, ignore_errors=True)
        os.makedirs(src)
        archive = subprocess.run(f'git -C "{REPO}" archive {rev} | tar -x -C "{src}"', shell=True)
        self.assertEqual(archive.returncode, 0)
        # A private PostgreSQL for this test: the old library must not replace the one the other
        # tests run.
        pg_config = lib(f'copy_pg "{work}/pg"')
        pgbin = os.path.dirname(pg_config)
        old_pkg = os.path.join(work, "old-package")
        shutil.rmtree(old_pkg, ignore_errors=True)
        # Its own target dir: the old and new crates share names, and cargo would hand the
        # packaging step whichever library it built last.
        subprocess.run(["bash", "-c", f'cd "{src}/extension" && cargo pgrx package --debug --pg-config "{pg_config}" --out-dir "{old_pkg}"'],
                       check=True, capture_output=True, timeout=3600,
                       env={**os.environ, "CARGO_TARGET_DIR": os.path.join(os.path.dirname(TARGET.rstrip("/")), "tidewatch-target-previous")})
        subprocess.run(f'cp -a "{old_pkg}"/. /', shell=True, check=True)
        with spare_cluster("upgrade", pgbin=pgbin) as c:
            c.psql("CREATE EXTENSION tidewatch VERSION '0.1.0'")
            c.script(SETUP_OLD)
            c.psql("SELECT tidewatch.monitor('sync_mon', 'metrics', 'value', '{sat}', 'robust')")
            c.psql("SELECT tidewatch.monitor('async_mon', 'metrics', 'value', '{sat}', 'ewma', mode => 'async')")
            c.psql("SELECT tidewatch.log_monitor('logmon', 'logs', 'message', 'ts')")
            c.psql("SELECT tidewatch.alter_job(job_id, scheduled => false) FROM tidewatch.monitors")
            c.psql("INSERT INTO metrics SELECT timestamptz '2026-01-05' + i * interval '1 minute', 'SAT' || (i % 3),"
                   " CASE WHEN i = 500 THEN 30 ELSE sin(i / 50.0) END FROM generate_series(1, 1000) i")
            c.psql("INSERT INTO logs SELECT timestamptz '2026-01-05' + i * interval '1 second', 'ERROR disk full on /dev/sd' || (i % 3)"
                   " FROM generate_series(1, 300) i")
            c.psql("SELECT tidewatch.monitor_wait(interval '90 seconds')")
            c.psql("SELECT count(*) FROM tidewatch.run_drift_monitor('drift')")
            before = {k: c.psql(q) for k, q in COUNTS.items()}
            self.assertEqual(before["monitor_state"][-1][0].split(":")[0], "sync_mon")
            # This build over it, as a user would: install, restart, ALTER EXTENSION ... UPDATE.
            # 0.1.0's decoder of async monitors can hold up a fast shutdown; the upgrade must then
            # also survive the immediate shutdown (crash recovery) it turns into.
            print(f"\n[upgrade] 0.1.0 stopped by a {c.stop()} shutdown")
            lib(f'install_package "{pg_config}" --debug')
            c.start()
            c.psql("ALTER EXTENSION tidewatch UPDATE")
            version = c.one("SELECT extversion FROM pg_extension WHERE extname = 'tidewatch'")
            self.assertNotEqual(version, "0.1.0")
            after = {k: c.psql(q) for k, q in COUNTS.items()}
            self.assertEqual(after, before, "data was lost or changed by the upgrade")
            # Everything still works.
            self.assertEqual(c.one("SELECT tidewatch.predict('mdl', '{\"sat\": \"SAT1\"}', '2026-01-06', 50)"), "-1")
            c.psql("INSERT INTO metrics SELECT timestamptz '2026-01-06' + i * interval '1 minute', 'SAT' || (i % 3), sin(i / 50.0)"
                   " FROM generate_series(1, 300) i")
            c.psql("SELECT tidewatch.monitor_wait(interval '90 seconds')")
            n = dict(tuple(r[0].split(":", 1)) for r in c.psql(
                "SELECT monitor || ':' || sum(n) FROM tidewatch.monitor_state GROUP BY monitor"))
            old_n = dict(tuple(r[0].split(":")[0::2]) for r in before["monitor_state"])
            self.assertEqual(int(n["sync_mon"]), int(old_n["sync_mon"]) + 300)
            self.assertEqual(int(n["async_mon"]), int(old_n["async_mon"]) + 300)
            self.assertGreater(int(c.one("SELECT count(*) FROM tidewatch.drift_report('metrics', 'ref', tstzrange('2026-01-05', '2026-01-06'))")), 0)
            self.assertIn("<*>", c.one("SELECT tidewatch.log_parse('job 99999 finished in 5 ms', 'mnr')"))
            c.psql("SELECT * FROM tidewatch.run_maintenance('metrics')")
            retention = c.one("SELECT job_id FROM tidewatch.jobs"
                              " WHERE proc = 'tidewatch.policy_retention(integer, jsonb)'::regprocedure")
            self.assertIsNotNone(retention)
            c.psql(f"CALL tidewatch.run_job({retention})")
            self.assertEqual(c.one("SELECT count(*) > 0 FROM beats WHERE at > now() - interval '1 minute'"), "t")
            # The same objects as a fresh install of this version.
            upgraded = snapshot(lambda q: c.psql(q))
            c.psql("CREATE DATABASE fresh", db="postgres")
            c.psql("CREATE EXTENSION tidewatch", db="fresh")
            fresh = snapshot(lambda q: c.psql(q, db="fresh"))
            # The comparison means something only if the description does.
            self.assertGreater(len(fresh), 500, "the catalog snapshot of a fresh install is nearly empty")
            missing = sorted(set(fresh) - set(upgraded))
            extra = sorted(set(upgraded) - set(fresh))
            self.assertEqual((missing, extra), ([], []),
                             "fresh install (first list) and upgraded database (second list) differ")


if __name__ == "__main__":
    unittest.main()
