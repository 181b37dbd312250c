"""Port commands: port/*."""

from __future__ import annotations

import errno

from ...._errors import NoFreePort, PortInUse
from ....wire.ethernet import NO_VLAN
from ...bus import NO_USER
from ..console import command, menu
from ._args import atoi, parse_id, scan_ints

OK = 0

menu("port", "PORT STATUS MENU")


@command("port/showinfo", "", "show port info", data=True)
def _showinfo(ctx, arg):
    return ["Numports=%d" % ctx.net.numports, "HUB=%s" % ("true" if ctx.hub else "false"),
            "counters=true"], OK


@command("port/setnumports", "N", "set the number of ports")
def _setnumports(ctx, arg):
    try:
        ctx.net.set_numports(atoi(arg))
    except ValueError:
        return None, errno.EINVAL
    except PortInUse:
        return None, errno.EADDRINUSE
    return None, OK


@command("port/sethub", "0/1", "1=HUB 0=switch")
def _sethub(ctx, arg):
    ctx.set_hub(atoi(arg) != 0)
    return None, OK


def _port_number(ctx, n: int) -> bool:
    return 0 <= n < ctx.net.numports


@command("port/setvlan", "N VLAN", "set port VLAN (untagged)")
def _setvlan(ctx, arg):
    args = scan_ints(arg, 2)
    if args is None or not _port_number(ctx, args[0]) or not 0 <= args[1] <= NO_VLAN:
        return None, errno.EINVAL
    n, vlan = args
    net = ctx.net
    if (vlan != NO_VLAN and vlan not in net.vlans) or n not in net.ports:
        return None, errno.ENXIO
    net.ports[n].vlan = vlan
    net.ports[n].discard_tagged(vlan)
    net.policy.config_changed(n)
    return None, OK


@command("port/createauto", "",
         "create a port with an automatically allocated id (inactive|notallocatable)", data=True)
def _createauto(ctx, arg):
    net = ctx.net
    try:
        n = net.pick_port(None)
    except NoFreePort:
        return [], errno.ENOSPC
    port = net.ports.get(n) or net.create_port(n)
    port.allocatable = False
    net.policy.config_changed(n)
    return ["Port %04d" % n], OK


@command("port/create", "N", "create the port N (inactive|notallocatable)")
def _create(ctx, arg):
    n = atoi(arg)
    net = ctx.net
    if not 0 < n < net.numports:
        return None, errno.EINVAL
    if n in net.ports:
        return None, errno.EEXIST
    net.create_port(n)
    net.policy.config_changed(n)
    return None, OK


@command("port/remove", "N", "remove the port N")
def _remove(ctx, arg):
    n = atoi(arg)
    if not 0 < n < ctx.net.numports:
        return None, errno.EINVAL
    try:
        ctx.net.remove_port(n)
    except KeyError:
        return None, errno.ENXIO
    except PortInUse:
        return None, errno.EADDRINUSE
    return None, OK


@command("port/allocatable", "N 0/1", "Is the port allocatable as unnamed? 1=Y 0=N")
def _allocatable(ctx, arg):
    args = scan_ints(arg, 2)
    if args is None or not _port_number(ctx, args[0]):
        return None, errno.EINVAL
    port = ctx.net.ports.get(args[0])
    if port is None:
        return None, errno.ENXIO
    port.allocatable = bool(args[1])
    return None, OK


def _acl(kind):
    """``port/setuser``/``port/setgroup N WHO``: WHO is looked up as a name
    first, then read as a number, then NONE or ANY (no restriction)."""
    def handler(ctx, arg):
        parts = arg.split(None, 1)
        n = scan_ints(parts[0], 1) if parts else None
        if n is None or len(parts) < 2 or not _port_number(ctx, n[0]):
            return None, errno.EINVAL
        port = ctx.net.ports.get(n[0])
        if port is None:
            return None, errno.ENXIO
        name = parts[1].strip()
        ident = (ctx.lookup_user if kind == "user" else ctx.lookup_group)(name)
        if ident is None:
            ident = parse_id(name)       # OutOfRange beyond the largest id
        if ident is None:
            if name not in ("NONE", "ANY"):
                return None, errno.EINVAL
            ident = NO_USER
        setattr(port, "acl_" + kind, ident)
        return None, OK
    return handler


command("port/setuser", "N user", "access control: set user")(_acl("user"))
command("port/setgroup", "N user", "access control: set group")(_acl("group"))


@command("port/epclose", "N ID", "remove the endpoint port N/id ID")
def _epclose(ctx, arg):
    args = scan_ints(arg, 2)
    if args is None or not _port_number(ctx, args[0]):
        return None, errno.EINVAL
    return None, (OK if ctx.epclose(args[0], args[1]) else errno.ENXIO)


@command("port/resetcounter", "[N]", "reset the port (N) counters")
def _resetcounter(ctx, arg):
    net = ctx.net
    if arg.strip():
        n = atoi(arg)
        if not _port_number(ctx, n):
            return None, errno.EINVAL
        ports = [net.ports[n]] if n in net.ports else []
    else:
        ports = list(net.ports.values())
    for p in ports:
        p.reset_counters()
    return None, OK


def port_record(ctx, p) -> list[str]:
    def who(ident, name):
        return "NONE" if ident == NO_USER else name(ident)
    lines = ["Port %04d untagged_vlan=%04d %sACTIVE - %sUnnamed Allocatable"
             % (p.number, p.vlan, "" if p.active else "IN", "" if p.allocatable else "NOT "),
             " Current User: %s Access Control: (User: %s - Group: %s)"
             % (who(p.curuser, ctx.user_name), who(p.acl_user, ctx.user_name),
                who(p.acl_group, ctx.group_name)),
             " IN:  pkts %10d          bytes %20d" % (p.in_pkts, p.in_bytes),
             " OUT: pkts %10d          bytes %20d" % (p.out_pkts, p.out_bytes)]
    for ep in sorted(p.endpoints.values(), key=lambda e: e.id):
        lines.append("  -- endpoint ID %04d module %-12s: %s"
                     % (ep.id, ep.module, "no endpoint description" if ep.description is None
                        else ep.description))
    return lines


def _print_ports(ctx, arg, include_inactive):
    net = ctx.net
    if arg.strip():
        n = atoi(arg)
        if not _port_number(ctx, n):
            return [], errno.EINVAL
        p = net.ports.get(n)
        if p is None or not (p.active or include_inactive):
            return [], errno.ENXIO
        return port_record(ctx, p), OK
    lines = []
    for n in sorted(net.ports):
        p = net.ports[n]
        if p.active or include_inactive:
            lines.extend(port_record(ctx, p))
    return lines, OK


@command("port/print", "[N]", "print the port/endpoint table", data=True)
def _print(ctx, arg):
    return _print_ports(ctx, arg, False)


@command("port/allprint", "[N]", "print the port/endpoint table (including inactive port)",
         data=True)
def _allprint(ctx, arg):
    return _print_ports(ctx, arg, True)
