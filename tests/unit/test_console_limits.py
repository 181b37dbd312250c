"""Console arguments beyond what 2.3.2 stores: EINVAL, never an exception."""

import errno

import pytest

from vde_ipn.engine.switch import commands  # noqa: F401
from vde_ipn.engine.switch.commands._args import ID_MAX, atoi, parse_id, scan_ints
from vde_ipn.engine.switch.console import OutOfRange, execute
from vde_ipn.engine.bus import NO_USER, Network


class Ctx:
    def __init__(self):
        self.net = Network(8)

    user_name = group_name = staticmethod(str)
    lookup_user = lookup_group = staticmethod(lambda name: {"root": 0}.get(name))


@pytest.mark.parametrize("text", ["2147483648", "-2147483649", "99999999999999999999"])
def test_numbers_beyond_a_c_int_are_out_of_range(text):
    with pytest.raises(OutOfRange):
        atoi(text)
    with pytest.raises(OutOfRange):
        scan_ints("1 " + text, 2)


def test_numbers_within_range_parse_as_c_does():
    assert atoi(" -2147483648x") == -2**31 and atoi("2147483647") == 2**31 - 1
    assert scan_ints("0x10 010", 2) == [16, 8]
    assert parse_id("12abc") == 12 and parse_id("abc") is None and parse_id("²") is None
    assert parse_id(str(ID_MAX)) == ID_MAX
    with pytest.raises(OutOfRange):
        parse_id(str(ID_MAX + 1))


@pytest.mark.parametrize("line", [
    "port/setgroup 3 99999999999999999999", "port/setuser 3 4294967296",
    "port/setuser 3 4294967295", "port/setgroup 3 ²", "port/setuser 3 -5",
    "port/print 99999999999999999999", "vlan/create 4294967297", "hash/setsize 99999999999999999999",
    "port/setnumports 99999999999999999999", "port/setvlan 1 99999999999999999999",
])
def test_bad_arguments_answer_einval_and_change_nothing(line):
    ctx = Ctx()
    assert execute(ctx, "port/create 3").rc == 0
    res = execute(ctx, line)
    assert res.rc == errno.EINVAL, res
    port = ctx.net.ports[3]
    assert (port.acl_user, port.acl_group) == (NO_USER, NO_USER)
    assert execute(ctx, "port/allprint").rc == 0


def test_names_first_then_numbers_then_none():
    ctx = Ctx()
    execute(ctx, "port/create 3")
    assert execute(ctx, "port/setuser 3 root").rc == 0 and ctx.net.ports[3].acl_user == 0
    assert execute(ctx, "port/setuser 3 1000x").rc == 0 and ctx.net.ports[3].acl_user == 1000
    assert execute(ctx, "port/setuser 3 NONE").rc == 0
    assert ctx.net.ports[3].acl_user == NO_USER
    assert execute(ctx, "port/setuser 3 nosuchname").rc == errno.EINVAL
