"""The per-frame path: batched (recvmmsg/sendmmsg) and plain, side by side.

Every switch test here runs twice: with the switch's batcher, and with
it disabled (the path taken where libc lacks the batched calls).  Both
must deliver the same frames in the same order and count the same drops.
"""

from __future__ import annotations

import os
import socket
import struct

import pytest

from support import dgram_pair as pair, drain, frame, loop_turn as turn
from vde_ipn.engine.bus import DEFAULT_MAX_FRAME, OVERSIZE, QUEUE_FULL, RUNT, SEND_ERROR, Port
from vde_ipn.io import _mmsg
from vde_ipn.io.switch import datasock
from vde_ipn.io.switch.datasock import Batcher, Sender
from vde_ipn.io.loop import Loop
from vde_ipn.io.switch.server import SwitchConfig, SwitchServer

needs_mmsg = pytest.mark.skipif(not _mmsg.AVAILABLE, reason="no recvmmsg/sendmmsg in libc")
PATHS = [pytest.param("batched", marks=needs_mmsg), "plain"]

SRC = b"\x02\x00\x00\x00\x00\x01"
BROADCAST = b"\xff" * 6


def numbered(i: int, size: int = 60) -> bytes:
    return frame(BROADCAST, SRC, struct.pack("!I", i), size=size)


def number(frame: bytes) -> int:
    return struct.unpack_from("!I", frame, 14)[0]


def send_until_full(sock: socket.socket, frames: list) -> int:
    """Queue frames on ``sock`` until its peer's queue is full; how many went."""
    for k, f in enumerate(frames):
        try:
            sock.send(f)
        except BlockingIOError:
            return k
    return len(frames)


@pytest.fixture
def hub(request, sockdir, monkeypatch):
    """A hub served in this process, the batcher on or off."""
    if request.param == "plain":
        monkeypatch.setattr(Batcher, "create", staticmethod(lambda: None))
    loop = Loop()
    server = SwitchServer(SwitchConfig(sock=os.path.join(sockdir, "sw"), hub=True), loop)
    server.start()
    assert (server.batcher is not None) == (request.param == "batched")
    yield loop, server
    server.close()
    loop.close()


def slow_pair(server):
    """Two local endpoints a (port 1) and b (port 2), and the switch's
    sender to b, whose socket holds only a few frames."""
    a = server.attach_local("a")
    b = server.attach_local("b")
    a.setblocking(False)
    b.setblocking(False)
    sender = next(ep.sender for ep in server.endpoints.values() if ep.port == 2)
    # a socketpair's queue is bounded by the sender's buffer only: make it small
    sender.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return a, b, sender


@pytest.fixture
def batch_sizes(monkeypatch):
    """How many frames each recvmmsg returned."""
    sizes = []
    recv = _mmsg.RecvVector.recv

    def counting(self, fd):
        got = recv(self, fd)
        if got:
            sizes.append(len(got))
        return got
    monkeypatch.setattr(_mmsg.RecvVector, "recv", counting)
    return sizes


# -- through a switch -----------------------------------------------------------------
@pytest.mark.parametrize("hub", PATHS, indirect=True)
def test_burst_of_1000_frames_delivered_whole_and_in_order(hub, batch_sizes):
    loop, server = hub
    a = server.attach_local("a")
    b = server.attach_local("b")
    a.setblocking(False)
    b.setblocking(False)
    frames = [numbered(i) for i in range(1000)]
    got = []
    sent = 0
    for _ in range(10000):
        if len(got) == len(frames):
            break
        sent += send_until_full(a, frames[sent:])
        turn(loop)
        got += drain(b)
    assert [number(f) for f in got] == list(range(1000))
    assert got == frames
    assert server.net.ports[1].in_pkts == 1000
    assert server.net.ports[2].drops == {}
    if server.batcher is not None:
        assert max(batch_sizes) > 1              # frames did come in batches


@pytest.mark.parametrize("hub", PATHS, indirect=True)
def test_full_receiver_gets_the_queued_frames_in_order(hub):
    """b reads nothing for a while: the switch queues for it, then catches up."""
    loop, server = hub
    a, b, sender = slow_pair(server)
    frames = [numbered(i) for i in range(200)]       # fits b's queue plus the switch's
    sent = 0
    for _ in range(1000):
        if sent == len(frames):
            break
        sent += send_until_full(a, frames[sent:])
        turn(loop)
    assert sent == len(frames)
    assert len(sender.queue) > 0                 # b's socket did fill up
    got = []
    for _ in range(1000):
        if len(got) == len(frames):
            break
        got += drain(b)
        turn(loop)
    assert got == frames
    assert server.net.ports[2].drops == {}


@pytest.mark.parametrize("hub", PATHS, indirect=True)
def test_runts_and_oversize_frames_within_one_batch(hub, batch_sizes):
    loop, server = hub
    a = server.attach_local("a")
    b = server.attach_local("b")
    b.setblocking(False)
    jumbo = numbered(2, size=DEFAULT_MAX_FRAME)          # the largest frame taken
    burst = [numbered(1), b"", b"12345", b"\xff" * (DEFAULT_MAX_FRAME + 1),
             jumbo, b"\xff" * 20000, b"", numbered(3)]
    for f in burst:
        a.send(f)
    turn(loop)
    assert drain(b) == [numbered(1), jumbo, numbered(3)]
    port = server.net.ports[1]
    assert port.drops == {RUNT: 3, OVERSIZE: 2}
    assert port.in_pkts == 3
    assert port.in_bytes == 60 + DEFAULT_MAX_FRAME + 60
    if server.batcher is not None:
        assert batch_sizes == [len(burst)]       # all of them in one recvmmsg


@pytest.mark.parametrize("hub", PATHS, indirect=True)
def test_hub_copies_every_frame_to_every_other_port(hub):
    loop, server = hub
    a = server.attach_local("a")
    outs = [server.attach_local(name) for name in "bcd"]
    for s in outs:
        s.setblocking(False)
    frames = [numbered(i) for i in range(8)]
    for f in frames:
        a.send(f)
    turn(loop)
    for s in outs:
        assert drain(s) == frames
    assert [server.net.ports[p].out_pkts for p in (2, 3, 4)] == [8, 8, 8]


@pytest.mark.parametrize("hub", PATHS, indirect=True)
def test_lone_frame_goes_straight_through(hub, monkeypatch):
    """One frame waiting: one read, one plain send, nothing held for a batch.

    The frame is at the receiver as soon as the loop has served the
    sender's socket once; with the batcher, it took exactly one recvmmsg
    (no second call to find the socket empty) and no sendmmsg.
    """
    loop, server = hub
    reads, batched_sends = [], []
    recv, send = _mmsg.RecvVector.recv, _mmsg.SendVector.send

    def counting_recv(self, fd):
        got = recv(self, fd)
        reads.append(len(got))
        return got

    def counting_send(self, fd, frames, start):
        batched_sends.append(len(frames) - start)
        return send(self, fd, frames, start)
    monkeypatch.setattr(_mmsg.RecvVector, "recv", counting_recv)
    monkeypatch.setattr(_mmsg.SendVector, "send", counting_send)
    a = server.attach_local("a")             # its reader binds the counting recv
    b = server.attach_local("b")
    b.setblocking(False)
    for i in range(3):                           # one at a time, each on its own
        a.send(numbered(i))
        turn(loop)
        assert drain(b) == [numbered(i)]
        assert server.batcher is None or not (server.batcher.holding or server.batcher.held)
    if server.batcher is not None:
        assert reads == [1, 1, 1]
    assert batched_sends == []
    assert server.net.ports[2].out_pkts == 3


@pytest.mark.parametrize("hub", PATHS, indirect=True)
def test_out_counts_what_was_routed_and_drops_what_was_lost(hub):
    """OUT counts every frame routed to the port, as vde_switch 2.3.2 does
    (spec: per port, before the send); a frame the port's full queue could
    not take is counted in its drops, so OUT - drops is what the port got."""
    loop, server = hub
    a, b, sender = slow_pair(server)
    sender.maxlen = 8
    frames = [numbered(i) for i in range(400)]
    sent = 0
    for _ in range(1000):                        # b reads nothing meanwhile
        if sent == len(frames):
            break
        sent += send_until_full(a, frames[sent:])
        turn(loop)
    got = []
    for _ in range(1000):
        got += drain(b)
        turn(loop)
        if not sender.queue and not drain_peek(b):
            break
    port = server.net.ports[2]
    lost = port.drops.get(QUEUE_FULL, 0)
    assert lost > 0                              # the queue did overflow
    assert port.out_pkts == server.net.ports[1].in_pkts == len(frames)
    assert port.out_pkts - lost == len(got)
    assert got == [f for f in frames if f in set(got)]   # in order, none twice
    assert port.out_bytes == 60 * len(frames)


def drain_peek(sock: socket.socket) -> bool:
    try:
        sock.recv(1, socket.MSG_PEEK)
        return True
    except BlockingIOError:
        return False


class SockDevice:
    """A device as attach_device takes one (one frame per recv/send, like a
    tap), made of one end of a datagram socketpair; ``broken`` makes its
    reads fail as a vanished interface's do."""

    module = "test device"

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.broken = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, n: int) -> bytes:
        if self.broken:
            raise OSError(100, "Network is down")
        return self.sock.recv(n)

    def send(self, frame: bytes) -> int:
        return self.sock.send(frame)

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("hub", PATHS, indirect=True)
def test_device_frames_both_ways_and_a_broken_device_leaves(hub):
    loop, server = hub
    ours, wire = pair()
    dev = SockDevice(ours)
    ep_id = server.attach_device(dev, "dev")
    b = server.attach_local("b")
    b.setblocking(False)
    frames = [numbered(i) for i in range(40)]        # more than one reader call takes
    for f in frames:
        wire.send(f)
    for _ in range(10):
        turn(loop)
    assert drain(b) == frames
    b.send(numbered(99))
    turn(loop)
    assert drain(wire) == [numbered(99)]
    dev.broken = True
    wire.send(numbered(100))                     # readable, but the read fails
    turn(loop)
    assert ep_id not in server.endpoints
    assert server.net.ports[1].endpoints == {}
    wire.close()


# -- the sender on its own --------------------------------------------------------------
def held_sender():
    loop = Loop()
    ours, theirs = pair()
    batcher = Batcher()
    port = Port(1)
    return loop, Sender(ours, port, loop, batcher=batcher), batcher, ours, theirs


@needs_mmsg
def test_held_frames_leave_on_flush_in_order():
    loop, sender, batcher, ours, theirs = held_sender()
    batcher.holding = True
    for i in range(5):
        sender.send(numbered(i))
    assert drain(theirs) == []                   # held back until the flush
    assert batcher.held == [sender]
    batcher.flush()
    assert drain(theirs) == [numbered(i) for i in range(5)]
    assert not batcher.holding and batcher.held == [] and sender.pending == []
    sender.send(numbered(9))                     # not holding: out at once
    assert drain(theirs) == [numbered(9)]
    loop.close()


@needs_mmsg
def test_frames_too_large_for_one_sendmmsg_still_go_in_order(monkeypatch):
    monkeypatch.setattr(datasock, "SEND_SPACE", 150)
    loop, sender, batcher, ours, theirs = held_sender()
    sizes = [60, 60, 200, 60, 100, 100, 60, 1500, 60]
    frames = [numbered(i, size) for i, size in enumerate(sizes)]
    batcher.holding = True
    for f in frames:
        sender.send(f)
    batcher.flush()
    assert drain(theirs) == frames
    assert sender.port.drops == {}
    loop.close()


@pytest.mark.parametrize("path", PATHS)
def test_send_errors_counted_per_frame(path):
    loop, sender, batcher, ours, theirs = held_sender()
    theirs.close()
    if path == "batched":
        batcher.holding = True
    for i in range(3):
        sender.send(numbered(i))
    batcher.flush()
    assert sender.port.drops == {SEND_ERROR: 3}
    loop.close()


@pytest.mark.parametrize("path", PATHS)
def test_queue_full_drops_counted(path):
    loop, sender, batcher, ours, theirs = held_sender()
    sender.maxlen = 4
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    frames = [numbered(i) for i in range(40)]
    if path == "batched":
        batcher.holding = True
    for f in frames:
        sender.send(f)
    batcher.flush()
    delivered = drain(theirs)
    assert 0 < len(delivered) < 30
    assert frames[:len(delivered)] == delivered
    assert list(sender.queue) == frames[len(delivered):len(delivered) + 4]
    assert sender.port.drops == {QUEUE_FULL: 40 - len(delivered) - 4}
    loop.close()


# -- the bindings ------------------------------------------------------------------------
@needs_mmsg
def test_recv_vector_reads_what_is_waiting():
    a, b = pair()
    vec = _mmsg.RecvVector(4, 10)
    assert vec.recv(b.fileno()) == []
    for f in (b"first", b"", b"0123456789abcdef", b"x", b"next call"):
        a.send(f)
    assert vec.recv(b.fileno()) == [b"first", b"", b"0123456789", b"x"]
    assert vec.recv(b.fileno()) == [b"next call"]
    assert vec.recv(b.fileno()) == []
    a.close()
    b.close()


@needs_mmsg
def test_recv_vector_raises_on_a_bad_socket():
    a, b = pair()
    fd = b.fileno()
    a.close()
    b.close()
    with pytest.raises(OSError):
        _mmsg.RecvVector(4, 10).recv(fd)


@needs_mmsg
def test_send_vector_packs_within_count_and_space():
    a, b = pair()
    vec = _mmsg.SendVector(3, 40)
    frames = [bytes([i]) * 15 for i in range(7)]
    assert vec.send(a.fileno(), frames, 0) == 2      # 30 bytes: a third one would not fit
    assert vec.send(a.fileno(), [b"a", b"b", b"c", b"d"], 1) == 3
    assert drain(b) == frames[:2] + [b"b", b"c", b"d"]
    a.close()
    b.close()


@needs_mmsg
def test_send_vector_stops_at_a_full_receiver():
    a, b = pair()
    vec = _mmsg.SendVector(64, 1 << 16)
    frames = [numbered(i) for i in range(1000)]      # more than a socket queue holds
    sent = 0
    while sent < len(frames):
        n = vec.send(a.fileno(), frames, sent)
        if n == 0:
            break
        sent += n
    assert 0 < sent < len(frames)
    assert drain(b) == frames[:sent]
    b.close()
    with pytest.raises(OSError):
        vec.send(a.fileno(), frames, 0)
    a.close()


def test_no_batcher_without_the_calls(monkeypatch):
    monkeypatch.setattr(_mmsg, "AVAILABLE", False)
    assert Batcher.create() is None
