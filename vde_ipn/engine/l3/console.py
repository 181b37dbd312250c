"""vde_l3's management console (sans-IO): the texts of vde_l3 2.3.2.

Commands are matched by prefix in 2.3.2's order (``help``, ``showinfo``,
``ifconfig``, ``route``, ``logout``, ``shutdown``, ``tc``); each answer
is followed by the prompt, except after ``showinfo`` and ``logout``,
which end the session as 2.3.2 does.  Unknown commands get the prompt
alone.  ``tc`` offers 2.3.2's queueing disciplines (engine/l3/queues.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import queues
from .router import Router, ip_str, parse_ip, parse_netmask
from ...wire.c_numbers import atoi

BANNER = "\nVDE Layer 3 Switch  V.2.3.2\n(C) D.Lacamera 2007 - GPLv2\n"
PROMPT = "\nVDE-L3$ "
DATA = "0000 DATA END WITH '.'"

HELP = [
    "help      \t\t\t\t\tDisplay this inline help",
    "ifconfig [vdN [ADDRESS [netmask NETMASK]]]   \tDisplay virtual ethernet options/"
    "configure virtual ethernet N",
    "route list\t\t\t\t\tPrint out the routing table",
    "route net ADDRESS/NETMASK gw GATEWAY     \tAdd static route",
    "route default gw GATEWAY     \t\t\tAdd default route",
    "tc ls     \t\t\t\t\tShow each interface routing policy",
    "tc set DEV POLICY ARGS     \t\t\tChange interface routing policy",
    "shutdown:  \t\t\t\t\tshut the channel down",
    "logout:    \t\t\t\t\tlog out from this mgmt session",
]
ROUTE_USAGE = [
    "'route' command usage:",
    "route list\t\t\t\t\tPrint out the routing table",
    "route net ADDRESS/NETMASK:GATEWAY     \tAdd/change static route",
    "route default gw GATEWAY     \t\t\tChange default route",
]
IFCONFIG_USAGE = ["'ifconfig' command usage:", "ifconfig [vdN [ADDRESS [netmask NETMASK]]]"]
TC_USAGE = [
    "'tc' command usage:",
    "tc ls\t\t\t\t\tPrint out the routing policy for each interface",
    "tc set <DEV> <policy> <arguments>     \tChange routing policy",
]


@dataclass
class Reply:
    text: str
    close: bool = False                  # end this session, no prompt
    shutdown: bool = False


def _mac(mac: bytes) -> str:
    return ":".join("%02X" % b for b in mac)


def _display(router: Router, name: str) -> list | None:
    if name.startswith("all"):
        ifaces = router.ifaces
    elif not name.startswith("vd"):
        return None
    else:
        iface = router.iface(atoi(name[2:]))
        if iface is None:
            return ["Interface %s not found." % name] + IFCONFIG_USAGE
        ifaces = [iface]
    out = []
    for i in ifaces:
        out += ["vd%d\tLink encap: vde HWaddr %s" % (i.id, _mac(i.mac)),
                "\tinet addr:%s Netmask:%s" % (ip_str(i.ip), ip_str(i.mask)), ""]
    return out


def ifconfig(router: Router, arg: str) -> list:
    if not arg:
        return _display(router, "all")
    name, sep, rest = arg.partition(" ")
    if not sep:
        shown = _display(router, name)
        return IFCONFIG_USAGE if shown is None else shown
    addr, sep, rest = rest.partition(" ")
    mask = None
    if sep:
        _tag, sep, mask = rest.partition(" ")
        if not sep:
            return IFCONFIG_USAGE
    if not name.startswith("vd"):
        return IFCONFIG_USAGE
    iface = router.iface(atoi(name[2:]))
    if iface is None:
        return ["Interface %s not found." % name] + IFCONFIG_USAGE
    ip = parse_ip(addr)
    if not ip:
        return IFCONFIG_USAGE
    iface.ip = ip
    out = ["IP address for %s successfully changed." % name]
    if mask is not None:
        value = parse_netmask(mask)
        if not value:
            return out + IFCONFIG_USAGE
        iface.mask = value
        out.append("Netmask for %s successfully changed." % name)
    return out


def route(router: Router, arg: str) -> list:
    if not arg:
        return ROUTE_USAGE
    if arg == "list":
        out = ["Destination\tGateway\t\tGenmask\t\tIface"]
        for i in router.ifaces:
            out.append("%s\t%s\t\t%s\t\tvd%d" % (ip_str(i.ip & i.mask), "0.0.0.0",
                                                ip_str(i.mask), i.id))
        for r in router.routes:
            i = router.neighbour(r.gw)
            if i is not None:
                out.append("%s\t%s\t\t%s\t\tvd%d" % (ip_str(r.network & r.mask), ip_str(r.gw),
                                                    ip_str(r.mask), i.id))
        if router.default_gw:
            i = router.neighbour(router.default_gw)
            out.append("%s\t\t%s\t\t%s\t\tvd%s" % ("0.0.0.0", ip_str(router.default_gw),
                                                  "0.0.0.0", i.id if i else "?"))
        return out
    if arg.startswith("default gw "):
        gw = router.default_gw = parse_ip(arg[11:])    # an invalid one clears it (2.3.2)
        if not gw:
            return ["Invalid gateway."] + ROUTE_USAGE
        return ["Default route changed to %s" % ip_str(gw)]
    if arg.startswith("net "):
        addr, sep, rest = arg[4:].partition("/")
        if not sep:
            return ROUTE_USAGE
        mask, sep, gw = rest.partition(":")
        if not sep:
            return ROUTE_USAGE
        network, value = parse_ip(addr), parse_netmask(mask)
        gateway = parse_ip(gw)
        if not network or not value or not gateway:
            return ["Invalid route."] + ROUTE_USAGE
        if router.set_route(network & value, value, gateway):
            return ["Route successfully added."]
        return ["Route successfully updated."]
    return []


def tc(router: Router, arg: str) -> list:
    if arg == "ls":
        return ["vd%d: %s. %s" % (i.id, i.queue.name, i.queue.stats()) for i in router.ifaces]
    if len(arg) > 4 and arg.startswith("set"):
        name, sep, rest = arg[4:].partition(" ")
        policy, _sep, _args = rest.partition(" ")
        if not sep or not name.startswith("vd") or not name[2:3].isdigit() or not policy:
            return TC_USAGE
        iface = router.iface(atoi(name[2:]))
        if iface is None:
            return ["tc: Device vd%d not found." % atoi(name[2:])] + TC_USAGE
        try:
            queue = queues.make(policy, _args)
        except KeyError:
            return ["Cannot load rp module %s.so" % policy] + TC_USAGE
        if queue is None:
            return ["%s: syntax error." % policy] + queues.HELP[policy].split("\n") + TC_USAGE
        for frame in iter(lambda: iface.queue.dequeue(float("inf")), None):
            queue.enqueue(frame, 0.0)              # what was waiting keeps its turn
        iface.queue = queue
        return ["vd%d: queuing discipline set to %s." % (iface.id, queue.name)]
    return TC_USAGE


COMMANDS = ("help", "showinfo", "ifconfig", "route", "logout", "shutdown", "tc")


def run_command(router: Router, line: str) -> Reply:
    """One console line (without its newline)."""
    line = line.lstrip(" \t\n")
    if not line or line.startswith("#"):
        return Reply("")
    for tag in COMMANDS:
        if line.startswith(tag):
            break
    else:
        return Reply("")
    arg = line[len(tag):].lstrip(" \t")
    if tag == "help":
        return Reply("\n".join([DATA] + HELP + ["."]) + "\n")
    if tag == "showinfo":
        return Reply(DATA + "\n.\n", close=True)
    if tag == "logout":
        return Reply("", close=True)
    if tag == "shutdown":
        return Reply("", shutdown=True)
    lines = {"ifconfig": ifconfig, "route": route, "tc": tc}[tag](router, arg)
    return Reply("".join(x + "\n" for x in lines))
