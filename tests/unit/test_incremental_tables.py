"""The switch's lookup tables, patched port by port, against a rebuild.

Joins, leaves and reconfigurations update the tables incrementally (and
the routes are built lazily); after every step of a random sequence the
tables must say exactly what tables rebuilt from scratch would say: the
flood and unicast egress keys of every VLAN and port, where a broadcast
really goes, the MAC index, the lowest free port and the spanning tree's
membership.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vde_ipn._errors import NoFreePort, PortInUse
from vde_ipn.engine.bus import Network
from vde_ipn.engine.egress import tag_key, untag_key
from vde_ipn.engine.switch.fstp import DISCARDING, FORWARDING, Fstp

NUMPORTS = 8
VLANS = (0, 1, 2)
NO_VLAN = 4095
BCAST = b"\xff" * 6

ports_ = st.integers(0, NUMPORTS - 1)
vlans_ = st.sampled_from(VLANS)
ops = st.one_of(
    st.tuples(st.just("join"), st.one_of(st.none(), ports_)),
    st.tuples(st.just("leave"), st.integers(0, 30)),
    st.tuples(st.just("setvlan"), ports_, st.sampled_from(VLANS + (NO_VLAN,))),
    st.tuples(st.just("addtag"), ports_, vlans_),
    st.tuples(st.just("deltag"), ports_, vlans_),
    st.tuples(st.just("create"), st.integers(1, NUMPORTS - 1)),
    st.tuples(st.just("remove"), st.integers(1, NUMPORTS - 1)),
    st.tuples(st.just("allocatable"), ports_, st.booleans()),
    st.tuples(st.just("fstp_state"), vlans_, ports_, st.booleans()),
    st.tuples(st.just("fstp_on"), st.booleans()),
    st.tuples(st.just("learn"), ports_, st.integers(1, 5), st.one_of(st.none(), vlans_)),
)


def frame(dst, src, vlan=None):
    tag = b"" if vlan is None else bytes((0x81, 0, vlan >> 8, vlan & 0xFF))
    f = dst + src + tag + b"\x88\xb5"
    return f + b"\0" * (64 - len(f))


def mac(n):
    return bytes([2, 0, 0, 0, 0, n])


def reference(net, fstp, vlan):
    """Flood and unicast keys of ``vlan``, computed from scratch."""
    ports = net.ports
    stopped = fstp.blocked.get(vlan, ())
    active = [n for n in sorted(ports) if ports[n].endpoints]
    members = [n for n in active if n not in stopped
               and (ports[n].vlan == vlan or vlan in ports[n].tagged)]

    def key(m, tagged_in):
        out_tagged = vlan in ports[m].tagged
        if tagged_in:
            return m if out_tagged else untag_key(m)
        return tag_key(m, vlan) if out_tagged else m
    flood = {(n, t): tuple(key(m, t) for m in members if m != n)
             for n in ports for t in (False, True)}
    single = {(m, t): () if m in stopped else (key(m, t),)
              for m in ports for t in (False, True)}
    return flood, single


def lowest_free(net):
    for n in range(1, net.numports):
        p = net.ports.get(n)
        if p is None or (p.allocatable and not p.endpoints):
            return n
    return None


class Run:
    def __init__(self):
        self.net = Network(NUMPORTS, "switch")
        self.net.vlans.update(VLANS)
        self.fstp = Fstp(b"\x02" * 6)
        self.net.policy.use_fstp(self.fstp, lambda out: None)
        self.eps = {}                     # endpoint id -> port
        self.next_ep = 0
        self.now = 0.0

    def apply(self, op):
        net, policy, kind = self.net, self.net.policy, op[0]
        self.now += 1.0
        if kind == "join":
            try:
                ep = net.attach(self.next_ep, op[1])
            except (NoFreePort, PortInUse):
                return
            self.eps[self.next_ep] = ep.port
            self.next_ep += 1
        elif kind == "leave" and self.eps:
            ep = sorted(self.eps)[op[1] % len(self.eps)]
            net.detach(ep, self.eps.pop(ep))
        elif kind in ("setvlan", "addtag", "deltag") and op[1] in net.ports:
            p = net.ports[op[1]]
            if kind == "setvlan":
                p.vlan = op[2]
                p.discard_tagged(op[2])
            elif kind == "addtag" and p.vlan != op[2]:
                p.add_tagged(op[2])
            elif kind == "deltag":
                p.discard_tagged(op[2])
            policy.config_changed(op[1])
        elif kind == "create" and op[1] not in net.ports:
            net.create_port(op[1])
            policy.config_changed(op[1])
        elif kind == "remove" and op[1] in net.ports and not net.ports[op[1]].endpoints:
            net.remove_port(op[1])
        elif kind == "allocatable" and op[1] in net.ports:
            net.ports[op[1]].allocatable = op[2]
        elif kind == "fstp_state":
            self.fstp._set_state(op[1], op[2], DISCARDING if op[3] else FORWARDING)
            self.fstp._done([])
        elif kind == "fstp_on":
            self.fstp.set_enabled(op[1], self.now)
            policy.config_changed(None)
        elif kind == "learn" and op[1] in net.ports and net.ports[op[1]].endpoints:
            # a unicast from a new MAC: learned, then routed through the tables
            net.receive(op[1], frame(mac(op[2]), mac(10 * op[1] + op[2]), op[3]), self.now)

    def check(self):
        net, policy, fstp = self.net, self.net.policy, self.fstp
        ports = net.ports
        for vlan in VLANS:
            flood, single = reference(net, fstp, vlan)
            for (n, t), keys in flood.items():
                assert policy.flood_keys(vlan, n, t) == keys, ("flood", vlan, n, t)
            for (m, t), keys in single.items():
                assert policy.single_keys(vlan, m, t) == keys, ("single", vlan, m, t)
        # where an untagged broadcast really goes, from every active port
        for n, p in ports.items():
            if not p.endpoints:
                continue
            src = b"\x03" + bytes(5)          # a group-bit source is never learned
            got = net.receive(n, frame(BCAST, src), self.now)
            blocked = fstp.enabled and n in fstp.blocked.get(p.vlan, ())
            if p.vlan == NO_VLAN or blocked:
                assert got == ()
            else:
                assert got == reference(net, fstp, p.vlan)[0][n, False]
        # the MAC table: only active ports, every entry indexed by its port
        for vlan, mac_, port, _seen in policy.table.entries():
            assert ports[port].endpoints, ("MAC left on an inactive port", port)
            assert (vlan, mac_) in policy.table.by_port[port]
        # the spanning tree knows each VLAN's active members
        for vlan, tree in fstp.trees.items():
            assert tree.untag == {n for n, p in ports.items() if p.endpoints and p.vlan == vlan}
            assert tree.tagged == {n for n, p in ports.items() if p.endpoints and vlan in p.tagged}
        want = lowest_free(net)
        try:
            assert net.pick_port(None) == want
        except NoFreePort:
            assert want is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, max_size=40))
def test_incremental_switch_tables_match_a_rebuild(steps):
    run = Run()
    run.check()
    for op in steps:
        run.apply(op)
        run.check()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.just("join"), st.one_of(st.none(), ports_)),
    st.tuples(st.just("leave"), st.integers(0, 30)),
    st.tuples(st.just("create"), st.integers(1, NUMPORTS - 1)),
    st.tuples(st.just("remove"), st.integers(1, NUMPORTS - 1)),
    st.tuples(st.just("numports"), st.integers(1, NUMPORTS))), max_size=40))
def test_incremental_hub_floods_and_free_ports_match_a_rebuild(steps):
    net, eps, next_ep = Network(NUMPORTS, "hub"), {}, 0
    for op in steps:
        if op[0] == "join":
            try:
                eps[next_ep] = net.attach(next_ep, op[1]).port
                next_ep += 1
            except (NoFreePort, PortInUse):
                pass
        elif op[0] == "leave" and eps:
            ep = sorted(eps)[op[1] % len(eps)]
            net.detach(ep, eps.pop(ep))
        elif op[0] == "create" and op[1] not in net.ports and op[1] < net.numports:
            net.create_port(op[1], allocatable=True)
            net.policy.config_changed(op[1])
        elif op[0] == "remove" and op[1] in net.ports and not net.ports[op[1]].endpoints:
            net.remove_port(op[1])
        elif op[0] == "numports":
            try:
                net.set_numports(op[1])
            except PortInUse:
                pass
        active = [n for n in sorted(net.ports) if net.ports[n].endpoints and n != 0]
        for n in net.ports:
            assert net.policy.route(n, b"", 0) == tuple(m for m in active if m != n)
        want = lowest_free(net)
        try:
            assert net.pick_port(None) == want
        except NoFreePort:
            assert want is None


def test_kvde_policy_forgets_a_leaving_port_through_the_index():
    """kvde_switch's policy learns into the same table: its entries must
    be indexed too, or a port that left would keep its MACs."""
    from types import SimpleNamespace

    from vde_ipn.engine.ipn.vdeswitch import VdeSwitch
    policy = VdeSwitch(SimpleNamespace(port=0, readers=(1, 2, 3), maxports=8))
    policy.members_changed()
    policy.learn(1, frame(BCAST, mac(1)), 0.0)
    policy.learn(2, frame(BCAST, mac(2)), 0.0)
    policy.learn(2, frame(BCAST, mac(1)), 1.0)          # mac 1 moved to port 2
    policy.delport(2)
    assert policy.table.lookup(mac(1)) is None and policy.table.lookup(mac(2)) is None
    policy.learn(3, frame(BCAST, mac(3)), 2.0)
    policy.delport(1)                                    # nothing of port 3 goes
    assert policy.table.lookup(mac(3)) == (3, 2.0)
