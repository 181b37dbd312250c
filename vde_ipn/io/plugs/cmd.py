"""``cmd://COMMAND``: a cable to a command's stdin and stdout (vdeplug4's cmd).

The command is split into words as a shell would split them (quotes and
backslashes; no variables, globs or redirections) and started directly,
without a shell.  Frames travel as a vdestream: each one preceded by its
length in two bytes, big-endian, the format ``vde_plug`` speaks on its
own stdin/stdout, so ``cmd://"ssh HOST vde_plug /tmp/sw"`` is a cable to
a remote switch.

``recv`` reads one record at a time and never more, so a complete frame
never waits in our buffer while the pipe looks idle.  With an event loop
``send`` never blocks: what the command's stdin has no room for waits
(up to 1 MiB, then frames are dropped and counted in ``dropped``), so a
command that echoes, like ``cat``, cannot deadlock the plug; the C
plugin writes blocking and does.  When the command
closes its stdout (or exits) ``recv`` returns ``b""`` and the plug
counts as hung up.  Closing the plug closes the command's stdin, gives
it two seconds to leave, then ends it with SIGTERM (and SIGKILL).
"""

from __future__ import annotations

import errno
import os
import shlex
import subprocess

from ..._errors import ConnectError
from ...wire.stream import STREAM_MAX
from .endpoints import Plug

EXIT_WAIT = 2.0
PENDING_MAX = 1 << 20                    # stream bytes held for a slow command


class CmdPipe:
    """The data object of a ``cmd://`` plug with no event loop: ``recv``
    never blocks, ``send`` writes each record whole, blocking while the
    command's stdin is full (see :class:`CmdPipeOnLoop` for the other)."""

    module = "cmd"

    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     bufsize=0, close_fds=True)
        self._out = self.proc.stdout.fileno()
        self._in = self.proc.stdin.fileno()
        os.set_blocking(self._out, False)
        self.dropped = 0
        self._head = b""                 # length bytes of the record being read
        self._body = bytearray()
        self._need = 0                   # body bytes still missing
        self._eof = False

    def fileno(self) -> int:
        return self._out

    def recv(self, bufsize: int) -> bytes:
        if self._eof:
            return b""
        while True:
            if self._need == 0:
                data = os.read(self._out, 2 - len(self._head))    # BlockingIOError: none
                if not data:
                    self._eof = True
                    return b""
                self._head += data
                if len(self._head) < 2:
                    continue
                self._need = (self._head[0] << 8) | self._head[1]
                self._head = b""
                if self._need == 0:
                    continue             # an empty record carries nothing
                if self._need > STREAM_MAX:
                    # a desynchronised stream: nothing after this can be trusted
                    self._eof = True
                    return b""
            data = os.read(self._out, self._need)
            if not data:
                self._eof = True
                return b""
            self._body += data
            self._need -= len(data)
            if self._need == 0:
                frame = bytes(self._body[:bufsize])
                self._body.clear()
                return frame

    def send(self, frame) -> int:
        n = len(frame)
        if n > STREAM_MAX:
            return 0
        view = memoryview(bytes((n >> 8, n & 0xFF)) + bytes(frame))
        while view:
            view = view[os.write(self._in, view):]
        return n

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=EXIT_WAIT)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=EXIT_WAIT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class CmdPipeOnLoop(CmdPipe):
    """A ``cmd://`` plug's data object on an event loop: ``send`` never
    blocks; what the command's stdin has no room for is written by the
    loop later (up to ``PENDING_MAX`` bytes, then frames are dropped and
    counted in ``dropped``)."""

    def __init__(self, argv: list[str], loop):
        super().__init__(argv)
        self._loop = loop
        self._pending = bytearray()      # the part of the stream the pipe had no room for
        os.set_blocking(self._in, False)

    def send(self, frame) -> int:
        n = len(frame)
        if n > STREAM_MAX:
            return 0
        record = bytes((n >> 8, n & 0xFF)) + bytes(frame)
        if self._pending:
            if len(self._pending) >= PENDING_MAX:
                self.dropped += 1        # the command does not keep up: lost, as on a wire
                return n
            self._pending += record
            return n
        try:
            done = os.write(self._in, record)
        except BlockingIOError:
            done = 0
        if done < len(record):           # the rest when the pipe has room again
            self._pending = bytearray(record[done:])
            self._loop.add_writer(self._in, self._flush)
        return n

    def _flush(self, now=None) -> None:
        try:
            done = os.write(self._in, self._pending)
        except BlockingIOError:
            return
        except OSError:                  # the command is gone
            done = len(self._pending)
        del self._pending[:done]
        if not self._pending:
            self._loop.remove_writer(self._in)

    def close(self) -> None:
        if self.proc is not None and self._pending:
            self._loop.forget(self._in)
        super().close()


def open_cmd_plug(arg, *, loop=None, **_) -> Plug:
    """``cmd://COMMAND``: see the module docstring."""
    try:
        argv = shlex.split(arg)
    except ValueError as e:
        raise ConnectError(errno.EINVAL, "cmd://%s: %s" % (arg, e)) from None
    if not argv:
        raise ConnectError(errno.EINVAL, "cmd:// needs a command")
    try:
        pipe = CmdPipe(argv) if loop is None else CmdPipeOnLoop(argv, loop)
    except OSError as e:
        raise ConnectError(e.errno or errno.ENOENT, "cannot run %s" % argv[0]) from None
    return Plug(pipe, None, scheme="cmd", hangup_on_empty=True)
