"""Streams with bursts and pauses, each member a process of its own.

A receiver that keeps up with a stream watches the ring a little before
it arms its doorbell; one that falls behind reads without any.  Senders
here send in bursts separated by pauses of every length around that
watch, so receivers cross between reading, watching, arming and being
woken thousands of times: every message must arrive, once and in order,
a readable descriptor must never be followed by a recv that blocks (the
loop would hang), and no wake-up may be lost (the loop would see silence
before the end).  Also: threads sharing one receiving socket.
"""

import os
import socket

import pytest

from vde_ipn.ipn import IPN_FLAG_LOSSLESS, IPN_SO_FLAGS

LOSSLESS = [[0, IPN_SO_FLAGS, IPN_FLAG_LOSSLESS]]
COUNT = 18000


def node(agent, path, shutdown, bind=False, opts=()):
    a = agent()
    a.ok("new", opts=list(opts), shutdown=shutdown)
    if bind:
        a.ok("bind", path=path)
        a.ok("connect")
    else:
        a.ok("connect", path=path)
    return a


@pytest.mark.parametrize("style", ["recv", "select", "epoll"])
@pytest.mark.parametrize("receivers", [1, 2])
def test_bursts_and_pauses_lose_nothing_and_never_hang(agent, netdir, style, receivers):
    path = os.path.join(netdir, "bus")
    sender = node(agent, path, socket.SHUT_RD, bind=True, opts=LOSSLESS)
    rs = [node(agent, path, socket.SHUT_WR) for _ in range(receivers)]
    for r in rs:
        if style == "recv":
            r.start("recv", count=COUNT, timeout=5.0, summary=True)
        else:
            r.start("newcomer", how=style, wait=5.0)
    part = COUNT // 3
    for seed in range(3):                      # three streams, the receivers stay
        assert sender.ok("send_bursts", count=part, seed=seed, start=seed * part,
                         timeout=300)["sent"] == part
    for r in rs:
        got = r.result(300)
        if style == "recv":
            assert (got["n"], got["status"]) == (COUNT, "done")
            assert got["in_order"] and got["last"] == ["m%d" % (COUNT - 1)]
        else:
            assert got["n"] == COUNT and got["in_order"], (got["n"], got["last"])


@pytest.mark.parametrize("use_select", [False, True], ids=["recv", "select+recv"])
def test_threads_receiving_on_one_socket_share_the_messages_exactly(agent, netdir, use_select):
    path = os.path.join(netdir, "bus")
    owner = node(agent, path, socket.SHUT_WR, bind=True, opts=LOSSLESS)
    s = node(agent, path, socket.SHUT_RD)
    n = 12000
    owner.start("thread_recv", threads=3, count=n, timeout=20.0, use_select=use_select)
    assert s.ok("send_bursts", count=n, seed=7, timeout=300)["sent"] == n
    got = owner.result(300)
    assert got["errors"] == []
    every = [m for per in got["got"] for m in per]
    assert sorted(every) == sorted("m%d" % i for i in range(n))      # each exactly once
    for per in got["got"]:                    # each thread sees the stream's order
        assert [int(m[1:]) for m in per] == sorted(int(m[1:]) for m in per)


def test_a_reader_left_with_messages_for_others_only_is_not_readable(agent, netdir):
    """Channel bus: two messages for port 1, then one for port 2 only.  After
    reading its two, port 1 must not look readable (a blocking recv after
    select would hang, and the agent never answer)."""
    from vde_ipn.ipn import IPN_CHANNEL, IPN_SO_PORT
    path = os.path.join(netdir, "bus")
    src = agent()
    src.ok("new", protocol=IPN_CHANNEL, shutdown=socket.SHUT_RD)
    src.ok("bind", path=path)
    src.ok("connect")
    rs = []
    for port in (1, 2):
        r = agent()
        r.ok("new", protocol=IPN_CHANNEL, opts=[[0, IPN_SO_PORT, port]], shutdown=socket.SHUT_WR)
        r.ok("connect", path=path)
        rs.append(r)
    for _round in range(3):
        assert src.ok("send", data=["\x91a", "\x91b", "\x92x"])["sent"] == 3
        rs[0].start("newcomer", how="select", wait=1.0)
        got = rs[0].result(30)
        assert (got["n"], got["last"]) == (2, ["\x91b"])
        assert rs[1].ok("recv", count=1, timeout=5)["msgs"] == ["\x92x"]
