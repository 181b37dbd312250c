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
