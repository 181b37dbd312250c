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

Lossless mode (a :class:`Backpressure` given to readers and senders): a
receiver whose socket is full never loses a frame.  Its sender queues
without limit, and every reader that routes a frame to it while it is
backed up stops being read (its :class:`Gate` closes) once its current
batch is routed; the senders' datagram sockets then fill up in the
kernel and block them.  When the queue has drained, the gates it closed
open again.  The queue is bounded all the same: at most one batch per
paused reader.  A reader paused for one slow port also stops its frames
to every other port (a datagram socket cannot be read selectively:
head-of-line blocking), but only readers that send to the slow port are
paused: traffic between two other ports goes on, except the floods that
must reach the slow port too.
"""

from __future__ import annotations

import collections
import socket

from ...engine.bus import QUEUE_FULL, SEND_ERROR
from .. import _mmsg

BATCH = 16
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


class Backpressure:
    """Lossless mode for the readers and senders of one loop.

    ``current`` is the gate of the reader whose frames are being routed
    (None outside a reader): a sender that is backed up closes it.
    """

    __slots__ = ("current",)

    def __init__(self):
        self.current: Gate | None = None


class Gate:
    """Whether one reader is read; closed while it sends to a full port."""

    __slots__ = ("sock", "loop", "callback", "blockers", "paused", "closed")

    def __init__(self, sock, loop):
        self.sock = sock
        self.loop = loop
        self.callback = None             # the reader, once made
        self.blockers = 0                # backed-up senders this reader waits for
        self.paused = False              # taken out of the loop
        self.closed = False              # the endpoint is gone

    def pause(self) -> None:
        if not self.paused and not self.closed:
            self.paused = True
            self.loop.remove_reader(self.sock)

    def release(self) -> None:
        self.blockers -= 1
        if self.blockers == 0 and self.paused:
            self.paused = False
            if not self.closed:
                self.loop.add_reader(self.sock, self.callback)
                if self.callback.stashed():  # its socket may be empty now
                    self.loop.call_later(0, self.callback)

    def close(self) -> None:
        self.closed = True


def drain(gate: Gate, now: float, limit: int = 64) -> None:
    """Route what is still waiting on a leaving endpoint's socket, then
    close its gate: in lossless mode, frames a client sent before it went
    away are delivered (at most ``limit`` batches)."""
    gate.close()                         # no more pausing, nor resuming
    sock, reader = gate.sock, gate.callback
    if reader is None or not isinstance(sock, socket.socket):
        return
    if reader.stashed():                 # read by the flow cache, not yet routed
        reader(now)
    for _ in range(limit):
        try:
            sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except OSError:                  # nothing left (or broken)
            return
        reader(now)


class Sender:
    """Sends frames to one endpoint, queueing briefly when it is full."""

    __slots__ = ("sock", "port", "loop", "queue", "maxlen", "batcher", "pending",
                 "backpressure", "waiters", "flows")

    def __init__(self, sock: socket.socket, port, loop, maxlen: int = QUEUE_LEN,
                 batcher: Batcher | None = None, backpressure: Backpressure | None = None,
                 flows=None):
        self.sock = sock
        self.port = port                 # engine Port, for drop counters
        self.loop = loop
        self.queue = ()                  # a deque once needed (saves memory per port)
        self.maxlen = maxlen
        self.batcher = batcher
        self.pending: list = []          # held back while the batcher holds
        self.backpressure = backpressure  # lossless mode when set
        self.waiters: set | None = None  # gates closed by our backlog
        self.flows = flows               # the switch's flow cache: told of our backlog

    def _backed_up(self) -> None:
        """A frame was queued (lossless mode): hold the reader that sent it."""
        gate = self.backpressure.current
        if gate is None:
            return
        waiters = self.waiters
        if waiters is None:
            waiters = self.waiters = set()
        if gate not in waiters:
            waiters.add(gate)
            gate.blockers += 1

    def _drained(self) -> None:
        waiters, self.waiters = self.waiters, None
        if waiters:
            for gate in waiters:
                gate.release()

    def close(self) -> None:
        """The endpoint is gone: what it held back goes on."""
        self.queue = ()
        self._drained()

    def send(self, frame: bytes) -> None:
        batcher = self.batcher
        if batcher is not None and batcher.holding:
            if not self.pending:
                batcher.held.append(self)
            self.pending.append(frame)
            return
        if self.queue:
            self._send_now(frame)
            return
        try:                             # _send_now's common case, one call less
            self.sock.send(frame)
        except OSError:
            self._send_now(frame)        # full (queued) or broken (counted)

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
                    self._backlog().append(frames[i])
                    self.loop.add_writer(self.sock, self._on_writable)
                    if self.backpressure is not None:
                        self._backed_up()
                    i += 1
                    break
                i += n
        for frame in frames[i:]:
            self._send_now(frame)

    def _backlog(self) -> collections.deque:
        if not self.queue:
            self.queue = collections.deque()
            if self.flows is not None:   # no frame may pass the queue
                self.flows.block(self.sock, True)
        return self.queue

    def _send_now(self, frame: bytes) -> None:
        if self.queue:
            if self.backpressure is not None:
                self.queue.append(frame)     # lossless: the reader will pause
                self._backed_up()
            elif len(self.queue) < self.maxlen:
                self.queue.append(frame)
            else:
                self.port.count_drop(QUEUE_FULL)
            return
        try:
            self.sock.send(frame)
        except BlockingIOError:
            self._backlog().append(frame)
            self.loop.add_writer(self.sock, self._on_writable)
            if self.backpressure is not None:
                self._backed_up()
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
        self.queue = ()
        self.loop.remove_writer(self.sock)
        if self.flows is not None:
            self.flows.block(self.sock, False)
        if self.waiters:
            self._drained()


class FramePath:
    """What every reader of one switch shares, made once per switch: the
    engine's ``receive``, the ``senders`` table (egress key -> the send
    functions of its endpoints, kept current by the switch as endpoints
    come and go), the batcher and lossless mode.

    With a ``batcher`` (given to the senders too) frames are read and sent
    in batches.  With ``backpressure`` (lossless mode) a reader that has a
    gate stops being read while it sends to a full port.
    """

    __slots__ = ("receive", "senders", "batcher", "vector", "bufsize", "backpressure",
                 "flows")

    def __init__(self, net, senders: dict, batcher: Batcher | None = None,
                 backpressure: Backpressure | None = None, flows=None):
        self.receive = net.receive
        self.senders = senders
        # a datagram longer than net.max_frame is read one byte too long,
        # so the engine sees it is oversize and drops it: never truncated
        self.bufsize = net.max_frame + 1
        self.batcher = batcher
        self.vector = batcher.receiver(self.bufsize) if batcher is not None else None
        self.backpressure = backpressure
        # the switch's flow cache (io/switch/fastpath.py): it reads the
        # attached sockets first, and keeps aside the frames it leaves to us
        self.flows = flows

    def reader(self, sock, port_no: int, on_broken=None, gate: Gate | None = None) -> "Reader":
        """The callback that drains ``sock`` (the endpoint on ``port_no``)."""
        reader = Reader(sock, port_no, self, on_broken, gate)
        if gate is not None:
            gate.callback = reader
        return reader


class Reader:
    """Drains one endpoint's socket into the engine and out to the senders.

    One small object per endpoint (the shared parts are its
    :class:`FramePath`), called by the loop when the socket is readable.
    One body serves every case; what differs is decided once per batch
    (one ``recvmmsg``, or one ``recv`` without a batcher), never per frame.
    """

    __slots__ = ("sock", "port_no", "path", "on_broken", "gate")

    def __init__(self, sock, port_no: int, path: FramePath, on_broken=None,
                 gate: Gate | None = None):
        self.sock = sock
        self.port_no = port_no
        self.path = path
        self.on_broken = on_broken       # f() when the socket is broken
        self.gate = gate                 # lossless mode: paused while sending to a full port

    def stashed(self) -> bool:
        """Has the flow cache kept a frame aside for us?"""
        flows = self.path.flows
        return flows is not None and flows.pending(self.sock.fileno())

    def __call__(self, now: float) -> None:
        path, sock, port_no = self.path, self.sock, self.port_no
        receive, senders, batcher = path.receive, path.senders, path.batcher
        gate = self.gate
        backpressure = path.backpressure if gate is not None else None
        flows = path.flows
        # the frame the flow cache read and left to us comes first
        kept = None if flows is None else flows.take(sock.fileno())
        taken = 0
        while taken < BATCH:
            read = kept is None
            if not read:
                frames, kept = (kept,), None
            else:
                try:
                    if batcher is not None:
                        frames = path.vector.recv(sock.fileno())     # [] when empty
                    else:
                        frames = (sock.recv(path.bufsize),)
                except BlockingIOError:
                    return
                except OSError:
                    if self.on_broken is not None:
                        self.on_broken()
                    return
            n = len(frames)
            if not n:
                return
            taken += n
            if backpressure is not None:
                backpressure.current = gate
            # a lone frame is sent at once; a batch is held back and each
            # receiver's share leaves with one sendmmsg (Batcher.flush)
            holding = n > 1 and batcher is not None
            if holding:
                batcher.holding = True
            try:
                # runts (0-byte datagrams included) and oversize frames are
                # counted on the port by receive() and routed nowhere
                for frame in frames:
                    outs = receive(port_no, frame, now)
                    for out in outs:
                        for send in senders[out]:
                            send(frame)
                if n == 1 and flows is not None and len(outs) == 1:
                    flows.offer(self, frame, outs[0])
            finally:
                if holding:
                    batcher.flush()
                if backpressure is not None:
                    backpressure.current = None
            # (the flow cache's frame and what waits behind it are one
            # batch, as if read together: the pause comes after both)
            if backpressure is not None and gate.blockers and read:
                gate.pause()
                return
            # a short batch means the socket was empty: no second call to
            # find that out (a lone frame goes out after one recvmmsg and
            # one send); without a batcher every call reads one frame.
            # After the flow cache's frame, what else waits is read here.
            if read and batcher is not None and n < BATCH:
                return


def make_reader(sock: socket.socket, port_no: int, net, senders: dict,
                on_broken=None, batcher: Batcher | None = None,
                gate: Gate | None = None, backpressure: Backpressure | None = None):
    """A reader with a frame path of its own (see :class:`FramePath`);
    a switch makes one path for all its readers instead."""
    return FramePath(net, senders, batcher, backpressure).reader(sock, port_no, on_broken, gate)
