"""Plugs to QEMU's own netdevs and to passt.

* ``qemu-stream://PATH``: connect to a QEMU started with ``-netdev
  stream,server=on,addr.type=unix,addr.path=PATH`` (4-byte big-endian
  length before each frame, :mod:`vde_ipn.wire.qemu_stream`);
* ``qemu-dgram://PATH``: bind PATH and exchange one frame per datagram
  with a QEMU started with ``-netdev dgram,local.type=unix,local.path=
  MINE,remote.type=unix,remote.path=PATH``.  Frames go to the address
  the last datagram came from (so a restarted QEMU is followed); until
  the first one, frames from the network have nowhere to go and are
  dropped.  PATH gets the plug's group and mode (default 0700) and is
  removed on close;
* ``passt://[ARGS]``: start ``passt`` (user-mode networking, NAT to the
  host's network) on a socket of its own and plug into it.  ARGS, split
  as a shell would, are added to passt's command line (``-a``, ``-g``,
  ``-t``...); passt runs in the foreground, serves this one plug and is
  stopped when the plug closes.
"""

from __future__ import annotations

import errno
import os
import pwd
import select
import shlex
import shutil
import socket
import subprocess
import tempfile
import time

from ..._errors import ConnectError
from ...wire import qemu_stream
from ...wire.qemu_stream import FramingError, RecordReader
from .endpoints import Plug, group_id

SEND_WAIT = 5.0                          # seconds to finish a record once begun
PASST_START = 10.0                       # seconds for passt to open its socket


class StreamPlugSocket:
    """A QEMU stream connection behaving as a plug's datagram socket.

    ``recv`` returns one frame per call, ``b""`` once the peer has gone
    (the plug has ``hangup_on_empty``); zero-length records are skipped.
    ``send`` writes whole records only: ``BlockingIOError`` when none of
    it could be written, and once a record is begun it is finished
    (waiting up to ``SEND_WAIT``), or the connection is given up.
    """

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.reader = RecordReader()
        self.broken = False
        self.errors = 0                  # zero-length and unreadable records

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, bufsize: int = 0) -> bytes:
        reader = self.reader
        while True:
            if self.broken:
                return b""
            data = self.sock.recv(reader.want())     # BlockingIOError: nothing now
            if not data:
                return b""
            try:
                records = reader.feed(data)
            except FramingError as e:
                self.errors += 1
                self.broken = True
                raise ConnectionAbortedError(errno.EPROTO, str(e)) from None
            frame = None
            for rec in records:
                if rec:
                    frame = rec
                else:
                    self.errors += 1
            if frame is not None:
                return frame

    def send(self, frame) -> int:
        if self.broken:
            raise BrokenPipeError(errno.EPIPE, "the stream was given up")
        head = qemu_stream.header(len(frame))
        n = self.sock.sendmsg((head, frame))         # BlockingIOError: nothing written
        total = len(frame) + 4
        if n < total:
            self._finish(memoryview(head + bytes(frame))[n:])
        return len(frame)

    def _finish(self, rest: memoryview) -> None:
        deadline = time.monotonic() + SEND_WAIT
        while rest:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self.sock], [], left)[1]:
                self.broken = True
                raise TimeoutError(errno.ETIMEDOUT, "peer stopped reading inside a frame")
            try:
                rest = rest[self.sock.send(rest):]
            except BlockingIOError:
                continue

    def close(self) -> None:
        self.sock.close()


def _connect_stream(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def open_qemu_stream(arg, **_) -> Plug:
    """``qemu-stream://PATH``: a QEMU ``-netdev stream`` server at PATH."""
    if not arg:
        raise ConnectError(errno.EINVAL, "qemu-stream:// needs the path of QEMU's socket")
    try:
        sock = _connect_stream(arg)
    except OSError as e:
        raise ConnectError(e.errno or errno.ECONNREFUSED,
                           "qemu-stream://%s: %s" % (arg, e.strerror or e)) from e
    return Plug(StreamPlugSocket(sock), None, scheme="qemu-stream", hangup_on_empty=True)


# -- qemu-dgram:// ---------------------------------------------------------------------
class DgramPlugSocket:
    """A bound datagram socket answering whoever sent to it last."""

    def __init__(self, sock: socket.socket, path: str):
        self.sock = sock
        self.path = path
        self.peer = None

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, bufsize: int) -> bytes:
        frame, addr = self.sock.recvfrom(bufsize)
        if addr:
            self.peer = addr
        return frame

    def send(self, frame) -> int:
        if self.peer is None:
            return len(frame)            # nobody to send to yet: lost, as on a wire
        try:
            return self.sock.sendto(frame, self.peer)
        except (ConnectionRefusedError, FileNotFoundError):
            self.peer = None             # QEMU went away; wait for the next one
            return len(frame)

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.sock.close()
            try:
                os.unlink(self.path)
            except OSError:
                pass


def open_qemu_dgram(arg, *, group=None, mode=None, **_) -> Plug:
    """``qemu-dgram://PATH``: the socket a QEMU ``-netdev dgram`` sends to."""
    from ..switch.qemu_sock import bind_socket
    if not arg:
        raise ConnectError(errno.EINVAL, "qemu-dgram:// needs a path to bind")
    try:
        sock = bind_socket(arg, socket.SOCK_DGRAM, 0o700 if mode is None else mode,
                           group_id(group) if group else -1)
    except OSError as e:
        raise ConnectError(e.errno or errno.EADDRINUSE,
                           "qemu-dgram://%s: %s" % (arg, e.strerror or e)) from e
    return Plug(DgramPlugSocket(sock, arg), None, scheme="qemu-dgram")


# -- passt:// ----------------------------------------------------------------------------
class _Passt:
    """The passt process of one plug, and its private directory."""

    def __init__(self, proc: subprocess.Popen, workdir: str):
        self.proc = proc
        self.workdir = workdir

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _passt_says(workdir: str) -> str:
    text = ""
    for name in ("stderr",):
        try:
            with open(os.path.join(workdir, name), errors="replace") as f:
                text += f.read()
        except OSError:
            pass
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and "to syslog" not in ln]
    return "; ".join(lines[-3:]) or "no message"


def open_passt(arg, **_) -> Plug:
    """``passt://[ARGS]``: NAT to the host's network through a new passt."""
    exe = shutil.which("passt")
    if exe is None:
        raise ConnectError(errno.ENOENT, "passt:// needs passt (Debian package passt)")
    try:
        extra = shlex.split(arg)
    except ValueError as e:
        raise ConnectError(errno.EINVAL, "passt://%s: %s" % (arg, e)) from e
    workdir = tempfile.mkdtemp(prefix="vde-passt-")
    if os.geteuid() == 0 and not any(a.startswith("--runas") for a in extra):
        # passt drops root for nobody before binding its socket
        nobody = pwd.getpwnam("nobody")
        os.chown(workdir, nobody.pw_uid, nobody.pw_gid)
    path = os.path.join(workdir, "passt.socket")
    argv = [exe, "--foreground", "--one-off", "--socket", path] + extra
    with open(os.path.join(workdir, "stderr"), "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err)
    owner = _Passt(proc, workdir)
    deadline = time.monotonic() + PASST_START
    while True:
        if proc.poll() is not None:
            why = _passt_says(workdir)
            owner.close()
            raise ConnectError(errno.ECONNREFUSED, "passt exited (%s)" % why)
        try:
            sock = _connect_stream(path)
            break
        except OSError:
            if time.monotonic() > deadline:
                owner.close()
                raise ConnectError(errno.ETIMEDOUT, "passt did not open its socket "
                                   "within %gs" % PASST_START) from None
            time.sleep(0.05)
    return Plug(StreamPlugSocket(sock), None, scheme="passt", owner=owner,
                hangup_on_empty=True)


SCHEMES = {
    "qemu-stream": open_qemu_stream,
    "qemu-dgram": open_qemu_dgram,
    "passt": open_passt,
}
