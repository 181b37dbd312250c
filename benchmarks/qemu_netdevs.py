#!/usr/bin/env python3
"""QEMU's stream clients against vde clients on our switch, Debian's C
vde_switch as the reference for vde: raw frames, then TCP between guests.

Frames: the C load generator (``vdeload.c``, compiled here with
``cc -O2``; with ``--stream`` it speaks QEMU's stream format) sends frames of one
size for ``--duration`` seconds from one client to another through a
fresh switch, for each pair of client kinds on our switch and vde to vde
on the C switch, ``--runs`` times in turn.  Printed: the median rate
delivered with min..max and the loss.

Guests: one run boots five QEMU guests (TCG, Debian's kernel, a busybox
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
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, HERE)

from _common import (BenchError, Children, compile_vdeload, load_average,  # noqa: E402
                     machine_header, read_line)
from guests import QemuGuest, boot_all, tcp_transfer  # noqa: E402
from support import C_TOOLS, OURS, Processes, Switch  # noqa: E402

SENDERS = ("ours-vde", "ours-stream", "C-vde")
# (switch, sender kind, receiver kind)
FRAME_CASES = (("ours", "vde", "vde"), ("ours", "stream", "vde"), ("ours", "vde", "stream"),
               ("ours", "stream", "stream"), ("C", "vde", "vde"))
TX_MAC, RX_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"


def load_client(procs, vdeload, kind, role, target, size, duration):
    mac = TX_MAC if role == "send" else RX_MAC
    argv = [vdeload, role, target, "--mac", mac] + (["--stream"] if kind == "stream" else [])
    argv += (["--dst", RX_MAC, "--size", str(size), "--duration", str(duration)]
             if role == "send" else ["--from", TX_MAC, "--announce"])
    p = procs.start(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)
    if read_line(p, 15, "%s %s to attach" % (kind, role)) != "READY":
        raise BenchError("%s %s did not attach" % (kind, role))
    return p


def measure_frames(vdeload, work, switch, tx, rx, size, duration) -> dict:
    procs = Processes()
    d = tempfile.mkdtemp(prefix="vqf", dir=work)
    try:
        if switch == "ours":
            sw = Switch(procs, OURS["vde_switch"], os.path.join(d, "sw"), "--qemu-stream",
                        os.path.join(d, "st"), mgmt=False)
        else:
            sw = Switch(procs, C_TOOLS["vde_switch"], os.path.join(d, "sw"), mgmt=False)
        where = {"vde": sw.dir, "stream": os.path.join(d, "st")}
        sender = load_client(procs, vdeload, tx, "send", where[tx], size, duration)
        receiver = load_client(procs, vdeload, rx, "recv", where[rx], size, duration)
        time.sleep(0.1)                  # the switch learns the announcement
        sender.stdin.write(b"go\n")
        sender.stdin.flush()
        sent = json.loads(read_line(sender, duration + 30, "the sender's result"))
        time.sleep(0.3)                  # frames still on their way
        os.kill(receiver.pid, signal.SIGUSR1)
        got = json.loads(read_line(receiver, 5, "the receiver's result"))
    finally:
        procs.cleanup()
        shutil.rmtree(d, ignore_errors=True)
    elapsed = sent["elapsed"] or 1e-9
    return {"rate": got["frames"] / elapsed,
            "loss": 1.0 - got["frames"] / sent["sent"] if sent["sent"] else 1.0}


def frames_section(work: str, runs: int, sizes, duration: float) -> None:
    children = Children()
    try:
        vdeload = compile_vdeload(children)
        _frames_table(vdeload, work, runs, sizes, duration)
    finally:
        children.cleanup()


def _frames_table(vdeload: str, work: str, runs: int, sizes, duration: float) -> None:
    print("\nframes through one switch, %d runs of %gs per case (rates: frames/s delivered)"
          % (runs, duration))
    print("%-6s %-8s %-16s %10s  %-20s %6s %s" % ("size", "switch", "sender->receiver",
                                                  "median", "min..max", "loss", "ratio"))
    for size in sizes:
        res = {case: [] for case in FRAME_CASES}
        for _ in range(runs):
            for case in FRAME_CASES:
                res[case].append(measure_frames(vdeload, work, *case, size, duration))
        base = statistics.median(r["rate"] for r in res[("ours", "vde", "vde")])
        for case in FRAME_CASES:
            rates = [r["rate"] for r in res[case]]
            med = statistics.median(rates)
            loss = statistics.median(r["loss"] for r in res[case])
            print("%-6d %-8s %-16s %10.0f  %-20s %5.1f%% %.2f of ours vde->vde" % (
                size, case[0], "%s->%s" % case[1:], med,
                "%.0f..%.0f" % (min(rates), max(rates)), 100 * loss, med / base))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size", type=int, default=8192, help="KiB per guest transfer")
    ap.add_argument("--sizes", default="64,1500", help="frame sizes of the frames section")
    ap.add_argument("--duration", type=float, default=2.0, help="seconds per frame load")
    ap.add_argument("--no-frames", action="store_true", help="guests only")
    ap.add_argument("--no-guests", action="store_true", help="frames only")
    args = ap.parse_args(argv)
    for line in machine_header():
        print(line)
    procs = Processes()
    work = tempfile.mkdtemp(prefix="vqb", dir="/tmp")
    try:
        if not args.no_frames:
            frames_section(work, args.runs, [int(x) for x in args.sizes.split(",")],
                           args.duration)
        if args.no_guests:
            return 0
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
        print("\nTCP between guests\n%-12s %10s  %s" % ("sender", "KiB/s",
                                                      "min..max over %d runs of %d KiB"
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
        print("\nload average after: %s" % load_average())
        return 0
    except BenchError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    finally:
        procs.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
