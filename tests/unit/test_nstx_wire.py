"""vde_over_ns's DNS datagrams: text encoding, fragments, queries, answers."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vde_ipn.wire import nstx

DOMAIN = "tun.example.vde"
SUFFIX = nstx.domain_labels(DOMAIN)


def test_text_encoding_by_hand():
    # 3 bytes -> 4 letters; the first letter counts the pad bytes
    assert nstx.encode_text(b"") == "a"
    assert nstx.encode_text(b"\x00\x00\x00") == "aaaaa"
    assert nstx.encode_text(b"\xff\xff\xff") == "a0000"
    assert nstx.encode_text(b"\xb4") == "cTaaa"          # 101101|00 0000|...: 45 -> T
    assert nstx.decode_text("cTaaa") == b"\xb4"
    assert set(nstx.encode_text(bytes(range(256)))) <= set(nstx.ALPHABET)


@given(st.binary(max_size=600))
def test_text_round_trip(data):
    text = nstx.encode_text(data)
    assert len(text) == 1 + 4 * ((len(data) + 2) // 3)
    assert nstx.decode_text(text) == data


@pytest.mark.parametrize("bad", ["", "a!bc", "dabcd", "c"])
def test_text_decoding_refuses_junk(bad):
    with pytest.raises(nstx.NstxError):
        nstx.decode_text(bad)


def test_fragment_header_layout():
    f = nstx.pack_fragment(0xABC, 5, True, b"xy")
    assert f == bytes((0xB4, 0x05, 0xBC, 0x1A)) + b"xy"
    assert nstx.parse_fragment(f) == (0xABC, 5, True, b"xy")
    assert nstx.parse_fragment(nstx.pack_fragment(7, 0, False)) == (7, 0, False, b"")
    with pytest.raises(nstx.NstxError):
        nstx.pack_fragment(1, 16, False)
    with pytest.raises(nstx.NstxError):
        nstx.parse_fragment(b"\xb4\x00\x01")


@given(st.binary(max_size=2000), st.integers(1, 0xFFF), st.integers(8, 253))
def test_split_and_join_round_trip(frame, frag_id, room):
    try:
        frags = nstx.split_frame(frame, frag_id, room)
    except nstx.NstxError:
        assert len(frame) // (room - 4) + 1 > nstx.MAX_SEQ
        return
    assert all(len(f) <= room for f in frags)
    assert [nstx.parse_fragment(f)[2] for f in frags] == [False] * (len(frags) - 1) + [True]
    r = nstx.Reassembler()
    got = [r.feed(f, 0.0) for f in reversed(frags)]      # any order
    assert got[:-1] == [None] * (len(frags) - 1) and got[-1] == frame
    assert len(r) == 0


def test_exact_multiple_gets_an_empty_last_fragment():
    frags = nstx.split_frame(b"z" * 10, 3, 9)              # 5 bytes of data each
    assert [len(f) for f in frags] == [9, 9, 4]
    assert nstx.parse_fragment(frags[-1])[2]


def test_reassembler_ignores_id_zero_duplicates_and_expires():
    r = nstx.Reassembler(timeout=30)
    assert r.feed(nstx.FILLER, 0.0) is None and len(r) == 0
    a = nstx.split_frame(b"a" * 20, 9, 14)
    assert r.feed(a[0], 0.0) is None
    assert r.feed(a[0], 1.0) is None                        # duplicate
    assert len(r) == 1
    r.expire(40.0)
    assert len(r) == 0 and r.dropped == 1
    assert r.feed(a[1], 41.0) is None                       # the rest alone never completes
    assert r.feed(nstx.pack_fragment(4, 0, True), 41.0) == b""     # a poll


def test_ids_skip_zero():
    c = nstx.IdCounter(0xFFE)
    assert [c.next(), c.next(), c.next()] == [0xFFF, 1, 2]


def test_domain_labels():
    assert SUFFIX == b"\x03tun\x07example\x03vde\x00"
    assert nstx.domain_labels("tun.example.vde.") == SUFFIX
    for bad in ("", ".", "a..b", "x" * 64 + ".vde"):
        with pytest.raises(nstx.NstxError):
            nstx.domain_labels(bad)


def test_rooms_as_the_c_tool_computes_them():
    # (189 * (254 - 16)) / 256 - 6 = 169; 183 - 189 * 16 / 256 = 172
    assert nstx.query_room(DOMAIN) == 169
    assert nstx.query_room("x") == 180                      # 189 * 252 / 256 - 6
    assert nstx.query_room("x" * 300) == 0
    qname = nstx.data_name(bytes(169), SUFFIX)
    assert len(qname) <= 255
    assert nstx.answer_room(qname) == 512 - 12 - len(qname) - 4 - 14
    assert nstx.answer_room(b"\x01a\x00") == 253


def _label_lengths(labels):
    pos = 0
    while pos < len(labels):
        yield labels[pos]
        pos += 1 + labels[pos]


@given(st.integers(0, 0xFFFF), st.binary(min_size=4, max_size=169))
def test_query_round_trip_and_size(dns_id, data):
    q = nstx.build_query(dns_id, nstx.data_name(data, SUFFIX))
    assert len(q) <= 512
    assert q[2:12] == bytes.fromhex("0100 0001 0000 0000 0000")
    assert q[-4:] == b"\x00\x10\x00\x01"
    got_id, name = nstx.parse_query(q)
    assert got_id == dns_id
    labels = name[:-len(SUFFIX)]
    assert all(0 < n <= 63 for n in _label_lengths(labels))
    assert nstx.name_data(name, SUFFIX) == data


def test_names_under_another_domain_carry_nothing():
    name = nstx.data_name(b"abcd", nstx.domain_labels("other.vde"))
    assert nstx.name_data(name, SUFFIX) is None
    assert nstx.name_data(SUFFIX, SUFFIX) is None
    assert nstx.name_data(b"\x03w!w" + SUFFIX, SUFFIX) is None


@given(st.integers(0, 0xFFFF), st.binary(max_size=253))
def test_answer_round_trip_and_layout(dns_id, fragment):
    qname = nstx.data_name(b"poll", SUFFIX)
    a = nstx.build_answer(dns_id, qname, fragment)
    assert a[2:4] == b"\x84\x80" and a[4:8] == b"\x00\x01\x00\x01"
    at = 12 + len(qname) + 4
    assert a[at:at + 2] == b"\xc0\x0c"
    rdlen = struct.unpack_from(">H", a, at + 10)[0]
    assert a[-1] == 0 and rdlen == len(a) - at - 12
    assert nstx.parse_answer(a) == (dns_id, [fragment])
    assert len(nstx.build_answer(dns_id, qname, bytes(nstx.answer_room(qname)))) <= 512


@given(st.binary(max_size=600))
def test_parsers_never_fail_otherwise(junk):
    for parse in (nstx.parse_query, nstx.parse_answer):
        try:
            parse(junk)
        except nstx.NstxError:
            pass


def test_compressed_name_pointer_loop_is_refused():
    msg = struct.pack(">HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + bytes(4)
    with pytest.raises(nstx.NstxError):
        nstx.parse_query(msg)


def test_feeding_forgets_frames_that_waited_too_long():
    r = nstx.Reassembler(timeout=30)
    a = nstx.split_frame(b"a" * 20, 9, 14)
    assert r.feed(a[0], 0.0) is None
    assert r.feed(nstx.split_frame(b"b" * 20, 10, 14)[0], 20.0) is None
    assert len(r) == 2 and r.dropped == 0
    assert r.feed(nstx.pack_fragment(11, 0, True), 31.0) == b""
    assert len(r) == 1 and r.dropped == 1          # id 9 went, id 10 stays
    assert r.feed(a[1], 31.5) is None              # its first piece is gone
