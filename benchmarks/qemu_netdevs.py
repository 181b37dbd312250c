#!/usr/bin/env python3
"""TCP throughput of QEMU guests on our switch: ``-netdev stream`` against
``-netdev vde``, with Debian's C vde_switch as the reference for vde.

One run boots five QEMU guests (TCG, Debian's kernel, a busybox
initramfs; see tests/guests.py):

* on our switch (``--qemu-stream``): a receiver (``-netdev vde``), a
  sender with ``-netdev vde`` and a sender with ``-netdev stream``;
* on the C switch: a receiver and a sender, both ``-netdev vde``.

Each sender moves ``--size`` KiB to its switch's receiver with busybox
nc, ``--runs`` times, the three senders taking turns (so machine noise
spreads over all of them).  Printed: the median KiB/s with min..max per
sender, and the ratios stream/vde (ours) and ours/C (vde).  TCG guests
are CPU-bound: the switch is a small part of what is measured, so on a
shared machine the spread says more than a single figure.

Every process is killed by PID on exit and the temporary directory removed.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

from guests import QemuGuest, boot_all, tcp_transfer  # noqa: E402
from support import C_TOOLS, OURS, Processes, Switch  # noqa: E402

SENDERS = ("ours-vde", "ours-stream", "C-vde")


def machine_header() -> list[str]:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return ["machine: %s, nproc=%d, CPU: %s" % (platform.node(), os.cpu_count() or 0, cpu),
            "kernel %s, python %s" % (platform.release(), platform.python_version()),
            "load average before start: %s" % " ".join("%.2f" % x for x in os.getloadavg())]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size", type=int, default=8192, help="KiB per transfer")
    args = ap.parse_args(argv)
    for line in machine_header():
        print(line)
    procs = Processes()
    work = tempfile.mkdtemp(prefix="vqb", dir="/tmp")
    try:
        ours = Switch(procs, OURS["vde_switch"], os.path.join(work, "sw"),
                      "--qemu-stream", os.path.join(work, "st"))
        c = Switch(procs, C_TOOLS["vde_switch"], os.path.join(work, "csw"))
        spec = {   # name: (switch, netdev, address, mac)
            "rx": (ours, "vde,sock=%s" % ours.dir, "10.79.1.1"),
            "ours-vde": (ours, "vde,sock=%s" % ours.dir, "10.79.1.2"),
            "ours-stream": (ours, "stream,server=off,addr.type=unix,addr.path=%s"
                            % os.path.join(work, "st"), "10.79.1.3"),
            "crx": (c, "vde,sock=%s" % c.dir, "10.79.1.1"),
            "C-vde": (c, "vde,sock=%s" % c.dir, "10.79.1.2"),
        }
        guests = {}
        for i, (name, (_sw, netdev, _addr)) in enumerate(spec.items()):
            guests[name] = QemuGuest(procs, work, None, "52:54:00:79:01:%02x" % (i + 1),
                                     name=name, netdev=netdev, wait=False)
        boot_all(guests.values())
        for name, g in guests.items():
            g.configure(spec[name][2] + "/24")
        rx_of = {"ours-vde": "rx", "ours-stream": "rx", "C-vde": "crx"}
        results = {name: [] for name in SENDERS}
        port = 5200
        for _run in range(args.runs):
            for name in SENDERS:
                port += 1
                seconds = tcp_transfer(guests[name], guests[rx_of[name]], "10.79.1.1",
                                       args.size, port)
                results[name].append(args.size / seconds)
        print("\n%-12s %10s  %s" % ("sender", "KiB/s", "min..max over %d runs of %d KiB"
                                     % (args.runs, args.size)))
        med = {}
        for name in SENDERS:
            r = results[name]
            med[name] = statistics.median(r)
            print("%-12s %10.0f  %.0f..%.0f" % (name, med[name], min(r), max(r)))
        print("\nratio stream/vde (ours): %.2f" % (med["ours-stream"] / med["ours-vde"]))
        print("ratio ours/C (vde):      %.2f" % (med["ours-vde"] / med["C-vde"]))
        stats = ours.cmd("port/stats")
        print("\nour switch's port/stats:\n" + "\n".join(
            ln for ln in stats.splitlines() if ln.startswith("Port")))
        print("\nload average after: %s" % " ".join("%.2f" % x for x in os.getloadavg()))
        return 0
    finally:
        procs.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
