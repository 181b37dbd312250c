"""wirefilter's console sessions (the io side of
:mod:`vde_ipn.engine.wirefilter.commands`): banner, prompt, one command per
line, and the session's ``markov-debug`` level."""

from __future__ import annotations

import os

from ..engine.wirefilter.commands import BANNER, PROMPT


class Session:
    """One console on ``rfd``/``wfd`` (``sock`` for a mgmt connection)."""

    def __init__(self, wf, rfd: int, wfd: int, sock=None):
        self.wf, self.rfd, self.wfd, self.sock = wf, rfd, wfd, sock
        self.buf = b""
        self.debug = 0
        wf.sessions.append(self)
        self.write(BANNER + PROMPT)
        wf.loop.add_reader(rfd, self.readable)

    def write(self, text: str) -> None:
        try:
            write_all(self.wfd, text.encode())
        except OSError:
            pass

    def readable(self, now: float) -> None:
        try:
            data = os.read(self.rfd, 4096)
        except OSError:
            data = b""
        if not data:
            self.end(stdin=True)
            return
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            reply = self.wf.command(line.decode("utf-8", "replace"), session=self)
            if reply.shutdown:
                self.wf.loop.stop()
                return
            if reply.logout:
                self.end()
                return
            self.write(reply.text + PROMPT)

    def end(self, stdin: bool = False) -> None:
        if self in self.wf.sessions:
            self.wf.sessions.remove(self)
        self.wf.loop.remove_reader(self.rfd)
        if self.sock is not None:
            self.sock.close()
        elif stdin:
            self.wf.loop.stop()


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
