"""FSTP: BPDU codec, the per-VLAN state machine, and switches cabled in memory.

A ``Lab`` holds engine switches (Network + Fstp) whose ports are joined by
cables or carry a host; frames and BPDUs travel through a queue, time is a
fake clock, so loops and reconvergence are exact and fast.
"""

import collections
import errno

import pytest

from vde_ipn.engine.switch import commands  # noqa: F401  (fills the command table)
from vde_ipn.engine.bus import Network
from vde_ipn.engine.switch.console import execute
from vde_ipn.engine.egress import port_of, rewrite, tag_key
from vde_ipn.engine.switch.fstp import DEFAULT_COST, DISCARDING, FORWARDING, Fstp
from vde_ipn.testing import FakeClock
from vde_ipn.wire import fstp_bpdu as wire

from support import frame as eth

BCAST = b"\xff" * 6
STORM = 2000                     # deliveries after which a flood counts as endless


class Sw:
    def __init__(self, lab, n, priority=0x8000):
        self.lab, self.n = lab, n
        self.mac = bytes([2, 0, 0, 0, 0, n])
        self.net = Network(8, "switch")
        self.fstp = Fstp(self.mac, priority, origin=0.0)
        self.events = []
        self.fstp.listeners.append(lambda c, m: self.events.append((c, m)))
        self.net.policy.use_fstp(self.fstp, lambda out: lab.emit(self, out))
        self.fstp.set_enabled(True, lab.clock())
        self.net.policy.config_changed(None)

    def roles(self, vlan=0):
        return {p: self.fstp.role(vlan, p) for p in self.fstp.tree(vlan).ports()}


class Lab:
    def __init__(self):
        self.clock = FakeClock(0.0)
        self.switches = []
        self.links = {}                       # (sw, port) -> (sw, port)
        self.hosts = {}                       # (sw, port) -> data frames received
        self.host_bpdus = collections.Counter()  # (sw, port) -> BPDUs received
        self.dead = set()                     # switches that neither send nor hear
        self.queue = collections.deque()
        self.delivered = 0
        self.bpdus = 0

    def switch(self, n, priority=0x8000):
        sw = Sw(self, n, priority)
        self.switches.append(sw)
        return sw

    def cable(self, a, pa, b, pb):
        self.links[a, pa] = (b, pb)
        self.links[b, pb] = (a, pa)
        a.net.attach(1000 + pa, pa, "cable")
        b.net.attach(1000 + pb, pb, "cable")
        self.run()

    def cut(self, a, pa):
        b, pb = self.links.pop((a, pa))
        del self.links[b, pb]
        a.net.detach(1000 + pa, pa)
        b.net.detach(1000 + pb, pb)
        self.run()

    def host(self, sw, port):
        sw.net.attach(2000 + port, port, "host")
        self.hosts[sw, port] = []
        self.run()
        return self.hosts[sw, port]

    def emit(self, sw, out):
        for key, frame in out:
            self.bpdus += 1
            self.queue.append((sw, key, rewrite(key, frame)))

    def inject(self, sw, port, frame):
        for key in sw.net.receive(port, frame, self.clock()):
            self.queue.append((sw, key, rewrite(key, frame)))
        return self.run()

    def run(self, limit=STORM):
        """Deliver until quiet; False if still busy after ``limit`` frames."""
        n = 0
        while self.queue:
            sw, key, frame = self.queue.popleft()
            n += 1
            self.delivered += 1
            if n > limit:
                self.queue.clear()
                return False
            port = port_of(key)
            if sw in self.dead:
                continue
            if (sw, port) in self.hosts:
                if wire.is_bpdu(frame):
                    self.host_bpdus[sw, port] += 1
                else:
                    self.hosts[sw, port].append(frame)
            elif (sw, port) in self.links:
                peer, pport = self.links[sw, port]
                if peer in self.dead:
                    continue
                for k in peer.net.receive(pport, frame, self.clock()):
                    self.queue.append((peer, k, rewrite(k, frame)))
        return True

    def tick(self, seconds):
        """Let time pass with a hello every 4 s on every switch."""
        for _ in range(int(seconds // wire.HELLO)):
            self.clock.advance(wire.HELLO)
            for sw in self.switches:
                self.emit(sw, sw.fstp.hello(self.clock()))
            assert self.run(), "BPDUs did not settle"


def triangle(lab):
    a, b, c = lab.switch(1, 0x1000), lab.switch(2), lab.switch(3)
    lab.cable(a, 1, b, 1)
    lab.cable(b, 2, c, 1)
    lab.cable(c, 2, a, 2)
    lab.tick(8)
    return a, b, c


# -- the wire format -------------------------------------------------------------
def test_bpdu_bytes_match_the_c_layout():
    b = wire.Bpdu(0x3C | 0x40, wire.bridge_id(0x8000, b"\x02\0\0\0\0\x01"), 20000000,
                  wire.bridge_id(0x1234, b"\x02\0\0\0\0\x02"), wire.port_id(0x23), age=300)
    f = wire.encode(b"\x02\0\0\0\0\x02", b)
    assert len(f) == wire.FRAME_LEN == 53
    assert f[:14] == wire.BPDU_DST + b"\x02\0\0\0\0\x02\x00\x27"
    assert f[14:21] == b"\x42\x42\x03\x00\x00\x02\x02"
    assert f[21] == 0x7C
    assert f[22:30] == b"\x80\x00\x02\0\0\0\0\x01"
    assert f[30:34] == (20000000).to_bytes(4, "big")
    assert f[34:42] == b"\x12\x34\x02\0\0\0\0\x02"
    assert f[42:44] == b"\x82\x23"               # 0x80 | port >> 4, port & 0xff
    assert f[44:53] == b"\x2c\x01\x28\x00\x04\x00\x00\x00\x00"   # low byte first
    assert wire.decode(f) == b
    tagged = rewrite(tag_key(1, 10), f)
    assert wire.decode(tagged, tagged=True) == b


def test_decode_refuses_what_the_c_switch_calls_faulty():
    f = wire.encode(b"\x02" * 6, wire.Bpdu(0, b"\0" * 8, 0, b"\0" * 8, b"\x80\x01"))
    assert wire.decode(f[:51]) is not None and wire.decode(f[:50]) is None
    assert wire.decode(f[:19] + b"\x03" + f[20:]) is None        # version 3
    assert wire.decode(f[:20] + b"\x00" + f[21:]) is None        # type 0


# -- loops -------------------------------------------------------------------------
def test_without_fstp_a_triangle_storms():
    lab = Lab()
    a, b, c = lab.switch(1), lab.switch(2), lab.switch(3)
    for sw in (a, b, c):
        sw.fstp.set_enabled(False, 0)
        sw.net.policy.config_changed(None)
    lab.cable(a, 1, b, 1)
    lab.cable(b, 2, c, 1)
    lab.cable(c, 2, a, 2)
    lab.host(a, 5)
    assert lab.inject(a, 5, eth(BCAST, b"\x02\0\0\0\1\1")) is False


def test_triangle_converges_on_the_lowest_bridge_id():
    lab = Lab()
    a, b, c = triangle(lab)
    assert [sw.fstp.is_root(0) for sw in (a, b, c)] == [True, False, False]
    assert a.roles() == {1: "Designated", 2: "Designated"}
    assert b.roles() == {1: "Root", 2: "Alternate/Backup"}
    assert c.roles() == {1: "Alternate/Backup", 2: "Root"}
    assert c.fstp.tree(0).rootcost == DEFAULT_COST
    assert (b.fstp.state(0, 2), c.fstp.state(0, 1)) == (DISCARDING, DISCARDING)
    assert b.fstp.state(0, 1) == FORWARDING


def test_a_broadcast_in_a_converged_loop_arrives_once_everywhere():
    lab = Lab()
    a, b, c = triangle(lab)
    ha, hb, hc = lab.host(a, 5), lab.host(b, 5), lab.host(c, 5)
    f = eth(BCAST, b"\x02\0\0\0\1\1", b"once")
    assert lab.inject(b, 5, f) is True
    assert (ha, hb, hc) == ([f], [], [f])
    # no data left through the discarding ends of the B-C link
    assert b.net.ports[2].out_pkts == 0 and c.net.ports[1].out_pkts == 0


def test_unicast_avoids_the_blocked_link_and_discarding_ports_drop_input():
    lab = Lab()
    a, b, c = triangle(lab)
    hb, hc = lab.host(b, 5), lab.host(c, 5)
    mb, mc = b"\x02\0\0\0\2\5", b"\x02\0\0\0\3\5"
    lab.inject(c, 5, eth(BCAST, mc))
    f = eth(mc, mb, b"to c")
    assert lab.inject(b, 5, f) is True
    assert hc.count(f) == 1 and b.net.ports[2].out_pkts == 0
    # a frame arriving on C's discarding port 1 is dropped and counted
    assert c.net.receive(1, eth(BCAST, mb), lab.clock()) == ()
    assert c.net.ports[1].drops == {"fstp": 1}


def test_cutting_a_tree_link_reconverges_at_once():
    lab = Lab()
    a, b, c = triangle(lab)
    lab.cut(a, 1)                              # B loses its root port
    assert b.roles() == {2: "Root"} and c.roles() == {1: "Designated", 2: "Root"}
    assert b.fstp.tree(0).root == a.fstp.myid and b.fstp.tree(0).rootcost == 2 * DEFAULT_COST
    ha, hb = lab.host(a, 5), lab.host(b, 5)
    f = eth(BCAST, b"\x02\0\0\0\1\5", b"after the cut")
    lab.inject(a, 5, f)
    assert ha == [] and hb == [f]


def test_root_gone_silent_is_replaced_after_three_hellos():
    lab = Lab()
    a, b, c = triangle(lab)
    lab.switches.remove(a)                     # A hangs: its cables stay plugged
    lab.dead.add(a)
    lab.tick(12)
    assert not b.fstp.is_root(0)
    lab.tick(4)
    assert b.fstp.is_root(0) and c.fstp.tree(0).root == b.fstp.myid
    assert ("fstp/root", "Port 0000 VLAN 00:00 -> 80:00:02:00:00:00:00:02") in b.events


def test_backup_port_whose_peer_goes_quiet_forwards_again():
    lab = Lab()
    a, b, c = triangle(lab)
    c.fstp.set_edge(0, 1, True)                # C stops speaking FSTP towards B
    lab.tick(36)                               # heard in one of the two last windows
    assert b.fstp.state(0, 2) == DISCARDING
    lab.tick(4)
    assert b.fstp.state(0, 2) == FORWARDING and b.roles()[2] == "Designated"
    assert ("fstp/-", "Port 0002 VLAN 00:00") in b.events


def test_bonus_changes_the_root_port():
    lab = Lab()
    a, b, c = lab.switch(1, 0x1000), lab.switch(2), lab.switch(3)
    c.fstp.set_bonus(0, 1, DEFAULT_COST + 1)  # the long way through B looks cheaper
    lab.cable(a, 1, b, 1)
    lab.cable(b, 2, c, 1)
    lab.cable(c, 2, a, 2)
    lab.tick(8)
    assert c.roles() == {1: "Root", 2: "Alternate/Backup"}
    assert a.roles()[2] == "Alternate/Backup" and b.roles()[2] == "Designated"


def test_edge_ports_get_no_bpdus():
    lab = Lab()
    a = lab.switch(1)
    lab.host(a, 3)
    lab.tick(4)
    assert lab.host_bpdus[a, 3] == 2           # on joining, then the hello
    a.fstp.set_edge(0, 3, True)
    lab.tick(8)
    assert lab.host_bpdus[a, 3] == 2 and a.roles() == {3: "Edge"}


def test_tagged_members_get_tagged_bpdus_and_their_own_tree():
    lab = Lab()
    a, b = lab.switch(1), lab.switch(2)
    for sw in (a, b):
        sw.net.vlans.add(10)
        sw.net.create_port(1, allocatable=True)
        sw.net.ports[1].add_tagged(10)
    lab.cable(a, 1, b, 1)
    out = a.fstp.hello(4.0)
    assert sorted(k for k, _ in out) == [1, tag_key(1, 10)]
    lab.tick(4)
    assert b.fstp.tree(10).rootport == 1 and b.fstp.tree(0).rootport == 1
    # 2.3.2 prints the role of tagged members as Unknown
    assert b.fstp.print_lines(10, 4)[-1] == " -- Port 0001 tagged=1 portcost=20000000 role=Unknown"


def test_topology_change_flushes_the_vlan_table():
    lab = Lab()
    a, b, c = triangle(lab)
    lab.host(b, 5)
    lab.inject(b, 5, eth(BCAST, b"\x02\0\0\0\2\5"))
    assert len(a.net.policy.table) == 1
    lab.cut(b, 2)                              # B tells its neighbours
    assert len(a.net.policy.table) == 0


def test_events_use_the_2_3_2_texts():
    lab = Lab()
    a, b, c = triangle(lab)
    assert ("fstp/root", "Port 0001 VLAN 00:00 -> 10:00:02:00:00:00:00:01") in b.events
    assert ("fstp/status", "Port 0002 VLAN 00:00 discarding") in b.events
    assert ("fstp/status", "Port 0001 VLAN 00:00 learning+forwarding") in b.events
    assert ("fstp/+", "Port 0001 VLAN 00:00") in b.events


def test_print_layout():
    lab = Lab()
    a, b, c = triangle(lab)
    assert a.fstp.print_lines(0, 9) == [
        "FST DATA VLAN 0000 ROOTSWITCH ",
        " ++ root 10:00:02:00:00:00:00:01",
        " ++ designated ff:ff:ff:ff:ff:ff:ff:ff",
        " ++ rootport 0000 cost 0 age 9 bonusport 0000 bonuscost 0",
        " -- Port 0001 tagged=0 portcost=20000000 role=Designated",
        " -- Port 0002 tagged=0 portcost=20000000 role=Designated"]
    b.fstp.set_enabled(False, 9)
    assert b.fstp.print_lines(0, 9)[:4] == [
        "FST DATA VLAN 0000 ROOTSWITCH FSTP IS DISABLED",
        " ++ root 80:00:02:00:00:00:00:02",
        " ++ designated ff:ff:ff:ff:ff:ff:ff:ff",
        " ++ rootport 0000 cost 0 age 9 bonusport 0000 bonuscost 0"]
    assert b.fstp.state(0, 2) == FORWARDING


def test_with_fstp_off_bpdus_are_plain_multicast_and_the_path_is_untouched():
    net = Network(8, "switch")
    net.policy.use_fstp(Fstp(b"\x02" * 6), lambda out: None)
    for i in (1, 2, 3):
        net.attach(i, i, "")
    assert "route" not in net.policy.__dict__
    bpdu = wire.encode(b"\x02\0\0\0\0\x09", wire.Bpdu(0, b"\0" * 8, 0, b"\0" * 8, b"\x80\x01"))
    assert net.receive(1, bpdu, 0) == (2, 3)


def test_switching_fstp_on_consumes_bpdus():
    net = Network(8, "switch")
    fstp, sent = Fstp(b"\x02" * 6), []
    net.policy.use_fstp(fstp, sent.extend)
    for i in (1, 2):
        net.attach(i, i, "")
    fstp.set_enabled(True, 0)
    net.policy.config_changed(None)
    bpdu = wire.encode(b"\x02\0\0\0\0\x09",
                       wire.Bpdu(0x0c, wire.bridge_id(0, b"\x02\0\0\0\0\x09"), 0,
                                 wire.bridge_id(0, b"\x02\0\0\0\0\x09"), b"\x80\x01"))
    assert net.receive(1, bpdu, 1) == ()
    assert fstp.tree(0).rootport == 1 and sent     # fast protocol agreed on port 1


# -- console commands ----------------------------------------------------------------
class Ctx:
    def __init__(self):
        self.net = Network(8, "switch")
        self.macaddr, self.priority = b"\x00\xff\x01\x02\x03\x04", 0x8000
        self.fstp = Fstp(self.macaddr, self.priority)
        self.net.policy.use_fstp(self.fstp, lambda out: None)

    hub = property(lambda self: self.net.policy.name == "hub")
    fstp_on = property(lambda self: self.fstp.enabled)

    def set_fstp(self, on):
        self.fstp.set_enabled(on, 0)

    def set_hub(self, on):
        self.net.set_policy("hub" if on else "switch")

    def set_fstp_edge(self, vlan, port, on):
        self.fstp.set_edge(vlan, port, on)

    def set_fstp_bonus(self, vlan, port, cost):
        self.fstp.set_bonus(vlan, port, cost)

    def fstp_print(self, vlan):
        return self.fstp.print_lines(vlan, 3)


def test_commands():
    ctx = Ctx()
    assert execute(ctx, "fstp/showinfo").lines[1] == "FSTP=false"
    assert execute(ctx, "fstp/setfstp 1").lines == []
    assert execute(ctx, "fstp/showinfo").lines == [
        "MAC 00:ff:01:02:03:04 Priority 32768 (0x8000)", "FSTP=true"]
    assert execute(ctx, "fstp/setedge 0 3 1").rc == 0 and 3 in ctx.fstp.tree(0).edge
    assert execute(ctx, "fstp/setedge 0 8 1").rc == errno.EINVAL
    assert execute(ctx, "fstp/setedge 5 1 1").rc == errno.ENXIO
    assert execute(ctx, "fstp/bonus 0 2").rc == errno.EINVAL
    assert execute(ctx, "fstp/bonus 0 0x2 7").rc == 0
    assert execute(ctx, "fstp/print").lines[3] == \
        " ++ rootport 0000 cost 0 age 3 bonusport 0002 bonuscost 7"
    assert (execute(ctx, "fstp/print 4094").rc, execute(ctx, "fstp/print 9").rc) == \
        (errno.EINVAL, errno.ENXIO)
    assert execute(ctx, "fstp/print 9").lines == []
    ctx.set_hub(True)
    res = execute(ctx, "fstp/setfstp 1")
    assert (res.lines, res.rc) == (["Can't use fstp in hub mode"], 0)
