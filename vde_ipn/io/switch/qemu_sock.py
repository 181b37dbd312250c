"""QEMU's own netdevs on a switch: ``-netdev stream`` and ``-netdev dgram``.

QEMU 7.2 and later can reach a switch without libvdeplug:

* ``-netdev stream,server=off,addr.type=unix,addr.path=PATH`` connects
  to a unix stream socket and sends each frame as a 4-byte big-endian
  length and the frame (:mod:`vde_ipn.wire.qemu_stream`);
* ``-netdev dgram,local.type=unix,local.path=MINE,remote.type=unix,
  remote.path=PATH`` binds MINE and sends one frame per datagram to PATH.

:class:`StreamListener` and :class:`DgramListener` serve such a PATH for a
:class:`~vde_ipn.io.switch.server.SwitchServer`.  Each stream connection, and
each datagram source address, becomes an endpoint on a port of its own,
like a VDE client: VLANs, counters, the monitor port and the console
apply to it.  Who may connect or send is decided by the socket file's
mode and group (the switch's ``-m`` and ``-g``, as for ``ctl``).

A stream client's user is the peer's uid (``SO_PEERCRED``); a datagram
client is known by its source address, a socket file that only its
creator could bind, and its user is that file's owner.  Datagrams from
unbound sockets cannot be answered and are dropped; so are those from
new sources while no port is free.  Both are counted on the listener and
logged once per source.  A datagram client that went away keeps its port
until a frame sent to it fails, so when a new source finds no free port,
the clients whose sockets are gone are found (a ``connect`` to each
address, no data sent; at most once per ``REAP_EVERY`` seconds) and
their ports freed first: sending from many addresses and leaving cannot
fill a switch.

Bad input on a stream loses only what it has to: a zero-length record
is a runt, a frame longer than the switch's maximum is read and dropped
(``oversize``), a length above QEMU's own limit means the stream cannot
be followed (``framing``: the client is disconnected) and a client gone
in the middle of a record leaves a ``truncated`` count.  A client that
stops reading gets ``OUT_LIMIT`` bytes queued, then its frames are
dropped (``queue_full``); everyone else is served as before.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import struct

from ..._errors import NoFreePort, PortInUse
from ...engine.bus import FRAMING, NO_USER, QUEUE_FULL, RUNT, TRUNCATED
from ...wire import qemu_stream
from ...wire.qemu_stream import FramingError, RecordReader

BACKLOG = 15
BATCH = 64
READ_CHUNK = 1 << 16                     # bytes taken from a stream client per read
OUT_LIMIT = 256 * 1024                   # bytes queued for a stream client
LOGGED_SOURCES = 64                      # refused sources remembered for logging
REAP_EVERY = 1.0                         # seconds between searches for gone dgram clients
_PEERCRED = struct.Struct("3i")          # pid, uid, gid


def bind_socket(path: str, kind: int, mode: int, gid: int = -1) -> socket.socket:
    """A unix socket bound at ``path`` with ``mode`` and group ``gid``.

    The file is created with no permissions and then given ``mode``, so
    nobody can use it in between.  A socket file nothing listens on is
    replaced; a live one, or anything that is not a socket, is an error.
    """
    sock = socket.socket(socket.AF_UNIX, kind)
    try:
        _replace_stale(path, kind)
        old = os.umask(0o777)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        if gid != -1:
            os.chown(path, -1, gid)
        os.chmod(path, mode)
        if kind == socket.SOCK_STREAM:
            sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _replace_stale(path: str, kind: int) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(errno.EEXIST, "exists and is not a socket", path)
    probe = socket.socket(socket.AF_UNIX, kind)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return
    except OSError as e:
        if e.errno != errno.EPROTOTYPE:          # a socket of the other kind: in use
            raise OSError(errno.EADDRINUSE, "in use", path) from e
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, "in use", path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# -- stream --------------------------------------------------------------------------
class StreamClient:
    """One ``-netdev stream`` connection, as a switch device.

    ``recv`` returns one frame per call (or raises ``BlockingIOError``,
    or ``OSError`` once the client is gone or unreadable); ``send``
    never blocks: what the socket does not take is queued, up to
    ``OUT_LIMIT`` bytes, and written when it becomes writable.
    """

    module = "qemu stream"

    def __init__(self, conn: socket.socket, loop, log=lambda msg: None, label="client"):
        self.conn = conn
        self.loop = loop
        self.log = log
        self.label = label
        self.port = None                 # engine Port, set once attached
        self.reader = RecordReader()
        self.out = bytearray()

    def fileno(self) -> int:
        return self.conn.fileno()

    def _count(self, cause: str) -> None:
        if self.port is not None:
            self.port.count_drop(cause)

    def recv(self, bufsize: int = 0) -> bytes:
        reader, recv = self.reader, self.conn.recv
        while True:
            data = recv(reader.want())           # BlockingIOError: nothing more now
            if not data:
                if reader.partial:
                    self._count(TRUNCATED)
                    self.log("%s: stream ended inside a frame (%d bytes of it came)"
                             % (self.label, reader.partial))
                raise ConnectionResetError(errno.ECONNRESET, "client closed the stream")
            try:
                records = reader.feed(data)
            except FramingError as e:
                self._count(FRAMING)
                self.log("%s: %s; disconnected" % (self.label, e))
                raise ConnectionAbortedError(errno.EPROTO, str(e)) from None
            frame = None
            for rec in records:                  # at most one frame and one runt
                if rec:
                    frame = rec
                else:
                    self._count(RUNT)
            if frame is not None:
                return frame

    def send(self, frame: bytes) -> None:
        if self.out:
            if len(self.out) >= OUT_LIMIT:
                self._count(QUEUE_FULL)
                return
            self.out += qemu_stream.header(len(frame))
            self.out += frame
            return
        head = qemu_stream.header(len(frame))
        try:
            n = self.conn.sendmsg((head, frame))
        except BlockingIOError:
            n = 0
        if n < len(frame) + 4:
            self.out += (head + frame)[n:]
            self.loop.add_writer(self.conn, self._on_writable)

    def _on_writable(self, now: float) -> None:
        try:
            n = self.conn.send(self.out)
        except BlockingIOError:
            return
        except OSError:
            n = len(self.out)                    # gone: the reader will see it
        del self.out[:n]
        if not self.out:
            self.loop.remove_writer(self.conn)

    def close(self) -> None:
        self.out.clear()
        self.conn.close()

    def make_reader(self, net, senders, batcher, on_broken):
        """A callback reading up to ``READ_CHUNK`` bytes per call and
        routing every frame they complete, batched like a datagram
        endpoint's; replaces the one-frame-per-call :meth:`recv` path."""
        conn_recv, reader, port_no = self.conn.recv, self.reader, self.port.number
        receive = net.receive

        def on_readable(now: float) -> None:
            try:
                data = conn_recv(READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            try:
                if not data:
                    if reader.partial:
                        self._count(TRUNCATED)
                        self.log("%s: stream ended inside a frame (%d bytes of it came)"
                                 % (self.label, reader.partial))
                    frames = None
                else:
                    frames = reader.feed(data)
            except FramingError as e:
                self._count(FRAMING)
                self.log("%s: %s; disconnected" % (self.label, e))
                frames = None
            if frames is None:
                on_broken()
                return
            if batcher is not None:
                batcher.holding = True
            try:
                # zero-length records are runts, counted by receive()
                for frame in frames:
                    for out in receive(port_no, frame, now):
                        for send in senders[out]:
                            send(frame)
            finally:
                if batcher is not None:
                    batcher.flush()
        return on_readable


def peer_credentials(conn: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of ``conn``."""
    pid, uid, _gid = _PEERCRED.unpack(
        conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    return pid, uid


class _Listener:
    """A unix socket of type ``kind`` at ``path``, with the switch's mode
    and group, where QEMU clients come; ``_on_readable`` serves it."""

    kind = socket.SOCK_STREAM

    def __init__(self, server, path: str, log=lambda msg: None):
        self.server = server
        self.path = path
        self.log = log
        self.sock = bind_socket(path, self.kind, server.mode, server.config.gid)
        self.refused = 0                         # clients (datagrams) no port could take
        server.loop.add_reader(self.sock, self._on_readable)

    def close(self) -> None:
        if self.sock is not None:
            self.server.loop.forget(self.sock)
            self.sock.close()
            self.sock = None
            _unlink(self.path)


class StreamListener(_Listener):
    """A unix stream socket at ``path`` where QEMU stream clients connect."""

    def _on_readable(self, now: float) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        conn.setblocking(False)
        pid, uid = peer_credentials(conn)
        server = self.server
        label = "qemu stream client pid %d on %s" % (pid, self.path)
        dev = StreamClient(conn, server.loop, self.log, label)
        descr = "QEMU stream user=%s pid=%d" % (server.user_name(uid), pid)
        try:
            port_no = server.net.pick_port(None, uid)
            ep_id = server.attach_device(dev, descr, port_no, user=uid)
        except (NoFreePort, PortInUse) as e:
            self.refused += 1
            self.log("%s: no port for it: %s" % (label, e))
            conn.close()
            return
        dev.port = server.net.ports[port_no]
        # many frames per read instead of attach_device's one per recv()
        server.loop.add_reader(dev, dev.make_reader(
            server.net, server.senders, server.batcher,
            lambda: server.close_endpoint(ep_id)))


# -- datagrams -------------------------------------------------------------------------
class DgramPeer:
    """One ``-netdev dgram`` client: a socket connected to its address.

    Frames from the client arrive on the listener; this socket only
    sends, and being connected it tells when the client's queue is full
    (the switch then queues, as for VDE clients).  QEMU leaves its socket
    unconnected; a client whose socket is connected to the listener
    accepts frames from the listener only (the kernel refuses others
    with EPERM): it is answered with ``sendto`` from the listener, and a
    frame it has no room for is dropped and counted.  Once the client's
    socket is gone (a send is refused) the endpoint is closed, and the
    next datagram from that address, if any, makes a new one.
    """

    module = "qemu dgram"

    def __init__(self, listener, addr):
        self.listener = listener
        self.addr = addr
        self.ep_id = None
        self.port = None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            try:
                sock.connect(addr)
            except PermissionError:
                self.send = self._send_from_listener
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.recv = sock.recv                    # nothing comes: no address

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, frame: bytes) -> None:
        try:
            self.sock.send(frame)
        except OSError as e:
            if e.errno in (errno.ECONNREFUSED, errno.ECONNRESET, errno.ENOTCONN,
                           errno.EPIPE, errno.ENOENT):
                self.listener.gone(self)
            raise

    def _send_from_listener(self, frame: bytes) -> None:
        try:
            self.listener.sock.sendto(frame, self.addr)
        except BlockingIOError:
            if self.port is not None:
                self.port.count_drop(QUEUE_FULL)
        except OSError as e:
            if e.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.EPERM):
                self.listener.gone(self)
            raise

    def close(self) -> None:
        self.listener.forget_peer(self)
        self.sock.close()

    def gone_away(self) -> bool:
        """Is the client's socket gone?  (A connect to its address: no
        data is sent.)  Only a refusal or a missing file says so; a socket
        connected elsewhere, or one we may not reach, is still there."""
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            probe.connect(self.addr)
        except (ConnectionRefusedError, FileNotFoundError):
            return True
        except OSError:
            return False
        finally:
            probe.close()
        return False


def _source_user(addr) -> int:
    if isinstance(addr, str):
        try:
            return os.stat(addr).st_uid
        except OSError:
            return NO_USER
    return NO_USER                               # an abstract name has no owner


def _show(addr) -> str:
    if isinstance(addr, bytes):
        return "@" + addr[1:].decode(errors="replace")
    return addr


class DgramListener(_Listener):
    """A unix datagram socket at ``path`` where QEMU dgram clients send."""

    kind = socket.SOCK_DGRAM

    def __init__(self, server, path: str, log=lambda msg: None):
        self.peers: dict = {}
        self.unnamed = 0                         # datagrams from unbound sockets
        self.reaped = 0                          # gone clients whose ports were freed
        self._next_reap = 0.0
        self._logged: set = set()
        super().__init__(server, path, log)

    def _on_readable(self, now: float) -> None:
        server = self.server
        net, senders = server.net, server.senders
        recvfrom, bufsize = self.sock.recvfrom, net.max_frame + 1
        peers = self.peers
        for _ in range(BATCH):
            try:
                frame, addr = recvfrom(bufsize)
            except BlockingIOError:
                return
            except OSError:
                return
            peer = peers.get(addr)
            if peer is None:
                peer = self._admit(addr)
                if peer is None:
                    continue
            for out in net.receive(peer.port_no, frame, now):
                for send in senders[out]:
                    send(frame)

    def _refuse(self, addr, why: str) -> None:
        if not addr:
            self.unnamed += 1
        else:
            self.refused += 1
        key = addr or ""
        if key not in self._logged and len(self._logged) < LOGGED_SOURCES:
            self._logged.add(key)
            self.log("qemu dgram on %s: %s %s" % (self.path, why,
                                                   _show(addr) if addr else ""))

    def _admit(self, addr):
        if not addr:
            self._refuse(addr, "dropping datagrams from an unbound socket (no reply address)")
            return None
        server = self.server
        user = _source_user(addr)
        try:
            peer = DgramPeer(self, addr)
        except OSError as e:
            self._refuse(addr, "cannot answer (%s):" % (e.strerror or e))
            return None
        descr = "QEMU dgram %s user=%s" % (_show(addr),
                                            "NONE" if user == NO_USER else server.user_name(user))
        try:
            try:
                port_no = server.net.pick_port(None, user)
            except NoFreePort:
                if not self._reap():
                    raise
                port_no = server.net.pick_port(None, user)
            peer.ep_id = server.attach_device(peer, descr, port_no, user=user)
        except (NoFreePort, PortInUse) as e:
            peer.sock.close()
            self._refuse(addr, "no port (%s) for" % e)
            return None
        peer.port_no = port_no
        peer.port = server.net.ports[port_no]
        self.peers[addr] = peer
        self._logged.discard(addr)
        return peer

    def _reap(self) -> int:
        """Free the ports of the clients whose sockets are gone; how many."""
        loop = self.server.loop
        now = loop.clock()
        if now < self._next_reap:
            return 0
        self._next_reap = now + REAP_EVERY
        gone = [peer for peer in list(self.peers.values()) if peer.gone_away()]
        for peer in gone:
            self.server.close_endpoint(peer.ep_id)
        self.reaped += len(gone)
        return len(gone)

    def gone(self, peer: DgramPeer) -> None:
        """The client's socket refuses frames: close its endpoint soon
        (not while a frame is being routed)."""
        if self.peers.get(peer.addr) is peer:
            del self.peers[peer.addr]
            self.server.loop.call_later(0, lambda now: self.server.close_endpoint(peer.ep_id))

    def forget_peer(self, peer: DgramPeer) -> None:
        if self.peers.get(peer.addr) is peer:
            del self.peers[peer.addr]
