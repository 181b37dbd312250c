"""Byte layouts shared by the members of an IPN network (no I/O here).

A network at ``PATH`` has no central process.  Its members meet in a
companion directory ``.NAME.ipn`` next to the socket file and share:

* ``net``      the network parameters (:data:`PARAMS`), written by the creator;
* ``gen``      the id (decimal) of a System V shared-memory segment whose
               first u64 gets a new value on every membership change;
               written by the creator only, read by all members;
* ``p/P``      the claim on port ``P``: whoever holds an exclusive flock on
               it owns the port (created by its first claimant, never removed);
* ``n/P.F.I``  one AF_UNIX datagram socket per connected node: ``P`` is the
               port number, ``F`` the node flags, ``I`` its random identity
               (see :func:`encode_node`);
* ``w/P.I``    the id (decimal) of the System V segment holding the message
               ring of writer node ``P.?.I`` (:data:`RING_SLOTS`), and from
               byte 64 a copy of it once its writer left (if a receiver had
               not attached it); the file stays after its writer left, so
               receivers can read what was sent before, until the next
               member joins;
* ``c/P.I``    the id of the segment holding the read cursors of reader node
               ``P.?.I`` (:func:`cursor_slot`);
* ``m/P.I``    the source MACs sender node ``P.?.I`` sent from, for policies
               that switch by MAC (:data:`MAC_SLOT`), so that a member that
               never receives still knows where a MAC lives.

Rings and cursor words are arrays of native u64 words so that members can
read and write single fields through ``memoryview.cast("Q")``.  Entries in
a ring are an :data:`ENTRY` header followed by the message, padded to 8.
Decoders raise :class:`RemoteProtocolError` only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .._errors import RemoteProtocolError

PARAMS_MAGIC = b"IPN1"
_PARAMS = struct.Struct("=4sHHIIIIIQ")   # magic ver proto flags ports mtu pool mode netid
PARAMS_SIZE = _PARAMS.size

# node flags, as letters in the node's socket name
NODE_READER = "r"        # receives messages (no SHUT_RD)
NODE_WRITER = "w"        # sends messages (no SHUT_WR)
NODE_OOB = "o"           # wants numnodes OOB and handles OOB
_FLAG_ORDER = (NODE_READER, NODE_WRITER, NODE_OOB)

# ring file: a header of u64 words, then the data area
RING_MAGIC = 0x31474E4952504E49          # b"IPNRING1" little endian
RING_MAGIC_W, RING_ID_W, RING_CAP_W, RING_RESERVE_W, RING_HEAD_W, RING_WAIT_W = range(6)
RING_LAST_W, RING_COUNT_W = 6, 7         # start of the newest entry; messages written
RING_BORN_W = 8                          # CLOCK_MONOTONIC (ns) when the ring was made
RING_SLOTS = 16
RING_DATA = RING_SLOTS * 8

# entry header: length, kind, port (for KIND_ONE), sequence number, port mask
ENTRY = struct.Struct("=IHHQQ")
ENTRY_SIZE = ENTRY.size                  # 24
KIND_WRAP = 0                            # skip to the start of the data area
KIND_ALL = 1                             # every reader (but the writer)
KIND_ONE = 2                             # the reader on ``port``
KIND_MASK = 3                            # readers whose bit is set in ``mask``

# cursor file: arm sequence, own port, then (ring id, cursor) per writer port
CURSOR_ARM_W = 0
CURSOR_PORT_W = 1
MAX_PORTS = 65536                        # IPN stores port counts as unsigned short
CURSOR_WORDS = 2 + 2 * MAX_PORTS

# OOB numnodes notification (af_ipn.h: struct numnode_oob, host order)
NUMNODE_OOB = struct.Struct("=iiii")
IPN_OOB_NUMNODE_TAG = 0


# MAC announcements: MAC_SLOTS slots of (mac, in use, last sent, monotonic clock)
MAC_SLOT = struct.Struct("=6sHd")
MAC_SLOTS = 64


def encode_mac_slot(mac: bytes, when: float) -> bytes:
    return MAC_SLOT.pack(mac, 1, when)


def decode_mac_slots(buf: bytes) -> list[tuple[bytes, float]]:
    """(mac, last sent) of the slots in use of an announcement file."""
    out = []
    for i in range(min(len(buf) // MAC_SLOT.size, MAC_SLOTS)):
        mac, used, when = MAC_SLOT.unpack_from(buf, i * MAC_SLOT.size)
        if used == 1 and not mac[0] & 1:
            out.append((mac, when))
    return out


def cursor_slot(port: int) -> int:
    """Index of the ring-id word for writer ``port``; its cursor follows."""
    return 2 + 2 * port


def entry_space(length: int) -> int:
    """Bytes an entry of ``length`` message bytes takes in a ring."""
    return ENTRY_SIZE + ((length + 7) & ~7)


@dataclass(frozen=True)
class Params:
    """Network parameters, fixed when the network is created (ports may change)."""

    protocol: int
    flags: int
    maxports: int
    mtu: int
    msgpool: int
    mode: int
    netid: int


def encode_params(p: Params) -> bytes:
    return _PARAMS.pack(PARAMS_MAGIC, 1, p.protocol, p.flags, p.maxports, p.mtu,
                        p.msgpool, p.mode, p.netid)


def decode_params(buf: bytes) -> Params:
    """Raises RemoteProtocolError on a short or foreign ``net`` file."""
    if len(buf) < PARAMS_SIZE:
        raise RemoteProtocolError("short IPN parameter file (%d bytes)" % len(buf))
    magic, version, proto, flags, ports, mtu, pool, mode, netid = _PARAMS.unpack_from(buf)
    if magic != PARAMS_MAGIC or version != 1:
        raise RemoteProtocolError("not an IPN parameter file")
    return Params(proto, flags, ports, mtu, pool, mode, netid)


def encode_node(port: int, flags: str, nid: str) -> str:
    """The socket name of a node: ``"<port>.<flags>.<nid>"`` (flags may be empty).

    ``nid`` is chosen at random when the node joins and kept for its life,
    so a node that takes over the port of one that died has another name,
    and every member sees the change even when the flags are the same.
    """
    return "%d.%s.%s" % (port, "".join(f for f in _FLAG_ORDER if f in flags), nid)


def decode_node(name: str) -> tuple[int, str]:
    """(port, flags) of a node name; RemoteProtocolError if it is not one."""
    head, flags, nid = (name.split(".") + ["", ""])[:3]
    if (name.count(".") != 2 or not head.isdigit() or not nid.isalnum()
            or any(f not in _FLAG_ORDER for f in flags)):
        raise RemoteProtocolError("not an IPN node name: %r" % name)
    return int(head), flags


def member_file(name: str) -> str:
    """The name of a node's ring (in ``w/``) and cursor file (in ``c/``):
    ``"<port>.<nid>"``, unique to that node, so no member can squat on the
    files of a port before its next owner comes."""
    head, _flags, nid = name.split(".")
    return "%s.%s" % (head, nid)


def decode_member_file(name: str) -> int:
    """The port of a ``member_file`` name; RemoteProtocolError otherwise."""
    head, sep, nid = name.partition(".")
    if not sep or not head.isdigit() or not nid.isalnum():
        raise RemoteProtocolError("not an IPN member file: %r" % name)
    return int(head)


def encode_numnode_oob(readers: int, writers: int) -> bytes:
    return NUMNODE_OOB.pack(0, IPN_OOB_NUMNODE_TAG, readers, writers)


def decode_numnode_oob(buf: bytes) -> tuple[int, int]:
    """(numreaders, numwriters) of a numnodes OOB message."""
    if len(buf) < NUMNODE_OOB.size:
        raise RemoteProtocolError("short numnodes OOB message")
    level, tag, readers, writers = NUMNODE_OOB.unpack_from(buf)
    if level != 0 or tag != IPN_OOB_NUMNODE_TAG:
        raise RemoteProtocolError("not a numnodes OOB message")
    return readers, writers


def derived_modes(mode: int) -> dict[str, int]:
    """File modes of the companion directory's parts, from the network's mode.

    The socket file's bits mean r = receive, w = send, x = manage.  Each
    class (user, group, other) gets, on each part, only what its bits
    allow, so the kernel enforces the permissions on every member, not
    only this library:

    * ``dir``: entered by anyone with a bit;
    * ``n/`` (doorbell sockets): entered and written by anyone with a bit,
      sticky: a member cannot unlink or rename another member's socket;
      ``p/`` (port claims) likewise;
    * ``w/`` (rings): created by senders, listed by receivers, sticky;
      a ring (file and segment) is read by receivers only (x does not
      read traffic);
    * ``c/`` (cursors): created by receivers, listed by senders, sticky;
      cursor words (file and segment) are read by senders only;
    * ``m/`` (MAC announcements): created and read by senders, sticky;
    * ``net``: read by all, rewritten by managers; ``shared`` files
      (the locks) are read and written by all members; ``gen`` (the
      segment's id) is read by all, written by the creator only.
    """
    sticky = 0o3000                       # setgid (the group follows) + sticky
    out = {"dir": 0o2000, "n": sticky, "p": sticky, "w": sticky, "c": sticky, "m": sticky, "net": 0,
           "shared": 0, "gen": 0, "ring": 0, "cursor": 0, "macs": 0, "sock": 0}
    for shift in (6, 3, 0):
        bits = (mode >> shift) & 7
        r, w, x = bits & 4, bits & 2, bits & 1
        any_bit = 7 if bits else 0
        out["dir"] |= (5 if bits else 0) << shift
        out["n"] |= any_bit << shift
        out["p"] |= any_bit << shift
        out["w"] |= (7 if w else 5 if r else 0) << shift
        out["c"] |= (7 if r else 5 if w else 0) << shift
        out["m"] |= (7 if w else 0) << shift
        out["macs"] |= (4 if w else 0) << shift
        out["net"] |= ((4 if bits else 0) | (2 if x else 0)) << shift
        out["shared"] |= (6 if bits else 0) << shift
        out["gen"] |= (4 if bits else 0) << shift
        out["ring"] |= (4 if r else 0) << shift
        out["cursor"] |= (4 if w else 0) << shift
        out["sock"] |= (6 if bits else 0) << shift
    for part in ("ring", "cursor", "macs", "net", "gen"):
        out[part] |= 0o600                # the creating member keeps its own file
    return out
