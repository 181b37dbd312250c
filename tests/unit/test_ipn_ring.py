"""The IPN message ring in one process: wrap, overrun, torn reads, a writer
killed mid-write; the companion modes derived from the r/w/x bits; the
readiness filter; the refusal to run without x86 memory ordering."""

import errno
import os
import socket
import stat

import pytest

from vde_ipn.io.ipn import bell as ipn_bell
from vde_ipn.io.ipn.ring import RingReader, RingWriter, require_tso
from vde_ipn.wire.ipn_layout import (ENTRY, KIND_ALL, KIND_MASK, KIND_ONE, RING_DATA,
                                       RING_HEAD_W, RING_RESERVE_W, derived_modes, entry_space)

CAP = 512                                   # bytes of data area: wraps often


@pytest.fixture
def ring(tmp_path):
    path = str(tmp_path / "0.abcd")
    w = RingWriter(path, CAP, 1234, 0o600)
    r = RingReader(path, 0)
    yield w, r
    r.close()
    w.close()


def drain(r, me=1):
    out = []
    while True:
        d = r.read(me)
        if d is None:
            return out
        out.append(d)


def test_messages_cross_the_end_of_the_ring_in_order(ring):
    w, r = ring
    sent = []
    for i in range(200):                     # many laps, odd sizes
        msg = bytes([i % 251]) * (1 + i % 61)
        w.write(msg, KIND_ALL, 0, 0)
        sent.append(msg)
        if i % 3 == 2:
            assert drain(r) == sent
            sent = []
    assert drain(r) == sent
    assert r.lost == 0 and not r.pending(1)


def test_addressing_one_port_and_a_mask(ring):
    w, r = ring
    w.write(b"for 2", KIND_ONE, 2, 0)
    w.write(b"for 1", KIND_ONE, 1, 0)
    w.write(b"for 1 and 3", KIND_MASK, 0, (1 << 1) | (1 << 3))
    w.write(b"for 3", KIND_MASK, 0, 1 << 3)
    assert r.pending(1)
    assert drain(r, 1) == [b"for 1", b"for 1 and 3"]
    assert not r.pending(1)


def test_a_reader_overrun_gets_the_newest_and_counts_the_rest(ring):
    w, r = ring
    n = 100                                   # 100 * 32 bytes: six laps of 512
    for i in range(n):
        w.write(b"m%07d" % i, KIND_ALL, 0, 0)
    got = drain(r)
    assert got and got[-1] == b"m%07d" % (n - 1)
    assert [int(m[1:]) for m in got] == list(range(n - len(got), n))
    assert r.lost == n - len(got)


def test_an_entry_overwritten_while_being_copied_is_not_returned(ring):
    w, r = ring
    w.write(b"first", KIND_ALL, 0, 0)
    pos = r.cursor
    # the writer laps the reader between its header load and its copy: it has
    # reserved past the reader's entry when the reader checks after copying
    for i in range(CAP // entry_space(8) + 2):
        w.write(b"x%07d" % i, KIND_ALL, 0, 0)
    assert w.hdr[RING_RESERVE_W] > pos + CAP
    got = drain(r)
    assert b"first" not in got and got[-1] == b"x%07d" % (CAP // entry_space(8) + 1)


def test_a_writer_killed_mid_write_delivers_nothing_torn(ring):
    w, r = ring
    w.write(b"whole", KIND_ALL, 0, 0)
    # what write() does before the head moves: reserve, header, part of the data
    h = w.head
    w.hdr[RING_RESERVE_W] = h + entry_space(40)
    ENTRY.pack_into(w.mm, RING_DATA + (h & w.mask), 40, KIND_ALL, 0, w.seq, 0)
    at = RING_DATA + (h & w.mask) + ENTRY.size
    w.mm[at:at + 10] = b"half-writ!"
    assert drain(r) == [b"whole"]             # the torn one is invisible
    assert r.hdr[RING_HEAD_W] == h and not r.pending(1)
    w2 = RingReader(w.path, 0)                # a reader that comes later
    w2.start_at_head()
    assert w2.read(1) is None
    w2.close()


def test_modes_give_each_bit_exactly_its_part():
    m = derived_modes(0o701)                  # other: x only
    assert m["ring"] & 0o007 == 0 and m["w"] & 0o007 == 0 and m["cursor"] & 0o007 == 0
    assert m["net"] & 0o007 == 0o6 and m["dir"] & 0o007 == 0o5
    m = derived_modes(0o704)                  # other: r only
    assert m["ring"] & 0o007 == 0o4 and m["w"] & 0o007 == 0o5      # read, not create
    assert m["c"] & 0o007 == 0o7 and m["cursor"] & 0o007 == 0
    m = derived_modes(0o702)                  # other: w only
    assert m["ring"] & 0o007 == 0 and m["w"] & 0o007 == 0o7
    assert m["c"] & 0o007 == 0o5 and m["cursor"] & 0o007 == 0o4
    m = derived_modes(0o760)                  # group rw, others nothing
    assert all(m[k] & 0o007 == 0 for k in m)
    assert m["ring"] & 0o070 == 0o40 and m["cursor"] & 0o070 == 0o40
    for sub in ("n", "w", "c"):               # nobody unlinks another member's file
        assert m[sub] & stat.S_ISVTX


def test_the_doorbell_filter_takes_the_secret_only(tmp_path):
    path = str(tmp_path / "bell")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.setblocking(False)
    t = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        ipn_bell.set_filter(s, 7, False)
        for v in (6, 0, 7):
            ipn_bell.ring(t, path, v)
        t.sendto(b"x" * ipn_bell.HINT_LEN, path)
        t.sendto(b"\0\0\0\7" * 2, path)
        assert s.recv(64) == ipn_bell.BELL.pack(7)
        with pytest.raises(BlockingIOError):
            s.recv(64)
        ipn_bell.set_filter(s, 9, True)
        t.sendto(b"x" * ipn_bell.HINT_LEN, path)
        ipn_bell.ring(t, path, 9)
        ipn_bell.plug(t, path, 8)
        ipn_bell.plug(t, path, 9)
        assert [s.recv(64), s.recv(64)] == [b"x" * 16, ipn_bell.BELL.pack(9)]
        assert len(s.recv(ipn_bell.PLUG_LEN)) == ipn_bell.PLUG_LEN
        with pytest.raises(BlockingIOError):
            s.recv(64)
        assert ipn_bell.new_arm(5) not in (0, 5)
    finally:
        s.close()
        t.close()


def test_no_x86_no_ipn():
    require_tso("x86_64")
    with pytest.raises(OSError) as info:
        require_tso("aarch64")
    assert info.value.errno == errno.EAFNOSUPPORT and "x86" in str(info.value)
