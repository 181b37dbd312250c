"""VXLAN encapsulation (RFC 7348), as spoken by ``vxlan://`` and ``vxvde://``.

Every datagram is an 8-byte header followed by one Ethernet frame::

    byte 0     flags: 0x08 (the I bit: a valid VNI follows)
    bytes 1-3  reserved, zero
    bytes 4-6  VNI, 24 bits, big-endian
    byte 7     reserved, zero

vdeplug4's ``vxvde`` plugin uses exactly this header on its own UDP port
(14789 by default) and accepts a datagram only if all 8 bytes equal the
header it sends itself; its ``vxlan`` plugin and a Linux kernel ``vxlan``
device check only the flags and the VNI.  A datagram made of the header
alone is the ``vxvde`` "goodbye": receivers forget the sender's MACs.

Pure: no sockets.
"""

from __future__ import annotations

from typing import Optional

from .ethernet import ETH_HLEN

HEADER_LEN = 8
FLAG_VNI = 0x08
VNI_MAX = (1 << 24) - 1

VXLAN_PORT = 4789
VXVDE_PORT = 14789
DEFAULT_GROUP_V4 = "239.0.0.1"
DEFAULT_GROUP_V6 = "ff05:56de::1"
DEFAULT_TTL = 1
DEFAULT_EXPIRE = 128          # seconds a learned MAC stays bound to a peer


def header(vni: int) -> bytes:
    """The 8-byte header for ``vni`` (0 <= vni < 2**24, else ValueError)."""
    if not 0 <= vni <= VNI_MAX:
        raise ValueError("VNI %d out of range 0..%d" % (vni, VNI_MAX))
    return bytes((FLAG_VNI, 0, 0, 0, vni >> 16, (vni >> 8) & 0xFF, vni & 0xFF, 0))


def encapsulate(hdr: bytes, frame: bytes) -> bytes:
    """One datagram: ``hdr`` (from :func:`header`) followed by ``frame``."""
    return hdr + frame


def decapsulate(datagram: bytes, vni: int, *, strict: bool = False) -> Optional[bytes]:
    """The frame inside ``datagram`` if it belongs to ``vni``, else None.

    ``strict`` (vxvde): every header byte must match :func:`header`;
    otherwise (vxlan, kernel devices) only the I flag and the VNI are
    checked.  A frame shorter than an Ethernet header yields None; a bare
    header yields ``b""`` (see :func:`is_goodbye`).
    """
    if len(datagram) < HEADER_LEN:
        return None
    if strict:
        if datagram[:HEADER_LEN] != header(vni):
            return None
    elif datagram[0] != FLAG_VNI or \
            (datagram[4] << 16 | datagram[5] << 8 | datagram[6]) != vni:
        return None
    if len(datagram) == HEADER_LEN:
        return b""
    if len(datagram) - HEADER_LEN <= ETH_HLEN:
        return None
    return datagram[HEADER_LEN:]


def vni_of(datagram: bytes) -> Optional[int]:
    """The VNI a datagram carries, or None if it is no VXLAN datagram."""
    if len(datagram) < HEADER_LEN or datagram[0] != FLAG_VNI:
        return None
    return datagram[4] << 16 | datagram[5] << 8 | datagram[6]


def group_with_gid(addr: bytes, gid: Optional[int]) -> bytes:
    """vxvde's ``grp=``: the low 3 bytes of the group address become the
    gid's low 24 bits (``addr`` is a packed IPv4 or IPv6 address)."""
    if gid is None or gid < 0:
        return addr
    return addr[:-3] + bytes(((gid >> 16) & 0xFF, (gid >> 8) & 0xFF, gid & 0xFF))
