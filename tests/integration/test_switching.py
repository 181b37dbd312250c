"""Switching between real plug processes: every switch/plug pairing.

Each check runs on the four pairings of our tools and Debian's C tools,
so the C-with-C run shows the expected behaviour and the others must
match it.
"""

import os
import re

import pytest

from support import BROADCAST, C_TOOLS, OURS, StreamPlug, attached, frame, mac, wait_for

PAIRS = [("ours", "c"), ("c", "ours"), ("ours", "ours"), ("c", "c")]


def plug_tool(kind):
    return OURS["vde_plug"] if kind == "ours" else C_TOOLS["vde_plug"]


@pytest.fixture(params=PAIRS, ids=["%s-switch-%s-plugs" % p for p in PAIRS])
def pairing(request):
    return request.param


def test_broadcast_reaches_every_other_port(procs, sockdir, new_switch, pairing):
    sw_kind, plug_kind = pairing
    sw = new_switch(sw_kind, os.path.join(sockdir, "sw"))
    plugs = [StreamPlug(procs, plug_tool(plug_kind), sw.dir) for _ in range(3)]
    attached(sw, 3)
    f = frame(BROADCAST, mac(1), b"hello all")
    plugs[0].send(f)
    assert plugs[1].recv() == f
    assert plugs[2].recv() == f
    assert plugs[0].drain() == []          # never back to the sender


def test_learned_unicast_reaches_only_its_port(procs, sockdir, new_switch, pairing):
    sw_kind, plug_kind = pairing
    sw = new_switch(sw_kind, os.path.join(sockdir, "sw"))
    a, b, c = (StreamPlug(procs, plug_tool(plug_kind), sw.dir) for _ in range(3))
    attached(sw, 3)
    b.send(frame(BROADCAST, mac(2)))        # the switch learns mac(2) on b's port
    assert a.recv() is not None and c.recv() is not None
    f = frame(mac(2), mac(1), b"only for b")
    a.send(f)
    assert b.recv() == f
    assert c.drain() == []


def test_unknown_unicast_floods(procs, sockdir, new_switch, pairing):
    sw_kind, plug_kind = pairing
    sw = new_switch(sw_kind, os.path.join(sockdir, "sw"))
    a, b, c = (StreamPlug(procs, plug_tool(plug_kind), sw.dir) for _ in range(3))
    attached(sw, 3)
    f = frame(mac(77), mac(1))
    a.send(f)
    assert b.recv() == f and c.recv() == f


def test_hub_mode_repeats_unicast(procs, sockdir, new_switch, pairing):
    sw_kind, plug_kind = pairing
    sw = new_switch(sw_kind, os.path.join(sockdir, "sw"), "-x")
    a, b, c = (StreamPlug(procs, plug_tool(plug_kind), sw.dir) for _ in range(3))
    attached(sw, 3)
    b.send(frame(BROADCAST, mac(2)))
    a.recv(), c.recv()
    f = frame(mac(2), mac(1))
    a.send(f)
    assert b.recv() == f and c.recv() == f  # a hub does not learn


def test_specific_and_management_ports(procs, sockdir, new_switch, pairing):
    sw_kind, plug_kind = pairing
    sw = new_switch(sw_kind, os.path.join(sockdir, "sw"))
    p5 = StreamPlug(procs, plug_tool(plug_kind), "vde://%s[5]" % sw.dir)
    p0 = StreamPlug(procs, plug_tool(plug_kind), "%s[0]" % sw.dir)
    anyp = StreamPlug(procs, plug_tool(plug_kind), "-D", "anyport", sw.dir)
    attached(sw, 3)
    text = sw.cmd("port/print")
    assert "Port 0005 " in text and "Port 0000 " in text and "Port 0001 " in text
    assert ": anyport user=" in text
    f = frame(BROADCAST, mac(9))
    p5.send(f)                               # in switch mode port 0 switches like any port
    assert anyp.recv() == f and p0.recv() == f


def test_description_in_port_print(procs, sockdir, new_switch, pairing):
    sw_kind, plug_kind = pairing
    sw = new_switch(sw_kind, os.path.join(sockdir, "sw"))
    StreamPlug(procs, plug_tool(plug_kind), "--descr", "my cable", sw.dir)
    attached(sw, 1)
    text = sw.cmd("port/print")
    assert "module unix prog   : my cable user=" in text
    assert " pid=" in text


@pytest.mark.parametrize("plug_kind", ["c", "ours"])
def test_port_freed_when_plug_exits(procs, sockdir, new_switch, plug_kind):
    """Only on our switch: 2.3.2 sometimes keeps a ghost endpoint after the
    client is gone (its fd-to-slot map goes stale), so it cannot serve as
    the reference here."""
    sw = new_switch("ours", os.path.join(sockdir, "sw"))
    p = StreamPlug(procs, plug_tool(plug_kind), sw.dir)
    attached(sw, 1)
    assert p.close() == 0
    attached(sw, 0)
    assert sorted(os.listdir(sw.dir)) == ["ctl"]   # its data socket is gone


def test_switch_exit_ends_the_plug(procs, sockdir, new_switch, pairing):
    sw_kind, plug_kind = pairing
    sw = new_switch(sw_kind, os.path.join(sockdir, "sw"))
    p = StreamPlug(procs, plug_tool(plug_kind), sw.dir)
    attached(sw, 1)
    # the switch lists a port as soon as it has replied; a frame it counted
    # shows that the plug has finished connecting too
    p.send(frame(BROADCAST, mac(1)))
    wait_for(lambda: re.search(r"IN:  pkts +1 ", sw.cmd("port/print")), what="the frame")
    sw.stop()
    status = p.proc.wait(timeout=5)
    # ours always notices the closed control connection and exits 0; vdeplug4
    # races it with a failing data socket and then exits 1 (seen on 2.3.2 too)
    assert status == 0 if plug_kind == "ours" else status in (0, 1)
    assert not os.path.exists(sw.dir)


@pytest.mark.parametrize("plug_kind", ["c", "ours"])
def test_learned_macs_survive_a_port_joining(procs, sockdir, new_switch, plug_kind):
    """Ours keeps switching a learned MAC when another port joins; 2.3.2
    flushes its whole table on every port change and floods instead."""
    results = {}
    for sw_kind in ("ours", "c"):
        sw = new_switch(sw_kind, os.path.join(sockdir, sw_kind))
        a, b, c = (StreamPlug(procs, plug_tool(plug_kind), sw.dir) for _ in range(3))
        attached(sw, 3)
        b.send(frame(BROADCAST, mac(2)))
        assert a.recv() is not None and c.recv() is not None
        StreamPlug(procs, plug_tool(plug_kind), sw.dir)   # a fourth port joins
        attached(sw, 4)
        f = frame(mac(2), mac(1), b"after the join")
        a.send(f)
        assert b.recv() == f
        results[sw_kind] = c.drain() != []
    assert results == {"ours": False, "c": True}
