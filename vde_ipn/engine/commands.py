"""vde_switch 2.3.2's console commands, in its ``help`` order.

The context ``ctx`` handed to every handler provides: ``net`` (the
:class:`~vde_ipn.engine.bus.Network`), ``pid``, ``macaddr`` (6 bytes),
``uptime()``, ``mgmt`` and ``mgmtmode``, ``dir`` and ``mode``,
``hub`` (bool) and ``set_hub(bool)``, ``hash_settings`` (a dict with
size, gcint, expire, minper), ``epclose(port, id) -> bool``,
``user_name(uid)`` and ``group_name(gid)``.
"""

from __future__ import annotations

import errno

from ..wire.ethernet import mac_str, parse_mac
from ..wire.mgmt import BANNER
from .console import LOGOUT, SHUTDOWN, command, help_lines, menu, unavailable

OK = 0

menu("ds", "DATA SOCKET MENU")


@command("ds/showinfo", "", "show ds info")
def _ds_showinfo(ctx, arg):
    return ["ctl dir %s" % ctx.dir, "std mode 0%03o" % ctx.mode], OK


@command("help", "[arg]", "Help (limited to arg when specified)")
def _help(ctx, arg):
    return help_lines(arg.strip()), OK


@command("logout", "", "logout from this mgmt terminal", action=LOGOUT)
def _logout(ctx, arg):
    return None, OK


@command("shutdown", "", "shutdown of the switch", action=SHUTDOWN)
def _shutdown(ctx, arg):
    return None, OK


@command("showinfo", "", "show switch version and info")
def _showinfo(ctx, arg):
    lines = BANNER.split("\n")           # header, copyright, ""
    lines.append("pid %d MAC %s uptime %d" % (ctx.pid, mac_str(ctx.macaddr), ctx.uptime()))
    if ctx.mgmt:
        lines.append("mgmt %s perm 0%03o" % (ctx.mgmt, ctx.mgmtmode))
    return lines, OK


unavailable("load", "path", "load a configuration script")
menu("debug", "DEBUG MENU")
unavailable("debug/list", "", "list debug categories")
unavailable("debug/add", "dbgpath", "enable debug info for a given category")
unavailable("debug/del", "dbgpath", "disable debug info for a given category")
menu("plugin", "PLUGINS MENU")
unavailable("plugin/list", "", "list plugins")
unavailable("plugin/add", "library", "load a plugin")
unavailable("plugin/del", "name", "unload a plugin")
menu("hash", "HASH TABLE MENU")


@command("hash/showinfo", "", "show hash info")
def _hash_showinfo(ctx, arg):
    h = ctx.hash_settings
    return ["Hash size %d" % h["size"], "GC interval %d secs" % h["gcint"],
            "GC expire %d secs" % h["expire"], "Min persistence %d secs" % h["minper"]], OK


unavailable("hash/setsize", "N", "change hash size")
unavailable("hash/setgcint", "N", "change garbage collector interval")
unavailable("hash/setexpire", "N", "change hash entries expire time")
unavailable("hash/setminper", "N", "minimum persistence time")


def bucket(mac: bytes, vlan: int, size: int) -> int:
    """A stable bucket number for display (the table itself is a dict)."""
    x = vlan
    for b in mac:
        x = ((x << 3) ^ (x >> 13) ^ b) & 0xFFFF
    return x % size


@command("hash/print", "", "print the hash table")
def _hash_print(ctx, arg):
    policy = ctx.net.policy
    table = getattr(policy, "table", None)
    if table is None:
        return [], OK
    size = ctx.hash_settings["size"]
    now = ctx.now()
    rows = sorted((bucket(mac, vlan, size), mac, vlan, port, seen)
                  for vlan, mac, port, seen in table.entries())
    return ["Hash: %04d Addr: %s VLAN %04d to port: %03d  age %d secs"
            % (b, mac_str(mac), vlan, port, int(now - seen))
            for b, mac, vlan, port, seen in rows], OK


@command("hash/find", "MAC [VLAN]", "MAC lookup")
def _hash_find(ctx, arg):
    parts = arg.split()
    try:
        mac = parse_mac(parts[0])
        vlan = int(parts[1]) if len(parts) > 1 else 0
    except (IndexError, ValueError):
        return None, errno.EINVAL
    table = getattr(ctx.net.policy, "table", None)
    hit = table.lookup(mac, vlan) if table is not None else None
    if hit is None:
        return None, errno.ENODEV
    port, seen = hit
    # vde_switch 2.3.2 prints port+1 here; scripts may rely on it
    return ["Hash: %04d Addr: %s VLAN %04d to port: %03d  age %d secs"
            % (bucket(mac, vlan, ctx.hash_settings["size"]), mac_str(mac), vlan,
               port + 1, int(ctx.now() - seen))], OK


menu("fstp", "FAST SPANNING TREE MENU")
unavailable("fstp/showinfo", "", "show fstp info")
unavailable("fstp/setfstp", "0/1", "Fast spanning tree protocol 1=ON 0=OFF")
unavailable("fstp/setedge", "VLAN PORT 1/0", "Define an edge port for a vlan 1=Y 0=N")
unavailable("fstp/bonus", "VLAN PORT COST", "set the port bonus for a vlan")
unavailable("fstp/print", "[N]", "print fst data for the defined vlan")
menu("port", "PORT STATUS MENU")


@command("port/showinfo", "", "show port info")
def _port_showinfo(ctx, arg):
    return ["Numports=%d" % ctx.net.numports, "HUB=%s" % ("true" if ctx.hub else "false"),
            "counters=true"], OK


unavailable("port/setnumports", "N", "set the number of ports")


@command("port/sethub", "0/1", "1=HUB 0=switch")
def _port_sethub(ctx, arg):
    ctx.set_hub(_atoi(arg) != 0)
    return None, OK


unavailable("port/setvlan", "N VLAN", "set port VLAN (untagged)")
unavailable("port/createauto", "",
            "create a port with an automatically allocated id (inactive|notallocatable)")
unavailable("port/create", "N", "create the port N (inactive|notallocatable)")
unavailable("port/remove", "N", "remove the port N")
unavailable("port/allocatable", "N 0/1", "Is the port allocatable as unnamed? 1=Y 0=N")
unavailable("port/setuser", "N user", "access control: set user")
unavailable("port/setgroup", "N user", "access control: set group")


@command("port/epclose", "N ID", "remove the endpoint port N/id ID")
def _port_epclose(ctx, arg):
    parts = arg.split()
    try:
        port, ep = int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None, errno.EINVAL
    if not 0 <= port < ctx.net.numports:
        return None, errno.EINVAL
    return None, (OK if ctx.epclose(port, ep) else errno.ENXIO)


@command("port/resetcounter", "[N]", "reset the port (N) counters")
def _port_resetcounter(ctx, arg):
    net = ctx.net
    if arg.strip():
        n = _atoi(arg)
        if not 0 <= n < net.numports:
            return None, errno.EINVAL
        ports = [net.ports[n]] if n in net.ports else []
    else:
        ports = list(net.ports.values())
    for p in ports:
        p.reset_counters()
    return None, OK


def _port_record(ctx, p) -> list[str]:
    none = "NONE"
    lines = ["Port %04d untagged_vlan=%04d %sACTIVE - %sUnnamed Allocatable"
             % (p.number, p.vlan, "" if p.active else "IN", "" if p.allocatable else "NOT "),
             " Current User: %s Access Control: (User: %s - Group: %s)"
             % (none if p.curuser == -1 else ctx.user_name(p.curuser),
                none if p.acl_user == -1 else ctx.user_name(p.acl_user),
                none if p.acl_group == -1 else ctx.group_name(p.acl_group)),
             " IN:  pkts %10d          bytes %20d" % (p.in_pkts, p.in_bytes),
             " OUT: pkts %10d          bytes %20d" % (p.out_pkts, p.out_bytes)]
    for ep in sorted(p.endpoints.values(), key=lambda e: e.id):
        lines.append("  -- endpoint ID %04d module %-12s: %s"
                     % (ep.id, ep.module, ep.description or "no endpoint description"))
    return lines


def _print_ports(ctx, arg, include_inactive):
    net = ctx.net
    if arg.strip():
        n = _atoi(arg)
        if not 0 <= n < net.numports:
            return [], errno.EINVAL
        p = net.ports.get(n)
        if p is None or not (p.active or include_inactive):
            return [], errno.ENXIO
        return _port_record(ctx, p), OK
    lines = []
    for n in sorted(net.ports):
        p = net.ports[n]
        if p.active or include_inactive:
            lines.extend(_port_record(ctx, p))
    return lines, OK


@command("port/print", "[N]", "print the port/endpoint table")
def _port_print(ctx, arg):
    return _print_ports(ctx, arg, False)


@command("port/allprint", "[N]", "print the port/endpoint table (including inactive port)")
def _port_allprint(ctx, arg):
    return _print_ports(ctx, arg, True)


menu("vlan", "VLAN MANAGEMENT MENU")
unavailable("vlan/create", "N", "create the VLAN with tag N")
unavailable("vlan/remove", "N", "remove the VLAN with tag N")
unavailable("vlan/addport", "N PORT", "add port to the vlan N (tagged)")
unavailable("vlan/delport", "N PORT", "add port to the vlan N (tagged)")
unavailable("vlan/print", "[N]", "print the list of defined vlan")
unavailable("vlan/allprint", "[N]", "print the list of defined vlan (including inactive port)")


def _atoi(text: str) -> int:
    """C ``atoi``: leading blanks, optional sign, digits; 0 when none."""
    s = text.lstrip(" \t\n\r\f\v")
    sign, i = 1, 0
    if s[:1] in "+-" and s[:1]:
        sign, i = (-1 if s[0] == "-" else 1), 1
    j = i
    while j < len(s) and s[j].isdigit():
        j += 1
    return sign * int(s[i:j]) if j > i else 0
