"""The socket API's contract: errno values, options, fileno readiness.

These run in one process (the calls and their errors are the subject);
the multi-process behaviour is in the other test_ipn_* files.
"""

import asyncio
import errno
import os
import select
import selectors

import pytest

from vde_ipn import ipn


def err(call, *args):
    with pytest.raises(OSError) as info:
        call(*args)
    return info.value.errno


@pytest.fixture
def net(netdir):
    path = os.path.join(netdir, "bus")
    socks = []

    def member(protocol=ipn.IPN_BROADCAST):
        s = ipn.socket(protocol)
        socks.append(s)
        return s
    yield path, member
    for s in socks:
        s.close()


def test_state_errors(net):
    path, member = net
    a = member()
    assert err(a.send, b"x") == errno.ENOTCONN
    assert err(a.recv, 10) == errno.ENOTCONN
    assert err(a.connect) == errno.EINVAL
    a.bind(path)
    assert err(a.bind, path) == errno.EISCONN
    assert err(a.setsockopt, 0, ipn.IPN_SO_MTU, 100) == errno.EISCONN
    a.connect()
    assert err(a.connect, path) == errno.EISCONN
    assert err(a.send, b"x" * 1515) == errno.EOVERFLOW
    assert a.send(b"x" * 1514) == 1514
    assert a.getsockname() == path
    assert err(ipn.socket, 5) == errno.EPROTONOSUPPORT
    assert err(a.setsockopt, 7, 0, 0) == errno.EPROTONOSUPPORT
    # level 1 is SOL_SOCKET before any protocol (as in the kernel): option 0 is unknown there
    assert err(a.setsockopt, ipn.IPN_BROADCAST, 0, 0) == errno.ENOPROTOOPT


def test_not_an_ipn_socket_and_missing_paths(net, netdir):
    path, member = net
    plain = os.path.join(netdir, "plain")
    open(plain, "w").close()
    assert err(member().connect, plain) == errno.ECONNREFUSED
    assert err(member().connect, os.path.join(netdir, "none")) == errno.ENOENT


def test_protocol_mismatch_and_adoption(net):
    path, member = net
    sw = member(ipn.IPN_VDESWITCH)
    sw.bind(path)
    assert err(member(ipn.IPN_CHANNEL).connect, path) == errno.EPROTO
    any_ = member(ipn.IPN_ANY)
    any_.connect(path)
    assert any_.protocol == ipn.IPN_VDESWITCH


def test_excl_refuses_binds_not_connects(net):
    path, member = net
    a = member()
    a.setsockopt(0, ipn.IPN_SO_FLAGS, ipn.IPN_FLAG_EXCL)
    a.bind(path)
    assert err(member().bind, path) == errno.ECONNREFUSED
    member().connect(path)


def test_prebind_options_shape_the_network(net):
    path, member = net
    a = member()
    a.setsockopt(0, ipn.IPN_SO_NUMNODES, 2)
    a.setsockopt(0, ipn.IPN_SO_MTU, 100)
    assert err(a.setsockopt, 0, ipn.IPN_SO_MTU, 0) == errno.EINVAL
    assert a.getsockopt(0, ipn.IPN_SO_MTU) == 100
    a.bind(path)
    assert a.getsockopt(0, ipn.IPN_SO_NUMNODES) == 2
    assert a.getsockopt(0, ipn.IPN_SO_MODE) == -1
    b, c = member(), member()
    b.connect(path)
    c.connect(path)
    assert err(member().connect, path) == errno.EADDRNOTAVAIL
    assert err(b.send, b"y" * 101) == errno.EOVERFLOW
    assert err(a.setsockopt, 0, ipn.IPN_SO_CHANGE_NUMNODES, 1) == errno.EADDRINUSE
    assert err(a.setsockopt, 0, ipn.IPN_SO_CHANGE_NUMNODES, 0) == errno.EINVAL
    a.setsockopt(0, ipn.IPN_SO_CHANGE_NUMNODES, 3)
    member().connect(path)
    assert a.getsockopt(0, ipn.IPN_SO_NUMNODES) == 3


def test_description_and_port(net):
    path, member = net
    a = member()
    a.setsockopt(0, ipn.IPN_SO_DESCR, b"my node\0")
    assert err(a.setsockopt, 0, ipn.IPN_SO_DESCR, b"x" * 129) == errno.EINVAL
    assert err(a.getsockopt, 0, ipn.IPN_SO_DESCR, 10) == errno.EINVAL
    assert a.getsockopt(0, ipn.IPN_SO_DESCR, 128).rstrip(b"\0") == b"my node"
    a.setsockopt(0, ipn.IPN_SO_DESCR, b"abc")              # the last byte becomes NUL
    assert a.getsockopt(0, ipn.IPN_SO_DESCR, 128).rstrip(b"\0") == b"ab"
    assert a.getsockopt(0, ipn.IPN_SO_PORT) == -1
    a.bind(path)
    a.connect()
    assert a.getsockopt(0, ipn.IPN_SO_PORT) == 0


def test_shutdowns(net):
    path, member = net
    a, b = member(), member()
    a.bind(path)
    a.connect()
    b.shutdown(0)                                           # SHUT_RD before connect
    b.connect(path)
    assert err(b.recv, 10) == errno.EPIPE
    b.shutdown(1)
    assert err(b.send, b"x") == errno.ECONNRESET
    assert b.recv(10) == b""                                # fully shut: EOF
    assert err(b.getsockopt, 0, ipn.IPN_SO_PORT) == errno.ECONNRESET
    a.shutdown(1)
    assert err(a.send, b"x") == errno.EPIPE


def test_fileno_works_with_select_selectors_and_asyncio(net):
    path, member = net
    a, b = member(), member()
    a.bind(path)
    a.connect()
    b.connect(path)
    b.setblocking(False)
    with pytest.raises(BlockingIOError):
        b.recv(100)                                         # arms the doorbell
    assert select.select([b], [], [], 0)[0] == []
    a.send(b"one")
    a.send(b"two")
    assert select.select([b], [], [], 5)[0] == [b]
    assert b.recv(100) == b"one"
    assert select.select([b], [], [], 0)[0] == [b]          # still a message waiting
    assert b.recv(100) == b"two"
    with pytest.raises(BlockingIOError):
        b.recv(100)
    sel = selectors.DefaultSelector()
    sel.register(b, selectors.EVENT_READ)
    assert sel.select(0) == []
    a.send(b"three")
    assert [k.fileobj for k, _ in sel.select(5)] == [b]
    assert b.recv(100) == b"three"
    sel.close()

    async def main():
        loop = asyncio.get_running_loop()
        got = loop.create_future()
        with pytest.raises(BlockingIOError):
            b.recv(100)
        loop.add_reader(b.fileno(), lambda: got.done() or got.set_result(b.recv(100)))
        loop.call_soon(a.send, b"four")
        try:
            return await asyncio.wait_for(got, 5)
        finally:
            loop.remove_reader(b.fileno())
    assert asyncio.run(main()) == b"four"


def test_truncation_and_recv_into(net):
    path, member = net
    a, b = member(), member()
    a.bind(path)
    a.connect()
    b.connect(path)
    a.send(b"0123456789")
    assert b.recv(4) == b"0123"                             # the rest is lost
    a.send(b"abcdef")
    buf = bytearray(16)
    assert b.recv_into(buf) == 6 and bytes(buf[:6]) == b"abcdef"


def test_members_cost_a_few_descriptors_each(net):
    """A process holding many ports (kvde_switch) must not run out of descriptors."""
    path, member = net
    first = member()
    first.setsockopt(0, ipn.IPN_SO_NUMNODES, 256)
    first.bind(path)
    before = len(os.listdir("/proc/self/fd"))
    socks = []
    for _ in range(150):
        s = member()
        s.connect(path)
        socks.append(s)
    assert len(os.listdir("/proc/self/fd")) - before <= 150 * 4
    socks[0].send(b"to all")
    for s in socks[1:]:
        s.settimeout(10)
        assert s.recv(64) == b"to all"
    wdir = os.path.join(os.path.dirname(path), ".bus.ipn", "w")
    for s in socks[75:]:
        s.close()
    member().connect(path)                   # a join sweeps the rings of departed senders
    assert len(os.listdir(wdir)) == 75 + 1          # the 75 still there and the late one
