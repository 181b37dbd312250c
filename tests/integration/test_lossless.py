"""--lossless: a full receiver slows its senders down instead of losing frames.

Real processes only: our vde_switch, and the C load generator of the
benchmarks (benchmarks/vdeload.c, compiled here) as full-speed senders
and deliberately slow receivers.  The same set-up without --lossless
must lose frames, or the lossless runs would prove nothing.
"""

import json
import os
import re
import select
import signal
import subprocess
import time

import pytest

from support import REPO, compiled

SRC = os.path.join(REPO, "benchmarks", "vdeload.c")
SENDER, SENDER2 = "02:00:00:00:00:01", "02:00:00:00:00:05"
SLOW, FAST, OTHER = "02:00:00:00:00:02", "02:00:00:00:00:03", "02:00:00:00:00:04"
COUNT = 5000


@pytest.fixture(scope="module")
def vdeload():
    return compiled(SRC, "-O2")


def read_line(p, timeout):
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0 and select.select([p.stdout], [], [], left)[0], "no line from vdeload"
        chunk = os.read(p.stdout.fileno(), 1)
        assert chunk, "vdeload exited: %s" % p.stderr.read().decode()
        buf += chunk
    return buf.decode().strip()


class Load:
    def __init__(self, procs, vdeload, path):
        self.procs, self.vdeload, self.path = procs, vdeload, path

    def client(self, *args):
        p = self.procs.start([self.vdeload, args[0], self.path] + list(args[1:]),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert read_line(p, 30) == "READY"
        return p

    def receiver(self, mac, *extra):
        return self.client("recv", "--mac", mac, "--from", SENDER, "--announce",
                           "--batch", "1", *extra)

    def send(self, dst, mac=SENDER, wait=True):
        p = self.client("send", "--mac", mac, "--dst", dst, "--count", str(COUNT))
        p.stdin.write(b"go\n")
        p.stdin.flush()
        if wait:
            result = json.loads(read_line(p, 300))
            assert result["sent"] == COUNT
            return result
        return p

    @staticmethod
    def result(p, timeout=120):
        """A receiver's count: it stops by itself at --expect, else on SIGUSR1."""
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGUSR1)
        return json.loads(read_line(p, 10))["frames"]


DELAY = 200e-6                   # the slow receiver sleeps this long per frame


def slow(n=COUNT):
    return ("--delay-us", str(int(DELAY * 1e6)), "--expect", str(n))


def held_back(sent):
    """The sender was slowed to the slow receiver's pace: it cannot have
    finished before that receiver took all but the few hundred frames
    the sockets and the switch hold (a sender not held back takes a few
    hundredths of a second)."""
    return sent["elapsed"] > 0.5 * COUNT * DELAY


@pytest.fixture
def load(procs, sockdir, new_switch, vdeload, request):
    sw = new_switch("ours", os.path.join(sockdir, "sw"), *request.param)
    return sw, Load(procs, vdeload, sw.dir)


@pytest.mark.parametrize("load", [("--lossless",)], indirect=True)
def test_unicast_to_a_slow_receiver_loses_nothing(load):
    sw, ld = load
    r = ld.receiver(SLOW, *slow())
    sent = ld.send(SLOW)
    assert ld.result(r) == COUNT, sw.cmd("port/stats")
    assert held_back(sent), sent


@pytest.mark.parametrize("load", [("--lossless",)], indirect=True)
def test_flood_to_a_slow_and_a_fast_receiver_loses_nothing(load):
    sw, ld = load
    r_slow = ld.receiver(SLOW, *slow())
    r_fast = ld.receiver(FAST, "--expect", str(COUNT))
    sent = ld.send("ff:ff:ff:ff:ff:ff")
    assert held_back(sent), sent
    assert ld.result(r_slow) == COUNT, sw.cmd("port/stats")
    assert ld.result(r_fast) == COUNT, sw.cmd("port/stats")


@pytest.mark.parametrize("load", [()], indirect=True)
def test_without_it_the_same_load_loses_frames(load):
    sw, ld = load
    r = ld.receiver(SLOW, *slow())
    ld.send(SLOW)
    assert ld.result(r, timeout=5) < COUNT
    stats = sw.cmd("port/stats")
    line = [x for x in stats.splitlines() if x.startswith("Port 0001 ")][0]   # the receiver
    assert int(re.search(r"queue_full=(\d+)", line).group(1)) > 0, stats


@pytest.mark.parametrize("load", [("--lossless",)], indirect=True)
def test_a_stalled_port_does_not_stall_two_others(load):
    """A receiver that stops reading pauses its sender only: unicast
    between two other ports goes on, and loses nothing either."""
    sw, ld = load
    stalled = ld.receiver(SLOW, "--delay-us", "100000000")   # reads one frame, then sleeps
    blocked = ld.send(SLOW, wait=False)
    # the stalled port's sender is held back: it cannot finish
    time.sleep(1.0)
    assert blocked.poll() is None
    other = ld.client("recv", "--mac", OTHER, "--from", SENDER2, "--announce",
                      "--expect", str(COUNT))
    ld.send(OTHER, mac=SENDER2)
    assert ld.result(other, timeout=60) == COUNT, sw.cmd("port/stats")
    assert blocked.poll() is None
    os.kill(stalled.pid, signal.SIGKILL)
