#!/usr/bin/env bash
# Space partitioning benchmark (release build, one cluster run from a private PostgreSQL copy):
# ROWS rows x SERIES series loaded twice, into a hypertable partitioned by time only and into one
# with space partitioning (create_hypertable(..., partitioning_column => 'series_id',
# number_partitions => PARTS)); on each, with 0 and with 2 parallel workers:
#   - SELECT series_id, avg(value) ... GROUP BY series_id (the limit: a scan)
#   - the aggregate form: anomaly_agg(ts, value) GROUP BY series_id (auto; every point scored)
#   - detect_anomalies(..., anomalies_only => true) (auto)
#   - train_detector(...) over every row (auto; 1,000 models upserted)
# Medians of REPEATS runs. The parallel costs are set to 0 so that the planner uses the 2 workers
# wherever it can.
# Usage: bash benches/scale.sh [ROWS] [SERIES] [REPEATS] [PARTS]   (defaults 10000000 1000 3 4)
source "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"
ROWS=${1:-10000000}
SERIES=${2:-1000}
REPEATS=${3:-3}
PARTS=${4:-4}
DIR=${TIDEWATCH_BENCH_DIR:-/var/tmp/tidewatch-bench-scale}
PORT=${TIDEWATCH_BENCH_PORT:-25445}

ensure_deps
use_private_pg "$DIR/pg"
[ "${TIDEWATCH_BENCH_REUSE:-}" = 1 ] || cluster_stop "$DIR/cluster"
install_extension --release
cluster_start "$DIR/cluster" "$PORT" "postgres"
trap 'cluster_stop "$DIR/cluster"' EXIT
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres)
PER=$((ROWS / SERIES))

if [ "${TIDEWATCH_BENCH_REUSE:-}" = 1 ] && [ "$("${PSQL[@]}" -At -c "SELECT count(*) FROM m_space" 2>/dev/null)" = "$ROWS" ]; then
    say "reusing the $ROWS rows loaded before (TIDEWATCH_BENCH_REUSE=1)"
else
say "generating $ROWS rows ($SERIES series x $PER points), twice"
fresh_extension "${PSQL[@]}"
"${PSQL[@]}" <<SQL
DROP TABLE IF EXISTS m_time, m_space;
CREATE TABLE m_time (series_id integer NOT NULL, ts timestamptz NOT NULL, value float8);
SELECT tidewatch.create_hypertable('m_time', 'ts', interval '7 days');
CREATE TABLE m_space (series_id integer NOT NULL, ts timestamptz NOT NULL, value float8);
SELECT tidewatch.create_hypertable('m_space', 'ts', interval '7 days',
                                   partitioning_column => 'series_id', number_partitions => $PARTS);
-- Chunks for the whole range first, so that the rows go straight into them.
SELECT tidewatch._ensure_chunk(t, b) FROM unnest('{m_time,m_space}'::regclass[]) t,
       generate_series(timestamptz '2026-01-01', timestamptz '2026-01-01' + $PER * interval '1 minute', interval '1 day') b;
SELECT setseed(0.42);
INSERT INTO m_time
SELECT s, timestamptz '2026-01-01' + i * interval '1 minute',
       100 + 10 * sin(i / 229.0) + s % 7 + random() + CASE WHEN i % 2017 = 0 THEN 25 ELSE 0 END
FROM generate_series(0, $PER - 1) i, generate_series(1, $SERIES) s;
SELECT * FROM tidewatch.run_maintenance('m_time');
INSERT INTO m_space SELECT * FROM m_time;
SELECT * FROM tidewatch.run_maintenance('m_space');
VACUUM ANALYZE m_time, m_space;
SQL
fi

PAR0=(-c "SET max_parallel_workers_per_gather = 0")
PAR2=(-c "SET max_parallel_workers_per_gather = 2" -c "SET parallel_setup_cost = 0" -c "SET parallel_tuple_cost = 0")
declare -A T
for r in $(seq 1 "$REPEATS"); do
    for tbl in m_time m_space; do
        for w in 0 2; do
            if [ "$w" = 0 ]; then par=("${PAR0[@]}"); else par=("${PAR2[@]}"); fi
            T[$tbl.$w.scan]+="$(psql_ms "${par[@]}" -c "SELECT series_id, avg(value) FROM $tbl GROUP BY series_id") "
            T[$tbl.$w.agg]+="$(psql_ms "${par[@]}" -c "SET enable_partitionwise_aggregate = on" \
                -c "SELECT sum(length(a)) FROM (SELECT series_id, tidewatch.anomaly_agg(ts, value) AS a FROM $tbl GROUP BY series_id) s") "
            T[$tbl.$w.only]+="$(psql_ms "${par[@]}" -c "SELECT count(*) FROM tidewatch.detect_anomalies('$tbl', 'value', '{series_id}', anomalies_only => true)") "
            T[$tbl.$w.train]+="$(psql_ms "${par[@]}" -c "SELECT tidewatch.train_detector('bench_$tbl', '$tbl', 'value', '{series_id}', interval '100 years')") "
        done
    done
done
med() { printf '%s\n' ${T[$1]} | median; }
PLAN=$("${PSQL[@]}" -At "${PAR2[@]}" -c "SET enable_partitionwise_aggregate = on" \
    -c "EXPLAIN SELECT series_id, tidewatch.anomaly_agg(ts, value) FROM m_space GROUP BY series_id" | head -4 | sed 's/  (cost.*//')

cat <<MD
Machine: $(nproc) cores (shared), $(free -g | awk '/^Mem:/ { print $2 }') GiB; $ROWS rows, $SERIES series, $PARTS hash partitions; medians of $REPEATS runs (ms).

| query | time-only, 0 workers | time-only, 2 workers | space, 0 workers | space, 2 workers | space: 2 vs 0 workers |
|---|---|---|---|---|---|
MD
for q in scan agg only train; do
    case $q in
        scan) name='`SELECT series_id, avg(value) … GROUP BY series_id`' ;;
        agg) name='`anomaly_agg(ts, value)` GROUP BY series_id (auto)' ;;
        only) name='`detect_anomalies(…, anomalies_only => true)` (auto)' ;;
        train) name='`train_detector(…)` (auto, 1,000 models written)' ;;
    esac
    echo "| $name | $(med m_time.0.$q) | $(med m_time.2.$q) | $(med m_space.0.$q) | $(med m_space.2.$q) | $(ratio "$(med m_space.0.$q)" "$(med m_space.2.$q)")× |"
done
cat <<MD

\`detect_anomalies(…, anomalies_only => true)\` against the scan of the same table, same workers:
time-only 0 workers $(ratio "$(med m_time.0.only)" "$(med m_time.0.scan)")×, 2 workers $(ratio "$(med m_time.2.only)" "$(med m_time.2.scan)")×;
space 0 workers $(ratio "$(med m_space.0.only)" "$(med m_space.0.scan)")×, 2 workers $(ratio "$(med m_space.2.only)" "$(med m_space.2.scan)")×;
space, 2 workers, against the time-only table's scan with 2 workers: $(ratio "$(med m_space.2.only)" "$(med m_time.2.scan)")×.

Plan of the aggregate form on the space-partitioned table with 2 workers (first lines):
\`\`\`
$PLAN
\`\`\`
MD
