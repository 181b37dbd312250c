"""FSTP with real processes: three switches cabled in a loop.

Switch A (priority 0x1000) must become the root; B and C (0x8000) reach it
directly, and the B-C cable is blocked at both ends, as 2.3.2 does it::

        A
    1 /   \\ 2
   1 B --- C 2        B:2 and C:1 Alternate/Backup
      2   1

Every switch has a listener plug on port 5.  Mixes of our switch and
Debian's ``vde_switch -F`` must agree on that tree, forward a broadcast
exactly once to each listener, and find the way round when the A-B cable
is cut.  Cables are our vde_plug's two-VNL form (A-B, A-C: one process
each, killed by PID to cut) and ``dpipe vde_plug = vde_plug`` of the C
tools for B-C.
"""

import os
import re
import signal
import time

import pytest

from support import (BROADCAST, C_TOOLS, OURS, Session, StreamPlug, attached, descendants, frame,
                     mac, require, wait_for)
from vde_ipn.wire import fstp_bpdu as wire

# c-c-c: the reference, proving these expectations are 2.3.2's own
MIXES = [("c", "c", "c"), ("ours", "ours", "ours"), ("c", "ours", "ours"), ("ours", "c", "c")]
CONVERGE = 20.0                 # seconds: a few 4-second hellos
PRIORITY = {"a": "0x1000", "b": "32768", "c": "32768"}


def roles(sw):
    """{port: role} and the ROOTSWITCH flag from ``fstp/print 0``."""
    out = sw.cmd("fstp/print 0")
    found = {}
    for line in out.splitlines():
        if line.startswith(" -- Port "):
            port = int(line.split()[2])
            found[port] = line.rsplit("role=", 1)[1]
    return "ROOTSWITCH" in out.splitlines()[1], found


def wait_tree(switches, expect, what):
    """Poll ``fstp/print`` until every switch shows ``expect``; the last
    answers go into the failure message."""
    seen = {}

    def done():
        seen.update((name, roles(sw)) for name, sw in switches.items())
        return seen == expect
    try:
        wait_for(done, CONVERGE, what)
    except AssertionError as e:
        raise AssertionError("%s; last seen %r" % (e, seen)) from None


def data_copies(plug, f, wait=2.0):
    return sum(1 for x in plug.drain(wait) if x == f)


@pytest.fixture
def loop3(procs, sockdir, new_switch, tree, request):
    kinds = request.param
    sw = {}
    for name, kind in zip("abc", kinds):
        n = "abc".index(name) + 1
        sw[name] = new_switch(kind, os.path.join(sockdir, name), "-F",
                              "--macaddr", "02:00:00:00:00:%02x" % n,
                              "--priority", PRIORITY[name])
    plugs = {name: StreamPlug(procs, C_TOOLS["vde_plug"], s.dir + "[5]")
             for name, s in sw.items()}
    for s in sw.values():
        attached(s, 1)
    vde_plug = require(OURS["vde_plug"])
    cables = {
        "ab": procs.start([vde_plug, sw["a"].dir + "[1]", sw["b"].dir + "[1]"]),
        "ac": procs.start([vde_plug, sw["a"].dir + "[2]", sw["c"].dir + "[2]"]),
    }
    bc = procs.start([require(C_TOOLS["dpipe"]), require(C_TOOLS["vde_plug"]),
                      sw["b"].dir + "[2]", "=", C_TOOLS["vde_plug"], sw["c"].dir + "[1]"])
    for s in sw.values():
        attached(s, 3)
    tree.extend(descendants(bc.pid))
    return sw, plugs, cables


EXPECTED = {
    "a": (True, {1: "Designated", 2: "Designated", 5: "Designated"}),
    "b": (False, {1: "Root", 2: "Alternate/Backup", 5: "Designated"}),
    "c": (False, {1: "Alternate/Backup", 2: "Root", 5: "Designated"}),
}
AFTER_CUT = {
    "a": (True, {2: "Designated", 5: "Designated"}),
    "b": (False, {2: "Root", 5: "Designated"}),
    "c": (False, {1: "Designated", 2: "Root", 5: "Designated"}),
}


@pytest.mark.parametrize("loop3", MIXES, indirect=True, ids=["-".join(m) for m in MIXES])
def test_loop_of_three_blocks_one_link_and_heals_when_cut(loop3):
    sw, plugs, cables = loop3
    wait_tree(sw, EXPECTED, "the loop to converge")
    root_line = sw["a"].cmd("fstp/print 0").splitlines()[2]
    assert root_line == " ++ root 10:00:02:00:00:00:00:01"
    for name in "bc":
        assert sw[name].cmd("fstp/print 0").splitlines()[2] == root_line

    for p in plugs.values():
        p.drain(0.1)
    f = frame(BROADCAST, mac(0x0b05), b"one broadcast in a loop")
    plugs["b"].send(f)
    copies = {name: data_copies(p, f) for name, p in plugs.items()}
    assert copies == {"a": 1, "b": 0, "c": 1}

    os.kill(cables["ab"].pid, signal.SIGKILL)       # cut B's root link
    cables["ab"].wait(timeout=5)
    wait_tree(sw, AFTER_CUT, "the loop to heal")
    g = frame(BROADCAST, mac(0x0a05), b"after the cut")
    # the tree is in place; the path B-C was discarding a moment ago, so
    # poll with fresh frames until one crosses (never more than one each)
    deadline = time.monotonic() + 10
    while True:
        plugs["a"].send(g)
        got = {name: data_copies(plugs[name], g, 0.5) for name in "bc"}
        if got == {"b": 1, "c": 1} or time.monotonic() > deadline:
            break
        assert max(got.values()) <= 1, got
    assert got == {"b": 1, "c": 1}
    assert data_copies(plugs["a"], g, 0.2) == 0


ME = b"\x02\x00\x00\x00\x00\x0a"
BETTER = wire.bridge_id(0x1000, b"\x02\x00\x00\x00\x00\x01")


@pytest.mark.parametrize("kind", ["ours", "c"])
def test_bpdus_and_events_match_2_3_2(procs, sockdir, new_switch, kind):
    """The same BPDU in gives the same BPDUs, events and fstp/print out."""
    sw = new_switch(kind, os.path.join(sockdir, "s"), "-F", "--macaddr", "02:00:00:00:00:0a")
    dbg = Session(sw.mgmt)
    try:
        assert dbg.cmd("debug/add fstp") == "1000 Success\n"
        plug = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir + "[1]")
        me = wire.bridge_id(0x8000, ME)
        # joining: our BPDU at once (designated, forwarding, no agreement)
        assert plug.recv(3.0) == wire.encode(ME, wire.Bpdu(0x3C, me, 0, me, b"\x80\x01"))
        plug.send(wire.encode(b"\x02\x00\x00\x00\x00\x01",
                              wire.Bpdu(0x3C, BETTER, 0, BETTER, b"\x80\x03")))
        # the new root port agrees: role root, forwarding, agreement, cost added
        answer = plug.recv_matching(lambda f: f[21] & wire.AGREEMENT, 3.0)
        assert answer == wire.encode(ME, wire.Bpdu(0x74, BETTER, 20000000, me, b"\x80\x01"))
        events = (dbg.until(b"\n3044 ") + "\n3044 " + dbg.until(b"\n")).splitlines()
        assert events == ["3041 fstp/+ Port 0001 VLAN 00:00",
                          "3045 fstp/root Port 0001 VLAN 00:00 -> 10:00:02:00:00:00:00:01",
                          "3044 fstp/status Port 0001 VLAN 00:00 learning+forwarding"]
        out = re.sub(r"age \d+", "age A", sw.cmd("fstp/print"))
        assert out == ("0000 DATA END WITH '.'\n"
                       "FST DATA VLAN 0000  \n"
                       " ++ root 10:00:02:00:00:00:00:01\n"
                       " ++ designated 10:00:02:00:00:00:00:01\n"
                       " ++ rootport 0001 cost 20000000 age A bonusport 0000 bonuscost 0\n"
                       " -- Port 0001 tagged=0 portcost=20000000 role=Root\n"
                       ".\n1000 Success\n")
        assert sw.cmd("fstp/showinfo").splitlines()[1:3] == [
            "MAC 02:00:00:00:00:0a Priority 32768 (0x8000)", "FSTP=true"]
    finally:
        dbg.close()
