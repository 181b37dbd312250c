"""``open_plug("slirp://...")`` in this process, driven by our own Loop.

Frames built with scapy go in through the plug's ``send``; what the router
answers is read from the plug when the loop says it is readable: ARP for
the router, DHCP, ping.  Closing the plug closes every descriptor the
router opened, its host-forward listeners included.
"""

import gc
import os
import socket

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether

from vde_ipn._errors import ConnectError
from vde_ipn.io.loop import Loop
from vde_ipn.io.plugs.opener import open_plug

MAC = "52:54:00:ab:cd:ef"


def exchange(loop, plug, frame: bytes, want, timeout: float = 5.0):
    """Send ``frame``; the first frame back for which ``want`` is true."""
    found = []

    def readable(now):
        while True:
            try:
                f = plug.recv(65536)
            except BlockingIOError:
                return
            if want(Ether(f)):
                found.append(Ether(f))
                loop.stop()
                return

    loop.add_reader(plug, readable)
    stop = loop.call_later(timeout, lambda now: loop.stop())
    plug.send(frame)
    loop.run()
    loop.cancel(stop)
    loop.remove_reader(plug)
    assert found, "no answer to %r" % Ether(frame).summary()
    return found[0]


def open_fds() -> set:
    # this process also ran other tests (an xdist worker runs many files):
    # collect their garbage first, so that none of their pipes or sockets
    # closes between two snapshots
    gc.collect()
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def loop():
    lp = Loop()
    yield lp
    lp.close()


def test_arp_dhcp_and_ping(loop):
    fds = open_fds()
    plug = open_plug("slirp:///host=10.6.0.2%2F24/dhcp=10.6.0.40", loop=loop)
    try:
        arp = exchange(loop, plug, bytes(
            Ether(src=MAC, dst="ff:ff:ff:ff:ff:ff")
            / ARP(op=1, hwsrc=MAC, psrc="10.6.0.40", pdst="10.6.0.2")),
            lambda p: ARP in p and p[ARP].op == 2)
        router_mac = arp[ARP].hwsrc
        offer = exchange(loop, plug, bytes(
            Ether(src=MAC, dst="ff:ff:ff:ff:ff:ff")
            / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67)
            / BOOTP(chaddr=bytes.fromhex(MAC.replace(":", "")) + b"\0" * 10, xid=77)
            / DHCP(options=[("message-type", "discover"), "end"])),
            lambda p: DHCP in p)
        opts = {o[0]: o[1] for o in offer[DHCP].options if isinstance(o, tuple)}
        assert offer[BOOTP].yiaddr == "10.6.0.40" and offer[BOOTP].xid == 77
        assert (opts["router"], opts["name_server"], opts["subnet_mask"]) == (
            "10.6.0.2", "10.6.0.3", "255.255.255.0")
        pong = exchange(loop, plug, bytes(
            Ether(src=MAC, dst=router_mac) / IP(src="10.6.0.40", dst="10.6.0.2")
            / ICMP(type=8, id=9, seq=1) / b"payload"),
            lambda p: ICMP in p and p[ICMP].type == 0)
        assert (pong[ICMP].id, pong[ICMP].seq, bytes(pong[ICMP].payload)) == (
            9, 1, b"payload")
    finally:
        plug.close()
    assert open_fds() == fds


@pytest.mark.parametrize("family,host,fwd", [
    (socket.AF_INET, "127.0.0.1", "127.0.0.1:%d:10.0.2.15:80"),
    (socket.AF_INET6, "::1", "[::1]:%d:[fd00::15]:80"),
])
def test_close_releases_forwarded_ports(loop, family, host, fwd):
    probe = socket.socket(family)
    probe.bind((host, 0))
    port = probe.getsockname()[1]
    probe.close()
    fds = open_fds()
    plug = open_plug("slirp:///tcpfwd=" + fwd % port, loop=loop)
    s = socket.socket(family)
    with pytest.raises(OSError):
        s.bind((host, port))                 # the router listens there
    s.close()
    plug.close()
    assert open_fds() == fds
    s = socket.socket(family)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))                     # and no more
    s.close()


def test_needs_a_loop():
    with pytest.raises(ConnectError) as e:
        open_plug("slirp://")
    assert "event loop" in str(e.value)
