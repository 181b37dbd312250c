"""IP addresses seen per port (sans-IO): the state of the ``iplog`` plugin.

vde_switch 2.3.2's iplog plugin watches the source address of every IPv4
(header length 5 only) and IPv6 packet coming in on a port, optionally
inside one 802.1Q tag.  Addresses inside one of the configured ranges
(``iplog/ipadd``) are remembered with the port, VLAN and source MAC that
used them; a new address, or one that moved to another port, VLAN or MAC,
is reported once.  Entries are forgotten when their port closes or after
``expire`` seconds without traffic.

The report order of ``iplog/iplist`` is 2.3.2's: by its hash bucket,
newest entry first within a bucket.
"""

from __future__ import annotations

import itertools

from ...wire.ethernet import vlan_of
from ...wire.c_numbers import atoi
from ...wire.values import Value

HASH_SIZE = 1024
GC_INTERVAL = 10
GC_EXPIRE = 360
_V4_WEIGHTS = (1, 2, 3, 5)
_V6_WEIGHTS = (1, 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47)


def bucket(addr: bytes) -> int:
    """2.3.2's hash of an address: a weighted byte sum modulo 1024."""
    weights = _V4_WEIGHTS if len(addr) == 4 else _V6_WEIGHTS
    return sum(w * b for w, b in zip(weights, addr)) % HASH_SIZE


def prefix_mask(nbytes: int, bits: int) -> int:
    """The mask of ``bits`` leading ones over ``nbytes`` bytes (clamped)."""
    total = nbytes * 8
    bits = max(0, min(bits, total))
    return ((1 << bits) - 1) << (total - bits)


def leading_ones(mask: int, nbytes: int) -> int:
    """Number of leading one bits of ``mask`` (2.3.2 stops at the first 0)."""
    n = 0
    for i in range(nbytes * 8 - 1, -1, -1):
        if not mask >> i & 1:
            break
        n += 1
    return n


def parse_range(text: str) -> tuple[int, int, int]:
    """``ADDR[/BITS]`` -> (address length in bytes, network, mask).

    BITS is read as C's atoi (garbage is 0); the address is masked.

    Raises:
        ValueError: ADDR is not a numeric IPv4 or IPv6 address.
    """
    import ipaddress                     # only when asked: half a megabyte of RSS
    addr, _, bits = text.rpartition("/") if "/" in text else (text, "", "")
    ip = ipaddress.ip_address(addr)
    nbytes = 4 if ip.version == 4 else 16
    mask = prefix_mask(nbytes, atoi(bits) if "/" in text else nbytes * 8)
    return nbytes, int(ip) & mask, mask


def show_address(addr: bytes) -> str:
    import ipaddress
    return str(ipaddress.ip_address(addr))


class Entry(Value):
    __slots__ = ("addr", "port", "vlan", "mac", "last_seen", "seq")

    def __init__(self, addr: bytes, port: int, vlan: int, mac: bytes, last_seen: float,
                 seq: int = 0):
        self.addr, self.port, self.vlan, self.mac = addr, port, vlan, mac
        self.last_seen, self.seq = last_seen, seq


class IpLog(Value):
    __slots__ = ("ranges", "gc_interval", "expire", "entries", "_seq")

    def __init__(self, ranges: list | None = None, gc_interval: int = GC_INTERVAL,
                 expire: int = GC_EXPIRE, entries: dict | None = None,
                 _seq: itertools.count | None = None):
        self.ranges = [] if ranges is None else ranges        # (nbytes, network, mask)
        self.gc_interval, self.expire = gc_interval, expire
        self.entries = {} if entries is None else entries     # (addr, vlan) -> Entry
        self._seq = itertools.count() if _seq is None else _seq

    # -- ranges ------------------------------------------------------------
    def add_range(self, rng: tuple) -> bool:
        if rng in self.ranges:
            return False
        self.ranges.append(rng)
        return True

    def del_range(self, rng: tuple) -> bool:
        if rng not in self.ranges:
            return False
        self.ranges.remove(rng)
        return True

    def range_lines(self) -> list[str]:
        """``iplog/list``: IPv4 ranges first, then IPv6, each in order added."""
        out = []
        for want, tag in ((4, "ipv4"), (16, "ipv6")):
            for nbytes, net, mask in self.ranges:
                if nbytes == want:
                    out.append("  %s: %s/%d" % (tag, show_address(net.to_bytes(nbytes, "big")),
                                                leading_ones(mask, nbytes)))
        return out

    def _in_ranges(self, addr: bytes) -> bool:
        value, n = int.from_bytes(addr, "big"), len(addr)
        for nbytes, net, mask in self.ranges:
            if nbytes == n and value & mask == net:
                return True
        return False

    # -- traffic -----------------------------------------------------------
    def observe(self, port: int, frame: bytes, now: float) -> Entry | None:
        """A frame came in on ``port``: the entry to report, if new or moved."""
        if not self.ranges:
            return None
        found = source_address(frame)
        if found is None or not self._in_ranges(found[0]):
            return None
        addr, vlan = found
        mac = frame[6:12]
        key = (addr, vlan)
        e = self.entries.get(key)
        if e is None:
            e = self.entries[key] = Entry(addr, -1, vlan, b"", now, next(self._seq))
        e.last_seen = now
        if e.port == port and e.mac == mac:
            return None
        e.port, e.mac = port, mac
        return e

    def port_closed(self, port: int) -> None:
        for key in [k for k, e in self.entries.items() if e.port == port]:
            del self.entries[key]

    def collect(self, now: float) -> None:
        """Forget entries not seen for ``expire`` seconds."""
        limit = now - self.expire
        for key in [k for k, e in self.entries.items() if e.last_seen <= limit]:
            del self.entries[key]

    def listing(self) -> list[Entry]:
        return sorted(self.entries.values(), key=lambda e: (bucket(e.addr), -e.seq))

    def search(self, addr: bytes) -> list[Entry]:
        return [e for e in self.listing() if e.addr == addr][:1]


def report(e: Entry, user: str, descriptions) -> str:
    """The line logged for a new or moved address (2.3.2's text)."""
    mac = ":".join("%02x" % b for b in e.mac)
    msg = "ipv%d %s mac=%s port=%d vlan=%d user=%s" % (
        4 if len(e.addr) == 4 else 6, show_address(e.addr), mac, e.port, e.vlan, user)
    return msg + "".join(' "%s"' % d for d in descriptions)


def list_line(e: Entry, user: str) -> str:
    return "ipv%d %s port=%d user=%s" % (4 if len(e.addr) == 4 else 6, show_address(e.addr),
                                        e.port, user)


def source_address(frame: bytes) -> tuple[bytes, int] | None:
    """(source address, VLAN) of an IPv4 (header length 5) or IPv6 packet,
    optionally in one 802.1Q tag; None for anything else."""
    if len(frame) < 34:
        return None
    vlan, off = vlan_of(frame), 16
    if vlan is None:
        vlan, off = 0, 12
    body = off + 2
    etype = frame[off:body]
    if etype == b"\x08\x00" and frame[body:body + 1] == b"\x45":
        addr = frame[body + 12:body + 16]
    elif etype == b"\x86\xdd" and frame[body:body + 1] == b"\x60":
        addr = frame[body + 8:body + 24]
    else:
        return None
    return (addr, vlan) if len(addr) in (4, 16) else None


class SeenAddresses:
    """vde_plug -L: each source address is reported the first time only
    (whatever its VLAN), as vdeplug4's vde_plug does."""

    def __init__(self):
        self.seen: set = set()

    def check(self, frame: bytes) -> tuple[int, str, int] | None:
        """(IP version, address text, VLAN) when ``frame`` brings a new address."""
        found = source_address(frame)
        if found is None or found[0] in self.seen:
            return None
        addr, vlan = found
        self.seen.add(addr)
        return (4 if len(addr) == 4 else 6), show_address(addr), vlan
