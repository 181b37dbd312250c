"""Listening sockets at the descriptor limit: pause instead of spinning.

When ``accept()`` fails with EMFILE or ENFILE the waiting connection
stays queued and the listener stays readable, so an event loop that only
logs the error and returns is woken again at once, forever: 100 % CPU
and no one served.  An :class:`AcceptGate` stops watching its listener
instead, says so once, and watches it again as soon as the owner reports
a descriptor freed, or after :data:`RETRY` seconds at the latest (a
descriptor may be freed where the owner does not see it).  Connections
waiting meanwhile stay in the kernel's queue and are served in order.
"""

from __future__ import annotations

import errno

RETRY = 0.5                              # seconds between attempts while paused
LOG_EVERY = 60.0                         # at most one message per this many seconds
OUT_OF_FDS = (errno.EMFILE, errno.ENFILE)


class AcceptGate:
    """Watches ``sock`` for ``on_accept`` on ``loop`` unless paused."""

    def __init__(self, loop, sock, on_accept, log=lambda msg: None, what="clients",
                 on_retry=None):
        self.loop, self.sock, self.on_accept = loop, sock, on_accept
        self.log, self.what = log, what
        self.on_retry = on_retry or self.resume   # called every RETRY s while paused
        self.paused = False
        self._timer = None
        self._logged_at = None
        loop.add_reader(sock, on_accept)

    def pause(self, err: OSError) -> None:
        """Stop watching the listener after ``err`` (EMFILE/ENFILE)."""
        if self.paused or self.sock is None:
            return
        self.paused = True
        self.loop.remove_reader(self.sock)
        now = self.loop.clock()
        if self._logged_at is None or now - self._logged_at >= LOG_EVERY:
            self._logged_at = now
            self.log("accept: %s: no new %s until a descriptor is freed"
                     % (err.strerror or err, self.what))
        self._timer = self.loop.call_later(RETRY, self._retry)

    def _retry(self, now: float) -> None:
        self._timer = None
        self.on_retry()
        if self.paused and self._timer is None:   # on_retry kept it paused
            self._timer = self.loop.call_later(RETRY, self._retry)

    def resume(self) -> None:
        """Watch the listener again (a descriptor was freed, or time passed)."""
        if not self.paused or self.sock is None:
            return
        self.paused = False
        if self._timer is not None:
            self.loop.cancel(self._timer)
            self._timer = None
        self.loop.add_reader(self.sock, self.on_accept)

    def close(self) -> None:
        """Stop for good (the owner closes the listener)."""
        if self._timer is not None:
            self.loop.cancel(self._timer)
            self._timer = None
        if self.sock is not None:
            self.loop.forget(self.sock)
        self.sock = None
