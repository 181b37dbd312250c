"""The sans-IO engine: ports, policies, MAC learning, aging, counters."""

import pytest

from vde_ipn._errors import NoFreePort, PortInUse
from vde_ipn.engine.bus import Network
from vde_ipn.testing import FakeClock

from support import BROADCAST as BCAST
from support import frame as eth
from support import mac


def net_with(policy, n_ports=3, numports=32, **kw):
    net = Network(numports, policy, **kw)
    for i in range(n_ports):
        net.attach(100 + i, None, "ep%d" % i)
    return net


# -- conformance: every policy -------------------------------------------------
@pytest.mark.parametrize("policy", ["hub", "switch"])
def test_broadcast_reaches_every_other_port(policy):
    net = net_with(policy, 4)
    assert net.receive(2, eth(BCAST, mac(2)), 0) == (1, 3, 4)


@pytest.mark.parametrize("policy", ["hub", "switch"])
def test_never_back_to_ingress(policy):
    net = net_with(policy, 3)
    for dst in (BCAST, mac(1), mac(2), mac(99)):
        for port in (1, 2, 3):
            assert port not in net.receive(port, eth(dst, mac(port)), 0)


@pytest.mark.parametrize("policy", ["hub", "switch"])
def test_detached_port_gets_nothing(policy):
    net = net_with(policy, 3)
    assert net.detach(101, 2) is True
    assert net.receive(1, eth(BCAST, mac(1)), 0) == (3,)


@pytest.mark.parametrize("policy", ["hub", "switch"])
def test_runts_and_oversize_are_dropped_and_counted(policy):
    net = net_with(policy, 2, max_frame=1518)
    assert net.receive(1, b"\x01" * 13, 0) == ()
    assert net.receive(1, eth(BCAST, mac(1), size=1519), 0) == ()
    assert net.receive(1, eth(BCAST, mac(1), size=1518), 0) == (2,)
    p = net.ports[1]
    assert p.drops == {"runt": 1, "oversize": 1}
    assert (p.in_pkts, p.in_bytes) == (1, 1518)
    assert (net.ports[2].out_pkts, net.ports[2].out_bytes) == (1, 1518)


def test_hub_never_sends_to_port_0():
    net = net_with("hub", 2)
    net.attach(50, 0, "mgmt")
    assert net.receive(1, eth(BCAST, mac(1)), 0) == (2,)


# -- learning switch -------------------------------------------------------------
def test_switch_learns_and_unicasts():
    net = net_with("switch", 3)
    assert net.receive(2, eth(mac(1), mac(2)), 0) == (1, 3)     # unknown: flood
    assert net.receive(1, eth(mac(2), mac(1)), 0) == (2,)       # learned
    assert net.receive(3, eth(mac(1), mac(3)), 0) == (1,)


def test_switch_drops_unicast_to_ingress_port():
    net = net_with("switch", 3)
    net.receive(1, eth(BCAST, mac(1)), 0)
    assert net.receive(1, eth(mac(1), mac(9)), 0) == ()


def test_switch_floods_multicast_even_if_learned():
    net = net_with("switch", 3)
    group = bytes([1, 0, 0x5E, 0, 0, 1])
    net.receive(2, eth(BCAST, group), 0)         # a group source is never learned
    assert net.receive(1, eth(group, mac(1)), 0) == (2, 3)


def test_switch_min_persistence_stops_flapping():
    clock = FakeClock()
    net = net_with("switch", 3)
    net.receive(1, eth(BCAST, mac(7)), clock())
    clock.advance(1)
    net.receive(2, eth(BCAST, mac(7)), clock())      # too soon: stays on port 1
    assert net.receive(3, eth(mac(7), mac(3)), clock()) == (1,)
    clock.advance(4)
    net.receive(2, eth(BCAST, mac(7)), clock())      # 5 s since last seen on 1
    assert net.receive(3, eth(mac(7), mac(3)), clock()) == (2,)


def test_switch_aging_forgets_after_expire():
    clock = FakeClock()
    net = net_with("switch", 3)
    net.receive(2, eth(BCAST, mac(2)), clock())
    clock.advance(99)
    net.expire(clock())
    assert net.receive(1, eth(mac(2), mac(1)), clock()) == (2,)
    clock.advance(2)                                  # 101 s since mac(2) was seen
    net.expire(clock())
    assert net.receive(1, eth(mac(2), mac(1)), clock()) == (2, 3)


def test_switch_keeps_learned_macs_when_other_ports_come_and_go():
    net = net_with("switch", 3)
    net.receive(2, eth(BCAST, mac(2)), 0)
    net.attach(200, None, "newcomer")                  # port 4 joins
    net.detach(102, 3)                                # port 3 leaves
    assert net.receive(1, eth(mac(2), mac(1)), 0) == (2,)


def test_switch_forgets_the_macs_of_a_port_that_leaves():
    net = net_with("switch", 3)
    net.receive(2, eth(BCAST, mac(2)), 0)
    net.detach(101, 2)
    net.attach(101, 2, "back")
    assert net.receive(1, eth(mac(2), mac(1)), 0) == (2, 3)


def test_switch_drops_tagged_frames_on_untagged_ports():
    net = net_with("switch", 2)
    tagged = BCAST + mac(1) + b"\x81\x00\x00\x0a\x88\xb5" + b"\0" * 42
    assert net.receive(1, tagged, 0) == ()
    assert net.ports[1].drops == {"vlan": 1}


def test_switch_keys_by_vlan():
    net = net_with("switch", 4)
    for p in (3, 4):
        net.ports[p].vlan = 10
        net.policy.config_changed(p)
    assert net.receive(1, eth(BCAST, mac(1)), 0) == (2,)
    assert net.receive(3, eth(BCAST, mac(3)), 0) == (4,)
    assert net.receive(4, eth(mac(1), mac(4)), 0) == (3,)      # mac(1) unknown in VLAN 10


# -- port allocation --------------------------------------------------------------
def test_any_port_is_the_lowest_free_one():
    net = net_with("switch", 3)
    net.detach(101, 2)
    assert net.attach(300, None).port == 2
    assert net.attach(301, None).port == 4


def test_specific_port_and_several_endpoints():
    net = Network(8)
    assert net.attach(1, 5, user=1000).port == 5
    assert net.attach(2, 5, user=1000).port == 5
    assert sorted(net.ports[5].endpoints) == [1, 2]
    with pytest.raises(PortInUse):
        net.attach(3, 5, user=1001)
    assert net.detach(1, 5) is False and net.detach(2, 5) is True


def test_no_free_port():
    net = Network(2)                                  # port 0 + one client port
    net.attach(1, None)
    with pytest.raises(NoFreePort):
        net.attach(2, None)
    with pytest.raises(NoFreePort):
        net.attach(3, 2)                              # out of range
    assert net.attach(4, 0).port == 0                 # the management port


def test_created_ports_are_not_allocatable():
    net = Network(8)
    net.create_port(1)
    assert net.attach(1, None).port == 2
    assert net.attach(2, 1).port == 1                 # but can be asked for by number


def test_counters_reset():
    net = net_with("hub", 2)
    net.receive(1, eth(BCAST, mac(1)), 0)
    assert net.ports[1].statistics()["in_pkts"] == 1
    net.ports[1].reset_counters()
    assert net.ports[1].statistics() == {"in_pkts": 0, "in_bytes": 0, "out_pkts": 0,
                                         "out_bytes": 0, "drops": {}}


def test_unknown_policy_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown delivery policy 'mesh'"):
        Network(8, "mesh")


# -- VLANs: egress keys ------------------------------------------------------------
from vde_ipn.engine import egress  # noqa: E402


def vlan_net():
    """Ports 1,2 untagged in VLAN 10; port 3 a trunk carrying 10 tagged; port 4 in VLAN 0."""
    net = net_with("switch", 4)
    for p in (1, 2):
        net.ports[p].vlan = 10
    net.ports[3].vlan = 4095
    net.ports[3].add_tagged(10)
    for p in (1, 2, 3):                  # once per reconfigured port, as the console does
        net.policy.config_changed(p)
    return net


def tagged(dst, src, vid, size=64):
    return eth(dst, src, size=size, tag=vid)


def test_untagged_frame_is_tagged_towards_a_trunk():
    net = vlan_net()
    f = eth(BCAST, mac(1))
    keys = net.receive(1, f, 0)
    assert sorted(egress.port_of(k) for k in keys) == [2, 3]
    out = {egress.port_of(k): egress.rewrite(k, f) for k in keys}
    assert out[2] == f
    assert out[3] == tagged(BCAST, mac(1), 10)


def test_tagged_frame_is_untagged_towards_access_ports():
    net = vlan_net()
    f = tagged(BCAST, mac(3), 10)
    keys = net.receive(3, f, 0)
    out = {egress.port_of(k): egress.rewrite(k, f) for k in keys}
    assert sorted(out) == [1, 2]
    assert out[1] == eth(BCAST, mac(3))


def test_learned_unicast_across_a_trunk_is_rewritten():
    net = vlan_net()
    net.receive(3, tagged(BCAST, mac(3), 10), 0)          # mac(3) learned on the trunk
    f = eth(mac(3), mac(1))
    (key,) = net.receive(1, f, 0)
    assert egress.port_of(key) == 3
    assert egress.rewrite(key, f) == tagged(mac(3), mac(1), 10, size=64)
    (key,) = net.receive(3, tagged(mac(1), mac(3), 10), 0)
    assert key == egress.untag_key(1)


def test_vlans_do_not_leak():
    net = vlan_net()
    assert net.receive(4, eth(BCAST, mac(4)), 0) == ()      # VLAN 0 has only port 4
    assert net.receive(3, tagged(BCAST, mac(3), 20), 0) == ()   # trunk does not carry 20
    assert net.ports[3].drops == {"vlan": 1}
