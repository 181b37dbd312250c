#!/usr/bin/env python3
"""Guest-to-host TCP throughput through four slirp routers, side by side.

One QEMU guest (TCG, busybox) on our switch, inside a network namespace
with only loopback, everything run as ``nobody`` (see
``tests/slirp_lab.py``).  The routers take turns as the guest's way out:

    ours-plug      compat/vde_plug SW slirp://       (libslirp, our loop)
    C-plug         /usr/bin/vde_plug SW slirp://      (vdeplug4's plugin)
    ours-slirpvde  compat/slirpvde -q -s SW --dhcp
    C-slirpvde     /usr/bin/slirpvde -q -s SW --dhcp  (vde2 2.3.2, its own slirp)

Each round the guest takes a DHCP lease and sends ``--kib`` KiB of zeros
with busybox ``nc`` to a receiver on the host side, which times the
first to the last byte; the router's CPU time (user + system, from
/proc) over the transfer is divided by the megabytes moved.  Rounds
alternate the order of the routers; medians (min..max) and the ratios
ours/C are printed.  The guest is emulated (TCG): its own CPU time, not
the router, bounds the throughput, so the CPU cost per megabyte is the
figure that compares the routers.  Other load on the machine shows up as
spread.  Needs root (it creates the
namespace); cleans up after itself.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from slirp_lab import C_PLUG, C_SLIRPVDE, OURS_PLUG, OURS_SLIRPVDE, SlirpLab  # noqa: E402


def routers(sw: str) -> dict:
    return {
        "ours-plug": [OURS_PLUG, sw, "slirp://"],
        "C-plug": [C_PLUG, sw, "slirp://"],
        "ours-slirpvde": [OURS_SLIRPVDE, "-q", "-s", sw, "--dhcp"],
        "C-slirpvde": [C_SLIRPVDE, "-q", "-s", sw, "--dhcp"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kib", type=int, default=16384, help="KiB per transfer")
    ap.add_argument("--runs", type=int, default=3, help="rounds over the four routers")
    ap.add_argument("--quick", action="store_true", help="1 round of 1 MiB (smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.kib, args.runs = 1024, 1
    print("nproc=%d  load average %s" % (os.cpu_count() or 0,
                                         " ".join("%.2f" % x for x in os.getloadavg())))
    lab = SlirpLab(file_kib=64)
    rates: dict = {}
    cpus: dict = {}
    try:
        table = routers(lab.sw)
        names = list(table)
        for run in range(args.runs):
            order = names if run % 2 == 0 else names[::-1]
            for name in order:
                p = lab.start_router(table[name])
                try:
                    lease = lab.dhcp()
                    cpu0 = lab.cpu_seconds(p.pid)
                    n, secs = lab.upload(lease["router"], args.kib)
                    cpu = lab.cpu_seconds(p.pid) - cpu0
                    if n != args.kib * 1024:
                        print("%s: %d of %d bytes arrived" % (name, n, args.kib * 1024),
                              file=sys.stderr)
                        return 1
                    rates.setdefault(name, []).append(n / max(secs, 1e-6) / 1e6)
                    cpus.setdefault(name, []).append(cpu * 1000 / (n / 1e6))
                finally:
                    lab.stop_router(p)
                time.sleep(0.2)
    finally:
        lab.close()
    print("guest->host TCP, %d KiB per transfer, %d run(s), guest on TCG; medians [min..max]"
          % (args.kib, args.runs))
    print("%-14s %22s %24s" % ("router", "MB/s", "router CPU ms per MB"))
    med, cmed = {}, {}
    for name in names:
        r, c = rates[name], cpus[name]
        med[name], cmed[name] = statistics.median(r), statistics.median(c)
        print("%-14s %8.2f [%5.2f..%5.2f] %8.1f [%5.1f..%5.1f]"
              % (name, med[name], min(r), max(r), cmed[name], min(c), max(c)))
    for label, ours, c in (("vde_plug slirp://", "ours-plug", "C-plug"),
                           ("slirpvde", "ours-slirpvde", "C-slirpvde")):
        print("ours/C %-18s throughput %.2f  CPU per MB %.2f"
              % (label, med[ours] / med[c], cmed[ours] / max(cmed[c], 1e-9)))
    print("load average after: %s" % " ".join("%.2f" % x for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
