"""Codec for the vde_switch control handshake (the ``ctl`` stream socket).

A client sends one request and the switch answers with the 110-byte
``struct sockaddr_un`` of the data socket it made for the client.  All
integers are in host byte order, as the C switch compares the raw word
with ``0xfeedface``.  Layouts (see the wire-protocol reference, section 4):

* v3: ``magic:u32 version:u32 type:i32 sun_family:u16 sun_path:108s``
  (122 bytes) followed by a description that is not NUL-terminated.
  ``type & 0xff`` is the request kind, ``type >> 8`` the requested port.
* v1 (uml_switch era): ``magic:u32 type:u32 mac:6s sockaddr_un:110``
  (124 bytes) and a description.  It cannot carry a port number.

Decoders raise :class:`RemoteProtocolError` and nothing else; encoders
raise :class:`LocalProtocolError`.
"""

from __future__ import annotations

import enum
import struct

from .._errors import LocalProtocolError, RemoteProtocolError
from .values import FrozenValue

MAGIC = 0xFEEDFACE
AF_UNIX = 1
SUN_PATH_LEN = 108
SOCKADDR_LEN = 2 + SUN_PATH_LEN          # 110: what the reply always is
DESCR_MAX = 127                          # clients cap their description here

_V3 = struct.Struct("=IIiH108s")
_V1 = struct.Struct("=II6sH108s")
_SOCKADDR = struct.Struct("=H108s")
V3_SIZE = _V3.size                       # 122
V1_SIZE = _V1.size                       # 124
REQUEST_MAX = 256                        # one read of this size, as the C switch


class RequestKind(enum.IntEnum):
    NEW_CONTROL = 0                      # an ordinary port
    NEW_PORT0 = 1                        # the management port 0


class Request(FrozenValue):
    """A decoded control request.

    ``port`` is None for "any free port", 0 for the management port and
    N for a specific port.  ``sun_path`` keeps the raw 108 bytes, because
    abstract addresses must be connected byte for byte (trailing bytes
    included); ``path`` is the filesystem path or ``None`` when abstract.
    """

    __slots__ = ("version", "kind", "port", "sun_path", "description")

    def __init__(self, version: int, kind: RequestKind, port: int | None, sun_path: bytes,
                 description: str):
        self._init(version, kind, port, sun_path, description)

    @property
    def abstract(self) -> bool:
        return self.sun_path[:1] == b"\0"

    @property
    def path(self) -> str | None:
        if self.abstract:
            return None
        return self.sun_path.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")

    @property
    def sockaddr(self):
        """Address for ``socket.connect``: a str path, or the raw bytes."""
        return self.sun_path if self.abstract else self.path


def need_more(buf: bytes) -> bool:
    """True while ``buf`` is a proper prefix of a request's fixed part.

    Lets the switch wait for a request split across two writes instead
    of mis-parsing it (the C switch parses only its first read).
    """
    if len(buf) < 8:
        return len(buf) < 4 or _magic_ok(buf)
    if not _magic_ok(buf):
        return False
    version = struct.unpack_from("=I", buf, 4)[0]
    fixed = V1_SIZE if version in (0, 1) else V3_SIZE
    return len(buf) < fixed


def _magic_ok(buf: bytes) -> bool:
    return struct.unpack_from("=I", buf, 0)[0] == MAGIC


def decode_request(buf: bytes | memoryview) -> Request:
    """Decode one control request.

    Raises:
        RemoteProtocolError: wrong magic, unsupported version, bad type or
            a request shorter than its fixed part; the message is the one
            vde_switch logs for the same condition.
    """
    buf = bytes(buf)
    if len(buf) < 8:
        raise RemoteProtocolError("short ctl request (%d bytes)" % len(buf))
    magic, version = struct.unpack_from("=II", buf)
    if magic != MAGIC:
        raise RemoteProtocolError("V0 request not supported")
    if version in (0, 1):
        return _decode_v1(buf, version)
    if version != 3:
        raise RemoteProtocolError(
            "Request for a version %d port, which this vde_switch doesn't support" % version)
    if len(buf) < V3_SIZE:
        raise RemoteProtocolError("short ctl request (%d bytes)" % len(buf))
    _magic, _version, kind_port, _family, sun_path = _V3.unpack_from(buf)
    kind_code = kind_port & 0xFF
    if kind_code not in (0, 1):
        raise RemoteProtocolError("Bad request type : %d" % kind_code)
    kind = RequestKind(kind_code)
    if kind is RequestKind.NEW_PORT0:
        port = 0
    else:
        port = (kind_port >> 8) & 0xFFFFFF or None
    return Request(3, kind, port, sun_path, _description(buf[V3_SIZE:]))


def _decode_v1(buf: bytes, kind_code: int) -> Request:
    if len(buf) < V1_SIZE:
        raise RemoteProtocolError("short v1 ctl request (%d bytes)" % len(buf))
    _magic, _type, _mac, _family, sun_path = _V1.unpack_from(buf)
    kind = RequestKind(kind_code)
    port = 0 if kind is RequestKind.NEW_PORT0 else None
    return Request(1, kind, port, sun_path, _description(buf[V1_SIZE:]))


def _description(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def encode_request(sockaddr: str | bytes, *, port: int | None = None,
                   description: str = "") -> bytes:
    """Build a v3 request as vdeplug4 sends it (fixed part + description).

    ``port``: None = any, 0 = management port, N = port N.
    """
    if port is None:
        kind_port = RequestKind.NEW_CONTROL
    elif port == 0:
        kind_port = RequestKind.NEW_PORT0
    elif 0 < port < (1 << 23):
        kind_port = port << 8
    else:
        raise LocalProtocolError("port %r out of range" % (port,))
    raw = _sun_path(sockaddr)
    descr = description.encode("utf-8")[:DESCR_MAX]
    return _V3.pack(MAGIC, 3, kind_port, AF_UNIX, raw) + descr


def encode_reply(sockaddr: str | bytes) -> bytes:
    """The 110-byte reply: ``struct sockaddr_un`` of the switch data socket."""
    return _SOCKADDR.pack(AF_UNIX, _sun_path(sockaddr))


def decode_reply(buf: bytes) -> str | bytes:
    """Inverse of :func:`encode_reply`; returns a path str or abstract bytes."""
    if len(buf) != SOCKADDR_LEN:
        raise RemoteProtocolError("ctl reply of %d bytes, expected %d" % (len(buf), SOCKADDR_LEN))
    family, raw = _SOCKADDR.unpack(buf)
    if family != AF_UNIX:
        raise RemoteProtocolError("ctl reply with address family %d" % family)
    if raw[:1] == b"\0":
        return raw
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _sun_path(sockaddr: str | bytes) -> bytes:
    raw = sockaddr.encode("utf-8", "surrogateescape") if isinstance(sockaddr, str) else bytes(sockaddr)
    if len(raw) > SUN_PATH_LEN or (raw[:1] != b"\0" and len(raw) >= SUN_PATH_LEN):
        raise LocalProtocolError("unix socket path too long (%d bytes)" % len(raw))
    return raw.ljust(SUN_PATH_LEN, b"\0")
