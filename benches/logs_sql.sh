#!/usr/bin/env bash
# Log features through SQL, side by side in one run (release build, one cluster):
#   1. mine_logs over a ROWS-row table (rows/s), against the limit: a plain scan of the same
#      column (`SELECT sum(length(message))`).
#   2. classify_log over the same rows (rows/s), against the same limit.
#   3. COPY of ROWS log rows into a monitored hypertable (log_monitor, template_id and category
#      filled in) against the same COPY into an unmonitored one (throughput ratio), and into one
#      with a no-op BEFORE ROW trigger (the floor of a monitor that fills the row's columns).
#   4. The same COPY into a hypertable with an async log monitor (no trigger; the decoder
#      classifies the committed lines), with its lag: from the commit until every line is counted.
# The lines are the Content column of the 8 Loghub-2k systems (../shared/data/loghub-2k) repeated
# to ROWS, with a line number appended to one line in ten so that the miner also sees variants;
# without ../shared, the ETL log of the sample generator (crates/tidewatch-sample) is used.
# Usage: bash benches/logs_sql.sh [ROWS] [REPEATS]   (defaults 1000000 3; medians).
source "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"
ROWS=${1:-1000000}
REPEATS=${2:-3}
DIR=${TIDEWATCH_BENCH_DIR:-/var/tmp/tidewatch-bench}
PORT=${TIDEWATCH_BENCH_PORT:-25444}
DATA=${LOGHUB_DATA:-$REPO/../shared/data/loghub-2k}

ensure_deps
install_extension --release
cluster_start "$DIR" "$PORT" "postgres"
trap 'cluster_stop "$DIR"' EXIT
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres)

as_root install -d -o postgres -g postgres "$DIR"
LINES="$DIR/lines.txt"
if [ -d "$DATA" ]; then
    SOURCE="Loghub-2k Content of 8 systems"
    python3 - "$DATA" "$ROWS" > "$LINES" <<'PY'
import csv, sys
data, rows = sys.argv[1], int(sys.argv[2])
lines = []
for s in ["HDFS", "Hadoop", "Spark", "Zookeeper", "BGL", "HPC", "Apache", "OpenSSH"]:
    with open(f"{data}/{s}/{s}_2k.log_structured.csv", newline="") as f:
        lines += [r["Content"] for r in csv.DictReader(f)]
out = sys.stdout
for i in range(rows):
    line = lines[i % len(lines)]
    if i % 10 == 0:
        line = f"{line} {i}"
    out.write(line.replace("\\", "\\\\").replace("\t", " ").replace("\n", " ").replace("\r", " ") + "\n")
PY
else
    SOURCE="sample generator ETL log (../shared absent)"
    cargo run -q --release -p tidewatch-sample -- etl-logs --days 30 | python3 -c '
import csv, sys
rows = int(sys.argv[1])
msgs = [r["message"] for r in csv.DictReader(sys.stdin)]
for i in range(rows):
    print(msgs[i % len(msgs)].replace("\\", "\\\\").replace("\t", " ").replace("\n", " "))' "$ROWS" > "$LINES"
fi
chown postgres "$LINES" 2>/dev/null || true

fresh_extension "${PSQL[@]}"
"${PSQL[@]}" <<SQL
DROP TABLE IF EXISTS loglines, logs_src, live_plain, live_mon, live_floor, live_async;
CREATE TABLE loglines (message text);
COPY loglines FROM '$LINES';
CREATE TABLE logs_src AS SELECT timestamptz '2026-01-01' + (row_number() OVER ()) * interval '10 milliseconds' AS ts, message FROM loglines;
VACUUM ANALYZE loglines; VACUUM ANALYZE logs_src;
COPY logs_src TO '$DIR/logs.copy';
CREATE TABLE live_plain (ts timestamptz NOT NULL, message text, template_id bigint, category text);
SELECT tidewatch.create_hypertable('live_plain', 'ts', interval '1 day');
CREATE TABLE live_mon (ts timestamptz NOT NULL, message text, template_id bigint, category text);
SELECT tidewatch.create_hypertable('live_mon', 'ts', interval '1 day');
SELECT tidewatch.log_monitor('bench', 'live_mon', 'message', 'ts');
-- The floor of any monitor that fills columns of the row: a BEFORE ROW trigger that does nothing
-- (COPY then inserts row by row instead of in batches).
CREATE TABLE live_floor (ts timestamptz NOT NULL, message text, template_id bigint, category text);
SELECT tidewatch.create_hypertable('live_floor', 'ts', interval '1 day');
CREATE OR REPLACE FUNCTION bench_noop() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN RETURN NEW; END\$\$;
CREATE TRIGGER noop BEFORE INSERT ON live_floor FOR EACH ROW EXECUTE FUNCTION bench_noop();
CREATE TABLE live_async (ts timestamptz NOT NULL, message text);
SELECT tidewatch.create_hypertable('live_async', 'ts', interval '1 day');
SQL
# In its own transaction (it creates the replication slot of async monitors).
"${PSQL[@]}" -c "SELECT tidewatch.log_monitor('bench_async', 'live_async', 'message', 'ts', mode => 'async')" >/dev/null
WAIT="SELECT round(tidewatch.monitor_wait(interval '10 minutes') * 1000)"

scan=() mine=() cls=() plain=() mon=() floor=() async=() lag=()
for r in $(seq 1 "$REPEATS"); do
    scan+=("$(psql_ms -c "SELECT sum(length(message)) FROM loglines")")
    "${PSQL[@]}" -c "SELECT tidewatch.drop_log_miner('bench_mine', if_exists => true)" >/dev/null
    mine+=("$(psql_ms -c "SELECT count(*) FROM tidewatch.mine_logs('loglines', 'message', miner => 'bench_mine')")")
    cls+=("$(psql_ms -c "SELECT count(*) FILTER (WHERE c.category <> 'unknown') FROM loglines, LATERAL tidewatch.classify_log(message) c")")
    "${PSQL[@]}" -c "TRUNCATE live_plain, live_mon, live_floor, live_async" >/dev/null
    # Each COPY starts with the decoder idle (it reads every table's WAL, monitored or not).
    "${PSQL[@]}" -c "$WAIT" >/dev/null
    plain+=("$(psql_ms -c "COPY live_plain (ts, message) FROM '$DIR/logs.copy'")")
    "${PSQL[@]}" -c "$WAIT" >/dev/null
    mon+=("$(psql_ms -c "COPY live_mon (ts, message) FROM '$DIR/logs.copy'")")
    "${PSQL[@]}" -c "$WAIT" >/dev/null
    floor+=("$(psql_ms -c "COPY live_floor (ts, message) FROM '$DIR/logs.copy'")")
    "${PSQL[@]}" -c "$WAIT" >/dev/null
    async+=("$(psql_ms -c "COPY live_async (ts, message) FROM '$DIR/logs.copy'")")
    lag+=("$("${PSQL[@]}" -At -c "$WAIT")")
done
ASYNC=$(printf '%s\n' "${async[@]}" | median)
LAG=$(printf '%s\n' "${lag[@]}" | median)
COUNTED=$("${PSQL[@]}" -At -c "SELECT sum(n) FROM tidewatch.log_counts WHERE monitor = 'bench_async'")
SCAN=$(printf '%s\n' "${scan[@]}" | median)
MINE=$(printf '%s\n' "${mine[@]}" | median)
CLS=$(printf '%s\n' "${cls[@]}" | median)
PLAIN=$(printf '%s\n' "${plain[@]}" | median)
MON=$(printf '%s\n' "${mon[@]}" | median)
FLOOR=$(printf '%s\n' "${floor[@]}" | median)
TEMPLATES=$("${PSQL[@]}" -At -c "SELECT count(*) FROM tidewatch.log_templates WHERE miner = 'bench_mine'")
FILLED=$("${PSQL[@]}" -At -c "SELECT count(template_id) || ' of ' || count(*) FROM live_mon")
rate() { awk -v n="$ROWS" -v ms="$1" 'BEGIN { printf "%.0f", n / (ms / 1000) }'; }

cat <<MD
Machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB; $ROWS rows ($SOURCE), medians of $REPEATS runs.

| workload | time | rows/s | baseline | ratio |
|---|---|---|---|---|
| \`mine_logs\` over the table (new miner each run; $TEMPLATES templates) | ${MINE} ms | $(rate "$MINE") | scan \`sum(length(message))\` ${SCAN} ms | $(ratio "$MINE" "$SCAN") |
| \`classify_log\` (default rules) over the table | ${CLS} ms | $(rate "$CLS") | same scan | $(ratio "$CLS" "$SCAN") |
| COPY into a monitored hypertable (template_id and category filled: $FILLED) vs unmonitored | ${MON} ms | $(rate "$MON") | ${PLAIN} ms ($(rate "$PLAIN") rows/s) | throughput $(ratio "$PLAIN" "$MON") |
| the floor: COPY into a hypertable whose only trigger is a no-op PL/pgSQL BEFORE ROW trigger | ${FLOOR} ms | $(rate "$FLOOR") | ${PLAIN} ms | throughput $(ratio "$PLAIN" "$FLOOR") |
| COPY into a hypertable with an **async** log monitor (lines counted over all runs: $COUNTED) vs unmonitored | ${ASYNC} ms | $(rate "$ASYNC") | ${PLAIN} ms | throughput $(ratio "$PLAIN" "$ASYNC") |
| async lag: from that COPY's commit until all its lines are classified and counted | ${LAG} ms | | | |
MD
