"""NAB through SQL: the default detector must keep the issue's bar (standard >= 62).

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
# on the 31-file set; the bar is 62. 0.2.0 traded NAB's in-sample score for MSL and SMD, which
# were not used to choose its settings (benches/RESULTS.md): a change that drops below the bar
# must show it helps held out.
FLOOR = 62.0


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
