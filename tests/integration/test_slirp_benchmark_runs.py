"""The slirp benchmark still runs: a --quick smoke run, no timing checks.

Only that it completes, measures the four routers (ours and the C ones)
and prints non-zero figures and both ratios is checked; how fast any of
them is is not a test result.
"""

import os
import re
import subprocess
import sys

from support import REPO, require

SCRIPT = os.path.join(REPO, "benchmarks", "slirp_throughput.py")
ROW = re.compile(r"^(ours-plug|C-plug|ours-slirpvde|C-slirpvde)\s+([\d.]+) \[.*\]\s+([\d.]+) \[")


def test_quick_benchmark_measures_four_routers():
    require("/usr/bin/slirpvde")
    require("/usr/bin/vde_plug")
    p = subprocess.run([sys.executable, SCRIPT, "--quick"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = {m.group(1): (float(m.group(2)), float(m.group(3)))
            for m in map(ROW.match, p.stdout.splitlines()) if m}
    assert set(rows) == {"ours-plug", "C-plug", "ours-slirpvde", "C-slirpvde"}, p.stdout
    assert all(rate > 0 and cpu > 0 for rate, cpu in rows.values()), p.stdout
    assert "ours/C vde_plug slirp://" in p.stdout and "ours/C slirpvde" in p.stdout
    assert "load average" in p.stdout
