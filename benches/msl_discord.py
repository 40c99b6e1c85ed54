"""Probe (not a product feature): would a window nearest-neighbour "discord" distance (Yeh et al.
2016, matrix profile) find the MSL events `auto` misses? For each point of a channel, the distance
of the window of the last w values to the nearest earlier window that does not overlap it (the
training split included; causal); a test point is flagged when its distance is above k times the
largest such distance inside the training split, OR-ed with `auto`'s flags. Scored by events as
the eval harness does (a labelled range is found when a flagged run overlaps it; a flagged run
overlapping none is a false positive) and by the share of normal points flagged.

  TIDEWATCH_SHARED=../shared cargo run --release -p tidewatch-anomaly --example eval -- dump msl FILE
  python3 benches/msl_discord.py FILE [--flag all|onset|first-w]

`all` flags every point above the bound, `onset` only the first of each run above it, `first-w`
the first w points of each run. Brute force with numpy, O(n^2 w) per channel (about 10 s).
"""
import argparse
import csv
from collections import defaultdict

import numpy as np

from msl_misses import events


def discord_profile(x, w):
    """d[t]: distance of x[t-w+1..t] to the nearest window ending at or before t - w."""
    win = np.lib.stride_tricks.sliding_window_view(x, w)
    sq = (win * win).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * win @ win.T, 0)
    d = np.full(len(x), np.nan)
    for j in range(w, len(win)):
        d[j + w - 1] = np.sqrt(d2[j, : j - w + 1].min())
    return d


def flags_of(above, mode, w):
    if mode == "all":
        return above
    out, run = np.zeros_like(above), 0
    for i, v in enumerate(above):
        run = run + 1 if v else 0
        out[i] = v and run <= (1 if mode == "onset" else w)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump")
    ap.add_argument("--flag", choices=["all", "onset", "first-w"], default="all")
    ap.add_argument("--w", default="16,32,64")
    ap.add_argument("--k", default="1,1.25,1.5,2,3")
    a = ap.parse_args()
    rows = defaultdict(list)
    with open(a.dump, newline="") as f:
        for r in csv.DictReader(f):
            rows[r["entity"]].append(r)
    for w in [int(v) for v in a.w.split(",")]:
        chans = []
        for rs in rows.values():
            x = np.array([float(r["value"]) for r in rs])
            ntrain = sum(r["test"] == "0" for r in rs)
            d = discord_profile(x, w)
            cal = d[2 * w:ntrain]
            cal = cal[np.isfinite(cal)]
            test = [r for r in rs if r["test"] == "1"]
            chans.append((np.nan_to_num(d[ntrain:], nan=0.0), cal.max() if len(cal) else np.inf,
                          [int(r["label"]) for r in test], np.array([r["flag"] == "1" for r in test])))
        for k in [float(v) for v in a.k.split(",")]:
            for with_auto in (False, True):
                tp = fp = fn = fa = normal = 0
                for d, ref, lab, auto in chans:
                    f = flags_of(d > k * ref, a.flag, w)
                    if with_auto:
                        f = f | auto
                    ev, runs = events(lab), events([int(v) for v in f])
                    hit = lambda p, q: p[0] <= q[1] and p[1] >= q[0]
                    found = sum(any(hit(r, e) for r in runs) for e in ev)
                    tp, fn = tp + found, fn + len(ev) - found
                    fp += sum(not any(hit(r, e) for e in ev) for r in runs)
                    inside = np.zeros(len(lab), bool)
                    for s, e in ev:
                        inside[s:e + 1] = True
                    fa, normal = fa + int((f & ~inside).sum()), normal + int((~inside).sum())
                p, rc = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
                f05 = 1.25 * p * rc / (0.25 * p + rc) if p + rc else 0.0
                print(f"w={w} k={k} {'auto OR discord' if with_auto else 'discord alone  '} tp={tp} fp={fp} "
                      f"fn={fn} precision={p:.3f} recall={rc:.3f} f0.5={f05:.3f} false_alarm_points={fa / normal:.4f}")


if __name__ == "__main__":
    main()
