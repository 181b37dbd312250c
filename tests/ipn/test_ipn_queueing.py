"""Lossless and lossy queueing, numnodes OOB, crashed members, stale files."""

import errno
import os
import socket
import struct

from vde_ipn.ipn import (IPN_FLAG_LOSSLESS, IPN_SO_FLAGS, IPN_SO_HANDLE_OOB,
                         IPN_SO_WANT_OOB_NUMNODES)

LOSSLESS = [[0, IPN_SO_FLAGS, IPN_FLAG_LOSSLESS]]
OOB_OPTS = [[0, IPN_SO_HANDLE_OOB, 1], [0, IPN_SO_WANT_OOB_NUMNODES, 1]]
MANY = 20000          # more than a ring holds (8192 short entries)


def producer(agent, path, opts=()):
    p = agent()
    p.ok("new", opts=list(opts), shutdown=socket.SHUT_RD)
    p.ok("bind", path=path)
    p.ok("connect")
    return p


def reader(agent, path):
    r = agent()
    r.ok("new", shutdown=socket.SHUT_WR)
    r.ok("connect", path=path)
    return r


def test_lossless_never_loses_with_a_slow_receiver(agent, netdir):
    path = os.path.join(netdir, "bus")
    p = producer(agent, path, LOSSLESS)
    fast, slow = reader(agent, path), reader(agent, path)
    fast.start("recv", count=MANY, summary=True, timeout=60)
    slow.start("recv", count=MANY, summary=True, timeout=60, slow=0.00005)
    assert p.ok("send", count=MANY, timeout=120)["sent"] == MANY
    for r in (fast, slow):
        got = r.result(120)
        assert (got["n"], got["in_order"], got["last"]) == (MANY, True, ["m%d" % (MANY - 1)])
        assert r.ok("stats")["lost"] == 0


def test_a_nonblocking_lossless_sender_gets_eagain_and_nothing_is_lost(agent, netdir):
    path = os.path.join(netdir, "bus")
    p = producer(agent, path, LOSSLESS)
    idle = reader(agent, path)                          # connected, not reading yet
    first = p.ok("send", count=MANY, nonblock=True)
    assert first["eagain"] and 8 <= first["sent"] < MANY
    got = idle.ok("recv", count=MANY, nonblock=True, summary=True)
    assert (got["n"], got["in_order"], got["status"]) == (first["sent"], True, "eagain")
    assert p.ok("send", count=1, prefix="again", nonblock=True)["sent"] == 1


def test_lossy_drops_for_the_slow_receiver_only_and_counts_it(agent, netdir):
    path = os.path.join(netdir, "bus")
    p = producer(agent, path)
    fast, slow = reader(agent, path), reader(agent, path)
    fast.start("recv", count=MANY, summary=True, timeout=60)
    assert p.ok("send", count=MANY, pace=500)["sent"] == MANY   # never blocks
    got = fast.result(120)
    assert (got["n"], got["in_order"]) == (MANY, True)
    assert fast.ok("stats")["lost"] == 0
    late = slow.ok("recv", count=MANY, nonblock=True, summary=True)
    assert 0 < late["n"] < MANY and late["in_order"]
    assert late["last"] == ["m%d" % (MANY - 1)]
    assert slow.ok("stats")["lost"] == MANY - late["n"]


def oob_counts(member):
    reply = member.ok("recv")
    assert reply["flags"] == [socket.MSG_OOB]
    return struct.unpack("=iiii", reply["msgs"][0].encode("latin-1"))[2:]


def test_numnodes_oob_follows_readers_and_writers(agent, netdir):
    path = os.path.join(netdir, "bus")
    p = producer(agent, path, OOB_OPTS)
    assert oob_counts(p) == (0, 1)
    r1 = reader(agent, path)
    assert oob_counts(p) == (1, 1)
    r2 = agent()
    r2.ok("new")
    r2.ok("connect", path=path)
    assert oob_counts(p) == (2, 2)
    r2.ok("shutdown", how=socket.SHUT_WR)
    assert oob_counts(p) == (2, 1)
    r1.ok("close")
    assert oob_counts(p) == (1, 1)
    r2.start("recv", timeout=60)                         # asleep in recv when killed
    r2.kill()
    p.ok("send", data=["anyone?"])                       # the doorbell finds it dead
    assert oob_counts(p) == (0, 1)                       # so the producer can stop


def test_a_killed_receiver_does_not_block_a_lossless_network(agent, netdir):
    path = os.path.join(netdir, "bus")
    p = producer(agent, path, LOSSLESS)
    good, doomed = reader(agent, path), reader(agent, path)
    good.start("recv", count=MANY, summary=True, timeout=60)
    p.start("send", count=MANY)                          # will block on doomed
    doomed.kill()
    sent = p.result(120)
    assert sent["ok"] and sent["sent"] == MANY
    got = good.result(120)
    assert (got["n"], got["in_order"]) == (MANY, True)
    late = reader(agent, path)                            # the network still works
    p.ok("send", data=["after"])
    assert late.ok("recv")["msgs"] == ["after"]


def test_a_killed_sender_leaves_the_others_working(agent, netdir):
    path = os.path.join(netdir, "bus")
    p = producer(agent, path)
    r = reader(agent, path)
    w = agent()
    w.ok("new", shutdown=socket.SHUT_RD)
    w.ok("connect", path=path)
    w.ok("send", data=["last words"])
    w.kill()
    assert r.ok("recv")["msgs"] == ["last words"]
    p.ok("send", data=["still flowing"])
    assert r.ok("recv")["msgs"] == ["still flowing"]


def test_stale_socket_file_after_every_member_died(agent, netdir):
    path = os.path.join(netdir, "bus")
    members = [producer(agent, path), reader(agent, path)]
    for m in members:
        m.kill()
    assert os.path.exists(path)
    probe = agent()
    probe.ok("new")
    assert probe.call("connect", path=path)["errno"] == errno.ECONNREFUSED
    assert probe.call("bind", path=path)["errno"] == errno.ECONNREFUSED
    os.unlink(path)                                      # as with AF_UNIX, the user unlinks
    probe.ok("bind", path=path)
    probe.ok("connect")
    r = reader(agent, path)
    probe.ok("send", data=["fresh"])
    assert r.ok("recv")["msgs"] == ["fresh"]
