"""The MAC table of the learning switches: (VLAN, MAC) -> [port, last seen].

One definition for the switch's policy (:mod:`.switch.learning`) and the
IPN switch policy (:mod:`.ipn.vdeswitch`); :meth:`MacTable.learn` is the
one rule of learning both apply.
"""

from __future__ import annotations

ALWAYS = float("-inf")                   # min_persistence: a MAC moves at once


class MacTable:
    """(VLAN, MAC) -> [port, last_seen], one dict per VLAN.

    ``by_port`` indexes the entries by port so that forgetting a port's
    entries (it left, or changed VLANs) costs what that port learned, not
    the size of the table.  Code that edits ``vlans`` directly may leave
    stale index entries behind: they are checked before use.
    """

    __slots__ = ("vlans", "by_port", "on_change", "before_move")

    def __init__(self):
        self.vlans: dict[int, dict[bytes, list]] = {}
        self.by_port: dict[int, dict[tuple, None]] = {}
        # f() after an entry was added, moved or forgotten (a refresh is
        # not a change): caches of the table's answers forget them
        self.on_change = None
        # f() before a move is judged: whoever saw frames the table has
        # not heard of yet tells it their ages (min_persistence needs them)
        self.before_move = None

    def lookup(self, mac: bytes, vlan: int = 0):
        """(port, last_seen) or None."""
        e = self.vlans.get(vlan, {}).get(mac)
        return None if e is None else (e[0], e[1])

    def add(self, vlan: int, mac: bytes, port: int, now: float) -> None:
        """Learn a MAC not in the table yet."""
        self.vlans.setdefault(vlan, {})[mac] = [port, now]
        self._index(port)[vlan, mac] = None
        if self.on_change is not None:
            self.on_change()

    def move(self, vlan: int, mac: bytes, entry: list, port: int, now: float) -> None:
        """A learned MAC shows up on another port."""
        old = self.by_port.get(entry[0])
        if old is not None:
            old.pop((vlan, mac), None)
        entry[0] = port
        entry[1] = now
        self._index(port)[vlan, mac] = None
        if self.on_change is not None:
            self.on_change()

    def learn(self, table: dict, vlan: int, src: bytes, port: int, now: float,
              min_persistence: float = ALWAYS) -> bool:
        """``src`` was seen on ``port`` at ``now``: the one rule of MAC learning.

        ``table`` is ``vlans[vlan]`` (the caller has it at hand).  A new
        MAC is added, a known one on the same port refreshed; one on
        another port moves unless it was seen there less than
        ``min_persistence`` seconds ago (so it cannot flap).  True when
        the MAC was new to the table.
        """
        e = table.get(src)
        if e is None:
            self.add(vlan, src, port, now)
            return True
        if e[0] == port:
            e[1] = now
            return False
        if self.before_move is not None:
            self.before_move()
        if now - e[1] > min_persistence:
            self.move(vlan, src, e, port, now)
        return False

    def _index(self, port: int) -> dict:
        index = self.by_port.get(port)
        if index is None:
            index = self.by_port[port] = {}
        return index

    def forget_port(self, port: int) -> list:
        """Forget what was learned on ``port``; return [(vlan, mac, port)]."""
        gone = []
        vlans = self.vlans
        for vlan, mac in self.by_port.pop(port, ()):
            table = vlans.get(vlan)
            e = None if table is None else table.get(mac)
            if e is not None and e[0] == port:
                del table[mac]
                gone.append((vlan, mac, port))
        if gone and self.on_change is not None:
            self.on_change()
        return gone

    def forget_older(self, deadline: float) -> list:
        """Forget entries last seen before ``deadline``; return [(vlan, mac, port)]."""
        gone = []
        for vlan, table in self.vlans.items():
            for mac in [m for m, e in table.items() if e[1] < deadline]:
                port = table.pop(mac)[0]
                gone.append((vlan, mac, port))
                index = self.by_port.get(port)
                if index is not None:
                    index.pop((vlan, mac), None)
        if gone and self.on_change is not None:
            self.on_change()
        return gone

    def clear_vlan(self, vlan: int) -> None:
        table = self.vlans.get(vlan)
        if table:
            for mac, e in table.items():
                index = self.by_port.get(e[0])
                if index is not None:
                    index.pop((vlan, mac), None)
            table.clear()
            if self.on_change is not None:
                self.on_change()

    def clear(self) -> None:
        for table in self.vlans.values():
            table.clear()
        self.by_port.clear()
        if self.on_change is not None:
            self.on_change()

    def entries(self):
        """Yield (vlan, mac, port, last_seen)."""
        for vlan, table in self.vlans.items():
            for mac, (port, seen) in table.items():
                yield vlan, mac, port, seen

    def __len__(self) -> int:
        return sum(len(t) for t in self.vlans.values())
