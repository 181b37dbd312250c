"""wire/: the ctl request/reply codec and the vdestream framing."""

import struct

from hypothesis import example, given
from hypothesis import strategies as st
import pytest

from vde_ipn._errors import LocalProtocolError, RemoteProtocolError
from vde_ipn.wire import stream, vde_ctl

# vde_plug 4.0.1 -> vde_switch 2.3.2, any port (wire-protocol reference, section 11)
CAPTURED_REQUEST = bytes.fromhex(
    "cefaedfe03000000000000000100") + b"/tmp/refsw/.01718-00000".ljust(108, b"\0") \
    + b"vdeplug: user=root pid=1718"


def test_captured_request_decodes():
    req = vde_ctl.decode_request(CAPTURED_REQUEST)
    assert len(CAPTURED_REQUEST) == 149
    assert req.version == 3 and req.port is None
    assert req.kind is vde_ctl.RequestKind.NEW_CONTROL
    assert req.path == "/tmp/refsw/.01718-00000" and not req.abstract
    assert req.description == "vdeplug: user=root pid=1718"


def test_encode_matches_captured_bytes():
    assert vde_ctl.encode_request("/tmp/refsw/.01718-00000",
                                  description="vdeplug: user=root pid=1718") == CAPTURED_REQUEST


@pytest.mark.parametrize("port,word", [(None, b"\0\0\0\0"), (5, b"\0\x05\0\0"),
                                       (0, b"\x01\0\0\0"), (300, b"\0\x2c\x01\0")])
def test_port_encoding(port, word):
    raw = vde_ctl.encode_request("/x", port=port)
    assert raw[8:12] == word
    assert vde_ctl.decode_request(raw).port == port


def test_reply_is_110_bytes():
    raw = vde_ctl.encode_reply("/tmp/sw/001.6")
    assert len(raw) == 110 and raw[:2] == b"\x01\x00" and raw[2:15] == b"/tmp/sw/001.6"
    assert vde_ctl.decode_reply(raw) == "/tmp/sw/001.6"


def test_abstract_address_kept_byte_for_byte():
    addr = b"\0" + struct.pack("=ii", 1234, 5678) + b"\x07" * 99
    req = vde_ctl.decode_request(vde_ctl.encode_request(addr))
    assert req.abstract and req.path is None and req.sockaddr == addr
    assert req.description == ""


def test_v1_request():
    raw = struct.pack("=II6sH108s", vde_ctl.MAGIC, 0, b"\x02" * 6, 1,
                      b"/tmp/c".ljust(108, b"\0")) + b"old client"
    req = vde_ctl.decode_request(raw)
    assert (req.version, req.port, req.path, req.description) == (1, None, "/tmp/c", "old client")


@pytest.mark.parametrize("raw,msg", [
    (b"\0" * 122, "V0 request not supported"),
    (struct.pack("=II", vde_ctl.MAGIC, 2) + b"\0" * 114, "version 2 port"),
    (struct.pack("=IIi", vde_ctl.MAGIC, 3, 7) + b"\0" * 110, "Bad request type : 7"),
    (struct.pack("=II", vde_ctl.MAGIC, 3) + b"\0" * 20, "short ctl request"),
])
def test_bad_requests(raw, msg):
    with pytest.raises(RemoteProtocolError, match=msg):
        vde_ctl.decode_request(raw)


def test_need_more_waits_for_the_fixed_part():
    raw = vde_ctl.encode_request("/x")
    assert all(vde_ctl.need_more(raw[:n]) for n in range(0, 122))
    assert not vde_ctl.need_more(raw)
    assert not vde_ctl.need_more(b"\0\0\0\0")        # wrong magic: decide now


def test_too_long_path_is_refused():
    with pytest.raises(LocalProtocolError):
        vde_ctl.encode_request("/" + "x" * 108)


@given(st.binary(max_size=300))
@example(b"\xce\xfa\xed\xfe")
@example(b"\xce\xfa\xed\xfe\x01\x00\x00\x00")
def test_decoder_is_total(raw):
    """Any bytes decode or raise our own error, never anything else."""
    try:
        vde_ctl.decode_request(raw)
    except RemoteProtocolError:
        pass


@given(st.one_of(st.none(), st.integers(0, (1 << 23) - 1)),
       st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=127),
       st.text(alphabet="abc/._-", min_size=1, max_size=100))
def test_request_round_trip(port, descr, path):
    req = vde_ctl.decode_request(vde_ctl.encode_request("/" + path, port=port, description=descr))
    assert (req.port, req.description, req.path) == (port, descr, "/" + path)


# -- vdestream -------------------------------------------------------------------
@given(st.lists(st.binary(min_size=1, max_size=1600), max_size=20), st.data())
def test_stream_reassembles_any_chunking(frames, data):
    raw = b"".join(stream.encode(f) for f in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=10)))
    dec, out, pos = stream.StreamDecoder(), [], 0
    for cut in cuts + [len(raw)]:
        out += dec.feed(raw[pos:cut])
        pos = cut
    assert out == frames and dec.pending == 0


def test_stream_skips_empty_records_and_drops_after_a_bad_length():
    dec = stream.StreamDecoder(max_len=100)
    good = stream.encode(b"x" * 20)
    assert dec.feed(b"\0\0" + good) == [b"x" * 20]
    assert dec.feed(good + b"\x01\x00" + b"junk" + good) == [b"x" * 20]   # rest of the read lost
    assert dec.errors == 1
    assert dec.feed(good) == [b"x" * 20]                                   # and it recovers
