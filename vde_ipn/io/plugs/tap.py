"""Tap interfaces: frames between a VDE network and the kernel's stack.

A tap is opened through ``/dev/net/tun`` with ``IFF_TAP|IFF_NO_PI``, as
vde_switch ``-t``, vde_plug2tap and vdeplug4's ``tap://`` do, so one
``read`` is one Ethernet frame and one ``write`` sends one.  Only the
standard library is needed (``fcntl.ioctl``).  The interface exists
while the descriptor is open, unless it was made persistent
(:func:`set_persistent`, as ``vde_tunctl`` does); its link state and
addresses are left to the user, as the C tools leave them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

CLONE_DEVICE = "/dev/net/tun"
IFNAMSIZ = 16

TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
TUNSETOWNER = 0x400454CC
TUNSETGROUP = 0x400454CE
IFF_TUN = 0x0001
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


class TapError(OSError):
    """A tap could not be opened or changed; the message says what to do."""


def _ifreq(name: str, flags: int) -> bytearray:
    raw = name.encode()
    if len(raw) >= IFNAMSIZ:
        raise TapError(errno.EINVAL, "interface name too long (at most 15 bytes): %s" % name)
    return bytearray(struct.pack("16sH22x", raw, flags))


def _explain(e: OSError, name: str, clone: str) -> TapError:
    if e.errno == errno.ENOENT:
        return TapError(e.errno, "tap needs %s (the tun module): %s" % (clone, e.strerror))
    if e.errno in (errno.EPERM, errno.EACCES):
        return TapError(e.errno, "tap %s needs CAP_NET_ADMIN (run as root, or make it a "
                        "persistent tap owned by this user with vde_tunctl)" % (name or ""))
    if e.errno == errno.EBUSY:
        return TapError(e.errno, "tap %s is already in use" % name)
    return TapError(e.errno, "tap %s: %s" % (name, e.strerror))


def open_tun(name: str, flags: int = IFF_TAP | IFF_NO_PI, clone: str = CLONE_DEVICE,
             nonblocking: bool = True) -> tuple[int, str]:
    """Open (or create) interface ``name``; return (descriptor, real name).

    ``name`` may hold a ``%d`` for the kernel to fill, or be empty.
    Raises :class:`TapError` with a message fit for the user.
    """
    try:
        fd = os.open(clone, os.O_RDWR | os.O_CLOEXEC | (os.O_NONBLOCK if nonblocking else 0))
    except OSError as e:
        raise _explain(e, name, clone) from None
    try:
        req = _ifreq(name, flags)
        fcntl.ioctl(fd, TUNSETIFF, req)
    except TapError:
        os.close(fd)
        raise
    except OSError as e:
        os.close(fd)
        raise _explain(e, name, clone) from None
    return fd, bytes(req[:IFNAMSIZ]).split(b"\0", 1)[0].decode()


def set_persistent(fd: int, on: bool, name: str = "") -> None:
    """Keep the interface after its last descriptor closes (or not)."""
    try:
        fcntl.ioctl(fd, TUNSETPERSIST, 1 if on else 0)
    except OSError as e:
        raise _explain(e, name, CLONE_DEVICE) from None


def set_owner(fd: int, uid: int = -1, gid: int = -1, name: str = "") -> None:
    """Let user ``uid`` and/or group ``gid`` open the interface (-1: leave)."""
    try:
        if uid != -1:
            fcntl.ioctl(fd, TUNSETOWNER, uid)
        if gid != -1:
            fcntl.ioctl(fd, TUNSETGROUP, gid)
    except OSError as e:
        raise _explain(e, name, CLONE_DEVICE) from None


class TapDevice:
    """An open tap: ``send``/``recv``/``fileno``/``close`` as a datagram socket.

    ``recv`` and ``send`` never block (``BlockingIOError`` instead).  A
    frame the kernel cannot take (the interface is down) raises OSError,
    as a datagram socket does.  After the interface is deleted,
    ``recv`` raises OSError (EBADFD).
    """

    module = "tuntap"

    def __init__(self, name: str, clone: str = CLONE_DEVICE):
        self.fd, self.name = open_tun(name, clone=clone)

    def fileno(self) -> int:
        return self.fd

    def recv(self, bufsize: int) -> bytes:
        return os.read(self.fd, bufsize)

    def send(self, frame) -> int:
        return os.write(self.fd, frame)

    def close(self) -> None:
        """Close the descriptor (the interface goes unless persistent)."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def __repr__(self) -> str:
        return "TapDevice(%r)" % self.name


def open_tap_plug(arg, **_):
    """``tap://NAME``: a plug whose frames are a tap's (see :class:`TapDevice`)."""
    from ..._errors import ConnectError
    from .endpoints import Plug
    try:
        return Plug(TapDevice(arg), None, scheme="tap")
    except OSError as e:
        raise ConnectError(e.errno or errno.EINVAL, e.strerror or str(e)) from None
