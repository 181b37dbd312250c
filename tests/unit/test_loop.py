"""The event loop: readiness reaches the right callbacks, with epoll read
directly (Linux) as through the selector's own ``select``."""

from __future__ import annotations

import selectors
import socket

import pytest

from support import dgram_pair as pair, loop_turn as turn
from vde_ipn.io.loop import Loop

KINDS = ["epoll", "generic"]


@pytest.fixture(params=KINDS)
def loop(request, monkeypatch):
    if request.param == "generic":
        # a selector that is not epoll: the loop must go through select()
        monkeypatch.setattr(selectors, "DefaultSelector", selectors.PollSelector)
    lp = Loop()
    assert isinstance(lp._sel, selectors.EpollSelector) == (request.param == "epoll")
    yield lp
    lp.close()


def test_reader_and_writer_called_on_their_events(loop):
    a, b = pair()
    calls = []
    loop.add_reader(b, lambda now: calls.append(("read", b.recv(100))))
    turn(loop)
    assert calls == []                           # nothing to read yet
    a.send(b"x")
    turn(loop)
    assert calls == [("read", b"x")]
    loop.add_writer(b, lambda now: calls.append("write"))
    turn(loop)
    assert calls[-1] == "write"                  # b's queue has room
    loop.remove_writer(b)
    loop.remove_reader(b)
    a.send(b"y")
    n = len(calls)
    turn(loop)
    assert len(calls) == n                       # no longer watched
    a.close()
    b.close()


def test_a_hang_up_reaches_the_reader(loop):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    b.setblocking(False)
    got = []
    loop.add_reader(b, lambda now: got.append(b.recv(100)))
    a.close()
    turn(loop)
    assert got == [b""]
    loop.forget(b)
    b.close()


def test_a_callback_forgetting_another_fd_stops_its_pending_event(loop):
    """Both sockets are ready in the same turn; whichever runs first forgets
    the other, whose callback must then not run."""
    (a1, b1), (a2, b2) = pair(), pair()
    ran = []

    def first(now):
        ran.append(1)
        loop.forget(b2)
        loop.forget(b1)

    def second(now):
        ran.append(2)
        loop.forget(b1)
        loop.forget(b2)
    loop.add_reader(b1, first)
    loop.add_reader(b2, second)
    a1.send(b"x")
    a2.send(b"y")
    turn(loop)
    assert len(ran) == 1
    for s in (a1, b1, a2, b2):
        s.close()


def test_timers_run_in_order_and_cancelled_ones_do_not(loop):
    ran = []
    loop.call_later(0.02, lambda now: ran.append("late"))
    h = loop.call_later(0.01, lambda now: ran.append("cancelled"))
    loop.call_later(0.0, lambda now: ran.append("first"))
    loop.cancel(h)
    loop.call_later(0.03, lambda now: loop.stop())
    loop.run()
    assert ran == ["first", "late"]


def test_more_ready_fds_than_one_turn_reports_are_all_served(loop):
    """epoll is asked for at most MAX_EVENTS per turn: the others stay
    ready and are served in the next turns, none left behind."""
    from vde_ipn.io.loop import MAX_EVENTS
    n = MAX_EVENTS + 44
    socks, got = [], set()
    for i in range(n):
        a, b = pair()
        socks += [a, b]
        loop.add_reader(b, lambda now, b=b, i=i: (b.recv(10), got.add(i)))
        a.send(b"x")
    turns = 0
    while len(got) < n and turns < 10:
        turn(loop)
        turns += 1
    assert got == set(range(n))
    assert turns >= 2 if isinstance(loop._sel, selectors.EpollSelector) else turns >= 1
    for s in socks:
        s.close()
