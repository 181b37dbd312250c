"""Egress keys: a port number, optionally with an 802.1Q rewrite.

A policy answers with *egress keys*.  A plain port number means "send the
frame as it came in".  When a VLAN mixes tagged and untagged members the
frame must change on its way out, and the key carries that too, so the
per-frame path stays one lookup per destination::

    key = port                         as is
    key = port | TAG | vid << 16       insert an 802.1Q tag with ``vid``
    key = port | UNTAG                 remove the 802.1Q tag

``port_of(key)`` gives the port back; ``rewrite(key, frame)`` applies the
change.  Ports are below 2**16 and VLAN ids below 2**12.
"""

from __future__ import annotations

from ..wire.ethernet import add_tag, strip_tag

PORT_MASK = 0xFFFF
TAG = 1 << 28
UNTAG = 1 << 29
_VID_SHIFT = 16


def tag_key(port: int, vid: int) -> int:
    return port | TAG | (vid << _VID_SHIFT)


def untag_key(port: int) -> int:
    return port | UNTAG


def port_of(key: int) -> int:
    return key & PORT_MASK


def rewrite(key: int, frame: bytes) -> bytes:
    """The frame as it must leave for ``key``."""
    if key & TAG:
        return add_tag(frame, key >> _VID_SHIFT)
    if key & UNTAG:
        return strip_tag(frame)
    return frame
