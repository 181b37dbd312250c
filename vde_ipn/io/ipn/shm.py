"""Shared mappings of files that hold no descriptor.

Python's ``mmap.mmap`` keeps a duplicate of the file's descriptor for as
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
