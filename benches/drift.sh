#!/usr/bin/env bash
# Drift benchmarks, side by side in one run (release build, one cluster):
#   1. KS, PSI and normed Wasserstein on one numeric column, 1M reference vs 1M current rows
#      (one scan, three drift_agg), against the limit percentile_cont(0.5) over the same 2M rows.
#   2. drift_report (auto: normed Wasserstein) on 100k x 10 columns, against Evidently's
#      DataDriftPreset on the same shape (../shared/peers/drift_evidently_peer.py), which also
#      times scipy's ks_2samp on 1M vs 1M.
# Usage: bash benches/drift.sh [REPEATS]   (default 3). Skips the peer, saying so, without ../shared.
source "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"
REPEATS=${1:-3}
DIR=${TIDEWATCH_BENCH_DIR:-/var/tmp/tidewatch-bench}
PORT=${TIDEWATCH_BENCH_PORT:-55444}
PEER="$REPO/../shared/peers/drift_evidently_peer.py"

ensure_deps
install_extension --release
cluster_start "$DIR" "$PORT" "postgres"
trap 'cluster_stop "$DIR"' EXIT
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres)

"${PSQL[@]}" <<'SQL'
DROP EXTENSION IF EXISTS tidewatch CASCADE;
CREATE EXTENSION tidewatch;
SELECT setseed(0.42);
DROP TABLE IF EXISTS d1, d10;
-- Normal samples by Box–Muller from random().
CREATE TABLE d1 AS
SELECT i >= 1000000 AS is_current,
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

limit=() three=() report=()
for r in $(seq 1 "$REPEATS"); do
    limit+=("$(psql_ms -c "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY value) FROM d1")")
    three+=("$(psql_ms -c "SELECT tidewatch.drift_agg(value, is_current, 'ks', NULL), tidewatch.drift_agg(value, is_current, 'psi', NULL),
                             tidewatch.drift_agg(value, is_current, 'wasserstein', NULL) FROM d1")")
    report+=("$(psql_ms -c "SELECT * FROM tidewatch.drift_report('d10', tstzrange('2024-01-01', '2024-01-01'::timestamptz + interval '100000 seconds'),
                               tstzrange('2024-01-01'::timestamptz + interval '100000 seconds', '2024-01-03'), time_column => 'ts')")")
done
LIMIT=$(printf '%s\n' "${limit[@]}" | median)
THREE=$(printf '%s\n' "${three[@]}" | median)
REPORT=$(printf '%s\n' "${report[@]}" | median)
KS=$("${PSQL[@]}" -At -c "SELECT round((r).statistic::numeric, 6) || ' / ' || (r).p_value FROM (SELECT tidewatch.drift_agg(value, is_current, 'ks', NULL) r FROM d1) s")

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
| KS + PSI + normed Wasserstein, 1M vs 1M rows, one scan (\`drift_agg\` ×3) vs \`percentile_cont(0.5)\` over the same 2M rows (≤ 2 wanted) | ${THREE} ms | ${LIMIT} ms | $(ratio "$THREE" "$LIMIT") |
| \`drift_report\` (auto → normed Wasserstein), 100k vs 100k rows × 10 columns | ${REPORT} ms | see peer below | |

KS on the 1M vs 1M sample: D / p = $KS

Peer output (same machine, same run):
\`\`\`
$PEER_OUT
\`\`\`
MD
