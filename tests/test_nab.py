"""NAB through SQL: the default detector must not fall below its floor (standard >= 61.5, see FLOOR).

Runs benches/nab.py (causal window aggregate over a hypertable, scored by ../shared/tools/nab_score.py).
Skips, saying so, when ../shared is absent.
"""
import os
import re
import subprocess
import sys
import unittest

from pgtest import DSN, require_cluster

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared")
# Measured 64.45 with 0.1.0's auto and 62.01 with 0.2.0's (deterministic: same data, same code)
# on the 31-file set. 0.2.0 traded NAB's in-sample score for MSL and SMD, which were not used to
# choose its settings (benches/RESULTS.md): a change that lowers it must show it helps held out.
# The range feature's fix (2026-12-06) did: 61.70 here (two artificial spike-train files, one
# and two more false positives; the three real categories unchanged) for MSL F0.5 0.565 -> 0.608
# and SMD devices 0.538 -> 0.547, chosen in 19 of 19 leave-one-group-out folds. The floor guards
# against anything further: issue 16's bar of 62 is on NAB's 27 other (kept-aside) files.
FLOOR = 61.5


@require_cluster
class NabTest(unittest.TestCase):
    def test_default_detector_on_nab(self):
        if not os.path.isdir(os.path.join(SHARED, "data", "nab")):
            self.skipTest(f"NAB data not found under {SHARED}")
        p = subprocess.run([sys.executable, os.path.join(HERE, "..", "benches", "nab.py"), "--dsn", DSN,
                            "--db", "tidewatch_nab_test"], capture_output=True, text=True, timeout=900)
        if p.returncode == 77:
            self.skipTest(p.stdout.strip())
        self.assertEqual(p.returncode, 0, p.stderr)
        m = re.search(r"nab standard=(-?[0-9.]+)", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        print(f"\nNAB standard through SQL: {m.group(1)}", file=sys.stderr)
        self.assertGreaterEqual(float(m.group(1)), FLOOR, p.stdout)


if __name__ == "__main__":
    unittest.main()
