"""The companion directory where the members of an IPN network meet.

See :mod:`vde_ipn.wire.ipn_layout` for what lives there.  Liveness
needs no process: every member (manager or port) holds a shared
``flock`` on ``live``; the kernel drops it when the member exits, even
on SIGKILL.  A network whose ``live`` lock nobody holds is dead, so its
socket file is stale and binds or connects to it get ECONNREFUSED, as
with AF_IPN.  Membership changes take no global lock (a member could hold
it for ever): a node claims its port with an exclusive ``flock`` on the
claim file ``p/PORT`` (see :meth:`Companion.claim`), publishes its parts,
and bumps the ``gen`` word, which senders and receivers check cheaply
(one load from a shared mapping) before each message.  That word
is the first of a System V shared-memory segment, not of a file: a
segment's size cannot change, so no member can truncate it under the
others (SIGBUS), and the file ``gen`` that names it is the creator's,
read-only to everyone else.  The segment is marked for removal at
creation and goes when its last member detaches.

A crashed member's doorbell socket refuses connections; :meth:`purge`
removes such members whenever membership is about to change, and a
member that meets one while sending calls it too.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import shutil
import socket
import stat
import time
from contextlib import contextmanager

from ..._errors import RemoteProtocolError
from .follow import unwatch, watch
from .shm import attach_segment, new_segment, remove_memory, set_memory_perm
from ...wire.ipn_layout import (NODE_READER, NODE_WRITER, Params, decode_node,
                                 decode_member_file, decode_params, derived_modes,
                                 encode_params, member_file)

SHARED_FILES = ("live",)
FOLLOW_WAIT = 3.0                 # s a join waits for the companion to follow a chmod


def companion(path: str) -> str:
    """The companion directory of the network at ``path``."""
    head, tail = os.path.split(os.path.abspath(path))
    return os.path.join(head, ".%s.ipn" % tail)


def _refused(path: str, why: str) -> OSError:
    return OSError(errno.ECONNREFUSED, "%s: %s" % (why, path))


def _discard(comp: str) -> None:
    """Move a dead companion directory aside, then delete what we may."""
    aside = "%s.dead-%s" % (comp, secrets.token_hex(4))
    try:
        os.rename(comp, aside)
    except OSError:
        return
    remove_rings(aside)
    shutil.rmtree(aside, ignore_errors=True)


def remove_rings(comp: str) -> None:
    """Mark for removal the ring segments named in ``comp`` that we may
    (writers that were killed leave theirs behind)."""
    try:
        names = os.listdir(os.path.join(comp, "w"))
    except OSError:
        return
    for name in names:
        remove_memory(os.path.join(comp, "w", name))


def _mknod(path: str, mode: int) -> None:
    os.mknod(path, stat.S_IFSOCK | mode)     # the umask applies, as in af_ipn.c


class Companion:
    """One member's handle on the shared state of a network.

    Use :meth:`create` or :meth:`open`; :meth:`close` when leaving.
    """

    def __init__(self, path: str, comp: str, live_fd: int):
        self.path = path
        self.dir = comp
        self._live = live_fd
        self.params = self.read_params()
        self.dead: set[str] = set()       # dead nodes another user's files keep listed
        try:                                  # the socket file's bits now (chmod)
            self.modes = derived_modes(stat.S_IMODE(os.stat(path).st_mode))
        except OSError:
            self.modes = derived_modes(self.params.mode)
        try:
            with open(os.path.join(comp, "gen"), "rb") as f:
                segid = int(f.read(32))
                creator = os.fstat(f.fileno()).st_uid
            self.gen = attach_segment(segid, creator)[:8].cast("Q")
        except PermissionError:
            raise                             # not followed yet (see open)
        except (OSError, ValueError):
            raise _refused(path, "unusable IPN generation word") from None
        watch(self)                           # follow chgrp/chmod (follow.py)

    def follow(self) -> None:
        """Follow the socket file's group and mode (see :func:`follow`)."""
        mode, _gid = follow(self.path)
        self.modes = derived_modes(mode)

    # -- life ------------------------------------------------------------
    @classmethod
    def create(cls, path: str, params: Params, make_inode=_mknod) -> "Companion":
        """Create the network at ``path`` (absent) with ``params``.

        ``params.mode`` is the requested mode; the socket file's real mode
        (after the umask) is what the companion follows and what is stored.
        Raises FileExistsError when ``path`` exists (the caller joins then).
        """
        make_inode(path, params.mode)
        try:
            st = os.stat(path)
            mode = stat.S_IMODE(st.st_mode)
            modes = derived_modes(mode)
            comp = companion(path)
            tmp = "%s.new-%s" % (comp, secrets.token_hex(4))
            os.mkdir(tmp, 0o700)
            for sub in ("n", "w", "c", "m", "p"):
                os.mkdir(os.path.join(tmp, sub), 0o700)
                os.chmod(os.path.join(tmp, sub), modes[sub])
            with open(os.path.join(tmp, "net"), "wb") as f:
                f.write(encode_params(Params(params.protocol, params.flags, params.maxports,
                                             params.mtu, params.msgpool, mode,
                                             secrets.randbits(63))))
            os.chmod(os.path.join(tmp, "net"), modes["net"])
            for name in SHARED_FILES:
                with open(os.path.join(tmp, name), "wb") as f:
                    f.write(b"\0" * 8)
                os.chmod(os.path.join(tmp, name), modes["shared"])
            segid, seg = new_segment(modes["shared"], st.st_gid)
            with open(os.path.join(tmp, "gen"), "w") as f:
                f.write("%d\n" % segid)
            os.chmod(os.path.join(tmp, "gen"), modes["gen"])
            if st.st_gid != os.stat(tmp).st_gid:
                _chown_tree(tmp, st.st_gid)
            os.chmod(tmp, modes["dir"])
            live = os.open(os.path.join(tmp, "live"), os.O_RDONLY)
            fcntl.flock(live, fcntl.LOCK_SH)
            if os.path.lexists(comp):
                _discard(comp)
            os.rename(tmp, comp)
        except BaseException:
            try:
                os.unlink(path)
            except OSError:
                pass
            raise
        try:
            return cls(path, comp, live)
        finally:
            seg.release()                       # ours now holds it

    @classmethod
    def open(cls, path: str) -> "Companion":
        """Join the live network at ``path``.

        The caller checked that the socket file lets us in; if the
        companion does not (yet), its members have not followed a
        ``chgrp``/``chmod`` of the socket file: wait for them at most
        :data:`FOLLOW_WAIT` seconds (see :mod:`.follow`).

        Raises:
            FileNotFoundError: nothing at ``path``.
            OSError(ECONNREFUSED): not a socket, or no live network there.
            OSError(EACCES): the companion keeps us out.
        """
        deadline = time.monotonic() + FOLLOW_WAIT
        while True:
            try:
                return cls._open(path)
            except PermissionError:
                if time.monotonic() >= deadline:
                    raise OSError(errno.EACCES, "the IPN companion keeps us out "
                                  "(its members have not followed the socket file): %s"
                                  % path) from None
                time.sleep(0.02)

    @classmethod
    def _open(cls, path: str) -> "Companion":
        st = os.stat(path)
        if not stat.S_ISSOCK(st.st_mode):
            raise _refused(path, "not an IPN socket")
        comp = companion(path)
        try:
            live = os.open(os.path.join(comp, "live"), os.O_RDONLY)
        except PermissionError:
            raise
        except OSError:
            raise _refused(path, "no IPN network") from None
        try:
            try:
                fcntl.flock(live, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fcntl.flock(live, fcntl.LOCK_SH)     # someone holds it: alive
            else:
                raise _refused(path, "IPN network is dead (stale socket file)")
            if not os.path.samestat(os.fstat(live), os.stat(os.path.join(comp, "live"))):
                raise _refused(path, "IPN network went away")
            return cls(path, comp, live)
        except (BaseException, RemoteProtocolError):
            os.close(live)
            raise

    def close(self) -> None:
        """Leave: release liveness; the last member removes the companion."""
        unwatch(self)
        self.gen.release()
        live, self._live = self._live, -1
        if live < 0:
            return
        try:
            fcntl.flock(live, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass                                # others remain
        else:
            _discard(self.dir)
        finally:
            os.close(live)

    # -- parameters ------------------------------------------------------
    def read_params(self) -> Params:
        try:
            with open(os.path.join(self.dir, "net"), "rb") as f:
                return decode_params(f.read())
        except PermissionError:
            raise
        except (OSError, RemoteProtocolError):
            raise _refused(self.path, "unreadable IPN network parameters") from None

    def write_params(self, params: Params) -> None:
        tmp = os.path.join(self.dir, "net")
        with open(tmp, "r+b") as f:
            f.write(encode_params(params))
        self.params = params

    # -- membership --------------------------------------------------------
    def bump(self) -> None:
        """Tell every member that membership changed.

        No lock: the word gets a value it did not hold, so a bump can never
        be lost under a concurrent one (each store is a change to whoever
        read the word before it), and readers only ever re-read.
        """
        old = self.gen[0]
        new = secrets.randbits(64)
        self.gen[0] = new if new != old else new ^ 1

    def claim(self, port: int) -> int | None:
        """Take ``port``: an exclusive flock on the claim file ``p/PORT``.

        Returns the descriptor (hold it while a member: the kernel lets go
        when we die), or None when the port is someone else's.  The claim
        file is created by the first claimant and never removed, so taking
        over the port of a dead member is a flock, nothing to unlink; what
        cannot be opened as a regular file (squatted) is taken.  Claim files
        are read-only but to their creator (a flock needs no more).
        """
        path = os.path.join(self.dir, "p", str(port))
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, self.modes["gen"])
        except FileExistsError:
            try:
                fd = os.open(path, flags)
            except OSError:
                return None
        except OSError:
            return None
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
        except OSError:
            pass
        os.close(fd)
        return None

    def claimed(self, port: int) -> bool:
        """Whether someone holds the claim on ``port`` (see :meth:`claim`)."""
        fd = self.claim(port)
        if fd is None:
            return os.path.lexists(os.path.join(self.dir, "p", str(port)))
        os.close(fd)
        return False

    def node_path(self, name: str) -> str:
        return os.path.join(self.dir, "n", name)

    def nodes(self) -> list[tuple[int, str, str]]:
        """(port, flags, name) of every registered node, by port."""
        out = []
        for name in os.listdir(os.path.join(self.dir, "n")):
            try:
                port, flags = decode_node(name)
            except RemoteProtocolError:
                continue
            if name not in self.dead:
                out.append((port, flags, name))
        out.sort()
        return out

    def dead_ports(self) -> set[int]:
        """Ports of dead nodes whose socket we could not remove (not reusable)."""
        return {decode_node(n)[0] for n in self.dead
                if os.path.lexists(self.node_path(n))}

    def sweep(self) -> None:
        """Remove rings of writers that left.

        Receivers that saw them still hold the mapping and drain it; the
        file itself goes, so departed members leave nothing behind.  The
        files are listed before the nodes: a member binds its doorbell
        before it makes its ring, so a ring listed has its node listed
        unless it left.  A port claimed (:meth:`claim`) keeps its files.
        """
        listed = []
        for sub in ("w", "m"):
            try:
                listed.append((sub, os.listdir(os.path.join(self.dir, sub))))
            except OSError:
                pass                            # not ours to see (no r, no w)
        alive = {member_file(n) for _p, _f, n in self.nodes()}
        held: dict[int, bool] = {}
        for sub, names in listed:
            wdir = os.path.join(self.dir, sub)
            for name in names:
                try:
                    port = decode_member_file(name)
                except RemoteProtocolError:
                    continue
                if name not in alive:
                    if port not in held:
                        held[port] = self.claimed(port)
                    if held[port]:
                        continue                # joining now, or its port's new owner
                    if sub == "w":
                        remove_memory(os.path.join(wdir, name))   # a killed writer's
                    try:
                        os.unlink(os.path.join(wdir, name))
                    except OSError:
                        pass                    # another user's (sticky): theirs to go

    def purge(self) -> bool:
        """Remove nodes whose process is gone; True if any was removed."""
        changed = False
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            for port, _flags, name in self.nodes():
                try:
                    probe.connect(self.node_path(name))
                except ConnectionRefusedError:
                    if not self.remove_node(port, name):
                        self.dead.add(name)
                    changed = True
                except OSError:
                    pass                        # EACCES...: cannot tell, keep it
        finally:
            probe.close()
        return changed

    def remove_node(self, port: int, name: str) -> bool:
        """Unlink a node's socket and cursors; False if we may not (not ours)."""
        gone = True
        for p in (self.node_path(name), os.path.join(self.dir, "c", member_file(name))):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
            except OSError:
                gone = False
        return gone

    def counts(self) -> tuple[int, int]:
        """(numreaders, numwriters) of the connected nodes."""
        nodes = self.nodes()
        return (sum(NODE_READER in f for _p, f, _n in nodes),
                sum(NODE_WRITER in f for _p, f, _n in nodes))


def _chown_tree(top: str, gid: int) -> None:
    os.chown(top, -1, gid)
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            os.chown(os.path.join(root, name), -1, gid)


def set_network_group(path: str, gid: int) -> None:
    """Give the network at ``path`` (file and companion) to group ``gid``.

    The same as ``chgrp``: the members follow the socket file (see
    :func:`follow`); this also makes our own parts follow at once.
    """
    os.chown(path, -1, gid)
    follow(path)


def follow(path: str) -> tuple[int, int]:
    """Make the companion follow the socket file's current group and mode.

    Every part we own (or all, as root) gets the group of the socket file
    and the mode :func:`derived_modes` gives for its current bits; member
    memory (segments) likewise.  Parts of other users are theirs to
    follow: each member does this for its own when it sees the change.
    Returns the (mode, gid) followed.
    """
    st = os.stat(path)
    mode, gid = stat.S_IMODE(st.st_mode), st.st_gid
    comp = companion(path)
    modes = derived_modes(mode)
    me = os.geteuid()
    parts = [(os.path.join(comp, "net"), modes["net"], False),
             (os.path.join(comp, "gen"), modes["gen"], False)]
    parts += [(os.path.join(comp, n), modes["shared"], False) for n in SHARED_FILES]
    for sub, key, seg in (("n", "sock", False), ("w", "ring", True), ("c", "cursor", True),
                          ("m", "macs", False), ("p", "gen", False)):
        d = os.path.join(comp, sub)
        try:
            names = os.listdir(d)
        except OSError:
            names = []
        want = modes[key] | (0o600 if key == "sock" else 0)
        parts += [(os.path.join(d, n), want, seg) for n in names]
        parts.append((d, modes[sub], False))
    try:
        closing = stat.S_IMODE(os.stat(comp).st_mode) & ~modes["dir"] & 0o777
    except OSError:
        return mode, gid
    if closing:
        _follow_part(comp, modes["dir"], gid, me)      # keep newcomers out first
    for p, want, seg in parts:
        _follow_part(p, want, gid, me)
        if seg:
            set_memory_perm(p, want, gid)
    set_memory_perm(os.path.join(comp, "gen"), modes["shared"], gid)
    _follow_part(comp, modes["dir"], gid, me)
    return mode, gid


def _follow_part(p: str, want: int, gid: int, me: int) -> None:
    try:
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode) or (me != 0 and st.st_uid != me):
            return
        if st.st_gid != gid:
            os.lchown(p, -1, gid)
        if stat.S_IMODE(os.lstat(p).st_mode) != want:   # chown may clear setgid
            os.chmod(p, want)
    except OSError:
        pass                                    # gone meanwhile, or not ours
