"""User, network, UTS and mount namespaces for an unprivileged user (vdens).

:func:`enter` moves the calling process (it must have no threads) into a
new user namespace and a new network and UTS namespace (and, if asked, a
mount namespace), mapping the caller's uid and gid to themselves, as
vdeplug4's vdens does.  The process then holds every capability over
those namespaces; :func:`raise_ambient` keeps the network ones across
``execve`` for a command that is not root.  All through the C library
(ctypes), no privilege needed beyond what the kernel grants any user
(``user.max_user_namespaces`` above 0).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_BIND = 4096

CAP_NET_BIND_SERVICE, CAP_NET_BROADCAST, CAP_NET_ADMIN, CAP_NET_RAW = 10, 11, 12, 13
CAP_SYS_ADMIN = 21
NET_CAPS = (CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE, CAP_NET_BROADCAST)

_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_RAISE = 47, 2
_CAP_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def enter(mount_ns: bool = False) -> None:
    """unshare(2) user+net+uts (+mount) and map our uid/gid onto themselves.

    Raises:
        OSError: the kernel refused (user namespaces disabled or limited,
        or the process has threads).
    """
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWUTS | (CLONE_NEWNS if mount_ns else 0)
    _check(_libc.unshare(flags), "unshare")
    try:
        _write("/proc/self/setgroups", "deny\n")
    except FileNotFoundError:
        pass                                      # kernels before 3.19
    _write("/proc/self/uid_map", "%d %d 1\n" % (uid, uid))
    _write("/proc/self/gid_map", "%d %d 1\n" % (gid, gid))


def raise_ambient(caps) -> None:
    """Make ``caps`` inheritable and ambient, so a non-root command keeps them."""
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(header), data), "capget")
    for cap in caps:
        data[cap // 32].inheritable |= 1 << (cap % 32)
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    for cap in caps:
        _check(_libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_RAISE, cap, 0, 0), "prctl ambient")


def bind_mount(source: str, target: str) -> None:
    _check(_libc.mount(source.encode(), target.encode(), b"", MS_BIND, None),
           "mount %s on %s" % (source, target))
