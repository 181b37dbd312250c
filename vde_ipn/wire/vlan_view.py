"""The tagging rules of vdeplug4's ``vlan`` plugin, as a pure object.

A :class:`VlanView` sits between a host (VM, namespace, cable end) and
a network carrying 802.1Q (or 802.1ad) tags.  ``to_net`` rewrites a
frame the host sends, ``from_net`` one the network delivers; both
return the frame to pass on or ``None`` to drop it.  The rules are
those of libvdeplug_vlan (vdeplug_vlan 0.1):

* the *untagged* VLAN (``vlan://N``) is seen untagged by the host: its
  frames lose their tag on the way in and get tag N on the way out;
  with N = 0 the host's untagged frames stay untagged; N = 4095 drops
  them;
* ``untag=M``: untagged traffic of the network is seen by the host as
  tagged M (and the host's frames tagged M leave untagged);
* ``tag=A[-B]:...``: VLANs the host sees tagged; ``A-B`` maps the
  host's A to the network's B and back;
* ``trunk``: any other valid tag passes unchanged;
* ``qinq``: the outer tag is 802.1ad (0x88a8) instead of 802.1Q.

A VLAN id of 0, 1 or 4095 is never valid in a tag list or trunk (as in
the C plugin).  Rewritten tags carry priority 0.  Where the C plugin
has bugs this one does not copy them: a remapped frame keeps its real
length (the C plugin returns its whole receive buffer).
"""

from __future__ import annotations

import re
import struct

from .ethernet import ETH_HLEN, TPID_8021Q, add_tag, strip_tag
from .c_numbers import strtol

__all__ = ["VlanView", "parse_tag_list"]

VLAN_MASK = 0x0FFF
TPID_8021AD = 0x88A8
_TCI = struct.Struct("!H")


def _vlan_ok(vlan: int) -> bool:
    return ((vlan + 1) & 0xFFF) > 2        # not 0, 1 or 4095


def parse_tag_list(text: str) -> tuple[tuple[int, int], ...]:
    """``"10:11-12.12-11"`` -> ``((10, 10), (11, 12), (12, 11))`` (host, network)."""
    pairs = []
    for token in re.split(r"[.:]", text):
        if not token:
            continue
        m = re.match(r"\s*[+-]?(0[xX][0-9a-fA-F]+|\d+)?", token)
        host = strtol(token) & VLAN_MASK
        rest = token[m.end():] if m else token
        net = strtol(rest[1:]) & VLAN_MASK if rest.startswith("-") else host
        pairs.append((host, net))
    return tuple(pairs)


class VlanView:
    """One host's view of a tagged network (see the module docstring)."""

    __slots__ = ("untagged", "tag2untag", "to_net_map", "from_net_map", "trunk", "tpid",
                 "_tpid_bytes")

    def __init__(self, untagged: int = 0, *, tag2untag: int = 0,
                 tags: tuple[tuple[int, int], ...] = (), trunk: bool = False,
                 qinq: bool = False):
        self.untagged = untagged & VLAN_MASK
        self.tag2untag = tag2untag & VLAN_MASK
        self.to_net_map: dict[int, int] = {}
        self.from_net_map: dict[int, int] = {}
        for host, net in tags:                 # the first listed wins, as in C
            self.to_net_map.setdefault(host, net)
            self.from_net_map.setdefault(net, host)
        self.trunk = trunk
        self.tpid = TPID_8021AD if qinq else TPID_8021Q
        self._tpid_bytes = struct.pack("!H", self.tpid)

    def _map(self, table: dict, vlan: int) -> int:
        out = table.get(vlan, 0)
        if out == 0 and self.trunk and _vlan_ok(vlan):
            out = vlan
        return out

    def _tagged(self, frame) -> bool:
        return frame[12:14] == self._tpid_bytes

    def _strip(self, frame) -> bytes:
        return strip_tag(bytes(frame))

    def _insert(self, frame, vlan: int) -> bytes:
        return add_tag(bytes(frame), vlan, tpid=self.tpid)

    def _retag(self, frame, vlan: int) -> bytes:
        return bytes(frame[:14]) + _TCI.pack(vlan) + bytes(frame[16:])

    def from_net(self, frame):
        """A frame from the network, as the host must see it (None: dropped)."""
        if len(frame) < ETH_HLEN:
            return frame
        if self._tagged(frame):
            if len(frame) < ETH_HLEN + 4:
                return None
            vlan = _TCI.unpack_from(frame, 14)[0] & VLAN_MASK
            if vlan == self.untagged:
                return self._strip(frame)
            host = self._map(self.from_net_map, vlan)
            if host and _vlan_ok(host):
                return self._retag(frame, host)
            return None
        if self.tag2untag:
            return self._insert(frame, self.tag2untag)
        if self.untagged:
            return None
        return frame

    def to_net(self, frame):
        """A frame from the host, as the network must carry it (None: dropped)."""
        if len(frame) < ETH_HLEN:
            return None
        if self._tagged(frame):
            if len(frame) < ETH_HLEN + 4:
                return None
            vlan = _TCI.unpack_from(frame, 14)[0] & VLAN_MASK
            if vlan == self.tag2untag:
                return self._strip(frame)
            net = self._map(self.to_net_map, vlan)
            if net and _vlan_ok(net):
                return self._retag(frame, net)
            return None
        if self.untagged == 0:
            return frame if self.tag2untag == 0 else None
        if self.untagged == VLAN_MASK:
            return None
        return self._insert(frame, self.untagged)
