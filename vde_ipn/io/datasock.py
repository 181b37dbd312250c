"""Data sockets: the per-frame path between endpoints and the engine.

Each endpoint owns one connected, non-blocking AF_UNIX datagram socket,
so forwarding is a plain ``send()``.  A readable socket is drained in
one go (up to ``BATCH`` frames) to save a trip through the selector per
frame.  When a receiver's queue is full the frame is kept in a short
per-endpoint queue and sent when the socket is writable again; only
when that queue is full is a frame dropped, and counted on the port.
"""

from __future__ import annotations

import collections
import socket

from ..engine.bus import QUEUE_FULL, SEND_ERROR

BATCH = 64
QUEUE_LEN = 256


class Sender:
    """Sends frames to one endpoint, queueing briefly when it is full."""

    __slots__ = ("sock", "port", "loop", "queue", "maxlen")

    def __init__(self, sock: socket.socket, port, loop, maxlen: int = QUEUE_LEN):
        self.sock = sock
        self.port = port                 # engine Port, for drop counters
        self.loop = loop
        self.queue: collections.deque = collections.deque()
        self.maxlen = maxlen

    def send(self, frame: bytes) -> None:
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
                on_broken=None):
    """Callback draining ``sock`` into the engine and out to ``senders``.

    A datagram longer than ``net.max_frame`` is read one byte too long,
    so the engine sees it is oversize and drops it: frames are never
    truncated.

    ``senders`` maps a port number to the tuple of send functions of its
    endpoints; the caller keeps it current as endpoints come and go.
    """
    recv = sock.recv
    receive = net.receive
    bufsize = net.max_frame + 1          # one more byte tells an oversize frame

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
