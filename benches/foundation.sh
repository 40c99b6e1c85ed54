#!/usr/bin/env bash
# Foundation benchmarks, side by side in one run on one cluster (release build):
#   1. COPY N rows into a hypertable vs the same COPY into a native partitioned table with the
#      same premade partitions (target: ratio >= 0.9 in throughput).
#   2. COPY N rows of which 5% lie far outside the premade chunks, then run_maintenance:
#      rows lost (must be 0) and how long maintenance took.
#   3. time_bucket vs PostgreSQL's date_bin over N rows (target: <= 1.2x), with a plain max(ts)
#      scan as the limit.
# Usage: bash benches/foundation.sh [ROWS] [REPEATS]    (defaults: 10000000 rows, 3 repeats)
# Prints a Markdown table to paste into benches/RESULTS.md.
source "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"
ROWS=${1:-10000000}
REPEATS=${2:-3}
DIR=${TIDEWATCH_BENCH_DIR:-/var/tmp/tidewatch-bench}
PORT=${TIDEWATCH_BENCH_PORT:-25444}

ensure_deps
install_extension --release
cluster_start "$DIR" "$PORT" "postgres"
trap 'cluster_stop "$DIR"' EXIT
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres)

# ms SQL...: run statements with \timing, print the time of the last one in ms.
ms() {
    "${PSQL[@]}" -c '\timing on' "$@" 2>&1 | awk '/^Time: / { t = $2 } END { print t }'
}

DATA="$DIR/rows.csv"
FAR="$DIR/rows_far.csv"
fresh_extension "${PSQL[@]}"
"${PSQL[@]}" <<SQL
-- The data: now() .. now() + 3.5 days, 1000 series, inside the chunks create_hypertable premakes.
CREATE TEMP TABLE src AS
SELECT tidewatch.time_bucket('1 day', now()) + (i * (302400000000 / $ROWS)) * interval '1 microsecond' AS ts,
       (i % 1000) AS series_id, (i % 9973) * 0.5 AS value
FROM generate_series(0, $ROWS - 1) i;
COPY src TO '$DATA' WITH (FORMAT csv);
-- The same with 5% of rows moved years away (before and after).
COPY (SELECT CASE WHEN i % 20 = 0 THEN ts - interval '3 years' + (i % 7) * interval '30 days'
                  WHEN i % 20 = 10 THEN ts + interval '2 years' + (i % 5) * interval '40 days'
                  ELSE ts END, series_id, value
      FROM (SELECT row_number() OVER () AS i, * FROM src) s) TO '$FAR' WITH (FORMAT csv);
SQL

copy_ht=() copy_native=()
for r in $(seq 1 "$REPEATS"); do
    "${PSQL[@]}" -c "DROP TABLE IF EXISTS ht, native" -c "
        CREATE TABLE ht (ts timestamptz NOT NULL, series_id int, value float8);
        SELECT tidewatch.create_hypertable('ht', 'ts', interval '1 day');
        CREATE TABLE native (ts timestamptz NOT NULL, series_id int, value float8) PARTITION BY RANGE (ts);
        CREATE TABLE native_default PARTITION OF native DEFAULT;
        DO \$\$ BEGIN FOR i IN 0 .. 3 LOOP
            EXECUTE format('CREATE TABLE native_%s PARTITION OF native FOR VALUES FROM (%L) TO (%L)', i,
                tidewatch.time_bucket('1 day', now()) + i * interval '1 day', tidewatch.time_bucket('1 day', now()) + (i + 1) * interval '1 day');
        END LOOP; END \$\$;
        CHECKPOINT;" >/dev/null
    if [ $((r % 2)) -eq 1 ]; then
        copy_ht+=("$(ms -c "COPY ht FROM '$DATA' WITH (FORMAT csv)")")
        "${PSQL[@]}" -c CHECKPOINT >/dev/null
        copy_native+=("$(ms -c "COPY native FROM '$DATA' WITH (FORMAT csv)")")
    else
        copy_native+=("$(ms -c "COPY native FROM '$DATA' WITH (FORMAT csv)")")
        "${PSQL[@]}" -c CHECKPOINT >/dev/null
        copy_ht+=("$(ms -c "COPY ht FROM '$DATA' WITH (FORMAT csv)")")
    fi
done
HT=$(printf '%s\n' "${copy_ht[@]}" | median)
NATIVE=$(printf '%s\n' "${copy_native[@]}" | median)
"${PSQL[@]}" -c "VACUUM ANALYZE ht" >/dev/null

# 2. 5% far outside the premade chunks.
"${PSQL[@]}" -c "DROP TABLE IF EXISTS far" -c "CREATE TABLE far (ts timestamptz NOT NULL, series_id int, value float8);
    SELECT tidewatch.create_hypertable('far', 'ts', interval '1 day');" >/dev/null
FAR_COPY=$(ms -c "COPY far FROM '$FAR' WITH (FORMAT csv)")
IN_DEFAULT=$("${PSQL[@]}" -At -c "SELECT count(*) FROM ONLY far_default")
MAINT=$(ms -c "SELECT * FROM tidewatch.run_maintenance('far', max_chunks => 100000)")
CHECK=$("${PSQL[@]}" -At -c "SELECT count(*) || ' rows, ' || (SELECT count(*) FROM ONLY far_default) || ' left in default, ' || (SELECT count(*) FROM tidewatch.show_chunks('far')) || ' chunks' FROM far")

# 3. time_bucket vs date_bin vs a plain scan, over the rows of ht (warm cache).
for q in "max(ts)" "max(tidewatch.time_bucket('5 minutes', ts))" "max(date_bin('5 minutes', ts, '2000-01-03'))"; do ms -c "SELECT $q FROM ht" >/dev/null; done
tb=() db=() scan=()
for r in $(seq 1 $((REPEATS + 2))); do
    scan+=("$(ms -c "SELECT max(ts) FROM ht")")
    tb+=("$(ms -c "SELECT max(tidewatch.time_bucket('5 minutes', ts)) FROM ht")")
    db+=("$(ms -c "SELECT max(date_bin('5 minutes', ts, '2000-01-03')) FROM ht")")
done
TB=$(printf '%s\n' "${tb[@]}" | median)
DB=$(printf '%s\n' "${db[@]}" | median)
SCAN=$(printf '%s\n' "${scan[@]}" | median)
# The same with a GROUP BY, as dashboards use it.
tbg=() dbg=()
for r in $(seq 1 "$REPEATS"); do
    tbg+=("$(ms -c "SELECT count(*) FROM (SELECT tidewatch.time_bucket('5 minutes', ts) b, avg(value) FROM ht GROUP BY 1) s")")
    dbg+=("$(ms -c "SELECT count(*) FROM (SELECT date_bin('5 minutes', ts, '2000-01-03') b, avg(value) FROM ht GROUP BY 1) s")")
done
TBG=$(printf '%s\n' "${tbg[@]}" | median)
DBG=$(printf '%s\n' "${dbg[@]}" | median)

cat <<MD
Machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB, PostgreSQL $(${PSQL[@]} -At -c 'SHOW server_version'), tidewatch release build.
Rows: $ROWS; medians of $REPEATS runs (time_bucket: $((REPEATS + 2)) runs).

| workload | ours | baseline | ratio |
|---|---|---|---|
| COPY into hypertable vs native partitioned table, same premade partitions (throughput ratio, ≥ 0.9 wanted) | ${HT} ms | ${NATIVE} ms | $(ratio "$NATIVE" "$HT") |
| COPY with 5% of rows years outside the premade chunks | ${FAR_COPY} ms ($IN_DEFAULT rows to the default partition) | ${NATIVE} ms (native, in-range COPY) | $(ratio "$FAR_COPY" "$NATIVE") |
| run_maintenance moving those rows into chunks | ${MAINT} ms | — | $CHECK |
| \`max(time_bucket('5 minutes', ts))\` vs \`max(date_bin(...))\` (≤ 1.2 wanted) | ${TB} ms | ${DB} ms | $(ratio "$TB" "$DB") |
| same, against the limit \`max(ts)\` | ${TB} ms | ${SCAN} ms | $(ratio "$TB" "$SCAN") |
| GROUP BY 5-minute bucket, avg(value): time_bucket vs date_bin | ${TBG} ms | ${DBG} ms | $(ratio "$TBG" "$DBG") |
MD
rm -f "$DATA" "$FAR"
