"""VXLAN header codec and MAC-to-peer learning (pure)."""

import pytest

from vde_ipn.engine.overlay import PeerTable
from vde_ipn.wire import vxlan as vx

from support import BROADCAST as BCAST
from support import frame as eth
from support import mac as m


def test_header_layout():
    assert vx.header(0x123456) == bytes.fromhex("0800000012345600")
    assert vx.header(1) == bytes.fromhex("0800000000000100")
    with pytest.raises(ValueError):
        vx.header(1 << 24)


def test_decapsulate_checks_vni_and_flags():
    f = eth(BCAST, m(1))
    d = vx.encapsulate(vx.header(42), f)
    assert vx.decapsulate(d, 42) == f
    assert vx.decapsulate(d, 43) is None
    assert vx.decapsulate(b"\x00" + d[1:], 42) is None
    odd = d[:1] + b"\x01" + d[2:]               # reserved byte set
    assert vx.decapsulate(odd, 42) == f          # vxlan: tolerated
    assert vx.decapsulate(odd, 42, strict=True) is None   # vxvde: rejected
    assert vx.decapsulate(vx.header(42), 42, strict=True) == b""     # goodbye
    assert vx.decapsulate(vx.header(42) + f[:14], 42) is None        # too short
    assert vx.vni_of(d) == 42 and vx.vni_of(b"xx") is None


def test_group_with_gid():
    assert vx.group_with_gid(bytes((239, 0, 0, 1)), 0x010203) == bytes((239, 1, 2, 3))
    assert vx.group_with_gid(bytes((239, 0, 0, 1)), None) == bytes((239, 0, 0, 1))


def test_learning_unicast_flood_and_expiry():
    t = PeerTable(expire=10)
    assert t.destination(eth(m(2), m(1)), 0) is None          # unknown: flood
    t.learn(eth(BCAST, m(2)), ("10.0.0.2", 4789), 1)
    assert t.destination(eth(m(2), m(1)), 5) == ("10.0.0.2", 4789)
    assert t.destination(eth(BCAST, m(1)), 5) is None         # broadcast: flood
    assert t.destination(eth(m(2), m(1)), 12) is None         # expired
    assert (t.unicast, t.flooded) == (1, 3)


def test_learning_moves_and_goodbye():
    t = PeerTable()
    t.learn(eth(BCAST, m(2)), "a", 0)
    t.learn(eth(BCAST, m(3)), "a", 0)
    t.learn(eth(BCAST, m(2)), "b", 1)
    assert t.lookup(m(2), 2) == "b" and t.learned == 3
    assert t.forget_peer("a") == 1 and t.lookup(m(3), 2) is None
    t.learn(eth(BCAST, BCAST), "c", 2)                        # group source: ignored
    assert len(t) == 1


def test_table_size_is_bounded():
    t = PeerTable(size=4)
    for i in range(10):
        t.learn(eth(BCAST, m(i)), i, i)
    assert len(t) == 4 and t.lookup(m(9), 9) == 9 and t.lookup(m(0), 9) is None
