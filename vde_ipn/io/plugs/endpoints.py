"""Plug objects, and the schemes that need no switch: null, seqpacket, ptp.

:class:`Plug` is what :func:`vde_ipn.io.plugs.opener.open_plug` returns for every
scheme.  Its ``send``/``recv`` are the data socket's own bound methods
(or a thin equivalent), so a frame costs one call and no extra objects.
"""

from __future__ import annotations

import errno
import grp
import os
import re
import socket
import stat

from ..._errors import ConnectError
from ...wire.c_numbers import strtol


class Plug:
    """One connection to a VDE network.

    ``data`` is the socket frames go through; ``ctl`` (may be None) is the
    control connection whose EOF means the switch closed this port.
    ``send(frame)`` and ``recv(bufsize)`` behave like a non-blocking
    datagram socket's (``BlockingIOError`` when nothing is ready).
    ``recv`` returning ``b""`` is an empty datagram, to be ignored, unless
    ``hangup_on_empty`` (seqpacket): then the peer has gone.
    """

    def __init__(self, data, ctl: socket.socket | None = None, *, scheme: str = "vde",
                 owner=None, hangup_on_empty: bool = False):
        self.data = data
        self.ctl = ctl
        self.scheme = scheme
        self.hangup_on_empty = hangup_on_empty
        self._owner = owner               # e.g. the in-process switch
        self.send = data.send
        self.recv = data.recv

    def fileno(self) -> int:
        return self.data.fileno()

    def ctl_fileno(self) -> int:
        return -1 if self.ctl is None else self.ctl.fileno()

    def close(self) -> None:
        """Close the sockets (and an in-process network); idempotent."""
        for s in (self.data, self.ctl):
            if s is not None:
                s.close()
        if self._owner is not None:
            self._owner.close()
            self._owner = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def group_id(group: str) -> int:
    """A group name's gid, else the number C ``atoi`` reads from it."""
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        m = re.match(r"\s*([+-]?\d+)", group)
        return int(m.group(1)) if m else 0


# -- null:// -----------------------------------------------------------------
class _NullSocket:
    """A data 'socket' that swallows frames and never becomes readable."""

    def __init__(self):
        self._r, self._w = os.pipe()

    def send(self, frame) -> int:
        return len(frame)

    def recv(self, n: int) -> bytes:
        raise BlockingIOError(errno.EAGAIN, "null:// never receives")

    def fileno(self) -> int:
        return self._r

    def close(self) -> None:
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._r = self._w = -1


def open_null(arg, **_) -> Plug:
    """``null://``: a sink; whatever follows ``://`` is ignored."""
    return Plug(_NullSocket(), None, scheme="null")


# -- seqpacket:// ------------------------------------------------------------
def open_seqpacket(arg, **_) -> Plug:
    """``seqpacket://FD``: an inherited socket, one frame per packet.

    FD is read as C ``strtol`` does (``17``, ``0x11``, ``021``).  The
    plug owns the descriptor from now on; ``recv`` returning ``b""`` means
    the other end closed it.
    """
    fd = strtol(arg)
    if fd < 0:
        raise ConnectError(errno.EINVAL, "seqpacket://%s: negative fd" % arg)
    try:
        sock = socket.socket(fileno=fd)
    except OSError as e:
        raise ConnectError(e.errno or errno.EBADF,
                           "seqpacket://%s: not an open socket" % arg) from e
    sock.setblocking(False)
    return Plug(sock, None, scheme="seqpacket",
                hangup_on_empty=sock.type != socket.SOCK_DGRAM)


# -- ptp:// ------------------------------------------------------------------
def open_ptp(arg, *, group=None, mode=None, **_) -> Plug:
    """``ptp://PATH``: two plugs meet at PATH, with no switch in between.

    The first to come binds PATH and sends to ``PATH+``; the second finds
    PATH alive, connects to it and binds ``PATH+`` (see :class:`_PtpFirst`
    for how the first one connects back).  A socket file nobody
    receives on any more (connect refused) is stale and replaced; a third
    plug fails with EADDRINUSE.  Frames sent while the other end is absent
    fail (``send`` raises) and are lost.  Our socket gets ``group`` and
    ``mode`` (default 0700) and is removed on close.
    """
    path = arg
    try:
        end, data, mine, peer = _ptp_first(path)
    except OSError:
        try:
            end, data, mine, peer = _ptp_second(path)
        except OSError as e:
            raise ConnectError(e.errno or errno.EINVAL, "ptp://%s: %s"
                               % (path, e.strerror or e)) from e
    try:
        if group:
            os.chown(mine, -1, group_id(group))
        os.chmod(mine, 0o700 if mode is None else mode)
    except OSError as e:
        data.close()
        _unlink(mine)
        raise ConnectError(e.errno, "ptp://%s: %s" % (path, e.strerror)) from e
    data.setblocking(False)
    return Plug(end(data, mine, peer), None, scheme="ptp")


def _ptp_first(path: str):
    _clear_stale(path)
    data = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        data.bind(path)
    except OSError:
        data.close()
        raise
    return _PtpFirst, data, path, path + "+"


def _ptp_second(path: str):
    data = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    mine = path + "+"
    try:
        data.connect(path)
        _clear_stale(mine)
        data.bind(mine)
    except OSError:
        data.close()
        raise
    return _PtpSecond, data, mine, path


def _clear_stale(path: str) -> None:
    """Remove ``path`` if it is a socket nobody receives on; raise
    EADDRINUSE if somebody does; leave anything else alone."""
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return
    except OSError:
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        _unlink(path)
        return
    except OSError:
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class _PtpEnd:
    """What both ends of a ptp cable share: closing removes the file the
    socket is bound to."""

    def __init__(self, sock, mine, peer):
        self.sock, self.mine, self.peer = sock, mine, peer
        self.recv = sock.recv

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.sock.close()
            _unlink(self.mine)


class _PtpSecond(_PtpEnd):
    """The second plug's socket, connected to PATH from the start."""

    def __init__(self, sock, mine, peer):
        super().__init__(sock, mine, peer)
        self.send = sock.send


class _PtpFirst(_PtpEnd):
    """The first plug's socket: it connects to ``PATH+`` at its first send
    that finds it unconnected (again after the peer went away), so from
    then on, like vdeplug4's, it only hears from that peer."""

    def send(self, frame) -> int:
        try:
            return self.sock.send(frame)
        except OSError as e:
            if e.errno not in (errno.ENOTCONN, errno.EDESTADDRREQ):
                raise
        self.sock.connect(self.peer)
        return self.sock.send(frame)
