"""The switch's flow cache: its Python side (the C side is ``_fastpath.c``).

A learning switch spends most of its frames on the same few unicast
conversations.  Once the engine has routed such a frame, the reader
offers it here; if nothing but the MAC table decided where it went (an
untagged unicast from a MAC learned on its ingress port to a MAC learned
on one other port, no spanning tree, no observer, a receiver with an
empty queue), a flow (ingress socket, destination MAC, source MAC) ->
egress socket is installed, and the C side forwards the next such frames
inside the loop's epoll wait, without the interpreter: a lone frame
then costs what it costs the C switch.  Every other frame goes on to the
Python reader unchanged (see ``_fastpath.c``).

The engine stays the authority: every flow is forgotten when anything it
was derived from changes (a MAC learned, moved or forgotten; a port
joining, leaving or changing VLANs; the spanning tree; the policy; an
observer; a receiver's backlog), and at every MAC-table expiry tick in
any case.  Counters and MAC ages are handed back to the engine before
that, before every expiry and before every console command, so what the
console and the MAC expiry see is what they would see without the cache.

``VDE_IPN_FASTPATH=0`` in the environment turns the cache off (the
switch then runs its Python path alone, as it does where the C part was
not built).
"""

from __future__ import annotations

import os
import socket

from ...engine.egress import PORT_MASK
from ...engine.switch.learning import LearningSwitch
from .datasock import Sender

try:
    from . import _fastpath
except ImportError:                      # not built: the Python path alone
    _fastpath = None

AVAILABLE = _fastpath is not None


def wanted() -> bool:
    return AVAILABLE and os.environ.get("VDE_IPN_FASTPATH", "1") != "0"


class FlowCache:
    """One switch's flows, and the loop wait that forwards them."""

    __slots__ = ("c", "net", "senders", "take", "pending", "socks", "active")

    def __init__(self, c, net, senders):
        self.c = c
        self.net = net
        self.senders = senders           # egress key -> send functions
        self.take = c.take               # reader: take(fd) -> frame kept aside, or None
        self.pending = c.pending
        self.socks: set = set()          # the data sockets of the endpoints
        # whether C reads them: only while frames may be cached at all (a
        # learning switch without FSTP nor observer), or it would only
        # read each frame to hand it on
        self.active = False

    @classmethod
    def create(cls, loop, net, senders) -> "FlowCache | None":
        """A cache serving ``loop``'s epoll wait, or None: not built, turned
        off, not an epoll loop, or the loop's wait already serves another
        switch (one cache per loop)."""
        if not wanted():
            return None
        epfd = loop.epoll_fd()
        if epfd is None or loop.poll_override is not None:
            return None
        cache = cls(_fastpath.FastPath(epfd, net.max_frame), net, senders)
        loop.poll_override = cache.c.poll
        cache.hook(net.policy)
        return cache

    def hook(self, policy) -> None:
        """Follow ``policy``'s changes (call again when the policy changes)."""
        self.stale()
        if isinstance(policy, LearningSwitch):
            policy.on_change = self.stale
            policy.table.on_change = self.stale
            policy.table.before_move = self.sync

    # -- endpoints --------------------------------------------------------------
    def attach(self, sock: socket.socket) -> None:
        self.socks.add(sock)
        if self.active:
            self.c.attach(sock.fileno())

    def block(self, sock: socket.socket, on: bool) -> None:
        """While ``sock``'s sender has a backlog, its frames are left to it."""
        self.c.block(sock.fileno(), on)

    def detach(self, sock: socket.socket) -> None:
        """Before ``sock`` is closed; forgets every flow."""
        self.sync()
        self.socks.discard(sock)
        self.c.detach(sock.fileno())

    # -- the engine's side ------------------------------------------------------------
    def offer(self, reader, frame: bytes, out: int) -> None:
        """``reader`` routed ``frame`` to the one egress key ``out``: cache
        it if nothing but the MAC table decided so (see the module doc)."""
        # active: a learning switch, no spanning tree, no observer (stale())
        port_no = reader.port_no
        if not self.active or out & ~PORT_MASK \
                or not self.net.policy.decided_by_table(port_no, frame, out):
            return
        sends = self.senders.get(out)
        if sends is None or len(sends) != 1:
            return
        sender = getattr(sends[0], "__self__", None)
        if type(sender) is not Sender or sender.queue or sender.pending \
                or not isinstance(sender.sock, socket.socket):
            return
        sock = reader.sock
        if not isinstance(sock, socket.socket):
            return
        self.c.add(sock.fileno(), frame, sender.sock.fileno(), port_no, out)

    def sync(self) -> None:
        """Hand the counters and MAC ages of forwarded frames to the engine."""
        counts, seen = self.c.harvest()
        ports = self.net.ports
        for n, in_pkts, in_bytes, out_pkts, out_bytes in counts:
            p = ports.get(n)
            if p is not None:
                p.in_pkts += in_pkts
                p.in_bytes += in_bytes
                p.out_pkts += out_pkts
                p.out_bytes += out_bytes
        if seen:
            policy = self.net.policy
            if isinstance(policy, LearningSwitch):
                for port_no, mac, last in seen:
                    policy.seen(port_no, mac, last)

    def stale(self) -> None:
        """Something the flows were derived from changed: forget them all."""
        self.sync()
        self.c.clear()
        policy = self.net.policy
        active = type(policy) is LearningSwitch and self.net.observer is None \
            and policy.routes_by_table
        if active != self.active:
            self.active = active
            for sock in self.socks:
                if active:
                    self.c.attach(sock.fileno())
                else:                    # what C read is still taken first
                    self.c.attach_off(sock.fileno())

    def stats(self) -> dict:
        return self.c.stats()
