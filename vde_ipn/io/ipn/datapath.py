"""The data path of an IPN node: send, receive, wait and wake.

``send`` runs the network's policy in the sender and writes the message
once into the sender's ring; every receiver reads it from there (see
:mod:`vde_ipn.io.ipn.ring`).  ``fileno()`` is the node's doorbell socket
(:mod:`vde_ipn.io.ipn.bell`), and it is readable exactly when ``recv``
has something to return, so ``select``/``poll``/``epoll``/asyncio and a
blocking ``recv`` after them never wait for nothing.

Readiness protocol.  After every ``recv`` the node is in one of two
states, and each ``recv`` restores one of them before it returns:

* *behind*: a message or OOB message is waiting, and at least one
  datagram is queued on the doorbell socket (the node rings itself if no
  sender did);
* *armed*: nothing is waiting, the doorbell socket has been drained, and
  the node has published a new arm word (cursor word ``CURSOR_ARM_W``).
  A sender that writes a message and then sees an arm word it has not
  rung for rings once.

Nobody can wait on a descriptor it never asked for: until ``fileno()``
is first called (``select``, ``poll``, ``selectors`` and asyncio all call
it) a node keeps neither state after ``recv`` and arms only when a
``recv`` is about to block, so a receiver that keeps up with a sender
costs it no doorbell.  ``fileno()`` switches the node to the protocol
above for good, settling it first.

Why no wake-up is lost.  The sender does ``store head; FENCE; load arm``
and the receiver ``store arm; FENCE; load head`` (FENCE: releasing a
``threading.Lock``, a locked instruction, which x86 makes a full
barrier; x86 keeps every other store-store and load-load order the ring
relies on, see :mod:`vde_ipn.io.ipn.ring`).  With both fences at least
one side sees the other's store: either the receiver finds the message
while arming (and rings itself), or the sender sees the new arm word and
rings.

Why a doorbell means a message.  The node drains its socket each time it
arms, so doorbells answered before are gone; the high 32 bits of an arm
word are the node's secret, which doorbells carry, and the kernel drops
any datagram without it (:mod:`vde_ipn.io.ipn.bell`), so members that
cannot read the node's arm word (no w) cannot ring it.  One race is left:
a sender preempted between its fence and its load of the arm word, for
as long as the receiver takes to read that very message and arm again,
then rings for a message already read; a ``recv`` after ``select`` then
waits for the next message.  Closing it needs an atomic exchange between
processes, which a kernel has and plain shared memory has not.

Watching before arming.  A receiver that caught up in the middle of a
stream (two messages or more since it last armed) checks the ring's head
word up to ``SPIN`` times (a few microseconds) before it arms; a message
that comes meanwhile is read with no doorbell on either side, so neither
process makes a system call while the stream lasts.  This happens inside
``recv`` with the node's lock held, and ``recv`` still returns in one of
the two states above: the watch ends either with a message (behind: the
doorbell that made the node readable is still queued, or it rings
itself) or with arming as above.  A receiver that gets one message at a
time (a ping-pong) never watches.

Room on a lossless network.  A writer short of room does ``store wait
word; FENCE; load cursors`` and sleeps on its doorbell socket, re-probing
every ``_WAIT_SLICE`` seconds.  A reader publishes its cursor for a ring
lazily (:mod:`vde_ipn.io.ipn.ring`): every sixteenth of the ring, each
time it sees a wait word it has not answered (then it also rings the
writer once half the ring is free), and before arming, where it does
``store cursors; store arm; FENCE; load wait words`` and answers any
writer that waits.  So a writer that went to sleep on a cursor that was
not published yet is answered either by the reader's next message (its
load of the wait word comes after the writer's store, or the writer saw
the cursor) or by the reader's arming, fenced against the writer's.  A
writer sees at most a sixteenth of its ring less room than there is
while a reader that got messages has not called ``recv`` again; a ring
holds twice ``msgpool`` full messages at least, so that never takes room
the network promised.

Queueing (ipn.md section 7): on a LOSSLESS network a sender blocks (or
gets EAGAIN) while its ring holds a message some receiver has not read;
on a lossy one it never waits and a receiver that fell a whole ring
behind loses the oldest messages.  One socket may be shared by threads:
sends (and receives) are serialised by the node's lock (which costs
about as much as the fence a send needs anyway; the receive side was
measured: taking it only once threads share saved too little to be worth
a second protocol).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time

from ...wire.ipn_layout import (CURSOR_ARM_W, ENTRY_SIZE, KIND_ALL, KIND_MASK, KIND_ONE, RING_DATA,
                                 NODE_READER, NODE_WRITER, RING_HEAD_W, RING_WAIT_W,
                                 cursor_slot, encode_numnode_oob)
from . import bell
from .macs import RESCAN
from .membership import Member

MSG_OOB = socket.MSG_OOB
_MAXDGRAM = 256
_WAIT_SLICE = 0.2                 # a waiting sender re-checks members this often
_NO_LIMIT = 1 << 62
SPIN = 64                         # head checks before arming in a stream (a few us)

_fence_lock = threading.Lock()


def _fence() -> None:
    """A full memory barrier on x86 (a locked instruction in the lock)."""
    _fence_lock.acquire()
    _fence_lock.release()


def _err(code: int, what: str = "") -> OSError:
    return OSError(code, os.strerror(code) + (": " + what if what else ""))


class DataPath(Member):
    """Messages in and out of a connected node; the socket API sits on top."""

    # -- send ------------------------------------------------------------------
    def send(self, data, flags: int = 0) -> int:
        """Send one message to the receivers the policy picks; returns its length."""
        lock = self._lock
        lock.acquire()
        try:
            if not self._connected or self._shut_wr:
                raise self._send_error()
            if self._genv[0] != self._gen_seen:
                self.refresh()
            n = len(data)
            if n > self._mtu:
                raise _err(errno.EOVERFLOW)
            policy = self._policy
            now = time.monotonic() if policy.needs_clock else 0.0
            dests = policy.handlemsg(self._port, data, now)
            if self._announcer is not None and n >= 14:
                self._announcer.sent_from(data[6:12], now)
                if dests is policy.flood and not data[0] & 1 and now - self._mac_scan > RESCAN:
                    self._read_announcements(now)     # a unicast we would flood
                    dests = policy.handlemsg(self._port, data, now)
            if not dests:
                return n
            ring = self._ring
            if dests is policy.flood:
                if ring.try_write(data, KIND_ALL, 0, 0, self._limit):
                    self._make_room(n, flags)
                    ring.write(data, KIND_ALL, 0, 0)
                readers = self._readers
            else:
                readers = self._send_some(data, dests, flags)
            self.sent += 1
        finally:
            lock.release()                # also the fence between head and arm
        for peer in readers:
            cur = peer.cursors
            if cur is not None:
                a = cur[CURSOR_ARM_W]
                if a != peer.rung:
                    peer.rung = a
                    if not self._ring_peer(peer, a >> 32):
                        self._peer_died_locked()
        return n

    def _send_some(self, data, dests, flags: int):
        ring = self._ring
        if len(dests) == 1 or max(dests) >= 64:
            entries = [(KIND_ONE, p, 0) for p in dests]
        else:
            mask = 0
            for p in dests:
                mask |= 1 << p
            entries = [(KIND_MASK, 0, mask)]
        for kind, port, mask in entries:
            if ring.try_write(data, kind, port, mask, self._limit):
                self._make_room(len(data), flags)
                ring.write(data, kind, port, mask)
        peers = self._peers
        return [peers[p] for p in dests if p in peers]

    def _make_room(self, n: int, flags: int) -> None:
        """The ring's end passed ``_limit``: wait for room (lossless), or
        lift the limit (lossy networks never wait; a refresh resets it)."""
        if self._lossless:
            self._wait_room(n, flags)
        else:
            self._limit = _NO_LIMIT

    def _peer_died_locked(self) -> None:
        with self._lock:
            if self._comp is not None:
                self._peer_died()

    def _send_error(self) -> OSError:
        self._check_open()
        if not self._connected:
            return _err(errno.ENOTCONN)
        return _err(errno.ECONNRESET if self._shut_rd else errno.EPIPE)

    def _room(self) -> int:
        """How far the ring may be written before overwriting an unread message."""
        ring = self._ring
        slot = cursor_slot(self._port)
        rid = ring.ring_id
        low = None
        for peer in self._readers:
            cur = peer.cursors
            c = cur[slot + 1] if cur[slot] == rid else 0
            if low is None or c < low:
                low = c
        return (1 << 62) if low is None else low + ring.cap

    def _wait_room(self, n: int, flags: int) -> None:
        """Lossless: wait until an ``n``-byte message fits; EAGAIN / timeout.

        Called with the node's lock held; it is let go while sleeping, so
        another thread may write meanwhile: the end is computed anew.
        """
        nonblock = flags & socket.MSG_DONTWAIT or self._snd_timeout == 0
        timeout = self._snd_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        ring = self._ring
        self._limit = self._room()
        if ring.end_for(n) <= self._limit:
            return
        if nonblock:
            self._plug(ring.end_for(n))
            raise BlockingIOError(errno.EAGAIN, "lossless IPN network is full")
        probed = time.monotonic()
        wait_secret = bell.new_arm(self._secret)     # receivers see it (bell.py)
        self._filter.set(self._secret, False, wait_secret)
        try:
            while True:
                self._wait_count = (self._wait_count + 1) & 0xFFFFFFFF
                ring.hdr[RING_WAIT_W] = (wait_secret << 32) | self._wait_count
                _fence()
                self._limit = self._room()
                if ring.end_for(n) <= self._limit:
                    return
                left = _WAIT_SLICE if deadline is None else min(_WAIT_SLICE,
                                                                deadline - time.monotonic())
                if left <= 0:
                    raise TimeoutError("timed out")
                self._lock.release()
                try:
                    woke = self._poll(left)
                finally:
                    self._lock.acquire()
                if self._ring is not ring:
                    raise self._send_error()      # shut down meanwhile
                if woke:
                    self._drain()                 # _settle() below restores readiness
                now = time.monotonic()
                if now - probed >= _WAIT_SLICE:
                    probed = now
                    for peer in self._readers:    # a reader may have died
                        if not self._ring_peer(peer, 0):   # 0: dropped by every filter
                            self._peer_died()
                            break
                if self._genv[0] != self._gen_seen:
                    self.refresh()
        finally:
            self._set_filter()                   # the wait secret goes
            self._settle()                       # doorbells for us as a reader

    def _plug(self, end: int) -> None:
        """Make ``fileno()`` unwritable until the receivers in the way drain.

        A datagram socket is writable while what it sent and nobody read
        is under a quarter of its send buffer.  The doorbell socket sends
        nothing else, so a plug (a datagram of bell.PLUG_LEN bytes)
        sent to each receiver that holds the ring back (the slowest four)
        makes it unwritable; a receiver consumes its plug when it has read
        everything, and then the message fits.
        """
        slot = cursor_slot(self._port)
        ring = self._ring
        late = []
        for peer in self._readers:
            cur = peer.cursors
            if cur is None:
                continue
            c = cur[slot + 1] if cur[slot] == ring.ring_id else 0
            if c + ring.cap < end:
                late.append((c, peer))
        late.sort(key=lambda cp: cp[0])
        self._wait_count = (self._wait_count + 1) & 0xFFFFFFFF
        ring.hdr[RING_WAIT_W] = self._wait_count      # no secret: nobody is rung
        for _c, peer in late[:bell.MAX_PLUGS]:
            if not bell.plug(self._sock, peer.path, peer.cursors[CURSOR_ARM_W] >> 32):
                break

    # -- receive -----------------------------------------------------------------
    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """The next message (truncated to ``bufsize``), OOB messages first."""
        with self._lock:
            ring = self._fast_ring                # one ring, nothing else to do
            if ring is not None and self._genv[0] == self._gen_seen:
                d = ring.read(self._port)
                if d is None and self.received - self._since > 1 and not flags \
                        and self._rcv_timeout != 0:
                    d = self._spin_read(ring)     # in a stream: wait a little
                if d is not None:
                    self.received += 1
                    if not self._watched:
                        self._armed = False           # armed when about to block
                    elif not (self._bell and self._hub and ring.cursor != ring.hdr[RING_HEAD_W]):
                        self._after_read(ring)
                    # else: on a hub what is left is for us, and a doorbell is queued
                    return d if len(d) <= bufsize else d[:bufsize]
            return self._recv(bufsize, flags)[0]

    def _spin_read(self, ring):
        """Caught up in a stream: watch the ring's head a little before sleeping.

        Only after two messages or more since the node last armed (a
        message at a time, as in a ping-pong, never waits here).  A message
        that comes meanwhile is read without a doorbell: no system call on
        either side, and the sender stays free of ringing.
        """
        hdr = ring.hdr
        c = ring.cursor
        for _ in range(SPIN):
            if hdr[RING_HEAD_W] != c:
                d = ring.read(self._port)
                if d is not None:
                    return d
                c = ring.cursor
        return None

    def _after_read(self, ring) -> None:
        """Watched, after a message: readable if another one waits for us,
        else armed.  Caught up in a stream, the ring is watched a little
        first (see _spin_read)."""
        c = ring.cursor
        hdr = ring.hdr
        if c == hdr[RING_HEAD_W]:
            if self.received - self._since <= 1:
                self._arm()                       # caught up
                return
            for _ in range(SPIN):
                if hdr[RING_HEAD_W] != c:
                    break
            else:
                self._arm()
                return
        if ring.pending(self._port):
            if not self._bell:
                self._self_ring()
        else:
            self._arm()                           # what is left is for others

    def recvmsg(self, bufsize: int, ancbufsize: int = 0, flags: int = 0):
        """(data, [], msg_flags, None): MSG_OOB is set on OOB messages."""
        with self._lock:
            data, mflags = self._recv(bufsize, flags)
        return data, [], mflags, None

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        with self._lock:
            data = self._recv(nbytes or len(buffer), flags)[0]
        memoryview(buffer)[:len(data)] = data
        return len(data)

    def _recv(self, bufsize: int, flags: int):
        """The receive loop (node lock held; let go while sleeping)."""
        if not self._connected:
            self._check_open()
            raise _err(errno.ENOTCONN)
        nonblock = flags & socket.MSG_DONTWAIT or self._rcv_timeout == 0
        timeout = self._rcv_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._genv[0] != self._gen_seen:
                self.refresh()
            if self._handle_oob:
                self._take_datagrams()
            if self._oob:
                m = self._oob.popleft()
                self._settle()
                return m[:bufsize], MSG_OOB
            if self._cursors is None:
                if self._shut_rd and self._shut_wr:
                    return b"", 0
                if not self._handle_oob:
                    raise _err(errno.EPIPE)
            else:
                d = self._read_rings()
                if d is not None:
                    if self._watched:
                        self._settle()
                    else:
                        self._armed = False       # armed when about to block
                        self._unplug()
                    return d[:bufsize], 0
                if nonblock and not self._watched:
                    raise BlockingIOError(errno.EAGAIN, "no message")
                if not self._armed and self._arm():
                    continue                      # something came while arming
            if nonblock:
                raise BlockingIOError(errno.EAGAIN, "no message")
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError("timed out")
            self._lock.release()
            try:
                self._poll(left)
            finally:
                self._lock.acquire()
            if not self._connected:
                self._check_open()
                raise _err(errno.ENOTCONN)
            self._armed = False                   # re-arm if it was nothing for us

    def _read_rings(self):
        rings = self._rings
        count = len(rings)
        if not count:
            return None
        me = self._port
        start = self._rr
        for i in range(count):
            r = rings[(start + i) % count]
            d = r.read(me)
            if d is not None:
                self._rr = (start + i + 1) % count
                self.received += 1
                if self._learn:
                    self._policy.learn(r.port, d, time.monotonic())
                return d
        return None

    def _pending(self) -> bool:
        me = self._port
        return any(r.pending(me) for r in self._rings)

    # -- readiness (see the module doc) -------------------------------------------
    def _settle(self) -> None:
        """Leave the doorbell socket readable exactly when something waits."""
        if self._oob or (self._cursors is not None and self._pending()):
            if not self._bell:
                self._self_ring()
        elif self._cursors is not None:
            self._arm()
        else:
            self._drain()
            self._bell = False
            if self._oob:
                self._self_ring()

    def _arm(self) -> bool:
        """Nothing left: drain the doorbells, publish a new arm value, re-check.

        True when something came meanwhile (a watched node rang itself)."""
        self._arm_count = (self._arm_count + 1) & 0xFFFFFFFF
        self._drain()
        self._bell = False
        rings = self._rings
        for r in rings:
            r.publish()                           # cursors are published lazily
        self._cursors[CURSOR_ARM_W] = (self._secret << 32) | self._arm_count
        _fence()
        self._armed = True
        self._since = self.received
        for r in rings:
            r.answer()                            # a writer waiting for that room
        if self._oob or self._pending():
            if self._watched:
                self._self_ring()
            return True
        return False

    def _unplug(self) -> None:
        """Not watched: consume plugs once caught up with a ring whose writer waits.

        A sender that plugs or waits moves its ring's wait word; an armed
        node drains its doorbells anyway, one not watched drains them here.
        """
        for r in self._rings:
            w = r.hdr[RING_WAIT_W]
            if r.plugged != w and r.cursor >= r.hdr[RING_HEAD_W]:
                r.plugged = w
                self._drain()

    def _plugged_ring(self) -> None:
        """A ring read to its end has a waiting writer: consume its plugs
        (not watched; an armed node drains its doorbells anyway)."""
        if not self._watched:
            self._drain()

    def _set_filter(self) -> None:
        self._filter.set(self._secret, False)     # numnodes: the watch tells us (watch.py)

    def _self_ring(self) -> None:
        try:
            self._tx.sendto(bell.BELL.pack(self._secret), self._comp.node_path(self._name))
            self._bell = True
        except OSError:
            pass

    def _wake_writer(self, port: int, value: int) -> None:
        peer = self._peers.get(port)
        if peer is not None:
            self._ring_peer(peer, value >> 32)

    def _poll(self, timeout) -> bool:
        p = select.poll()
        p.register(self._sock, select.POLLIN)
        return bool(p.poll(None if timeout is None else max(0, int(timeout * 1000) + 1)))

    def _drain(self) -> None:
        """Consume every queued datagram."""
        poll = self._readable.poll
        recv = self._sock.recv
        while poll(0):                            # cheaper than an EAGAIN
            try:
                recv(_MAXDGRAM)
            except OSError:
                return

    def _take_datagrams(self) -> None:
        """OOB handling: turn queued hints into numnodes messages."""
        self._drain()
        self._bell = False

    def _numnodes_moved(self, stop) -> bool:
        """The numnodes watch saw membership move (its thread): recount, and
        ring ourselves if there is news.  False when busy (it retries)."""
        if not self._lock.acquire(timeout=0.1):
            return False
        try:
            if not stop.is_set() and self._connected:
                self._hint()
                if self._oob and not self._bell:
                    self._self_ring()
            return True
        finally:
            self._lock.release()

    def _hint(self) -> None:
        """Membership moved: count the members ourselves."""
        if self._comp is None or not self._want_numnodes or self._comp.params.mtu < 16:
            return
        nodes = self._comp.nodes()
        counts = (sum(NODE_READER in f for _p, f, _n in nodes),
                  sum(NODE_WRITER in f for _p, f, _n in nodes))
        if counts != self._last_counts:
            self._last_counts = counts
            self._oob.append(encode_numnode_oob(*counts))

