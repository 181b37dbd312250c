"""QEMU (a real libvdeplug client) on our switch.

QEMU runs without a guest: ``-S`` keeps the CPU stopped, and the QMP
command ``announce-self`` makes QEMU itself emit RARP frames from the
NIC's MAC once the machine runs (``cont``), which proves frames flow
from QEMU through our switch to a plug.  The C switch runs the same
checks as the reference.
"""

import json
import os
import re
import signal
import socket

import pytest

from support import (BROADCAST, C_TOOLS, StreamPlug, attached, frame, listening, mac, require,
                     wait_for)

QEMU = "/usr/bin/qemu-system-x86_64"
NIC_MAC = bytes.fromhex("525400123456")
ETH_RARP = b"\x80\x35"


class Qemu:
    """A guest-less QEMU with one e1000 NIC on ``sock`` and a QMP socket."""

    def __init__(self, procs, workdir, sock, *, netdev_extra=""):
        self.qmp_path = os.path.join(workdir, "qmp")
        argv = [require(QEMU), "-nodefaults", "-display", "none", "-machine", "pc",
                "-accel", "tcg", "-m", "64", "-S",
                "-netdev", "vde,id=n0,sock=%s%s" % (sock, netdev_extra),
                "-device", "e1000,netdev=n0,mac=52:54:00:12:34:56",
                "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        self.proc = procs.start(argv)
        wait_for(lambda: listening(self.qmp_path) or self.proc.poll() is not None,
                 15, "QEMU's QMP socket")
        if self.proc.poll() is not None:
            raise AssertionError("QEMU exited %s: %s"
                                 % (self.proc.returncode, self.proc.stderr.read().decode()))
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(10)
        self._sock.connect(self.qmp_path)
        self._file = self._sock.makefile("rwb")
        assert b"QMP" in self._file.readline()
        self.qmp("qmp_capabilities")

    def qmp(self, command, **arguments):
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self._file.write(json.dumps(msg).encode() + b"\n")
        self._file.flush()
        while True:
            reply = json.loads(self._file.readline())
            if "error" in reply:
                raise AssertionError("QMP %s: %s" % (command, reply["error"]))
            if "return" in reply:
                return reply["return"]

    def close(self):
        self._file.close()
        self._sock.close()


@pytest.fixture(params=["ours", "c"])
def kind(request):
    return request.param


def qemu_port(text, pid):
    """The port number whose endpoint is QEMU ``pid`` in port/print output."""
    port = None
    for line in text.splitlines():
        m = re.match(r"Port (\d{4}) ", line)
        if m:
            port = int(m.group(1))
        elif ": QEMU user=" in line and line.endswith(" pid=%d" % pid):
            return port
    return None


def counters(text, port):
    """(IN pkts, OUT pkts) of ``port`` in port/print output."""
    block = text.split("Port %04d " % port, 1)[1].split("\nPort ", 1)[0]
    pkts_in = int(re.search(r"IN:  pkts\s+(\d+)", block).group(1))
    pkts_out = int(re.search(r"OUT: pkts\s+(\d+)", block).group(1))
    return pkts_in, pkts_out


def test_qemu_attaches_with_its_description(procs, sockdir, new_switch, kind):
    sw = new_switch(kind, os.path.join(sockdir, "sw"))
    q = Qemu(procs, sockdir, sw.dir)
    attached(sw, 1, timeout=10)
    text = sw.cmd("port/print")
    assert re.search(r"module unix prog   : QEMU user=\S+ pid=%d\n" % q.proc.pid, text), text
    assert qemu_port(text, q.proc.pid) == 1
    q.close()


@pytest.mark.parametrize("how", ["port=", "vnl"])
def test_qemu_chooses_its_port(procs, sockdir, new_switch, kind, how):
    sw = new_switch(kind, os.path.join(sockdir, "sw"))
    if how == "port=":
        q = Qemu(procs, sockdir, sw.dir, netdev_extra=",port=7")
    else:
        q = Qemu(procs, sockdir, "vde://%s[11]" % sw.dir)
    attached(sw, 1, timeout=10)
    assert qemu_port(sw.cmd("port/print"), q.proc.pid) == (7 if how == "port=" else 11)
    q.close()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_port_freed_when_qemu_is_killed(procs, sockdir, new_switch, kind, sig):
    sw = new_switch(kind, os.path.join(sockdir, "sw"))
    q = Qemu(procs, sockdir, sw.dir)
    attached(sw, 1, timeout=10)
    q.close()
    os.kill(q.proc.pid, sig)
    q.proc.wait(timeout=10)
    attached(sw, 0)
    assert sorted(os.listdir(sw.dir)) == ["ctl"]


def test_frames_flow_between_qemu_and_a_plug(procs, sockdir, new_switch, kind):
    sw = new_switch(kind, os.path.join(sockdir, "sw"))
    q = Qemu(procs, sockdir, sw.dir)
    plug = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    other = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    attached(sw, 3, timeout=10)
    port = qemu_port(sw.cmd("port/print"), q.proc.pid)
    # QEMU -> switch -> plug: QEMU announces its NIC (gratuitous RARP).
    q.qmp("cont")
    q.qmp("announce-self", initial=50, max=100, rounds=1, step=50)
    got = plug.recv_matching(lambda f: f[6:12] == NIC_MAC and f[12:14] == ETH_RARP, 10)
    assert got is not None, "no RARP from QEMU's NIC reached the plug"
    assert got[:6] == BROADCAST
    wait_for(lambda: counters(sw.cmd("port/print"), port)[0] >= 1, what="QEMU's IN counter")
    # plug -> switch -> QEMU: a broadcast, then a unicast to the learned MAC.
    before = counters(sw.cmd("port/print"), port)[1]
    plug.send(frame(BROADCAST, mac(1), b"to everybody"))
    wait_for(lambda: counters(sw.cmd("port/print"), port)[1] >= before + 1,
             what="QEMU's OUT counter after a broadcast")
    other.drain(0.3)
    plug.send(frame(NIC_MAC, mac(1), b"to QEMU only"))
    wait_for(lambda: counters(sw.cmd("port/print"), port)[1] >= before + 2,
             what="QEMU's OUT counter after a unicast")
    assert [f for f in other.drain(0.3) if f[6:12] == mac(1)] == []   # learned: not flooded
    assert q.proc.poll() is None
    q.close()
