"""Cables between switches: a C vde_switch and ours joined by plugs.

A cable is ``dpipe vde_plug A = vde_plug B`` (every mix of our and
Debian's vde_plug, under both dpipes), ``vde_plug A B`` or
``vde_plug A = vde_plug B``.  The endpoints that prove frames cross are
Debian's vde_plug processes, so only the cable under test varies.
"""

import os
import signal

import pytest

from support import (BROADCAST, C_TOOLS, OURS, StreamPlug, attached, descendants, frame, mac,
                     require, wait_for)

KINDS = ("ours", "c")


def tool(kind, name):
    return require(OURS[name] if kind == "ours" else C_TOOLS[name])


def check_crossing(procs, left, right):
    """A broadcast from each side reaches the other; a learned unicast returns."""
    a = StreamPlug(procs, C_TOOLS["vde_plug"], left.dir)
    b = StreamPlug(procs, C_TOOLS["vde_plug"], right.dir)
    attached(left, 2)
    attached(right, 2)
    f = frame(BROADCAST, mac(1), b"left to right")
    a.send(f)
    assert b.recv_matching(lambda x: x == f) == f
    g = frame(mac(1), mac(2), b"learned unicast back")
    b.send(g)
    assert a.recv_matching(lambda x: x == g) == g
    h = frame(BROADCAST, mac(2), b"right to left")
    b.send(h)
    assert a.recv_matching(lambda x: x == h) == h
    assert b.drain(0.2) == []               # nothing echoed back through the cable


SWITCH_ORDERS = [("c", "ours"), ("ours", "c")]
PLUG_PAIRS = [(x, y) for x in KINDS for y in KINDS]


@pytest.mark.parametrize("dpipe_kind", KINDS)
@pytest.mark.parametrize("plugs", PLUG_PAIRS, ids=["%s-%s-plugs" % p for p in PLUG_PAIRS])
@pytest.mark.parametrize("switches", SWITCH_ORDERS, ids=["%s-%s" % s for s in SWITCH_ORDERS])
def test_dpipe_cable(procs, sockdir, new_switch, tree, switches, plugs, dpipe_kind):
    left = new_switch(switches[0], os.path.join(sockdir, "l"))
    right = new_switch(switches[1], os.path.join(sockdir, "r"))
    cable = procs.start([tool(dpipe_kind, "dpipe"),
                         tool(plugs[0], "vde_plug"), "-D", "cable-l", left.dir, "=",
                         tool(plugs[1], "vde_plug"), "-D", "cable-r", right.dir])
    attached(left, 1)
    attached(right, 1)
    tree.extend(descendants(cable.pid))
    assert "cable-l user=" in left.cmd("port/print")
    assert "cable-r user=" in right.cmd("port/print")
    check_crossing(procs, left, right)


@pytest.mark.parametrize("dpipe_kind", KINDS)
def test_dpipe_cable_ends_when_a_switch_goes(procs, sockdir, new_switch, tree, dpipe_kind):
    left = new_switch("c", os.path.join(sockdir, "l"))
    right = new_switch("ours", os.path.join(sockdir, "r"))
    cable = procs.start([tool(dpipe_kind, "dpipe"),
                         tool("ours", "vde_plug"), left.dir, "=",
                         tool("ours", "vde_plug"), right.dir])
    attached(left, 1)
    attached(right, 1)
    tree.extend(descendants(cable.pid))
    right.stop()
    assert cable.wait(timeout=5) == 0       # the last command's status
    attached(left, 0)                        # and the other end let go of its port


@pytest.mark.parametrize("switches", SWITCH_ORDERS, ids=["%s-%s" % s for s in SWITCH_ORDERS])
@pytest.mark.parametrize("plug_kind", KINDS)
def test_two_vnl_cable(procs, sockdir, new_switch, switches, plug_kind):
    left = new_switch(switches[0], os.path.join(sockdir, "l"))
    right = new_switch(switches[1], os.path.join(sockdir, "r"))
    procs.start([tool(plug_kind, "vde_plug"), "-D", "xcable",
                 "vde://" + left.dir, right.dir])
    attached(left, 1)
    attached(right, 1)
    assert "xcable user=" in left.cmd("port/print")
    assert "xcable user=" in right.cmd("port/print")
    check_crossing(procs, left, right)


def test_two_vnl_cable_ports_and_exit(procs, sockdir, new_switch):
    """--port/--port2 choose each side's port; the cable ends with a switch."""
    left = new_switch("c", os.path.join(sockdir, "l"))
    right = new_switch("ours", os.path.join(sockdir, "r"))
    p = procs.start([tool("ours", "vde_plug"), "--port", "7", "--port2", "9",
                     left.dir, right.dir])
    attached(left, 1)
    attached(right, 1)
    assert "Port 0007 " in left.cmd("port/print")
    assert "Port 0009 " in right.cmd("port/print")
    left.stop()
    assert p.wait(timeout=5) == 0
    attached(right, 0)


@pytest.mark.parametrize("outer,inner", [("ours", "c"), ("c", "ours"), ("ours", "ours")])
def test_command_cable(procs, sockdir, new_switch, tree, outer, inner):
    """``vde_plug A = vde_plug B``: the command's stdin/stdout is the stream."""
    left = new_switch("c", os.path.join(sockdir, "l"))
    right = new_switch("ours", os.path.join(sockdir, "r"))
    p = procs.start([tool(outer, "vde_plug"), left.dir, "=",
                     tool(inner, "vde_plug"), right.dir])
    attached(left, 1)
    attached(right, 1)
    tree.extend(descendants(p.pid))
    check_crossing(procs, left, right)


def test_command_cable_ends_with_its_command(procs, sockdir, new_switch, tree):
    left = new_switch("c", os.path.join(sockdir, "l"))
    right = new_switch("ours", os.path.join(sockdir, "r"))
    p = procs.start([tool("ours", "vde_plug"), left.dir, "=",
                     tool("c", "vde_plug"), right.dir])
    attached(left, 1)
    attached(right, 1)
    tree.extend(descendants(p.pid))
    right.stop()                              # the inner plug exits ...
    assert p.wait(timeout=5) == 0             # ... and so does the outer one
    attached(left, 0)


def test_command_default_switch_form(procs, sockdir, new_switch, tree, tmp_path):
    """``vde_plug = cmd``: the default switch comes from ~/.vdeplug/default."""
    home = tmp_path / "home"
    (home / ".vdeplug").mkdir(parents=True)
    sw = new_switch("c", os.path.join(sockdir, "d"))
    os.symlink(sw.dir, str(home / ".vdeplug" / "default"))
    right = new_switch("ours", os.path.join(sockdir, "r"))
    env = dict(os.environ, HOME=str(home))
    p = procs.start([tool("ours", "vde_plug"), "=", tool("c", "vde_plug"), right.dir],
                    env=env)
    attached(sw, 1)
    attached(right, 1)
    tree.extend(descendants(p.pid))
    check_crossing(procs, sw, right)


def test_stream_plug_exits_on_its_input_end(procs, sockdir, new_switch):
    sw = new_switch("c", os.path.join(sockdir, "s"))
    p = StreamPlug(procs, OURS["vde_plug"], sw.dir)
    attached(sw, 1)
    assert p.close() == 0
    wait_for(lambda: "-- endpoint ID" not in sw.cmd("port/print"), what="port freed")
