"""Shared memory of an IPN network: System V segments, and file mappings.

A network's ``gen`` word and every member's ring and cursor words are
System V segments (below: their size is fixed for life, so no member can
shrink what the others have attached).  The file mappings first in this
module (:func:`map_file`, :func:`map_shared`) are for files that need
them; rings and cursors no longer do.

File mappings.  Python's ``mmap.mmap`` keeps a duplicate of the file's descriptor for as
long as the mapping lives, so a member that maps every other member's
ring and cursors held two descriptors per member.  :func:`map_file` maps
with the C library's ``mmap`` and lets the descriptor go: the mapping is
unmapped when the last view of it is released or dropped.

:func:`map_shared` also shares read-only mappings of one file among the
members living in one process (a kvde_switch holding many ports), so a
process maps each member's files once, not once per member: mappings grow
with the members, not with their square.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import stat
import threading
import weakref

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]
_libc.munmap.restype = ctypes.c_int
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_FAILED = ctypes.c_void_p(-1).value
_types: dict[int, type] = {}


_shared: dict[tuple, weakref.ref] = {}
_shared_lock = threading.Lock()


def _buffer_type(size: int) -> type:
    t = _types.get(size)
    if t is None:
        class Mapped(ctypes.c_ubyte * size):
            """The bytes of one mapping; unmapped when collected."""

            def __del__(self, _munmap=_libc.munmap, _size=size):
                _munmap(ctypes.addressof(self), _size)
        t = _types[size] = Mapped
    return t


def map_file(fd: int, size: int, writable: bool) -> memoryview:
    """A byte view of ``size`` bytes of ``fd`` (MAP_SHARED); ``fd`` may be closed."""
    prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
    addr = _libc.mmap(None, size, prot, mmap.MAP_SHARED, fd, 0)
    if addr is None or addr == _FAILED:
        e = ctypes.get_errno() or errno.ENOMEM
        raise OSError(e, os.strerror(e))
    view = memoryview(_buffer_type(size).from_address(addr)).cast("B")
    return view if writable else view.toreadonly()


def map_shared(fd: int, size: int) -> memoryview:
    """A read-only view of ``fd``, shared with this process's other views of it."""
    st = os.fstat(fd)
    key = (st.st_dev, st.st_ino, size)
    with _shared_lock:
        ref = _shared.get(key)
        buf = ref() if ref is not None else None
        if buf is None:
            view = map_file(fd, size, False)
            buf = view.obj
            _shared[key] = weakref.ref(buf, lambda _r, k=key: _forget(k, _r))
            return view
    return memoryview(buf).cast("B").toreadonly()


def _forget(key, ref) -> None:
    with _shared_lock:
        if _shared.get(key) is ref:
            del _shared[key]


# -- System V segments: shared words nobody can shrink under a mapping ---------
_libc.shmget.restype = ctypes.c_int
_libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
_libc.shmat.restype = ctypes.c_void_p
_libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
_libc.shmdt.restype = ctypes.c_int
_libc.shmdt.argtypes = [ctypes.c_void_p]
_libc.shmctl.restype = ctypes.c_int
_libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
_IPC_CREAT, _IPC_EXCL, _IPC_RMID, _IPC_SET, _IPC_STAT = 0o1000, 0o2000, 0, 1, 2
SEGMENT_BYTES = 4096
# struct shmid_ds on x86-64 Linux: ipc_perm (uid at 4, gid at 8, cuid at 12,
# mode at 20), then shm_segsz at 48; 112 bytes in all
_DS = 112


def _check(ret):
    if ret is None or ret == -1 or ret == _FAILED:
        e = ctypes.get_errno() or errno.EINVAL
        raise OSError(e, os.strerror(e))
    return ret


class _Segment(ctypes.c_ubyte * SEGMENT_BYTES):
    """The bytes of one attached segment; detached when collected."""

    def __del__(self, _shmdt=_libc.shmdt):
        _shmdt(ctypes.addressof(self))


def _stat(segid: int) -> bytearray:
    buf = (ctypes.c_ubyte * _DS)()
    _check(_libc.shmctl(segid, _IPC_STAT, ctypes.addressof(buf)))
    return bytearray(buf)


def new_segment(mode: int, gid: int = -1):
    """A new segment with permissions ``mode`` (and group ``gid``), attached
    and marked for removal: it lives while a process has it attached (Linux
    lets members attach it until then).  Returns its id and our view.

    A segment's size is fixed for its life, so unlike a shared file nobody
    can truncate it under the members' mappings (no SIGBUS)."""
    segid = _check(_libc.shmget(0, SEGMENT_BYTES, _IPC_CREAT | _IPC_EXCL | (mode & 0o777)))
    try:
        addr = _check(_libc.shmat(segid, None, 0))
    finally:
        remove_segment(segid)
    view = memoryview(_Segment.from_address(addr)).cast("B")
    if gid >= 0:
        set_segment_group(segid, gid)
    return segid, view


def set_segment_group(segid: int, gid: int) -> None:
    """Give a segment (ours) to group ``gid``."""
    ds = _stat(segid)
    ds[8:12] = gid.to_bytes(4, "little")
    buf = (ctypes.c_ubyte * _DS).from_buffer(ds)
    _check(_libc.shmctl(segid, _IPC_SET, ctypes.addressof(buf)))


def attach_segment(segid: int, creator: int) -> memoryview:
    """A writable view of segment ``segid``, which user ``creator`` must have made."""
    ds = _stat(segid)
    if int.from_bytes(ds[12:16], "little") != creator or \
            int.from_bytes(ds[48:56], "little") != SEGMENT_BYTES:
        raise OSError(errno.EINVAL, "not the segment of this network")
    addr = _check(_libc.shmat(segid, None, 0))
    return memoryview(_Segment.from_address(addr)).cast("B")


def remove_segment(segid: int) -> None:
    """Mark a segment for removal once the last member detaches."""
    _check(_libc.shmctl(segid, _IPC_RMID, None))


# -- per-member memory: a segment named by a file its member owns ------------
#
# A member's ring (``w/P.I``) and cursor words (``c/P.I``) are System V
# segments too.  The file holds the segment's id (decimal) and belongs to
# the member; the segment's permission bits are derived from the
# network's r/w/x bits exactly as the file's are, and its group is the
# file's (the companion's) group.  Whoever maps one checks first that the
# segment was created by the file's owner and has the size expected, then
# attaches it read-only unless it is its own: no member can shrink
# (SIGBUS), grow or replace what another member has mapped, and marking
# its own segment for removal (IPC_RMID) leaves it to those attached.
_SHM_RDONLY = 0o10000
_memory_types: dict[int, type] = {}
_attached: dict[int, weakref.ref] = {}        # segid -> shared read-only buffer
_attached_lock = threading.Lock()


def _memory_type(size: int) -> type:
    t = _memory_types.get(size)
    if t is None:
        class Attached(ctypes.c_ubyte * size):
            """The bytes of one attached segment; detached when collected."""

            def __del__(self, _shmdt=_libc.shmdt):
                _shmdt(ctypes.addressof(self))
        t = _memory_types[size] = Attached
    return t


def _attach(segid: int, size: int, readonly: bool) -> memoryview:
    addr = _check(_libc.shmat(segid, None, _SHM_RDONLY if readonly else 0))
    view = memoryview(_memory_type(size).from_address(addr)).cast("B")
    return view.toreadonly() if readonly else view


def create_memory(path: str, size: int, mode: int, removed: bool = False) -> memoryview:
    """A new segment of ``size`` bytes named by the new file ``path``.

    ``path`` is created (it must not exist) with ``mode``, in a directory
    whose group it takes; the segment gets the same permission bits and
    group.  With ``removed`` the segment is marked for removal at once
    and lives while someone has it attached (cursor words: their member
    keeps them attached for its whole life).  Returns our writable view.
    """
    segid = _check(_libc.shmget(0, size, _IPC_CREAT | _IPC_EXCL | 0o600))
    try:
        view = _attach(segid, size, False)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, b"%d\n" % segid)
            os.fchmod(fd, mode & 0o777)
            gid = os.fstat(fd).st_gid
        finally:
            os.close(fd)
        _set_perm(segid, mode, gid)
    except BaseException:
        remove_segment(segid)
        raise
    view.obj.segid = segid
    if removed:
        remove_segment(segid)
    return view


def remove_own_memory(view) -> None:
    """Mark the segment of ``view`` (made by :func:`create_memory`) for removal."""
    try:
        remove_segment(view.obj.segid)
    except (OSError, ValueError):
        pass                                    # marked already, gone, or released


def _set_perm(segid: int, mode: int, gid: int) -> None:
    ds = _stat(segid)
    ds[8:12] = gid.to_bytes(4, "little")
    ds[20:22] = (mode & 0o777).to_bytes(2, "little")
    buf = (ctypes.c_ubyte * _DS).from_buffer(ds)
    _check(_libc.shmctl(segid, _IPC_SET, ctypes.addressof(buf)))


def memory_id(path: str) -> tuple[int, int]:
    """(segment id, owner uid) named by the member file ``path``.

    Raises OSError when it is not a regular file holding an id."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not an IPN member file: %s" % path)
        text = os.read(fd, 32)
    finally:
        os.close(fd)
    try:
        return int(text.split(b"\n")[0]), st.st_uid
    except ValueError:
        raise OSError(errno.EINVAL, "no segment named in %s" % path) from None


SNAPSHOT_AT = 64                   # where a member file keeps a copy of its memory


def save_memory(path: str, view) -> None:
    """Copy our segment ``view`` into its member file ``path`` (at
    :data:`SNAPSHOT_AT`), for those who come to read it once it is gone."""
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    try:
        os.pwrite(fd, view, SNAPSHOT_AT)
    finally:
        os.close(fd)


def _saved(path: str, size: int | None, minimum: int) -> memoryview:
    """The copy :func:`save_memory` left in ``path``: read, never mapped
    (``size`` bytes exactly when given, so a huge file costs nothing)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        have = st.st_size - SNAPSHOT_AT
        if not stat.S_ISREG(st.st_mode) or (size is not None and have != size):
            have = 0
        data = os.pread(fd, have, SNAPSHOT_AT) if have > minimum else b""
    finally:
        os.close(fd)
    if len(data) <= minimum:
        raise OSError(errno.ENOENT, "no IPN memory at %s" % path)
    buf = (ctypes.c_ubyte * len(data)).from_buffer_copy(data)
    return memoryview(buf).cast("B").toreadonly()


def open_memory(path: str, size: int | None = None, minimum: int = 0,
                saved: bool = False) -> memoryview:
    """A read-only view of the segment named by ``path``.

    The segment must have been created by the owner of ``path`` and be
    ``size`` bytes (or, without ``size``, more than ``minimum``).  Views
    of one segment are shared within this process (a kvde_switch holding
    many ports attaches each member's memory once).  With ``saved``, a
    segment that is gone is read from the copy its member saved.
    """
    try:
        return _open_memory(path, size, minimum)
    except OSError:
        if not saved:
            raise
        return _saved(path, size, minimum)


def _open_memory(path: str, size: int | None, minimum: int) -> memoryview:
    segid, owner = memory_id(path)
    ds = _stat(segid)
    segsz = int.from_bytes(ds[48:56], "little")
    if int.from_bytes(ds[12:16], "little") != owner or \
            (segsz != size if size is not None else segsz <= minimum):
        raise OSError(errno.EINVAL, "not the IPN memory of %s" % path)
    with _attached_lock:
        ref = _attached.get(segid)
        buf = ref() if ref is not None else None
        if buf is not None and len(buf) == segsz:
            return memoryview(buf).cast("B").toreadonly()
        view = _attach(segid, segsz, True)
        buf = view.obj
        _attached[segid] = weakref.ref(buf, lambda r, k=segid: _forget_attached(k, r))
        return view


def _forget_attached(key, ref) -> None:
    with _attached_lock:
        if _attached.get(key) is ref:
            del _attached[key]


def remove_memory(path: str) -> bool:
    """Mark the segment named by ``path`` for removal, if it is its file
    owner's and we may (its user, or root); those attached keep it."""
    try:
        segid, owner = memory_id(path)
        if int.from_bytes(_stat(segid)[12:16], "little") != owner:
            return False
        remove_segment(segid)
    except OSError:
        return False
    return True


def set_memory_perm(path: str, mode: int, gid: int) -> bool:
    """Give the segment named by ``path`` permission bits ``mode`` and group
    ``gid`` (it must be its file owner's, and ours, or we root).  True if done."""
    try:
        segid, owner = memory_id(path)
        if int.from_bytes(_stat(segid)[12:16], "little") != owner:
            return False
        _set_perm(segid, mode, gid)
    except OSError:
        return False
    return True


def set_segment_perm(segid: int, mode: int, gid: int) -> None:
    """Give segment ``segid`` (ours) permission bits ``mode`` and group ``gid``."""
    _set_perm(segid, mode, gid)
