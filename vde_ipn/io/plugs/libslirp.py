"""ctypes declarations for libslirp 4.x (Debian package ``libslirp0``).

Only what :mod:`vde_ipn.io.plugs.slirp` uses: the configuration and callback
structures of ``libslirp.h`` (configuration version 4), ``slirp_new``,
``slirp_input``, the poll pair ``slirp_pollfds_fill``/``slirp_pollfds_poll``,
timers, host and guest forwards, ``slirp_cleanup``.  :func:`load` finds
the library or raises :class:`SlirpMissing`, whose text names the package.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import socket
import struct
from ctypes import (CFUNCTYPE, POINTER, Structure, c_bool, c_char_p, c_int, c_int64,
                    c_size_t, c_ssize_t, c_uint8, c_uint32, c_void_p)

from ..._errors import VdeIpnError

PACKAGE = "libslirp0"
SONAMES = ("libslirp.so.0",)

POLL_IN, POLL_OUT, POLL_PRI, POLL_ERR, POLL_HUP = 1, 2, 4, 8, 16
HOSTFWD_UDP, HOSTFWD_V6ONLY = 1, 2
TIMER_RA = 0
CONFIG_VERSION = 4          # has disable_dhcp, timer_new_opaque
NO_TIMEOUT = 0xFFFFFFFF


class SlirpMissing(VdeIpnError, OSError):
    """libslirp cannot be loaded."""


class InAddr(Structure):
    _fields_ = [("s_addr", c_uint32)]      # network byte order in memory

    @classmethod
    def of(cls, text: str) -> "InAddr":
        return cls(struct.unpack("=I", socket.inet_pton(socket.AF_INET, text))[0])


class In6Addr(Structure):
    _fields_ = [("words", c_uint32 * 4)]

    @classmethod
    def of(cls, text: str) -> "In6Addr":
        return cls((c_uint32 * 4)(*struct.unpack("=4I", socket.inet_pton(socket.AF_INET6,
                                                                         text))))


def sockaddr_in6(addr: str, port: int) -> bytes:
    """A ``struct sockaddr_in6`` (family, port, flow info, address, scope)."""
    return (struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", port, 0)
            + socket.inet_pton(socket.AF_INET6, addr) + struct.pack("=I", 0))


class SlirpConfig(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("restricted", c_int),
        ("in_enabled", c_bool),
        ("vnetwork", InAddr),
        ("vnetmask", InAddr),
        ("vhost", InAddr),
        ("in6_enabled", c_bool),
        ("vprefix_addr6", In6Addr),
        ("vprefix_len", c_uint8),
        ("vhost6", In6Addr),
        ("vhostname", c_char_p),
        ("tftp_server_name", c_char_p),
        ("tftp_path", c_char_p),
        ("bootfile", c_char_p),
        ("vdhcp_start", InAddr),
        ("vnameserver", InAddr),
        ("vnameserver6", In6Addr),
        ("vdnssearch", POINTER(c_char_p)),
        ("vdomainname", c_char_p),
        ("if_mtu", c_size_t),
        ("if_mru", c_size_t),
        ("disable_host_loopback", c_bool),
        ("enable_emu", c_bool),
        ("outbound_addr", c_void_p),
        ("outbound_addr6", c_void_p),
        ("disable_dns", c_bool),
        ("disable_dhcp", c_bool),
    ]


WriteCb = CFUNCTYPE(c_ssize_t, c_void_p, c_size_t, c_void_p)
GuestErrorCb = CFUNCTYPE(None, c_char_p, c_void_p)
ClockCb = CFUNCTYPE(c_int64, c_void_p)
TimerNewCb = CFUNCTYPE(c_void_p, c_void_p, c_void_p, c_void_p)
TimerFreeCb = CFUNCTYPE(None, c_void_p, c_void_p)
TimerModCb = CFUNCTYPE(None, c_void_p, c_int64, c_void_p)
FdCb = CFUNCTYPE(None, c_int, c_void_p)
NotifyCb = CFUNCTYPE(None, c_void_p)
InitDoneCb = CFUNCTYPE(None, c_void_p, c_void_p)
TimerNewOpaqueCb = CFUNCTYPE(c_void_p, c_int, c_void_p, c_void_p)
AddPollCb = CFUNCTYPE(c_int, c_int, c_int, c_void_p)
GetReventsCb = CFUNCTYPE(c_int, c_int, c_void_p)


class SlirpCb(Structure):
    _fields_ = [
        ("send_packet", WriteCb),
        ("guest_error", GuestErrorCb),
        ("clock_get_ns", ClockCb),
        ("timer_new", TimerNewCb),
        ("timer_free", TimerFreeCb),
        ("timer_mod", TimerModCb),
        ("register_poll_fd", FdCb),
        ("unregister_poll_fd", FdCb),
        ("notify", NotifyCb),
        ("init_completed", InitDoneCb),
        ("timer_new_opaque", TimerNewOpaqueCb),
    ]


_lib = None


def load():
    """The library with its prototypes declared (loaded once)."""
    global _lib
    if _lib is not None:
        return _lib
    lib = None
    for name in SONAMES + tuple(filter(None, [ctypes.util.find_library("slirp")])):
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None:
        raise SlirpMissing("%s not found: install the Debian package %s"
                           % (SONAMES[0], PACKAGE))
    proto = {
        "slirp_new": (c_void_p, [POINTER(SlirpConfig), POINTER(SlirpCb), c_void_p]),
        "slirp_cleanup": (None, [c_void_p]),
        "slirp_input": (None, [c_void_p, c_char_p, c_int]),
        "slirp_pollfds_fill": (None, [c_void_p, POINTER(c_uint32), AddPollCb, c_void_p]),
        "slirp_pollfds_poll": (None, [c_void_p, c_int, GetReventsCb, c_void_p]),
        "slirp_handle_timer": (None, [c_void_p, c_int, c_void_p]),
        "slirp_add_hostfwd": (c_int, [c_void_p, c_int, InAddr, c_int, InAddr, c_int]),
        "slirp_remove_hostfwd": (c_int, [c_void_p, c_int, InAddr, c_int]),
        "slirp_add_hostxfwd": (c_int, [c_void_p, c_char_p, c_uint32, c_char_p, c_uint32,
                                       c_int]),
        "slirp_add_exec": (c_int, [c_void_p, c_char_p, POINTER(InAddr), c_int]),
        "slirp_add_unix": (c_int, [c_void_p, c_char_p, POINTER(InAddr), c_int]),
        "slirp_version_string": (c_char_p, []),
    }
    for fname, (res, args) in proto.items():
        fn = getattr(lib, fname)
        fn.restype = res
        fn.argtypes = args
    _lib = lib
    return lib
