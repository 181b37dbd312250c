"""QEMU's own netdevs on our switch, beside a ``-netdev vde`` guest.

Five QEMU guests boot once for this module, all on one switch:

* ``qvde``: ``-netdev vde`` (libvdeplug);
* ``qst``: ``-netdev stream`` client of the switch's ``--qemu-stream`` socket;
* ``qdg``: ``-netdev dgram`` to the switch's ``--qemu-dgram`` socket;
* ``qsrv``: ``-netdev stream,server=on``, cabled in by ``vde_plug SW qemu-stream://``;
* ``qdgp``: ``-netdev dgram`` to a ``vde_plug SW qemu-dgram://`` socket.

They ping each other, move TCP streams, and a unicast conversation
between two of them does not reach a third.  The command lines are the
ones the README shows.
"""

import os
import re
import shutil
import tempfile

import pytest

from guests import QemuGuest, neighbour, ping, tcp_transfer
from support import OURS, Processes, Switch, require, wait_for

pytestmark = pytest.mark.real

NAMES = ("qvde", "qst", "qdg", "qsrv", "qdgp")
BOOT_TIMEOUT = 300.0                     # five TCG guests on a shared 2-core machine
ADDR = {n: "10.78.1.%d" % (i + 1) for i, n in enumerate(NAMES)}
MAC = {n: "52:54:00:78:01:%02x" % (i + 1) for i, n in enumerate(NAMES)}


class Lab:
    pass


@pytest.fixture(scope="module")
def lab():
    procs = Processes()
    work = tempfile.mkdtemp(prefix="vqn", dir="/tmp")
    lab = Lab()
    p = lab.paths = {k: os.path.join(work, k) for k in
                     ("sw", "stream", "dgram", "qdg.sock", "qsrv.sock", "plugdg", "qdgp.sock")}
    try:
        lab.sw = Switch(procs, OURS["vde_switch"], p["sw"],
                        "--qemu-stream", p["stream"], "--qemu-dgram", p["dgram"])
        lab.netdev = {
            "qvde": "vde,sock=%s" % p["sw"],
            "qst": "stream,server=off,addr.type=unix,addr.path=%s" % p["stream"],
            "qdg": "dgram,local.type=unix,local.path=%s,remote.type=unix,remote.path=%s"
                   % (p["qdg.sock"], p["dgram"]),
            "qsrv": "stream,server=on,addr.type=unix,addr.path=%s" % p["qsrv.sock"],
            "qdgp": "dgram,local.type=unix,local.path=%s,remote.type=unix,remote.path=%s"
                    % (p["qdgp.sock"], p["plugdg"]),
        }
        # the dgram plug's socket must exist before its QEMU sends to it
        lab.dgram_cable = procs.start([require(OURS["vde_plug"]), p["sw"],
                                       "qemu-dgram://" + p["plugdg"]])
        wait_for(lambda: os.path.exists(p["plugdg"]), 10, "the qemu-dgram:// plug's socket")
        guests = []
        for wave in (NAMES[:3], NAMES[3:]):  # fewer guests booting at once
            for name in wave:
                g = QemuGuest(procs, work, None, MAC[name], name=name,
                              netdev=lab.netdev[name], wait=False)
                setattr(lab, name, g)
                guests.append(g)
            if "qsrv" in wave:
                wait_for(lambda: os.path.exists(p["qsrv.sock"]), 30,
                         "QEMU's stream server socket")
                lab.stream_cable = procs.start([require(OURS["vde_plug"]), p["sw"],
                                                "qemu-stream://" + p["qsrv.sock"]])
            for name in wave:
                booted(getattr(lab, name))
        for g in guests:
            g.configure(ADDR[g.name] + "/24")
        # vde guest, stream client, both plugs; the dgram guest joins with its first frame
        wait_for(lambda: lab.sw.cmd("port/print").count("-- endpoint ID") >= 4, 20,
                 "4 endpoints on the switch")
        yield lab
    finally:
        procs.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def booted(guest) -> None:
    """Wait for the guest's shell, with more time than tests/guests.py gives."""
    guest.wait_text(r"GUEST-READY", BOOT_TIMEOUT)
    guest.check("true")


def report(capsys, text):
    with capsys.disabled():
        print("\n    " + text)


def test_every_guest_pings_every_other(lab, capsys):
    avgs = []
    for a in NAMES:
        for b in NAMES:
            if a != b:
                r = ping(getattr(lab, a), ADDR[b], count=2)
                avgs.append("%s->%s %sms" % (a, b, r["avg_ms"]))
    report(capsys, "; ".join(avgs))


def test_port_print_says_what_each_client_is(lab):
    text = lab.sw.cmd("port/print")
    assert ": QEMU user=root pid=%d" % lab.qvde.proc.pid in text, text
    assert re.search(r"module qemu stream\s*: QEMU stream user=root pid=%d\n"
                     % lab.qst.proc.pid, text), text
    assert re.search(r"module qemu dgram\s*: QEMU dgram %s user=root\n"
                     % re.escape(lab.paths["qdg.sock"]), text), text
    assert text.count(": vdeplug: user=root pid=") == 2, text
    assert text.count("-- endpoint ID") == 5, text
    # every client's port counted traffic in and out
    stats = lab.sw.cmd("port/stats")
    for line in stats.splitlines():
        m = re.match(r"Port (\d+) in (\d+)/\d+ out (\d+)/", line)
        if m:
            assert int(m.group(2)) > 0 and int(m.group(3)) > 0, stats


@pytest.mark.parametrize("sender, receiver, port", [
    ("qst", "qdg", 5101), ("qdg", "qvde", 5102), ("qvde", "qsrv", 5103),
    ("qsrv", "qdgp", 5104), ("qdgp", "qst", 5105)])
def test_tcp_stream_between_netdev_kinds(lab, capsys, sender, receiver, port):
    size_kib = 4096
    seconds = tcp_transfer(getattr(lab, sender), getattr(lab, receiver), ADDR[receiver],
                           size_kib, port)
    report(capsys, "tcp %s->%s: %d KiB in %.2fs = %.0f KiB/s"
           % (sender, receiver, size_kib, seconds, size_kib / seconds))


def _rx_packets(guest) -> int:
    return int(guest.check("cat /sys/class/net/eth0/statistics/rx_packets").split()[-1])


@pytest.mark.parametrize("a, b, third", [("qst", "qdg", "qvde"), ("qvde", "qst", "qdg")])
def test_unicast_between_two_is_not_seen_by_a_third(lab, a, b, third):
    ga, gb, gt = getattr(lab, a), getattr(lab, b), getattr(lab, third)
    neighbour(ga, ADDR[b], MAC[b])           # no ARP broadcast for this conversation
    neighbour(gb, ADDR[a], MAC[a])
    ping(ga, ADDR[b], count=2)               # the switch has learned both
    before_t, before_b = _rx_packets(gt), _rx_packets(gb)
    rc, out = ga.run("ping -c 100 -i 0.01 -w 30 %s" % ADDR[b], timeout=60)
    assert rc == 0 and " 100 packets received" in out, out
    seen_by_b = _rx_packets(gb) - before_b
    seen_by_third = _rx_packets(gt) - before_t
    assert seen_by_b >= 100, seen_by_b
    assert seen_by_third < 10, "%s saw %d frames of %s<->%s" % (third, seen_by_third, a, b)
