"""The vdestream framing: each frame as a 2-byte big-endian length + bytes.

Used by ``vde_plug`` on stdin/stdout, by ``dpipe`` cables and wirefilter.
:class:`StreamDecoder` reassembles records across arbitrary read
boundaries.  A record longer than the maximum makes the decoder drop the
rest of that read, as vdeplug4 does, and count it in ``errors``; zero
length records are skipped.
"""

from __future__ import annotations

STREAM_MAX = 9216 + 14 + 4 + 2          # vdeplug4 accepts records up to this


def encode(frame: bytes) -> bytes:
    """One record for ``frame``."""
    n = len(frame)
    return bytes((n >> 8, n & 0xFF)) + frame


class StreamDecoder:
    """Incremental decoder of vdestream records."""

    __slots__ = ("_buf", "max_len", "errors")

    def __init__(self, max_len: int = STREAM_MAX):
        self._buf = b""
        self.max_len = max_len
        self.errors = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes from one read; return the complete frames they finish."""
        buf = self._buf + data if self._buf else data
        frames = []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            n = (buf[pos] << 8) | buf[pos + 1]
            if n > self.max_len:
                self.errors += 1          # desync: drop what is left of this read
                self._buf = b""
                return frames
            if end - pos - 2 < n:
                break
            if n:
                frames.append(buf[pos + 2:pos + 2 + n])
            pos += 2 + n
        self._buf = buf[pos:]
        return frames

    @property
    def pending(self) -> int:
        """Bytes held waiting for the rest of a record."""
        return len(self._buf)
