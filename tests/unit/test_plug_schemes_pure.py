"""The pure parts of the vdeplug4 schemes: nested VNLs, VLAN views, agno frames,
multilink policies."""

import pytest

from vde_ipn.engine.bus import Network
from vde_ipn.wire import agno
from vde_ipn.wire.vlan_view import VlanView, parse_tag_list
from vde_ipn.wire.vnl import split_nested


def eth(payload=b"x" * 46, etype=b"\x88\xb5"):
    return b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + etype + payload


def tag(frame, vlan, tpid=b"\x81\x00"):
    return frame[:12] + tpid + vlan.to_bytes(2, "big") + frame[12:]


@pytest.mark.parametrize("arg,expected", [
    ("3{vde:///tmp/sw}", ("3", "vde:///tmp/sw")),
    ("3/trunk", ("3/trunk", None)),
    ("3{vlan://4{ptp:///x}}", ("3", "vlan://4{ptp:///x}")),
    ("'{'x{y}", ("'{'x", "y")),
    ("\\{a{b}c", ("\\{a", "b")),
    ("a{b", ("a", "b")),
    ("{}", ("", "")),
    ("k{'}'x}", ("k", "'}'x")),
])
def test_split_nested(arg, expected):
    assert split_nested(arg) == expected


def test_tag_lists():
    assert parse_tag_list("10:11-12.12-11") == ((10, 10), (11, 12), (12, 11))
    assert parse_tag_list("0x10:010") == ((16, 16), (8, 8))
    assert parse_tag_list("5") == ((5, 5),)
    assert parse_tag_list("") == ()


def test_untagged_vlan_view():
    v = VlanView(3)
    f = eth()
    assert v.to_net(f) == tag(f, 3)
    assert v.from_net(tag(f, 3)) == f
    assert v.from_net(f) is None                 # untagged traffic is not VLAN 3
    assert v.from_net(tag(f, 4)) is None
    assert v.to_net(tag(f, 4)) is None
    assert v.from_net(tag(f, (7 << 13) | 3)) == f  # priority bits do not matter


def test_tag_list_trunk_and_untag():
    v = VlanView(0, tag2untag=7, tags=parse_tag_list("5-6:17"), trunk=False)
    f = eth()
    assert v.to_net(tag(f, 5)) == tag(f, 6)
    assert v.from_net(tag(f, 6)) == tag(f, 5)
    assert v.to_net(tag(f, 17)) == tag(f, 17)
    assert v.to_net(tag(f, 9)) is None
    assert v.from_net(f) == tag(f, 7)            # untagged seen as tagged 7
    assert v.to_net(tag(f, 7)) == f              # and back
    assert v.to_net(f) is None                   # untagged from the host: nowhere
    t = VlanView(0, trunk=True)
    assert t.to_net(tag(f, 9)) == tag(f, 9) and t.from_net(tag(f, 9)) == tag(f, 9)
    for reserved in (1, 4095):                   # never valid in a list or trunk
        assert t.to_net(tag(f, reserved)) is None
    q = VlanView(5, qinq=True)
    assert q.to_net(f) == tag(f, 5, b"\x88\xa8")
    assert q.from_net(tag(f, 5)) is None         # an 802.1Q tag is not the outer tag
    assert VlanView(4095).to_net(f) is None


def test_agno_key_file_as_the_c_plugin_reads_it():
    assert agno.key_from_text(b"00112233445566778899aabbccddeeff") == \
        bytes.fromhex("00112233445566778899aabbccddeeff")
    # uppercase A counts as 1, B-F as expected; other characters are skipped
    assert agno.key_from_text(b"AB cd\n") == bytes([0x1B, 0xCD]) + bytes(14)
    assert agno.key_from_text(b"0123456789abcdef0123456789abcdef99") == \
        bytes.fromhex("0123456789abcdef0123456789abcdef")
    with pytest.raises(agno.AgnoError):
        agno.key_from_text(b"x\n")


@pytest.mark.parametrize("text,value", [("", 0xA6DE), ("0", 0xA6DE), ("copy", 0),
                                        ("ipv4", 0x800), ("ipv6", 0x86DD),
                                        ("rand", 0xFFFF), ("0x600", 0x600), ("2048", 0x800)])
def test_agno_ethtype(text, value):
    assert agno.parse_ethtype(text) == value


@pytest.mark.parametrize("text", ["12", "0xffff", "what", "0x5ff"])
def test_agno_bad_ethtype(text):
    with pytest.raises(agno.AgnoError):
        agno.parse_ethtype(text)


@pytest.mark.parametrize("size", [14, 15, 29, 30, 31, 46, 60, 1514])
def test_agno_round_trip(size):
    c = agno.AgnoCipher(bytes(range(16)))
    f = (eth(bytes(range(256)) * 6))[:size]
    wire = c.encrypt(f, 1000, b"salt")
    assert len(wire) == 30 + (-(size - 14) % 16) + size - 14
    assert wire[:12] == f[:12] and wire[12:14] == b"\xa6\xde"
    assert c.decrypt(wire, 1000) == f
    assert c.decrypt(wire, 999) == f and c.decrypt(wire, 1002) == f
    assert c.decrypt(wire, 998) is None and c.decrypt(wire, 1003) is None   # stale/future
    assert agno.AgnoCipher(bytes(16)).decrypt(wire, 1000) is None             # other key
    assert c.decrypt(wire[:29], 1000) is None


def test_agno_salt_changes_everything():
    c = agno.AgnoCipher(bytes(range(16)), agno.ETHTYPE_COPY)
    f = eth()
    a, b = c.encrypt(f, 5, b"1111"), c.encrypt(f, 5, b"2222")
    assert a[12:14] == f[12:14] and a[14:] != b[14:] and a[30:46] != b[30:46]


@pytest.mark.parametrize("policy", ["multi", "bonding"])
def test_multilink_policies(policy):
    net = Network(8, "hub")
    for ep, port in ((100, 1), (101, 2), (102, 3), (103, 4)):
        net.attach(ep, port)
    net.set_policy(policy, host=1)
    f = eth()
    assert net.receive(2, f, 0) == (1,) and net.receive(4, f, 0) == (1,)
    outs = [net.receive(1, f, 0) for _ in range(6)]
    if policy == "multi":
        assert outs == [(2, 3, 4)] * 6
    else:
        assert sorted(o for (o,) in outs) == [2, 2, 3, 3, 4, 4]
        assert outs[:3] != outs[1:4] and outs[:3] == outs[3:]
    net.detach(101, 2)
    assert all(2 not in net.receive(1, f, 0) for _ in range(3))
    net.detach(100, 1)
    assert net.receive(3, f, 0) == ()             # no host: nowhere to go
