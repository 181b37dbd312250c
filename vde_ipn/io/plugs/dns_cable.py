"""A cable through DNS queries and answers, as vde_over_ns draws it.

:class:`DnsCableClient` sends the frames of its side as queries to the
server's UDP port 53 and keeps ten queries pending there;
:class:`DnsCableServer` answers them, each answer carrying a fragment of
a frame of its side (or nothing, after 5 s).  The server serves one
client, the sender of the latest query: when another address asks, the
queries held for the previous one are answered empty at once, so no
piece of a frame goes to a client that restarted (or to a stranger who
asked once), and it holds 256 queries at most.  The datagrams are those of
:mod:`vde_ipn.wire.nstx`.

A *side* (:class:`FrameSide`) is where the frames come from and go to: a
plug opened on a VNL (``-s``), or a vdestream on stdin/stdout.  Either
way the tunnel carries bare frames, as the C tool's ``-s`` mode does.
"""

from __future__ import annotations

import collections
import errno
import os
import socket
import time

from ...wire import nstx
from ...wire.ethernet import ETH_HLEN
from ...wire.stream import STREAM_MAX, StreamDecoder, encode
from ..loop import Loop

PENDING_QUERIES = 10          # the C client's DRQLEN
CLIENT_QUERY_TIMEOUT = 10.0   # a query unanswered this long is given up by the client
SERVER_HOLD = 5.0             # the server answers a query empty after this long
MAX_WAITING_FRAMES = 256      # frames the server keeps while no query is pending
MAX_HELD_QUERIES = 256        # queries the server holds; the oldest beyond are answered empty
RECV_BATCH = 64
DGRAM_MAX = 4096
SOCKET_BUFFER = 1 << 20       # a burst of queries (7 per 1000-byte frame) must not overflow it


class FrameSide:
    """Frames in and out of this end of the cable: a plug or a vdestream."""

    def __init__(self, loop: Loop, plug=None, fd_in: int = 0, fd_out: int = 1):
        self.loop, self.plug, self.fd_in, self.fd_out = loop, plug, fd_in, fd_out
        self.frames_in = self.frames_out = 0

    def start(self, on_payload, on_end) -> None:
        """Call ``on_payload(payload, now)`` for each frame to send through
        the tunnel, ``on_end()`` when this side is gone."""
        if self.plug is not None:
            plug = self.plug

            def from_plug(now: float) -> None:
                for _ in range(RECV_BATCH):
                    try:
                        frame = plug.recv(STREAM_MAX)
                    except (BlockingIOError, TimeoutError):
                        return
                    except OSError:
                        on_end()
                        return
                    if not frame and plug.hangup_on_empty:
                        on_end()
                        return
                    if len(frame) >= ETH_HLEN:
                        self.frames_in += 1
                        on_payload(frame, now)
            self.loop.add_reader(plug, from_plug)
            if plug.ctl is not None:
                self.loop.add_reader(plug.ctl, lambda now: on_end())
            return
        decoder = StreamDecoder(STREAM_MAX)

        def from_stream(now: float) -> None:
            try:
                data = os.read(self.fd_in, 65536)
            except OSError:
                data = b""
            if not data:
                on_end()
                return
            for frame in decoder.feed(data):
                if len(frame) >= ETH_HLEN:
                    self.frames_in += 1
                    on_payload(frame, now)
        self.loop.add_reader(self.fd_in, from_stream)

    def deliver(self, frame: bytes) -> None:
        """A frame joined from the tunnel, to this side."""
        if len(frame) < ETH_HLEN:
            return
        self.frames_out += 1
        if self.plug is not None:
            try:
                self.plug.send(frame)
            except (BlockingIOError, InterruptedError):
                pass                     # a full switch port drops, as a switch would
            return
        view = memoryview(encode(frame))
        while view:
            view = view[os.write(self.fd_out, view):]


class _Cable:
    def __init__(self, loop: Loop, sock: socket.socket, domain: str, side: FrameSide):
        self.loop, self.sock, self.side = loop, sock, side
        self.suffix = nstx.domain_labels(domain)
        self.reassembler = nstx.Reassembler()
        self.ended = False
        self.bad_datagrams = self.dropped_frames = 0
        sock.setblocking(False)

    def start(self) -> None:
        self.side.start(self.send_frame, self._end)
        self.loop.add_reader(self.sock, self._readable)
        self.loop.call_every(1.0, self._tick)

    def _end(self) -> None:
        self.ended = True
        self.loop.stop()

    def _datagrams(self):
        for _ in range(RECV_BATCH):
            try:
                yield self.sock.recvfrom(DGRAM_MAX)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:         # an ICMP error of an earlier datagram
                if e.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                    continue
                raise

    def _fragment_in(self, fragment: bytes, now: float) -> None:
        try:
            payload = self.reassembler.feed(fragment, now)
        except nstx.NstxError:
            self.bad_datagrams += 1
            return
        if payload:
            self.side.deliver(payload)

    def _send(self, data: bytes, addr=None) -> None:
        try:
            if addr is None:
                self.sock.send(data)
            else:
                self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.dropped_frames += 1
        except OSError as e:
            if e.errno not in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                raise


class DnsCableClient(_Cable):
    """The client end: ``sock`` is connected to the server's port 53."""

    def __init__(self, loop: Loop, sock: socket.socket, domain: str, side: FrameSide):
        super().__init__(loop, sock, domain, side)
        self.room = nstx.query_room(domain)
        if self.room <= nstx.HEADER_SIZE:
            raise nstx.NstxError("no free space in a query under %r" % domain)
        start = int(time.time())
        self.dns_id = start & 0xFFFF
        self.frag_ids = nstx.IdCounter(start - 1)
        self.pending: dict[int, float] = {}

    def start(self) -> None:
        super().start()
        self._refill(self.loop.clock())

    def send_frame(self, payload: bytes, now: float) -> None:
        try:
            fragments = nstx.split_frame(payload, self.frag_ids.next(), self.room)
        except nstx.NstxError:
            self.dropped_frames += 1
            return
        for fragment in fragments:
            self._query(fragment, now)

    def _query(self, fragment: bytes, now: float) -> None:
        dns_id = self.dns_id
        self.dns_id = (dns_id + 1) & 0xFFFF
        self._send(nstx.build_query(dns_id, nstx.data_name(fragment, self.suffix)))
        self.pending[dns_id] = now + CLIENT_QUERY_TIMEOUT

    def _refill(self, now: float) -> None:
        while len(self.pending) < PENDING_QUERIES:
            self._query(nstx.pack_fragment(self.frag_ids.next(), 0, True), now)

    def _readable(self, now: float) -> None:
        for msg, _addr in self._datagrams():
            try:
                dns_id, fragments = nstx.parse_answer(msg)
            except nstx.NstxError:
                self.bad_datagrams += 1
                continue
            self.pending.pop(dns_id, None)
            for fragment in fragments:
                self._fragment_in(fragment, now)
        self._refill(now)

    def _tick(self, now: float) -> None:
        for dns_id in [k for k, t in self.pending.items() if t <= now]:
            del self.pending[dns_id]
        self.reassembler.expire(now)
        self._refill(now)


class DnsCableServer(_Cable):
    """The server end: ``sock`` is bound to port 53."""

    def __init__(self, loop: Loop, sock: socket.socket, domain: str, side: FrameSide):
        super().__init__(loop, sock, domain, side)
        self.pending: collections.OrderedDict = collections.OrderedDict()
        self.outgoing: collections.deque = collections.deque()   # [payload, id, offset, seq]
        self.frag_ids = nstx.IdCounter(0)
        self.client = None          # the address of the latest query
        # the smallest answer holds this much of a frame: the longest frame
        # sixteen of them carry
        self.max_payload = nstx.MAX_SEQ * (nstx.answer_room(b"\x3f" * 255) - nstx.HEADER_SIZE)

    def send_frame(self, payload: bytes, now: float) -> None:
        if len(payload) > self.max_payload or len(self.outgoing) >= MAX_WAITING_FRAMES:
            self.dropped_frames += 1
            return
        self.outgoing.append([payload, self.frag_ids.next(), 0, 0])
        self._flush()

    def _readable(self, now: float) -> None:
        for msg, peer in self._datagrams():
            try:
                dns_id, qname = nstx.parse_query(msg)
            except nstx.NstxError:
                self.bad_datagrams += 1
                continue
            fragment = nstx.name_data(qname, self.suffix)
            if fragment is None or len(fragment) < nstx.HEADER_SIZE:
                self.bad_datagrams += 1      # not a query of this cable: no answer
                continue
            if peer != self.client:
                self._answer_empty(len(self.pending))   # a new client: the old one's go
                self.client = peer
            if dns_id not in self.pending:
                self.pending[dns_id] = (qname, peer, now + SERVER_HOLD)
                self._flush()
                self._answer_empty(len(self.pending) - MAX_HELD_QUERIES)
            self._fragment_in(fragment, now)
        self._flush()

    def _answer_empty(self, count: int) -> None:
        """Answer the ``count`` oldest held queries with no data."""
        for _ in range(max(0, count)):
            dns_id, (qname, peer, _) = self.pending.popitem(last=False)
            self._send(nstx.build_answer(dns_id, qname, nstx.FILLER), peer)

    def _flush(self) -> None:
        while self.pending and self.outgoing:
            dns_id, (qname, peer, _) = self.pending.popitem(last=False)
            item = self.outgoing[0]
            payload, frag_id, offset, seq = item
            piece = nstx.answer_room(qname) - nstx.HEADER_SIZE
            chunk = payload[offset:offset + piece]
            offset += len(chunk)
            last = offset >= len(payload)
            fragment = nstx.pack_fragment(frag_id, seq, last, chunk)
            if last:
                self.outgoing.popleft()
            else:
                item[2], item[3] = offset, seq + 1
            self._send(nstx.build_answer(dns_id, qname, fragment), peer)

    def _tick(self, now: float) -> None:
        while self.pending:
            if next(iter(self.pending.values()))[2] > now:
                break
            self._answer_empty(1)
        self.reassembler.expire(now)


def _big_buffers(sock: socket.socket) -> None:
    """Room for bursts: beyond net.core.rmem_max when root may (FORCE)."""
    for force, plain in ((getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF),
                         (getattr(socket, "SO_SNDBUFFORCE", 32), socket.SO_SNDBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, SOCKET_BUFFER)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, plain, SOCKET_BUFFER)


def client_socket(server: str) -> socket.socket:
    """A UDP socket connected to ``server``'s port 53 (an address; a string
    that is not one stands for 255.255.255.255, as inet_addr makes it)."""
    try:
        packed = socket.inet_aton(server)
    except (OSError, ValueError):
        packed = b"\xff" * 4
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    _big_buffers(sock)
    try:
        sock.connect((socket.inet_ntoa(packed), nstx.PORT))
    except OSError:
        sock.close()
        raise
    return sock


def server_socket(bind_addr: str = "0.0.0.0") -> socket.socket:
    """A UDP socket bound to port 53 of ``bind_addr``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    _big_buffers(sock)
    try:
        sock.bind((bind_addr, nstx.PORT))
    except OSError:
        sock.close()
        raise
    return sock
