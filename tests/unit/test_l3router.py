"""The vde_l3 engine on its own: ARP, ping, forwarding, queueing, errors."""

import struct

import pytest

from vde_ipn.engine.l3.router import (Router, checksum, inet_aton, ip_mac, parse_ip,
                                     parse_netmask)

A_MAC, B_MAC = b"\x02\0\0\0\0\x0a", b"\x02\0\0\0\0\x0b"


def ip(text):
    return inet_aton(text)


def router():
    r = Router()
    r.add_iface(ip("10.1.0.1"), parse_netmask("255.255.255.0"))
    r.add_iface(ip("10.2.0.1"), parse_netmask("24"))
    return r


def arp(op, smac, sip, tip, dst=b"\xff" * 6):
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + smac + struct.pack("!I", ip(sip)) \
        + bytes(6) + struct.pack("!I", ip(tip))
    return dst + smac + b"\x08\x06" + body + bytes(18)


def ipv4(src, dst, proto, payload, ttl=64):
    head = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(payload), 1, 0, ttl, proto, 0,
                       ip(src), ip(dst))
    return head[:10] + struct.pack("!H", checksum(head)) + head[12:] + payload


def echo(seq=1):
    msg = struct.pack("!BBHHH", 8, 0, 0, 7, seq) + b"data"
    return msg[:2] + struct.pack("!H", checksum(msg)) + msg[4:]


def test_address_parsing_as_inet_aton_and_masks():
    assert inet_aton("10.1") == 0x0A000001 and inet_aton("0x7f.1") == 0x7F000001
    assert inet_aton("300.1.1.1") is None and inet_aton("1.2.3.4\n") == 0x01020304
    assert parse_ip("224.0.0.1") == 0 and parse_ip("bogus") == 0
    assert parse_netmask("255.255.0.0") == 0xFFFF0000 and parse_netmask("17") == 0xFFFF8000
    assert parse_netmask("255.0.255.0") == 0 and parse_netmask("0") == 0
    assert parse_netmask("33") == 0 and parse_netmask("24x") == 0


def test_arp_request_for_our_address_is_answered_with_the_derived_mac():
    r = router()
    out = r.receive(0, arp(1, A_MAC, "10.1.0.5", "10.1.0.1"), 0.0)
    assert len(out) == 1 and out[0][0] == 0
    reply = out[0][1]
    assert reply[:6] == A_MAC and reply[6:12] == ip_mac(ip("10.1.0.1")) == b"\0\xaa\x0a\x01\0\x01"
    assert reply[20:22] == b"\0\x02" and reply[32:38] == A_MAC
    assert r.receive(0, arp(1, A_MAC, "10.1.0.5", "10.1.0.9"), 0.0) == []    # not ours
    assert r.receive(1, arp(1, A_MAC, "10.1.0.5", "10.1.0.1"), 0.0) == []    # other side


def test_ping_is_answered_and_udp_gets_port_unreachable():
    r = router()
    mine = ip_mac(ip("10.1.0.1"))
    out = r.receive(0, mine + A_MAC + b"\x08\x00" + ipv4("10.1.0.5", "10.1.0.1", 1, echo()), 0.0)
    (iface, f), = out
    assert iface == 0 and f[:6] == A_MAC
    pkt = f[14:]
    assert checksum(pkt[:20]) == 0 and pkt[12:16] == bytes((10, 1, 0, 1))
    assert pkt[20] == 0 and checksum(pkt[20:20 + 12]) == 0 and pkt[20 + 8:20 + 12] == b"data"
    out = r.receive(0, mine + A_MAC + b"\x08\x00" + ipv4("10.1.0.5", "10.1.0.1", 17, bytes(8)),
                    0.0)
    assert out[0][1][14 + 20:14 + 22] == b"\x03\x03"


def test_forwarding_waits_for_arp_then_sends_with_ttl_and_checksum_fixed():
    r = router()
    mine0, mine1 = ip_mac(ip("10.1.0.1")), ip_mac(ip("10.2.0.1"))
    pkt = ipv4("10.1.0.5", "10.2.0.7", 1, echo(), ttl=9)
    out = r.receive(0, mine0 + A_MAC + b"\x08\x00" + pkt, 0.0)
    assert len(out) == 1 and out[0][0] == 1 and out[0][1][12:14] == b"\x08\x06"   # ARP asked
    out = r.receive(1, arp(2, B_MAC, "10.2.0.7", "10.2.0.1", dst=mine1), 0.1)
    (iface, f), = out                                      # the queued packet goes out
    assert iface == 1 and f[:6] == B_MAC and f[6:12] == mine1
    assert f[14 + 8] == 8 and checksum(f[14:34]) == 0
    out = r.receive(0, mine0 + A_MAC + b"\x08\x00" + ipv4("10.1.0.5", "10.2.0.7", 1, echo(2)), 1)
    assert [o[0] for o in out] == [1]                      # now known: straight out


def test_expiring_ttl_gets_time_exceeded_and_routes_pick_the_longest_mask():
    r = router()
    r.set_route(ip("10.9.0.0"), parse_netmask("16"), ip("10.2.0.9"))
    r.set_route(ip("10.9.8.0"), parse_netmask("24"), ip("10.2.0.8"))
    assert r.gateway(ip("10.9.8.1")) == ip("10.2.0.8") and r.gateway(ip("10.9.1.1")) == ip("10.2.0.9")
    assert r.set_route(ip("10.9.0.0"), parse_netmask("16"), ip("10.2.0.10")) is False
    mine0 = ip_mac(ip("10.1.0.1"))
    r.arp[ip("10.1.0.5")] = A_MAC
    out = r.receive(0, mine0 + A_MAC + b"\x08\x00" + ipv4("10.1.0.5", "10.9.8.1", 1, echo(), ttl=1),
                    0.0)
    (iface, f), = out
    assert iface == 0 and f[14 + 20] == 11
    r.expire(10.0)
    assert r.pending == {}


def test_queueing_disciplines():
    from vde_ipn.engine.l3 import queues as q
    p = q.make("pfifo", "limit 2")
    assert [p.enqueue(b"x" * 60, 0) for _ in range(3)] == [True, True, False]
    assert p.stats() == "Limit: 2 packets. Dropped: 1 packets."
    b = q.make("bfifo", "limit 130")
    assert [b.enqueue(b"x" * 60, 0) for _ in range(3)] == [True, True, False]
    t = q.make("tbf", "rate 80K limit 5000", now=0.0)           # 10000 bytes/s
    assert t.stats().startswith("Shaping at Rate = 10000 Bytes/s, bucket limit: 5000 bytes")
    for _ in range(3):
        t.enqueue(b"y" * 1000, 0.0)
    assert t.dequeue(0.0) is not None and t.dequeue(0.0) is None   # one MTU of tokens
    assert abs(t.wait(0.0) - 0.1) < 1e-9 and t.dequeue(0.1) is not None
    assert q.make("tbf", "rate 800K latency 50").limit == 5000
    assert q.make("tbf", "rate 4K limit 100") is None and q.make("pfifo", "limit x") is None
    assert q.make("ufifo", "") is not None and q.make("ufifo", "3") is None
    with pytest.raises(KeyError):
        q.make("nosuch", "")
