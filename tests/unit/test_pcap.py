"""The pcap codec: round trips, foreign files (byte order, nanoseconds), bad input."""

import io
import struct

import pytest
from hypothesis import given, strategies as st

from vde_ipn._errors import RemoteProtocolError
from vde_ipn.wire import pcap


def test_round_trip():
    frames = [bytes(range(60)), b"\xff" * 1514, bytes(9234)]
    buf = io.BytesIO()
    buf.write(pcap.encode_file_header())
    for i, f in enumerate(frames):
        buf.write(pcap.encode_record(1700000000.25 + i, f))
    buf.seek(0)
    header, records = pcap.read_records(buf)
    got = list(records)
    assert header == pcap.FileHeader(byteorder="<")
    assert [r.data for r in got] == frames
    assert [r.length for r in got] == [60, 1514, 9234]
    assert [r.time for r in got] == [1700000000.25, 1700000001.25, 1700000002.25]


def test_snaplen_cuts_the_capture_not_the_length():
    rec = pcap.encode_record(1.0, bytes(100), snaplen=64)
    assert struct.unpack_from("=IIII", rec) == (1, 0, 64, 100) and len(rec) == 16 + 64


def test_big_endian_nanosecond_file():
    data = struct.pack(">IHHiIII", pcap.MAGIC_NSEC, 2, 4, 0, 0, 65535, 1)
    data += struct.pack(">IIII", 5, 500_000_000, 3, 3) + b"abc"
    header, records = pcap.read_records(io.BytesIO(data))
    assert header.nanoseconds and header.byteorder == ">"
    assert list(records) == [pcap.Record(5.5, b"abc", 3)]


def test_not_a_pcap_file_and_truncated_records():
    with pytest.raises(RemoteProtocolError):
        pcap.read_records(io.BytesIO(b"\x0a\x0d\x0d\x0a" + bytes(20)))   # pcapng
    cut = pcap.encode_file_header() + pcap.encode_record(1, bytes(60))[:40]
    _h, records = pcap.read_records(io.BytesIO(cut))
    with pytest.raises(RemoteProtocolError):
        list(records)


def test_usec_rounding_stays_below_a_second():
    rec = pcap.encode_record(1.9999999999, b"x" * 14)
    sec, usec, _cap, _n = struct.unpack_from("=IIII", rec)
    assert usec < 1_000_000 and sec + usec / 1e6 == pytest.approx(2.0, abs=1e-5)


@given(st.binary(max_size=64))
def test_any_bytes_decode_or_raise_our_error(data):
    try:
        _h, records = pcap.read_records(io.BytesIO(data))
        list(records)
    except RemoteProtocolError:
        pass
