"""Which frames a monitor port gets a copy of (sans-IO).

A monitor port receives a copy of every frame the switch accepts (not
runts or oversize frames), or of those chosen by port and VLAN: a frame
is chosen when it came in on, or goes out to, one of the chosen ports,
and belongs to one of the chosen VLANs (the tag's VID for a tagged
frame, the ingress port's untagged VLAN otherwise).  A frame the policy
already sends to the monitor port, or that came from it, is not copied:
the monitor sees each frame once, floods by the normal path and unicast
between other ports by copy.

Copies are the frames as they came in (a tagged frame keeps its tag).
The I/O layer sends them; :meth:`MonitorSelection.wants` only decides.
"""

from __future__ import annotations


from ...wire.ethernet import vlan_of
from ..egress import PORT_MASK
from ...wire.values import FrozenValue

ALL = None                               # every port / every VLAN


class MonitorSelection(FrozenValue):
    """The monitor port and what it watches (``None``: everything)."""

    __slots__ = ("port", "ports", "vlans")

    def __init__(self, port: int, ports: frozenset | None = ALL,
                 vlans: frozenset | None = ALL):
        self._init(port, ports, vlans)

    def wants(self, in_port: int, frame: bytes, outs: tuple, port_vlan: int) -> bool:
        """True when the monitor should get a copy of ``frame``.

        Args:
            in_port: the ingress port.
            frame: the frame as received (at least 14 bytes).
            outs: the egress keys the policy returned for it.
            port_vlan: the ingress port's untagged VLAN.
        """
        mon = self.port
        if in_port == mon:
            return False
        for out in outs:
            if out & PORT_MASK == mon:
                return False
        ports = self.ports
        if ports is not None and in_port not in ports and not any(
                out & PORT_MASK in ports for out in outs):
            return False
        vlans = self.vlans
        if vlans is not None:
            vlan = vlan_of(frame)
            if vlan is None:
                vlan = port_vlan
            return vlan in vlans
        return True

    def describe(self) -> str:
        """``port 5 watching ports all vlans 0,10`` (console and logs)."""
        return "port %d watching ports %s vlans %s" % (
            self.port, _show(self.ports), _show(self.vlans))


def _show(items) -> str:
    return "all" if items is None else ",".join(str(n) for n in sorted(items))


def parse_list(text: str, limit: int, what: str) -> frozenset | None:
    """``all``, or numbers and ranges (``1,3,5-7``) below ``limit``.

    Raises:
        ValueError: a word that is not a number or range, or out of range.
    """
    text = text.strip()
    if text in ("", "all", "*"):
        return ALL
    found = set()
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        try:
            first = int(lo)
            last = int(hi) if dash else first
        except ValueError:
            raise ValueError("bad %s %r" % (what, part)) from None
        if not 0 <= first <= last < limit:
            raise ValueError("%s %r out of range 0..%d" % (what, part, limit - 1))
        found.update(range(first, last + 1))
    return frozenset(found)


def parse_selection(text: str, numports: int) -> MonitorSelection:
    """``PORT [PORTS|all] [VLANS|all]`` (spaces or colons between the parts).

    Raises:
        ValueError: a missing or bad port, list or VLAN.
    """
    parts = text.replace(":", " ").split()
    if not parts or len(parts) > 3:
        raise ValueError("expected PORT [PORTS|all] [VLANS|all]")
    try:
        port = int(parts[0])
    except ValueError:
        raise ValueError("bad monitor port %r" % parts[0]) from None
    if not 0 < port < numports:
        raise ValueError("monitor port %d out of range 1..%d" % (port, numports - 1))
    ports = parse_list(parts[1], numports, "port") if len(parts) > 1 else ALL
    vlans = parse_list(parts[2], 4095, "vlan") if len(parts) > 2 else ALL
    return MonitorSelection(port, ports, vlans)
