"""The IPN socket: AF_IPN's calls and errors on a network without a server.

``bind`` creates the network (or joins it as a manager, needing x on the
socket file), ``connect`` makes the node a port.  ``send`` runs the
network's policy in the sender and writes the message once into the
sender's ring; every receiver reads it from there (see
:mod:`vde_ipn.io.ipn_ring`).  Receivers that ran out of messages ask to be
woken: the sender then sends one empty datagram ("doorbell") to their
socket, which is what :meth:`IpnSocket.fileno` reports readable.

Queueing (ipn.md section 7): on a LOSSLESS network a sender blocks (or
gets EAGAIN) while its ring holds a message some receiver has not read;
on a lossy one it never waits and a receiver that fell a whole ring
behind loses the oldest messages, counted in ``statistics()["lost"]``.
A ring holds at least ``msgpool_size`` full-MTU messages (usually far
more: it has 256 KiB at least).  A receiver that never reads blocks the
senders of a lossless network, as it did in the kernel: a pure producer
should ``shutdown(SHUT_RD)``.  OOB messages (numnodes notifications) are
returned before ring messages, unless a doorbell is queued ahead of them.

Not thread-safe: use one socket per thread.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import select
import socket
import time
from collections import deque

from ..engine.ipn_policy import IPN_BROADCAST, IPN_MAX_PROTO, has_learn, policy_class
from ..wire.ipn_registry import (CURSOR_ARM_W, KIND_ALL, KIND_MASK, KIND_ONE, RING_HEAD_W,
                                 RING_WAIT_W, Params, cursor_slot)
from .ipn_member import IPN_FLAG_LOSSLESS, Member, NetView
from .ipn_registry import Registry

IPN_SO_PORT, IPN_SO_DESCR, IPN_SO_CHANGE_NUMNODES = 0, 1, 2
IPN_SO_HANDLE_OOB, IPN_SO_WANT_OOB_NUMNODES = 3, 4
IPN_SO_MTU, IPN_SO_NUMNODES, IPN_SO_MSGPOOLSIZE, IPN_SO_FLAGS, IPN_SO_MODE = range(0x80, 0x85)
IPN_FLAG_EXCL, IPN_FLAG_FLEXMTU = 2, 4
IPN_DESCRLEN = 128
MSG_OOB = socket.MSG_OOB
_MAXDGRAM = 256
_WAIT_SLICE = 0.2                 # a waiting sender re-checks members this often


def _err(code: int, what: str = "") -> OSError:
    return OSError(code, os.strerror(code) + (": " + what if what else ""))


def _access(path: str, mode: int) -> bool:
    if os.access in os.supports_effective_ids:
        return os.access(path, mode, effective_ids=True)
    return os.access(path, mode)


class IpnSocket(Member):
    """One IPN node.  Create with :func:`vde_ipn.ipn.socket`."""

    def __init__(self, protocol: int = IPN_BROADCAST):
        if not 0 <= protocol <= IPN_MAX_PROTO:
            raise _err(errno.EPROTONOSUPPORT)
        self.protocol = protocol
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._member_init()
        self._pre = {IPN_SO_MTU: 1514, IPN_SO_NUMNODES: 64, IPN_SO_MSGPOOLSIZE: 8,
                     IPN_SO_FLAGS: 0, IPN_SO_MODE: 0o777}
        self._want_port = -1
        self._descr = b""
        self._handle_oob = self._want_numnodes = False
        self._shut_rd = self._shut_wr = False
        self._connected = self._closed = False
        self._timeout = None
        self._oob: deque = deque()
        self._genv = None
        self._learn = False
        self._rr = 0
        self._fast_ring = None
        self.sent = self.received = 0

    # -- bind / connect ------------------------------------------------------
    def bind(self, path: str) -> None:
        """Create the network at ``path``, or join it as a manager (x bit)."""
        self._check_open()
        if self._reg is not None:
            raise _err(errno.EISCONN)
        pre = self._pre
        params = Params(self.protocol or IPN_BROADCAST, pre[IPN_SO_FLAGS], pre[IPN_SO_NUMNODES],
                        pre[IPN_SO_MTU], pre[IPN_SO_MSGPOOLSIZE], pre[IPN_SO_MODE] & 0o777, 0)
        try:
            reg = Registry.create(path, params)
        except FileExistsError:
            if not _access(path, os.X_OK):
                raise _err(errno.EACCES, path) from None
            reg = Registry.open(path)
            if reg.params.flags & IPN_FLAG_EXCL:
                reg.close()
                raise _err(errno.ECONNREFUSED, "exclusive IPN network") from None
        try:
            self._adopt_protocol(reg)
            policy = policy_class(self.protocol)(NetView(reg.params.maxports))
            policy.newnet()
        except BaseException:
            reg.close()
            raise
        self._reg, self._policy, self._genv = reg, policy, reg.gen

    def connect(self, path: str | None = None) -> None:
        """Become a port: of the bound network, or of the one at ``path``.

        Without r on the socket file the node is shut for reading, without
        w for writing; with neither (and no OOB) connect fails with EACCES.
        """
        self._check_open()
        if self._connected:
            raise _err(errno.EISCONN)
        reg = self._reg
        if reg is None:
            if path is None:
                raise _err(errno.EINVAL, "an unbound IPN socket needs an address")
            if not os.path.lexists(path):
                raise _err(errno.ENOENT, path)
            self._shut_rd |= not _access(path, os.R_OK)
            self._shut_wr |= not _access(path, os.W_OK)
            if self._shut_rd and self._shut_wr and not self._handle_oob:
                raise _err(errno.EACCES, path)
            reg = Registry.open(path)
        try:
            self._adopt_protocol(reg)
            self._genv = reg.gen
            self._join(reg, self.protocol, self._want_port)
        except BaseException:
            if reg is not self._reg:
                reg.close()
            raise
        self._connected = True
        self._learn = has_learn(self._policy)
        self.refresh()

    def refresh(self) -> None:
        super().refresh()
        rings = self._rings
        if self._lossless:
            for r in rings:
                if r.pub is None:
                    r.pub, r.pslot, r.wake = self._cursors, cursor_slot(r.port) + 1, self._wake_writer
        simple = self._connected and not (self._learn or self._handle_oob)
        self._fast_ring = rings[0] if simple and len(rings) == 1 else None

    def _adopt_protocol(self, reg: Registry) -> None:
        net = reg.params.protocol
        if self.protocol in (0, IPN_BROADCAST):
            self.protocol = net
        elif self.protocol != net:
            raise _err(errno.EPROTO, "the network runs protocol %d" % net)

    # -- data --------------------------------------------------------------
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
    def shutdown(self, how: int) -> None:
        """SHUT_RD / SHUT_WR / SHUT_RDWR; allowed before connect, irreversible."""
        self._check_open()
        if how not in (socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR):
            raise _err(errno.EINVAL)
        before = (self._shut_rd, self._shut_wr)
        self._shut_rd |= how != socket.SHUT_WR
        self._shut_wr |= how != socket.SHUT_RD
        if self._connected and before != (self._shut_rd, self._shut_wr):
            if self._shut_rd:
                self._oob.clear()
            self._change_flags()

    def setsockopt(self, level: int, opt: int, value) -> None:
        """Level 0 options, or the policy's at level = protocol (ipn_options)."""
        from .ipn_options import set_option      # it imports the constants here
        set_option(self, level, opt, value)

    def getsockopt(self, level: int, opt: int, buflen: int = 0):
        """int options, or bytes of ``buflen`` for IPN_SO_DESCR."""
        from .ipn_options import get_option
        return get_option(self, level, opt, buflen)

    def _resize(self, new: int) -> None:
        reg = self._reg
        with reg.locked():
            params = reg.read_params()
            if any(p >= new for p, _f, _n in reg.nodes()):
                raise _err(errno.EADDRINUSE, "a port above the new size is in use")
            veto = self._policy.resizenet(params.maxports, new)
            if veto:
                raise _err(veto)
            reg.write_params(dataclasses.replace(params, maxports=new))
            reg.bump()

    # -- plumbing --------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise _err(errno.EBADF)

    def fileno(self) -> int:
        """Readable when a message, an OOB message or a doorbell is waiting."""
        return self._sock.fileno()

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def settimeout(self, value) -> None:
        self._timeout = None if value is None else float(value)

    def gettimeout(self):
        return self._timeout

    def getsockname(self) -> str:
        if self._reg is None:
            raise _err(errno.ENOTCONN)
        return self._reg.path

    getpeername = getsockname

    def statistics(self) -> dict:
        """Counters of this node: sent, received, lost (lossy overruns)."""
        return {"port": self._port, "sent": self.sent, "received": self.received,
                "lost": self._lost_gone + sum(r.lost for r in self._rings)}

    def close(self) -> None:
        """Leave the network; the last node to leave ends it."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._reg is not None:
                self._leave()
        finally:
            self._connected = False
            self._fast_ring = None
            self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self._reg.path if self._reg is not None else "unbound"
        return "<IpnSocket protocol=%d port=%d %s>" % (self.protocol, self._port, where)
