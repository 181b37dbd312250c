#!/usr/bin/env python3
"""Does a monitor port slow forwarding between two other ports?  Measured.

Our switch forwards learned unicast from a sender to a receiver (the C
load generator ``vdeload.c`` of ``switch_forwarding.py``, blocking sends
for ``--duration`` seconds), in four setups, each on a fresh switch:

* ``none``: no monitor port at all (the frame path's hook is off);
* ``reading``: a monitor port whose client reads every copy;
* ``stopped``: a monitor port whose client is stopped (SIGSTOP): its
  queue fills at once and every later copy is dropped and counted;
* ``capture``: no monitor, but ``--dump`` writing every frame to a pcap
  file (in the temporary directory).

The table shows the median delivered rate sender -> receiver with
min..max over ``--runs``, its ratio to ``none``, and the monitor's copies
delivered / dropped (``monitor/showinfo``).  Nothing is asserted: this
reports.  Every process is killed by PID on exit, and the temporary
directory removed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import switch_forwarding as sf  # noqa: E402  (Children, vdeload, clients)

SETUPS = ("none", "reading", "stopped", "capture")
MONITOR_MAC = "02:00:00:00:00:05"


def mgmt(path: str, line: str) -> str:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
        buf = b""
        while not buf.endswith(b"$ "):
            buf += s.recv(4096)
        s.sendall(line.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"$ "):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf.decode(errors="replace")
    finally:
        s.close()


def start_switch(children, workdir: str, setup: str):
    path = os.path.join(workdir, "sw")
    mg = os.path.join(workdir, "mgmt")
    argv = [sf.SWITCHES["ours"], "-s", path, "-M", mg]
    if setup == "capture":
        argv += ["--dump", os.path.join(workdir, "all.pcap")]
    p = children.start(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while not (os.path.exists(os.path.join(path, "ctl")) and os.path.exists(mg)):
        if p.poll() is not None or time.monotonic() > deadline:
            raise sf.BenchError("our vde_switch failed to start")
        time.sleep(0.01)
    return p, path, mg


def measure(children, vdeload: str, setup: str, size: int, duration: float) -> dict:
    workdir = children.mkdtemp("vm")
    procs = []
    try:
        sw, path, mg = start_switch(children, workdir, setup)
        sender = sf.start_client(children, vdeload, [          # port 1
            "send", path, "--mac", sf.SENDER_MAC, "--dst", sf.RECEIVER_MAC,
            "--size", str(size), "--duration", str(duration)])
        procs.append(sender)
        monitor = None
        if setup in ("reading", "stopped"):
            monitor = sf.start_client(children, vdeload, [     # port 2
                "recv", path, "--mac", MONITOR_MAC, "--from", sf.SENDER_MAC])
            procs.append(monitor)
            if "1000 Success" not in mgmt(mg, "monitor/set 2"):
                raise sf.BenchError("monitor/set 2 failed")
        receiver = sf.start_client(children, vdeload, [
            "recv", path, "--mac", sf.RECEIVER_MAC, "--from", sf.SENDER_MAC, "--announce"])
        procs.append(receiver)
        time.sleep(0.1)
        if setup == "stopped":
            os.kill(monitor.pid, signal.SIGSTOP)
        sender.stdin.write(b"go\n")
        sender.stdin.flush()
        sent = json.loads(sf.read_line(sender, duration + 30, "the sender's result"))
        time.sleep(0.2)
        os.kill(receiver.pid, signal.SIGUSR1)
        got = json.loads(sf.read_line(receiver, 5, "the receiver's result"))
        info = mgmt(mg, "monitor/showinfo")
        m = re.search(r"copies (\d+) dropped (\d+)", info)
        copies, dropped = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        if monitor is not None:
            if setup == "stopped":
                os.kill(monitor.pid, signal.SIGCONT)
            os.kill(monitor.pid, signal.SIGUSR1)
            seen = json.loads(sf.read_line(monitor, 5, "the monitor's result"))["frames"]
        else:
            seen = 0
    finally:
        for p in procs + ([sw] if "sw" in locals() else []):
            children.stop(p)
        children.dirs.remove(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = sent["elapsed"] or 1e-9
    return {"setup": setup, "size": size, "sent": sent["sent"],
            "delivered_per_s": got["frames"] / elapsed, "received": got["frames"],
            "copies": copies, "dropped": dropped, "monitor_got": seen}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="60,1514")
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args(argv)
    children = sf.Children()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    results = []
    try:
        vdeload = sf.compile_vdeload(children)
        for size in [int(s) for s in args.sizes.split(",")]:
            for run in range(args.runs):
                order = SETUPS if run % 2 == 0 else tuple(reversed(SETUPS))
                for setup in order:
                    results.append(measure(children, vdeload, setup, size, args.duration))
    finally:
        children.cleanup()
    lines = ["monitor impact on forwarding sender -> receiver (our switch, %gs runs, %d runs)"
             % (args.duration, args.runs),
             "%-6s %-8s %22s %7s %12s %12s %12s" % ("size", "setup", "delivered/s med (min..max)",
                                                   "vs none", "copies", "dropped", "monitor got")]
    for size in sorted({r["size"] for r in results}):
        base = None
        for setup in SETUPS:
            rs = [r for r in results if r["size"] == size and r["setup"] == setup]
            rates = [r["delivered_per_s"] for r in rs]
            med = statistics.median(rates)
            base = med if setup == "none" else base
            last = rs[-1]
            lines.append("%-6d %-8s %10.0f (%.0f..%.0f) %6.2fx %12d %12d %12d" % (
                size, setup, med, min(rates), max(rates), med / base if base else 0,
                last["copies"], last["dropped"], last["monitor_got"]))
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
