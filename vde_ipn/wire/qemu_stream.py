"""QEMU's stream framing: each frame as a 4-byte big-endian length + bytes.

This is what ``-netdev stream`` (and the older ``-netdev socket``) and
passt put on a stream socket.  QEMU's own reader refuses a length above
its packet buffer (:data:`LENGTH_LIMIT`, 69632 bytes) and drops the
connection: past such a length there is no telling where the next
frame starts.  Every shorter length keeps the stream in step, so a frame
too long for a switch is read, then dropped by whoever counts it.

:class:`RecordReader` is sans-IO.  :meth:`~RecordReader.want` says how
many bytes to ask the socket for: the rest of the current record plus
the next record's header, never more, so after each read no complete
record is left waiting in the reader (only zero-length records, which
:meth:`~RecordReader.feed` returns at once).  Whatever else the peer
sent stays in the kernel, where poll still sees it.
"""

from __future__ import annotations

import struct

from .._errors import RemoteProtocolError

HEADER = struct.Struct(">I")
HEADER_LEN = HEADER.size
LENGTH_LIMIT = 4096 + 65536              # QEMU's NET_BUFSIZE


class FramingError(RemoteProtocolError):
    """A length no QEMU peer sends: the stream cannot be followed further."""


def header(frame_len: int) -> bytes:
    return HEADER.pack(frame_len)


def encode(frame: bytes) -> bytes:
    """One record for ``frame``."""
    return HEADER.pack(len(frame)) + frame


class RecordReader:
    """Incremental decoder of QEMU stream records."""

    __slots__ = ("_buf", "_length", "limit")

    def __init__(self, limit: int = LENGTH_LIMIT):
        self._buf = bytearray()
        self._length = -1                # -1: reading a header
        self.limit = limit

    def want(self) -> int:
        """Bytes to read next: the current record's rest and the next header."""
        if self._length < 0:
            return HEADER_LEN - len(self._buf)
        return self._length - len(self._buf) + HEADER_LEN

    @property
    def partial(self) -> int:
        """Bytes held of a record not yet complete (header included)."""
        if self._length < 0:
            return len(self._buf)
        return HEADER_LEN + len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Take bytes read from the stream; return the records they complete.

        Zero-length records come back as ``b""``.

        Raises:
            FramingError: a length above ``limit``; the reader is then
                useless and the connection should be dropped.
        """
        out = []
        buf = self._buf
        buf += data
        while True:
            if self._length < 0:
                if len(buf) < HEADER_LEN:
                    return out
                n = HEADER.unpack_from(buf)[0]
                del buf[:HEADER_LEN]
                if n > self.limit:
                    raise FramingError("record length %d is above %d" % (n, self.limit))
                self._length = n
            if len(buf) < self._length:
                return out
            out.append(bytes(buf[:self._length]))
            del buf[:self._length]
            self._length = -1
