"""What `auto` misses on MSL: every labelled event of the test splits, whether a flagged point
overlaps it, its highest score, and the share of its points outside the channel's training range
widened by 5% of that range on each side (the out-of-limits check the issue compares with).

Reads the point-by-point dump of the in-process harness (no pandas):
  TIDEWATCH_SHARED=../shared cargo run --release -p tidewatch-anomaly --example eval -- dump msl FILE
  python3 benches/msl_misses.py FILE
"""
import csv
import sys
from collections import defaultdict


def events(labels):
    """(first, last) index of each run of 1s (ends inclusive)."""
    out, start = [], None
    for i, lab in enumerate(labels + [0]):
        if lab and start is None:
            start = i
        elif not lab and start is not None:
            out.append((start, i - 1))
            start = None
    return out


def main(path):
    rows = defaultdict(list)
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows[r["entity"]].append(r)
    inside = partly = found = total = 0
    for entity, rs in sorted(rows.items()):
        train = [float(r["value"]) for r in rs if r["test"] == "0"]
        test = [r for r in rs if r["test"] == "1"]
        lo, hi = min(train), max(train)
        pad = 0.05 * (hi - lo if hi > lo else 1.0)
        for a, b in events([int(r["label"]) for r in test]):
            seg = test[a : b + 1]
            hit = any(r["flag"] == "1" for r in seg)
            out = sum(1 for r in seg if not lo - pad <= float(r["value"]) <= hi + pad) / len(seg)
            total += 1
            found += hit
            if not hit:
                inside += out == 0
                partly += out > 0
            print(f"{entity:6s} {a:5d}-{b:5d} found={int(hit)} "
                  f"max_score={max(float(r['score']) for r in seg):.2f} outside_training={out:.3f}")
    print(f"events {total}, found {found}, missed {total - found}: "
          f"{inside} never outside the training range, {partly} partly outside")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
