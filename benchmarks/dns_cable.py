#!/usr/bin/env python3
"""Goodput of a vde_over_ns cable: Debian's C tool and ours, side by side.

Both ends of the cable are the same implementation, each plugged into a
Debian vde_switch; the server listens on 127.0.0.1:53 inside a network
namespace this script makes and removes (so it needs root).  For each
direction (``up``: client side to server side, ``down``: the reverse) a
C vde_plug on the sending switch writes ``--frames`` frames of ``--size``
bytes, ``--window`` at a time, the next window once a vde_plug on the
other switch has counted the last one out (or nothing came for ``--idle``
seconds: those frames count as lost).  Rate = frames received / (time of the last one -
start), in frames/s and kB/s, with the frames lost.  A first frame from
the client side starts Debian's client (it asks nothing before).  Each
case runs ``--runs`` times per implementation, alternating which goes
first; the table shows medians with min..max and ours/C.  ``--mixed``
adds rows for Debian's server with our client and the reverse.  Machine noise:
other processes share the CPUs (load average printed); read medians.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TOOLS = {"C": "/usr/bin/vde_over_ns", "ours": os.path.join(REPO, "compat", "vde_over_ns")}
# implementations of (server, client) for each row of the table
PAIRS = {"C": ("C", "C"), "ours": ("ours", "ours"),
         "C-srv/ours-cli": ("C", "ours"), "ours-srv/C-cli": ("ours", "C")}
SWITCH, PLUG = "/usr/bin/vde_switch", "/usr/bin/vde_plug"
DOMAIN = "tun.example.vde"


def frame(src: int, i: int, size: int) -> bytes:
    head = b"\xff" * 6 + bytes((2, 0, 0, 0, 0, src)) + b"\x88\xb5" + struct.pack("!I", i)
    return head + b"\0" * (size - len(head))


class Counter(threading.Thread):
    def __init__(self, pipe, src: int):
        super().__init__(daemon=True)
        self.pipe, self.src = pipe, src
        self.count, self.last = 0, None

    def run(self) -> None:
        try:
            while True:
                hdr = self.pipe.read(2)
                if len(hdr) < 2:
                    return
                f = self.pipe.read(struct.unpack("!H", hdr)[0])
                if len(f) > 12 and f[11] == self.src:
                    self.count += 1
                    self.last = time.monotonic()
        except (OSError, ValueError):
            return


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_listening(ns: str, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Hlun", "sport = :53"],
                             capture_output=True, text=True).stdout
        if "127.0.0.1:53" in out:
            return
        time.sleep(0.05)
    raise RuntimeError("the server never bound 127.0.0.1:53")


def one_run(kind: str, ns: str, d: str, frames: int, size: int, idle: float, window: int):
    procs = []
    try:
        for s in ("a", "b"):
            procs.append(subprocess.Popen([SWITCH, "-s", os.path.join(d, s)],
                                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL))
        end = time.monotonic() + 20
        while not all(os.path.exists(os.path.join(d, s, "ctl")) for s in "ab"):
            if time.monotonic() > end:
                raise RuntimeError("switches did not start")
            time.sleep(0.05)
        server, client = PAIRS[kind]
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns, TOOLS[server], "-s",
                                       os.path.join(d, "a"), "-i", "127.0.0.1", DOMAIN],
                                      stderr=subprocess.DEVNULL))
        wait_listening(ns)
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns, TOOLS[client], "-s",
                                       os.path.join(d, "b"), "-c", "127.0.0.1", DOMAIN],
                                      stderr=subprocess.DEVNULL))
        plugs = {}
        for s in ("a", "b"):
            p = subprocess.Popen([PLUG, os.path.join(d, s)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE)
            procs.append(p)
            plugs[s] = p
        # warm up: frames from the client side until one crosses
        probe = Counter(plugs["a"].stdout, 0x99)
        probe.start()
        end = time.monotonic() + 20
        while probe.count == 0:
            if time.monotonic() > end:
                raise RuntimeError("nothing crossed the cable")
            f = frame(0x99, 0, 60)
            plugs["b"].stdin.write(struct.pack("!H", len(f)) + f)
            plugs["b"].stdin.flush()
            time.sleep(0.2)
        probe.src = 0           # ignore the rest of the probes
        results = {}
        for direction, (tx, rx, src) in (("up", ("b", "a", 0x11)), ("down", ("a", "b", 0x22))):
            counter = Counter(plugs[rx].stdout, src) if direction == "down" else probe
            counter.src = src
            if direction == "down":
                counter.start()
            counter.count, counter.last = 0, None
            start = time.monotonic()
            sent = 0
            while sent < frames:
                n = min(window, frames - sent)
                plugs[tx].stdin.write(b"".join(struct.pack("!H", size) + frame(src, sent + i, size)
                                               for i in range(n)))
                plugs[tx].stdin.flush()
                sent += n
                seen, quiet_since = -1, time.monotonic()
                while counter.count < sent:
                    if counter.count != seen:
                        seen, quiet_since = counter.count, time.monotonic()
                    elif time.monotonic() - quiet_since > idle:
                        break
                    time.sleep(0.002)
            got = counter.count
            took = (counter.last or time.monotonic()) - start
            results[direction] = (got / took if got else 0.0, frames - got)
        return results
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--idle", type=float, default=1.0)
    ap.add_argument("--mixed", action="store_true",
                    help="also Debian's server with our client and ours with Debian's client")
    ap.add_argument("--window", type=int, default=10,
                    help="frames written at once; the next ones once these came (or --idle)")
    a = ap.parse_args()
    print("nproc=%d  load average %s  python %s" % (
        os.cpu_count(), " ".join("%.2f" % x for x in os.getloadavg()),
        platform.python_version()))
    ns = "vdeipn-bench53-%d-%s" % (os.getpid(), secrets.token_hex(2))
    sh("ip", "netns", "add", ns)
    d = tempfile.mkdtemp(prefix="vdns", dir="/tmp")
    kinds = list(PAIRS) if a.mixed else ["C", "ours"]
    rates = {(k, dr): [] for k in kinds for dr in ("up", "down")}
    lost = {(k, dr): 0 for k in kinds for dr in ("up", "down")}
    try:
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        for r in range(a.runs):
            for j, kind in enumerate(kinds if r % 2 == 0 else reversed(kinds)):
                rd = os.path.join(d, "%d-%d" % (r, j))
                os.mkdir(rd)
                for dr, (rate, miss) in one_run(kind, ns, rd, a.frames, a.size, a.idle,
                                                      a.window).items():
                    rates[(kind, dr)].append(rate)
                    lost[(kind, dr)] += miss
    finally:
        subprocess.run(["ip", "netns", "del", ns])
        subprocess.run(["rm", "-rf", d])
    print("%d frames of %d bytes per run, %d runs" % (a.frames, a.size, a.runs))
    print("%-5s %-15s %22s %10s %8s" % ("dir", "impl", "frames/s [min..max]", "kB/s", "lost"))
    for dr in ("up", "down"):
        for kind in kinds:
            v = rates[(kind, dr)]
            m = statistics.median(v)
            print("%-5s %-15s %8.0f [%5.0f..%5.0f] %10.1f %8d" % (
                dr, kind, m, min(v), max(v), m * a.size / 1000, lost[(kind, dr)]))
        c = statistics.median(rates[("C", dr)])
        o = statistics.median(rates[("ours", dr)])
        print("%-5s ours/C %.2f" % (dr, o / c if c else float("inf")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
