"""The data path of an IPN node: send, receive, wait and wake.

``send`` runs the network's policy in the sender and writes the message
once into the sender's ring; every receiver reads it from there (see
:mod:`vde_ipn.io.ipn_ring`).  Receivers that ran out of messages ask to
be woken: the sender then sends one empty datagram ("doorbell") to their
socket, which is what ``fileno()`` reports readable.  A non-blocking
reader drains with ``recv(n, MSG_DONTWAIT)`` until BlockingIOError; the
descriptor stays readable while messages are left.

Queueing (ipn.md section 7): on a LOSSLESS network a sender blocks (or
gets EAGAIN) while its ring holds a message some receiver has not read;
on a lossy one it never waits and a receiver that fell a whole ring
behind loses the oldest messages.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time

from ..wire.ipn_registry import (CURSOR_ARM_W, KIND_ALL, KIND_MASK, KIND_ONE, RING_WAIT_W,
                                 cursor_slot)
from .ipn_member import Member

MSG_OOB = socket.MSG_OOB
_MAXDGRAM = 256
_WAIT_SLICE = 0.2                 # a waiting sender re-checks members this often


def _err(code: int, what: str = "") -> OSError:
    return OSError(code, os.strerror(code) + (": " + what if what else ""))


class DataPath(Member):
    """Messages in and out of a connected node; the socket API sits on top."""

    def send(self, data, flags: int = 0) -> int:
        """Send one message to the receivers the policy picks; returns its length."""
        if not self._connected or self._shut_wr:
            raise self._send_error()
        if self._genv[0] != self._gen_seen:
            self.refresh()
        n = len(data)
        if n > self._mtu:
            raise _err(errno.EOVERFLOW)
        policy = self._policy
        dests = policy.handlemsg(self._port, data, time.monotonic() if policy.needs_clock else 0.0)
        if not dests:
            return n
        ring = self._ring
        if dests is policy.flood:
            if self._lossless and ring.end_for(n) > self._limit:
                self._wait_room(ring.end_for(n), flags)
            ring.write(data, KIND_ALL, 0, 0)
            for peer in self._readers:
                a = peer.cursors[CURSOR_ARM_W]
                if a != peer.rung:
                    peer.rung = a
                    self._ring_peer(peer)
        else:
            self._send_some(data, dests, flags)
        self.sent += 1
        return n

    def _send_some(self, data, dests, flags: int) -> None:
        ring = self._ring
        if len(dests) == 1 or max(dests) >= 64:
            entries = [(KIND_ONE, p, 0) for p in dests]
        else:
            mask = 0
            for p in dests:
                mask |= 1 << p
            entries = [(KIND_MASK, 0, mask)]
        for kind, port, mask in entries:
            if self._lossless and ring.end_for(len(data)) > self._limit:
                self._wait_room(ring.end_for(len(data)), flags)
            ring.write(data, kind, port, mask)
        for p in dests:
            peer = self._peers.get(p)
            if peer is not None and peer.cursors is not None:
                a = peer.cursors[CURSOR_ARM_W]
                if a != peer.rung:
                    peer.rung = a
                    self._ring_peer(peer)

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

    def _wait_room(self, end: int, flags: int) -> None:
        """Lossless: wait until ``end`` fits; EAGAIN / timeout as configured."""
        nonblock = flags & socket.MSG_DONTWAIT or self._timeout == 0
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        ring = self._ring
        while True:
            self._limit = self._room()
            if end <= self._limit:
                return
            if nonblock:
                raise BlockingIOError(errno.EAGAIN, "lossless IPN network is full")
            ring.hdr[RING_WAIT_W] += 1            # ask the readers to wake us
            self._limit = self._room()
            if end <= self._limit:
                return
            left = _WAIT_SLICE if deadline is None else min(_WAIT_SLICE, deadline - time.monotonic())
            if left <= 0:
                raise TimeoutError("timed out")
            if self._poll(left):
                if self._drain() and self._cursors is not None:
                    self._self_ring()
            else:
                for peer in self._readers:        # a reader may have died
                    self._ring_peer(peer)
            if self._genv[0] != self._gen_seen:
                self.refresh()

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """The next message (truncated to ``bufsize``), OOB messages first."""
        ring = self._fast_ring                    # one ring, nothing else to do
        if ring is not None and self._genv[0] == self._gen_seen:
            d = ring.read(self._port)
            if d is not None:
                self.received += 1
                return d if len(d) <= bufsize else d[:bufsize]
        return self._recv(bufsize, flags)[0]

    def recvmsg(self, bufsize: int, ancbufsize: int = 0, flags: int = 0):
        """(data, [], msg_flags, None): MSG_OOB is set on OOB messages."""
        data, mflags = self._recv(bufsize, flags)
        return data, [], mflags, None

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        data = self._recv(nbytes or len(buffer), flags)[0]
        memoryview(buffer)[:len(data)] = data
        return len(data)

    def _recv(self, bufsize: int, flags: int):
        if not self._connected:
            self._check_open()
            raise _err(errno.ENOTCONN)
        if self._genv[0] != self._gen_seen:
            self.refresh()
        if self._handle_oob:
            self._peek_oob()
        if self._oob:
            return self._oob.popleft()[:bufsize], MSG_OOB
        if self._cursors is None:
            if self._shut_rd and self._shut_wr:
                return b"", 0
            if not self._handle_oob:
                raise _err(errno.EPIPE)
        d = self._read_rings()
        if d is not None:
            return d[:bufsize], 0
        nonblock = flags & socket.MSG_DONTWAIT or self._timeout == 0
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            self._drain()
            if self._oob:
                return self._oob.popleft()[:bufsize], MSG_OOB
            cursors = self._cursors
            if cursors is not None:
                cursors[CURSOR_ARM_W] += 1        # senders: wake me
                d = self._read_rings()
                if d is not None:
                    self._self_ring()             # keep fileno() readable
                    return d[:bufsize], 0
            if nonblock:
                raise BlockingIOError(errno.EAGAIN, "no message")
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError("timed out")
            self._poll(left)
            if self._genv[0] != self._gen_seen:
                self.refresh()
            d = self._read_rings()
            if d is not None:
                return d[:bufsize], 0

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

    def _wake_writer(self, port: int) -> None:
        peer = self._peers.get(port)
        if peer is not None:
            self._ring_peer(peer)

    def _poll(self, timeout) -> bool:
        p = select.poll()
        p.register(self._sock, select.POLLIN)
        return bool(p.poll(None if timeout is None else max(0, int(timeout * 1000) + 1)))

    def _drain(self) -> bool:
        """Consume queued datagrams: True if a doorbell was among them."""
        rang = False
        while True:
            try:
                m = self._sock.recv(_MAXDGRAM)
            except BlockingIOError:
                return rang
            if m:
                if self._handle_oob:
                    self._oob.append(m)
            else:
                rang = True

    def _peek_oob(self) -> None:
        try:
            m = self._sock.recv(_MAXDGRAM, socket.MSG_PEEK)
        except BlockingIOError:
            return
        if m:
            self._oob.append(self._sock.recv(_MAXDGRAM))

    def _self_ring(self) -> None:
        try:
            self._sock.sendto(b"", self._reg.node_path(self._name))
        except OSError:
            pass

    # -- shutdown / options ----------------------------------------------------
