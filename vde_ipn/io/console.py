"""Console sessions: the switch's stdin and its management socket.

Each read (at most 128 bytes) is one command, as vde_switch reads it;
the answer is computed by the sans-IO command table and written here.
"""

from __future__ import annotations

import errno
import os
import socket

from ..engine import commands  # noqa: F401  (fills the command table)
from ..engine.console import LOGOUT, SHUTDOWN, execute
from ..wire import mgmt
from .ctldir import is_alive


def _run(ctx, raw: bytes):
    line = mgmt.split_command(raw.decode("utf-8", "replace"))
    return execute(ctx, line)


class StdinConsole:
    """fd 0 as a console: answers on stdout, prompt on fd 0 (as 2.3.2)."""

    def __init__(self, ctx, loop, on_eof, out=1, prompt_fd=0):
        self.ctx, self.loop, self.on_eof = ctx, loop, on_eof
        self.out, self.prompt_fd = out, prompt_fd
        loop.add_reader(0, self._on_readable)

    def _on_readable(self, now: float) -> None:
        try:
            raw = os.read(0, mgmt.LINE_MAX)
        except OSError:
            raw = b""
        if not raw:
            self.loop.remove_reader(0)
            self.on_eof()
            return
        res = _run(self.ctx, raw)
        if res is not None:
            if res.action == LOGOUT:
                return                     # a no-op on the stdin console
            if res.action == SHUTDOWN:
                self.ctx.shutdown("Shutdown from mgmt command")
                return
            _write_all(self.out, mgmt.response(res.lines, res.rc).encode())
        try:
            os.write(self.prompt_fd, mgmt.PROMPT.encode())
        except OSError:
            pass                           # fd 0 is a pipe: no prompt, as 2.3.2


class MgmtServer:
    """The ``-M`` socket: any number of console sessions."""

    def __init__(self, ctx, loop, path: str, mode: int, gid: int = -1, log=None):
        self.ctx, self.loop, self.path = ctx, loop, path
        self.sessions: dict[int, socket.socket] = {}
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.bind(path)
        except OSError as e:
            if e.errno != errno.EADDRINUSE or is_alive(path):
                self.sock.close()
                raise
            os.unlink(path)
            self.sock.bind(path)
        os.chmod(path, mode)
        if gid != -1:
            os.chown(path, -1, gid)
        self.sock.listen(15)
        self.sock.setblocking(False)
        loop.add_reader(self.sock, self._on_accept)

    def _on_accept(self, now: float) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.sessions[conn.fileno()] = conn
        try:
            conn.sendall(mgmt.BANNER.encode())
            conn.sendall(mgmt.PROMPT.encode())
        except OSError:
            self._end(conn)
            return
        self.loop.add_reader(conn, lambda now, c=conn: self._on_readable(c))

    def _on_readable(self, conn: socket.socket) -> None:
        try:
            raw = conn.recv(mgmt.LINE_MAX)
        except OSError:
            raw = b""
        if not raw:
            self._end(conn)
            return
        res = _run(self.ctx, raw)
        try:
            if res is None:
                conn.sendall(mgmt.PROMPT.encode())
            elif res.action in (LOGOUT, SHUTDOWN):
                conn.sendall(mgmt.END_OF_SESSION.encode())
                self._end(conn)
                if res.action == SHUTDOWN:
                    self.ctx.shutdown("Shutdown from mgmt command")
            else:
                conn.sendall(mgmt.response(res.lines, res.rc).encode())
                conn.sendall(mgmt.PROMPT.encode())
        except OSError:
            self._end(conn)

    def _end(self, conn: socket.socket) -> None:
        self.sessions.pop(conn.fileno(), None)
        self.loop.forget(conn)
        conn.close()

    def close(self) -> None:
        for conn in list(self.sessions.values()):
            self._end(conn)
        self.loop.forget(self.sock)
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except OSError:
            return
        view = view[n:]
