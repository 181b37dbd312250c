"""The learning-switch policy: MAC learning keyed by (VLAN, MAC).

Rules (vde_switch 2.3.2 semantics, section 6 of the console reference):

* an untagged frame belongs to its port's untagged VLAN (dropped when the
  port has none); a tagged frame is accepted only on a tagged member port;
* the source MAC (group bit clear) is learned on the ingress port; a MAC
  that moves is re-learned only if it was last seen more than
  ``min_persistence`` seconds ago, so it cannot flap between ports;
* broadcast, multicast and unknown unicast flood the VLAN's active
  members except the ingress port; known unicast goes to its one port,
  and is dropped when that is the ingress port;
* entries older than ``expire`` seconds are forgotten by :meth:`expire`.

Unlike the C switch, a port joining or leaving forgets only the entries
of that port, so the others keep being switched without a flood.

With a fast spanning tree attached (:meth:`LearningSwitch.use_fstp`) and
enabled, BPDUs are consumed, frames from a port Discarding in their VLAN
are dropped (cause ``fstp``) and Discarding ports get neither floods nor
unicasts.  All of that is precomputed by ``_rebuild``; without FSTP the
per-frame path is unchanged.
"""

from __future__ import annotations

from ..wire.fstp_bpdu import BPDU_DST
from .egress import tag_key, untag_key
from .fstp import BLOCKED
from .policy import Policy, register

NO_VLAN = 4095


class MacTable:
    """(VLAN, MAC) -> [port, last_seen], one dict per VLAN."""

    __slots__ = ("vlans",)

    def __init__(self):
        self.vlans: dict[int, dict[bytes, list]] = {}

    def lookup(self, mac: bytes, vlan: int = 0):
        """(port, last_seen) or None."""
        e = self.vlans.get(vlan, {}).get(mac)
        return None if e is None else (e[0], e[1])

    def forget_port(self, port: int) -> list:
        """Forget what was learned on ``port``; return [(vlan, mac, port)]."""
        return self._forget(lambda e: e[0] == port)

    def forget_older(self, deadline: float) -> list:
        """Forget entries last seen before ``deadline``; return [(vlan, mac, port)]."""
        return self._forget(lambda e: e[1] < deadline)

    def _forget(self, old) -> list:
        gone = []
        for vlan, table in self.vlans.items():
            for mac in [m for m, e in table.items() if old(e)]:
                gone.append((vlan, mac, table.pop(mac)[0]))
        return gone

    def clear(self) -> None:
        for table in self.vlans.values():
            table.clear()

    def entries(self):
        """Yield (vlan, mac, port, last_seen)."""
        for vlan, table in self.vlans.items():
            for mac, (port, seen) in table.items():
                yield vlan, mac, port, seen

    def __len__(self) -> int:
        return sum(len(t) for t in self.vlans.values())


@register("switch")
class LearningSwitch(Policy):
    """Learning Ethernet switch with 802.1Q VLAN membership."""

    def __init__(self, net, *, expire: float = 100.0, min_persistence: float = 3.0):
        self.expire_after = expire
        self.min_persistence = min_persistence
        self.table = MacTable()
        self._tagged: dict[int, frozenset] = {}
        self._flood: dict[int, dict] = {}
        self._single: dict[int, dict] = {}
        self._ptable: dict[int, dict] = {}
        self._pflood: dict[int, tuple[int, ...]] = {}
        self._psingle: dict[int, dict] = {}
        self._inblocked: dict[int, frozenset] = {}
        self.fstp = None
        self.transmit = None
        super().__init__(net)

    def use_fstp(self, fstp, transmit) -> None:
        """Run the spanning tree ``fstp`` (an :class:`~.fstp.Fstp`) here.

        ``transmit(list of (egress key, frame))`` sends the BPDUs that
        joining ports and received BPDUs call for.
        """
        self.fstp = fstp
        self.transmit = transmit
        fstp.on_change = self._fstp_changed
        self._fstp_sync()
        self._rebuild()

    def _fstp_changed(self, flushed: set, moved: bool) -> None:
        for vlan in flushed:                 # topology change: relearn the VLAN
            self.table.vlans.get(vlan, {}).clear()
        if moved:
            self._rebuild()

    def _fstp_sync(self) -> None:
        """Tell the spanning tree the VLAN membership of the active ports."""
        fstp = self.fstp
        if fstp is None:
            return
        members: dict[int, dict[int, bool]] = {}
        for n, p in self.net.ports.items():
            if p.endpoints:
                for vlan in p.tagged:
                    members.setdefault(vlan, {})[n] = True
                if p.vlan != NO_VLAN:
                    members.setdefault(p.vlan, {})[n] = False
        for vlan in [v for v in fstp.trees if v not in self.net.vlans]:
            fstp.forget_vlan(vlan)
        out = fstp.sync(members)
        if out:
            self.transmit(out)

    def _rebuild(self) -> None:
        """Precompute, per VLAN and ingress port, where floods and unicasts go.

        ``_flood[vlan][(port, tagged)]`` and ``_single[vlan][(tagged, out)]``
        hold egress keys (see :mod:`egress`): a plain port when the frame
        leaves as it came, a rewrite key when a tag must be added or removed.
        """
        ports = self.net.ports
        active = [n for n in sorted(ports) if ports[n].endpoints]
        fstp = self.fstp
        blocked = fstp.blocked if fstp is not None else {}
        self._tagged = {n: frozenset(p.tagged) for n, p in ports.items()}
        vlans = {p.vlan for p in ports.values() if p.vlan != NO_VLAN}
        for p in ports.values():
            vlans.update(p.tagged)
        self._flood, self._single = {}, {}
        for vlan in vlans:
            self.table.vlans.setdefault(vlan, {})
            stopped = blocked.get(vlan, ())
            members = [n for n in active if n not in stopped
                       and (ports[n].vlan == vlan or vlan in ports[n].tagged)]
            # the key for sending to member m a frame that arrived tagged or not
            keys = {}
            for m in ports:
                out_tagged = vlan in ports[m].tagged
                keys[False, m] = tag_key(m, vlan) if out_tagged else m
                keys[True, m] = m if out_tagged else untag_key(m)
            self._single[vlan] = {k: () if k[1] in stopped else (v,)
                                  for k, v in keys.items()}
            self._flood[vlan] = {(n, t): tuple(keys[t, m] for m in members if m != n)
                                 for n in ports for t in (False, True)}
        # fast path: untagged frames, looked up by ingress port only
        self._ptable, self._pflood, self._psingle = {}, {}, {}
        for n, p in ports.items():
            if p.vlan != NO_VLAN:
                self._ptable[n] = self.table.vlans[p.vlan]
                self._pflood[n] = self._flood[p.vlan][n, False]
                self._psingle[n] = {m: self._single[p.vlan][False, m] for m in ports}
        # with FSTP on, route() first consumes BPDUs and drops what comes
        # in on Discarding ports; with it off the plain path stays
        self._inblocked = {}
        for vlan, stopped in blocked.items():
            for n in stopped:
                self._inblocked[n] = self._inblocked.get(n, frozenset()) | {vlan}
        if fstp is not None and fstp.enabled:
            self.route = self._route_fstp
        else:
            self.__dict__.pop("route", None)

    def port_up(self, port: int) -> None:
        self._fstp_sync()
        self._rebuild()

    def port_down(self, port: int) -> None:
        self._forgotten(self.table.forget_port(port))
        self._fstp_sync()
        self._rebuild()

    def config_changed(self, port: int | None = None) -> None:
        """Call after VLAN membership or FSTP settings changed; forgets
        that port's MACs."""
        if port is not None:
            self._forgotten(self.table.forget_port(port))
        self._fstp_sync()
        self._rebuild()

    def expire(self, now: float) -> None:
        self._forgotten(self.table.forget_older(now - self.expire_after))

    def _hash_event(self, category: str, vlan: int, mac: bytes, port: int) -> None:
        # vde_switch prints the VLAN's two bytes low byte first
        self.net.emit(category, "%s VLAN %02x:%02x Port %d"
                      % (":".join("%02x" % b for b in mac), vlan & 0xFF, vlan >> 8, port))

    def _forgotten(self, gone: list) -> None:
        if self.net.listeners:
            for vlan, mac, port in gone:
                self._hash_event("hash/-", vlan, mac, port)

    def route(self, port: int, frame: bytes, now: float) -> tuple[int, ...]:
        if frame[12] == 0x81 and frame[13] == 0 and len(frame) >= 18:
            return self._route_tagged(port, frame, now)
        table = self._ptable.get(port)         # the port's untagged VLAN
        if table is None:
            return self._drop(port)
        if not frame[6] & 1:                    # learn(): inlined on the hot path
            src = frame[6:12]
            e = table.get(src)
            if e is None:
                table[src] = [port, now]
                if self.net.listeners:
                    self._hash_event("hash/+", self.net.ports[port].vlan, src, port)
            elif e[0] == port:
                e[1] = now
            elif now - e[1] > self.min_persistence:
                e[0] = port
                e[1] = now
        if not frame[0] & 1:
            e = table.get(frame[0:6])
            if e is not None:
                out = e[0]
                return () if out == port else self._psingle[port][out]
        return self._pflood[port]

    def _route_tagged(self, port: int, frame: bytes, now: float) -> tuple[int, ...]:
        vlan = ((frame[14] << 8) | frame[15]) & 0x0FFF
        if vlan not in self._tagged[port]:
            return self._drop(port)
        table = self.table.vlans[vlan]
        if not frame[6] & 1:
            self.learn(table, vlan, frame[6:12], port, now)
        if not frame[0] & 1:
            e = table.get(frame[0:6])
            if e is not None:
                return () if e[0] == port else self._single[vlan][True, e[0]]
        return self._flood[vlan][port, True]

    def _route_fstp(self, port: int, frame: bytes, now: float) -> tuple[int, ...]:
        """route() while FSTP is on: BPDUs and Discarding ingress first."""
        if frame[0] == 1 and frame[0:6] == BPDU_DST:
            return self._bpdu_in(port, frame, now)
        vlans = self._inblocked.get(port)
        if vlans is not None:
            if frame[12] == 0x81 and frame[13] == 0 and len(frame) >= 18:
                vlan = ((frame[14] << 8) | frame[15]) & 0x0FFF
            else:
                vlan = self.net.ports[port].vlan
            if vlan in vlans:
                self.net.ports[port].count_drop(BLOCKED)
                return ()
        return LearningSwitch.route(self, port, frame, now)

    def _bpdu_in(self, port: int, frame: bytes, now: float) -> tuple[int, ...]:
        """A BPDU is for the spanning tree of its VLAN, never forwarded."""
        tagged = frame[12] == 0x81 and frame[13] == 0 and len(frame) >= 18
        if tagged:
            vlan = ((frame[14] << 8) | frame[15]) & 0x0FFF
            if vlan not in self._tagged[port]:
                return self._drop(port)
        else:
            vlan = self.net.ports[port].vlan
            if vlan == NO_VLAN:
                return self._drop(port)
        out = self.fstp.receive(vlan, port, tagged, frame, now)
        if out:
            self.transmit(out)
        return ()

    def learn(self, table: dict, vlan: int, src: bytes, port: int, now: float) -> None:
        """Record ``src`` on ``port`` unless it moved within min_persistence."""
        e = table.get(src)
        if e is None:
            table[src] = [port, now]
            if self.net.listeners:
                self._hash_event("hash/+", vlan, src, port)
        elif e[0] == port:
            e[1] = now
        elif now - e[1] > self.min_persistence:
            e[0] = port
            e[1] = now

    def _drop(self, port: int) -> tuple[int, ...]:
        self.net.ports[port].count_drop("vlan")
        return ()
