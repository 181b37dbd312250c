"""Real virtual machines networked through our switch.

Four guests boot once for this module: two QEMU guests (Debian's kernel,
a busybox initramfs) and a User-Mode Linux guest on our switch, and a
third QEMU guest on Debian's C vde_switch, joined to ours by a
``dpipe vde_plug = vde_plug`` cable.  They ping each other on
10.77.1.0/24 and move a TCP stream, whose throughput is reported.
"""

import os
import re
import shutil
import signal
import tempfile
import time

import pytest

from guests import QemuGuest, UmlGuest, boot_all, ping
from support import C_TOOLS, OURS, Processes, Switch, attached, require

pytestmark = pytest.mark.real

ADDR = {"q1": "10.77.1.1", "q2": "10.77.1.2", "uml": "10.77.1.3", "qc": "10.77.1.4"}


class Lab:
    pass


@pytest.fixture(scope="module")
def lab():
    procs, tree = Processes(), []
    work = tempfile.mkdtemp(prefix="vg", dir="/tmp")
    lab = Lab()
    try:
        lab.ours = Switch(procs, OURS["vde_switch"], os.path.join(work, "sw"))
        lab.c = Switch(procs, C_TOOLS["vde_switch"], os.path.join(work, "csw"))
        lab.cable = procs.start([require(OURS["dpipe"]), OURS["vde_plug"], lab.ours.dir,
                                 "=", require(C_TOOLS["vde_plug"]), lab.c.dir])
        # the QEMU guests boot side by side, and beside UML
        lab.q1 = QemuGuest(procs, work, lab.ours.dir, "52:54:00:77:01:01", name="q1",
                           wait=False)
        lab.q2 = QemuGuest(procs, work, lab.ours.dir, "52:54:00:77:01:02", name="q2",
                           nic="e1000", wait=False)
        lab.qc = QemuGuest(procs, work, lab.c.dir, "52:54:00:77:01:04", name="qc", wait=False)
        lab.uml = UmlGuest(procs, tree, work, lab.ours.dir, "52:54:00:77:01:03")
        boot_all([lab.q1, lab.q2, lab.qc])
        for name in ("q1", "q2", "uml", "qc"):
            getattr(lab, name).configure(ADDR[name] + "/24")
        attached(lab.ours, 4)            # q1, q2, UML's helper, the cable
        yield lab
    finally:
        tree.extend(descendants_of(procs))
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        procs.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def descendants_of(procs):
    from support import descendants
    found = []
    for p in procs.procs:
        if p.poll() is None:
            found += descendants(p.pid)
    return found


def report(capsys, text):
    with capsys.disabled():
        print("\n    " + text)


def test_guests_booted(lab, capsys):
    report(capsys, "boot: q1 %.1fs, q2 %.1fs, uml %.1fs, qc %.1fs" % tuple(
        getattr(lab, n).boot_seconds for n in ("q1", "q2", "uml", "qc")))
    text = lab.ours.cmd("port/print")
    assert text.count(": QEMU user=") == 2, text
    assert ": UML vde_transport user=" in text, text


def test_qemu_pings_qemu(lab, capsys):
    there = ping(lab.q1, ADDR["q2"])
    back = ping(lab.q2, ADDR["q1"])
    report(capsys, "qemu<->qemu: %(received)d/%(sent)d replies, avg %(avg_ms)s ms" % there
           + "; back %(received)d/%(sent)d, avg %(avg_ms)s ms" % back)


def test_qemu_and_uml_ping_each_other(lab, capsys):
    there = ping(lab.q1, ADDR["uml"])
    back = ping(lab.uml, ADDR["q1"])
    report(capsys, "qemu<->uml: %(received)d/%(sent)d, avg %(avg_ms)s ms" % there
           + "; back %(received)d/%(sent)d, avg %(avg_ms)s ms" % back)


def test_guest_on_the_c_switch_across_a_cable(lab, capsys):
    there = ping(lab.q1, ADDR["qc"])
    back = ping(lab.qc, ADDR["q2"])
    report(capsys, "ours<->C switch via dpipe: %(received)d/%(sent)d, avg %(avg_ms)s ms"
           % there + "; back %(received)d/%(sent)d" % back)
    # the frames really crossed the C switch: its cable port counted them
    pkts = [int(n) for n in re.findall(r"IN:  pkts\s+(\d+)", lab.c.cmd("port/print"))]
    assert len(pkts) == 2 and min(pkts) >= 3, pkts


@pytest.mark.parametrize("sender, receiver", [("q1", "q2"), ("q2", "uml")])
def test_tcp_transfer_between_guests(lab, capsys, sender, receiver):
    size_kib = 8192
    rx, tx = getattr(lab, receiver), getattr(lab, sender)
    # the listener's stdin must stay open: at EOF busybox nc half-closes,
    # and the sender's nc would stop at that FIN
    rx.check("rm -f /tmp/rx; (sleep 300 | nc -l -p 5001 | wc -c > /tmp/rx) & sleep 1")
    t0 = time.monotonic()
    tx.check("dd if=/dev/zero bs=1024 count=%d 2>/dev/null | nc %s 5001"
             % (size_kib, ADDR[receiver]), timeout=120)
    got = rx.check("(for i in $(seq 100); do [ -s /tmp/rx ] && break; sleep 0.2; done); "
                   "cat /tmp/rx")
    seconds = time.monotonic() - t0
    assert int(got.split()[-1]) == size_kib * 1024, got
    report(capsys, "tcp %s->%s: %d KiB in %.2fs = %.0f KiB/s"
           % (sender, receiver, size_kib, seconds, size_kib / seconds))
