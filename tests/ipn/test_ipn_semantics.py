"""Kernel socket semantics users rely on, each member a process of its own.

Readiness (a readable descriptor means recv will not block), a sender
taking over the port of a killed one, sockets shared by threads, and
SOL_SOCKET options.
"""

import os
import socket
import struct

import pytest

from vde_ipn.ipn import IPN_FLAG_LOSSLESS, IPN_SO_FLAGS

LOSSLESS = [[0, IPN_SO_FLAGS, IPN_FLAG_LOSSLESS]]


def creator(agent, path, opts=(), shutdown=None):
    c = agent()
    c.ok("new", opts=list(opts), shutdown=shutdown)
    c.ok("bind", path=path)
    c.ok("connect")
    return c


def member(agent, path, shutdown=None, opts=()):
    m = agent()
    m.ok("new", opts=list(opts), shutdown=shutdown)
    m.ok("connect", path=path)
    return m


@pytest.mark.parametrize("how", ["select", "poll", "epoll", "selectors", "asyncio",
                                 "dontwait"])
@pytest.mark.parametrize("opts", [[], LOSSLESS], ids=["lossy", "lossless"])
def test_the_newcomer_loop_ends_when_the_messages_do(agent, netdir, how, opts):
    path = os.path.join(netdir, "bus")
    sender = creator(agent, path, opts, shutdown=socket.SHUT_RD)
    r = member(agent, path, shutdown=socket.SHUT_WR)
    r.start("newcomer", how=how, wait=4.0)
    assert sender.ok("send", count=300)["sent"] == 300
    got = r.result(60)                       # a recv that blocks never answers
    assert got["ok"] and got["n"] == 300 and got["last"] == ["m299"]


@pytest.mark.parametrize("use_select", [False, True], ids=["recv", "select+recv"])
def test_no_lost_wakeup_in_a_long_ping_pong(agent, netdir, use_select):
    """Every round trip needs two wake-ups; one lost stalls the game for good."""
    path = os.path.join(netdir, "bus")
    a = creator(agent, path)
    b = member(agent, path)
    rounds = 3000
    b.start("pingpong", rounds=rounds, serve=True, use_select=use_select)
    res = a.ok("pingpong", rounds=rounds, use_select=use_select, timeout=300)
    assert res["stalled_at"] is None
    assert b.result(60)["stalled_at"] is None
    assert res["worst"] < 5.0                # under load; a lost wake-up is "forever"


@pytest.mark.parametrize("opts", [[], LOSSLESS], ids=["lossy", "lossless"])
def test_a_sender_that_takes_the_port_of_a_killed_one_is_heard(agent, netdir, opts):
    path = os.path.join(netdir, "bus")
    owner = creator(agent, path, opts, shutdown=socket.SHUT_RD)
    r = member(agent, path, shutdown=socket.SHUT_WR)
    ports = set()
    for i in range(10):
        s = member(agent, path, shutdown=socket.SHUT_RD)
        ports.add(s.ok("stats")["port"])
        # more than a ring on a lossless network: a stalled sender never answers
        n = 9000 if opts else 50
        s.start("send", count=n)
        got = r.ok("recv", count=n, summary=True, timeout=30)
        assert (got["n"], got["status"], got["in_order"]) == (n, "done", True), i
        assert (got["first"], got["last"]) == (["m0"], ["m%d" % (n - 1)])
        assert s.result(60)["sent"] == n
        s.kill()
    assert len(ports) == 1                   # every replacement took the same port
    owner.ok("close")


def test_two_threads_sending_on_one_socket_lose_nothing(agent, netdir):
    path = os.path.join(netdir, "bus")
    owner = creator(agent, path, LOSSLESS, shutdown=socket.SHUT_WR)
    s = member(agent, path, shutdown=socket.SHUT_RD)
    for _round in range(5):
        owner.start("recv", count=12000, timeout=20, summary=False)
        assert s.ok("thread_send", threads=4, count=3000, timeout=120)["errors"] == []
        got = owner.result(120)
        msgs = got["msgs"]
        assert len(msgs) == 12000, (len(msgs), got["status"])
        for t in range(4):                    # each thread's messages, all and in order
            mine = [m for m in msgs if m.startswith("t%d-" % t)]
            assert mine == ["t%d-%d" % (t, i) for i in range(3000)]


def test_sol_socket_receive_timeout_is_the_generic_option(agent, netdir):
    path = os.path.join(netdir, "bus")
    creator(agent, path)
    r = member(agent, path, shutdown=socket.SHUT_WR)
    tv = struct.pack("@ll", 0, 300000).decode("latin-1")
    r.ok("setsockopt", level=socket.SOL_SOCKET, opt=socket.SO_RCVTIMEO, value=tv)
    got = r.ok("getsockopt_raw", level=socket.SOL_SOCKET, opt=socket.SO_RCVTIMEO,
               buflen=len(tv))
    assert got["value"] == tv
    res = r.ok("recv_plain", timeout=30)
    assert res["status"] == "timeout" and 0.25 <= res["secs"] < 10
    typ = r.ok("getsockopt", level=socket.SOL_SOCKET, opt=socket.SO_TYPE)["value"]
    assert typ == socket.SOCK_RAW


def test_numnodes_reports_a_killed_consumer_while_the_network_is_idle(agent, netdir):
    from vde_ipn.ipn import IPN_SO_HANDLE_OOB, IPN_SO_WANT_OOB_NUMNODES
    import time
    path = os.path.join(netdir, "bus")
    oob = [[0, IPN_SO_HANDLE_OOB, 1], [0, IPN_SO_WANT_OOB_NUMNODES, 1]]
    producer = creator(agent, path, oob, shutdown=socket.SHUT_RD)

    def counts():
        reply = producer.ok("recv", timeout=10)
        assert reply["flags"] == [socket.MSG_OOB], reply
        return struct.unpack("=iiii", reply["msgs"][0].encode("latin-1"))[2:]
    assert counts() == (0, 1)
    consumer = member(agent, path, shutdown=socket.SHUT_WR)
    assert counts() == (1, 1)
    consumer.start("recv", timeout=60)                 # asleep in recv, nobody sends
    t0 = time.monotonic()
    consumer.kill()
    assert counts() == (0, 1)                          # without anyone sending
    assert time.monotonic() - t0 < 5.0                 # 1 s on an idle machine


@pytest.mark.parametrize("how", ["poll", "select", "epoll"])
def test_a_full_lossless_network_is_not_writable(agent, netdir, how):
    path = os.path.join(netdir, "bus")
    owner = creator(agent, path, LOSSLESS, shutdown=socket.SHUT_WR)    # reads, later
    s = member(agent, path, shutdown=socket.SHUT_RD)
    assert s.ok("writable", how=how)["writable"]
    first = s.ok("send", count=100000, nonblock=True)
    assert first["eagain"]
    assert not s.ok("writable", how=how, timeout=0.5)["writable"]      # send would block
    got = owner.ok("recv", count=first["sent"], summary=True, timeout=30)
    assert (got["n"], got["in_order"]) == (first["sent"], True)
    assert s.ok("writable", how=how, timeout=10)["writable"]          # room again
    assert s.ok("send", count=10, nonblock=True)["sent"] == 10
