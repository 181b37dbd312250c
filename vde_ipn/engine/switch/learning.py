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
unicasts; without FSTP the per-frame path is unchanged.

The routes (who gets a flood, which egress key a unicast takes) are
built on first use per VLAN and ingress port, and only the VLANs a
change touches are forgotten: a port joining or leaving costs the same
whatever the number of ports.
"""

from __future__ import annotations

from ...wire.ethernet import NO_VLAN, mac_str, vlan_of
from ...wire.fstp_bpdu import BPDU_DST
from ..egress import tag_key, untag_key
from ..mac_table import MacTable
from .fstp import BLOCKED
from ..policy import LazyTable, Policy, register



class _VlanRoutes:
    """Where the frames of one VLAN go, computed on first use.

    ``flood[tagged][ingress]`` and ``single[tagged][out]`` hold egress keys
    (see :mod:`egress`): a plain port when the frame leaves as it came, a
    rewrite key when a tag must be added or removed.  ``tagged`` is how
    the frame came in.
    """

    __slots__ = ("vlan", "policy", "order", "flood", "single")

    def __init__(self, policy, vlan: int):
        self.vlan = vlan
        self.policy = policy
        self.order: tuple | None = None      # forwarding members, ascending
        self.flood = (LazyTable(lambda n: self._flood(n, False)),
                      LazyTable(lambda n: self._flood(n, True)))
        self.single = (LazyTable(lambda m: self._single(m, False)),
                       LazyTable(lambda m: self._single(m, True)))

    def members_changed(self) -> None:
        self.order = None
        self.flood[0].clear()
        self.flood[1].clear()

    def port_changed(self, port: int) -> None:
        self.single[0].pop(port, None)
        self.single[1].pop(port, None)

    def everything_changed(self) -> None:
        self.members_changed()
        self.single[0].clear()
        self.single[1].clear()

    def _key(self, m: int, tagged_in: bool) -> int:
        port = self.policy.net.ports.get(m)
        out_tagged = port is not None and self.vlan in port.tagged
        if tagged_in:
            return m if out_tagged else untag_key(m)
        return tag_key(m, self.vlan) if out_tagged else m

    def _stopped(self):
        fstp = self.policy.fstp
        return () if fstp is None else fstp.blocked.get(self.vlan, ())

    def _flood(self, n: int, tagged_in: bool) -> tuple:
        if self.order is None:
            stopped = self._stopped()
            self.order = tuple(sorted(m for m in self.policy._vmembers.get(self.vlan, ())
                                      if m not in stopped))
        key = self._key
        return tuple(key(m, tagged_in) for m in self.order if m != n)

    def _single(self, m: int, tagged_in: bool) -> tuple:
        return () if m in self._stopped() else (self._key(m, tagged_in),)


@register("switch")
class LearningSwitch(Policy):
    """Learning Ethernet switch with 802.1Q VLAN membership."""

    def __init__(self, net, *, expire: float = 100.0, min_persistence: float = 3.0):
        self.expire_after = expire
        self.min_persistence = min_persistence
        self.table = MacTable()
        self._joined: dict[int, dict[int, bool]] = {}   # active port -> {VLAN: tagged}
        self._vmembers: dict[int, set] = {}              # VLAN -> its active ports
        self._vlans: dict[int, _VlanRoutes] = LazyTable(lambda v: _VlanRoutes(self, v))
        # per ingress port, for untagged frames: (MAC table, flood, single, VLAN)
        self._pcache: dict[int, tuple | None] = LazyTable(self._port_routes)
        self._inblocked: dict[int, frozenset] = {}
        self.fstp = None
        self.transmit = None
        # f() after routes changed (ports, VLANs, the spanning tree); the
        # MAC table has its own (table.on_change)
        self.on_change = None
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
            self.table.clear_vlan(vlan)
        if moved:
            self._stops_changed()

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
        self._forget_removed_vlans()
        out = fstp.sync(members)
        if out:
            self.transmit(out)

    def _fstp_port(self, port: int, vlans: dict) -> None:
        """Tell the spanning tree that ``port`` is now in ``vlans`` only."""
        fstp = self.fstp
        if fstp is None:
            return
        self._forget_removed_vlans()
        out = fstp.update_port(port, vlans)
        if out:
            self.transmit(out)

    def _forget_removed_vlans(self) -> None:
        fstp = self.fstp
        for vlan in [v for v in fstp.trees if v not in self.net.vlans]:
            fstp.forget_vlan(vlan)

    _SHARED: dict = {}                   # one read-only dict per membership seen

    @classmethod
    def _membership(cls, p) -> dict[int, bool]:
        """{VLAN: tagged} of a port, empty when it has no endpoint (shared
        between ports with the same membership: never modify it)."""
        if p is None or not p.endpoints:
            return {}
        if not p.tagged:
            vlans = {} if p.vlan == NO_VLAN else {p.vlan: False}
        else:
            vlans = {vlan: True for vlan in p.tagged}
            if p.vlan != NO_VLAN:
                vlans[p.vlan] = False
        key = tuple(sorted(vlans.items()))
        shared = cls._SHARED.get(key)
        if shared is None:
            if len(cls._SHARED) > 4096:      # many distinct trunks: stop sharing
                return vlans
            shared = cls._SHARED[key] = vlans
        return shared

    def _rebuild(self) -> None:
        """Recompute the VLAN membership of every port and forget every route."""
        self._joined = {}
        self._vmembers = {}
        for n, p in self.net.ports.items():
            vlans = self._membership(p)
            if vlans:
                self._joined[n] = vlans
                for vlan in vlans:
                    self._vmembers.setdefault(vlan, set()).add(n)
        self._pcache.clear()
        self._stops_changed()

    def _stops_changed(self) -> None:
        """The Discarding ports changed: every VLAN's routes are forgotten."""
        for routes in self._vlans.values():
            routes.everything_changed()
        self._pcache.clear()
        # with FSTP on, route() first consumes BPDUs and drops what comes
        # in on Discarding ports; with it off the plain path stays
        fstp = self.fstp
        self._inblocked = {}
        if fstp is not None:
            for vlan, stopped in fstp.blocked.items():
                for n in stopped:
                    self._inblocked[n] = self._inblocked.get(n, frozenset()) | {vlan}
        if fstp is not None and fstp.enabled:
            self.route = self._route_fstp
        else:
            self.__dict__.pop("route", None)
        if self.on_change is not None:
            self.on_change()

    def _update_port(self, n: int) -> dict:
        """Port ``n`` came, went or was reconfigured: patch the tables.

        Costs the number of VLANs, whatever the number of ports.
        Returns the port's membership now.
        """
        old = self._joined.pop(n, {})
        new = self._membership(self.net.ports.get(n))
        if new:
            self._joined[n] = new
        vlans = self._vlans
        for vlan in old.keys() | new.keys():
            if old.get(vlan) == new.get(vlan):
                continue
            members = self._vmembers.get(vlan)
            if members is None:
                members = self._vmembers[vlan] = set()
            if vlan in new:
                members.add(n)
            else:
                members.discard(n)
            if vlan in vlans:
                vlans[vlan].members_changed()
        for routes in vlans.values():        # n as a destination: tagged or not
            routes.port_changed(n)
        self._pcache.pop(n, None)
        if self.on_change is not None:
            self.on_change()
        return new

    def _port_routes(self, n: int):
        p = self.net.ports.get(n)
        if p is None or p.vlan == NO_VLAN:
            return None
        vlan = p.vlan
        routes = self._vlans[vlan]
        table = self.table.vlans.get(vlan)
        if table is None:
            table = self.table.vlans[vlan] = {}
        return table, routes.flood[0], routes.single[0], vlan

    # -- what the tables say (tests compare them with a rebuilt reference) --------
    def flood_keys(self, vlan: int, port: int, tagged: bool) -> tuple[int, ...]:
        """Egress keys of a flood in ``vlan`` that came in on ``port``."""
        return self._vlans[vlan].flood[tagged][port]

    def single_keys(self, vlan: int, out: int, tagged: bool) -> tuple[int, ...]:
        """Egress keys of a unicast in ``vlan`` learned on ``out``."""
        return self._vlans[vlan].single[tagged][out]

    def port_up(self, port: int) -> None:
        self._fstp_port(port, self._update_port(port))

    def port_down(self, port: int) -> None:
        self._forgotten(self.table.forget_port(port))
        self._fstp_port(port, self._update_port(port))

    def config_changed(self, port: int | None = None) -> None:
        """Call after VLAN membership or FSTP settings changed; forgets
        that port's MACs (``None``: anything may have changed)."""
        if port is None:
            self._fstp_sync()
            self._rebuild()
            return
        self._forgotten(self.table.forget_port(port))
        self._fstp_port(port, self._update_port(port))

    def expire(self, now: float) -> None:
        self._forgotten(self.table.forget_older(now - self.expire_after))

    def _hash_event(self, category: str, vlan: int, mac: bytes, port: int) -> None:
        # vde_switch prints the VLAN's two bytes low byte first
        self.net.emit(category, "%s VLAN %02x:%02x Port %d"
                      % (mac_str(mac), vlan & 0xFF, vlan >> 8, port))

    def _forgotten(self, gone: list) -> None:
        if self.net.listeners:
            for vlan, mac, port in gone:
                self._hash_event("hash/-", vlan, mac, port)

    def route(self, port: int, frame: bytes, now: float) -> tuple[int, ...]:
        if frame[12] == 0x81:                  # maybe tagged (vlan_of decides): an
            vlan = vlan_of(frame)              # untagged frame makes no call here
            if vlan is not None:
                return self._route_tagged(port, frame, vlan, now)
        routes = self._pcache[port]            # the port's untagged VLAN
        if routes is None:
            return self._drop(port)
        table, flood, single, vlan = routes
        if not frame[6] & 1:
            src = frame[6:12]
            e = table.get(src)
            if e is not None and e[0] == port:
                e[1] = now               # MacTable.learn's common case, without the call
            elif self.table.learn(table, vlan, src, port, now, self.min_persistence) \
                    and self.net.listeners:
                self._hash_event("hash/+", vlan, src, port)
        if not frame[0] & 1:
            e = table.get(frame[0:6])
            if e is not None:
                out = e[0]
                return () if out == port else single[out]
        return flood[port]

    def _route_tagged(self, port: int, frame: bytes, vlan: int, now: float) -> tuple[int, ...]:
        if vlan not in self.net.ports[port].tagged:
            return self._drop(port)
        table = self.table.vlans.get(vlan)
        if table is None:
            table = self.table.vlans[vlan] = {}
        if not frame[6] & 1:
            self.learn(table, vlan, frame[6:12], port, now)
        routes = self._vlans[vlan]
        if not frame[0] & 1:
            e = table.get(frame[0:6])
            if e is not None:
                return () if e[0] == port else routes.single[1][e[0]]
        return routes.flood[1][port]

    def _route_fstp(self, port: int, frame: bytes, now: float) -> tuple[int, ...]:
        """route() while FSTP is on: BPDUs and Discarding ingress first."""
        if frame[0] == 1 and frame[0:6] == BPDU_DST:
            return self._bpdu_in(port, frame, now)
        vlans = self._inblocked.get(port)
        if vlans is not None:
            vlan = vlan_of(frame)
            if vlan is None:
                vlan = self.net.ports[port].vlan
            if vlan in vlans:
                self.net.ports[port].count_drop(BLOCKED)
                return ()
        return LearningSwitch.route(self, port, frame, now)

    def _bpdu_in(self, port: int, frame: bytes, now: float) -> tuple[int, ...]:
        """A BPDU is for the spanning tree of its VLAN, never forwarded."""
        vlan = vlan_of(frame)
        tagged = vlan is not None
        if tagged:
            if vlan not in self.net.ports[port].tagged:
                return self._drop(port)
        else:
            vlan = self.net.ports[port].vlan
            if vlan == NO_VLAN:
                return self._drop(port)
        out = self.fstp.receive(vlan, port, tagged, frame, now)
        if out:
            self.transmit(out)
        return ()

    # -- for whoever repeats the table's decisions (io/switch/fastpath.py) ----------
    @property
    def routes_by_table(self) -> bool:
        """False while the spanning tree sees every frame first."""
        return "route" not in self.__dict__

    def decided_by_table(self, port: int, frame: bytes, out: int) -> bool:
        """Did the MAC table alone send this untagged unicast ``frame`` from
        ``port`` to ``out``: its source learned on ``port``, its destination
        on ``out``?  Then the next frames with the same MACs go the same way
        until the tables change (``on_change``, ``table.on_change``)."""
        if not self.routes_by_table or frame[0] & 1 or frame[6] & 1 or frame[12] == 0x81:
            return False
        routes = self._pcache.get(port)
        if routes is None:
            return False
        table = routes[0]
        src = table.get(frame[6:12])
        dst = table.get(frame[0:6])
        # (not so for a move min_persistence refused: the source is elsewhere)
        return src is not None and src[0] == port and dst is not None and dst[0] == out

    def seen(self, port: int, mac: bytes, when: float) -> None:
        """``mac`` sent on ``port`` at ``when``, in a frame forwarded for us:
        its age, as if we had routed the frame."""
        routes = self._pcache.get(port)
        e = None if routes is None else routes[0].get(mac)
        if e is not None and e[0] == port and e[1] < when:
            e[1] = when

    def learn(self, table: dict, vlan: int, src: bytes, port: int, now: float) -> None:
        """Record ``src`` on ``port`` unless it moved within min_persistence."""
        if self.table.learn(table, vlan, src, port, now, self.min_persistence) \
                and self.net.listeners:
            self._hash_event("hash/+", vlan, src, port)

    def _drop(self, port: int) -> tuple[int, ...]:
        self.net.ports[port].count_drop("vlan")
        return ()
