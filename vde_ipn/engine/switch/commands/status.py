"""Machine-readable status and per-cause counters (not in vde_switch 2.3.2).

``json/*`` answer one line of JSON inside the usual DATA block, so a
script needs no text parsing; ``port/stats`` shows every port's counters
with its drops by cause.  The paths are new and no existing command is a
prefix of them, so 2.3.2's commands keep their meaning.
"""

from __future__ import annotations

import errno

from ....wire.ethernet import mac_str
from ...bus import FRAMING, NO_USER, OVERSIZE, QUEUE_FULL, RUNT, SEND_ERROR, TRUNCATED, VLAN
from ..fstp import BLOCKED
from ..console import command, menu
from ._args import atoi

OK = 0
DROP_CAUSES = (RUNT, OVERSIZE, VLAN, BLOCKED, QUEUE_FULL, SEND_ERROR, FRAMING, TRUNCATED)


def _dumps(obj) -> list[str]:
    import json                          # only when asked: not loaded by every switch
    return [json.dumps(obj, sort_keys=True, separators=(",", ":"))]


def _port_dict(p) -> dict:
    stats = p.statistics()
    stats["drops"] = {cause: p.drops.get(cause, 0) for cause in DROP_CAUSES}
    return {
        "port": p.number, "active": p.active, "allocatable": p.allocatable,
        "untagged_vlan": p.vlan, "tagged_vlans": sorted(p.tagged),
        "user": None if p.curuser == NO_USER else p.curuser,
        "acl_user": None if p.acl_user == NO_USER else p.acl_user,
        "acl_group": None if p.acl_group == NO_USER else p.acl_group,
        "counters": stats,
        "endpoints": [{"id": e.id, "module": e.module, "description": e.description}
                      for e in sorted(p.endpoints.values(), key=lambda e: e.id)],
    }


def _selected_ports(ctx, arg):
    net = ctx.net
    if not arg.strip():
        return [net.ports[n] for n in sorted(net.ports)], OK
    n = atoi(arg)
    if not 0 <= n < net.numports:
        return None, errno.EINVAL
    if n not in net.ports:
        return None, errno.ENXIO
    return [net.ports[n]], OK


@command("port/stats", "[N]", "port counters with drops by cause", data=True)
def _port_stats(ctx, arg):
    ports, rc = _selected_ports(ctx, arg)
    if ports is None:
        return [], rc
    lines = []
    for p in ports:
        drops = " ".join("%s=%d" % (c, p.drops.get(c, 0)) for c in DROP_CAUSES)
        lines.append("Port %04d in %d/%d out %d/%d drops %s"
                     % (p.number, p.in_pkts, p.in_bytes, p.out_pkts, p.out_bytes, drops))
    return lines, OK


menu("json", "MACHINE-READABLE STATUS")


@command("json/showinfo", "", "switch information as JSON", data=True)
def _json_showinfo(ctx, arg):
    return _dumps({"pid": ctx.pid, "mac": mac_str(ctx.macaddr), "uptime": ctx.uptime(),
                   "numports": ctx.net.numports, "hub": ctx.hub, "ctl_dir": ctx.dir,
                   "mgmt": ctx.mgmt, "max_frame": ctx.net.max_frame,
                   "hash": ctx.hash_settings}), OK


@command("json/ports", "[N]", "ports, endpoints and counters as JSON", data=True)
def _json_ports(ctx, arg):
    ports, rc = _selected_ports(ctx, arg)
    if ports is None:
        return [], rc
    return _dumps([_port_dict(p) for p in ports]), OK


@command("json/vlans", "", "VLANs and their member ports as JSON", data=True)
def _json_vlans(ctx, arg):
    net = ctx.net
    out = []
    for vlan in sorted(net.vlans):
        out.append({"vlan": vlan,
                    "untagged": [n for n in sorted(net.ports) if net.ports[n].vlan == vlan],
                    "tagged": [n for n in sorted(net.ports) if vlan in net.ports[n].tagged]})
    return _dumps(out), OK


@command("json/hash", "", "the MAC table as JSON", data=True)
def _json_hash(ctx, arg):
    table = getattr(ctx.net.policy, "table", None)
    now = ctx.now()
    rows = [] if table is None else sorted(
        ({"mac": mac_str(mac), "vlan": vlan, "port": port, "age": round(now - seen, 3)}
         for vlan, mac, port, seen in table.entries()),
        key=lambda r: (r["vlan"], r["mac"]))
    return _dumps(rows), OK
