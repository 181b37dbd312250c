"""VLAN commands: vlan/*."""

from __future__ import annotations

import errno

from ..console import command, menu
from ._args import atoi, scan_ints

OK = 0

menu("vlan", "VLAN MANAGEMENT MENU")


@command("vlan/create", "N", "create the VLAN with tag N")
def _create(ctx, arg):
    n = atoi(arg)
    if not 1 <= n <= 4093:
        return None, errno.EINVAL
    if n in ctx.net.vlans:
        return None, errno.EEXIST
    ctx.net.vlans.add(n)
    return None, OK


def _members(net, vlan):
    for n in sorted(net.ports):
        p = net.ports[n]
        if p.vlan == vlan:
            yield p, 0
        elif vlan in p.tagged:
            yield p, 1


@command("vlan/remove", "N", "remove the VLAN with tag N")
def _remove(ctx, arg):
    n = atoi(arg)
    net = ctx.net
    if not 0 <= n <= 4094:
        return None, errno.EINVAL
    if n not in net.vlans:
        return None, errno.ENXIO
    if any(True for _ in _members(net, n)):
        return None, errno.EADDRINUSE
    net.vlans.discard(n)
    return None, OK


def _vlan_and_port(ctx, arg):
    args = scan_ints(arg, 2)
    if args is None or not 0 <= args[0] <= 4094 or not 0 <= args[1] < ctx.net.numports:
        return None, errno.EINVAL
    vlan, n = args
    if vlan not in ctx.net.vlans or n not in ctx.net.ports:
        return None, errno.ENXIO
    return (vlan, ctx.net.ports[n]), OK


@command("vlan/addport", "N PORT", "add port to the vlan N (tagged)")
def _addport(ctx, arg):
    found, rc = _vlan_and_port(ctx, arg)
    if found is None:
        return None, rc
    vlan, port = found
    if port.vlan != vlan:
        port.add_tagged(vlan)
        ctx.net.policy.config_changed(port.number)
    return None, OK


@command("vlan/delport", "N PORT", "add port to the vlan N (tagged)")
def _delport(ctx, arg):
    found, rc = _vlan_and_port(ctx, arg)
    if found is None:
        return None, rc
    vlan, port = found
    if port.vlan == vlan:
        return None, errno.EADDRINUSE
    port.discard_tagged(vlan)
    ctx.net.policy.config_changed(port.number)
    return None, OK


def _print_vlans(ctx, arg, include_inactive):
    net = ctx.net
    if arg.strip():
        n = atoi(arg)
        if include_inactive and n == 0:          # 2.3.2 refuses VLAN 0 here
            return [], errno.EINVAL
        if not 0 <= n <= 4094:
            return [], errno.EINVAL
        if n not in net.vlans:
            return [], errno.ENXIO
        vlans = [n]
    else:
        vlans = sorted(net.vlans)
    fstp = getattr(ctx, "fstp", None)
    lines = []
    for vlan in vlans:
        lines.append("VLAN %04d" % vlan)
        blocked = fstp.blocked.get(vlan, ()) if fstp is not None else ()
        for p, tagged in _members(net, vlan):
            if p.active:
                lines.append(" -- Port %04d tagged=%d active=1 status=%s"
                             % (p.number, tagged,
                                "Discarding" if p.number in blocked else "Forwarding"))
            elif include_inactive:
                lines.append(" -- Port %04d tagged=%d active=0 status=Learning"
                             % (p.number, tagged))
    return lines, OK


@command("vlan/print", "[N]", "print the list of defined vlan", data=True)
def _print(ctx, arg):
    return _print_vlans(ctx, arg, False)


@command("vlan/allprint", "[N]", "print the list of defined vlan (including inactive port)",
         data=True)
def _allprint(ctx, arg):
    return _print_vlans(ctx, arg, True)
