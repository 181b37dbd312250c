"""Delivery among real processes: all but the sender, joins and leaves, policies."""

import os
import socket

from vde_ipn.ipn import (IPN_CHANNEL, IPN_SO_PORT, IPN_VDESWITCH)

SHUT_WR = socket.SHUT_WR


def test_a_message_reaches_every_member_but_its_sender(agent, netdir):
    path = os.path.join(netdir, "bus")
    a, b, c = agent(), agent(), agent()
    a.ok("new"); a.ok("bind", path=path); a.ok("connect")
    for m in (b, c):
        m.ok("new"); m.ok("connect", path=path)
    a.ok("send", data=["hello from a"])
    for m in (b, c):
        assert m.ok("recv")["msgs"] == ["hello from a"]
    assert a.ok("recv", nonblock=True)["status"] == "eagain"      # not echoed
    b.ok("send", data=["from b"])
    assert a.ok("recv")["msgs"] == ["from b"]
    assert c.ok("recv")["msgs"] == ["from b"]
    assert b.ok("recv", nonblock=True)["status"] == "eagain"


def test_members_join_and_leave_at_run_time(agent, netdir):
    path = os.path.join(netdir, "bus")
    p, r1, r2 = agent(), agent(), agent()
    p.ok("new", shutdown=socket.SHUT_RD); p.ok("bind", path=path); p.ok("connect")
    r1.ok("new", shutdown=SHUT_WR); r1.ok("connect", path=path)
    p.ok("send", data=["one"])
    r2.ok("new", shutdown=SHUT_WR); r2.ok("connect", path=path)
    p.ok("send", data=["two"])
    r1.ok("close")
    p.ok("send", data=["three"])
    assert r2.ok("recv", count=2)["msgs"] == ["two", "three"]     # nothing from before it joined
    assert r2.ok("recv", nonblock=True)["status"] == "eagain"
    r3 = agent()
    r3.ok("new"); r3.ok("connect", path=path)
    assert r3.ok("getsockopt", level=0, opt=IPN_SO_PORT)["value"] == 1   # r1's freed port
    p.ok("send", count=3)
    assert r3.ok("recv", count=3)["msgs"] == ["m0", "m1", "m2"]


def test_a_network_lives_while_it_has_nodes(agent, netdir):
    path = os.path.join(netdir, "bus")
    creator, member, late = agent(), agent(), agent()
    creator.ok("new"); creator.ok("bind", path=path)
    member.ok("new"); member.ok("connect", path=path)
    creator.ok("close")                                  # the creator may leave first
    late.ok("new"); late.ok("connect", path=path)
    late.ok("send", data=["still here"])
    assert member.ok("recv")["msgs"] == ["still here"]
    member.ok("close"); late.ok("close")
    other = agent()
    other.ok("new")
    assert os.path.exists(path)                          # the file stays, like AF_UNIX
    assert other.call("connect", path=path)["errno"] == 111   # ECONNREFUSED


def test_vdeswitch_learns_and_sends_known_unicast_to_one_port(agent, netdir):
    path = os.path.join(netdir, "sw")
    a, b, c = agent(), agent(), agent()
    for m in (a, b, c):
        m.ok("new", protocol=IPN_VDESWITCH)
    a.ok("bind", path=path); a.ok("connect")
    b.ok("connect", path=path); c.ok("connect", path=path)
    mac_a, mac_b = "\x02\0\0\0\0\x0a", "\x02\0\0\0\0\x0b"
    bcast = "\xff" * 6 + mac_b + "\x88\xb5" + "hello"
    b.ok("send", data=[bcast])                           # unknown: flooded
    assert a.ok("recv")["msgs"] == [bcast]
    assert c.ok("recv")["msgs"] == [bcast]
    to_b = mac_b + mac_a + "\x88\xb5" + "for b only"
    a.ok("send", data=[to_b])                            # a learned mac_b on b's port
    assert b.ok("recv")["msgs"] == [to_b]
    assert c.ok("recv", nonblock=True)["status"] == "eagain"
    unknown = "\x02\0\0\0\0\x0c" + mac_a + "\x88\xb5" + "flood"
    a.ok("send", data=[unknown])
    assert b.ok("recv")["msgs"] == [unknown]
    assert c.ok("recv")["msgs"] == [unknown]


def test_the_channel_policy_delivers_by_channel_byte(agent, netdir):
    path = os.path.join(netdir, "midi")
    src, ch3, ch5, omni = agent(), agent(), agent(), agent()
    src.ok("new", protocol=IPN_CHANNEL, shutdown=socket.SHUT_RD)
    src.ok("bind", path=path)
    for m, port in ((ch3, 3), (ch5, 5), (omni, 16)):
        m.ok("new", protocol=IPN_CHANNEL, opts=[[0, IPN_SO_PORT, port]], shutdown=SHUT_WR)
        assert m.ok("connect", path=path)["port"] == port
    src.ok("connect")
    note_on_3, note_on_5, clock = "\x93\x40\x7f", "\x95\x40\x7f", "\xf8"
    src.ok("send", data=[note_on_3, note_on_5, clock])
    assert ch3.ok("recv", count=2)["msgs"] == [note_on_3, clock]
    assert ch5.ok("recv", count=2)["msgs"] == [note_on_5, clock]
    assert omni.ok("recv", count=3)["msgs"] == [note_on_3, note_on_5, clock]
    for m in (ch3, ch5, omni):
        assert m.ok("recv", nonblock=True)["status"] == "eagain"


def test_messages_outlive_a_sender_that_left(agent, netdir):
    path = os.path.join(netdir, "bus")
    listener, talker = agent(), agent()
    listener.ok("new", shutdown=SHUT_WR)
    listener.ok("bind", path=path)
    listener.ok("connect")
    listener.start("recv", count=3, timeout=30)          # asleep before any sender exists
    talker.ok("new", shutdown=socket.SHUT_RD)
    talker.ok("connect", path=path)
    talker.ok("send", count=3)
    talker.ok("close")                                   # gone before the listener reads
    assert listener.result()["msgs"] == ["m0", "m1", "m2"]


def test_vdeswitch_unicast_from_a_pure_sender_reaches_one_port(agent, netdir):
    """One MAC table per network: a member that never receives learned nothing,
    yet its frames to a known MAC go to that MAC's port only."""
    path = os.path.join(netdir, "sw")
    a, b, s = agent(), agent(), agent()
    a.ok("new", protocol=IPN_VDESWITCH); a.ok("bind", path=path); a.ok("connect")
    b.ok("new", protocol=IPN_VDESWITCH); b.ok("connect", path=path)
    s.ok("new", protocol=IPN_VDESWITCH, shutdown=socket.SHUT_RD); s.ok("connect", path=path)
    mac_a, mac_s = "\x02\0\0\0\0\x0a", "\x02\0\0\0\0\x05"
    a.ok("send", data=["\xff" * 6 + mac_a + "\x88\xb5" + "a is here"])
    assert b.ok("recv")["msgs"][0].endswith("a is here")
    to_a = mac_a + mac_s + "\x88\xb5" + "for a only"
    s.ok("send", data=[to_a])
    assert a.ok("recv")["msgs"] == [to_a]
    assert b.ok("recv", nonblock=True)["status"] == "eagain"
