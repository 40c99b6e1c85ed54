#!/usr/bin/env bash
# The Tidewatch demo, end to end: dependencies, build, a local cluster, sample data, a tour.
#   bash tools/demo.sh             set up (again, from a clean database) and run the tour
#   bash tools/demo.sh stop        stop the demo cluster
#   bash tools/demo.sh load PORT   the same database and tour in a cluster already running on
#                                  127.0.0.1:PORT with tidewatch installed (tools/test.sh's): no
#                                  build and no cluster of its own; the generator is
#                                  $TIDEWATCH_SAMPLE_BIN (the caller builds it); TIDEWATCH_DEMO_HOST
#                                  (default 127.0.0.1) and PGPASSWORD reach a server elsewhere
# Environment: TIDEWATCH_DEMO_DIR (default /var/tmp/tidewatch-demo), TIDEWATCH_DEMO_PORT (25442),
# TIDEWATCH_DEMO_SERVICE_PORT (25446, the HTTP service; not in load mode),
# TIDEWATCH_DEMO_RECEIVER_PORT (25447, the local receiver notifications are delivered to in step 14),
# TIDEWATCH_DEMO_DAYS (14 days of telemetry), TIDEWATCH_DEMO_STEP (30 s between samples),
# TIDEWATCH_READER_PASSWORD (password of the read-only role tidewatch_reader that Grafana uses;
# default tidewatch_reader).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DIR=${TIDEWATCH_DEMO_DIR:-/var/tmp/tidewatch-demo}
PORT=${TIDEWATCH_DEMO_PORT:-25442}
DAYS=${TIDEWATCH_DEMO_DAYS:-14}
STEP=${TIDEWATCH_DEMO_STEP:-30}
SVC_PORT=${TIDEWATCH_DEMO_SERVICE_PORT:-25446}
RECV_PORT=${TIDEWATCH_DEMO_RECEIVER_PORT:-25447}
DB=tidewatch_demo
MODE=${1:-}

stop_service() {
    local f
    for f in service receiver; do
        if [ -f "$DIR/$f.pid" ]; then
            kill "$(cat "$DIR/$f.pid")" 2>/dev/null || true
            rm -f "$DIR/$f.pid"
        fi
    done
}

if [ "$MODE" = "stop" ]; then
    stop_service
    cluster_stop "$DIR"
    say "demo service and cluster stopped ($DIR)"
    exit 0
fi

if [ "${1:-}" = "load" ]; then
    PORT=${2:?usage: tools/demo.sh load PORT}
    GEN=${TIDEWATCH_SAMPLE_BIN:?set TIDEWATCH_SAMPLE_BIN to a built tidewatch-sample}
    DIR=$(mktemp -d)
else
    ensure_deps
    # Stop first: replacing the library under a running server can crash it.
    stop_service
    cluster_stop "$DIR"
    install_extension --release
    say "building the sample-data generator"
    cargo build --release -q -p tidewatch-sample --manifest-path "$REPO/Cargo.toml"
    GEN="$CARGO_TARGET_DIR/release/tidewatch-sample"

    say "starting PostgreSQL 15 on 127.0.0.1:$PORT (data in $DIR)"
    cluster_start "$DIR" "$PORT" "$DB"
fi
PSQL=(psql -X -v ON_ERROR_STOP=1 -h "${TIDEWATCH_DEMO_HOST:-127.0.0.1}" -p "$PORT" -U postgres)
recreate_database "$DB" "${PSQL[@]}"
PSQL+=(-d "$DB")

say "loading $DAYS days of satellite telemetry (4 satellites x 15 metrics, every $STEP s)"
START=$(date -u -d "today - $((DAYS - 1)) days" +%Y-%m-%dT00:00:00Z)
"${PSQL[@]}" -q <<'SQL'
CREATE EXTENSION tidewatch;
CREATE TABLE telemetry (ts timestamptz NOT NULL, satellite text NOT NULL, metric text NOT NULL, value float8);
COMMENT ON TABLE telemetry IS 'Satellite telemetry: SCH.M1..M15 of SAT1..SAT4';
SELECT * FROM tidewatch.create_hypertable('telemetry', 'ts', chunk_time_interval => interval '1 day');
CREATE TABLE etl_log (ts timestamptz NOT NULL, pipeline text, level text, message text);
SELECT * FROM tidewatch.create_hypertable('etl_log', 'ts', chunk_time_interval => interval '1 day');
SQL
"$GEN" telemetry --start "$START" --days "$DAYS" --step-secs "$STEP" --labels "$DIR/telemetry_labels.json" \
    | "${PSQL[@]}" -q -c "COPY telemetry FROM STDIN WITH (FORMAT csv, HEADER true)"
"$GEN" etl-logs --start "$START" --days "$DAYS" --labels "$DIR/etl_labels.json" \
    | "${PSQL[@]}" -q -c "COPY etl_log FROM STDIN WITH (FORMAT csv, HEADER true)"
say "labels of the injected anomalies: $DIR/telemetry_labels.json"

tour() { say "$1"; shift; "${PSQL[@]}" -P pager=off "$@"; }

tour "1. The hypertables: rows went to the default partition for the days before today, ready for maintenance" -c "
SELECT hypertable, chunk_interval, num_chunks, total_size,
       (SELECT count(*) FROM tidewatch.chunks c WHERE c.hypertable = h.hypertable AND NOT c.is_default) AS chunks
FROM tidewatch.hypertables h;"

tour "2. Maintenance files late rows into chunks, as its job does every hour; no query misses a row meanwhile" -c "
SELECT 'telemetry' AS hypertable, * FROM tidewatch.run_maintenance('telemetry')
UNION ALL SELECT 'etl_log', * FROM tidewatch.run_maintenance('etl_log');" -c "
SELECT chunk, range_start, range_end, row_estimate, total_size FROM tidewatch.chunks
WHERE hypertable = 'telemetry'::regclass ORDER BY range_start NULLS LAST LIMIT 5;"

tour "3. Queries prune chunks: one day of one metric reads one chunk" -c "
EXPLAIN (COSTS OFF) SELECT avg(value) FROM telemetry
WHERE ts >= tidewatch.time_bucket('1 day', now()) - interval '2 days'
  AND ts <  tidewatch.time_bucket('1 day', now()) - interval '1 day' AND metric = 'SCH.M1';"

tour "4. time_bucket roll-ups: hourly mean and spread of SCH.M1 on SAT2 over the last 12 hours" -c "
SELECT tidewatch.time_bucket('1 hour', ts) AS hour, round(avg(value)::numeric, 3) AS mean,
       round(stddev(value)::numeric, 3) AS sd, count(*) AS samples
FROM telemetry WHERE satellite = 'SAT2' AND metric = 'SCH.M1' AND ts > now() - interval '12 hours' AND ts <= now()
GROUP BY 1 ORDER BY 1;"

tour "   ... and daily error counts of the ETL pipelines, by local day in New York" -c "
SELECT tidewatch.time_bucket('1 day', ts, 'America/New_York') AS local_day, pipeline, count(*) AS errors
FROM etl_log WHERE level = 'ERROR' GROUP BY 1, 2 ORDER BY 1 DESC, 3 DESC LIMIT 8;"

tour "5. A job run by the scheduler: a procedure that records the hourly error count, every 2 seconds" -c "
CREATE TABLE error_rate (at timestamptz DEFAULT now(), errors bigint);
CREATE PROCEDURE count_errors(job_id int, config jsonb) LANGUAGE sql AS \$\$
    INSERT INTO error_rate (errors) SELECT count(*) FROM etl_log
    WHERE level = 'ERROR' AND ts > now() - (config ->> 'window')::interval \$\$;
SELECT tidewatch.add_job('count_errors', interval '2 seconds', '{\"window\": \"1 hour\"}') AS job_id;" -c "
SELECT pg_sleep(5);" -c "
SELECT job_id, application_name, last_status, total_runs, last_duration, next_start FROM tidewatch.job_stats;"

tour "6. Retention: keep 7 days of ETL logs (the policy is a job; run it now)" <<'SQL'
SELECT count(*) AS rows_before, min(ts) AS oldest_before FROM etl_log;
SELECT tidewatch.add_retention_policy('etl_log', drop_after => interval '7 days') AS retention_job \gset
CALL tidewatch.run_job(:retention_job);
SELECT count(*) AS rows_after, min(ts) AS oldest_after FROM etl_log;
SQL

tour "7. Drift: has SCH.M1 changed against the same hours a week ago? KS per satellite (the slow trends of the sample data show up)" -c "
SELECT satellite, (d).method, round((d).statistic::numeric, 4) AS statistic, (d).p_value, (d).drifted,
       (d).reference_count, (d).current_count
FROM (SELECT satellite, tidewatch.drift_agg(value, ts >= now() - interval '1 day', 'ks', NULL) AS d
      FROM telemetry
      WHERE metric = 'SCH.M1' AND ((ts >= now() - interval '1 day' AND ts < now())
                                OR (ts >= now() - interval '8 days' AND ts < now() - interval '7 days'))
      GROUP BY satellite) s ORDER BY 1;"

tour "   ... and as a drift monitor: a daily job comparing the last day of every metric with the same day a week before (run once now)" -c "
SELECT tidewatch.monitor_drift('weekly_values', 'telemetry',
                               tstzrange(now() - interval '8 days', now() - interval '7 days'),
                               interval '1 day', interval '1 day',
                               columns => '{value}', methods => '{\"value\": [\"wasserstein\", \"psi\"]}') AS drift_job;" -c "
SELECT column_name, method, round(statistic::numeric, 4) AS statistic, threshold, drifted,
       reference_count, current_count, dataset_drift
FROM tidewatch.run_drift_monitor('weekly_values');"

tour "8. Logs: error classes of the ETL errors of the last 7 days, and their most common templates" -c "
SELECT c.category, c.severity, count(*) AS lines
FROM etl_log, LATERAL tidewatch.classify_log(message) c
WHERE level = 'ERROR' GROUP BY 1, 2 ORDER BY 3 DESC;" -c "
SELECT tidewatch.log_template(message) AS template, count(*) AS lines
FROM etl_log WHERE level = 'ERROR' GROUP BY 1 ORDER BY 2 DESC LIMIT 5;"

tour "   ... template mining into a miner kept in tables (Drain-style), and a real-time log monitor on a new ETL log" <<'SQL'
SELECT template_id, left(template, 70) AS template, lines
FROM tidewatch.mine_logs('etl_log', 'message') ORDER BY lines DESC LIMIT 5;
CREATE TABLE etl_live (ts timestamptz NOT NULL, message text, template_id bigint, category text);
SELECT tidewatch.create_hypertable('etl_live', 'ts') \g /dev/null
SELECT tidewatch.log_monitor('etl_live', 'etl_live', 'message') AS log_monitor;
INSERT INTO etl_live (ts, message) SELECT ts, message FROM etl_log WHERE ts > now() - interval '1 day' AND ts <= now();
SELECT category, count(*) AS lines, count(DISTINCT template_id) AS templates
FROM etl_live GROUP BY 1 ORDER BY 2 DESC;
SQL

tour "9. Anomaly detection in batch: the strongest anomalies of SCH.M1..M3 over the last 2 days (auto detector, one scan)" -c "
SELECT series ->> 'satellite' AS satellite, series ->> 'metric' AS metric, ts,
       round(value::numeric, 3) AS value, round(expected::numeric, 3) AS expected, round(score::numeric, 2) AS score
FROM tidewatch.detect_anomalies('telemetry', 'value', '{satellite,metric}',
                                start => now() - interval '2 days', finish => now(), anomalies_only => true)
WHERE series ->> 'metric' IN ('SCH.M1', 'SCH.M2', 'SCH.M3')
ORDER BY score DESC, ts LIMIT 10;"

tour "10. Trained models as rows: one per satellite for SCH.M1; predict -1 (outlier) or +1" <<'SQL'
CREATE OR REPLACE VIEW sch_m1 AS SELECT ts, satellite, value FROM telemetry WHERE metric = 'SCH.M1';
CREATE TABLE IF NOT EXISTS sch_m1_train AS SELECT * FROM sch_m1 WHERE ts >= now() - interval '3 days';
SELECT tidewatch.create_hypertable('sch_m1_train', 'ts', migrate_data => true, if_not_exists => true) \g /dev/null
SELECT tidewatch.train_detector('sch_m1', 'sch_m1_train', 'value', '{satellite}', interval '3 days') AS models_trained;
SELECT series ->> 'satellite' AS satellite, n, trained_at::timestamp(0) FROM tidewatch.models WHERE name = 'sch_m1' ORDER BY 1;
SELECT m.series ->> 'satellite' AS satellite, round(last.value::numeric, 3) AS latest,
       tidewatch.predict('sch_m1', m.series, now(), last.value) AS latest_verdict,
       tidewatch.predict('sch_m1', m.series, now(), last.value + 50) AS verdict_if_50_higher
FROM tidewatch.models m,
     LATERAL (SELECT value FROM sch_m1 WHERE satellite = m.series ->> 'satellite' AND ts <= now() ORDER BY ts DESC LIMIT 1) last
WHERE m.name = 'sch_m1' ORDER BY 1;
SQL

tour "11. A real-time monitor: stream 6 hours of SAT2 telemetry into a monitored table, with a spike injected; episodes and their explanation" <<'SQL'
SELECT tidewatch.unmonitor('live_sat2', if_exists => true) \g /dev/null
DROP TABLE IF EXISTS live_sat2;
CREATE TABLE live_sat2 (ts timestamptz NOT NULL, metric text, value float8);
SELECT tidewatch.create_hypertable('live_sat2', 'ts') \g /dev/null
SELECT tidewatch.monitor('live_sat2', 'live_sat2', 'value', '{metric}') AS missing_data_job;
INSERT INTO live_sat2 SELECT ts, metric, value FROM telemetry
WHERE satellite = 'SAT2' AND metric IN ('SCH.M1', 'SCH.M4') AND ts >= now() - interval '6 hours' AND ts < now() - interval '1 hour';
INSERT INTO live_sat2 SELECT ts, metric, value + CASE WHEN ts = (SELECT min(ts) FROM telemetry WHERE ts >= now() - interval '30 minutes')
                                                   AND metric = 'SCH.M1' THEN 25 ELSE 0 END
FROM telemetry WHERE satellite = 'SAT2' AND metric IN ('SCH.M1', 'SCH.M4') AND ts >= now() - interval '1 hour' AND ts <= now();
SELECT tidewatch.record_event('log_burst', 'ETL: burst of connection timeouts', now() - interval '31 minutes', 'etl_log', '{}');
SELECT id, series ->> 'metric' AS metric, started_at::timestamp(0), ended_at::timestamp(0),
       round(peak_value::numeric, 3) AS peak, severity, kind
FROM tidewatch.anomalies WHERE monitor = 'live_sat2' ORDER BY score DESC, id LIMIT 5;
SELECT rank, reason FROM tidewatch.explain_anomaly(
    (SELECT id FROM tidewatch.anomalies WHERE monitor = 'live_sat2' ORDER BY peak_value DESC NULLS LAST LIMIT 1));
SQL

tour "   ... the same stream with an async monitor: no trigger on the table; the decoder scores the committed rows from the write-ahead log" <<'SQL'
SELECT tidewatch.unmonitor('live_sat2_async', if_exists => true) \g /dev/null
DROP TABLE IF EXISTS live_sat2_async;
CREATE TABLE live_sat2_async (ts timestamptz NOT NULL, metric text, value float8);
SELECT tidewatch.create_hypertable('live_sat2_async', 'ts') \g /dev/null
SELECT tidewatch.monitor('live_sat2_async', 'live_sat2_async', 'value', '{metric}', mode => 'async') AS missing_data_job;
INSERT INTO live_sat2_async SELECT * FROM live_sat2;
SELECT round(tidewatch.monitor_wait()::numeric, 2) AS seconds_until_scored;
SELECT a.series ->> 'metric' AS metric, a.started_at::timestamp(0), a.kind,
       (SELECT count(*) FROM tidewatch.anomalies s WHERE s.monitor = 'live_sat2' AND s.series = a.series
          AND s.started_at = a.started_at AND s.kind = a.kind) = 1 AS same_as_sync
FROM tidewatch.anomalies a WHERE a.monitor = 'live_sat2_async' ORDER BY a.score DESC, a.id LIMIT 5;
SELECT monitor, kind, scored_upto, last_error FROM tidewatch.monitor_lag();
SQL

tour "12. What the provisioned Grafana dashboards and alert rules read (grafana/, docs/grafana.md): the last day of every series streamed through a monitor, with two incidents; SAT4 silent for the last 40 minutes" <<'SQL'
DROP TABLE IF EXISTS fleet;
CREATE TABLE fleet (ts timestamptz NOT NULL, satellite text NOT NULL, metric text NOT NULL, value float8);
COMMENT ON TABLE fleet IS 'The last day of telemetry as it streamed in, through the monitor fleet';
SELECT tidewatch.create_hypertable('fleet', 'ts', chunk_time_interval => interval '1 day') \g /dev/null
SELECT tidewatch.monitor('fleet', 'fleet', 'value', '{satellite,metric}') AS fleet_missing_data_job \gset
-- Incidents: SAT1 SCH.M3 jumps by 12 standard deviations of its last day for five minutes, 25
-- minutes ago; SAT2 SCH.M7 drops by as much for ten minutes, 2 hours ago.
CREATE TEMP TABLE incident AS
SELECT satellite, metric, sign * 12 * stddev(value) AS delta, since, until
FROM telemetry t
JOIN (VALUES ('SAT1', 'SCH.M3', 1, now() - interval '25 minutes', now() - interval '20 minutes'),
             ('SAT2', 'SCH.M7', -1, now() - interval '2 hours', now() - interval '110 minutes'))
     AS i(sat, met, sign, since, until) ON t.satellite = i.sat AND t.metric = i.met
WHERE t.ts >= now() - interval '1 day' AND t.ts < now()
GROUP BY satellite, metric, sign, since, until;
INSERT INTO fleet
SELECT t.ts, t.satellite, t.metric, t.value + coalesce(i.delta, 0)
FROM telemetry t
LEFT JOIN incident i ON i.satellite = t.satellite AND i.metric = t.metric AND t.ts >= i.since AND t.ts < i.until
WHERE t.ts >= now() - interval '1 day' AND t.ts < now()
  AND NOT (t.satellite = 'SAT4' AND t.ts >= now() - interval '40 minutes')
ORDER BY t.ts;
CALL tidewatch.run_job(:fleet_missing_data_job);
SELECT severity, kind, count(*) AS episodes, count(DISTINCT series) AS series
FROM tidewatch.anomalies WHERE monitor = 'fleet' GROUP BY 1, 2 ORDER BY 1, 2;
SQL

tour "   ... and a job that fails (its target is down), for the operations dashboard and the failed-job alert" <<'SQL'
CREATE OR REPLACE PROCEDURE nightly_export(job_id int, config jsonb) LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'export target % is not reachable', config ->> 'target' USING ERRCODE = '08001';
END $$;
SELECT tidewatch.add_job('nightly_export', interval '1 hour', '{"target": "s3://demo-exports/telemetry"}') AS export_job \gset
DO $$
BEGIN  -- the scheduler runs it within a second; wait up to 10 s
    FOR i IN 1..50 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM tidewatch.jobs j JOIN tidewatch.job_stats s USING (job_id)
                          WHERE j.proc = 'nightly_export(integer, jsonb)'::regprocedure AND s.last_status = 'failed');
        PERFORM pg_sleep(0.2);
    END LOOP;
END $$;
SELECT job_id, application_name, last_status, last_error FROM tidewatch.job_stats WHERE job_id = :export_job;
SQL

tour "   ... the detector's verdicts per series and hour against the labels of the injected anomalies (classification quality), and two forecasts of SCH.M1 (regression quality)" <<SQL
\set labels \`cat '$DIR/telemetry_labels.json'\`
DROP TABLE IF EXISTS anomaly_labels, verdicts, forecasts;
CREATE TABLE anomaly_labels AS
SELECT a -> 'series' AS series, a ->> 'kind' AS kind, (a ->> 'start')::timestamptz AS started_at,
       (a ->> 'end')::timestamptz AS ended_at
FROM jsonb_array_elements(:'labels'::jsonb -> 'anomalies') a;
COMMENT ON TABLE anomaly_labels IS 'The anomalies the sample-data generator injected into telemetry';
CREATE TABLE verdicts AS
SELECT h.hour AS ts, 'fleet'::text AS model, s.series,
       CASE WHEN EXISTS (SELECT 1 FROM tidewatch.anomalies a WHERE a.monitor = 'fleet' AND a.series = s.series
                         AND a.kind <> 'missing_data' AND a.started_at < h.hour + interval '1 hour'
                         AND coalesce(a.ended_at, a.started_at) >= h.hour) THEN 'anomaly' ELSE 'normal' END AS predicted,
       CASE WHEN EXISTS (SELECT 1 FROM anomaly_labels l WHERE l.series = s.series AND l.kind <> 'missing_data'
                         AND l.started_at < h.hour + interval '1 hour' AND l.ended_at >= h.hour) THEN 'anomaly' ELSE 'normal' END AS actual
FROM (SELECT DISTINCT series FROM tidewatch.monitor_state WHERE monitor = 'fleet') s,
     generate_series(date_trunc('hour', now() - interval '1 day'), now() - interval '1 hour', interval '1 hour') h(hour);
COMMENT ON TABLE verdicts IS 'Per series and hour of fleet: did the monitor flag it, and was an anomaly injected';
CREATE TABLE forecasts AS
SELECT t.ts, m.model, t.satellite, m.predicted, t.value AS actual
FROM (SELECT ts, satellite, value,
             avg(value) OVER (PARTITION BY satellite ORDER BY ts
                              RANGE BETWEEN interval '1 hour' PRECEDING AND interval '1 second' PRECEDING) AS hour_mean
      FROM telemetry WHERE metric = 'SCH.M1' AND ts >= now() - interval '25 hours' AND ts < now()) t
LEFT JOIN telemetry y ON y.metric = 'SCH.M1' AND y.satellite = t.satellite AND y.ts = t.ts - interval '1 day'
                     AND y.ts >= now() - interval '2 days'
CROSS JOIN LATERAL (VALUES ('same_time_yesterday', y.value), ('last_hour_mean', t.hour_mean)) m(model, predicted)
WHERE t.ts >= now() - interval '1 day';
COMMENT ON TABLE forecasts IS 'Two naive forecasts of SCH.M1 per satellite and their targets';
SELECT model, (q).n, round((q).accuracy::numeric, 3) AS accuracy, round((q).f1_macro::numeric, 3) AS f1_macro
FROM (SELECT model, tidewatch.classification_quality(predicted, actual) AS q FROM verdicts GROUP BY 1) s;
SELECT model, (q).n, round((q).mae::numeric, 3) AS mae, round((q).rmse::numeric, 3) AS rmse
FROM (SELECT model, tidewatch.regression_quality(predicted, actual) AS q FROM forecasts GROUP BY 1) s ORDER BY 1;
SQL

say "   ... feature batches whose current batch drifted (f_num1 and f_num2 shifted): a reference day a week ago, the current batch spread over the day around now, watched by a drift monitor every 10 minutes"
"${PSQL[@]}" -q <<'SQL'
SELECT tidewatch.unmonitor_drift('features_hourly', if_exists => true) \g /dev/null
DROP TABLE IF EXISTS feature_batches, features;
CREATE TABLE feature_batches (batch text, f_num1 float8, f_num2 float8, f_cat text, f_bool boolean);
CREATE TABLE features (ts timestamptz NOT NULL, f_num1 float8, f_num2 float8, f_cat text, f_bool boolean);
COMMENT ON TABLE features IS 'Model input features: the reference batch a week ago, the current batch around now';
SELECT tidewatch.create_hypertable('features', 'ts', chunk_time_interval => interval '1 day') \g /dev/null
SQL
"$GEN" features --drift shift --rows 2000 \
    | "${PSQL[@]}" -q -c "COPY feature_batches FROM STDIN WITH (FORMAT csv, HEADER true)"
tour "   ... (the monitor's first run)" <<'SQL'
INSERT INTO features
SELECT CASE WHEN batch = 'reference' THEN now() - interval '8 days' ELSE now() - interval '1 hour' END
         + (row_number() OVER (PARTITION BY batch ORDER BY f_num1, f_num2, f_cat)) * interval '1 day' / 2000,
       f_num1, f_num2, f_cat, f_bool
FROM feature_batches;
DROP TABLE feature_batches;
SELECT tidewatch.monitor_drift('features_hourly', 'features', tstzrange(now() - interval '8 days', now() - interval '7 days'),
                               interval '1 hour', interval '10 minutes') AS drift_job;
SELECT column_name, method, round(statistic::numeric, 4) AS statistic, drifted,
       round(share_of_drifted_columns::numeric, 2) AS share, dataset_drift
FROM tidewatch.run_drift_monitor('features_hourly');
SQL

say "   ... the ETL log of the last 7 days through a log monitor: templates, error classes, bursts as episodes"
"${PSQL[@]}" -q <<'SQL'
SELECT tidewatch.unmonitor_logs('etl_monitored', if_exists => true) \g /dev/null
DROP TABLE IF EXISTS etl_monitored;
CREATE TABLE etl_monitored (ts timestamptz NOT NULL, pipeline text, level text, message text, template_id bigint, category text);
SELECT tidewatch.create_hypertable('etl_monitored', 'ts', chunk_time_interval => interval '1 day') \g /dev/null
SELECT tidewatch.log_monitor('etl_monitored', 'etl_monitored', 'message', 'ts') \g /dev/null
INSERT INTO etl_monitored (ts, pipeline, level, message) SELECT ts, pipeline, level, message FROM etl_log WHERE ts < now() ORDER BY ts;
SQL
tour "   ... (its error bursts)" -c "
SELECT severity, count(*) AS bursts, min(started_at)::timestamp(0) AS first, max(started_at)::timestamp(0) AS last
FROM tidewatch.anomalies WHERE monitor = 'etl_monitored' GROUP BY 1 ORDER BY 1;"

say "   ... the roles Grafana and the service use (sql/roles.sql): tidewatch_reader may read these tables"
"${PSQL[@]}" -q -v reader_password="${TIDEWATCH_READER_PASSWORD:-tidewatch_reader}" \
    -v reader_tables='public.telemetry, public.etl_log, public.fleet, public.live_sat2, public.live_sat2_async, public.etl_live, public.etl_monitored, public.features, public.forecasts, public.verdicts, public.anomaly_labels' \
    -f "$REPO/sql/roles.sql" >/dev/null

if [ "$MODE" != "load" ]; then
    say "13. The HTTP service: tidewatch-service creates its metrics and logs hypertables with monitors; the last 2 days of telemetry and ETL logs go in over HTTP, and the anomalies come back over HTTP"
    cargo build --release -q -p tidewatch-service --manifest-path "$REPO/Cargo.toml"
    "${PSQL[@]}" -q -v service_password=demo-service -v reader_password="${TIDEWATCH_READER_PASSWORD:-tidewatch_reader}" -f "$REPO/sql/roles.sql" >/dev/null
    TOKEN=demo-write-token
    as_root touch "$DIR/service.log" && as_root chmod 666 "$DIR/service.log"
    # A local receiver for step 14's deliveries: it plays Telegram's Bot API (a telegram route with
    # its base URL pointed here) and a plain webhook, and writes down what it gets.
    RECEIVED="$DIR/received.jsonl"
    as_root rm -f "$RECEIVED" && as_root touch "$RECEIVED" && as_root chmod 666 "$RECEIVED"
    python3 "$REPO/tools/demo_push.py" receiver "$RECV_PORT" "$RECEIVED" >>"$DIR/service.log" 2>&1 &
    echo $! | as_root tee "$DIR/receiver.pid" >/dev/null
    ROUTES='[{"name": "ops-webhook", "kind": "webhook", "url": "http://127.0.0.1:'$RECV_PORT'/hook"},
             {"name": "telegram-demo", "kind": "telegram", "bot_token": "123456:demo-bot-token", "chat_id": -1001234567890,
              "base_url": "http://127.0.0.1:'$RECV_PORT'/telegram", "matchers": ["alertname=~Tidewatch.*"]}]'
    TIDEWATCH_DATABASE_URL="host=127.0.0.1 port=$PORT dbname=$DB user=tidewatch_service password=demo-service" \
    TIDEWATCH_LISTEN="127.0.0.1:$SVC_PORT" TIDEWATCH_WRITE_TOKENS="$TOKEN" TIDEWATCH_ALERT_ROUTES="$ROUTES" \
        nohup "$CARGO_TARGET_DIR/release/tidewatch-service" serve >>"$DIR/service.log" 2>&1 &
    echo $! | as_root tee "$DIR/service.pid" >/dev/null
    URL="http://127.0.0.1:$SVC_PORT"
    for _ in $(seq 100); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.2; done
    echo "   GET /readyz: $(curl -s "$URL/readyz")"
    "${PSQL[@]}" -q -c "\copy (SELECT ts, satellite, metric, value FROM telemetry WHERE ts > now() - interval '2 days' AND ts <= now() ORDER BY ts) TO STDOUT CSV" |
        python3 "$REPO/tools/demo_push.py" metrics "$URL" "$TOKEN"
    "${PSQL[@]}" -q -c "\copy (SELECT ts, pipeline, level, message FROM etl_log WHERE ts > now() - interval '2 days' AND ts <= now() ORDER BY ts) TO STDOUT CSV" |
        python3 "$REPO/tools/demo_push.py" logs "$URL" "$TOKEN"
    "${PSQL[@]}" -q -t -c "SELECT 'decoder caught up in ' || round(tidewatch.monitor_wait()::numeric, 1) || ' s'"
    echo "   GET /v1/anomalies?limit=8 (newest first):"
    python3 "$REPO/tools/demo_push.py" show "$URL" "$TOKEN"

    say "14. Grafana's alert webhook and the assistant: an alert in Grafana's webhook format for the strongest spike, stored once, linked to its episode and delivered; then three questions to the assistant (tidewatch-service ask; the page at $URL/)"
    python3 "$REPO/tools/demo_push.py" alert "$URL" "$TOKEN"
    echo "   ... delivered to a local receiver (routes: a webhook, and Telegram's sendMessage with its base URL at 127.0.0.1:$RECV_PORT):"
    python3 "$REPO/tools/demo_push.py" delivered "$URL" "$TOKEN" "$RECEIVED"
    kill "$(cat "$DIR/receiver.pid")" 2>/dev/null || true
    rm -f "$DIR/receiver.pid"
    echo "   (the local receiver is stopped: later notifications will retry, then show as dead in GET /v1/notifications)"
    for q in "how many anomalies in the last 2 days?" "which satellites had critical anomalies in the last 2 days?" \
             "why was SCH.M3 anomalous in the last 2 days?"; do
        echo "   Q: $q"
        TIDEWATCH_DATABASE_URL="host=127.0.0.1 port=$PORT dbname=$DB user=tidewatch_service password=demo-service" \
            "$CARGO_TARGET_DIR/release/tidewatch-service" ask "$q" 2>/dev/null | sed -n '1,14s/^/     /p'
    done
fi

say "Grafana: see docs/grafana.md (provisioning in grafana/, docker compose in docker/)."
if [ "$MODE" != "load" ]; then
    say "The demo cluster keeps running: ${PSQL[*]}"
    say "The service keeps running on $URL (API page: $URL/docs/, write token: $TOKEN; log: $DIR/service.log)"
    say "Stop both with: bash tools/demo.sh stop"
fi
