"""Membership of one IPN node: join, follow the others, leave.

A connected node owns, in the companion directory (see
:mod:`vde_ipn.wire.ipn_layout`):

* its doorbell socket ``n/PORT.FLAGS`` (wake-ups and OOB messages);
* if it sends, its ring ``w/PORT``; if it receives, its cursors ``c/PORT``.

It keeps one :class:`Peer` per other node: a socket connected to the
peer's doorbell, the peer's cursor file (to know when a receiver sleeps
and, on lossless networks, how far it has read), and the peer's ring if
the peer sends and this node receives.  :meth:`Member.refresh` brings
that in line with the directory whenever the shared ``gen`` word moved.
"""

from __future__ import annotations

import errno
import os
import secrets
import time

from ..._errors import RemoteProtocolError
from ...engine.ipn.protocols import NetView, policy_class
from ...wire.ipn_layout import (CURSOR_PORT_W, CURSOR_WORDS, NODE_OOB, NODE_READER,
                                 NODE_WRITER, RING_BORN_W, RING_DATA, cursor_slot,
                                 decode_member_file, encode_node, member_file)
from . import bell
from .shm import create_memory, open_memory, remove_own_memory, save_memory
from .macs import Announcer, read_announcements
from .companion import Companion
from .ring import RingReader, RingWriter, ring_capacity

IPN_FLAG_LOSSLESS = 1


class Peer:
    """What this node keeps about another node."""

    __slots__ = ("port", "name", "path", "flags", "cursors", "rung", "ring")

    def __init__(self, port: int, name: str, path: str, flags: str):
        self.port = port
        self.name = name
        self.path = path          # the peer's doorbell socket
        self.flags = flags
        self.cursors = None       # the peer's cursor words (if it receives)
        self.rung = -1            # the peer's arm word when we last rang it
        self.ring = None          # RingReader of the peer's ring (if we receive)

    def close(self) -> None:
        # the cursor words are dropped, not released: a sending thread may
        # still look at them; the mapping goes with the last reference
        self.cursors = None
        if self.ring is not None:
            self.ring.close()


def _map_words(path: str):
    """Another member's cursor words, read-only (see :mod:`.shm`)."""
    return open_memory(path, CURSOR_WORDS * 8).cast("Q")


def _ring_bytes(comp: Companion) -> int:
    """The size of every ring of ``comp``'s network (mtu and pool are fixed)."""
    return RING_DATA + ring_capacity(comp.params.mtu, comp.params.msgpool)


class Member:
    """Membership of one node: join, follow the others, leave.

    A mixin of :class:`vde_ipn.io.ipn.node.IpnNode`, which declares every
    attribute it uses.
    """

    # -- join ------------------------------------------------------------
    def _flags(self) -> str:
        return ((NODE_READER if not self._shut_rd else "")
                + (NODE_WRITER if not self._shut_wr else "")
                + (NODE_OOB if self._handle_oob and self._want_numnodes else ""))

    def _join(self, comp: Companion, protocol: int, want_port: int) -> None:
        """Become a port of ``comp``'s network.  Raises OSError as connect().

        No global lock (any member could hold one for ever): the port is
        claimed by a flock of our own (:meth:`Companion.claim`); then come
        the cursor words and the ring, the doorbell last, and ``gen`` is
        bumped.  A ring whose word ``RING_BORN_W`` is still 0 belongs to a
        node not bound yet (nothing in it to adopt, see _adopt_orphans);
        one found not ready is picked up at a later refresh.
        """
        params = comp.params
        view = NetView(params.maxports)
        policy = policy_class(protocol)(view)
        comp.purge()
        comp.sweep()
        port, claim = self._claim_port(comp, policy, want_port)
        try:
            self._publish(comp, policy, view, port)
        except BaseException:
            self._unpublish(comp)
            os.close(claim)
            raise
        self._claim = claim
        self._comp = comp
        self._policy = policy
        self._view = view
        self._lossless = bool(params.flags & IPN_FLAG_LOSSLESS)
        self._mtu = params.mtu
        policy.newnet()
        self.refresh()

    def _claim_port(self, comp: Companion, policy, want_port: int):
        """A free port and the descriptor of its claim."""
        maxports = comp.params.maxports
        used = {p for p, _f, _n in comp.nodes()} | comp.dead_ports()
        tries = 0
        while True:
            port = policy.newport(used, want_port)
            if port < 0 or port >= maxports or port in used:
                raise OSError(errno.EADDRNOTAVAIL, "no free port on the IPN network")
            claim = comp.claim(port)
            if claim is not None:
                return port, claim
            tries += 1
            if port == want_port and tries < 20:
                time.sleep(0.005)               # a sweep may look at it a moment
                continue
            used.add(port)

    def _publish(self, comp: Companion, policy, view, port: int) -> None:
        params = comp.params
        view.port = port
        self._port = port
        flags = self._flags()
        modes = comp.modes
        self._nid = secrets.token_hex(4)
        self._name = encode_node(port, flags, self._nid)
        if NODE_READER in flags:
            self._cursors = self._make_cursors(comp, port, modes["cursor"])
            self._join_gen = time.monotonic_ns()    # writers born later: all theirs is ours
            for p, f, n in comp.nodes():        # read only what is sent from now on
                if NODE_WRITER in f and p != port:
                    ring = self._attach_ring(comp, p, n, at_head=True)
                    if ring is not None:
                        self._joined_rings[n] = ring
        if NODE_WRITER in flags:
            cap = ring_capacity(params.mtu, params.msgpool)
            self._ring = RingWriter(os.path.join(comp.dir, "w", member_file(self._name)), cap,
                                    secrets.randbits(63), modes["ring"])
            if getattr(policy, "announces", False):
                self._announcer = Announcer(
                    os.path.join(comp.dir, "m", member_file(self._name)), modes["macs"])
        path = comp.node_path(self._name)
        self._sock.bind(path)
        os.chmod(path, modes["sock"] | 0o600)
        if comp.read_params().maxports <= port:        # resized meanwhile
            raise OSError(errno.EADDRNOTAVAIL, "no free port on the IPN network")
        if self._ring is not None:              # 0 until now: nothing to adopt in it
            self._ring.hdr[RING_BORN_W] = time.monotonic_ns()
        comp.bump()

    def _unpublish(self, comp: Companion) -> None:
        """Undo a join that failed half-way."""
        if self._ring is not None:
            remove_own_memory(self._ring.mm)
            self._ring.close()
            self._ring = None
        self._drop_announcer()
        if self._cursors is not None:
            self._cursors.release()
            self._cursors = None
        for p in (os.path.join(comp.dir, "c", member_file(self._name)) if self._name else None,
                  comp.node_path(self._name) if self._name else None):
            if p:
                try:
                    os.unlink(p)
                except OSError:
                    pass
        for ring in self._joined_rings.values():
            ring.close()
        self._joined_rings.clear()
        self._port = -1

    def _make_cursors(self, comp: Companion, port: int, mode: int):
        path = os.path.join(comp.dir, "c", member_file(self._name))
        # marked for removal at once: it lives while we do (or a sender maps it)
        view = create_memory(path, CURSOR_WORDS * 8, mode, removed=True).cast("Q")
        view[CURSOR_PORT_W] = port
        return view

    def _attach_ring(self, comp: Companion, port: int, name: str, at_head: bool):
        try:
            ring = RingReader(os.path.join(comp.dir, "w", member_file(name)), port,
                              _ring_bytes(comp))
        except OSError:
            return None                 # not there (yet): a later refresh finds it
        if at_head:
            ring.start_at_head()
            slot = cursor_slot(port)
            self._cursors[slot + 1] = ring.cursor
            self._cursors[slot] = ring.ring_id
        return ring

    # -- follow ------------------------------------------------------------
    def refresh(self) -> None:
        """Catch up with membership changes (called when ``gen`` moved)."""
        comp = self._comp
        self._gen_seen = comp.gen[0]
        params = comp.read_params()
        comp.params = params
        self._view.maxports = params.maxports
        wnames = None
        if self._cursors is not None:            # rings before nodes: see Companion.sweep
            wnames = os.listdir(os.path.join(comp.dir, "w"))
        nodes = {p: (f, n) for p, f, n in comp.nodes() if p != self._port}
        policy = self._policy
        for peer in self._peers.values():
            if peer.ring is not None and self._cursors is None:   # we stopped reading
                peer.ring.close()
                peer.ring = None
            if peer.cursors is not None and self._ring is None:   # we stopped sending
                peer.cursors.release()
                peer.cursors = None
        for port in [p for p in self._peers if p not in nodes or nodes[p][1] != self._peers[p].name]:
            peer = self._peers.pop(port)
            policy.predelport(port)
            if peer.ring is not None and peer.ring.cursor < peer.ring.head():
                self._draining.append(peer.ring)     # what it sent before leaving is ours
                peer.ring = None
            elif peer.ring is not None:
                self._lost_gone += peer.ring.lost
            peer.close()
            if port not in nodes:
                policy.delport(port)
        for port, (flags, name) in nodes.items():
            peer = self._peers.get(port)
            if peer is not None:                 # parts it had not published yet?
                try:
                    if (NODE_READER in flags and peer.cursors is None
                            and self._ring is not None):
                        peer.cursors = _map_words(os.path.join(comp.dir, "c", member_file(name)))
                    if NODE_WRITER in flags and peer.ring is None and self._cursors is not None:
                        peer.ring = self._find_ring(port, name)
                except OSError:
                    pass
                continue
            peer = Peer(port, name, comp.node_path(name), flags)
            self._peers[port] = peer
            try:
                if NODE_READER in flags and self._ring is not None:
                    peer.cursors = _map_words(os.path.join(comp.dir, "c", member_file(name)))
                if NODE_WRITER in flags and self._cursors is not None:
                    peer.ring = self._find_ring(port, name)
            except OSError:
                pass                             # gone meanwhile: next refresh drops it
            policy.postnewport(port)
        readers = [p for p in self._peers.values() if p.cursors is not None]
        self._readers = readers
        if self._cursors is not None:
            self._adopt_orphans(nodes, wnames)
        draining = []
        for ring in self._draining:
            if ring.cursor < ring.head() and self._cursors is not None:
                draining.append(ring)
            else:
                self._lost_gone += ring.lost
                self._finished.add(ring.ring_id)
                ring.close()
        self._draining = draining
        self._rings = [p.ring for p in self._peers.values() if p.ring is not None] + draining
        self._view.readers = tuple(sorted([p.port for p in readers]
                                          + ([self._port] if self._cursors is not None else [])))
        policy.members_changed()
        self._limit = 0                           # recompute room on next send

    def _adopt_orphans(self, nodes: dict, wnames: list) -> None:
        """Read what writers that left before we saw them had sent us."""
        known = {r.ring_id for r in self._draining} | self._finished
        known |= {p.ring.ring_id for p in self._peers.values() if p.ring is not None}
        mine = member_file(self._name)
        alive = {member_file(n) for f, n in nodes.values() if NODE_WRITER in f}
        for name in wnames:
            try:
                port = decode_member_file(name)
            except RemoteProtocolError:
                continue
            if name == mine or name in alive:
                continue                              # ours, or a peer ring
            try:
                ring = RingReader(os.path.join(self._comp.dir, "w", name), port,
                                  _ring_bytes(self._comp))
            except OSError:
                continue
            slot = cursor_slot(port)
            if ring.ring_id in known:
                ring.close()
                continue
            if self._cursors[slot] == ring.ring_id:
                ring.cursor = self._cursors[slot + 1]
                ring.next_seq = -1
            elif not ring.hdr[RING_BORN_W]:
                ring.close()                           # its writer is joining now
                continue
            elif ring.hdr[RING_BORN_W] <= self._join_gen:
                self._finished.add(ring.ring_id)       # older than us: not ours
                ring.close()
                continue
            self._draining.append(ring)

    def _find_ring(self, port: int, name: str):
        """The ring of writer node ``name``: from the start unless seen at join."""
        slot = cursor_slot(port)
        ring = self._joined_rings.pop(name, None)      # positioned when we joined
        if ring is not None:
            return ring
        ring = self._attach_ring(self._comp, port, name, at_head=False)
        if ring is not None and self._cursors[slot] == ring.ring_id:
            ring.cursor = self._cursors[slot + 1]
            ring.next_seq = -1
        elif ring is not None:
            self._cursors[slot] = ring.ring_id
            self._cursors[slot + 1] = 0
        return ring

    def _ring_peer(self, peer: Peer, value: int) -> bool:
        """Wake ``peer`` for its arm ``value``; False when it is dead."""
        return bell.ring(self._tx, peer.path, value)

    def _peer_died(self) -> None:
        comp = self._comp
        if comp is None:
            return
        if comp.purge():
            comp.bump()
        self.refresh()

    # -- change and leave ----------------------------------------------------
    def _change_flags(self) -> None:
        """Publish new node flags after a shutdown or an OOB option change."""
        comp = self._comp
        flags = self._flags()
        if NODE_WRITER not in flags and self._ring is not None:
            self._let_ring_go()
        if NODE_READER not in flags and self._cursors is not None:
            self._drop_cursors()
        name = encode_node(self._port, flags, self._nid)
        if name != self._name:
            os.rename(comp.node_path(self._name), comp.node_path(name))
            self._name = name
        comp.bump()
        self.refresh()

    def _let_ring_go(self) -> None:
        """Stop sending; readers may still drain the ring.

        Its segment is marked for removal: it goes when the last reader
        that attached it detaches.  If some reader has not attached it
        yet, a copy is saved in the ring file first, where that reader
        finds it (:func:`.shm.open_memory`) until the file is swept.
        (A writer killed has no say: its segment stays, readers may attach
        it, and whoever may sweeps it, see :meth:`Companion.sweep`.)
        """
        ring = self._ring
        slot = cursor_slot(self._port)
        seen = True
        for port, flags, name in self._comp.nodes():
            if NODE_READER in flags and port != self._port:
                peer = self._peers.get(port)
                if (peer is None or peer.name != name or peer.cursors is None
                        or peer.cursors[slot] != ring.ring_id):
                    seen = False
        if not seen:
            try:
                save_memory(ring.path, ring.mm)
            except OSError:
                pass                            # nowhere to keep it: lost with us
        remove_own_memory(ring.mm)
        ring.close(unlink=False)
        self._ring = None
        self._drop_announcer()

    def _drop_announcer(self) -> None:
        if self._announcer is not None:
            self._announcer.close()
            self._announcer = None

    def _read_announcements(self, now: float) -> None:
        """Learn where the other senders' MACs live (see ipn_macs)."""
        self._mac_scan = now
        learn = self._policy.learn_mac
        for peer in list(self._peers.values()):
            if NODE_WRITER in peer.flags:
                path = os.path.join(self._comp.dir, "m", member_file(peer.name))
                for mac, when in read_announcements(path):
                    learn(peer.port, mac, when)

    def _drop_cursors(self) -> None:
        self._cursors.release()
        self._cursors = None
        try:
            os.unlink(os.path.join(self._comp.dir, "c", member_file(self._name)))
        except OSError:
            pass

    def _leave(self) -> None:
        """Leave the network (the socket stays usable for nothing)."""
        comp = self._comp
        if self._port >= 0:
            self._policy.predelport(self._port)
            if self._ring is not None:
                self._let_ring_go()
            if self._cursors is not None:
                self._drop_cursors()
            comp.remove_node(self._port, self._name)
            comp.bump()
            if self._claim >= 0:                 # the port is free once we are gone
                os.close(self._claim)
                self._claim = -1
            self._policy.delport(self._port)
            self._policy.delnet()
        for peer in self._peers.values():
            peer.close()
        for ring in list(self._joined_rings.values()) + self._draining:
            ring.close()
        self._draining = []
        self._joined_rings.clear()
        self._peers.clear()
        self._readers = []
        self._rings = []
        self._comp = None
        comp.close()
