"""``recvmmsg``/``sendmmsg`` through ctypes: many datagrams per system call.

Only the standard library is used, so the drop-ins keep running on any
python3.  :data:`AVAILABLE` is False where ctypes or these libc calls are
missing; callers then keep the plain one-datagram-per-call path.

Buffers, iovecs and message headers are allocated once and reused by
every call.  The length and address fields are read and written through
``memoryview`` casts of the header arrays: ctypes attribute access costs
far more per frame.  Not thread-safe: one vector per thread.
"""

from __future__ import annotations

import errno
import mmap
import os
import sys

try:
    import ctypes                        # not ctypes.util: it drags in subprocess,
except ImportError:                      # tempfile, shutil... (megabytes of RSS)                      # a python3 built without ctypes
    ctypes = None

MSG_DONTWAIT = 0x40                      # Linux
_AGAIN = frozenset((errno.EAGAIN, errno.EWOULDBLOCK))

AVAILABLE = False
_recvmmsg = _sendmmsg = None


def _load() -> None:
    global AVAILABLE, _recvmmsg, _sendmmsg
    if ctypes is None or not sys.platform.startswith("linux"):
        return
    if ctypes.sizeof(ctypes.c_void_p) != ctypes.sizeof(ctypes.c_size_t):
        return                           # the 'N' casts below need both one word
    try:
        # the C library is already in the process: look the calls up there
        libc = ctypes.CDLL(None, use_errno=True)
        recvmmsg, sendmmsg = libc.recvmmsg, libc.sendmmsg
    except (OSError, AttributeError):
        return
    # int recvmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags,
    #              struct timespec *timeout)
    # int sendmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags)
    # No argtypes: converting each argument through them costs about a
    # microsecond per call, as much as the system call.  Without them a
    # Python int goes as a C int (fd, vlen, flags all fit) and the vector
    # address is passed as a c_void_p made once (see _Vector.ptr); the
    # result is a C int, the default restype.
    recvmmsg.restype = sendmmsg.restype = ctypes.c_int
    _recvmmsg, _sendmmsg = recvmmsg, sendmmsg
    AVAILABLE = True


_load()

if AVAILABLE:
    class _Iovec(ctypes.Structure):
        _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]

    class _Msghdr(ctypes.Structure):
        # glibc's layout.  musl declares msg_iovlen and msg_controllen as
        # int plus padding, which is the same on little-endian machines as
        # long as the padding stays zero, and it does: nothing writes it
        _fields_ = [("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32),
                    ("msg_iov", ctypes.c_void_p), ("msg_iovlen", ctypes.c_size_t),
                    ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
                    ("msg_flags", ctypes.c_int)]

    class _Mmsghdr(ctypes.Structure):
        _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


class _Vector:
    """``count`` one-iovec messages over one ``space``-byte buffer.

    ``lens[i]``: msg_len of message i (what the kernel moved);
    ``bases[i]``, ``iov_lens[i]``: where message i's bytes are and how many.
    """

    def __init__(self, count: int, space: int):
        self.count, self.space = count, space
        # anonymous pages: only those frames are written to become resident
        # (a bytearray would be zero-filled: 16 jumbo slots, 148 KB at once)
        self.buf = mmap.mmap(-1, space)
        self.view = memoryview(self.buf)
        self.base = ctypes.addressof((ctypes.c_char * space).from_buffer(self.buf))
        iov_size, mm_size = ctypes.sizeof(_Iovec), ctypes.sizeof(_Mmsghdr)
        # the header arrays live in bytearrays, so that plain memoryview
        # casts reach their fields
        self._iov_buf = bytearray(count * iov_size)
        self._mm_buf = bytearray(count * mm_size)
        iovs = (_Iovec * count).from_buffer(self._iov_buf)
        msgs = (_Mmsghdr * count).from_buffer(self._mm_buf)
        first_iov = ctypes.addressof(iovs)
        for i in range(count):
            msgs[i].msg_hdr.msg_iov = first_iov + i * iov_size
            msgs[i].msg_hdr.msg_iovlen = 1
        self._arrays = (iovs, msgs)      # the ctypes views hold the buffers' exports
        self.addr = ctypes.addressof(msgs)
        self.ptr = ctypes.c_void_p(self.addr)   # what the calls are given
        self.lens = memoryview(self._mm_buf).cast("I")[
            _Mmsghdr.msg_len.offset // 4::mm_size // 4]
        word = ctypes.sizeof(ctypes.c_size_t)
        words = memoryview(self._iov_buf).cast("N")
        self.bases = words[_Iovec.iov_base.offset // word::iov_size // word]
        self.iov_lens = words[_Iovec.iov_len.offset // word::iov_size // word]


def _error() -> OSError:
    e = ctypes.get_errno()
    return OSError(e, os.strerror(e))


class RecvVector(_Vector):
    """Reads up to ``count`` datagrams of at most ``size`` bytes per call."""

    def __init__(self, count: int, size: int):
        super().__init__(count, count * size)
        self.size = size
        for i in range(count):
            self.bases[i] = self.base + i * size
            self.iov_lens[i] = size

    def recv(self, fd: int) -> list:
        """The datagrams waiting on ``fd``, as ``bytes``, in order; ``[]`` if none.

        A datagram longer than ``size`` comes back cut to ``size`` bytes,
        as ``socket.recv(size)`` returns it; a 0-byte datagram is ``b""``.
        Errors other than "would block" raise :class:`OSError`.
        """
        n = _recvmmsg(fd, self.ptr, self.count, MSG_DONTWAIT, None)
        if n <= 0:
            if n < 0 and ctypes.get_errno() not in _AGAIN:
                raise _error()
            return []
        # slicing the mmap makes the bytes in one step (a memoryview slice
        # would be an object more per frame, then tobytes())
        buf, size, lens = self.buf, self.size, self.lens
        if n == 1:
            return [buf[:lens[0]]]
        return [buf[i * size:i * size + lens[i]] for i in range(n)]


class SendVector(_Vector):
    """Sends lists of datagrams, packed back to back into one buffer."""

    def send(self, fd: int, frames: list, start: int) -> int:
        """Send ``frames[start:]``, as many as fit; returns how many went out.

        The frames taken are those that fit in ``count`` messages and
        ``space`` bytes; ``frames[start]`` must fit (the caller sends a
        larger one on its own).  0: the first one would block.  Sending
        stops at the first frame the receiver refuses; any error other
        than "would block" on the first frame raises :class:`OSError`.
        """
        view, bases, iov_lens = self.view, self.bases, self.iov_lens
        base, space = self.base, self.space
        off = k = 0
        limit = min(len(frames) - start, self.count)
        while k < limit:
            frame = frames[start + k]
            end = off + len(frame)
            if end > space:
                break
            view[off:end] = frame
            bases[k] = base + off
            iov_lens[k] = end - off
            off = end
            k += 1
        n = _sendmmsg(fd, self.ptr, k, MSG_DONTWAIT)
        if n < 0:
            if ctypes.get_errno() in _AGAIN:
                return 0
            raise _error()
        return n
