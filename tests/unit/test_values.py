"""The value classes that replace dataclasses in what the switch loads."""

import subprocess
import sys

import pytest

from vde_ipn.engine.bus import Endpoint
from vde_ipn.io.switch.server import SwitchConfig
from vde_ipn.wire.fstp_bpdu import Bpdu
from vde_ipn.wire.values import FrozenValue, Value


class Pair(FrozenValue):
    __slots__ = ("a", "b")

    def __init__(self, a, b=2):
        self._init(a, b)


class Box(Value):
    __slots__ = ("x",)

    def __init__(self, x):
        self.x = x


def test_frozen_value_repr_equality_hash():
    assert repr(Pair(1)) == "Pair(a=1, b=2)"
    assert Pair(1) == Pair(1, 2) and Pair(1) != Pair(1, 3)
    assert Pair(1) != (1, 2)                     # another class never compares equal
    assert hash(Pair(1, "x")) == hash(Pair(1, "x"))
    assert len({Pair(1), Pair(1), Pair(2)}) == 2


def test_frozen_value_is_read_only_and_has_no_dict():
    p = Pair(1)
    with pytest.raises(AttributeError):
        p.a = 5
    with pytest.raises(AttributeError):
        del p.b
    with pytest.raises(AttributeError):
        p.other = 1
    assert not hasattr(p, "__dict__") and p.a == 1


def test_mutable_value_compares_but_does_not_hash():
    b = Box(1)
    b.x = 2
    assert b == Box(2) and repr(b) == "Box(x=2)"
    with pytest.raises(TypeError):
        hash(b)


def test_switch_records_keep_their_constructors():
    ep = Endpoint(7, 3, None, user=1000)
    assert (ep.id, ep.port, ep.description, ep.module, ep.user) == (7, 3, None, "unix prog", 1000)
    assert repr(ep) == "Endpoint(id=7, port=3, description=None, module='unix prog', user=1000)"
    assert not hasattr(ep, "__dict__")
    b = Bpdu(0, b"r" * 8, 4, b"b" * 8, b"\x80\x01", fwd_delay=15)
    assert b == Bpdu(0, b"r" * 8, 4, b"b" * 8, b"\x80\x01", 0, b.max_age, b.hello, 15)
    cfg = SwitchConfig(sock="/tmp/x", hub=True)
    assert (cfg.sock, cfg.hub, cfg.numports, cfg.lossless) == ("/tmp/x", True, 32, False)
    assert SwitchConfig().sock                       # the default directory, as before


def test_the_switch_does_not_load_dataclasses_or_ipaddress():
    code = ("import sys, vde_ipn.cli.switch, vde_ipn.io.switch.server, "
            "vde_ipn.engine.switch.commands, vde_ipn.io.switch.plugins; "
            "print(sorted(m for m in ('dataclasses', 'inspect', 'ipaddress', 'typing') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         check=True, cwd=__file__.rsplit("/tests/", 1)[0]).stdout
    assert out.strip() == "[]"


def test_ports_share_empty_tagged_and_drops_until_they_need_their_own():
    from vde_ipn.engine.bus import Network, RUNT
    net = Network(8)
    a, b = net.create_port(1), net.create_port(2)
    assert a.tagged == frozenset() and a.drops == {}
    a.add_tagged(10)
    a.add_tagged(20)
    a.discard_tagged(20)
    a.discard_tagged(30)                         # not there: nothing happens
    assert a.tagged == {10} and b.tagged == frozenset()
    a.count_drop(RUNT)
    a.count_drop(RUNT, 2)
    assert a.drops == {RUNT: 3} and b.drops == {}
    assert a.statistics()["drops"] == {RUNT: 3} and b.statistics()["drops"] == {}
    a.reset_counters()
    assert a.drops == {} and b.drops == {}
    with pytest.raises(AttributeError):
        b.tagged.add(5)                          # the shared empty set cannot change
