"""802.1Q VLANs on a switch, ours beside the C one with the same commands."""

import os

import pytest

from support import (BROADCAST, C_TOOLS, OURS, StreamPlug, attached, frame, in_pkts, mac,
                     wait_for)


def tagged(dst, src, vid, payload=b""):
    return frame(dst, src, payload, size=64, tag=vid)


def untag(f):
    return f[:12] + f[16:]


@pytest.fixture(params=["ours", "c"])
def vlan_switch(request, procs, sockdir, new_switch):
    """Ports 1,2 untagged in VLAN 10; port 3 a trunk (VLAN 10 tagged); port 4 in VLAN 0."""
    sw = new_switch(request.param, os.path.join(sockdir, "sw"))
    plugs = {n: StreamPlug(procs, C_TOOLS["vde_plug"], "vde://%s[%d]" % (sw.dir, n))
             for n in (1, 2, 3, 4)}
    attached(sw, 4)
    for line in ("vlan/create 10", "port/setvlan 1 10", "port/setvlan 2 10",
                 "vlan/addport 10 3", "port/setvlan 3 4095"):
        assert sw.cmd(line).strip().endswith("1000 Success"), line
    return sw, plugs


def test_access_port_frames_stay_in_their_vlan(vlan_switch):
    sw, p = vlan_switch
    f = frame(BROADCAST, mac(1), b"vlan ten")
    p[1].send(f)
    assert p[2].recv() == f
    assert p[3].recv() == tagged(BROADCAST, mac(1), 10, b"vlan ten")[:64]
    assert p[4].drain() == []


def test_trunk_frames_are_untagged_for_access_ports(vlan_switch):
    sw, p = vlan_switch
    t = tagged(BROADCAST, mac(3), 10, b"from trunk")
    p[3].send(t)
    assert p[1].recv() == untag(t)
    assert p[2].recv() == untag(t)
    assert p[4].drain() == []


def test_other_vlans_do_not_cross(vlan_switch):
    sw, p = vlan_switch
    p[4].send(frame(BROADCAST, mac(4), b"vlan zero"))
    p[3].send(tagged(BROADCAST, mac(3), 20, b"vlan twenty"))   # not a VLAN of the trunk
    wait_for(lambda: in_pkts(sw, 4) == 1 and in_pkts(sw, 3) == 1, what="both frames read")
    # the switch still forwards: a VLAN 10 frame sent after them arrives,
    # and it is the only frame any port got
    f = frame(BROADCAST, mac(1), b"vlan ten, after")
    p[1].send(f)
    assert p[2].recv() == f
    assert p[3].recv() == tagged(BROADCAST, mac(1), 10, b"vlan ten, after")
    got = {n: p[n].drain() for n in (1, 2, 3, 4)}
    assert got == {1: [], 2: [], 3: [], 4: []}, "a frame crossed into another VLAN"


def test_learned_unicast_crosses_the_trunk_tagged(vlan_switch):
    sw, p = vlan_switch
    p[3].send(tagged(BROADCAST, mac(3), 10))          # mac(3) learned on the trunk, VLAN 10
    p[1].recv(), p[2].recv()
    f = frame(mac(3), mac(1), b"unicast")
    p[1].send(f)
    got = p[3].recv()
    assert got is not None and untag(got) == f and got[12:16] == b"\x81\x00\x00\x0a"
    assert p[2].drain() == []


@pytest.mark.parametrize("far", ["ours", "c"])
def test_trunk_between_two_switches(procs, sockdir, new_switch, far):
    """An access port of VLAN 10 on one switch reaches one on a second switch
    over a tagged trunk cabled with vde_plug; VLAN 0 stays apart."""
    near = new_switch("ours", os.path.join(sockdir, "near"))
    other = new_switch(far, os.path.join(sockdir, "far"))
    cable = procs.start([OURS["vde_plug"], "vde://%s[3]" % near.dir, "vde://%s[3]" % other.dir])
    a = StreamPlug(procs, C_TOOLS["vde_plug"], "vde://%s[1]" % near.dir)
    z = StreamPlug(procs, C_TOOLS["vde_plug"], "vde://%s[1]" % other.dir)
    y = StreamPlug(procs, C_TOOLS["vde_plug"], "vde://%s[2]" % other.dir)
    attached(near, 2)
    attached(other, 3)
    for sw in (near, other):
        for line in ("vlan/create 10", "port/setvlan 1 10", "vlan/addport 10 3"):
            assert sw.cmd(line).strip().endswith("1000 Success"), line
    f = frame(BROADCAST, mac(1), b"across")
    a.send(f)
    assert z.recv() == f
    assert y.drain() == []
    assert cable.poll() is None
