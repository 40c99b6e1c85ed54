#!/usr/bin/env bash
# Anomaly benchmarks, side by side in one run (release build, one cluster):
#   1. detect_anomalies over ROWS rows x SERIES series in one hypertable, with auto and with the
#      fastest method (ewma), against the limit `SELECT series_id, avg(value) ... GROUP BY` and
#      against the pandas peer (../shared/peers/anomaly_pandas_peer.py, rolling MAD).
#   2. The aggregate form with 0 and with 2 parallel workers; detect_anomalies(anomalies_only) on
#      a space-partitioned copy of the table (4 hash partitions) with 2 workers, against the
#      peer and against that table's scan with the same workers, with and without the leader
#      taking partitions (parallel_leader_participation).
#   3. Peak backend RSS (VmHWM) of the detect_anomalies run.
#   4. COPY of COPY_ROWS rows into a monitored hypertable against the same COPY unmonitored, and
#      into one with a no-op transition-table trigger (the floor of that design); the same COPY
#      into a hypertable with an async monitor (no trigger), with the time its decoder takes to
#      score the rows after the commit (lag), in one COPY and in 100 COPYs back to back.
# Usage: bash benches/anomaly.sh [ROWS] [SERIES] [REPEATS] [COPY_ROWS]
#   (defaults 10000000 1000 3 1000000). Skips the peer, saying so, without ../shared.
source "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"
ROWS=${1:-10000000}
SERIES=${2:-1000}
REPEATS=${3:-3}
COPY_ROWS=${4:-1000000}
DIR=${TIDEWATCH_BENCH_DIR:-/var/tmp/tidewatch-bench}
PORT=${TIDEWATCH_BENCH_PORT:-25444}
PEER="$REPO/../shared/peers/anomaly_pandas_peer.py"

ensure_deps
install_extension --release
cluster_start "$DIR" "$PORT" "postgres"
trap 'cluster_stop "$DIR"' EXIT
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres)
PER=$((ROWS / SERIES))

say "generating $ROWS rows ($SERIES series x $PER points)"
fresh_extension "${PSQL[@]}"
"${PSQL[@]}" <<SQL
DROP TABLE IF EXISTS metrics, live_plain, live_mon, live_async;
CREATE TABLE metrics (series_id integer NOT NULL, ts timestamptz NOT NULL, value float8);
SELECT tidewatch.create_hypertable('metrics', 'ts', interval '7 days');
SELECT setseed(0.42);
INSERT INTO metrics
SELECT s, timestamptz '2026-01-01' + i * interval '1 minute',
       100 + 10 * sin(i / 229.0) + s % 7 + random() + CASE WHEN i % 2017 = 0 THEN 25 ELSE 0 END
FROM generate_series(0, $PER - 1) i, generate_series(1, $SERIES) s;
-- The same rows in a hypertable with space partitioning (docs/scale-out.md): every series in one
-- of 4 hash partitions, so that parallel workers each score whole series.
DROP TABLE IF EXISTS metrics_space;
CREATE TABLE metrics_space (series_id integer NOT NULL, ts timestamptz NOT NULL, value float8);
SELECT tidewatch.create_hypertable('metrics_space', 'ts', interval '7 days',
                                   partitioning_column => 'series_id', number_partitions => 4);
INSERT INTO metrics_space SELECT * FROM metrics;
VACUUM ANALYZE metrics, metrics_space;
CREATE TABLE live_plain (series_id integer NOT NULL, ts timestamptz NOT NULL, value float8);
SELECT tidewatch.create_hypertable('live_plain', 'ts', interval '7 days');
CREATE TABLE live_mon (series_id integer NOT NULL, ts timestamptz NOT NULL, value float8);
SELECT tidewatch.create_hypertable('live_mon', 'ts', interval '7 days');
SELECT tidewatch.monitor('bench', 'live_mon', 'value', '{series_id}');
CREATE TABLE live_async (series_id integer NOT NULL, ts timestamptz NOT NULL, value float8);
SELECT tidewatch.create_hypertable('live_async', 'ts', interval '7 days');
SELECT tidewatch.monitor('bench_async', 'live_async', 'value', '{series_id}', mode => 'async');
-- The floor of any monitor built on a statement trigger with a transition table: one that does
-- nothing (COPY then inserts row by row into a partitioned table and fills the transition table).
DROP TABLE IF EXISTS live_floor;
CREATE TABLE live_floor (series_id integer NOT NULL, ts timestamptz NOT NULL, value float8);
SELECT tidewatch.create_hypertable('live_floor', 'ts', interval '7 days');
CREATE OR REPLACE FUNCTION bench_noop() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN RETURN NULL; END\$\$;
CREATE TRIGGER noop AFTER INSERT ON live_floor REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bench_noop();
COPY (SELECT * FROM metrics ORDER BY ts, series_id LIMIT $COPY_ROWS) TO '$DIR/copy.csv' WITH (FORMAT csv);
SQL
# The same rows in 100 files, for 100 COPYs back to back (sustained ingest).
rm -f "$DIR"/part_*
split -l $(( (COPY_ROWS + 99) / 100 )) -d -a 3 "$DIR/copy.csv" "$DIR/part_"
PARTS=$(ls "$DIR"/part_* | awk '{ printf "COPY live_async FROM \x27%s\x27 WITH (FORMAT csv);\n", $0 }')

PAR2=(-c "SET max_parallel_workers_per_gather = 2" -c "SET parallel_setup_cost = 0" -c "SET parallel_tuple_cost = 0")
# The same with the leader not taking partitions: on a machine whose cores the workers already
# take, a leader that takes a whole partition finishes last (docs/scale-out.md).
PAR2L=("${PAR2[@]}" -c "SET parallel_leader_participation = off")
scansp=() onlysp=() scanspl=() onlyspl=()
scan=() auto=() only=() fast=() fastonly=() aggall=() agg0=() agg2=() plain=() mon=() floor=()
async=() lag=() parts=() partlag=()
for r in $(seq 1 "$REPEATS"); do
    scan+=("$(psql_ms -c "SELECT series_id, avg(value) FROM metrics GROUP BY series_id" )")
    auto+=("$(psql_ms -c "SELECT count(*) FILTER (WHERE is_anomaly) FROM tidewatch.detect_anomalies('metrics', 'value', '{series_id}')")")
    only+=("$(psql_ms -c "SELECT count(*) FROM tidewatch.detect_anomalies('metrics', 'value', '{series_id}', anomalies_only => true)")")
    scansp+=("$(psql_ms "${PAR2[@]}" -c "SELECT series_id, avg(value) FROM metrics_space GROUP BY series_id")")
    onlysp+=("$(psql_ms "${PAR2[@]}" -c "SELECT count(*) FROM tidewatch.detect_anomalies('metrics_space', 'value', '{series_id}', anomalies_only => true)")")
    scanspl+=("$(psql_ms "${PAR2L[@]}" -c "SELECT series_id, avg(value) FROM metrics_space GROUP BY series_id")")
    onlyspl+=("$(psql_ms "${PAR2L[@]}" -c "SELECT count(*) FROM tidewatch.detect_anomalies('metrics_space', 'value', '{series_id}', anomalies_only => true)")")
    fast+=("$(psql_ms -c "SELECT count(*) FILTER (WHERE is_anomaly) FROM tidewatch.detect_anomalies('metrics', 'value', '{series_id}', method => 'ewma')")")
    fastonly+=("$(psql_ms -c "SELECT count(*) FROM tidewatch.detect_anomalies('metrics', 'value', '{series_id}', method => 'ewma', anomalies_only => true)")")
    aggall+=("$(psql_ms -c "SELECT count(*) FILTER (WHERE p.is_anomaly) FROM (SELECT series_id, tidewatch.anomaly_agg(ts, value) AS b FROM metrics GROUP BY series_id) g CROSS JOIN LATERAL tidewatch.anomaly_points(g.b) p")")
    agg0+=("$(psql_ms -c "SET max_parallel_workers_per_gather = 0" -c "SELECT sum(length(a)) FROM (SELECT series_id, tidewatch.anomaly_agg(ts, value, 'ewma') AS a FROM metrics GROUP BY series_id) s")")
    agg2+=("$(psql_ms -c "SET max_parallel_workers_per_gather = 2" -c "SET parallel_setup_cost = 0" -c "SET parallel_tuple_cost = 0" -c "SELECT sum(length(a)) FROM (SELECT series_id, tidewatch.anomaly_agg(ts, value, 'ewma') AS a FROM metrics GROUP BY series_id) s")")
    "${PSQL[@]}" -c "TRUNCATE live_plain, live_mon, live_floor, live_async; DELETE FROM tidewatch.monitor_state; DELETE FROM tidewatch.anomalies"
    # Each COPY starts with the decoder idle (it reads every table's WAL, monitored or not).
    "${PSQL[@]}" -c "SELECT tidewatch.monitor_wait(interval '10 minutes')" >/dev/null
    plain+=("$(psql_ms -c "COPY live_plain FROM '$DIR/copy.csv' WITH (FORMAT csv)")")
    "${PSQL[@]}" -c "SELECT tidewatch.monitor_wait(interval '10 minutes')" >/dev/null
    mon+=("$(psql_ms -c "COPY live_mon FROM '$DIR/copy.csv' WITH (FORMAT csv)")")
    "${PSQL[@]}" -c "SELECT tidewatch.monitor_wait(interval '10 minutes')" >/dev/null
    floor+=("$(psql_ms -c "COPY live_floor FROM '$DIR/copy.csv' WITH (FORMAT csv)")")
    "${PSQL[@]}" -c "SELECT tidewatch.monitor_wait(interval '10 minutes')" >/dev/null
    async+=("$(psql_ms -c "COPY live_async FROM '$DIR/copy.csv' WITH (FORMAT csv)")")
    lag+=("$("${PSQL[@]}" -At -c "SELECT round(tidewatch.monitor_wait(interval '10 minutes') * 1000)")")
    "${PSQL[@]}" -c "TRUNCATE live_async; DELETE FROM tidewatch.monitor_state WHERE monitor = 'bench_async'"
    "${PSQL[@]}" -c "SELECT tidewatch.monitor_wait(interval '10 minutes')" >/dev/null
    t0=$(date +%s%N)
    printf '%s' "$PARTS" | "${PSQL[@]}" -f - >/dev/null
    parts+=("$(( ($(date +%s%N) - t0) / 1000000 ))")
    partlag+=("$("${PSQL[@]}" -At -c "SELECT round(tidewatch.monitor_wait(interval '10 minutes') * 1000)")")
done
ASYNC=$(printf '%s\n' "${async[@]}" | median)
LAG=$(printf '%s\n' "${lag[@]}" | median)
PARTS_MS=$(printf '%s\n' "${parts[@]}" | median)
PARTLAG=$(printf '%s\n' "${partlag[@]}" | median)
ASYNC_N=$("${PSQL[@]}" -At -c "SELECT sum(n) FROM tidewatch.monitor_state WHERE monitor = 'bench_async'")
SCAN=$(printf '%s\n' "${scan[@]}" | median)
AUTO=$(printf '%s\n' "${auto[@]}" | median)
ONLY=$(printf '%s\n' "${only[@]}" | median)
SCANSP=$(printf '%s\n' "${scansp[@]}" | median)
ONLYSP=$(printf '%s\n' "${onlysp[@]}" | median)
SCANSPL=$(printf '%s\n' "${scanspl[@]}" | median)
ONLYSPL=$(printf '%s\n' "${onlyspl[@]}" | median)
# Like for like: both tables give the same anomalies.
NONLY=$("${PSQL[@]}" -At -c "SELECT count(*) FROM tidewatch.detect_anomalies('metrics', 'value', '{series_id}', anomalies_only => true)")
NONLYSP=$("${PSQL[@]}" -At "${PAR2[@]}" -c "SELECT count(*) FROM tidewatch.detect_anomalies('metrics_space', 'value', '{series_id}', anomalies_only => true)")
FAST=$(printf '%s\n' "${fast[@]}" | median)
FASTONLY=$(printf '%s\n' "${fastonly[@]}" | median)
AGGALL=$(printf '%s\n' "${aggall[@]}" | median)
FLOOR=$(printf '%s\n' "${floor[@]}" | median)
AGG0=$(printf '%s\n' "${agg0[@]}" | median)
AGG2=$(printf '%s\n' "${agg2[@]}" | median)
PLAIN=$(printf '%s\n' "${plain[@]}" | median)
MON=$(printf '%s\n' "${mon[@]}" | median)
PLAN2=$("${PSQL[@]}" -At -c "SET max_parallel_workers_per_gather = 2" -c "SET parallel_setup_cost = 0" -c "SET parallel_tuple_cost = 0" \
        -c "EXPLAIN SELECT sum(length(a)) FROM (SELECT series_id, tidewatch.anomaly_agg(ts, value, 'ewma') AS a FROM metrics GROUP BY series_id) s" | grep -c "Partial" || true)
RSS=$("${PSQL[@]}" -At <<'SQL' | tail -1
SELECT pg_backend_pid() AS pid \gset
SELECT count(*) FROM tidewatch.detect_anomalies('metrics', 'value', '{series_id}') \g /dev/null
\setenv BACKEND_PID :pid
\! awk '/VmHWM/ { printf "%.0f\n", $2 / 1024 }' /proc/$BACKEND_PID/status
SQL
)
EPISODES=$("${PSQL[@]}" -At -c "SELECT count(*) FROM tidewatch.anomalies")

PEER_OUT="(peer skipped: $PEER not found)"
PEER_S=""
if [ -f "$PEER" ]; then
    say "installing the peer's Python packages (benchmark only)"
    python3 -m pip install -q 'psycopg[binary]' 'pandas<3' numpy scikit-learn >/dev/null 2>&1 || true
    PEER_OUT=$(python3 "$PEER" --dsn "host=127.0.0.1 port=$PORT user=postgres dbname=postgres" --table metrics \
               --series-col series_id --time-col ts --value-col value --method mad 2>&1 | tail -4 || echo "(peer failed to run)")
    PEER_S=$(printf '%s\n' "$PEER_OUT" | sed -n 's/.*peer_total_seconds=\([0-9.]*\).*/\1/p' | tail -1)
fi
PEER_RATIO=""
PEER_ONLY=""
[ -n "$PEER_S" ] && PEER_RATIO=$(awk -v p="$PEER_S" -v a="$AUTO" 'BEGIN { printf "%.1f", p * 1000 / a }')
[ -n "$PEER_S" ] && PEER_ONLY=$(awk -v p="$PEER_S" -v a="$ONLY" 'BEGIN { printf "%.1f", p * 1000 / a }')
PEER_SP="" PEER_SPL=""
[ -n "$PEER_S" ] && PEER_SPL=$(awk -v p="$PEER_S" -v a="$ONLYSPL" 'BEGIN { printf "%.1f", p * 1000 / a }')
[ -n "$PEER_S" ] && PEER_SP=$(awk -v p="$PEER_S" -v a="$ONLYSP" 'BEGIN { printf "%.1f", p * 1000 / a }')

cat <<MD
Machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB; $ROWS rows, $SERIES series; medians of $REPEATS runs.

| workload | ours | baseline | ratio |
|---|---|---|---|
| \`detect_anomalies\` auto vs \`SELECT series_id, avg(value) … GROUP BY series_id\` (≤ 1.5 wanted) | ${AUTO} ms | ${SCAN} ms | $(ratio "$AUTO" "$SCAN") |
| \`detect_anomalies\` auto, \`anomalies_only => true\` vs the same scan | ${ONLY} ms | ${SCAN} ms | $(ratio "$ONLY" "$SCAN") |
| \`detect_anomalies\` ewma (fastest) vs the same scan | ${FAST} ms | ${SCAN} ms | $(ratio "$FAST" "$SCAN") |
| \`detect_anomalies\` ewma, \`anomalies_only => true\` vs the same scan | ${FASTONLY} ms | ${SCAN} ms | $(ratio "$FASTONLY" "$SCAN") |
| the aggregate form, auto, every point: \`anomaly_agg\` GROUP BY + \`anomaly_points\` (not materialized) vs the same scan | ${AGGALL} ms | ${SCAN} ms | $(ratio "$AGGALL" "$SCAN") |
| pandas peer (rolling MAD, fetch + score + write) vs \`detect_anomalies\` auto (≥ 20 wanted) | ${AUTO} ms | ${PEER_S:-n/a} s | ${PEER_RATIO:-n/a}× faster |
| the same peer vs \`detect_anomalies\` auto, \`anomalies_only => true\` (the peer writes back only anomalies) | ${ONLY} ms | ${PEER_S:-n/a} s | ${PEER_ONLY:-n/a}× faster |
| the same on a space-partitioned copy of the table (4 hash partitions by series, 2 parallel workers; the peer uses one process): \`anomalies_only => true\` vs the peer | ${ONLYSP} ms | ${PEER_S:-n/a} s | ${PEER_SP:-n/a}× faster |
| that query vs the scan of the space-partitioned table with the same 2 workers | ${ONLYSP} ms | ${SCANSP} ms | $(ratio "$ONLYSP" "$SCANSP") |
| the same two with \`parallel_leader_participation = off\`: \`anomalies_only => true\` vs the peer | ${ONLYSPL} ms | ${PEER_S:-n/a} s | ${PEER_SPL:-n/a}× faster |
| and vs the scan of the space-partitioned table with the same settings | ${ONLYSPL} ms | ${SCANSPL} ms | $(ratio "$ONLYSPL" "$SCANSPL") |
| \`anomaly_agg\` GROUP BY series, 0 vs 2 parallel workers (plan has $PLAN2 partial node(s)) | ${AGG2} ms (2 workers) | ${AGG0} ms (0 workers) | $(ratio "$AGG0" "$AGG2")× speed-up |
| COPY $COPY_ROWS rows, monitored vs unmonitored hypertable (throughput ≥ 0.7 wanted) | ${MON} ms | ${PLAIN} ms | $(ratio "$PLAIN" "$MON") throughput |
| the floor: COPY into a hypertable whose only trigger is a no-op statement trigger with a transition table | ${FLOOR} ms | ${PLAIN} ms | $(ratio "$PLAIN" "$FLOOR") throughput |
| COPY $COPY_ROWS rows, **async** monitor vs unmonitored hypertable (throughput ≥ 0.7 wanted) | ${ASYNC} ms | ${PLAIN} ms | $(ratio "$PLAIN" "$ASYNC") throughput |
| async lag: from that COPY's commit until its $COPY_ROWS rows are scored (\`monitor_wait()\`) | ${LAG} ms | | |
| the same rows as 100 COPYs back to back into the async-monitored hypertable; lag after the last commit | ${PARTS_MS} ms; lag ${PARTLAG} ms | ${PLAIN} ms (one COPY, unmonitored) | |

Anomalies returned with \`anomalies_only => true\`: $NONLY from the time-only table, $NONLYSP from the space-partitioned one (the peer wrote back its own).
Peak backend RSS (VmHWM) after \`detect_anomalies\` auto on $ROWS rows: ${RSS} MiB. Episodes from the monitored COPYs (sync and async): $EPISODES. Points the async monitor scored in the last run: $ASYNC_N.

Peer output (same machine, same run):
\`\`\`
$PEER_OUT
\`\`\`
MD
