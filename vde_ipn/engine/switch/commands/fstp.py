"""Fast spanning tree commands: fstp/* (2.3.2 layouts and answers).

Besides the context of ``__init__.py`` these use ``fstp_on``,
``set_fstp(bool)``, ``set_fstp_edge(vlan, port, bool)``,
``set_fstp_bonus(vlan, port, cost)`` and ``fstp_print(vlan) -> lines``.
"""

from __future__ import annotations

import errno

from ....wire.ethernet import mac_str
from ..console import command, menu
from ._args import atoi, scan_ints

OK = 0
NUMOFVLAN = 4095

menu("fstp", "FAST SPANNING TREE MENU")


@command("fstp/showinfo", "", "show fstp info", data=True)
def _showinfo(ctx, arg):
    prio = ctx.priority
    return ["MAC %s Priority %d (0x%x)" % (mac_str(ctx.macaddr), prio, prio),
            "FSTP=%s" % ("true" if ctx.fstp_on else "false")], OK


@command("fstp/setfstp", "0/1", "Fast spanning tree protocol 1=ON 0=OFF", data=True)
def _setfstp(ctx, arg):
    if ctx.hub:                                  # answered in the data block, still 1000
        return ["Can't use fstp in hub mode"], OK
    ctx.set_fstp(atoi(arg) != 0)
    return [], OK


def _vlan_port_value(ctx, arg):
    """``%i %i %i`` as VLAN, port, value; (values, 0) or (None, errno)."""
    args = scan_ints(arg, 3)
    if args is None:
        return None, errno.EINVAL
    vlan, port, _ = args
    if not 0 <= vlan < NUMOFVLAN or not 0 <= port < ctx.net.numports:
        return None, errno.EINVAL
    if vlan not in ctx.net.vlans:
        return None, errno.ENXIO
    return args, OK


@command("fstp/setedge", "VLAN PORT 1/0", "Define an edge port for a vlan 1=Y 0=N")
def _setedge(ctx, arg):
    args, rc = _vlan_port_value(ctx, arg)
    if args is not None:
        ctx.set_fstp_edge(args[0], args[1], args[2] != 0)
    return None, rc


@command("fstp/bonus", "VLAN PORT COST", "set the port bonus for a vlan")
def _bonus(ctx, arg):
    args, rc = _vlan_port_value(ctx, arg)
    if args is not None:
        ctx.set_fstp_bonus(*args)
    return None, rc


@command("fstp/print", "[N]", "print fst data for the defined vlan", data=True)
def _print(ctx, arg):
    if arg:
        vlan = atoi(arg)
        if not 0 <= vlan < NUMOFVLAN - 1:      # 2.3.2 refuses 4094 here too
            return [], errno.EINVAL
        if vlan not in ctx.net.vlans:
            return [], errno.ENXIO
        return ctx.fstp_print(vlan), OK
    lines = []
    for vlan in sorted(ctx.net.vlans):
        lines += ctx.fstp_print(vlan)
    return lines, OK
