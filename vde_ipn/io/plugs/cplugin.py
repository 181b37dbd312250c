"""Schemes we do not implement, through vdeplug4's own plugins (libvdeplug.so.2).

When a VNL names a scheme none of our modules handles, and the machine
has vdeplug4's plugin for it (``libvdeplug_NAME.so``, looked for where
libvdeplug looks: ``$VDEPLUGIN_PATH``, else the ``vdeplug/`` directory
beside libvdeplug, ``$LD_LIBRARY_PATH``, ``/lib``, ``/usr/lib``), the
whole VNL is handed to the C library's ``vde_open`` with ctypes and the
connection is used through ``vde_recv``/``vde_send``/``vde_datafd``/
``vde_ctlfd``/``vde_close``.  Nested VNLs inside it are then opened by
the C library too.  No plugin: EPROTONOSUPPORT, as libvdeplug answers.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select

from ..._errors import ConnectError
from .endpoints import Plug

LIBRARY = "libvdeplug.so.2"
STD_DIRS = ("/lib", "/usr/lib")
_lib = None


class _OpenArgs(ctypes.Structure):
    _fields_ = [("port", ctypes.c_int), ("group", ctypes.c_char_p),
                ("mode", ctypes.c_uint)]


def library():
    """libvdeplug, loaded once (OSError when the machine has none)."""
    global _lib
    if _lib is None:
        lib = ctypes.CDLL(LIBRARY, use_errno=True)
        lib.vde_open_real.restype = ctypes.c_void_p
        lib.vde_open_real.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int,
                                      ctypes.POINTER(_OpenArgs)]
        for name in ("vde_recv", "vde_send"):
            fn = getattr(lib, name)
            fn.restype = ctypes.c_ssize_t
            fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        for name in ("vde_datafd", "vde_ctlfd", "vde_close"):
            fn = getattr(lib, name)
            fn.restype = ctypes.c_int
            fn.argtypes = [ctypes.c_void_p]
        _lib = lib
    return _lib


def _library_dir() -> str | None:
    """The directory libvdeplug was loaded from (where it looks for plugins)."""
    try:
        library()
    except OSError:
        return None
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split(None, 5)
            if len(parts) == 6 and os.path.basename(parts[5].strip()).startswith(
                    "libvdeplug.so"):
                return os.path.dirname(parts[5].strip())
    return None


def find_plugin(scheme: str) -> str | None:
    """The plugin file libvdeplug would load for ``scheme``, or None."""
    if not scheme or "/" in scheme:
        return None
    name = "libvdeplug_%s.so" % scheme
    env = os.environ.get("VDEPLUGIN_PATH")
    if env is not None:
        candidates = [os.path.join(d, name) for d in env.split(":") if d]
    else:
        candidates = []
        libdir = _library_dir()
        if libdir:
            candidates += [os.path.join(libdir, "vdeplug", name), os.path.join(libdir, name)]
        dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
        candidates += [os.path.join(d, "vdeplug", name) for d in dirs + list(STD_DIRS)]
    for path in candidates:
        if os.path.isfile(path):
            return path
    return None


class _Ctl:
    """The control descriptor a C plugin may have (owned by the plugin)."""

    def __init__(self, fd: int):
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        pass


class CConnection:
    """A VDECONN of libvdeplug with the plug interface (non-blocking recv)."""

    module = "libvdeplug"

    def __init__(self, vnl: str, descr: str, port, group, mode):
        lib = self.lib = library()
        args = _OpenArgs(port or 0, os.fsencode(group) if group else None,
                         0o700 if mode is None else mode)
        self._args = args                # the C side may keep the group pointer
        conn = lib.vde_open_real(os.fsencode(vnl), os.fsencode(descr), 1, ctypes.byref(args))
        if not conn:
            err = ctypes.get_errno() or errno.EPROTONOSUPPORT
            raise ConnectError(err, "vde_open %s: %s" % (vnl, os.strerror(err)))
        self.conn = conn
        self.fd = lib.vde_datafd(conn)
        ctl = lib.vde_ctlfd(conn)
        self.ctl = _Ctl(ctl) if ctl >= 0 else None
        self._buf = ctypes.create_string_buffer(9216 + 14 + 4 + 64)
        self._poll = select.poll()
        self._poll.register(self.fd, select.POLLIN)

    def fileno(self) -> int:
        return self.fd

    def recv(self, bufsize: int) -> bytes:
        if self.conn is None:
            return b""
        if not self._poll.poll(0):
            raise BlockingIOError(errno.EAGAIN, "nothing to receive")
        n = self.lib.vde_recv(self.conn, self._buf, min(bufsize, len(self._buf)), 0)
        if n < 0:
            err = ctypes.get_errno()
            if err in (errno.EAGAIN, errno.EINTR):
                raise BlockingIOError(err, os.strerror(err))
            raise OSError(err, os.strerror(err))
        if n == 1:                       # the plugins' way of saying "nothing for you"
            raise BlockingIOError(errno.EAGAIN, "nothing to receive")
        return self._buf.raw[:n]

    def send(self, frame) -> int:
        if self.conn is None:
            raise OSError(errno.EBADF, "closed")
        data = bytes(frame)
        n = self.lib.vde_send(self.conn, data, len(data), 0)
        if n < 0:
            err = ctypes.get_errno()
            if err == errno.EAGAIN:
                raise BlockingIOError(err, os.strerror(err))
            raise OSError(err, os.strerror(err))
        return n

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            self.lib.vde_close(conn)


def open_c_plugin(scheme: str, vnl: str, *, descr, port=None, group=None, mode=None,
                  **_) -> Plug:
    """Open ``vnl`` with vdeplug4's plugin for ``scheme``; EPROTONOSUPPORT
    (naming the scheme) when the machine has none."""
    if find_plugin(scheme) is None:
        raise ConnectError(errno.EPROTONOSUPPORT,
                           "no scheme %s:// here: neither vde-ipn nor an installed "
                           "vdeplug4 plugin (libvdeplug_%s.so) provides it" % (scheme, scheme))
    try:
        library()
    except OSError:
        raise ConnectError(errno.EPROTONOSUPPORT, "scheme %s:// needs libvdeplug.so.2 "
                           "(Debian package libvdeplug2)" % scheme) from None
    c = CConnection(vnl, descr, port, group, mode)
    return Plug(c, c.ctl, scheme=scheme)
