#!/usr/bin/env python3
"""QEMU's stream clients against vde clients on our switch, Debian's C
vde_switch as the reference for vde: raw frames, then TCP between guests.

Frames: C load generators (``vdeload.c`` for VDE, ``qemuload.c`` for
QEMU's stream format, compiled here with ``cc -O2``) send frames of one
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
import platform
import select
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

from guests import QemuGuest, boot_all, tcp_transfer  # noqa: E402
from support import C_TOOLS, OURS, Processes, Switch  # noqa: E402

SENDERS = ("ours-vde", "ours-stream", "C-vde")
# (switch, sender kind, receiver kind)
FRAME_CASES = (("ours", "vde", "vde"), ("ours", "stream", "vde"), ("ours", "vde", "stream"),
               ("ours", "stream", "stream"), ("C", "vde", "vde"))
TX_MAC, RX_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"


class BenchError(Exception):
    pass


def compile_tool(procs: Processes, work: str, name: str) -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise BenchError("no C compiler (cc) for the load generators")
    out = os.path.join(work, name)
    r = subprocess.run([cc, "-O2", "-o", out, os.path.join(HERE, name + ".c")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError("compiling %s.c failed:\n%s" % (name, r.stderr))
    return out


def read_line(p: subprocess.Popen, timeout: float, what: str) -> str:
    if not select.select([p.stdout], [], [], timeout)[0]:
        raise BenchError("timed out waiting for %s" % what)
    line = p.stdout.readline().decode().strip()
    if not line:
        raise BenchError("%s: no answer (exit %s): %s" % (
            what, p.poll(), p.stderr.read().decode(errors="replace")))
    return line


def load_client(procs, tools, kind, role, target, size, duration):
    mac = TX_MAC if role == "send" else RX_MAC
    argv = [tools[kind], role, target, "--mac", mac]
    argv += (["--dst", RX_MAC, "--size", str(size), "--duration", str(duration)]
             if role == "send" else ["--from", TX_MAC, "--announce"])
    p = procs.start(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)
    if read_line(p, 15, "%s %s to attach" % (kind, role)) != "READY":
        raise BenchError("%s %s did not attach" % (kind, role))
    return p


def measure_frames(tools, work, switch, tx, rx, size, duration) -> dict:
    procs = Processes()
    d = tempfile.mkdtemp(prefix="vqf", dir=work)
    try:
        if switch == "ours":
            sw = Switch(procs, OURS["vde_switch"], os.path.join(d, "sw"), "--qemu-stream",
                        os.path.join(d, "st"), mgmt=False)
        else:
            sw = Switch(procs, C_TOOLS["vde_switch"], os.path.join(d, "sw"), mgmt=False)
        where = {"vde": sw.dir, "stream": os.path.join(d, "st")}
        sender = load_client(procs, tools, tx, "send", where[tx], size, duration)
        receiver = load_client(procs, tools, rx, "recv", where[rx], size, duration)
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
    procs = Processes()
    tools = {"vde": compile_tool(procs, work, "vdeload"),
             "stream": compile_tool(procs, work, "qemuload")}
    print("\nframes through one switch, %d runs of %gs per case (rates: frames/s delivered)"
          % (runs, duration))
    print("%-6s %-8s %-16s %10s  %-20s %6s %s" % ("size", "switch", "sender->receiver",
                                                  "median", "min..max", "loss", "ratio"))
    for size in sizes:
        res = {case: [] for case in FRAME_CASES}
        for _ in range(runs):
            for case in FRAME_CASES:
                res[case].append(measure_frames(tools, work, *case, size, duration))
        base = statistics.median(r["rate"] for r in res[("ours", "vde", "vde")])
        for case in FRAME_CASES:
            rates = [r["rate"] for r in res[case]]
            med = statistics.median(rates)
            loss = statistics.median(r["loss"] for r in res[case])
            print("%-6d %-8s %-16s %10.0f  %-20s %5.1f%% %.2f of ours vde->vde" % (
                size, case[0], "%s->%s" % case[1:], med,
                "%.0f..%.0f" % (min(rates), max(rates)), 100 * loss, med / base))


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
        print("\nload average after: %s" % " ".join("%.2f" % x for x in os.getloadavg()))
        return 0
    except BenchError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    finally:
        procs.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
