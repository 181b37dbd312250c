"""Following ``chgrp`` and ``chmod`` of a network's socket file.

In the kernel the socket file's bits were checked at each connect, so
``chgrp G PATH; chmod 0660 PATH`` let G in at once.  Here the kernel
checks the companion's files and segments instead, so they must follow
the socket file: every process with a member keeps one inotify watch
(one daemon thread, for all its networks) on the socket files of its
networks, and when one's attributes change it re-derives the modes of
every part of the companion it owns (all of them, as root) with
:func:`vde_ipn.io.ipn.companion.follow`.  Parts of other users are
followed by their own members.  A process that joins right after the
change and finds the companion still closed waits for that a little
(see :meth:`Companion.open`).
"""

from __future__ import annotations

import ctypes
import os
import struct
import threading

_libc = ctypes.CDLL(None, use_errno=True)
_IN_ATTRIB, _IN_CLOEXEC = 0x4, 0o2000000
_EVENT = struct.Struct("iIII")                 # wd, mask, cookie, len


class _Watcher:
    """The process's inotify watch over the socket files of its networks."""

    def __init__(self):
        self.lock = threading.Lock()
        self.fd = -1
        self.comps: dict[int, list] = {}       # wd -> companions of that file
        self.thread = None

    def add(self, comp) -> None:
        with self.lock:
            if self.fd < 0:
                fd = _libc.inotify_init1(_IN_CLOEXEC)
                if fd < 0:
                    return                     # no inotify: no following
                self.fd = fd
                self.thread = threading.Thread(target=self._run, args=(fd,),
                                               name="ipn-follow", daemon=True)
                self.thread.start()
            wd = _libc.inotify_add_watch(self.fd, os.fsencode(comp.path), _IN_ATTRIB)
            if wd < 0:
                return
            comp.follow_wd = wd
            self.comps.setdefault(wd, []).append(comp)

    def remove(self, comp) -> None:
        with self.lock:
            wd = getattr(comp, "follow_wd", -1)
            comps = self.comps.get(wd, [])
            if comp in comps:
                comps.remove(comp)
            if wd >= 0 and not comps:
                self.comps.pop(wd, None)
                _libc.inotify_rm_watch(self.fd, wd)   # the same inode may come back

    def _run(self, fd: int) -> None:
        while True:
            try:
                buf = os.read(fd, 4096)
            except InterruptedError:
                continue
            except OSError:
                return
            seen = set()
            off = 0
            while off + _EVENT.size <= len(buf):
                wd, _mask, _cookie, n = _EVENT.unpack_from(buf, off)
                off += _EVENT.size + n
                seen.add(wd)
            for wd in seen:
                with self.lock:
                    comps = list(self.comps.get(wd, ()))
                if comps:
                    try:
                        comps[0].follow()
                    except OSError:
                        pass                   # the network went away meanwhile
                    for c in comps[1:]:
                        c.modes = comps[0].modes


    def after_fork(self) -> None:
        """In a forked child (a daemon): a watch and thread of its own."""
        comps = [c for cs in self.comps.values() for c in cs]
        old, self.fd = self.fd, -1
        self.lock = threading.Lock()
        self.comps = {}
        if old >= 0:
            os.close(old)
        for comp in comps:
            self.add(comp)


_watcher = _Watcher()
os.register_at_fork(after_in_child=_watcher.after_fork)


def watch(comp) -> None:
    """Follow ``comp``'s socket file while it is open (:meth:`Companion.close`)."""
    _watcher.add(comp)


def unwatch(comp) -> None:
    _watcher.remove(comp)
