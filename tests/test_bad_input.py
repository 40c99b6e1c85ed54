"""Bad input, everywhere: every public function of the extension called with hostile arguments.

For each function, a baseline call with valid arguments (on fixtures made here: a hypertable with
telemetry and logs, a model, a miner, a reference, an episode, aggregate states) is first checked
to succeed; then each argument in turn is replaced by hostile values of its type: NULL, NaN and
±Infinity, empty, one-element and huge (10^7) arrays, hostile identifiers (quotes, dots, unicode,
63-byte names), malformed and deeply nested jsonb, wrong types, zero and negative intervals,
timestamps at ±infinity, empty ranges, corrupted serialized states (a byte flipped, truncated,
another aggregate's state). Every call must either return or fail with a SQLSTATE that is not
an internal error (XX000, XX001) and not a timeout; and the server must never crash (checked in
its log). The counts are printed and kept in benches/RESULTS.md.

Every public function must have a baseline here: a new function without one fails the test.
"""
import os
import re
import subprocess
import unittest

from pgtest import DB, DSN, fresh_database, psql, require_cluster, spare_cluster

LONG = "x" * 63
HOSTILE_NAMES = ['"q""uote"', '"dot.ted"', '"ünïcødé"', f'"{LONG}"', '"sp ace"']

# Fixtures: a hypertable whose columns have hostile names too.
FIXTURES = r"""
CREATE EXTENSION tidewatch;
CREATE TABLE m (ts timestamptz NOT NULL, sat text, value float8, msg text, label text, n int);
SELECT tidewatch.create_hypertable('m', 'ts', chunk_time_interval => interval '1 day');
INSERT INTO m SELECT timestamptz '2026-01-01' + i * interval '1 minute', 'SAT' || (i % 3),
       sin(i / 30.0) + CASE WHEN i = 2000 THEN 15 ELSE 0 END,
       CASE WHEN i % 17 = 0 THEN 'ERROR timeout after ' || i || ' ms' ELSE 'job ' || i || ' done' END,
       CASE WHEN i % 17 = 0 THEN 'timeout' ELSE 'ok' END, i
FROM generate_series(1, 3000) i;
CREATE TABLE "q""uote" ("va""l" float8, "sp ace" text, "ünï" timestamptz NOT NULL);
INSERT INTO "q""uote" SELECT random(), 'a', timestamptz '2026-01-01' + i * interval '1 minute' FROM generate_series(1, 100) i;
SELECT tidewatch.train_detector('mdl', 'm', 'value', '{sat}', interval '100 years');
SELECT tidewatch.train_device_detector('dmdl', 'm', '{value,n}', '{sat}', interval '100 years');
SELECT tidewatch.create_log_miner('mnr');
SELECT tidewatch.mine_logs('m', 'msg', 'ts', 'mnr');
SELECT tidewatch.save_reference('ref', 'm', tstzrange('2026-01-01', '2026-01-02'), '{value}');
SELECT tidewatch.record_event('user', 'a deploy', timestamptz '2026-01-02 09:00', 'deploy');
CREATE PROCEDURE noop(job_id int, config jsonb) LANGUAGE sql AS 'SELECT 1';
-- CALL takes no subqueries as arguments: these look ids up.
CREATE FUNCTION hid(regclass) RETURNS int LANGUAGE sql AS 'SELECT id FROM tidewatch.hypertable WHERE relid = $1';
CREATE FUNCTION noop_job() RETURNS int LANGUAGE sql AS $$SELECT min(job_id) FROM tidewatch.jobs WHERE proc::text = 'noop(integer,jsonb)'$$;
SELECT tidewatch.add_job('noop', interval '1 hour', scheduled => false);
SELECT tidewatch.monitor('mon', 'm', 'value', '{sat}', 'ewma', mode => 'sync');
INSERT INTO m SELECT timestamptz '2026-01-03' + i * interval '1 minute', 'SAT1', CASE WHEN i = 50 THEN 40 ELSE 0.1 * (i % 5) END,
       'x', 'ok', i FROM generate_series(1, 100) i;
SELECT tidewatch.log_monitor('lmon', 'm', 'msg', 'ts');
CREATE TABLE states AS
  SELECT (SELECT tidewatch.anomaly_agg(ts, value) FROM m) AS anomaly,
         (SELECT state FROM tidewatch.models WHERE name = 'mdl' LIMIT 1) AS model;
"""

# Hostile values by type (SQL expressions). Arrays of 10^7 are used for a few array arguments.
HOSTILE = {
    "float8": ["'NaN'::float8", "'Infinity'::float8", "'-Infinity'::float8", "1e308::float8", "-0.0::float8"],
    "float8[]": ["'{}'::float8[]", "'{1}'::float8[]", "'{NaN,Infinity,-Infinity}'::float8[]", "'{NULL,1,2}'::float8[]"],
    "text[]": ["'{}'::text[]", "'{a}'::text[]", "'{NULL,a}'::text[]", "ARRAY[repeat('é', 5000)]"],
    "text": ["''", "$$x'\"; DROP TABLE m; --$$", "repeat('é', 100)", "'" + LONG + "y'", "'NaN'"],
    "name": ["''::name", '\'"q""uote"\'::name', "'nope'::name", "'" + LONG + "'::name", "'ts'::name"],
    "name[]": ["'{}'::name[]", "'{nope}'::name[]", "ARRAY[NULL]::name[]", "'{value,value}'::name[]", "'{ts}'::name[]"],
    "regclass": ["'\"q\"\"uote\"'::regclass", "'tidewatch.models'::regclass", "'pg_class'::regclass", "'states'::regclass"],
    "regproc": ["'pg_sleep'::regproc", "'tidewatch.monitor_lag'::regproc"],
    "jsonb": ["'{\"alpha\": -1, \"window\": \"x\"}'::jsonb", "'[1, 2]'::jsonb", "'\"text\"'::jsonb", "'null'::jsonb",
              "(repeat('[', 3000) || repeat(']', 3000))::jsonb", "'{\"threshold\": \"NaN\", \"warmup\": 1e999}'::jsonb",
              "(SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, 10000) i)"],
    "interval": ["interval '0'", "interval '-1 day'", "interval '1000000 years'", "interval '1 month 1 day'", "interval '1 microsecond'"],
    "timestamptz": ["'infinity'::timestamptz", "'-infinity'::timestamptz", "'4713-01-01 BC'::timestamptz", "'294276-12-31'::timestamptz"],
    "timestamp": ["'infinity'::timestamp", "'-infinity'::timestamp"],
    "date": ["'infinity'::date", "'-infinity'::date"],
    "tstzrange": ["'empty'::tstzrange", "'(,)'::tstzrange", "tstzrange('infinity', 'infinity', '[]')", "tstzrange('2030-01-01', '2031-01-01')"],
    "integer": ["0", "-1", "2147483647"],
    "bigint": ["0", "-1", "9223372036854775807"],
    "boolean": [],
    "bytea": ["'\\x'::bytea", "'\\x00'::bytea", "(SELECT substr(anomaly, 1, length(anomaly) / 2) FROM states)",
              "(SELECT overlay(anomaly placing '\\xff'::bytea from 5) FROM states)",
              "(SELECT overlay(anomaly placing '\\x00'::bytea from length(anomaly) - 3) FROM states)",
              "(SELECT model FROM states)", "decode(repeat('ab', 100000), 'hex')"],
}
HUGE = {
    "float8[]": "(SELECT array_agg(i::float8) FROM generate_series(1, 10000000) i)",
    "text[]": "(SELECT array_agg((i % 7)::text) FROM generate_series(1, 10000000) i)",
}

# name -> list of (call template, [(baseline expression, type), ...]). {0}, {1}, ... are the
# arguments; aggregates are called over the fixture table.
CALLS = {
    "time_bucket": [
        ("SELECT tidewatch.time_bucket({0}, {1})", [("interval '15 minutes'", "interval"), ("now()", "timestamptz")]),
        ("SELECT tidewatch.time_bucket({0}, {1})", [("interval '1 day'", "interval"), ("localtimestamp", "timestamp")]),
        ("SELECT tidewatch.time_bucket({0}, {1})", [("interval '1 month'", "interval"), ("current_date", "date")]),
        ("SELECT tidewatch.time_bucket({0}, {1}, {2})", [("interval '7 days'", "interval"), ("current_date", "date"), ("date '2000-01-03'", "date")]),
        ("SELECT tidewatch.time_bucket({0}, {1}, {2})", [("interval '1 hour'", "interval"), ("localtimestamp", "timestamp"), ("timestamp '2000-01-01'", "timestamp")]),
        ("SELECT tidewatch.time_bucket({0}, {1}, {2})", [("interval '1 hour'", "interval"), ("now()", "timestamptz"), ("timestamptz '2000-01-01'", "timestamptz")]),
        ("SELECT tidewatch.time_bucket({0}, {1}, \"offset\" => {2})", [("interval '1 hour'", "interval"), ("now()", "timestamptz"), ("interval '5 minutes'", "interval")]),
        ("SELECT tidewatch.time_bucket({0}, {1}, \"offset\" => {2})", [("interval '1 hour'", "interval"), ("localtimestamp", "timestamp"), ("interval '5 minutes'", "interval")]),
        ("SELECT tidewatch.time_bucket({0}, {1}, \"offset\" => {2})", [("interval '1 day'", "interval"), ("current_date", "date"), ("interval '1 day'", "interval")]),
        ("SELECT tidewatch.time_bucket({0}, {1}, {2})", [("interval '1 day'", "interval"), ("now()", "timestamptz"), ("'Europe/Paris'", "text")]),
    ],
    "anomaly_agg": [
        ("SELECT tidewatch.anomaly_agg({0}, {1}) FROM m", [("ts", "timestamptz"), ("value", "float8")]),
        ("SELECT tidewatch.anomaly_agg(ts, value, {0}) FROM m", [("'ewma'", "text")]),
        ("SELECT tidewatch.anomaly_agg(ts, value, {0}, {1}) FROM m", [("'robust'", "text"), ("'{}'::jsonb", "jsonb")]),
    ],
    "anomaly_score": [
        ("SELECT max(s) FROM (SELECT tidewatch.anomaly_score({0}, {1}) OVER (ORDER BY ts) AS s FROM m) x", [("ts", "timestamptz"), ("value", "float8")]),
        ("SELECT max(s) FROM (SELECT tidewatch.anomaly_score(ts, value, {0}) OVER (ORDER BY ts) AS s FROM m) x", [("'ewma'", "text")]),
        ("SELECT max(s) FROM (SELECT tidewatch.anomaly_score(ts, value, {0}, {1}) OVER (ORDER BY ts) AS s FROM m) x", [("'auto'", "text"), ("'{}'::jsonb", "jsonb")]),
    ],
    "anomaly_points": [("SELECT count(*) FROM tidewatch.anomaly_points({0}, {1})", [("(SELECT anomaly FROM states)", "bytea"), ("false", "boolean")])],
    "anomaly_skipped": [("SELECT tidewatch.anomaly_skipped({0})", [("(SELECT anomaly FROM states)", "bytea")])],
    "drift_agg": [
        ("SELECT tidewatch.drift_agg({0}, {1}) FROM m", [("value", "float8"), ("ts > '2026-01-02'", "boolean")]),
        ("SELECT tidewatch.drift_agg(value, ts > '2026-01-02', {0}, {1}) FROM m", [("'ks'", "text"), ("0.05", "float8")]),
        ("SELECT tidewatch.drift_agg(value, ts > '2026-01-02', {0}) FROM m", [("'{ks,psi}'::text[]", "text[]")]),
        ("SELECT tidewatch.drift_agg({0}, ts > '2026-01-02') FROM m", [("sat", "text")]),
        ("SELECT tidewatch.drift_agg(sat, ts > '2026-01-02', {0}, {1}) FROM m", [("'chisquare'", "text"), ("0.05", "float8")]),
        ("SELECT tidewatch.drift_agg(sat, ts > '2026-01-02', {0}) FROM m", [("'{chisquare,TVD}'::text[]", "text[]")]),
    ],
    "regression_quality": [("SELECT tidewatch.regression_quality({0}, {1}) FROM m", [("value", "float8"), ("value + 0.1", "float8")])],
    "classification_quality": [("SELECT tidewatch.classification_quality({0}, {1}) FROM m", [("label", "text"), ("'ok'", "text")])],
    "drift": [
        ("SELECT tidewatch.drift({0}, {1}, {2}, {3})", [("'{1,2,3,4,5}'::float8[]", "float8[]"), ("'{2,3,4,5,9}'::float8[]", "float8[]"), ("'ks'", "text"), ("0.05", "float8")]),
        ("SELECT tidewatch.drift({0}, {1}, {2}, {3})", [("'{a,b,a}'::text[]", "text[]"), ("'{b,b,a}'::text[]", "text[]"), ("'chisquare'", "text"), ("0.05", "float8")]),
    ],
    "log_header": [("SELECT tidewatch.log_header({0})", [("'2026-01-01 10:00:00,123 ERROR [main] boom'", "text")])],
    "log_parse": [("SELECT tidewatch.log_parse({0}, {1})", [("'job 7 done'", "text"), ("'mnr'", "text")])],
    "log_template": [("SELECT tidewatch.log_template({0})", [("'job 7 done in 3 ms'", "text")])],
    "classify_log": [("SELECT * FROM tidewatch.classify_log({0}, {1})", [("'ERROR connection refused'", "text"), ("'default'", "text")])],
    "run_maintenance": [("SELECT * FROM tidewatch.run_maintenance({0}, {1})", [("'m'::regclass", "regclass"), ("10", "integer")])],
    "create_hypertable": [("SELECT * FROM tidewatch.create_hypertable({0}, {1}, {2}, if_not_exists => true)",
                           [("'m'::regclass", "regclass"), ("'ts'::name", "name"), ("interval '1 day'", "interval")])],
    "show_chunks": [
        ("SELECT count(*) FROM tidewatch.show_chunks({0}, {1}, {2})", [("'m'::regclass", "regclass"), ("now()", "timestamptz"), ("'2000-01-01'::timestamptz", "timestamptz")]),
        ("SELECT count(*) FROM tidewatch.show_chunks({0}, {1}, {2})", [("'m'::regclass", "regclass"), ("interval '1 day'", "interval"), ("interval '100 years'", "interval")]),
    ],
    "drop_chunks": [
        ("SELECT count(*) FROM tidewatch.drop_chunks({0}, {1}, {2})", [("'m'::regclass", "regclass"), ("'2000-01-01'::timestamptz", "timestamptz"), ("'1999-01-01'::timestamptz", "timestamptz")]),
        ("SELECT count(*) FROM tidewatch.drop_chunks({0}, {1}, {2})", [("'m'::regclass", "regclass"), ("interval '1000 years'", "interval"), ("interval '2000 years'", "interval")]),
    ],
    "policy_maintenance": [("CALL tidewatch.policy_maintenance({0}, {1})", [("0", "integer"), ("jsonb_build_object('hypertable_id', hid('m'))", "jsonb")])],
    "policy_retention": [("CALL tidewatch.policy_retention({0}, {1})", [("0", "integer"), ("jsonb_build_object('hypertable_id', hid('m'), 'drop_after', '100 years')", "jsonb")])],
    "add_retention_policy": [("SELECT tidewatch.add_retention_policy({0}, {1}, true, {2})", [("'m'::regclass", "regclass"), ("interval '100 years'", "interval"), ("interval '1 hour'", "interval")])],
    "remove_retention_policy": [("SELECT tidewatch.remove_retention_policy({0}, true)", [("'m'::regclass", "regclass")])],
    "run_job": [("CALL tidewatch.run_job({0})", [("noop_job()", "integer")])],
    "add_job": [("SELECT tidewatch.add_job({0}, {1}, {2}, scheduled => false, retry_period => {3}, max_retries => {4})",
                 [("'noop'::regproc", "regproc"), ("interval '1 hour'", "interval"), ("'{}'::jsonb", "jsonb"), ("interval '1 minute'", "interval"), ("3", "integer")])],
    "alter_job": [("SELECT count(*) FROM tidewatch.alter_job({0}, {1}, {2})",
                   [("noop_job()", "integer"), ("interval '2 hours'", "interval"), ("'{\"a\": 1}'::jsonb", "jsonb")])],
    "delete_job": [("SELECT tidewatch.delete_job({0}, true)", [("(SELECT max(job_id) FROM tidewatch.jobs WHERE proc::text = 'noop(integer,jsonb)')", "integer")])],
    "detect_anomalies": [("SELECT count(*) FROM tidewatch.detect_anomalies({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7})",
                          [("'m'::regclass", "regclass"), ("'value'::name", "name"), ("'{sat}'::name[]", "name[]"), ("'ts'::name", "name"),
                           ("'2026-01-01'::timestamptz", "timestamptz"), ("'2026-02-01'::timestamptz", "timestamptz"), ("'auto'", "text"), ("'{}'::jsonb", "jsonb")])],
    "detect_device_anomalies": [("SELECT count(*) FROM tidewatch.detect_device_anomalies({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7})",
                                 [("'m'::regclass", "regclass"), ("'{value,n}'::name[]", "name[]"), ("'{sat}'::name[]", "name[]"),
                                  ("'ts'::name", "name"), ("'2026-01-01'::timestamptz", "timestamptz"),
                                  ("'2026-02-01'::timestamptz", "timestamptz"), ("'{}'::jsonb", "jsonb"), ("false", "boolean")])],
    "device_points": [("SELECT count(*) FROM tidewatch.device_points({0}, {1}, {2})",
                       [("(SELECT tidewatch._device_agg(ts, ARRAY[value, n::float8], '{}') FROM m)", "bytea"),
                        ("'{value,n}'::text[]", "text[]"), ("false", "boolean")])],
    "train_detector": [("SELECT count(*) FROM tidewatch.train_detector({0}, {1}, {2}, {3}, {4}, {5}, {6})",
                        [("'mdl2'", "text"), ("'m'::regclass", "regclass"), ("'value'::name", "name"), ("'{sat}'::name[]", "name[]"),
                         ("interval '100 years'", "interval"), ("'ewma'", "text"), ("'{}'::jsonb", "jsonb")])],
    "score": [("SELECT tidewatch.score({0}, {1}, {2}, {3})", [("'mdl'", "text"), ("'{\"sat\": \"SAT1\"}'::jsonb", "jsonb"), ("'2026-01-04'::timestamptz", "timestamptz"), ("3.0", "float8")]),
              ("SELECT tidewatch.score({0}, {1}, {2}, {3})", [("'dmdl'", "text"), ("'{\"sat\": \"SAT1\"}'::jsonb", "jsonb"), ("'2026-01-04'::timestamptz", "timestamptz"), ("ARRAY[3.0, 1.0]", "float8[]")])],
    "predict": [("SELECT tidewatch.predict({0}, {1}, {2}, {3})", [("'mdl'", "text"), ("'{\"sat\": \"SAT1\"}'::jsonb", "jsonb"), ("'2026-01-04'::timestamptz", "timestamptz"), ("3.0", "float8")]),
                ("SELECT tidewatch.predict({0}, {1}, {2}, {3})", [("'dmdl'", "text"), ("'{\"sat\": \"SAT1\"}'::jsonb", "jsonb"), ("'2026-01-04'::timestamptz", "timestamptz"), ("ARRAY[3.0, 1.0]", "float8[]")])],
    "train_device_detector": [("SELECT tidewatch.train_device_detector({0}, {1}, {2}, {3}, {4}, {5})",
                               [("'dmdl2'", "text"), ("'m'::regclass", "regclass"), ("'{value,n}'::name[]", "name[]"),
                                ("'{sat}'::name[]", "name[]"), ("interval '100 years'", "interval"), ("'{}'::jsonb", "jsonb")])],
    "policy_monitor": [("CALL tidewatch.policy_monitor({0}, {1})", [("0", "integer"), ("'{\"monitor\": \"mon\"}'::jsonb", "jsonb")])],
    "monitor": [("SELECT tidewatch.monitor({0}, {1}, {2}, {3}, {4}, {5}, {6})",
                 [("'mon2'", "text"), ("'m'::regclass", "regclass"), ("'value'::name", "name"), ("'{sat}'::name[]", "name[]"),
                  ("'robust'", "text"), ("'{}'::jsonb", "jsonb"), ("'ts'::name", "name")])],
    "monitor_device": [("SELECT tidewatch.monitor_device({0}, {1}, {2}, {3}, {4}, {5})",
                        [("'mdev'", "text"), ("'m'::regclass", "regclass"), ("'{value,n}'::name[]", "name[]"),
                         ("'{sat}'::name[]", "name[]"), ("'{}'::jsonb", "jsonb"), ("'ts'::name", "name")])],
    "unmonitor": [("SELECT tidewatch.unmonitor({0}, true)", [("'mon2'", "text")])],
    "pull_episodes": [("SELECT tidewatch.pull_episodes({0})", [("'mon'", "text")])],
    "record_event": [("SELECT tidewatch.record_event({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}) IS NOT NULL",
                      [("'user'", "text"), ("'a note'", "text"), ("now()", "timestamptz"), ("'n'", "text"), ("'{}'::jsonb", "jsonb"),
                       ("'{}'::jsonb", "jsonb"), ("'m'::regclass", "regclass"), ("now() + interval '1 hour'", "timestamptz")])],
    "explain_anomaly": [("SELECT count(*) FROM tidewatch.explain_anomaly({0}, {1})", [("(SELECT min(id) FROM tidewatch.anomalies)", "bigint"), ("interval '30 minutes'", "interval")])],
    "peer_outliers": [("SELECT count(*) FROM tidewatch.peer_outliers({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7})",
                       [("'m'::regclass", "regclass"), ("'value'::name", "name"), ("'{sat}'::name[]", "name[]"), ("interval '1 hour'", "interval"),
                        ("'2026-01-01'::timestamptz", "timestamptz"), ("'2026-01-04'::timestamptz", "timestamptz"), ("'mad'", "text"), ("0.9", "float8")])],
    "drift_report": [
        ("SELECT count(*) FROM tidewatch.drift_report({0}, {1}, {2}, {3}, {4}, {5})",
         [("'m'::regclass", "regclass"), ("tstzrange('2026-01-01', '2026-01-02')", "tstzrange"), ("tstzrange('2026-01-02', '2026-01-03')", "tstzrange"),
          ("'{value,sat}'::name[]", "name[]"), ("'ts'::name", "name"), ("'{}'::jsonb", "jsonb")]),
        ("SELECT count(*) FROM tidewatch.drift_report({0}, {1}, {2})", [("'m'::regclass", "regclass"), ("'ref'", "text"), ("tstzrange('2026-01-02', '2026-01-03')", "tstzrange")]),
    ],
    "drift_summary": [("SELECT count(*) FROM tidewatch.drift_summary({0}, {1}, {2}, drift_share => {3})",
                       [("'m'::regclass", "regclass"), ("tstzrange('2026-01-01', '2026-01-02')", "tstzrange"), ("tstzrange('2026-01-02', '2026-01-03')", "tstzrange"), ("0.5", "float8")])],
    "save_reference": [("SELECT tidewatch.save_reference({0}, {1}, {2}, {3}) IS NOT NULL",
                        [("'ref2'", "text"), ("'m'::regclass", "regclass"), ("tstzrange('2026-01-01', '2026-01-02')", "tstzrange"), ("'{value}'::name[]", "name[]")])],
    "run_drift_monitor": [("SELECT count(*) FROM tidewatch.run_drift_monitor({0})", [("'dm'", "text")])],
    "policy_drift": [("CALL tidewatch.policy_drift({0}, {1})", [("0", "integer"), ("'{\"monitor\": \"dm\"}'::jsonb", "jsonb")])],
    "monitor_drift": [
        ("SELECT tidewatch.monitor_drift({0}, {1}, {2}, {3}, {4}) IS NOT NULL",
         [("'dm2'", "text"), ("'m'::regclass", "regclass"), ("'ref'", "text"), ("interval '1 hour'", "interval"), ("interval '1 hour'", "interval")]),
        ("SELECT tidewatch.monitor_drift({0}, {1}, {2}, {3}, drift_share => {4}) IS NOT NULL",
         [("'dm3'", "text"), ("'m'::regclass", "regclass"), ("tstzrange('2026-01-01', '2026-01-02')", "tstzrange"), ("interval '1 hour'", "interval"), ("0.5", "float8")]),
    ],
    "unmonitor_drift": [("SELECT tidewatch.unmonitor_drift({0}, true)", [("'dm3'", "text")])],
    "create_log_miner": [("SELECT tidewatch.create_log_miner({0}, {1}, true) IS NOT NULL", [("'mnr2'", "text"), ("'{}'::jsonb", "jsonb")])],
    "drop_log_miner": [("SELECT tidewatch.drop_log_miner({0}, true)", [("'mnr2'", "text")])],
    "mine_logs": [("SELECT count(*) FROM tidewatch.mine_logs({0}, {1}, {2}, {3})", [("'m'::regclass", "regclass"), ("'msg'::name", "name"), ("'ts'::name", "name"), ("'mnr'", "text")])],
    "log_monitor": [("SELECT tidewatch.log_monitor({0}, {1}, {2}, {3}) IS NOT NULL", [("'lmon2'", "text"), ("'m'::regclass", "regclass"), ("'msg'::name", "name"), ("'ts'::name", "name")])],
    "unmonitor_logs": [("SELECT tidewatch.unmonitor_logs({0}, true)", [("'lmon2'", "text")])],
    "monitor_lag": [("SELECT count(*) FROM tidewatch.monitor_lag()", [])],
    "monitor_wait": [("SELECT tidewatch.monitor_wait({0}) >= 0", [("interval '1 second'", "interval")])],
    "train_log_classifier": [("SELECT tidewatch.train_log_classifier({0}, {1}, {2}, {3})",
                              [("'clf'", "text"), ("'m'::regclass", "regclass"), ("'msg'::name", "name"), ("'label'::name", "name")])],
}

# Arguments mutated with the huge arrays (10^7 elements): a few, not all (each takes seconds).
HUGE_CALLS = {("drift", 0), ("drift", 1)}

INTERNAL = {"XX000", "XX001", "XX002"}


@require_cluster
class BadInputTest(unittest.TestCase):
    def test_every_public_function_survives_hostile_arguments(self):
        with spare_cluster("bad_input") as c:
            c.script(FIXTURES)
            c.psql("SELECT tidewatch.monitor_drift('dm', 'm', 'ref', interval '1 hour')")
            public = {r[0] for r in c.psql(
                "SELECT DISTINCT p.proname FROM pg_proc p WHERE p.pronamespace = 'tidewatch'::regnamespace"
                " AND p.proname NOT LIKE '\\_%'")}
            self.assertEqual(sorted(public - set(CALLS)), [], "public functions without a baseline call here")

            def run(sql):
                """(status, sqlstate): 'ok', 'error' or 'crash'."""
                proc = subprocess.run(
                    ["psql", "-X", "-q", "-v", "VERBOSITY=verbose", "-d", f"{c.dsn} dbname={DB}", "-c",
                     "SET statement_timeout = '120s'", "-c", "BEGIN", "-c", sql, "-c", "ROLLBACK"],
                    capture_output=True, text=True, timeout=300, env={**os.environ, "LC_MESSAGES": "C"})
                err = proc.stderr
                m = re.search(r"ERROR:  ([0-9A-Z]{5}):", err)
                if "server closed the connection" in err or "terminating connection" in err or "connection to server" in err:
                    return "crash", err.strip()[:300]
                if m:
                    return "error", m.group(1) + " " + err.strip().splitlines()[0][:200]
                return ("ok", "") if proc.returncode == 0 else ("error", "????? " + err.strip()[:200])

            calls = 0
            results = {"ok": 0, "error": 0}
            bad = []
            for name, variants in sorted(CALLS.items()):
                for template, args in variants:
                    base = template.format(*[a for a, _ in args])
                    status, why = run(base)
                    calls += 1
                    self.assertEqual(status, "ok", f"baseline call failed: {base}: {why}")
                    results["ok"] += 1
                    for i, (_, typ) in enumerate(args):
                        hostile = ["NULL::" + typ.replace("[]", "[]")] + HOSTILE.get(typ, [])
                        if (name, i) in HUGE_CALLS and typ in HUGE:
                            hostile.append(HUGE[typ])
                        for h in hostile:
                            vals = [a for a, _ in args]
                            vals[i] = h
                            sql = template.format(*vals)
                            status, why = run(sql)
                            calls += 1
                            if status == "crash":
                                bad.append(f"CRASH {sql}: {why}")
                                self.fail("\n".join(bad))
                            elif status == "error" and (why[:5] in INTERNAL or why.startswith("57014") or why.startswith("?????")):
                                bad.append(f"{why[:5]} {sql[:300]}: {why}")
                            else:
                                results[status] += 1
            log = open(os.path.join(c.dir, "server.log"), errors="replace").read()
            crashes = len(re.findall(r"terminated by signal|was terminated by exception", log))
            print(f"\n[bad input] {calls} calls over {len(CALLS)} functions: {results['ok']} returned, "
                  f"{results['error']} clear errors, {len(bad)} internal errors or timeouts, {crashes} crashes")
            self.assertEqual(crashes, 0, "the server log shows a crashed backend")
            self.assertEqual(bad, [], "\n".join(bad))
            self.assertGreaterEqual(calls, 150)



@require_cluster
class CorruptCatalogRowsTest(unittest.TestCase):
    """jsonb in catalog rows that others may write (templates, classifiers; a miner's settings are
    checked when written) that serde_json refuses (nested deeper than 128) is a clear XX001
    naming the row, not an internal error: pgrx's JsonB panicked on it (XX000)."""

    NESTED = "(repeat('[', 200) || repeat(']', 200))::jsonb"

    def sqlstate_of(self, sql):
        proc = subprocess.run(["psql", "-X", "-q", "-v", "VERBOSITY=verbose", "-d", f"{DSN} dbname={DB}", "-c", sql],
                              capture_output=True, text=True, env={**os.environ, "LC_MESSAGES": "C"})
        m = re.search(r"ERROR:\s+([0-9A-Z]{5}):\s*(.*)", proc.stderr)
        return (m.group(1), m.group(2)) if m else (None, proc.stderr)

    def test_internal_functions_refuse_null_with_22004(self):
        # Not STRICT (some arguments may be NULL): the others must be refused as NULL, not
        # panic in pgrx's unboxing (XX000).
        fresh_database()
        calls = ["SELECT tidewatch._drift_num_profile(NULL, '{1,2}')",
                 "SELECT tidewatch._drift_num_profile('\\x00', NULL)",
                 "SELECT tidewatch._drift_cat_profile(NULL, '{a}')",
                 "SELECT * FROM tidewatch._monitor_step(NULL, NULL, NULL, '{}', '{}')",
                 "SELECT * FROM tidewatch._monitor_step(NULL, 'ewma', NULL, NULL, '{}')"]
        for call in calls:
            with self.subTest(call=call):
                state, message = self.sqlstate_of(call)
                self.assertEqual(state, "22004", message)
                self.assertIn("must not be NULL", message)

    def test_unreadable_jsonb_in_catalog_rows_is_a_clear_error(self):
        fresh_database()
        psql("SELECT tidewatch.create_log_miner('deep');"
             "CREATE TABLE lab (msg text, label text);"
             "INSERT INTO lab SELECT 'job ' || i || ' failed', 'failure' FROM generate_series(1, 20) i;"
             "INSERT INTO lab SELECT 'job ' || i || ' done', 'ok' FROM generate_series(1, 20) i;"
             "SELECT tidewatch.train_log_classifier('deep', 'lab', 'msg', 'label');"
             "INSERT INTO tidewatch.log_rules (ruleset, priority, pattern, category, severity)"
             " VALUES ('deep', 1, 'zzz', 'timeout', 'info')")
        # The baseline: the same calls work on sound rows.
        self.assertEqual(psql("SELECT count(*) FROM tidewatch.log_parse('job 1 done', 'deep')"), [["1"]])
        self.assertEqual(psql("SELECT category FROM tidewatch.classify_log('job 7 failed', 'deep')"), [["failure"]])
        cases = [
            ("UPDATE tidewatch.log_templates SET cluster = {} WHERE miner = 'deep'",
             "SELECT count(*) FROM tidewatch.log_parse('job 3 done', 'deep')", "invalid template row of log miner"),
            ("UPDATE tidewatch.log_classifiers SET model = {}, trained_at = now() WHERE name = 'deep'",
             "SELECT category FROM tidewatch.classify_log('job 8 failed', 'deep')", "cannot be read"),
        ]
        for corrupt, call, words in cases:
            with self.subTest(call=call):
                psql("UPDATE tidewatch.log_miners SET version = version + 1 WHERE name = 'deep';"
                     + corrupt.format(self.NESTED))
                state, message = self.sqlstate_of(call)
                self.assertEqual(state, "XX001", message)
                self.assertIn(words, message)


if __name__ == "__main__":
    unittest.main()
