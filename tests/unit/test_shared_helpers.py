"""The helpers several products share: C numbers, the 802.1Q tag, MAC
learning, the control request reassembly and the argv word scanners."""

import struct

import pytest

from vde_ipn.cli._switch_args import _extension_words, _grab_words
from vde_ipn.engine.mac_table import MacTable
from vde_ipn.io.switch.ctl import request_incomplete
from vde_ipn.wire import vde_ctl
from vde_ipn.wire.c_numbers import atoi, scan_int, scan_octal, strtol
from vde_ipn.wire.ethernet import ETH_HLEN, add_tag, strip_tag, vlan_of

A, B = b"\x02\0\0\0\0\x0a", b"\x02\0\0\0\0\x0b"


@pytest.mark.parametrize("text,value", [
    ("42", 42), ("  -7x", -7), ("+3", 3), ("0x10", 0), ("", 0), ("abc", 0), ("\t\n12", 12)])
def test_atoi_reads_leading_decimal_digits(text, value):
    assert atoi(text) == value


@pytest.mark.parametrize("text,value", [
    ("17", 17), ("0x11", 17), ("021", 17), ("-0x1f", -31), ("0", 0), ("zz", None)])
def test_scan_int_and_strtol(text, value):
    assert scan_int(text) == value
    assert strtol(text) == (0 if value is None else value)


def test_scan_octal():
    assert scan_octal("0755") == 0o755 and scan_octal("8") is None


def test_a_tag_is_added_read_and_stripped():
    frame = A + B + b"\x08\x00" + bytes(46)
    assert vlan_of(frame) is None
    tagged = add_tag(frame, 0x123)
    assert tagged[12:16] == b"\x81\x00\x01\x23" and len(tagged) == len(frame) + 4
    assert vlan_of(tagged) == 0x123
    assert strip_tag(tagged) == frame
    assert add_tag(frame, 5, tpid=0x88A8)[12:14] == b"\x88\xa8"
    assert vlan_of(add_tag(frame, 5, tpid=0x88A8)) is None        # 802.1ad is not 802.1Q
    assert vlan_of(frame[:12] + b"\x81\x00\x00") is None           # too short for a tag
    assert ETH_HLEN == 14


def test_mac_learning_rule():
    t = MacTable()
    table = t.vlans.setdefault(1, {})
    assert t.learn(table, 1, A, 3, 10.0) is True                    # new
    assert t.learn(table, 1, A, 3, 11.0) is False and table[A] == [3, 11.0]   # refreshed
    assert t.learn(table, 1, A, 4, 12.0, min_persistence=3.0) is False
    assert table[A] == [3, 11.0]                                   # too soon to move
    t.learn(table, 1, A, 4, 15.0, min_persistence=3.0)
    assert table[A] == [4, 15.0]                                   # moved
    t.learn(table, 1, A, 5, 15.0)                                  # no persistence: at once
    assert table[A] == [5, 15.0]
    assert t.forget_port(4) == [] and t.forget_port(5) == [(1, A, 5)] and not table


def test_a_request_is_awaited_until_complete_or_hopeless():
    raw = vde_ctl.encode_request("/tmp/x", port=3)
    for cut in range(1, len(raw)):
        assert request_incomplete(bytearray(raw[:cut])), cut
    assert not request_incomplete(bytearray(raw))
    bad_version = bytearray(raw[:8])
    struct.pack_into("=I", bad_version, 4, 7)
    assert not request_incomplete(bad_version)                     # can never become valid


def test_argv_word_scanners():
    assert _grab_words(["-s", "--grab", "--grab", "eth0", "--grab=x", "--", "--grab"]) == \
        ["-s", "--grab", "-G", "eth0", "-G", "x", "--", "--grab"]
    assert _extension_words(["--dump", "f", "-m", "--dump", "--monitor=1", "--dump"]) == \
        ["\0dump=f", "-m", "--dump", "\0monitor=1", "--dump"]
