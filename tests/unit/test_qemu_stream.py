"""QEMU's stream framing (4-byte big-endian length + frame), sans-IO."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vde_ipn._errors import RemoteProtocolError
from vde_ipn.wire.qemu_stream import LENGTH_LIMIT, FramingError, RecordReader, encode


def test_encode_is_a_big_endian_length_then_the_frame():
    assert encode(b"abc") == b"\x00\x00\x00\x03abc"
    assert encode(b"") == b"\0\0\0\0"


def read_as_a_socket_would(stream: bytes, cap: int):
    """Feed ``stream`` in reads of ``want()`` bytes, at most ``cap``."""
    r, pos, out = RecordReader(), 0, []
    while pos < len(stream):
        n = min(r.want(), cap)
        assert n > 0
        out += r.feed(stream[pos:pos + n])
        pos += n
    return out, r


@given(st.lists(st.binary(max_size=300), max_size=20), st.integers(1, 50))
def test_records_survive_any_read_size(frames, cap):
    stream = b"".join(encode(f) for f in frames)
    out, r = read_as_a_socket_would(stream, cap)
    assert out == frames
    assert r.partial == 0


@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=20))
def test_reads_of_want_bytes_complete_at_most_one_frame(frames):
    """Reading ``want()`` bytes never takes more than the current record
    and the next header: the rest stays in the kernel, where poll sees it."""
    stream = b"".join(encode(f) for f in frames)
    r, pos, got = RecordReader(), 0, []
    while pos < len(stream):
        n = r.want()
        records = r.feed(stream[pos:pos + n])
        pos += n
        assert len([x for x in records if x]) <= 1
        got += records
    assert got == frames


@given(st.binary(max_size=200), st.integers(0, 199))
def test_arbitrary_chunks_give_the_same_records(data, cut):
    frames = [data, b"", data[::-1]]
    stream = b"".join(encode(f) for f in frames)
    cut = min(cut, len(stream))
    r = RecordReader()
    assert r.feed(stream[:cut]) + r.feed(stream[cut:]) == frames


def test_partial_counts_what_is_held():
    r = RecordReader()
    assert r.feed(b"\0\0") == [] and r.partial == 2
    assert r.feed(b"\0\x05ab") == [] and r.partial == 6
    assert r.want() == 3 + 4
    assert r.feed(b"cde") == [b"abcde"] and r.partial == 0


def test_a_length_above_qemus_limit_is_a_framing_error():
    r = RecordReader()
    assert r.feed(struct.pack(">I", LENGTH_LIMIT) + b"x" * 10) == []
    with pytest.raises(FramingError) as e:
        RecordReader().feed(struct.pack(">I", 70000))
    assert isinstance(e.value, RemoteProtocolError)
    assert "70000" in str(e.value)
