"""Console sessions: the switch's stdin, its management socket, rc files.

Each read (at most 128 bytes) is one command, as vde_switch reads it;
the answer is computed by the sans-IO command table and written here.
"""

from __future__ import annotations

import errno
import os
import socket
import stat

from ...engine.switch import commands  # noqa: F401  (fills the command table)
from ...engine.switch.commands.general import TAGS as DEBUG_TAGS
from ...engine.switch.console import LOGOUT, SHUTDOWN, Result, execute
from ...wire import mgmt
from ..accept_gate import OUT_OF_FDS, AcceptGate
from .ctldir import is_alive

SHUTDOWN_MESSAGE = "Shutdown from mgmt command"
RC_LINE_MAX = 128                        # fgets() buffer of the rc file reader
SCRIPT_MAX = 8 << 20                     # largest script ``load`` or ``-f`` reads
PENDING_MAX = 1 << 20                    # unread answers kept per mgmt session


def read_script(path: str) -> bytes:
    """The contents of a script file for ``load`` or ``-f``.

    Only a regular file of at most :data:`SCRIPT_MAX` bytes is read: a
    device or FIFO (``/dev/zero``, ``/dev/stdin``) would never end and
    would hold the switch (2.3.2 loops on it forever).

    Raises:
        OSError: cannot be opened (its errno), is not a regular file
            (``EINVAL``) or is too large (``EFBIG``).
    """
    if "\0" in path:                     # no such name can exist
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(SCRIPT_MAX + 1)
    finally:
        os.close(fd)
    if len(data) > SCRIPT_MAX:
        raise OSError(errno.EFBIG, "script larger than %d bytes" % SCRIPT_MAX, path)
    return data


def _run(ctx, raw: bytes):
    return _execute(ctx, mgmt.split_command(raw.decode("utf-8", "replace")))


def _execute(ctx, line: str):
    """Run one console line; a command that fails unexpectedly is reported
    in the switch's log and answered with an error status (``EIO``), and
    the switch goes on serving: no console line may end it but ``shutdown``."""
    try:
        sync = getattr(ctx, "sync_counters", None)
        if sync is not None:             # what the flow cache forwarded, counted
            sync()
        return execute(ctx, line)
    except Exception as e:               # noqa: BLE001 (the switch must survive)
        log = getattr(ctx, "log", None)
        if log is not None:
            log("internal error in console command %r: %s: %s"
                % (line[:64], type(e).__name__, e))
        return Result(None, errno.EIO)


class SessionView:
    """The switch as one console session sees it: the switch's own context
    (see engine/switch/commands/__init__.py) plus this session's debug
    subscriptions and the file access ``load`` needs."""

    def __init__(self, ctx):
        self._ctx = ctx
        self.debug_subscriptions: set[str] = set()
        self.load_depth = 0

    def __getattr__(self, name):
        return getattr(self._ctx, name)

    @staticmethod
    def read_script(path: str) -> bytes:
        return read_script(path)

    def debug_line(self, category: str, message: str) -> bytes | None:
        """The notification for this session, or None if not subscribed."""
        if category not in self.debug_subscriptions:
            return None
        return mgmt.debug_line(DEBUG_TAGS[category], category, message).encode()


class StdinConsole:
    """fd 0 as a console: answers on stdout, prompt on fd 0 (as 2.3.2).

    ``on_eof`` is called once when fd 0 reaches end of file.  A regular
    file or ``/dev/null`` on fd 0 cannot be watched by epoll; it is read
    from a zero-delay timer instead (poll() would report it readable).
    """

    def __init__(self, ctx, loop, on_eof, out=1, prompt_fd=0):
        self.ctx, self.loop, self.on_eof = SessionView(ctx), loop, on_eof
        self.out, self.prompt_fd = out, prompt_fd
        self._polled = False
        ctx.net.listeners.append(self._on_event)
        try:
            loop.add_reader(0, self._on_readable)
        except OSError:
            self._polled = True
            loop.call_later(0, self._on_readable)

    def _on_readable(self, now: float) -> None:
        try:
            raw = os.read(0, mgmt.LINE_MAX)
        except BlockingIOError:
            return
        except OSError:
            raw = b""
        if not raw:
            if not self._polled:
                self.loop.remove_reader(0)
            self.on_eof()
            return
        if self._polled:
            self.loop.call_later(0, self._on_readable)
        res = _run(self.ctx, raw)
        if res is not None:
            if res.action == LOGOUT:
                return                     # a no-op on the stdin console
            if res.action == SHUTDOWN:
                self.ctx.shutdown(SHUTDOWN_MESSAGE)
                return
            _write_all(self.out, mgmt.response(res.lines, res.rc, res.text).encode())
        try:
            os.write(self.prompt_fd, mgmt.PROMPT.encode())
        except OSError:
            pass                           # fd 0 is a pipe: no prompt, as 2.3.2

    def _on_event(self, category: str, message: str) -> None:
        line = self.ctx.debug_line(category, message)
        if line is not None:
            _write_all(self.out, line)


class MgmtServer:
    """The ``-M`` socket: any number of console sessions.

    Sessions never block the switch: answers a client does not read are
    queued up to :data:`PENDING_MAX` bytes per session and the excess is
    dropped, as 2.3.2's non-blocking writes drop it.

    Raises:
        OSError: the socket cannot be bound; ``EADDRINUSE`` means a live
            process already answers on ``path`` (a stale socket is replaced);
            ``EEXIST`` that something other than a socket is there (kept).
    """

    def __init__(self, ctx, loop, path: str, mode: int, gid: int = -1):
        self.ctx, self.loop, self.path = ctx, loop, path
        self.sessions: dict[socket.socket, bytearray] = {}
        self.views: dict[socket.socket, SessionView] = {}
        ctx.net.listeners.append(self._on_event)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._bind(path)
            # vde-2 consmgmt.c setmgmtperm(): failures are ignored
            for change in (lambda: os.chmod(path, mode),
                           lambda: os.chown(path, -1, gid) if gid != -1 else None):
                try:
                    change()
                except OSError:
                    pass
            self.sock.listen(15)
        except BaseException:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self._gate = AcceptGate(loop, self.sock, self._on_accept,
                                getattr(ctx, "log", lambda msg: None), "mgmt sessions")

    def _bind(self, path: str) -> None:
        try:
            self.sock.bind(path)
            return
        except OSError as e:
            if e.errno != errno.EADDRINUSE or is_alive(path):
                raise
        # only a stale socket is replaced: a file or symlink under that name
        # is no socket of a dead switch (2.3.2 deletes whatever is there)
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise OSError(errno.EEXIST, "exists and is not a socket", path)
        os.unlink(path)
        self.sock.bind(path)

    def _on_accept(self, now: float) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError as e:
            if e.errno in OUT_OF_FDS:    # no busy loop: wait for a free descriptor
                self._gate.pause(e)
            return
        conn.setblocking(False)
        self.sessions[conn] = bytearray()
        self.views[conn] = SessionView(self.ctx)
        self.loop.add_reader(conn, lambda now, c=conn: self._on_readable(c))
        self._send(conn, mgmt.BANNER.encode())
        self._send(conn, mgmt.PROMPT.encode())

    def _on_readable(self, conn: socket.socket) -> None:
        try:
            raw = conn.recv(mgmt.LINE_MAX)
        except BlockingIOError:
            return
        except OSError:
            raw = b""
        if not raw:
            self._end(conn)
            return
        res = _run(self.views[conn], raw)
        if res is None:
            self._send(conn, mgmt.PROMPT.encode())
        elif res.action in (LOGOUT, SHUTDOWN):
            if res.action == SHUTDOWN:
                self.ctx.shutdown(SHUTDOWN_MESSAGE)
            self._send(conn, mgmt.END_OF_SESSION.encode())
            self._flush(conn)             # one last try for what is queued
            self._end(conn)
        else:
            self._send(conn, mgmt.response(res.lines, res.rc, res.text).encode())
            self._send(conn, mgmt.PROMPT.encode())

    def _on_event(self, category: str, message: str) -> None:
        for conn, view in list(self.views.items()):
            line = view.debug_line(category, message)
            if line is not None:
                self._send(conn, line)

    def _send(self, conn: socket.socket, data: bytes) -> None:
        pending = self.sessions.get(conn)
        if pending is None:
            return
        if not pending:
            try:
                data = data[conn.send(data):]
            except BlockingIOError:
                pass
            except OSError:
                self._end(conn)
                return
            if not data:
                return
            self.loop.add_writer(conn, lambda now, c=conn: self._flush(c))
        pending += data[:max(0, PENDING_MAX - len(pending))]

    def _flush(self, conn: socket.socket) -> None:
        pending = self.sessions.get(conn)
        if pending is None:
            return
        try:
            del pending[:conn.send(pending)]
        except BlockingIOError:
            return
        except OSError:
            self._end(conn)
            return
        if not pending:
            self.loop.remove_writer(conn)

    def _end(self, conn: socket.socket) -> None:
        self.views.pop(conn, None)
        if self.sessions.pop(conn, None) is None:
            return
        self.loop.forget(conn)
        conn.close()
        self._gate.resume()

    def close(self) -> None:
        if self._on_event in self.ctx.net.listeners:
            self.ctx.net.listeners.remove(self._on_event)
        for conn in list(self.sessions):
            self._end(conn)
        self._gate.close()
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def run_script(ctx, path: str, log) -> None:
    """Run a startup rc file as vde-2's loadrcfile() does.

    Lines are read as ``fgets()`` into a 128-byte buffer would cut them
    (longer lines become several commands), one trailing newline is
    stripped unless the line is only a newline, and commands run with no
    output and their errors ignored.  A missing file is silently skipped;
    one that is not a regular file or is too large is reported and skipped.
    """
    try:
        data = read_script(path)
    except OSError as e:
        if e.errno in (errno.EINVAL, errno.EFBIG):   # ours: never read forever
            log("rc file %s: %s" % (path, e.strerror))
        return                           # unreadable: skipped silently, as 2.3.2
    view = SessionView(ctx)
    for chunk in mgmt.script_lines(data, RC_LINE_MAX):
        res = _execute(view, chunk.decode("utf-8", "replace").lstrip(" \t"))
        if res is not None and res.action == SHUTDOWN:
            log(SHUTDOWN_MESSAGE)           # logged, but a script cannot stop the switch


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except OSError:
            return
        view = view[n:]
