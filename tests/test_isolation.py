"""Derived data is visible only to roles that may read its source (issue 15, item 2).

An owner makes two hypertables, `secret` and `shared`, and derives everything Tidewatch derives
from each: a sync monitor with episodes and states, a trained model, a saved reference, a drift
monitor with results, a log miner with a log monitor (templates, counts, bursts), and an event.
`tw_iso_reader` and Grafana's `tidewatch_reader` may read `shared` only; `tw_iso_stranger` may read
neither. For every catalog table and view, the rows derived from each source are counted as the
superuser (the oracle: both counts must be positive, so each check can fail) and as each role.
Functions that take a relation refuse an unreadable one with 42501, before any other check.
"""
import os
import subprocess
import unittest

from pgtest import DB, DSN, REPO, fresh_database, one, psql, require_cluster

ROLES = ("tw_iso_owner", "tw_iso_reader", "tw_iso_stranger", "tw_iso_writer")

# table or view -> SQL expression naming the source ('secret' or 'shared') of a row
SOURCES = {
    "tidewatch.models": "substr(name, 4)",
    "tidewatch.monitors": "substr(name, 3)",
    "tidewatch.monitor_state": "substr(monitor, 3)",
    "tidewatch.anomalies": "substr(monitor, 3)",
    "tidewatch.events": "replace(relid::text, '_log', '')",
    "tidewatch.references": "substr(name, 3)",
    "tidewatch.drift_monitors": "substr(name, 3)",
    "tidewatch.drift_results": "substr(monitor, 3)",
    "tidewatch.log_miners": "substr(name, 4)",
    "tidewatch.log_templates": "substr(miner, 4)",
    "tidewatch.log_monitors": "substr(name, 3)",
    "tidewatch.log_counts": "substr(monitor, 3)",
    "tidewatch.log_monitor_state": "substr(monitor, 3)",
    "tidewatch.hypertables": "replace(hypertable::text, '_log', '')",
    "tidewatch.chunks": "replace(hypertable::text, '_log', '')",
}

SETUP = """
SET ROLE tw_iso_owner;
CREATE TABLE {t} (ts timestamptz NOT NULL, sat text NOT NULL, v float8);
SELECT tidewatch.create_hypertable('{t}', 'ts', chunk_time_interval => interval '1 day');
CREATE TABLE {t}_log (ts timestamptz NOT NULL, msg text);
SELECT tidewatch.create_hypertable('{t}_log', 'ts', chunk_time_interval => interval '1 day');
INSERT INTO {t} SELECT now() - interval '3 days' + i * interval '1 minute', s, sin(i / 30.0) + (i % 7) * 0.01
FROM generate_series(0, 2879) i, (VALUES ('A'), ('B')) x(s);
SELECT tidewatch.train_detector('md_{t}', '{t}', 'v', '{{sat}}', interval '30 days', 'ewma');
SELECT tidewatch.monitor('m_{t}', '{t}', 'v', '{{sat}}', 'ewma');
INSERT INTO {t} SELECT now() - interval '1 day' + i * interval '1 minute', 'A',
       CASE WHEN i BETWEEN 600 AND 610 THEN 50 ELSE sin(i / 30.0) END
FROM generate_series(0, 1200) i;
SELECT tidewatch.save_reference('r_{t}', '{t}', tstzrange(now() - interval '3 days', now() - interval '2 days'), '{{v}}');
SELECT tidewatch.monitor_drift('d_{t}', '{t}', 'r_{t}', interval '1 day', columns => '{{v}}');
SELECT count(*) FROM tidewatch.run_drift_monitor('d_{t}');
SELECT tidewatch.create_log_miner('mi_{t}', '{{}}');
SELECT tidewatch.log_monitor('l_{t}', '{t}_log', 'msg', 'ts', 'mi_{t}');
INSERT INTO {t}_log SELECT now() - interval '10 minutes' + i * interval '1 second',
       CASE WHEN i % 2 = 0 THEN 'ERROR connection refused by host 10.0.0.' || i ELSE 'job ' || i || ' finished in ' || i || ' ms' END
FROM generate_series(1, 120) i;
SELECT tidewatch.record_event('user', 'maintenance of {t}', now() - interval '1 day', relation => '{t}'::regclass);
"""


@require_cluster
class Isolation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        fresh_database()
        roles = "; ".join(f"DROP ROLE IF EXISTS {r}" for r in ROLES)
        psql(f"DROP OWNED BY {', '.join(ROLES)} CASCADE", check=False)
        psql(roles + "; " + "; ".join(f"CREATE ROLE {r}" for r in ROLES), db="postgres")
        psql("GRANT CREATE ON SCHEMA public TO tw_iso_owner")
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", f"{DSN} dbname={DB}",
                        "-f", os.path.join(REPO, "sql", "roles.sql")], check=True, capture_output=True)
        for t in ("secret", "shared"):
            psql(SETUP.format(t=t))
        psql("SET ROLE tw_iso_owner; GRANT SELECT ON shared, shared_log TO tw_iso_reader, tidewatch_reader")

    def counts(self, table, role=None):
        prefix = f"SET ROLE {role}; " if role else ""
        rows = psql(f"{prefix}SELECT {SOURCES[table]} AS src, count(*) FROM {table} GROUP BY 1")
        return {src: int(n) for src, n in rows}

    def test_every_catalog_table_and_view_shows_only_what_the_role_may_read(self):
        expected = {
            "tw_iso_owner": {"secret", "shared"},
            "tw_iso_reader": {"shared"},
            "tidewatch_reader": {"shared"},
            "tw_iso_stranger": set(),
        }
        for table in SOURCES:
            truth = self.counts(table)
            for src in ("secret", "shared"):
                self.assertGreater(truth.get(src, 0), 0, f"{table}: the setup derived no rows from {src}")
            for role, visible in expected.items():
                with self.subTest(table=table, role=role):
                    seen = self.counts(table, role)
                    for src in ("secret", "shared"):
                        want = truth[src] if src in visible else 0
                        self.assertEqual(seen.get(src, 0), want, f"{role} reads {table} rows derived from {src}")

    def test_functions_refuse_an_unreadable_relation_with_42501(self):
        calls = [
            "SELECT count(*) FROM tidewatch.detect_anomalies('secret', 'v', '{sat}')",
            "SELECT tidewatch.train_detector('x', 'secret', 'v')",
            "SELECT tidewatch.monitor('x', 'secret', 'v')",
            "SELECT count(*) FROM tidewatch.peer_outliers('secret', 'v', '{sat}', interval '1 hour', now() - interval '1 day', now())",
            "SELECT count(*) FROM tidewatch.drift_report('secret', 'r_secret', tstzrange(now() - interval '1 day', now()))",
            "SELECT tidewatch.save_reference('x', 'secret', tstzrange(now() - interval '1 day', now()))",
        ]
        for call in calls:
            for role in ("tw_iso_stranger", "tw_iso_reader", "tidewatch_reader"):
                with self.subTest(call=call, role=role):
                    out = subprocess.run(
                        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose",
                         "-d", f"{DSN} dbname={DB}", "-c", f"SET ROLE {role}", "-c", "\\set VERBOSITY verbose",
                         "-c", call],
                        capture_output=True, text=True, env={**os.environ, "LC_MESSAGES": "C"})
                    self.assertNotEqual(out.returncode, 0, f"{role} ran {call}")
                    self.assertIn("42501", out.stderr, out.stderr)
                    self.assertIn("permission denied for table secret", out.stderr)
        # The same calls on the readable table pass the check (the reader may score it).
        n = one("SET ROLE tw_iso_reader; SELECT count(*) FROM tidewatch.detect_anomalies('shared', 'v', '{sat}')")
        self.assertGreater(int(n), 0)

    def test_episodes_models_and_lag_of_an_unreadable_source_stay_hidden(self):
        secret_id = one("SELECT id FROM tidewatch.anomalies WHERE monitor = 'm_secret' ORDER BY id LIMIT 1")
        shared_id = one("SELECT id FROM tidewatch.anomalies WHERE monitor = 'm_shared' ORDER BY id LIMIT 1")
        self.assertIsNotNone(secret_id)
        for role in ("tw_iso_stranger", "tw_iso_reader"):
            with self.subTest(role=role):
                out = psql(f"SET ROLE {role}; SELECT count(*) FROM tidewatch.explain_anomaly({secret_id})", check=False)
                self.assertFalse(out and out[0][0] != "0", f"{role} got an explanation of a secret episode: {out}")
                out = psql(f"SET ROLE {role}; SELECT tidewatch.predict('md_secret', '{{\"sat\": \"A\"}}', now(), 1.0)",
                           check=False)
                self.assertEqual(out, [], f"{role} used a model trained on secret: {out}")
                lag = psql(f"SET ROLE {role}; SELECT monitor FROM tidewatch.monitor_lag()")
                self.assertNotIn(["m_secret"], lag)
        self.assertGreater(int(one(f"SET ROLE tw_iso_reader; SELECT count(*) FROM tidewatch.explain_anomaly({shared_id})")), 0)
        self.assertIsNotNone(one("SET ROLE tw_iso_reader; SELECT tidewatch.predict('md_shared', '{\"sat\": \"A\"}', now(), 1.0)"))

    def test_partitions_of_the_catalog_are_not_readable_around_the_policies(self):
        parts = psql("SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                     " WHERE n.nspname = 'tidewatch' AND c.relispartition AND c.relkind IN ('r', 'p')")
        self.assertTrue(parts)
        for (part,) in parts:
            for role in ("tw_iso_stranger", "tidewatch_reader"):
                with self.subTest(part=part, role=role):
                    out = subprocess.run(["psql", "-X", "-q", "-d", f"{DSN} dbname={DB}", "-c", f"SET ROLE {role}",
                                          "-c", f"SELECT count(*) FROM {part}"],
                                         capture_output=True, text=True, env={**os.environ, "LC_MESSAGES": "C"})
                    self.assertIn("permission denied", out.stderr, f"{role} read {part} directly")

    def test_jobs_are_their_owners_and_monitoring_roles(self):
        owner_jobs = int(one("SELECT count(*) FROM tidewatch.jobs WHERE owner = 'tw_iso_owner'::regrole"))
        self.assertGreater(owner_jobs, 0)
        for role, want in (("tw_iso_owner", owner_jobs), ("tw_iso_stranger", 0), ("tw_iso_reader", 0),
                           ("tidewatch_reader", owner_jobs)):
            with self.subTest(role=role):
                for view in ("tidewatch.jobs", "tidewatch.job_stats j JOIN tidewatch.jobs USING (job_id)"):
                    n = int(one(f"SET ROLE {role}; SELECT count(*) FROM {view} WHERE owner = 'tw_iso_owner'::regrole"))
                    self.assertEqual(n, want, f"{role} sees {n} jobs of tw_iso_owner through {view}")

    def run_as(self, role, sql):
        """Run `sql` as `role` in a transaction that is rolled back; (return code, stdout, stderr)."""
        out = subprocess.run(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", f"{DSN} dbname={DB}"],
            input=f"\\set VERBOSITY verbose\nBEGIN;\nSET ROLE {role};\n{sql};\nROLLBACK;\n",
            capture_output=True, text=True, env={**os.environ, "LC_MESSAGES": "C"})
        return out.returncode, out.stdout.strip(), out.stderr

    def test_only_owners_change_or_drop_their_monitors_models_and_references(self):
        tables = {"tidewatch.monitors": "name", "tidewatch.models": "name", "tidewatch.references": "name",
                  "tidewatch.drift_monitors": "name", "tidewatch.log_monitors": "name"}
        for table, col in tables.items():
            total = int(one(f"SELECT count(*) FROM {table} WHERE {col} LIKE '%shared'"))
            self.assertGreater(total, 0, table)  # the oracle: there is something to protect
            for role in ("tw_iso_reader", "tw_iso_stranger", "tidewatch_reader"):
                with self.subTest(table=table, role=role):
                    for stmt in (f"WITH d AS (DELETE FROM {table} RETURNING 1) SELECT count(*) FROM d",
                                 f"WITH u AS (UPDATE {table} SET owner = current_user::regrole RETURNING 1) "
                                 "SELECT count(*) FROM u"):
                        rc, out, err = self.run_as(role, stmt)
                        self.assertTrue(rc != 0 or out == "0", f"{role}: {stmt} -> {out} {err}")
        # The functions say so instead of doing nothing.
        calls = ["SELECT tidewatch.unmonitor('m_shared')", "SELECT tidewatch.unmonitor_drift('d_shared')",
                 "SELECT tidewatch.unmonitor_logs('l_shared')",
                 "SELECT tidewatch.save_reference('r_shared', 'shared', "
                 "tstzrange(now() - interval '3 days', now() - interval '2 days'), '{v}')"]
        for call in calls:
            with self.subTest(call=call):
                rc, out, err = self.run_as("tw_iso_reader", call)
                self.assertNotEqual(rc, 0, f"the reader ran {call}: {out}")
                self.assertIn("42501", err)
                self.assertIn("must be owner of", err)
                rc, out, err = self.run_as("tw_iso_owner", call)
                self.assertEqual(rc, 0, f"the owner could not run {call}: {err}")
        # A monitoring role sees every job's statistics and changes none.
        psql("INSERT INTO tidewatch.job_stat (job_id) SELECT id FROM tidewatch.job "
             "WHERE owner = 'tw_iso_owner'::regrole ON CONFLICT DO NOTHING")
        self.assertGreater(int(one("SELECT count(*) FROM tidewatch.job_stat")), 0)
        rc, out, err = self.run_as("tidewatch_reader", "WITH u AS (UPDATE tidewatch.job_stat SET total_failures = 0 RETURNING 1) "
                                   "SELECT count(*) FROM u")
        self.assertTrue(rc != 0 or out.splitlines()[-1] == "0", f"the monitoring role changed job statistics: {out}")

    def test_the_log_catalog_is_changed_by_its_owners(self):
        psql("SET ROLE tw_iso_owner; INSERT INTO tidewatch.log_rules (ruleset, priority, pattern, category)"
             " VALUES ('rs_owner', 1, 'refused', 'connection') ON CONFLICT DO NOTHING")
        self.assertEqual(one("SELECT count(*) FROM tidewatch.log_rules WHERE ruleset = 'rs_owner'"), "1")
        for role in ("tw_iso_reader", "tw_iso_stranger"):
            with self.subTest(role=role):
                # Everyone classifies with it ...
                rc, out, err = self.run_as(role, "SELECT category FROM tidewatch.classify_log('connection refused', 'rs_owner')")
                self.assertEqual((rc, out), (0, "connection"), err)
                # ... nobody else changes it, adds to it or removes it.
                for stmt in ("WITH u AS (UPDATE tidewatch.log_rules SET category = 'timeout' RETURNING 1) SELECT count(*) FROM u",
                             "WITH d AS (DELETE FROM tidewatch.log_rules RETURNING 1) SELECT count(*) FROM d"):
                    rc, out, err = self.run_as(role, stmt)
                    self.assertTrue(rc != 0 or out == "0", f"{role}: {stmt} -> {out}")
                rc, out, err = self.run_as(role, "INSERT INTO tidewatch.log_rules (ruleset, priority, pattern, category)"
                                           " VALUES ('rs_owner', 0, 'ok', 'timeout')")
                self.assertNotEqual(rc, 0, f"{role} added a rule to another role's ruleset")
                self.assertIn("row-level security", err)
                # A ruleset of its own is fine (the check can pass).
                rc, out, err = self.run_as(role, "INSERT INTO tidewatch.log_rules (ruleset, priority, pattern, category)"
                                           f" VALUES ('rs_{role}', 0, 'ok', 'timeout')")
                self.assertEqual(rc, 0, err)
                # A miner's settings and a classifier or miner of another role.
                rc, out, err = self.run_as(role, "UPDATE tidewatch.log_miners SET config = '{\"max_clusters\": 1}'")
                self.assertNotEqual(rc, 0)
                self.assertIn("permission denied", err)
                # The miner: not its owner (the reader sees it), or not there at all (the stranger).
                rc, out, err = self.run_as(role, "SELECT tidewatch.drop_log_miner('mi_shared')")
                self.assertNotEqual(rc, 0)
                self.assertIn("42501" if role == "tw_iso_reader" else "42704", err)
        psql("SET ROLE tw_iso_owner; SELECT tidewatch.train_log_classifier('clf_owner', 'shared_log', 'msg', 'msg')")
        rc, out, err = self.run_as("tw_iso_reader", "SELECT tidewatch.train_log_classifier('clf_owner', 'shared_log', 'msg', 'msg')")
        self.assertIn("must be owner of log classifier", err)
        rc, out, err = self.run_as("tw_iso_owner", "SELECT tidewatch.drop_log_miner('mi_shared')")
        self.assertIn("2BP01", err)  # used by a monitor: the owner passes the owner check

    def test_no_monitor_is_made_by_hand_on_an_unreadable_table(self):
        rows = {
            "tidewatch.log_monitors (name, relid, message_column, miner, mode)":
                "('forged', 'secret_log', 'msg', 'default', 'async')",
            "tidewatch.monitors (name, relid, value_column, time_column, method, mode)":
                "('forged', 'secret', 'v', 'ts', 'ewma', 'async')",
        }
        for target, values in rows.items():
            with self.subTest(target=target):
                rc, out, err = self.run_as("tw_iso_stranger", f"INSERT INTO {target} VALUES {values}")
                self.assertNotEqual(rc, 0, f"the stranger inserted into {target}")
                self.assertIn("row-level security", err)
                # The same row on a table the role may read is accepted (the check can pass).
                rc, out, err = self.run_as("tw_iso_reader", f"INSERT INTO {target} VALUES "
                                           + values.replace("secret", "shared"))
                self.assertEqual(rc, 0, err)
        rc, out, err = self.run_as("tw_iso_stranger", "SELECT tidewatch.log_monitor('forged', 'secret_log', 'msg', "
                                   "mode => 'async')")
        self.assertNotEqual(rc, 0)
        self.assertIn("permission denied for table secret_log", err)

    def test_anomaly_and_log_monitors_share_one_name_space(self):
        # A log monitor named after another role's anomaly monitor would open its episodes.
        for role, rel in (("tw_iso_reader", "shared_log"), ("tw_iso_owner", "shared_log")):
            with self.subTest(role=role):
                rc, out, err = self.run_as(role, "INSERT INTO tidewatch.log_monitors (name, relid, message_column, miner)"
                                           f" VALUES ('m_secret', '{rel}', 'msg', 'default')")
                self.assertNotEqual(rc, 0)
                self.assertIn("42710", err)
        rc, out, err = self.run_as("tw_iso_owner", "SELECT tidewatch.monitor('l_shared', 'shared', 'v', '{sat}', 'ewma')")
        self.assertNotEqual(rc, 0)
        self.assertIn("42710", err)

    def test_the_monitor_trigger_fires_only_on_its_table(self):
        before = psql("SELECT count(*), coalesce(sum(n), 0) FROM tidewatch.monitor_state WHERE monitor = 'm_secret'")
        rc, out, err = self.run_as("tw_iso_stranger", """
            CREATE TEMP TABLE decoy (ts timestamptz, sat text, v float8);
            CREATE TRIGGER forge AFTER INSERT ON decoy REFERENCING NEW TABLE AS tidewatch_new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION tidewatch._monitor_trigger('m_secret');
            INSERT INTO decoy SELECT now() + i * interval '1 minute', 'A', 1e9 FROM generate_series(1, 50) i""")
        self.assertNotEqual(rc, 0, "a trigger attached by hand scored rows for another role's monitor")
        self.assertIn("42501", err)
        self.assertEqual(before, psql("SELECT count(*), coalesce(sum(n), 0) FROM tidewatch.monitor_state "
                                      "WHERE monitor = 'm_secret'"))

    def test_a_role_that_may_only_insert_gets_its_log_lines_mined_and_counted(self):
        # An application role commonly holds INSERT on its log table and nothing else; the policies
        # hide the monitor, its miner and its counts from it, and its lines used to be refused.
        psql("SET ROLE tw_iso_owner; GRANT INSERT ON secret_log TO tw_iso_writer")
        count = ("SELECT coalesce(sum(n), 0) FROM tidewatch.log_counts WHERE monitor = 'l_secret' "
                 "AND category = 'connection'")
        before = int(one(count))
        rc, out, err = self.run_as("tw_iso_writer", "INSERT INTO secret_log SELECT now(), "
                                   "'ERROR connection refused by host 10.9.9.' || i FROM generate_series(1, 7) i; "
                                   f"RESET ROLE; {count}")
        self.assertEqual(rc, 0, err)
        self.assertEqual(int(out.splitlines()[-1]), before + 7)
        # It still reads nothing derived from the table.
        for table in ("tidewatch.log_counts", "tidewatch.log_templates", "tidewatch.log_monitors"):
            with self.subTest(table=table):
                self.assertEqual(self.counts(table, "tw_iso_writer").get("secret", 0), 0)

    def test_async_monitors_are_started_by_roles_granted_the_slot(self):
        # They share the database's replication slot, which keeps WAL: a role needs EXECUTE on
        # tidewatch._monitor_slot() (it used to get "permission denied for function _monitor_slot").
        calls = ("SELECT tidewatch.monitor('ma_shared', 'shared', 'v', '{sat}', 'ewma', mode => 'async')",
                 "SELECT tidewatch.log_monitor('la_secret', 'secret_log', 'msg', 'ts', 'mi_secret', mode => 'async')")
        for call in calls:
            with self.subTest(call=call):
                rc, out, err = self.run_as("tw_iso_owner", call)
                self.assertNotEqual(rc, 0)
                self.assertIn("42501", err)
                self.assertIn("permission denied to start an async monitor", err)
                self.assertIn("GRANT EXECUTE ON FUNCTION tidewatch._monitor_slot() TO tw_iso_owner", err)
        psql("GRANT EXECUTE ON FUNCTION tidewatch._monitor_slot() TO tw_iso_owner")
        try:
            psql(f"SET ROLE tw_iso_owner; {calls[1]}")
            # The decoder counts the lines of a role that may only INSERT, as the trigger does.
            psql("SET ROLE tw_iso_owner; GRANT INSERT ON secret_log TO tw_iso_writer")
            psql("SET ROLE tw_iso_writer; INSERT INTO secret_log SELECT now(), "
                 "'ERROR connection refused by host 10.8.8.' || i FROM generate_series(1, 5) i")
            one("SELECT tidewatch.monitor_wait(interval '60 seconds')")
            n = one("SELECT coalesce(sum(n), 0) FROM tidewatch.log_counts WHERE monitor = 'la_secret' "
                    "AND category = 'connection'")
            self.assertEqual(int(n), 5)
        finally:
            psql("SET ROLE tw_iso_owner; SELECT tidewatch.unmonitor_logs('la_secret')", check=False)
            psql("REVOKE EXECUTE ON FUNCTION tidewatch._monitor_slot() FROM tw_iso_owner")

    def test_log_monitor_triggers_fire_only_on_their_table(self):
        # Both run as the extension's owner (for the writer above): attached by hand to another
        # table they would mine, count and open bursts for another role's monitor.
        before = psql("SELECT count(*), coalesce(sum(n), 0) FROM tidewatch.log_counts WHERE monitor = 'l_secret'")
        for kind, function in (("BEFORE INSERT", "_log_monitor_row"), ("AFTER INSERT", "_log_monitor_statement")):
            level = "ROW" if function == "_log_monitor_row" else "STATEMENT"
            with self.subTest(trigger=function):
                rc, out, err = self.run_as("tw_iso_stranger", f"""
                    CREATE TEMP TABLE decoy (ts timestamptz, msg text);
                    CREATE TRIGGER forge {kind} ON decoy FOR EACH {level}
                        EXECUTE FUNCTION tidewatch.{function}('l_secret');
                    INSERT INTO decoy SELECT now(), 'ERROR connection refused ' || i FROM generate_series(1, 50) i""")
                self.assertNotEqual(rc, 0, f"{function} attached by hand counted lines for another role's monitor")
                self.assertIn("42501", err)
                self.assertIn("not on its table", err)
        self.assertEqual(before, psql("SELECT count(*), coalesce(sum(n), 0) FROM tidewatch.log_counts "
                                      "WHERE monitor = 'l_secret'"))

    def test_only_the_monitors_write_counts_and_only_owners_delete_templates(self):
        templates = "SELECT count(*) FROM tidewatch.log_templates WHERE miner IN ('mi_secret', 'mi_shared')"
        total = int(one(templates))
        self.assertGreater(total, 0)  # the oracle: there is something to protect
        for role in ("tw_iso_reader", "tw_iso_stranger", "tidewatch_reader"):
            with self.subTest(role=role):
                for stmt in ("DELETE FROM tidewatch.log_templates",
                             "UPDATE tidewatch.log_templates SET template = 'forged', count = 0",
                             "INSERT INTO tidewatch.log_templates (miner, id, template, first_seen, last_seen, count,"
                             " cluster) VALUES ('default', 999999, 'forged', now(), now(), 1, '{}')"):
                    rc, out, err = self.run_as(role, f"{stmt}; RESET ROLE; SELECT ({templates} AND template <> 'forged'"
                                               " AND count > 0) || ' ' || (SELECT count(*) FROM tidewatch.log_templates"
                                               " WHERE template = 'forged')")
                    self.assertTrue(rc != 0 or out.splitlines()[-1] == f"{total} 0", f"{role}: {stmt} -> {out} {err}")
                for table in ("tidewatch.log_counts", "tidewatch.log_monitor_state"):
                    for stmt in (f"DELETE FROM {table}", f"UPDATE {table} SET updated_at = now()"
                                 if table.endswith("state") else f"UPDATE {table} SET n = 0",
                                 f"INSERT INTO {table} (monitor, category) VALUES ('l_secret', 'forged')"
                                 if table.endswith("state") else
                                 f"INSERT INTO {table} VALUES ('l_secret', now(), 1, 'x', 'error', 1000)"):
                        rc, out, err = self.run_as(role, stmt)
                        self.assertNotEqual(rc, 0, f"{role}: {stmt}")
                        self.assertIn("permission denied", err)
        # The owner of a miner may start it afresh (the check can pass).
        rc, out, err = self.run_as("tw_iso_owner", "DELETE FROM tidewatch.log_templates WHERE miner = 'mi_shared'; "
                                   "RESET ROLE; SELECT count(*) FROM tidewatch.log_templates WHERE miner = 'mi_shared'")
        self.assertEqual((rc, out.splitlines()[-1] if out else None), (0, "0"), err)

    def test_log_events_are_read_with_their_log_table(self):
        q = ("SELECT count(*) FROM tidewatch.events WHERE source IN ('log_template', 'log_burst') "
             "AND detail->>'monitor' = '{}'")
        for mon in ("l_secret", "l_shared"):
            self.assertGreater(int(one(q.format(mon))), 0, mon)  # the oracle: the superuser sees them
        for role, want in (("tw_iso_stranger", {"l_secret": 0, "l_shared": 0}),
                           ("tw_iso_reader", {"l_secret": 0, "l_shared": None})):
            for mon, n in want.items():
                with self.subTest(role=role, monitor=mon):
                    got = int(one(f"SET ROLE {role}; " + q.format(mon)))
                    if n is None:
                        self.assertEqual(got, int(one(q.format(mon))))
                    else:
                        self.assertEqual(got, n)


if __name__ == "__main__":
    unittest.main()
