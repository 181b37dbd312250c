"""MAC-to-peer learning for overlays with no central switch (vxvde, vxlan).

Each node of a distributed Ethernet remembers, for every source MAC it
hears, the UDP address (the *peer*) that frame came from.  A frame for a
known, fresh MAC goes to that one peer; broadcast, multicast and unknown
destinations go to the flood address (a multicast group, or every static
peer).  This is the behaviour of vdeplug4's ``vxvde``/``vxlan`` plugins
and of a kernel ``vxlan`` device with learning on.

Sans-IO: peers are opaque hashable values (the io layer uses socket
address tuples); time is passed in by the caller, in seconds.
"""

from __future__ import annotations

from typing import Dict, Hashable, Optional, Tuple

ETH_ALEN = 6


def is_group(mac: bytes) -> bool:
    """True for broadcast and multicast destination MACs (I/G bit set)."""
    return bool(mac[0] & 1)


class PeerTable:
    """Learned ``MAC -> (peer, last seen)`` bindings.

    ``expire``: seconds after which a binding is ignored (and dropped
    lazily); ``size``: most bindings kept (the oldest is evicted, so a
    flood of forged sources cannot grow memory without bound).
    Counters: ``learned`` (new or moved bindings), ``unicast`` and
    ``flooded`` (outcomes of :meth:`destination`).
    """

    def __init__(self, expire: float = 128.0, size: int = 1024):
        if expire <= 0:
            raise ValueError("expire must be positive")
        self.expire = float(expire)
        self.size = max(1, int(size))
        self._table: Dict[bytes, Tuple[Hashable, float]] = {}
        self.learned = 0
        self.unicast = 0
        self.flooded = 0

    def __len__(self) -> int:
        return len(self._table)

    def learn(self, frame: bytes, peer: Hashable, now: float) -> None:
        """Bind the source MAC of ``frame`` to ``peer`` (a group source,
        which no real station sends from, is ignored)."""
        src = bytes(frame[ETH_ALEN:2 * ETH_ALEN])
        if len(src) < ETH_ALEN or is_group(src):
            return
        table = self._table
        old = table.pop(src, None)
        if old is None or old[0] != peer:
            self.learned += 1
        if len(table) >= self.size:
            del table[next(iter(table))]          # oldest insertion
        table[src] = (peer, now)

    def lookup(self, mac: bytes, now: float) -> Optional[Hashable]:
        """The fresh peer for ``mac``, else None."""
        entry = self._table.get(bytes(mac))
        if entry is None:
            return None
        if now - entry[1] > self.expire:
            del self._table[bytes(mac)]
            return None
        return entry[0]

    def destination(self, frame: bytes, now: float) -> Optional[Hashable]:
        """Where ``frame`` goes: its destination's peer, or None (flood)."""
        dst = frame[:ETH_ALEN]
        peer = None if is_group(dst) else self.lookup(dst, now)
        if peer is None:
            self.flooded += 1
        else:
            self.unicast += 1
        return peer

    def forget_peer(self, peer: Hashable) -> int:
        """Drop every MAC bound to ``peer`` (it said goodbye); return how many."""
        gone = [m for m, (p, _) in self._table.items() if p == peer]
        for m in gone:
            del self._table[m]
        return len(gone)

    def entries(self, now: float):
        """``(mac, peer, age)`` for every fresh binding."""
        return [(m, p, now - t) for m, (p, t) in self._table.items()
                if now - t <= self.expire]
