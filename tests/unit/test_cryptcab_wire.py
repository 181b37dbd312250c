"""vde_cryptcab's datagrams: layout, round trip, tampering."""

import os
import struct
import zlib

import pytest

from vde_ipn.wire import cryptcab as cc


def test_data_layout_and_round_trip():
    c = cc.Cipher(bytes(range(16)), bytes(range(8)))
    frame = bytes(range(60))
    d = cc.encode_data(frame, 7, c)
    assert d[0] == 0x20 and (len(d) - 1) % 8 == 0 and len(d) - 1 == 80     # 72 + a pad block
    plain = c.decrypt(d[1:])
    assert plain[:60] == frame and struct.unpack("<Q", plain[60:68])[0] == 7
    assert plain[68:] == struct.pack("<I", zlib.crc32(plain[:68]))
    assert cc.decode_data(d, c) == (frame, 7)
    assert cc.decode_data(cc.encode_data(frame, 1, None), None) == (frame, None)


def test_tampering_and_wrong_keys_are_refused():
    c = cc.Cipher(os.urandom(16), os.urandom(8))
    other = cc.Cipher(os.urandom(16), os.urandom(8))
    d = bytearray(cc.encode_data(b"x" * 100, 3, c))
    with pytest.raises(cc.CryptError):
        cc.decode_data(bytes(d), other)
    d[20] ^= 1
    with pytest.raises(cc.CryptError):
        cc.decode_data(bytes(d), c)
    for junk in (b"\x20", b"\x20" + bytes(7), b"\x20" + bytes(9)):
        with pytest.raises(cc.CryptError):
            cc.decode_data(junk, c)


def test_login_and_key_file():
    assert cc.login("vde_ab12CD") == b"\x41vde_ab12CD" + bytes(6)
    assert cc.login_id(cc.login("vde_ab12CD")) == "vde_ab12CD"
    key, iv = cc.split_key_file(bytes(range(30)))
    assert key == bytes(range(16)) and iv == bytes(range(16, 24))
    with pytest.raises(ValueError):
        cc.split_key_file(bytes(23))
