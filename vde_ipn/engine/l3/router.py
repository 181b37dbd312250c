"""A small IPv4 router between VDE networks (sans-IO): vde_l3's engine.

Each interface (``vdN``) has an address, a netmask and the MAC address
vde_l3 2.3.2 derives from the address (``00:aa`` then the four address
bytes).  The router answers ARP for its addresses, answers pings, says
"unreachable" to other packets for itself, and forwards the rest: TTL
decremented (an expiring packet gets an ICMP time-exceeded), header
checksum recomputed, next hop from the directly connected networks, then
the static routes (longest netmask wins), then the default gateway.  A
packet waiting for its next hop's ARP answer is queued (a few per hop,
for a few seconds) instead of dropped.

:meth:`Router.receive` takes ``(interface id, frame, now)`` and returns
the frames to send as ``(interface id, frame)`` pairs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .queues import Ufifo

ETH_ARP, ETH_IP = 0x0806, 0x0800
ARP_REQUEST, ARP_REPLY = 1, 2
PROTO_ICMP, PROTO_TCP, PROTO_UDP = 1, 6, 17
DEFAULT_TTL = 64
PENDING_MAX = 8                          # packets queued per next hop
PENDING_TIME = 3.0                       # seconds a queued packet waits for ARP
BROADCAST = b"\xff" * 6


# -- addresses as vde_l3 reads them ------------------------------------------------
def inet_aton(text: str) -> int | None:
    """C ``inet_aton``: 1 to 4 parts, decimal/octal/hex, trailing blanks
    allowed; None when invalid."""
    text = text.rstrip(" \t\n\r\f\v")
    parts = text.split(".")
    if not text or len(parts) > 4:
        return None
    values = []
    for p in parts:
        try:
            if p[:2].lower() == "0x":
                v = int(p[2:], 16) if p[2:] else 0
            elif len(p) > 1 and p[0] == "0":
                v = int(p[1:], 8)
            else:
                v = int(p, 10)
        except ValueError:
            return None
        if not p or v < 0 or not p[0].isdigit():
            return None
        values.append(v)
    last_bits = 8 * (5 - len(values))
    if any(v > 255 for v in values[:-1]) or values[-1] >= 1 << last_bits:
        return None
    result = 0
    for i, v in enumerate(values[:-1]):
        result |= v << (24 - 8 * i)
    return result | values[-1]


def unicast_ip(ip: int | None) -> int:
    """vde_l3's check: 0 for an invalid, multicast or class E address."""
    if ip is None or ip & 0xE0000000 == 0xE0000000:
        return 0
    return ip


def parse_ip(text: str) -> int:
    """An address as vde_l3 accepts it (``inet_addr``); 0 when invalid."""
    value = inet_aton(text)
    return unicast_ip(0xFFFFFFFF if value is None else value)


def is_netmask(value: int) -> bool:
    """Leading ones then zeros, at least one bit set."""
    inverted = ~value & 0xFFFFFFFF
    return value != 0 and inverted & (inverted + 1) == 0


def parse_netmask(text: str) -> int:
    """A dotted netmask (as 2.3.2 takes it) or a prefix length ``N`` (as its
    manual describes, 1..32); 0 when neither."""
    t = text.strip()
    if t.isdigit() and "." not in t:
        n = int(t)
        return ((0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF) if 0 < n <= 32 else 0
    value = inet_aton(t)
    if value is None or not is_netmask(value):
        return 0
    return value


def ip_str(ip: int) -> str:
    return "%d.%d.%d.%d" % (ip >> 24, ip >> 16 & 255, ip >> 8 & 255, ip & 255)


def ip_mac(ip: int) -> bytes:
    return b"\x00\xaa" + ip.to_bytes(4, "big")


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


@dataclass
class Iface:
    id: int
    ip: int
    mask: int
    mac: bytes
    queue: object = field(default_factory=Ufifo)      # its queueing discipline

    def holds(self, addr: int) -> bool:
        return self.ip & self.mask == addr & self.mask


@dataclass
class Route:
    network: int
    mask: int
    gw: int


@dataclass
class Router:
    ifaces: list = field(default_factory=list)
    routes: list = field(default_factory=list)
    default_gw: int = 0
    arp: dict = field(default_factory=dict)          # ip -> mac
    pending: dict = field(default_factory=dict)      # next hop ip -> [(deadline, iface, packet)]
    ident: int = 0

    # -- configuration -----------------------------------------------------
    def add_iface(self, ip: int, mask: int) -> Iface:
        iface = Iface(len(self.ifaces), ip, mask, ip_mac(ip))
        self.ifaces.append(iface)
        return iface

    def iface(self, number: int) -> Iface | None:
        for i in self.ifaces:
            if i.id == number:
                return i
        return None

    def set_route(self, network: int, mask: int, gw: int) -> bool:
        """Add a route, or change its gateway; True when it was new."""
        for r in self.routes:
            if r.network == network and r.mask == mask:
                r.gw = gw
                return False
        self.routes.append(Route(network, mask, gw))
        return True

    def neighbour(self, addr: int) -> Iface | None:
        for i in self.ifaces:
            if i.holds(addr):
                return i
        return None

    def gateway(self, addr: int) -> int:
        best, best_mask = 0, -1
        for r in self.routes:
            if r.network & r.mask == addr & r.mask and r.mask > best_mask:
                best, best_mask = r.gw, r.mask
        return best or self.default_gw

    # -- traffic -----------------------------------------------------------
    def receive(self, ifid: int, frame: bytes, now: float) -> list:
        iface = self.iface(ifid)
        if iface is None or len(frame) < 14:
            return []
        dst, src = frame[:6], frame[6:12]
        if src == iface.mac or not (dst == iface.mac or dst[0] & 1):
            return []
        etype = struct.unpack_from("!H", frame, 12)[0]
        if etype == ETH_ARP:
            return self._arp(iface, frame, now)
        if etype == ETH_IP:
            return self._ip(iface, frame[14:], src, now)
        return []

    def expire(self, now: float) -> None:
        for hop in list(self.pending):
            left = [p for p in self.pending[hop] if p[0] > now]
            if left:
                self.pending[hop] = left
            else:
                del self.pending[hop]

    def _arp(self, iface: Iface, frame: bytes, now: float) -> list:
        if len(frame) < 42:
            return []
        htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", frame, 14)
        if htype != 1 or ptype != ETH_IP or hlen != 6 or plen != 4:
            return []
        smac = frame[22:28]
        sip, tip = struct.unpack_from("!I", frame, 28)[0], struct.unpack_from("!I", frame, 38)[0]
        if tip != iface.ip:
            return []
        out = []
        if op == ARP_REQUEST:
            reply = struct.pack("!HHBBH", 1, ETH_IP, 6, 4, ARP_REPLY) + iface.mac \
                + struct.pack("!I", iface.ip) + smac + struct.pack("!I", sip)
            out.append((iface.id, _pad(smac + iface.mac + b"\x08\x06" + reply)))
        if sip and iface.holds(sip):
            self.arp[sip] = smac
            out += self._flush(sip)
        return out

    def _flush(self, hop: int) -> list:
        mac = self.arp[hop]
        return [(i.id, _pad(mac + i.mac + b"\x08\x00" + pkt))
                for _d, i, pkt in self.pending.pop(hop, [])]

    def _ip(self, iface: Iface, pkt: bytes, src_mac: bytes, now: float) -> list:
        if len(pkt) < 20 or pkt[0] >> 4 != 4:
            return []
        ihl = (pkt[0] & 15) * 4
        total = struct.unpack_from("!H", pkt, 2)[0]
        if ihl < 20 or total < ihl or total > len(pkt) or checksum(pkt[:ihl]) != 0:
            return []
        pkt = pkt[:total]                            # no Ethernet padding
        saddr, daddr = struct.unpack_from("!II", pkt, 12)
        if iface.holds(saddr) and saddr != iface.ip and saddr not in self.arp:
            self.arp[saddr] = src_mac
        if any(i.ip == daddr for i in self.ifaces):
            return self._local(pkt, ihl, saddr, daddr, now)
        if daddr & 0xF0000000 == 0xE0000000 or daddr == 0xFFFFFFFF \
                or any(daddr | i.mask == 0xFFFFFFFF for i in self.ifaces if i.holds(daddr)):
            return []                                # broadcast and multicast stay local
        ttl = pkt[8]
        if ttl <= 1:
            return self._icmp_error(11, 0, pkt, ihl, saddr, now)
        head = bytearray(pkt[:ihl])
        head[8] = ttl - 1
        head[10:12] = b"\0\0"
        head[10:12] = struct.pack("!H", checksum(bytes(head)))
        return self.output(bytes(head) + pkt[ihl:], daddr, now)

    def _local(self, pkt, ihl, saddr, daddr, now) -> list:
        proto = pkt[9]
        if proto == PROTO_ICMP:
            body = pkt[ihl:]
            if len(body) < 8 or body[0] != 8 or checksum(body) != 0:
                return []
            reply = b"\x00\x00\x00\x00" + body[4:]
            reply = reply[:2] + struct.pack("!H", checksum(reply)) + reply[4:]
            return self.send_ip(reply, PROTO_ICMP, saddr, now, src=daddr)
        code = 3 if proto in (PROTO_TCP, PROTO_UDP) else 2    # port / protocol unreachable
        return self._icmp_error(3, code, pkt, ihl, saddr, now)

    def _icmp_error(self, kind, code, pkt, ihl, saddr, now) -> list:
        if pkt[9] == PROTO_ICMP and len(pkt) > ihl and pkt[ihl] not in (0, 8):
            return []                                # never about an ICMP error
        msg = bytes((kind, code, 0, 0, 0, 0, 0, 0)) + pkt[:ihl + 8]
        msg = msg[:2] + struct.pack("!H", checksum(msg)) + msg[4:]
        return self.send_ip(msg, PROTO_ICMP, saddr, now)

    def send_ip(self, payload: bytes, proto: int, dst: int, now: float, src: int = 0) -> list:
        """A packet of our own: the source is ``src`` or the outgoing interface's."""
        hop = self._next_hop(dst)
        if hop is None:
            return []
        iface, _ = hop
        self.ident = (self.ident + 1) & 0xFFFF
        head = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(payload), self.ident, 0x4000,
                           DEFAULT_TTL, proto, 0, src or iface.ip, dst)
        head = head[:10] + struct.pack("!H", checksum(head)) + head[12:]
        return self.output(head + payload, dst, now)

    def _next_hop(self, dst: int):
        iface = self.neighbour(dst)
        if iface is not None:
            return iface, dst
        gw = self.gateway(dst)
        iface = self.neighbour(gw) if gw else None
        return None if iface is None else (iface, gw)

    def output(self, pkt: bytes, dst: int, now: float) -> list:
        hop = self._next_hop(dst)
        if hop is None:
            return []
        iface, nexthop = hop
        mac = self.arp.get(nexthop)
        if mac is not None:
            return [(iface.id, _pad(mac + iface.mac + b"\x08\x00" + pkt))]
        queue = self.pending.setdefault(nexthop, [])
        if len(queue) < PENDING_MAX:
            queue.append((now + PENDING_TIME, iface, pkt))
        request = struct.pack("!HHBBH", 1, ETH_IP, 6, 4, ARP_REQUEST) + iface.mac \
            + struct.pack("!I", iface.ip) + bytes(6) + struct.pack("!I", nexthop)
        return [(iface.id, _pad(BROADCAST + iface.mac + b"\x08\x06" + request))]


def _pad(frame: bytes) -> bytes:
    return frame + bytes(60 - len(frame)) if len(frame) < 60 else frame
