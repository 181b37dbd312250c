"""IPN socket options (ipn.md section 5), kept apart from the data path.

Level 0 is the generic level; a level equal to the network's protocol
number goes to the policy's own ``setsockopt``/``getsockopt``; any other
level is EPROTONOSUPPORT.  Options with bit 0x80 are pre-bind: they only
shape a network this socket creates, are stored as unsigned short, and
give EISCONN once the socket is bound or connected.
"""

from __future__ import annotations

import errno

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
        if before is not None and sock._flags() != before:
            sock._change_flags()
    else:
        raise _err(errno.EINVAL)


def get_option(sock, level: int, opt: int, buflen: int = 0):
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
