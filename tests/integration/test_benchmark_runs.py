"""The forwarding benchmark still runs: a --quick smoke run, no timing checks.

Only that it completes, measures both switches in every mode and prints
non-zero rates is checked; how fast either switch is is not a test result.
"""

import os
import re
import subprocess
import sys

from support import C_TOOLS, REPO, require

SCRIPT = os.path.join(REPO, "benchmarks", "switch_forwarding.py")
ROW = re.compile(r"^(switch|hub)\s+(\d+)\s+(C|ours)\s+(\d+(?:\.\d+)?k?) \[")


def test_quick_benchmark_prints_both_switches():
    require(C_TOOLS["vde_switch"])
    p = subprocess.run(
        [sys.executable, SCRIPT, "--quick", "--duration", "0.2", "--sizes", "64,1500"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "nproc=" in p.stdout and "load average" in p.stdout
    rows = {}
    for line in p.stdout.splitlines():
        m = ROW.match(line)
        if m:
            rate = m.group(4)
            value = float(rate[:-1]) * 1000 if rate.endswith("k") else float(rate)
            rows[(m.group(1), int(m.group(2)), m.group(3))] = value
    expected = {(mode, size, kind) for mode in ("switch", "hub")
                for size in (64, 1500) for kind in ("C", "ours")}
    assert set(rows) == expected, p.stdout
    assert all(v > 0 for v in rows.values()), p.stdout
    assert "ours/C" in p.stdout


def test_benchmark_fails_when_a_switch_cannot_start():
    p = subprocess.run(
        [sys.executable, SCRIPT, "--quick", "--sizes", "64", "--modes", "switch",
         "--c-switch", "/bin/false"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "failed to start" in p.stderr, p.stdout + p.stderr


SCALING = os.path.join(REPO, "benchmarks", "switch_scaling.py")


def test_quick_scaling_benchmark_prints_every_table():
    require(C_TOOLS["vde_switch"])
    p = subprocess.run([sys.executable, SCALING, "--quick"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    for title in ("### joins", "### memory", "### latency", "### independent", "### aggregate"):
        assert title in p.stdout, p.stdout
    rows = [line.split("|") for line in p.stdout.splitlines() if line.startswith("| ")]
    joins = [r for r in rows if r[1].strip() in ("20", "50")]
    assert len(joins) == 2 and all(float(r[2]) > 0 and float(r[3]) > 0 for r in joins), p.stdout
    # the lossless switch loses nothing, whatever the machine's speed
    lossless = [r for r in rows if r[2].strip() == "ours-lossless" and len(r) == 8]
    assert len(lossless) == 3 and all(float(r[6]) == 0 for r in lossless), p.stdout
