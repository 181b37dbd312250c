"""Message rings: one writer, any number of readers, in shared memory (shm.py).

Each sending member of an IPN network owns one ring (``w/PORT``).  A
message is written once, with a header saying who it is for (every
reader, one port, or a port mask), and each receiving member reads it
from there: one copy in, one copy out, no system call on the way while
both sides are busy.  Layout in :mod:`vde_ipn.wire.ipn_layout`.

Ordering: the writer stores the *reserve* word, then the entry, then the
*head* word; a reader loads the head, the entry, then the reserve.  On
x86 (TSO) stores and loads keep that order, which is what the overrun
check below relies on; other architectures are not supported.

A reader that falls more than a ring behind (lossy networks only: on
lossless ones the writer waits for the slowest cursor) notices that the
entry it copied was overwritten, jumps to the newest entry (whose start
the writer keeps in the header), and counts what it skipped from the
entries' sequence numbers, exactly.  (The kernel kept the oldest
messages of a full queue; a ring keeps the newest.)

Cost per message.  Entry headers are written and read field by field
through 32- and 64-bit views (small integers, no ``struct`` call), the
common entry (for every reader, whole, not overrun) is read without a
loop, and on lossless networks a reader publishes its cursor every
sixteenth of the ring rather than per message (see the data path's
"Room on a lossless network" for when else): the cursor shares a cache
line with the arm word the writer loads after every message.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform

from .shm import create_memory, open_memory, remove_own_memory
from ...wire.ipn_layout import (ENTRY, ENTRY_SIZE, KIND_ALL, KIND_MASK, KIND_ONE,
                                 KIND_WRAP, RING_CAP_W, RING_DATA, RING_HEAD_W, RING_ID_W,
                                 RING_MAGIC, RING_MAGIC_W, RING_RESERVE_W, RING_WAIT_W,
                                 RING_LAST_W, RING_COUNT_W)

RING_MIN_BYTES = 256 * 1024
PUBLISH_SHIFT = 4             # a reader publishes its cursor every 1/16 of the ring (lossless)
TSO_MACHINES = ("x86_64", "amd64", "i386", "i486", "i586", "i686", "x86")


def require_tso(machine: str | None = None) -> None:
    """Refuse to run where stores and loads may be reordered beyond x86's TSO.

    The rings are read and written with plain loads and stores through
    ``memoryview``; their protocol is correct only under x86's ordering
    (stores in program order, loads in program order).
    """
    m = (machine if machine is not None else platform.machine()).lower()
    if m not in TSO_MACHINES:
        raise OSError(errno.EAFNOSUPPORT,
                      "vde_ipn.ipn needs an x86 processor: its shared-memory rings rely on "
                      "x86 memory ordering, which %s does not give" % (m or "this machine"))


def ring_capacity(mtu: int, msgpool: int) -> int:
    """Data bytes of a ring: a power of two holding ``msgpool`` full messages."""
    need = max(RING_MIN_BYTES, msgpool * (ENTRY_SIZE + ((mtu + 7) & ~7)) * 2)
    cap = 1
    while cap < need:
        cap <<= 1
    return cap


class RingWriter:
    """The ring of one writer.  Not thread-safe (one writer per ring)."""

    def __init__(self, path: str, capacity: int, ring_id: int, mode: int):
        try:
            os.unlink(path)                  # a crashed former owner of the port
        except FileNotFoundError:
            pass
        self.mm = create_memory(path, RING_DATA + capacity, mode)   # see shm.py
        self.path = path
        self.hdr = self.mm[:RING_DATA].cast("Q")
        self.words = self.mm.cast("Q")          # entry headers, field by field
        self.half = self.mm.cast("I")
        self.hdr[RING_ID_W] = ring_id
        self.hdr[RING_CAP_W] = capacity
        self.hdr[RING_MAGIC_W] = RING_MAGIC
        self.ring_id = ring_id
        self.cap = capacity
        self.mask = capacity - 1
        self.head = 0
        self.seq = 0

    def end_for(self, n: int) -> int:
        """Absolute end of the ring after writing an ``n``-byte message."""
        total = ENTRY_SIZE + ((n + 7) & ~7)
        h = self.head
        left = self.cap - (h & self.mask)
        return h + (left if left < total else 0) + total

    def write(self, msg, kind: int, port: int, mask: int) -> None:
        """Append one message (the caller made sure there is room)."""
        self.try_write(msg, kind, port, mask, 1 << 62)

    def try_write(self, msg, kind: int, port: int, mask: int, limit: int) -> int:
        """Append one message if the ring may grow to its end; 0, or that end.

        ``limit`` is how far the ring may be written (lossless: the slowest
        reader's cursor plus the capacity); when the message does not fit
        nothing is written and the end it needs is returned.  The entry
        header is stored field by field (the bytes of :data:`ENTRY`), as
        small integers: length, kind and port together, sequence, and the
        mask only on entries that have one (readers look at it nowhere else).
        """
        n = len(msg)
        total = ENTRY_SIZE + ((n + 7) & ~7)
        h = self.head
        off = h & self.mask
        left = self.cap - off
        if left < total:
            end = h + left + total
            if end > limit:
                return end
            hdr = self.hdr
            hdr[RING_RESERVE_W] = end
            if left >= ENTRY_SIZE:
                self.half[((RING_DATA + off) >> 2) + 1] = KIND_WRAP
            h += left
            off = 0
        else:
            end = h + total
            if end > limit:
                return end
            hdr = self.hdr
            hdr[RING_RESERVE_W] = end
        i = (RING_DATA + off) >> 2
        half = self.half
        seq = self.seq
        half[i] = n
        half[i + 1] = kind | (port << 16)
        self.words[(i >> 1) + 1] = seq
        if kind == KIND_MASK:
            self.words[(i >> 1) + 2] = mask
        pos = RING_DATA + off + ENTRY_SIZE
        self.mm[pos:pos + n] = msg
        self.head = end
        hdr[RING_HEAD_W] = end
        hdr[RING_LAST_W] = h
        self.seq = seq = seq + 1
        hdr[RING_COUNT_W] = seq
        return 0

    def close(self, unlink: bool = True) -> None:
        """Detach; with ``unlink`` also remove the ring (file and segment)."""
        if unlink:
            remove_own_memory(self.mm)
        self.half.release()
        self.words.release()
        self.hdr.release()
        self.mm.release()
        if unlink:
            try:
                os.unlink(self.path)
            except OSError:
                pass


class RingReader:
    """One reader's view of one writer's ring.

    Attributes:
        port: the writer's port.
        cursor: absolute offset of the next entry to read.
        lost: messages overwritten before this reader got to them.
    """

    def __init__(self, path: str, port: int, size: int | None = None):
        # ``size``: the bytes the network's rings have (checked, see shm.py)
        self.mm = open_memory(path, size, minimum=RING_DATA, saved=True)
        size = len(self.mm)
        self.hdr = self.mm[:RING_DATA].cast("Q")
        if self.hdr[RING_MAGIC_W] != RING_MAGIC or self.hdr[RING_CAP_W] + RING_DATA > size:
            self.hdr.release()                  # its writer is still making it
            self.mm.release()
            raise OSError(errno.EAGAIN, "ring not ready")
        # bytes come out of a c_char array by slicing, as from an mmap (one copy)
        self.raw = (ctypes.c_char * size).from_address(ctypes.addressof(self.mm.obj))
        self.half = self.mm.cast("I")        # entry headers, field by field
        self.port = port
        self.ring_id = self.hdr[RING_ID_W]
        self.cap = self.hdr[RING_CAP_W]
        self.mask = self.cap - 1
        self.cursor = 0
        self.next_seq = 0
        self.lost = 0
        self.rung = 0                        # last wait word answered (lossless)
        self.plugged = 0                     # last wait word seen caught up (plugs)
        self.seen = 0                        # wait word both of those are done with
        self.pub = None                      # lossless: cursor words to publish to
        self.pslot = 0
        self.pub_next = 0                    # publish again once the cursor passes this
        self.wake = None                     # lossless: wake(writer_port, wait word)
        self.unplug = None                   # lossless: unplug() once caught up

    def head(self) -> int:
        return self.hdr[RING_HEAD_W]

    def wait_word(self) -> int:
        return self.hdr[RING_WAIT_W]

    def read(self, me: int):
        """The next message addressed to port ``me``, or None when caught up.

        The common case (an entry for every reader, whole, not overrun) is
        done here with word loads; anything else goes to :meth:`_read`.
        """
        c = self.cursor
        hdr = self.hdr
        if c < hdr[RING_HEAD_W]:
            off = c & self.mask
            i = (RING_DATA + off) >> 2
            half = self.half
            n = half[i]
            if half[i + 1] == KIND_ALL and ENTRY_SIZE + n <= self.cap - off:    # port 0
                pos = RING_DATA + ENTRY_SIZE + off
                data = self.raw[pos:pos + n]
                if hdr[RING_RESERVE_W] <= c + self.cap:      # not overwritten meanwhile
                    # entries follow each other without gaps here: seq == next_seq
                    self.next_seq += 1
                    self.cursor = c = c + ENTRY_SIZE + ((n + 7) & ~7)
                    if self.pub is not None:
                        if hdr[RING_WAIT_W] != self.seen:
                            self._writer_waits(c)
                        elif c >= self.pub_next:
                            self.pub[self.pslot] = c
                            self.pub_next = c + (self.cap >> PUBLISH_SHIFT)
                    return data
        return self._read(me)

    def _read(self, me: int):
        """:meth:`read` for every case: wraps, other kinds, overruns."""
        hdr = self.hdr
        mm = self.mm
        cap = self.cap
        c = self.cursor
        while c < hdr[RING_HEAD_W]:
            off = c & self.mask
            left = cap - off
            if left < ENTRY_SIZE:
                c += left
                continue
            pos = RING_DATA + off
            n, kind, port, seq, mask = ENTRY.unpack_from(mm, pos)
            if kind == KIND_WRAP:
                if hdr[RING_RESERVE_W] > c + cap:
                    c = self._resync()
                    continue
                c += left
                continue
            data = self.raw[pos + ENTRY_SIZE:pos + ENTRY_SIZE + n] if n <= left else None
            if data is None or hdr[RING_RESERVE_W] > c + cap:
                c = self._resync()           # overwritten under us
                continue
            c += ENTRY_SIZE + ((n + 7) & ~7)
            if seq != self.next_seq and seq > self.next_seq >= 0:
                self.lost += seq - self.next_seq
            self.next_seq = seq + 1
            if kind == KIND_ALL or (kind == KIND_ONE and port == me) or \
                    (kind == KIND_MASK and (mask >> me) & 1):
                self.cursor = c
                if self.pub is not None:
                    self._publish(c)
                return data
        self.cursor = c
        if self.pub is not None:
            self._publish(c)
        return None

    def pending(self, me: int) -> bool:
        """True when :meth:`read` would return a message now (nothing moves)."""
        hdr = self.hdr
        c = self.cursor
        cap = self.cap
        while c < hdr[RING_HEAD_W]:
            off = c & self.mask
            left = cap - off
            if left < ENTRY_SIZE:
                c += left
                continue
            n, kind, port, _seq, mask = ENTRY.unpack_from(self.mm, RING_DATA + off)
            if hdr[RING_RESERVE_W] > c + cap:
                return True                  # overrun: read() resyncs to the newest
            if kind == KIND_WRAP:
                c += left
                continue
            if kind == KIND_ALL or (kind == KIND_ONE and port == me) or \
                    (kind == KIND_MASK and (mask >> me) & 1):
                return True
            c += ENTRY_SIZE + ((n + 7) & ~7)
        return False

    def start_at_head(self) -> None:
        """Skip what is in the ring now: read only messages written from now on."""
        if self.hdr[RING_COUNT_W] == 0:
            self.cursor, self.next_seq = 0, 0
            return
        p, n, seq = self._newest()
        self.cursor = p + ENTRY_SIZE + ((n + 7) & ~7)
        self.next_seq = seq + 1

    def _resync(self) -> int:
        """Overrun: go to the newest entry (the read loop counts the skipped ones)."""
        return self._newest()[0]

    def _newest(self):
        """(start, length, seq) of the newest complete entry."""
        hdr = self.hdr
        while True:
            p = hdr[RING_LAST_W]
            n, _kind, _port, seq, _mask = ENTRY.unpack_from(self.mm, RING_DATA + (p & self.mask))
            if hdr[RING_RESERVE_W] <= p + self.cap and n <= self.cap:
                return p, n, seq                 # intact when we read it

    def _publish(self, c: int) -> None:
        """Lossless: show the writer our cursor; answer it if it waits."""
        self.pub[self.pslot] = c
        self.pub_next = c + (self.cap >> PUBLISH_SHIFT)
        if self.hdr[RING_WAIT_W] != self.seen:
            self._writer_waits(c)

    def publish(self) -> None:
        """Lossless: show the writer where we are now (before going to sleep)."""
        if self.pub is not None:
            self.pub[self.pslot] = c = self.cursor
            self.pub_next = c + (self.cap >> PUBLISH_SHIFT)

    def answer(self) -> None:
        """Lossless, after the arming fence: wake a writer that waits for
        the room we made (doorbells only: the node's socket is not touched)."""
        if self.pub is not None and self.hdr[RING_WAIT_W] != self.seen:
            self._writer_waits(self.cursor, False)

    def _writer_waits(self, c: int, unplug: bool = True) -> None:
        """The writer moved its wait word: publish our cursor, wake the
        writer once there is room (half the ring), and let the node consume
        its plugs once caught up."""
        self.pub[self.pslot] = c
        self.pub_next = c + (self.cap >> PUBLISH_SHIFT)
        hdr = self.hdr
        w = hdr[RING_WAIT_W]
        head = hdr[RING_HEAD_W]
        if w != self.rung and head - c <= self.cap >> 1:
            self.rung = w
            if w >> 32:                          # a plug's wait word has no secret
                self.wake(self.port, w)
        if unplug and w != self.plugged and c >= head and self.unplug is not None:
            self.plugged = w
            self.unplug()
        if self.rung == w and (self.plugged == w or self.unplug is None):
            self.seen = w

    def close(self) -> None:
        self.raw = None
        self.half.release()
        self.hdr.release()
        self.mm.release()


__all__ = ["RingReader", "RingWriter", "ring_capacity", "KIND_ALL", "KIND_ONE", "KIND_MASK"]
