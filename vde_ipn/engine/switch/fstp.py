"""Fast spanning tree (FSTP), the protocol of ``vde_switch -F``, sans-IO.

One :class:`Fstp` per switch keeps one :class:`Tree` per VLAN.  It is fed
with the VLAN membership of active ports (:meth:`Fstp.sync`), received
BPDUs (:meth:`Fstp.receive`) and the hello tick (:meth:`Fstp.hello`, every
``HELLO`` seconds); every call returns the BPDUs to send as a list of
``(egress key, frame)``: the frame is untagged and the key tags it for a
tagged member (see :mod:`egress`).  Times are the caller's clock in
seconds; like the C switch, the protocol counts whole seconds since
``origin`` (the switch start).

Decisions follow vde-2's fstp.c so that both switches agree on a tree:

* the priority vector is (root, root cost, designated bridge, port id),
  compared bytewise; the port cost (20000000) is added on reception,
  less the VLAN's bonus on its bonus port;
* a better vector, or any change heard on the root port, makes that port
  the root port: every other port that has spoken FSTP lately is set
  Discarding (alternate/backup) at once and told so, the root port
  Forwarding ("fast protocol"), then a topology change follows;
* an equal-root BPDU on another port decides that port: if the sender
  uses the link as its root port ours is Designated (Forwarding),
  otherwise it is Alternate/Backup (Discarding) -- both ends of a
  redundant link end up discarding;
* a worse root heard on a non-root port is answered with our BPDU;
* no BPDU from the root port for more than 3 hellos: start over as root;
  a backup port that heard nothing for two windows of 4 hellos forwards
  again (its peer no longer speaks FSTP);
* a topology change flushes the VLAN's MAC table and sends a TC BPDU on
  every other forwarding FSTP port;
* ports without BPDUs forward (hosts), edge ports never get BPDUs.

A port is Discarding or Forwarding: the C switch never uses Learning.

Events for debug consoles go to ``listeners``: callables taking
``(category, message)`` with the categories and texts of 2.3.2
(``fstp/status``, ``fstp/root``, ``fstp/+``, ``fstp/-``).
"""

from __future__ import annotations

from ...wire import fstp_bpdu as wire
from ..egress import tag_key

DISCARDING, LEARNING, FORWARDING = 0, 1, 3        # the C switch's values
STATUS_NAMES = ("discarding", "learning", "forwarding", "learning+forwarding")
DEFAULT_COST = 20000000                           # "1Mbit line"
HELLO = wire.HELLO
ROOT_TIMEOUT = 3 * HELLO
NO_ID = b"\xff" * 8
BLOCKED = "fstp"                                   # drop cause: ingress port discarding


class Tree:
    """The spanning tree state of one VLAN."""

    __slots__ = ("root", "rootcost", "dessw", "desport", "rootport", "roottime",
                 "bonusport", "bonuscost", "untag", "tagged", "backup", "edge", "heard")

    def __init__(self, myid: bytes):
        self.bonusport = self.bonuscost = 0
        self.untag: set[int] = set()      # active members, untagged
        self.tagged: set[int] = set()     # active members, tagged
        self.backup: set[int] = set()     # alternate/backup: discarding
        self.edge: set[int] = set()
        self.heard = (set(), set())       # ports that sent BPDUs, two windows
        self.reset(myid)

    def reset(self, myid: bytes) -> None:
        self.root, self.rootcost = myid, 0
        self.dessw, self.desport = NO_ID, b"\0\0"
        self.rootport = self.roottime = 0

    def vector(self) -> bytes:
        return self.root + self.rootcost.to_bytes(4, "big") + self.dessw + self.desport

    def ports(self) -> list[int]:
        """Members in the C switch's order: untagged first, each ascending."""
        return sorted(self.untag) + sorted(self.tagged)

    def active(self, port: int) -> bool:
        """The port spoke FSTP in this window or the previous one."""
        return port in self.heard[0] or port in self.heard[1]


class Fstp:
    """FSTP for one switch.  See the module docstring for the contract.

    ``on_change(flushed, moved)`` (set by the switch using this object) is
    called after any call that flushed VLAN MAC tables (``flushed``, a set
    of VLANs) or changed a port state (``moved``).
    """

    def __init__(self, mac: bytes, priority: int = 0x8000, origin: float = 0.0):
        self.mac = mac
        self.priority = priority & 0xFFFF
        self.myid = wire.bridge_id(self.priority, mac)
        self.origin = origin
        self.enabled = False
        self.trees: dict[int, Tree] = {}
        self.blocked: dict[int, set[int]] = {}     # VLAN -> Discarding ports
        self.cost: dict[int, int] = {}             # port -> cost (default DEFAULT_COST)
        self.listeners: list = []
        self.on_change = None
        self.now = 0                               # last time seen, whole seconds
        self._window = 0
        self._hellos = 0
        self._flushed: set[int] = set()
        self._moved = False

    # -- queries -----------------------------------------------------------
    def tree(self, vlan: int) -> Tree:
        t = self.trees.get(vlan)
        if t is None:
            t = self.trees[vlan] = Tree(self.myid)
        return t

    def state(self, vlan: int, port: int) -> int:
        return DISCARDING if port in self.blocked.get(vlan, ()) else FORWARDING

    def role(self, vlan: int, port: int) -> str:
        """The role as ``fstp/print`` names it."""
        t = self.tree(vlan)
        # 2.3.2 tests the untagged set twice: tagged members print Unknown
        if port not in t.untag:
            return "Unknown"
        if port in t.edge:
            return "Edge"
        if t.rootport == port:
            return "Root"
        return "Alternate/Backup" if port in t.backup else "Designated"

    def is_root(self, vlan: int) -> bool:
        return self.tree(vlan).root == self.myid

    def port_cost(self, port: int) -> int:
        return self.cost.get(port, DEFAULT_COST)

    def print_lines(self, vlan: int, now: float) -> list[str]:
        """The ``fstp/print`` block of one VLAN (2.3.2 layout)."""
        t = self.tree(vlan)
        lines = ["FST DATA VLAN %04d %s %s" % (vlan, "ROOTSWITCH" if t.root == self.myid else "",
                                                "" if self.enabled else "FSTP IS DISABLED"),
                 " ++ root %s" % _hex(t.root),
                 " ++ designated %s" % _hex(t.dessw),
                 " ++ rootport %04d cost %d age %d bonusport %04d bonuscost %d"
                 % (t.rootport, t.rootcost, self._qtime(now) - t.roottime,
                    t.bonusport, t.bonuscost)]
        for port in t.ports():
            lines.append(" -- Port %04d tagged=%d portcost=%d role=%s"
                         % (port, port in t.tagged, self.port_cost(port), self.role(vlan, port)))
        return lines

    # -- configuration -------------------------------------------------------
    def set_enabled(self, on: bool, now: float) -> list:
        """``fstp/setfstp``: turning off makes every VLAN start over, all forwarding."""
        self._qtime(now)
        if on != self.enabled:
            self.enabled = on
            if not on:
                for vlan in sorted(self.trees):
                    self._newvlan(vlan)
        return self._done([])

    def set_edge(self, vlan: int, port: int, on: bool) -> None:
        t = self.tree(vlan)
        if on:
            t.edge.add(port)
            if port in t.untag:               # 2.3.2: untagged members only
                self._set_state(vlan, port, FORWARDING)
        else:                                 # the state is left as it is, as 2.3.2
            t.edge.discard(port)
            t.backup.discard(port)
        self._done([])

    def set_bonus(self, vlan: int, port: int, cost: int) -> None:
        t = self.tree(vlan)
        t.bonusport, t.bonuscost = port, cost

    def forget_vlan(self, vlan: int) -> None:
        """The VLAN was removed: a new one with that id starts afresh."""
        self.trees.pop(vlan, None)
        self.blocked.pop(vlan, None)

    def sync(self, members: dict[int, dict[int, bool]], now: float | None = None) -> list:
        """Align with ``{vlan: {active port: tagged}}``: ports leave, then join.

        A port joining is told our BPDU and causes a topology change; a
        root port leaving makes the VLAN start over (as fstaddport and
        fstdelport do).  ``now`` defaults to the last time seen.
        """
        if now is not None:
            self._qtime(now)
        out: list = []
        for vlan in sorted(self.trees):
            t = self.trees[vlan]
            want = members.get(vlan, {})
            for port in t.ports():
                if port not in want or want[port] != (port in t.tagged):
                    self._port_left(vlan, port, out)
        for vlan in sorted(members):
            t = self.tree(vlan)
            for port, tagged in sorted(members[vlan].items()):
                if port not in t.untag and port not in t.tagged:
                    self._port_joined(vlan, port, tagged, out)
        return self._done(out)

    def update_port(self, port: int, vlans: dict[int, bool],
                    now: float | None = None) -> list:
        """Like :meth:`sync` when only ``port`` changed: it is now a member
        of ``{vlan: tagged}`` and of no other VLAN.  Costs the number of
        VLANs, not the number of ports."""
        if now is not None:
            self._qtime(now)
        out: list = []
        for vlan in sorted(self.trees):
            t = self.trees[vlan]
            if ((port in t.untag or port in t.tagged)
                    and (vlan not in vlans or vlans[vlan] != (port in t.tagged))):
                self._port_left(vlan, port, out)
        for vlan in sorted(vlans):
            t = self.tree(vlan)
            if port not in t.untag and port not in t.tagged:
                self._port_joined(vlan, port, vlans[vlan], out)
        return self._done(out)

    # -- protocol --------------------------------------------------------------
    def hello(self, now: float) -> list:
        """The periodic tick: BPDUs on every non-edge member of every VLAN."""
        q = self._qtime(now)
        out: list = []
        self._hellos += 1
        for vlan in sorted(self.trees):
            t = self.trees[vlan]
            if t.rootport != 0 and q - t.roottime > ROOT_TIMEOUT:
                self._newvlan(vlan)
            for port in t.ports():
                if port not in t.edge:
                    out.append(self._bpdu(vlan, port, q, agr=1))
        if self._hellos & 3 == 0:             # a new listening window every 4 hellos
            self._window = 1 - self._window
            for vlan in sorted(self.trees):
                self._expire_backup(vlan, self._window)
        return self._done(out)

    def receive(self, vlan: int, port: int, tagged: bool, frame: bytes, now: float) -> list:
        """A BPDU arrived on ``port`` for ``vlan``; returns what to answer."""
        q = self._qtime(now)
        out: list = []
        t = self.tree(vlan)
        if port in t.edge:
            return out
        if not t.active(port):
            self._event("fstp/+", "Port %04d VLAN %s" % (port, _vid(vlan)))
        t.heard[self._window].add(port)
        b = wire.decode(frame, tagged)
        if b is None:
            return self._done(out)
        if b.flags & wire.TC:
            self._topology_change(vlan, port, out)
        bonus = t.bonuscost if port == t.bonusport else 0
        cost = (b.rootcost + self.port_cost(port) - bonus) & 0xFFFFFFFF
        mine = t.vector()
        theirs = b.root + cost.to_bytes(4, "big") + b.bridge + b.port
        if mine == theirs:                    # the root speaking through our root port
            t.roottime = q
        elif mine > theirs or port == t.rootport:
            # 2.3.2 compares the old root with its BPDU's source MAC and the
            # 2 length bytes after it, and starts over when not above them
            if t.root <= self.mac + b"\x00\x27":
                self._newvlan(vlan)
            t.root, t.rootcost, t.dessw, t.desport = b.root, cost, b.bridge, b.port
            t.rootport, t.roottime = port, q
            self._event("fstp/root", "Port %04d VLAN %s -> %s" % (port, _vid(vlan), _hex(t.root)))
            self._fast_protocol(vlan, port, out)
            self._topology_change(vlan, port, out)
        elif b.root == t.root:                # same root, longer path through us
            if b.role_is_root:
                if port in t.backup:          # the peer's root port: we are designated
                    t.backup.discard(port)
                    self._set_state(vlan, port, FORWARDING)
                    self._topology_change(vlan, port, out)
            elif port not in t.backup:        # a redundant link: stop using it
                t.backup.add(port)
                self._set_state(vlan, port, DISCARDING)
                self._topology_change(vlan, port, out)
        else:                                 # the peer must learn our better root
            self._send(vlan, port, q, out)
        return self._done(out)

    # -- internals ---------------------------------------------------------
    def _qtime(self, now: float) -> int:
        self.now = int(now - self.origin)
        return self.now

    def _done(self, out: list) -> list:
        if (self._flushed or self._moved) and self.on_change is not None:
            flushed, moved = self._flushed, self._moved
            self._flushed, self._moved = set(), False
            self.on_change(flushed, moved)
        return out

    def _event(self, category: str, message: str) -> None:
        for listener in self.listeners:
            listener(category, message)

    def _set_state(self, vlan: int, port: int, state: int) -> None:
        # reported even when unchanged, as 2.3.2's debug output does
        self._event("fstp/status", "Port %04d VLAN %s %s" % (port, _vid(vlan), STATUS_NAMES[state]))
        blocked = self.blocked.setdefault(vlan, set())
        if (state == DISCARDING) != (port in blocked):
            self._moved = True
            if state == DISCARDING:
                blocked.add(port)
            else:
                blocked.discard(port)

    def _bpdu(self, vlan: int, port: int, q: int, agr: int = 0, tc: int = 0) -> tuple:
        t = self.trees[vlan]
        backup = port in t.backup
        flags = (tc | backup << 1 | (not backup) << 2 | (t.rootport != port) << 3
                 | self.state(vlan, port) << 4 | agr << 6)
        # the root advertises age 0; others the seconds since the root spoke
        age = min((0 if t.rootport == 0 else q) - t.roottime, 0xFFFF)
        frame = wire.encode(self.mac, wire.Bpdu(flags, t.root, t.rootcost, self.myid,
                                                wire.port_id(port), age))
        return (tag_key(port, vlan) if port in t.tagged else port), frame

    def _send(self, vlan: int, port: int, q: int, out: list, agr: int = 0, tc: int = 0) -> None:
        t = self.trees[vlan]
        if self.enabled and (port in t.untag or port in t.tagged):
            out.append(self._bpdu(vlan, port, q, agr, tc))

    def _newvlan(self, vlan: int) -> None:
        """Start over as root of ``vlan``: backup ports forward again."""
        t = self.tree(vlan)
        t.reset(self.myid)
        self._event("fstp/root", "Port %04d VLAN %s -> %s" % (0, _vid(vlan), _hex(t.root)))
        for port in sorted(t.backup):
            t.backup.discard(port)
            self._set_state(vlan, port, FORWARDING)

    def _speaking(self, t: Tree, port: int, exclude: int) -> bool:
        return (port != exclude and port not in t.backup and port not in t.edge
                and t.active(port))

    def _fast_protocol(self, vlan: int, rootport: int, out: list) -> None:
        """New root port: block the other FSTP ports at once, then agree."""
        t = self.trees[vlan]
        for port in t.ports():
            if self._speaking(t, port, rootport):
                self._set_state(vlan, port, DISCARDING)
                t.backup.add(port)
                self._send(vlan, port, self.now, out)
        t.backup.discard(rootport)
        self._set_state(vlan, rootport, FORWARDING)
        self._send(vlan, rootport, self.now, out, agr=1)

    def _topology_change(self, vlan: int, genport: int, out: list) -> None:
        t = self.trees[vlan]
        if self.enabled:                      # with FSTP off the MAC table is kept
            self._flushed.add(vlan)
        # only ports heard lately can be speaking: walk those, in t.ports() order
        heard = t.heard[0] | t.heard[1]
        if not heard:
            return
        heard = sorted(heard)
        for port in [p for p in heard if p in t.untag] + [p for p in heard if p in t.tagged]:
            if self._speaking(t, port, genport):
                self._send(vlan, port, self.now, out, tc=1)

    def _expire_backup(self, vlan: int, window: int) -> None:
        t = self.trees[vlan]
        for port in sorted(t.backup):
            if not t.active(port):
                t.backup.discard(port)
                self._set_state(vlan, port, FORWARDING)
        old, new = t.heard[window], t.heard[1 - window]
        for port in t.ports():
            if port in old and port not in new:
                self._event("fstp/-", "Port %04d VLAN %s" % (port, _vid(vlan)))
        old.clear()

    def _port_joined(self, vlan: int, port: int, tagged: bool, out: list) -> None:
        t = self.trees[vlan]
        (t.tagged if tagged else t.untag).add(port)
        t.backup.discard(port)
        t.edge.discard(port)
        t.heard[0].discard(port)
        t.heard[1].discard(port)
        if port in self.blocked.get(vlan, ()):     # an active port starts forwarding
            self.blocked[vlan].discard(port)
            self._moved = True
        self._send(vlan, port, self.now, out)
        self._topology_change(vlan, port, out)

    def _port_left(self, vlan: int, port: int, out: list) -> None:
        t = self.trees[vlan]
        if t.active(port):
            self._event("fstp/-", "Port %04d VLAN %s" % (port, _vid(vlan)))
        for s in (t.untag, t.tagged, t.backup, t.edge):
            s.discard(port)
        if port == t.rootport:
            self._newvlan(vlan)
        self._topology_change(vlan, port, out)


def _hex(ident: bytes) -> str:
    return ":".join("%02x" % b for b in ident)


def _vid(vlan: int) -> str:
    return "%02x:%02x" % (vlan >> 8, vlan & 0xFF)
