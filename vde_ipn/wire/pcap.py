"""The classic pcap file format (what tcpdump ``-w`` writes and Wireshark reads).

A file is one 24-byte header followed by records, each a 16-byte header
and the captured bytes (libpcap's ``savefile.c``, "pcap-savefile(5)")::

    file header:   magic, version 2.4, thiszone, sigfigs, snaplen, linktype
    record header: ts_sec, ts_usec (or ts_nsec), caplen, len

We write microsecond files in host byte order, as libpcap does, with
linktype 1 (Ethernet: frames as VDE carries them, no FCS).  The reader
accepts both byte orders and nanosecond files.  Pure codec: the caller
owns the file.
"""

from __future__ import annotations

import struct

from .._errors import RemoteProtocolError
from .values import FrozenValue

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
LINKTYPE_ETHERNET = 1
DEFAULT_SNAPLEN = 262144                # libpcap's MAXIMUM_SNAPLEN
VERSION = (2, 4)

_FILE = struct.Struct("=IHHiIII")       # host order, as libpcap writes
_RECORD = struct.Struct("=IIII")
FILE_HEADER_LEN = _FILE.size            # 24
RECORD_HEADER_LEN = _RECORD.size        # 16


class FileHeader(FrozenValue):
    """``byteorder``: "<" or ">" once decoded."""

    __slots__ = ("snaplen", "linktype", "nanoseconds", "byteorder")

    def __init__(self, snaplen: int = DEFAULT_SNAPLEN, linktype: int = LINKTYPE_ETHERNET,
                 nanoseconds: bool = False, byteorder: str = "="):
        self._init(snaplen, linktype, nanoseconds, byteorder)


class Record(FrozenValue):
    """``time``: seconds since the epoch; ``data``: the captured bytes
    (caplen of them); ``length``: the frame's length on the wire."""

    __slots__ = ("time", "data", "length")

    def __init__(self, time: float, data: bytes, length: int):
        self._init(time, data, length)


def encode_file_header(snaplen: int = DEFAULT_SNAPLEN,
                       linktype: int = LINKTYPE_ETHERNET) -> bytes:
    """The 24 bytes that start a microsecond pcap file."""
    return _FILE.pack(MAGIC_USEC, VERSION[0], VERSION[1], 0, 0, snaplen, linktype)


def encode_record(ts: float, frame, snaplen: int = DEFAULT_SNAPLEN) -> bytes:
    """One record: ``frame`` captured at ``ts`` (epoch seconds), cut to ``snaplen``."""
    sec = int(ts)
    usec = int((ts - sec) * 1_000_000)
    if usec >= 1_000_000:               # rounding at the top of a second
        sec, usec = sec + 1, usec - 1_000_000
    n = len(frame)
    cap = n if n <= snaplen else snaplen
    return _RECORD.pack(sec, usec, cap, n) + bytes(frame[:cap])


def decode_file_header(buf) -> FileHeader:
    """Parse the first 24 bytes of a file.

    Raises:
        RemoteProtocolError: too short, or not a pcap file (unknown magic).
    """
    if len(buf) < FILE_HEADER_LEN:
        raise RemoteProtocolError("short pcap file header (%d bytes)" % len(buf))
    for order in ("<", ">"):
        magic = struct.unpack_from(order + "I", buf)[0]
        if magic in (MAGIC_USEC, MAGIC_NSEC):
            _m, _major, _minor, _zone, _sig, snaplen, linktype = struct.unpack_from(
                order + "IHHiIII", buf)
            return FileHeader(snaplen, linktype & 0x0FFFFFFF, magic == MAGIC_NSEC, order)
    raise RemoteProtocolError("not a pcap file (magic %s)" % bytes(buf[:4]).hex())


def decode_record_header(buf, header: FileHeader) -> tuple[float, int, int]:
    """(time, caplen, length) of a 16-byte record header."""
    if len(buf) < RECORD_HEADER_LEN:
        raise RemoteProtocolError("truncated pcap record header")
    sec, frac, cap, n = struct.unpack_from(header.byteorder + "IIII", buf)
    return sec + frac / (1e9 if header.nanoseconds else 1e6), cap, n


def read_records(stream):
    """Yield the :class:`Record` of a binary file object, after checking its header.

    The header is read and checked before the first record is asked for
    (a bad file raises at once).

    Raises:
        RemoteProtocolError: not a pcap file, or a record cut short.
    """
    header = decode_file_header(stream.read(FILE_HEADER_LEN))
    return header, _records(stream, header)


def _records(stream, header: FileHeader):
    while True:
        raw = stream.read(RECORD_HEADER_LEN)
        if not raw:
            return
        ts, cap, n = decode_record_header(raw, header)
        data = stream.read(cap)
        if len(data) < cap:
            raise RemoteProtocolError("pcap record cut short (%d of %d bytes)" % (len(data), cap))
        yield Record(ts, data, n)
