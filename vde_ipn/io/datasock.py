"""Data sockets: the per-frame path between endpoints and the engine.

Each endpoint owns one connected, non-blocking AF_UNIX datagram socket,
so forwarding is a plain ``send()``.  A readable socket is drained in
one go (up to ``BATCH`` frames) to save a trip through the selector per
frame.  When a receiver's queue is full the frame is kept in a short
per-endpoint queue and sent when the socket is writable again; only
when that queue is full is a frame dropped, and counted on the port.

With a :class:`Batcher` (Linux, where libc has ``recvmmsg``/``sendmmsg``)
the system calls are batched too: a reader takes every waiting frame with
one ``recvmmsg``, and the frames that batch sends to one endpoint leave
with one ``sendmmsg`` once the engine has routed the whole batch.  The
per-frame kernel work stays; the cost of a call is paid once per batch
(see ``benchmarks/switch_forwarding.py``).  Without a batcher (or
without those calls) every frame takes one ``recv`` and one ``send``.
"""

from __future__ import annotations

import collections
import socket

from ..engine.bus import QUEUE_FULL, SEND_ERROR
from . import _mmsg

BATCH = 64
QUEUE_LEN = 256
SEND_SPACE = 1 << 16                     # bytes packed into one sendmmsg


class Batcher:
    """Batched system calls for the readers and senders of one loop.

    One instance per switch (per loop thread): its buffers are shared by
    every endpoint, since a loop runs one callback at a time.  While a
    reader routes a batch, ``Sender.send`` holds frames back; :meth:`flush`
    then sends each endpoint's share with as few calls as it takes.
    """

    __slots__ = ("holding", "held", "_recv", "_send")

    def __init__(self):
        self.holding = False
        self.held: list = []             # senders with frames held back
        self._recv: dict = {}            # frame buffer size -> RecvVector
        self._send = None

    @staticmethod
    def create():
        """A batcher, or None where these system calls are unavailable."""
        return Batcher() if _mmsg.AVAILABLE else None

    def receiver(self, bufsize: int):
        vec = self._recv.get(bufsize)
        if vec is None:
            vec = self._recv[bufsize] = _mmsg.RecvVector(BATCH, bufsize)
        return vec

    def sender(self):
        if self._send is None:
            self._send = _mmsg.SendVector(BATCH, SEND_SPACE)
        return self._send

    def flush(self) -> None:
        self.holding = False
        held, self.held = self.held, []
        for sender in held:
            sender.flush()


class Sender:
    """Sends frames to one endpoint, queueing briefly when it is full."""

    __slots__ = ("sock", "port", "loop", "queue", "maxlen", "batcher", "pending")

    def __init__(self, sock: socket.socket, port, loop, maxlen: int = QUEUE_LEN,
                 batcher: Batcher | None = None):
        self.sock = sock
        self.port = port                 # engine Port, for drop counters
        self.loop = loop
        self.queue: collections.deque = collections.deque()
        self.maxlen = maxlen
        self.batcher = batcher
        self.pending: list = []          # held back while the batcher holds

    def send(self, frame: bytes) -> None:
        batcher = self.batcher
        if batcher is not None and batcher.holding:
            if not self.pending:
                batcher.held.append(self)
            self.pending.append(frame)
            return
        self._send_now(frame)

    def flush(self) -> None:
        """Send the frames held back, in order, batched where possible."""
        frames, self.pending = self.pending, []
        i, total = 0, len(frames)
        if total > 1:
            vec = self.batcher.sender()
            send, fd, space = vec.send, self.sock.fileno(), vec.space
            while i < total and not self.queue:
                if len(frames[i]) > space:
                    self._send_now(frames[i])
                    i += 1
                    continue
                try:
                    n = send(fd, frames, i)
                except OSError:
                    self.port.count_drop(SEND_ERROR)
                    n = 1
                if n == 0:               # the receiver is full: queue the rest
                    self.queue.append(frames[i])
                    self.loop.add_writer(self.sock, self._on_writable)
                    i += 1
                    break
                i += n
        for frame in frames[i:]:
            self._send_now(frame)

    def _send_now(self, frame: bytes) -> None:
        if self.queue:
            if len(self.queue) < self.maxlen:
                self.queue.append(frame)
            else:
                self.port.count_drop(QUEUE_FULL)
            return
        try:
            self.sock.send(frame)
        except BlockingIOError:
            self.queue.append(frame)
            self.loop.add_writer(self.sock, self._on_writable)
        except OSError:
            self.port.count_drop(SEND_ERROR)

    def _on_writable(self, now: float) -> None:
        queue, send = self.queue, self.sock.send
        while queue:
            try:
                send(queue[0])
            except BlockingIOError:
                return
            except OSError:
                self.port.count_drop(SEND_ERROR)
            queue.popleft()
        self.loop.remove_writer(self.sock)


def make_reader(sock: socket.socket, port_no: int, net, senders: dict,
                on_broken=None, batcher: Batcher | None = None):
    """Callback draining ``sock`` into the engine and out to ``senders``.

    A datagram longer than ``net.max_frame`` is read one byte too long,
    so the engine sees it is oversize and drops it: frames are never
    truncated.

    ``senders`` maps a port number to the tuple of send functions of its
    endpoints; the caller keeps it current as endpoints come and go.
    With a ``batcher`` (given to the senders too) frames are read and
    sent in batches.
    """
    recv = sock.recv
    receive = net.receive
    bufsize = net.max_frame + 1          # one more byte tells an oversize frame
    if batcher is not None:
        return _batched_reader(sock, port_no, net, senders, on_broken, batcher,
                               batcher.receiver(bufsize).recv)

    def on_readable(now: float) -> None:
        for _ in range(BATCH):
            try:
                frame = recv(bufsize)
            except BlockingIOError:
                return
            except OSError:
                if on_broken is not None:
                    on_broken()
                return
            # runts (0-byte datagrams included) and oversize frames are
            # counted on the port by receive() and routed nowhere
            for out in receive(port_no, frame, now):
                for send in senders[out]:
                    send(frame)
    return on_readable


def _batched_reader(sock, port_no, net, senders, on_broken, batcher, recv_batch):
    receive = net.receive
    fileno = sock.fileno

    def on_readable(now: float) -> None:
        taken = 0
        while taken < BATCH:
            try:
                frames = recv_batch(fileno())
            except OSError:
                if on_broken is not None:
                    on_broken()
                return
            if not frames:
                return
            taken += len(frames)
            batcher.holding = True
            try:
                # runts (0-byte datagrams included) and oversize frames are
                # counted on the port by receive() and routed nowhere
                for frame in frames:
                    for out in receive(port_no, frame, now):
                        for send in senders[out]:
                            send(frame)
            finally:
                batcher.flush()
    return on_readable
