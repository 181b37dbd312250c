"""The monitor port and the capture, on a switch served in this process.

Every test runs on the batched path (recvmmsg/sendmmsg) and the plain
one.  Ports: 1 = a, 2 = b (two hosts), 5 = the monitor.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess

import pytest

import support
from support import drain, require
from vde_ipn.engine.switch import console
from vde_ipn.engine.bus import MONITOR
from vde_ipn.engine.switch.monitor import MonitorSelection, parse_selection
from vde_ipn.io import _mmsg
from vde_ipn.io.switch.console import SessionView
from vde_ipn.io.switch.datasock import Batcher
from vde_ipn.io.loop import Loop
from vde_ipn.io.switch.server import SwitchConfig, SwitchServer
from vde_ipn.wire import pcap

needs_mmsg = pytest.mark.skipif(not _mmsg.AVAILABLE, reason="no recvmmsg/sendmmsg in libc")
PATHS = [pytest.param("batched", marks=needs_mmsg), "plain"]
A = b"\x02\x00\x00\x00\x00\x0a"
B = b"\x02\x00\x00\x00\x00\x0b"
BCAST = b"\xff" * 6
TCPDUMP = next((p for p in ("/usr/bin/tcpdump", "/usr/sbin/tcpdump") if os.path.exists(p)),
               "/usr/bin/tcpdump")


def frame(dst, src, n=0, tag=None):
    """Frame number ``n`` (in its first payload bytes)."""
    return support.frame(dst, src, struct.pack("!I", n), tag=tag)


def turn(loop):
    loop.call_later(0, lambda now: loop.stop())
    loop.run()


@pytest.fixture(params=PATHS)
def switch(request, sockdir, monkeypatch):
    if request.param == "plain":
        monkeypatch.setattr(Batcher, "create", staticmethod(lambda: None))
    loop = Loop()
    server = SwitchServer(SwitchConfig(sock=os.path.join(sockdir, "sw")), loop)
    server.start()
    socks = {}
    for name, port in (("a", 1), ("b", 2)):
        socks[name] = server.attach_local(name, port)
        socks[name].setblocking(False)
    yield loop, server, socks
    server.close()
    loop.close()


def run(server, line):
    res = console.execute(SessionView(server), line)
    return res.lines, res.rc


def learn(loop, socks, *others):
    """a and b announce themselves; the switch then sends unicast to one port.
    The floods are drained from a, b and ``others``."""
    socks["a"].send(frame(BCAST, A))
    socks["b"].send(frame(BCAST, B))
    turn(loop)
    for sock in (socks["a"], socks["b"]) + others:
        drain(sock)


def test_monitor_sees_unicast_between_two_other_ports_once(switch):
    loop, server, socks = switch
    assert run(server, "monitor/set 5") == (None, 0)
    mon = server.attach_local("sniffer", 5)
    mon.setblocking(False)
    learn(loop, socks, mon)
    socks["a"].send(frame(B, A, 1))
    socks["b"].send(frame(A, B, 2))
    socks["a"].send(frame(BCAST, A, 3))
    turn(loop)
    assert drain(socks["b"]) == [frame(B, A, 1), frame(BCAST, A, 3)]
    got = drain(mon)
    # each frame once: unicast by copy, the broadcast by the normal flood
    assert sorted(got) == sorted([frame(B, A, 1), frame(A, B, 2), frame(BCAST, A, 3)])
    lines, rc = run(server, "monitor/showinfo")
    assert rc == 0 and lines == ["Monitor port 5 watching ports all vlans all",
                                 "copies 2 dropped 0"]


def test_without_monitor_the_port_gets_only_floods_and_nothing_is_observed(switch):
    loop, server, socks = switch
    other = server.attach_local("other", 5)
    other.setblocking(False)
    learn(loop, socks, other)
    assert server.net.observer is None
    socks["a"].send(frame(B, A, 1))
    turn(loop)
    assert drain(other) == []


def test_monitor_port_is_not_given_to_clients_asking_for_any_port(switch):
    loop, server, socks = switch
    run(server, "monitor/set 3")
    for _ in range(3):
        server.attach_local("any")
    assert 3 not in {ep.port for ep in server.endpoints.values()}
    assert run(server, "monitor/off") == (None, 0)
    assert run(server, "monitor/off")[1] != 0
    assert server.net.ports[3].allocatable


def test_selection_by_port_and_vlan(switch):
    loop, server, socks = switch
    c = server.attach_local("c", 3)
    c.setblocking(False)
    C = b"\x02\x00\x00\x00\x00\x0c"
    run(server, "monitor/set 5 3")               # only what touches port 3
    mon = server.attach_local("sniffer", 5)
    mon.setblocking(False)
    learn(loop, socks)
    c.send(frame(BCAST, C))
    turn(loop)
    drain(mon), drain(socks["a"]), drain(socks["b"])
    socks["a"].send(frame(B, A, 1))              # 1 -> 2: not chosen
    socks["a"].send(frame(C, A, 2))              # 1 -> 3: chosen (egress)
    c.send(frame(A, C, 3))                        # 3 -> 1: chosen (ingress)
    turn(loop)
    assert sorted(drain(mon)) == sorted([frame(C, A, 2), frame(A, C, 3)])
    run(server, "monitor/set 5 all 7")           # VLAN 7 only: nothing here is on it
    socks["a"].send(frame(B, A, 4))
    turn(loop)
    assert drain(mon) == []


def test_stopped_monitor_drops_and_counts_while_forwarding_goes_on(switch):
    """The sniffer never reads: its copies are dropped and counted, a to b loses nothing."""
    loop, server, socks = switch
    run(server, "monitor/set 5")
    mon = server.attach_local("stopped sniffer", 5)
    mon.setblocking(False)
    ep = next(e for e in server.endpoints.values() if e.port == 5)
    ep.data.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    learn(loop, socks, mon)
    got, total = [], 3000
    for i in range(total):
        socks["a"].send(frame(B, A, i))
        if i % 10 == 9:                          # fewer than a reader takes per turn
            turn(loop)
            got += drain(socks["b"])
    turn(loop)
    got += drain(socks["b"])
    assert [struct.unpack_from("!I", f, 14)[0] for f in got] == list(range(total))
    assert server.net.ports[2].drops == {}
    dropped = server.net.ports[5].drops.get(MONITOR, 0)
    kept = len(drain(mon))
    assert dropped > 0 and kept > 0
    assert kept + dropped == total
    assert run(server, "monitor/showinfo")[0][1] == "copies %d dropped %d" % (total, dropped)


def test_dump_writes_every_frame_tcpdump_reads_it(switch, tmp_path):
    loop, server, socks = switch
    path = str(tmp_path / "all.pcap")
    assert run(server, "dump/start " + path) == (None, 0)
    assert run(server, "dump/start " + path)[1] != 0        # one capture at a time
    learn(loop, socks)
    socks["a"].send(frame(B, A, 1))
    socks["b"].send(b"\x01" * 10)                          # a runt: not accepted
    turn(loop)
    assert run(server, "dump/showinfo") == (["Dump %s frames 3 bytes 180" % path], 0)
    assert run(server, "dump/stop") == (None, 0)
    assert run(server, "dump/showinfo") == (["Dump off"], 0)
    with open(path, "rb") as f:
        header, records = pcap.read_records(f)
        frames = [r.data for r in records]
    assert header.linktype == pcap.LINKTYPE_ETHERNET
    assert frames == [frame(BCAST, A), frame(BCAST, B), frame(B, A, 1)]
    out = subprocess.run([require(TCPDUMP), "-r", path, "-nn", "-e"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert len([line for line in out.stdout.splitlines() if line[:1].isdigit()]) == 3
    assert "02:00:00:00:00:0a > 02:00:00:00:00:0b" in out.stdout


def test_dump_into_a_missing_directory_fails_cleanly(switch):
    loop, server, socks = switch
    lines, rc = run(server, "dump/start /nonexistent/dir/x.pcap")
    assert rc == 2                                          # ENOENT
    assert server.net.observer is None


def test_monitor_and_dump_together(switch, tmp_path):
    loop, server, socks = switch
    run(server, "dump/start %s" % (tmp_path / "x.pcap"))
    run(server, "monitor/set 5")
    mon = server.attach_local("sniffer", 5)
    mon.setblocking(False)
    learn(loop, socks)
    socks["a"].send(frame(B, A, 1))
    turn(loop)
    assert frame(B, A, 1) in drain(mon)
    assert server.dump_statistics()["frames"] == 3
    server.close()                                          # closes the capture too
    assert server.dump_statistics() is None


# -- the selection, pure ------------------------------------------------------------
def test_parse_selection():
    assert parse_selection("5", 32) == MonitorSelection(5)
    assert parse_selection("5 1,3-4 all", 32) == MonitorSelection(5, frozenset({1, 3, 4}))
    assert parse_selection("5:all:0,10", 32) == MonitorSelection(5, None, frozenset({0, 10}))
    for bad in ("", "0", "32", "x", "5 1,x", "5 40", "5 all 5000", "1 2 3 4"):
        with pytest.raises(ValueError):
            parse_selection(bad, 32)


def test_wants_tagged_frames_by_their_tag():
    sel = MonitorSelection(5, None, frozenset({7}))
    assert sel.wants(1, frame(B, A, tag=7), (2,), 0)
    assert not sel.wants(1, frame(B, A, tag=8), (2,), 7)
    assert sel.wants(1, frame(B, A), (2,), 7)              # untagged: the port's VLAN
    assert not sel.wants(5, frame(B, A), (2,), 7)          # from the monitor itself
    assert not sel.wants(1, frame(B, A), (5,), 7)          # already going there


@pytest.mark.skipif(not _mmsg.AVAILABLE, reason="no recvmmsg/sendmmsg in libc")
def test_copies_count_as_out_only_once_sent():
    """A batch of copies: OUT counts those that left; a copy that failed to
    send is a send_error drop, never also OUT."""
    from vde_ipn.engine.bus import SEND_ERROR, Port
    from vde_ipn.io.switch.monitor import CopySender
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ours.setblocking(False)
    theirs.setblocking(False)
    batcher = Batcher()
    port = Port(5)
    copies = CopySender(ours, port, batcher)
    frames = [frame(b"\x02" * 6, b"\x04" * 6, i) for i in range(5)]
    batcher.holding = True
    for f in frames:
        copies.send(f)
    batcher.flush()
    assert drain(theirs) == frames
    assert (port.out_pkts, port.out_bytes, port.drops) == (5, sum(map(len, frames)), {})
    theirs.close()                       # every send now fails
    batcher.holding = True
    for f in frames[:3]:
        copies.send(f)
    batcher.flush()
    assert port.drops == {SEND_ERROR: 3}
    assert (port.out_pkts, port.out_bytes) == (5, sum(map(len, frames)))
    ours.close()
