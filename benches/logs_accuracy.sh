#!/usr/bin/env bash
# Template-mining accuracy, scored by ../shared/tools/loghub_eval.py (corrected labels):
#   1. in sample: the default configuration on each of the 8 Loghub-2k systems, labelled as
#      tidewatch.log_parse labels them (line by line, the template id returned); also the
#      logpai benchmark's two-pass labelling (`--mode batch`) for comparison with older numbers;
#   2. leave one system out (LOSO): each system labelled with the candidate configuration that
#      scores best on the other 7 (crates/tidewatch-logs/examples/loghub.rs lists the candidates
#      and the two selection objectives); the scorer's GA must equal the example's own;
#   3. stress variants of the 8 systems (variables re-drawn from other shapes, variables that are
#      words, a variable first token), default configuration;
#   4. the peer, Drain3 0.9.11 (../shared/peers/drain3_peer.py): its authors' per-dataset settings
#      (in sample by construction), a LOSO over published settings, and its generic settings on the
#      stress variants (benches/drain3_loso.py).
# Usage: bash benches/logs_accuracy.sh [OUT_DIR]   (default: a temporary directory)
# Skips, saying so, when ../shared is absent. Installs drain3 with pip if missing (peer only).
source "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"
SHARED=${TIDEWATCH_SHARED:-$REPO/../shared}
DATA=${LOGHUB_DATA:-$SHARED/data/loghub-2k}
EVAL=$SHARED/tools/loghub_eval.py
OUT=${1:-$(mktemp -d)}

if [ ! -d "$DATA" ] || [ ! -f "$EVAL" ]; then
    echo "SKIP benches/logs_accuracy.sh: Loghub-2k data or scorer not found under $SHARED"
    exit 0
fi

cargo build -q --release -p tidewatch-logs --example loghub
BIN=$CARGO_TARGET_DIR/release/examples/loghub
mkdir -p "$OUT"
"$BIN" "$DATA" "$OUT/sql" | tee "$OUT/sql.txt"
"$BIN" --mode batch --no-loso --no-stress "$DATA" "$OUT/batch" >"$OUT/batch.txt"

score() { python3 "$EVAL" --labels corrected "$@"; }
echo
echo "== scorer: in sample, default configuration, labelled as log_parse labels"
score --data "$DATA" --pred "$OUT/sql/insample"
echo
echo "== scorer: in sample, two-pass (batch) labelling"
score --data "$DATA" --pred "$OUT/batch/insample"
echo
echo "== scorer: leave one system out (robust objective)"
score --data "$DATA" --pred "$OUT/sql/loso" --csv "$OUT/loso_scored.csv" >/dev/null
score --data "$DATA" --pred "$OUT/sql/loso"
# The scorer must agree with the example's own GA on every held-out system.
python3 - "$OUT/loso_scored.csv" "$OUT/sql/loso.tsv" <<'PY'
import csv, sys
scored = {r["System"]: float(r["GA"]) for r in csv.DictReader(open(sys.argv[1])) if r["System"] != "Average"}
own = {r["system"]: float(r["heldout_ga"]) for r in csv.DictReader(open(sys.argv[2]), delimiter="\t")
       if r["objective"] == "robust"}
bad = {s: (scored[s], own.get(s)) for s in scored if own.get(s) is None or abs(scored[s] - own[s]) > 1e-4}
if bad:
    sys.exit(f"scorer and example disagree on held-out GA: {bad}")
print(f"(scorer and example agree on all {len(scored)} held-out GA values)")
PY
for v in "$OUT"/sql/stress/*/; do
    v=${v%/}
    echo
    echo "== scorer: stress variant $(basename "$v"), default configuration"
    score --data "$v/data" --pred "$v/pred"
done

if [ -f "$SHARED/peers/drain3_peer.py" ]; then
    if ! python3 -c 'import drain3' 2>/dev/null; then
        echo "installing drain3==0.9.11 for the peer (benchmark only)" >&2
        python3 -m pip install -q 'drain3==0.9.11' >/dev/null 2>&1 || true
    fi
    if python3 -c 'import drain3' 2>/dev/null; then
        echo
        echo "== peer: Drain3 0.9.11"
        python3 "$REPO/benches/drain3_loso.py" "$SHARED" "$DATA" "$OUT/sql/stress"
    else
        echo "(peer skipped: drain3 not installable)"
    fi
fi
echo
echo "outputs in $OUT"
