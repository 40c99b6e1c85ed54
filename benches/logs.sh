#!/usr/bin/env bash
# Log template mining speed, side by side in one run (release build, one thread each):
#   ours:  crates/tidewatch-logs/examples/bench_miner.rs — masking only, masking + miner, and the
#          default classifier over the Content of the 8 Loghub-2k systems repeated to N lines;
#   peer:  Drain3 0.9.11 (../shared/peers/drain3_peer.py --bench N, generic masks), which times
#          add_log_message over the same 16,000 lines repeated (Content of _structured.csv).
# Usage: bash benches/logs.sh [LINES] [REPEATS]   (defaults: 1000000 lines, 3 repeats; medians)
# MEMORY_LINES (default 1000000) distinct lines go to examples/miner_memory for the peak RSS;
# that worst case (every line a new cluster) takes about 10 minutes at 10^6 lines.
# Skips, saying so, when ../shared (data or peer) is absent. Installs drain3 with pip if missing.
source "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"
N=${1:-1000000}
REPEATS=${2:-3}
SHARED=${TIDEWATCH_SHARED:-$REPO/../shared}
DATA=${LOGHUB_DATA:-$SHARED/data/loghub-2k}
PEER=$SHARED/peers/drain3_peer.py

if [ ! -d "$DATA" ]; then
    echo "SKIP benches/logs.sh: Loghub-2k data not found at $DATA (set LOGHUB_DATA)"
    exit 0
fi

cargo build -q --release -p tidewatch-logs --example bench_miner --example miner_memory
BIN=$CARGO_TARGET_DIR/release/examples/bench_miner

mask=() miner=() minerid=() cls=() peer=()
PEER_OK=1
if [ -f "$PEER" ]; then
    if ! python3 -c 'import drain3' 2>/dev/null; then
        echo "installing drain3==0.9.11 for the peer (benchmark only)" >&2
        python3 -m pip install -q 'drain3==0.9.11' >/dev/null 2>&1 || PEER_OK=0
    fi
else
    PEER_OK=0
fi
for _ in $(seq 1 "$REPEATS"); do
    OUT=$("$BIN" "$N" "$DATA")
    # bench_miner prints "STREAM STEP lines=… wall_s=… cpu_s=… lines_per_cpu_sec=… lines_per_wall_sec=…";
    # the `repeat` stream is the peer's (the 16,000 lines repeated), wall-clock rates as the peer's.
    rate_of() { awk -v step="$1" '$1 == "repeat" && $2 == step { for (i = 3; i <= NF; i++) if ($i ~ /^lines_per_wall_sec=/) { sub("lines_per_wall_sec=", "", $i); print $i } }' <<<"$OUT"; }
    mask+=("$(rate_of mask)")
    miner+=("$(rate_of miner)")
    minerid+=("$(rate_of miner_id)")
    cls+=("$(rate_of classify)")
    if [ "$PEER_OK" = 1 ]; then
        P=$(python3 "$PEER" --data "$DATA" --bench "$N" --settings generic)
        peer+=("$(sed -n 's/.*lines_per_sec=\([0-9,]*\).*/\1/p' <<<"$P" | tr -d ,)")
    fi
done
MASK=$(printf '%s\n' "${mask[@]}" | median)
MINER=$(printf '%s\n' "${miner[@]}" | median)
MINERID=$(printf '%s\n' "${minerid[@]}" | median)
CLS=$(printf '%s\n' "${cls[@]}" | median)
MEMORY_LINES=${MEMORY_LINES:-1000000}
MEM=$("$CARGO_TARGET_DIR/release/examples/miner_memory" "$MEMORY_LINES")

echo "Machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB; $N lines, medians of $REPEATS runs, one thread."
echo
echo "| workload | lines/s |"
echo "|---|---|"
echo "| ours: masking only | $MASK |"
echo "| ours: masking + miner (\`Miner::add\`: template and parameters) | $MINER |"
echo "| ours: masking + miner (\`Miner::add_id\`: cluster id only, as mine_logs and monitors use) | $MINERID |"
echo "| ours: default classifier | $CLS |"
if [ "$PEER_OK" = 1 ]; then
    PEERM=$(printf '%s\n' "${peer[@]}" | median)
    echo "| Drain3 0.9.11 (generic masks), add_log_message | $PEERM |"
    echo
    echo "ratio ours (masking + miner) / Drain3: $(awk -v a="$MINER" -v b="$PEERM" 'BEGIN { printf "%.1f", a / b }')x"
else
    echo
    echo "(peer skipped: $PEER not found or drain3 not installable)"
fi
echo
echo "Bounded memory, $MEMORY_LINES distinct lines, default cluster cap: $MEM"
