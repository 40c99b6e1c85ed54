#!/usr/bin/env bash
# Drift benchmarks, side by side in one run (release build, one cluster):
#   1. KS, PSI and normed Wasserstein on one numeric column, 1M reference vs 1M current rows
#      (one scan, one drift_agg with the three methods; and drift_report with the same list), against
#      the limit percentile_cont(0.5) over the same 2M rows.
#   2. drift_report (auto: normed Wasserstein) on 100k x 10 columns, against Evidently's
#      DataDriftPreset on the same shape (../shared/peers/drift_evidently_peer.py), which also
#      times scipy's ks_2samp on 1M vs 1M.
#   3. Peak backend RSS of drift_report on two 10^7-row windows of one column (BIG_ROWS, default
#      10000000 per window; BIG_ROWS=0 skips it).
# Usage: bash benches/drift.sh [REPEATS]   (default 3). Skips the peer, saying so, without ../shared.
source "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"
REPEATS=${1:-3}
DIR=${TIDEWATCH_BENCH_DIR:-/var/tmp/tidewatch-bench}
PORT=${TIDEWATCH_BENCH_PORT:-25444}
PEER="$REPO/../shared/peers/drift_evidently_peer.py"

ensure_deps
install_extension --release
cluster_start "$DIR" "$PORT" "postgres"
trap 'cluster_stop "$DIR"' EXIT
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres)

fresh_extension "${PSQL[@]}"
"${PSQL[@]}" <<'SQL'
SELECT setseed(0.42);
DROP TABLE IF EXISTS d1, d10;
-- Normal samples by Box–Muller from random().
CREATE TABLE d1 AS
SELECT timestamptz '2024-01-01' + i * interval '1 second' AS ts, i >= 1000000 AS is_current,
       sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) + CASE WHEN i >= 1000000 THEN 0.01 ELSE 0 END AS value
FROM generate_series(0, 1999999) i;
CREATE TABLE d10 (ts timestamptz NOT NULL, c0 float8, c1 float8, c2 float8, c3 float8, c4 float8,
                  c5 float8, c6 float8, c7 float8, c8 float8, c9 float8);
INSERT INTO d10 SELECT timestamptz '2024-01-01' + i * interval '1 second',
    random(), random(), random(), random(), random(), random(), random(), random(), random(),
    random() + CASE WHEN i >= 100000 THEN 0.02 ELSE 0 END
FROM generate_series(0, 199999) i;
VACUUM ANALYZE d1; VACUUM ANALYZE d10;
SQL

limit=() three=() three_report=() report=()
for r in $(seq 1 "$REPEATS"); do
    limit+=("$(psql_ms -c "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY value) FROM d1")")
    three+=("$(psql_ms -c "SELECT tidewatch.drift_agg(value, is_current, ARRAY['ks', 'psi', 'wasserstein']) FROM d1")")
    three_report+=("$(psql_ms -c "SELECT * FROM tidewatch.drift_report('d1', tstzrange('2024-01-01', timestamptz '2024-01-01' + interval '1000000 seconds'),
                               tstzrange(timestamptz '2024-01-01' + interval '1000000 seconds', NULL), columns => '{value}', time_column => 'ts',
                               methods => '{\"value\": [\"ks\", \"psi\", \"wasserstein\"]}')")")
    report+=("$(psql_ms -c "SELECT * FROM tidewatch.drift_report('d10', tstzrange('2024-01-01', '2024-01-01'::timestamptz + interval '100000 seconds'),
                               tstzrange('2024-01-01'::timestamptz + interval '100000 seconds', '2024-01-03'), time_column => 'ts')")")
done
LIMIT=$(printf '%s\n' "${limit[@]}" | median)
THREE=$(printf '%s\n' "${three[@]}" | median)
THREE_REPORT=$(printf '%s\n' "${three_report[@]}" | median)
REPORT=$(printf '%s\n' "${report[@]}" | median)
KS=$("${PSQL[@]}" -At -c "SELECT round((r).statistic::numeric, 6) || ' / ' || (r).p_value FROM (SELECT tidewatch.drift_agg(value, is_current, 'ks', NULL) r FROM d1) s")

BIG_ROWS=${BIG_ROWS:-10000000}
BIG="(10^7-row memory run skipped)"
if [ "$BIG_ROWS" -gt 0 ]; then
    "${PSQL[@]}" -c "DROP TABLE IF EXISTS dbig" -c "CREATE UNLOGGED TABLE dbig AS
        SELECT timestamptz '2024-01-01' + i * interval '1 second' AS ts, random() + CASE WHEN i >= $BIG_ROWS THEN 0.001 ELSE 0 END AS value
        FROM generate_series(0, 2 * $BIG_ROWS - 1) i" -c "VACUUM ANALYZE dbig"
    OUT=$("${PSQL[@]}" -At <<SQL | tail -2
SELECT pg_backend_pid() AS pid \gset
\timing on
SELECT method, round(statistic::numeric, 6), drifted FROM tidewatch.drift_report('dbig', tstzrange('2024-01-01', timestamptz '2024-01-01' + interval '$BIG_ROWS seconds'),
    tstzrange(timestamptz '2024-01-01' + interval '$BIG_ROWS seconds', NULL), time_column => 'ts',
    methods => '{"value": ["ks", "psi", "wasserstein"]}') \g /dev/null
\timing off
\setenv BACKEND_PID :pid
\! awk '/VmHWM/ { printf "%.0f\\n", \$2 / 1024 }' /proc/\$BACKEND_PID/status
SQL
)
    BIG="Peak backend RSS (VmHWM) of drift_report (ks, psi, wasserstein) on two windows of $BIG_ROWS rows each: $(tail -1 <<<"$OUT") MiB ($(head -1 <<<"$OUT"))."
    "${PSQL[@]}" -c "DROP TABLE dbig"
fi

PEER_OUT="(peer skipped: $PEER not found)"
if [ -f "$PEER" ]; then
    say "installing the peer's Python packages (benchmark only)"
    python3 -m pip install -q 'evidently' 'pandas<3' 'scipy' 'numpy' >/dev/null 2>&1 || true
    PEER_OUT=$(DO_NOT_TRACK=1 python3 "$PEER" 2>&1 | grep -E '^\(a\)|^\(b\)|^    auto|^    bare' || echo "(peer failed to run)")
fi

cat <<MD
Machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB; medians of $REPEATS runs.

| workload | ours | baseline | ratio |
|---|---|---|---|
| KS + PSI + normed Wasserstein, 1M vs 1M rows, one \`drift_agg(value, is_current, ARRAY['ks', 'psi', 'wasserstein'])\` vs \`percentile_cont(0.5)\` over the same 2M rows (≤ 2 wanted) | ${THREE} ms | ${LIMIT} ms | $(ratio "$THREE" "$LIMIT") |
| the same three tests through \`drift_report\` (time windows of a table) | ${THREE_REPORT} ms | ${LIMIT} ms | $(ratio "$THREE_REPORT" "$LIMIT") |
| \`drift_report\` (auto → normed Wasserstein), 100k vs 100k rows × 10 columns | ${REPORT} ms | see peer below | |

KS on the 1M vs 1M sample: D / p = $KS

$BIG

Peer output (same machine, same run):
\`\`\`
$PEER_OUT
\`\`\`
MD
