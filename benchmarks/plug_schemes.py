#!/usr/bin/env python3
"""Frame rate of vde_plug through vdeplug4's schemes: Debian's C plugins and ours.

Each case pushes ``--frames`` frames of one size through a pair of
vde_plug processes and measures how long the last one takes to come out:

* ``ptp``: ``vde_plug ptp://P`` to ``vde_plug ptp://P`` (the baseline);
* ``vlan``: both ends ``vlan://3{ptp://P}`` (tag on one side, untag on the other);
* ``agno``: both ends ``agno://KEY{ptp://P}`` (encrypt, decrypt);
* ``cmd``: one ``vde_plug cmd://cat``: frames on stdin, through cat, back on stdout
  (the C plug writes to the command blocking and can deadlock with an echoing
  command: then the run stops at ``--timeout`` and its frames count as lost).

Both ends are the same implementation.  The sender's stdin is fed by
this script as fast as the pipe takes it; ptp sends of the C plug block
when the receiver is full, ours wait for room up to 1 s, so frames are
lost only if a receiver stalls.  Every case runs ``--runs`` times per
implementation, alternating which goes first; the table shows the median
rate (frames/s) with min..max, the loss, and the ratio ours/C of medians.
Machine noise: other processes share the CPUs (the load average is
printed); read the medians, not single runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
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
PLUGS = {"C": "/usr/bin/vde_plug", "ours": os.path.join(REPO, "compat", "vde_plug")}
KEY = "00112233445566778899aabbccddeeff\n"
CASES = ("ptp", "vlan", "agno", "cmd")


def frame(i: int, size: int) -> bytes:
    head = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + struct.pack("!I", i)
    return head + b"\0" * (size - len(head))


def record_stream(n: int, size: int) -> bytes:
    return b"".join(struct.pack("!H", size) + frame(i, size) for i in range(n))


class Counter(threading.Thread):
    """Counts vdestream records on a pipe until ``n`` or EOF."""

    def __init__(self, pipe, n: int):
        super().__init__(daemon=True)
        self.pipe, self.n = pipe, n
        self.count = 0
        self.last = None

    def run(self) -> None:
        buf = b""
        while self.count < self.n:
            data = os.read(self.pipe.fileno(), 1 << 16)
            if not data:
                return
            buf += data
            while len(buf) >= 2:
                k = struct.unpack_from("!H", buf)[0]
                if len(buf) < 2 + k:
                    break
                buf = buf[2 + k:]
                self.count += 1
            self.last = time.monotonic()


def measure(impl: str, case: str, n: int, size: int, work: str, timeout: float):
    """(frames/s, frames lost) for one run."""
    plug = PLUGS[impl]
    path = os.path.join(work, "p%d" % time.monotonic_ns())
    key = os.path.join(work, "key")
    wrap = {"ptp": "ptp://%s", "vlan": "vlan://3{ptp://%s}",
            "agno": "agno://" + key + "{ptp://%s}"}.get(case)
    procs = []
    try:
        if case == "cmd":
            sender = subprocess.Popen([plug, "cmd://cat"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE)
            procs.append(sender)
            receiver_out = sender.stdout
        else:
            receiver = subprocess.Popen([plug, wrap % path], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE)
            procs.append(receiver)
            deadline = time.monotonic() + 10
            while not os.path.exists(path):
                if time.monotonic() > deadline:
                    raise RuntimeError("%s receiver did not start" % impl)
                time.sleep(0.01)
            sender = subprocess.Popen([plug, wrap % path], stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL)
            procs.append(sender)
            while not os.path.exists(path + "+"):
                if time.monotonic() > deadline:
                    raise RuntimeError("%s sender did not start" % impl)
                time.sleep(0.01)
            receiver_out = receiver.stdout
        counter = Counter(receiver_out, n)
        counter.start()
        data = record_stream(n, size)
        def feed():
            try:
                sender.stdin.write(data)
                sender.stdin.flush()
            except (OSError, ValueError):    # the plug was stopped first
                pass
        start = time.monotonic()
        threading.Thread(target=feed, daemon=True).start()
        counter.join(timeout)
        end = counter.last or time.monotonic()
        return counter.count / max(end - start, 1e-6), n - counter.count
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            for f in (p.stdin, p.stdout):
                if f is not None:
                    try:
                        f.close()
                    except OSError:
                        pass


def fmt(rate: float) -> str:
    return "%.1fk" % (rate / 1000) if rate >= 1000 else "%.0f" % rate


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--sizes", default="64,1000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--timeout", type=float, default=20.0)
    a = ap.parse_args(argv)
    for impl, tool in PLUGS.items():
        if not os.access(tool, os.X_OK):
            print("missing %s vde_plug: %s" % (impl, tool), file=sys.stderr)
            return 1
    print("# %s, nproc=%d, load average %s" % (platform.platform(), os.cpu_count() or 0,
                                               " ".join("%.2f" % x for x in os.getloadavg())))
    print("%-5s %5s %-5s %-24s %6s %8s" % ("case", "size", "impl", "frames/s median [min..max]",
                                           "lost", "ours/C"))
    work = tempfile.mkdtemp(prefix="vbs")
    try:
        with open(os.path.join(work, "key"), "w") as f:
            f.write(KEY)
        for case in a.cases.split(","):
            for size in (int(s) for s in a.sizes.split(",")):
                results = {"C": [], "ours": []}
                lost = {"C": 0, "ours": 0}
                for run in range(a.runs):
                    order = ("C", "ours") if run % 2 == 0 else ("ours", "C")
                    for impl in order:
                        rate, missing = measure(impl, case, a.frames, size, work, a.timeout)
                        results[impl].append(rate)
                        lost[impl] += missing
                medians = {k: statistics.median(v) for k, v in results.items()}
                for impl in ("C", "ours"):
                    v = results[impl]
                    ratio = "%.2f" % (medians["ours"] / medians["C"]) if impl == "ours" and \
                        medians["C"] else ""
                    print("%-5s %5d %-5s %-24s %6d %8s" % (
                        case, size, impl, "%s [%s..%s]" % (fmt(medians[impl]), fmt(min(v)),
                                                           fmt(max(v))),
                        lost[impl], ratio))
                sys.stdout.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("# load average after: %s" % " ".join("%.2f" % x for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
