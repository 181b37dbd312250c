"""One event loop for every file descriptor and timer of a process.

A thin layer over :mod:`selectors` (epoll on Linux).  Callbacks receive
``now``, the monotonic time read once per loop turn, so the sans-IO
engine below never reads a clock.  Signals wake the loop through
``signal.set_wakeup_fd`` and run their handlers in the loop, between
callbacks, never in the middle of one.
"""

from __future__ import annotations

import heapq
import itertools
import os
import select
import selectors
import signal
import socket
import time
from collections.abc import Callable

Callback = Callable[[float], None]
READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
_MASKS = (READ, WRITE)
MAX_EVENTS = 256                         # fds reported ready per loop turn, at most


class Loop:
    def __init__(self):
        self._sel = selectors.DefaultSelector()
        self._timers: list = []
        self._seq = itertools.count()
        self._running = False
        self._signal_handlers: dict[int, Callable[[int], None]] = {}
        self._wake_r = self._wake_w = None
        self.clock = time.monotonic
        # poll_override(timeout, maxevents): a stand-in for epoll.poll on
        # this loop's epoll descriptor (the switch's flow cache, which
        # forwards some input itself and returns the rest)
        self.poll_override = None

    # -- file descriptors ------------------------------------------------
    # key.data is a two-item list [reader, writer]; either may be None.
    def add_reader(self, fd, callback: Callback) -> None:
        self._set(fd, 0, callback)

    def remove_reader(self, fd) -> None:
        self._set(fd, 0, None)

    def add_writer(self, fd, callback: Callback) -> None:
        self._set(fd, 1, callback)

    def remove_writer(self, fd) -> None:
        self._set(fd, 1, None)

    def forget(self, fd) -> None:
        """Stop watching ``fd`` entirely (call before closing it).

        Its callbacks are cleared too, so an event for it already taken
        from the selector in this loop turn is skipped.
        """
        if not self._watched(fd):
            return
        try:
            key = self._sel.unregister(fd)
        except (KeyError, ValueError):
            return
        key.data[0] = key.data[1] = None

    def _watched(self, fd) -> bool:
        """Is ``fd`` registered?  Cheap: the selector's own lookup of an
        unknown object formats an error message with its repr, which for
        a socket costs system calls (one join paid it three times)."""
        fds = getattr(self._sel, "_fd_to_key", None)
        try:
            n = fd if isinstance(fd, int) else fd.fileno()
        except (AttributeError, ValueError, OSError):
            return True                  # let the selector decide
        return fds is None or n < 0 or n in fds

    def _set(self, fd, slot: int, callback) -> None:
        if not self._watched(fd):
            if callback is None:
                return
            data = [None, None]
            data[slot] = callback
            self._sel.register(fd, _MASKS[slot], data)
            return
        try:
            key = self._sel.get_key(fd)
        except (KeyError, ValueError):
            if callback is None:
                return
            data = [None, None]
            data[slot] = callback
            self._sel.register(fd, _MASKS[slot], data)
            return
        data = key.data
        data[slot] = callback
        mask = (data[0] is not None and selectors.EVENT_READ) | (
            data[1] is not None and selectors.EVENT_WRITE)
        if mask:
            self._sel.modify(fd, mask, data)
        else:
            self.forget(fd)

    # -- timers ------------------------------------------------------------
    def call_later(self, delay: float, callback: Callback) -> list:
        """Run ``callback(now)`` once after ``delay`` seconds; returns a handle."""
        entry = [self.clock() + delay, next(self._seq), callback]
        heapq.heappush(self._timers, entry)
        return entry

    def call_every(self, interval: float, callback: Callback) -> list:
        """Run ``callback(now)`` every ``interval`` seconds until cancelled."""
        handle: list = []

        def tick(now: float) -> None:
            callback(now)
            if handle:
                handle[0] = self.call_later(interval, tick)

        handle.append(self.call_later(interval, tick))
        return handle

    @staticmethod
    def cancel(handle: list) -> None:
        if handle and isinstance(handle[0], list):   # a call_every handle
            Loop.cancel(handle.pop())
        elif handle:
            handle[2] = None

    # -- signals -----------------------------------------------------------
    def add_signal_handler(self, signum: int, handler: Callable[[int], None]) -> None:
        """Run ``handler(signum)`` from the loop when ``signum`` arrives."""
        if self._wake_r is None:
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
            self.add_reader(self._wake_r, self._on_wakeup)
        self._signal_handlers[signum] = handler
        signal.signal(signum, lambda *_: None)

    def _on_wakeup(self, now: float) -> None:
        try:
            data = self._wake_r.recv(256)
        except BlockingIOError:
            return
        for signum in data:
            handler = self._signal_handlers.get(signum)
            if handler is not None:
                handler(signum)

    # -- running -----------------------------------------------------------
    def stop(self) -> None:
        self._running = False

    def run(self) -> None:
        """Serve callbacks until :meth:`stop`."""
        self._running = True
        poll = self._poller()
        timers = self._timers
        clock = self.clock
        while self._running:
            timeout = None
            if timers:
                timeout = timers[0][0] - clock()
                if timeout < 0.0:        # (not max(): a call less per turn)
                    timeout = 0.0
            events = poll(timeout)
            now = clock()
            for data, mask in events:
                # data is re-read per event: a reader may forget another fd
                if mask & READ and data[0] is not None:
                    data[0](now)
                if mask & WRITE and data[1] is not None:
                    data[1](now)
            while timers and timers[0][0] <= now:
                _when, _seq, cb = heapq.heappop(timers)
                if cb is not None:
                    cb(now)

    def epoll_fd(self) -> int | None:
        """The epoll descriptor the loop waits on, or None (not epoll)."""
        epoll = getattr(self._sel, "_selector", None)
        if isinstance(self._sel, getattr(selectors, "EpollSelector", ())) and \
                isinstance(epoll, getattr(select, "epoll", ())):
            return epoll.fileno()
        return None

    def _poller(self):
        """``poll(timeout)`` -> ``[(key.data, mask), ...]`` of the ready fds.

        With epoll, the selector's wrapper is skipped: its Python-level
        bookkeeping costs about as much per loop turn as the frame a lone
        packet's turn forwards.  The key is looked up right after the
        poll, as the selector does, and the masks come out the same:
        an error or hang-up counts as readable and writable.
        """
        sel = self._sel
        epoll = getattr(sel, "_selector", None)
        fd_to_key = getattr(sel, "_fd_to_key", None)
        if not (isinstance(sel, getattr(selectors, "EpollSelector", ())) and
                isinstance(epoll, getattr(select, "epoll", ())) and isinstance(fd_to_key, dict)):
            select_ = sel.select

            def generic(timeout):
                return [(key.data, mask) for key, mask in select_(timeout)]
            return generic
        epoll_poll, get = self.poll_override or epoll.poll, fd_to_key.get
        not_in, not_out = ~select.EPOLLIN, ~select.EPOLLOUT

        def poll(timeout):
            try:
                # at most MAX_EVENTS per turn: epoll.poll allocates room for
                # as many as asked on every call (a big switch has thousands
                # of fds); the rest stay ready for the next turn
                ready = epoll_poll(-1 if timeout is None else timeout,
                                   min(len(fd_to_key), MAX_EVENTS) or 1)
            except InterruptedError:
                return ()
            out = []
            for fd, ev in ready:
                key = get(fd)
                if key is not None:
                    out.append((key.data, ((ev & not_out and READ) | (ev & not_in and WRITE))
                                & key.events))
            return out
        return poll

    def close(self) -> None:
        if self._wake_r is not None:
            signal.set_wakeup_fd(-1)
            self._wake_r.close()
            self._wake_w.close()
            self._wake_r = self._wake_w = None
        self._sel.close()


def set_nonblocking(fd: int) -> None:
    os.set_blocking(fd, False)
