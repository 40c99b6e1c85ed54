#!/usr/bin/env python3
"""Drain3, the peer, scored like our miner: in sample and leave one system out (LOSO).

Run by benches/logs_accuracy.sh. Reads the peer (../shared/peers/drain3_peer.py) and the scorer
(../shared/tools/loghub_eval.py) by path and uses their functions: the peer's per-dataset
settings, make_miner and two-pass labelling (every line added, then labelled with the final
template of its cluster), the scorer's score().

* in sample: each system with its authors' settings for that system (logpai's benchmark, tuned
  on the system itself, so in sample by construction);
* LOSO: each system with the candidate settings that have the best average GA on the other
  systems. Candidates: the published settings of all 16 Loghub systems except the held-out
  one's own, the peer's single "generic" setting and Drain3's defaults ("none");
* stress: the "generic" setting on the stress variants written by examples/loghub.rs.

Usage: drain3_loso.py SHARED_DIR DATA_DIR STRESS_DIR   (prints a table; needs drain3==0.9.11)
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def main() -> int:
    shared, data, stress_dir = (Path(a) for a in sys.argv[1:4])
    peer = load("drain3_peer", shared / "peers" / "drain3_peer.py")
    ev = load("loghub_eval", shared / "tools" / "loghub_eval.py")
    systems = [s for s in peer.SYSTEMS if (data / s).is_dir()]

    def ga_pa(data_dir: Path, system: str, settings) -> tuple[float, float]:
        masks, depth, st = settings
        miner = peer.make_miner(masks, depth, st)
        path = data_dir / system / f"{system}_2k.log_structured_corrected.csv"
        rows = ev.read_rows(path)
        ids = [miner.add_log_message(r["Content"])["cluster_id"] for r in rows]
        final = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
        truth = ev.load_truth(path, "EventTemplate")
        groups = {int(r["LineId"]): str(c) for r, c in zip(rows, ids)}
        tpls = {int(r["LineId"]): final[c] for r, c in zip(rows, ids)}
        res = ev.score(truth, groups, tpls)
        return res["GA"], res["PA"]

    cands = {f"logpai:{s}": peer.LOGPAI[s] for s in peer.SYSTEMS}
    cands["generic"] = peer.GENERIC
    cands["none"] = peer.NONE
    table = {name: {s: ga_pa(data, s, st) for s in systems} for name, st in cands.items()}

    print("| system | in sample (own settings): GA | PA | LOSO: GA | PA | settings chosen on the other systems |")
    print("|---|---|---|---|---|---|")
    ins, held = [], []
    for s in systems:
        own = table[f"logpai:{s}"][s]
        pool = [n for n in cands if n != f"logpai:{s}"]
        best = max(pool, key=lambda n: (sum(table[n][o][0] for o in systems if o != s), -pool.index(n)))
        ga, pa = table[best][s]
        ins.append(own)
        held.append((ga, pa))
        print(f"| {s} | {own[0]:.4f} | {own[1]:.4f} | {ga:.4f} | {pa:.4f} | {best} |")
    mean = lambda xs: sum(xs) / len(xs)
    print(f"| **average** | **{mean([x[0] for x in ins]):.4f}** | {mean([x[1] for x in ins]):.4f} "
          f"| **{mean([x[0] for x in held]):.4f}** (min {min(x[0] for x in held):.4f}) "
          f"| {mean([x[1] for x in held]):.4f} | |")

    if stress_dir.is_dir():
        print()
        print("Drain3, generic settings, on the stress variants (GA):")
        for v in sorted(p.name for p in stress_dir.iterdir() if (p / "data").is_dir()):
            vals = [ga_pa(stress_dir / v / "data", s, peer.GENERIC)[0] for s in systems
                    if (stress_dir / v / "data" / s).is_dir()]
            print(f"  {v}: average {mean(vals):.4f} (min {min(vals):.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
