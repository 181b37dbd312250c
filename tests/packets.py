"""Hand-made ARP and ICMP frames, so a kernel interface inside a test
namespace can answer a test (no guest needed)."""

from __future__ import annotations

import socket
import struct

BROADCAST = b"\xff" * 6


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def arp_request(src_mac: bytes, src_ip: str, target_ip: str) -> bytes:
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, src_mac,
                       socket.inet_aton(src_ip), b"\0" * 6, socket.inet_aton(target_ip))
    f = BROADCAST + src_mac + b"\x08\x06" + body
    return f + b"\0" * (60 - len(f))


def arp_reply_mac(f: bytes, ip: str):
    """The sender MAC if ``f`` is an ARP reply from ``ip``, else None."""
    if len(f) < 42 or f[12:14] != b"\x08\x06" or f[20:22] != b"\x00\x02":
        return None
    if f[28:32] != socket.inet_aton(ip):
        return None
    return f[22:28]


def icmp_echo(dst_mac: bytes, src_mac: bytes, src_ip: str, dst_ip: str,
              ident: int, seq: int, payload: bytes = b"vde-ipn" * 8) -> bytes:
    icmp = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + payload
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq & 0xFFFF, 0x4000, 64, 1,
                     0, socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + icmp


def is_echo_reply(f: bytes, ident: int, seq: int) -> bool:
    if len(f) < 42 or f[12:14] != b"\x08\x00":
        return False
    ihl = (f[14] & 0xF) * 4
    icmp = f[14 + ihl:]
    return len(icmp) >= 8 and icmp[0] == 0 and \
        struct.unpack("!HH", icmp[4:8]) == (ident, seq)
