"""The server side of vde_switch's control handshake on ``ctl``.

Shared by the switch (:mod:`.server`) and kvde_switch's bridge
(:mod:`.ipn_bridge`), which differ only in what a port is:

* :class:`PendingRequests`: accepted connections whose request is not
  complete yet.  A request split across writes is reassembled; one that
  can no longer become valid is handed on at once (the caller refuses
  it); a client that has not finished within ``HANDSHAKE_TIMEOUT`` is
  dropped, so it cannot hold a descriptor forever;
* :func:`client_user`: whose client socket a request names;
* :func:`open_data_socket`: the data socket of a new port, connected to
  the client, bound in the switch directory with the right owner and
  mode, and announced by the one 110-byte reply;
* :func:`watch_ctl`: after the handshake, bytes on ``ctl`` are ignored
  and its end means the client has left.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

from ...engine.bus import NO_USER
from ...wire import vde_ctl

HANDSHAKE_TIMEOUT = 5.0
_VERSIONS = (0, 1, 3)                    # 0/1: the v1 layout (the word is its type)


def request_incomplete(buf: bytearray) -> bool:
    """True while more bytes could still make ``buf`` a valid request.

    A request split across writes is waited for; one that can no longer
    become valid (bad magic, version or type) is answered at once
    instead of after ``HANDSHAKE_TIMEOUT``.
    """
    if len(buf) >= vde_ctl.REQUEST_MAX or not vde_ctl.need_more(bytes(buf)):
        return False
    if len(buf) >= 8:
        _magic, version = struct.unpack_from("=II", buf)
        if version not in _VERSIONS:
            return False
        if version == 3 and len(buf) >= 12 and struct.unpack_from("=i", buf, 8)[0] & 0xFF > 1:
            return False             # the request type is the low byte of the word
    return True


class PendingRequests:
    """Control connections between accept and a complete request.

    ``on_request(conn, raw)`` gets each connection whose request is
    complete (or can no longer become one), no longer watched here;
    ``on_freed()`` runs after a dropped connection is closed (a
    descriptor is free again).
    """

    def __init__(self, loop, on_request, on_freed=lambda: None):
        self.loop = loop
        self._on_request = on_request
        self._on_freed = on_freed
        self._timers: dict[socket.socket, list] = {}     # in accept order

    def __len__(self) -> int:
        return len(self._timers)

    def add(self, conn: socket.socket) -> None:
        """Read the request of a just accepted ``conn``."""
        conn.setblocking(False)
        buf = bytearray()

        def on_readable(now: float) -> None:
            try:
                chunk = conn.recv(vde_ctl.REQUEST_MAX - len(buf))
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:                # gone before finishing its request
                self.drop(conn)
                return
            buf.extend(chunk)
            if request_incomplete(buf):
                return
            self.end(conn)
            self._on_request(conn, bytes(buf))

        self._timers[conn] = self.loop.call_later(
            HANDSHAKE_TIMEOUT, lambda _now: self.drop(conn))
        self.loop.add_reader(conn, on_readable)

    def oldest(self, before: float):
        """The longest-waiting connection accepted before ``before``, or None."""
        for conn, timer in self._timers.items():
            return conn if timer[0] - HANDSHAKE_TIMEOUT <= before else None
        return None

    def end(self, conn: socket.socket) -> None:
        """Stop reading ``conn`` (it stays open)."""
        timer = self._timers.pop(conn, None)
        if timer is not None:
            self.loop.cancel(timer)
        self.loop.forget(conn)

    def drop(self, conn: socket.socket) -> None:
        """Stop reading ``conn`` and close it."""
        self.end(conn)
        conn.close()
        self._on_freed()

    def close(self) -> None:
        for conn in list(self._timers):
            self.drop(conn)


def client_user(req) -> int:
    """The uid owning the client's socket (``NO_USER`` for an abstract
    one); PermissionError when the server may not use that socket."""
    if req.abstract:
        return NO_USER
    if not os.access(req.path, os.R_OK | os.W_OK):
        raise PermissionError(errno.EACCES, "client socket not accessible", req.path)
    return os.stat(req.path).st_uid


def set_data_perms(path: str, mode: int, gid: int, user: int) -> None:
    """Owner and mode of a data socket (reference 1.1): a root server
    gives it to the client's uid, owner-only; otherwise ``mode`` applies."""
    if os.geteuid() == 0 and user != NO_USER:
        os.chmod(path, mode & 0o700)
        os.chown(path, user, gid)
    else:
        os.chmod(path, mode)
        if gid != -1:
            os.chown(path, -1, gid)


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def open_data_socket(conn: socket.socket, directory: str, port_no: int, req, set_perms,
                     log=None) -> tuple[socket.socket, str]:
    """Connect a data socket to the client, bind it as ``DIR/PPP.FD``,
    call ``set_perms(path)`` and send the reply on ``conn``.

    Returns ``(data, path)``; on any failure nothing is left behind (no
    socket, no file) and the error is raised.  ``log`` is told when the
    client's own socket cannot be reached.
    """
    data = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = None
    try:
        data.setblocking(False)
        try:
            # the full raw address: abstract names match byte for byte
            data.connect(req.sockaddr)
        except OSError as e:
            if log is not None:
                log("Connecting to client data socket %s: %s" % (req.path, e.strerror))
            raise
        path = "%s/%03d.%d" % (directory, port_no, data.fileno())
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        data.bind(path)
        set_perms(path)
        reply = vde_ctl.encode_reply(path)
        # one write of all 110 bytes, or no port (UML rejects short replies)
        if conn.send(reply) != len(reply):
            raise OSError(errno.EMSGSIZE, "short ctl reply")
    except BaseException:
        data.close()
        if path is not None:             # bound, but no endpoint will own it
            unlink_quietly(path)
        raise
    return data, path


class _CtlWatch:
    """One client's ``ctl`` after the handshake (an object rather than a
    closure: a third of the memory, and there is one per port)."""

    __slots__ = ("conn", "on_gone", "arg")

    def __init__(self, conn: socket.socket, on_gone, arg):
        self.conn, self.on_gone, self.arg = conn, on_gone, arg

    def readable(self, now: float) -> None:
        try:
            if self.conn.recv(4096):
                return                   # chatter after the handshake: ignored
        except BlockingIOError:
            return
        except OSError:
            pass
        if self.arg is None:
            self.on_gone(now)
        else:
            self.on_gone(self.arg, now)


def watch_ctl(loop, conn: socket.socket, on_gone, arg=None) -> None:
    """After the handshake: ignore what the client writes on ``ctl`` and
    call ``on_gone(now)`` (``on_gone(arg, now)`` when ``arg`` is given)
    when it closes (its port is to be freed)."""
    loop.add_reader(conn, _CtlWatch(conn, on_gone, arg).readable)
