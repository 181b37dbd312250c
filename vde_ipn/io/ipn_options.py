"""IPN socket options (ipn.md section 5), kept apart from the data path.

``SOL_SOCKET`` comes first, as in the kernel (whose ``sys_setsockopt``
hands that level to the generic socket code before any family sees it):
``SO_RCVTIMEO``/``SO_SNDTIMEO`` (a ``struct timeval``), ``SO_TYPE``,
``SO_DOMAIN``, ``SO_PROTOCOL``, ``SO_ERROR``, ``SO_ACCEPTCONN``; other
SOL_SOCKET options give ENOPROTOOPT.  So a policy registered as protocol 1
(IPN_BROADCAST, equal to SOL_SOCKET) has no reachable options, as in
AF_IPN.  Level 0 is the IPN generic level; a level equal to the network's
protocol number goes to the policy's own ``setsockopt``/``getsockopt``;
any other level is EPROTONOSUPPORT.  Options with bit 0x80 are pre-bind: they only
shape a network this socket creates, are stored as unsigned short, and
give EISCONN once the socket is bound or connected.
"""

from __future__ import annotations

import errno
import socket
import struct

from .ipn_socket import (IPN_DESCRLEN, IPN_SO_CHANGE_NUMNODES, IPN_SO_DESCR, IPN_SO_FLAGS,
                         IPN_SO_HANDLE_OOB, IPN_SO_MODE, IPN_SO_MSGPOOLSIZE, IPN_SO_MTU,
                         IPN_SO_NUMNODES, IPN_SO_PORT, IPN_SO_WANT_OOB_NUMNODES, _err)

_PREBIND_FIELD = {IPN_SO_MTU: "mtu", IPN_SO_NUMNODES: "maxports",
                  IPN_SO_MSGPOOLSIZE: "msgpool", IPN_SO_FLAGS: "flags"}


def _int(value) -> int:
    if isinstance(value, (bytes, bytearray, memoryview)):
        if len(value) < 4:
            raise _err(errno.EINVAL, "integer options need 4 bytes")
        return int.from_bytes(bytes(value[:4]), "little", signed=True)
    return int(value)


_TIMEVAL = struct.Struct("@ll")
AF_IPN = 13
SOCK_RAW = socket.SOCK_RAW            # AF_IPN sockets were SOCK_RAW


def _timeval(value) -> float | None:
    if isinstance(value, (bytes, bytearray, memoryview)):
        if len(value) < _TIMEVAL.size:
            raise _err(errno.EINVAL, "a struct timeval is %d bytes" % _TIMEVAL.size)
        sec, usec = _TIMEVAL.unpack_from(bytes(value))
    else:
        sec, usec = int(value), 0
    if sec < 0 or not 0 <= usec < 1000000:
        raise _err(errno.EDOM, "timeout out of range")
    t = sec + usec / 1e6
    return None if t == 0 else t             # 0 means "no timeout", as in the kernel


def _to_timeval(t) -> bytes:
    if t is None:
        return _TIMEVAL.pack(0, 0)
    if t == 0:
        return _TIMEVAL.pack(0, 1)            # non-blocking: the smallest timeout
    return _TIMEVAL.pack(int(t), int(round((t - int(t)) * 1e6)))


def _set_sol_socket(sock, opt: int, value) -> None:
    if opt == socket.SO_RCVTIMEO:
        sock._rcv_timeout = _timeval(value)
    elif opt == socket.SO_SNDTIMEO:
        sock._snd_timeout = _timeval(value)
    else:
        raise _err(errno.ENOPROTOOPT, "SOL_SOCKET option %d" % opt)


def _get_sol_socket(sock, opt: int, buflen: int):
    if opt == socket.SO_RCVTIMEO:
        return _to_timeval(sock._rcv_timeout)
    if opt == socket.SO_SNDTIMEO:
        return _to_timeval(sock._snd_timeout)
    values = {socket.SO_TYPE: SOCK_RAW, socket.SO_DOMAIN: AF_IPN,
              socket.SO_PROTOCOL: sock.protocol, socket.SO_ERROR: 0, socket.SO_ACCEPTCONN: 0}
    if opt not in values:
        raise _err(errno.ENOPROTOOPT, "SOL_SOCKET option %d" % opt)
    v = values[opt]
    return v.to_bytes(4, "little", signed=True).ljust(buflen, b"\0") if buflen else v


def _common(sock, level: int) -> bool:
    """True for the generic level; raises for levels nobody handles."""
    sock._check_open()
    if sock._shut_rd and sock._shut_wr and sock._connected:
        raise _err(errno.ECONNRESET)
    if level == 0:
        return True
    if level == sock.protocol and sock._policy is not None:
        return False
    if level == sock.protocol:
        raise _err(errno.ENOTCONN)
    raise _err(errno.EPROTONOSUPPORT)


def set_option(sock, level: int, opt: int, value) -> None:
    if level == socket.SOL_SOCKET:
        sock._check_open()
        _set_sol_socket(sock, opt, value)
        return
    if not _common(sock, level):
        sock._policy.setsockopt(opt, value)
        return
    if opt & 0x80:
        if opt not in sock._pre:
            raise _err(errno.EINVAL)
        if sock._reg is not None:
            raise _err(errno.EISCONN)
        v = _int(value)
        if opt == IPN_SO_MTU and v <= 0:
            raise _err(errno.EINVAL, "mtu must be positive")
        sock._pre[opt] = v & 0xFFFF
    elif opt == IPN_SO_PORT:
        if sock._connected:
            raise _err(errno.EISCONN)
        sock._want_port = _int(value)
    elif opt == IPN_SO_DESCR:
        raw = value.encode() if isinstance(value, str) else bytes(value)
        if len(raw) > IPN_DESCRLEN:
            raise _err(errno.EINVAL, "description longer than %d" % IPN_DESCRLEN)
        sock._descr = raw[:-1].split(b"\0", 1)[0] if raw else b""   # last byte becomes NUL
    elif opt == IPN_SO_CHANGE_NUMNODES:
        v = _int(value)
        if sock._reg is None:
            return                                  # silently ignored when unbound
        if v <= 0:
            raise _err(errno.EINVAL)
        sock._resize(v)
    elif opt in (IPN_SO_HANDLE_OOB, IPN_SO_WANT_OOB_NUMNODES):
        before = sock._flags() if sock._connected else None
        if opt == IPN_SO_HANDLE_OOB:
            sock._handle_oob = bool(_int(value))
        else:
            sock._want_numnodes = bool(_int(value))
        with sock._lock:
            sock._set_filter()
            if before is not None and sock._flags() != before:
                sock._change_flags()
                sock._settle()
            sock._update_watch()
    else:
        raise _err(errno.EINVAL)


def get_option(sock, level: int, opt: int, buflen: int = 0):
    if level == socket.SOL_SOCKET:
        sock._check_open()
        return _get_sol_socket(sock, opt, buflen)
    if not _common(sock, level):
        return sock._policy.getsockopt(opt)
    if opt & 0x80 and opt in sock._pre:
        if sock._reg is None:
            return sock._pre[opt]
        if opt == IPN_SO_MODE:
            return -1
        return getattr(sock._reg.read_params(), _PREBIND_FIELD[opt])
    if opt == IPN_SO_PORT:
        return sock._port if sock._connected else -1
    if opt == IPN_SO_DESCR:
        if buflen < IPN_DESCRLEN:
            raise _err(errno.EINVAL, "IPN_SO_DESCR needs a %d-byte buffer" % IPN_DESCRLEN)
        return sock._descr.ljust(buflen, b"\0")
    if opt == IPN_SO_HANDLE_OOB:
        return int(sock._handle_oob)
    if opt == IPN_SO_WANT_OOB_NUMNODES:
        return int(sock._want_numnodes)
    raise _err(errno.EINVAL)
