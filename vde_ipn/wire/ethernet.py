"""Ethernet and 802.1Q helpers over raw frames (bytes).

The per-frame path only slices: ``frame[0:6]`` is the destination,
``frame[6:12]`` the source, and ``frame[0] & 1`` the group bit.  These
helpers are for the control plane, the console and tests.
"""

from __future__ import annotations

import struct

ETH_HLEN = 14
ETH_ALEN = 6
TPID_8021Q = 0x8100
BROADCAST = b"\xff" * 6
NO_VLAN = 4095                           # a port's untagged VLAN: none

_TAG = struct.Struct("!HH")


def mac_str(mac: bytes) -> str:
    """``00:ff:a2:c3:03:48`` form of 6 bytes."""
    return ":".join("%02x" % b for b in mac)


def parse_mac(text: str) -> bytes:
    """Parse ``xx:xx:..`` or ``xx.xx.``; raise ValueError if it is not a MAC."""
    sep = ":" if ":" in text else "."
    parts = text.split(sep)
    if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
        raise ValueError("invalid MAC address %r" % text)
    return bytes(int(p, 16) for p in parts)


def is_group(mac: bytes) -> bool:
    return bool(mac[0] & 1)


def vlan_of(frame: bytes) -> int | None:
    """VLAN id of an 802.1Q-tagged frame, or None when untagged.

    ``frame`` has at least ``ETH_HLEN`` bytes (the bus drops runts before
    any policy sees them).  The one tag test of the engine: the switch,
    its monitor and iplog.
    """
    if frame[12] == 0x81 and frame[13] == 0x00 and len(frame) >= 18:
        return ((frame[14] << 8) | frame[15]) & 0x0FFF
    return None


def add_tag(frame: bytes, vid: int, pcp: int = 0, tpid: int = TPID_8021Q) -> bytes:
    """Insert an 802.1Q (or, with ``tpid``, 802.1ad) tag after the addresses."""
    return frame[:12] + _TAG.pack(tpid, (pcp << 13) | (vid & 0x0FFF)) + frame[12:]


def strip_tag(frame: bytes) -> bytes:
    """Remove the tag of a tagged frame."""
    return frame[:12] + frame[16:]


def build(dst: bytes, src: bytes, ethertype: int, payload: bytes = b"") -> bytes:
    """A frame from its parts (no padding, no FCS: as VDE carries them)."""
    return dst + src + struct.pack("!H", ethertype) + payload
