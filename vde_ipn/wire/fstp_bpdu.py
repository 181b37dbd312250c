"""The BPDUs of vde_switch's fast spanning tree (FSTP), encoded and decoded.

An FSTP BPDU is an 802.3 frame to ``01:80:c2:00:00:00`` carrying an
RSTP-looking body (802.1w field order, protocol 0, version 2, type 2)::

    dst(6) src(6) len=0x0027(2) | llc 42 42 03 | proto 00 00 | ver 02 | type 02
    flags(1) root(8) rootcost(4, BE) bridge(8) port(2)
    age(2) maxage(2) hello(2) fwddelay(2) v1len(1)            53 bytes in all

Differences from 802.1w that must be kept to talk to the C switch:

* age, max age and hello are written low byte first (hello 4, max age 40);
  the forward delay is always 0;
* the port id is ``0x80 | port >> 4`` then ``port & 0xff`` (the C switch
  shifts by 4, not 8, so high port numbers overlap);
* the flag bits keep the 802.1w positions but bit 1 (proposal) is set
  exactly when the sending port is an alternate/backup port.

On a tagged port the same frame carries an 802.1Q tag after the source
MAC (57 bytes).  A receiver accepts 51 bytes or more past the tag and
checks only version and type, as the C switch does.
"""

from __future__ import annotations

import struct

from .values import FrozenValue

BPDU_DST = b"\x01\x80\xc2\x00\x00\x00"
LENGTH = 0x0027
HELLO = 4                       # seconds between hellos (STDHELLOPERIOD)
MAX_AGE = 40                    # advertised only: 10 hellos
MIN_LEN = 51                    # shortest untagged BPDU accepted
FRAME_LEN = 53

# flag bits
TC = 0x01
PROPOSAL = 0x02                 # the C switch: "this port is alternate/backup"
ROLE_MASK = 0x0C
ROLE_ROOT = 0x04
LEARNING = 0x10
FORWARDING = 0x20
AGREEMENT = 0x40
TC_ACK = 0x80

_HEAD = struct.Struct("!6s6sH3sHBB")
_BODY = struct.Struct("!B8sI8s2s")
_TIMES = struct.Struct("<HHHH")


class Bpdu(FrozenValue):
    """The fields the protocol uses; ``root``/``bridge`` are 8-byte ids,
    ``port`` 2 bytes (compared as bytes)."""

    __slots__ = ("flags", "root", "rootcost", "bridge", "port", "age", "max_age", "hello",
                 "fwd_delay")

    def __init__(self, flags: int, root: bytes, rootcost: int, bridge: bytes, port: bytes,
                 age: int = 0, max_age: int = MAX_AGE, hello: int = HELLO,
                 fwd_delay: int = 0):
        self._init(flags, root, rootcost, bridge, port, age, max_age, hello, fwd_delay)

    @property
    def role_is_root(self) -> bool:
        """The sender uses this link as its root port."""
        return self.flags & ROLE_MASK == ROLE_ROOT


def bridge_id(priority: int, mac: bytes) -> bytes:
    """Priority (2 bytes, big endian) followed by the MAC."""
    return bytes(((priority >> 8) & 0xFF, priority & 0xFF)) + mac


def port_id(port: int) -> bytes:
    """The C switch's port id: ``0x80 | port >> 4``, ``port & 0xff``."""
    return bytes((0x80 | ((port >> 4) & 0xFF), port & 0xFF))


def encode(src: bytes, b: Bpdu) -> bytes:
    """The untagged 53-byte frame; tag it for tagged ports (egress rewrite)."""
    return (_HEAD.pack(BPDU_DST, src, LENGTH, b"\x42\x42\x03", 0, 2, 2)
            + _BODY.pack(b.flags, b.root, b.rootcost & 0xFFFFFFFF, b.bridge, b.port)
            + _TIMES.pack(b.age & 0xFFFF, b.max_age, b.hello, b.fwd_delay) + b"\x00")


def is_bpdu(frame: bytes) -> bool:
    return frame[:6] == BPDU_DST


def decode(frame: bytes, tagged: bool = False) -> Bpdu | None:
    """The BPDU in ``frame`` (with its 802.1Q tag if ``tagged``), or None.

    None for what the C switch calls a faulty packet: fewer than 51 bytes
    once the tag is skipped, or a version or type other than 2.  Fields
    cut off by a short frame read as 0.
    """
    off = 4 if tagged else 0
    if len(frame) - off < MIN_LEN:
        return None
    body = frame[off + 14:off + 14 + 39].ljust(39, b"\0")
    if body[5] != 2 or body[6] != 2:
        return None
    flags, root, cost, bridge, port = _BODY.unpack_from(body, 7)
    age, max_age, hello, fwd = _TIMES.unpack_from(body, 30)
    return Bpdu(flags, root, cost, bridge, port, age, max_age, hello, fwd)
