"""MAC table commands: hash/*."""

from __future__ import annotations

import errno

from ....wire.ethernet import mac_str, parse_mac
from ..console import command, menu
from ._args import atoi

OK = 0

menu("hash", "HASH TABLE MENU")


@command("hash/showinfo", "", "show hash info", data=True)
def _showinfo(ctx, arg):
    h = ctx.hash_settings
    return ["Hash size %d" % h["size"], "GC interval %d secs" % h["gcint"],
            "GC expire %d secs" % h["expire"], "Min persistence %d secs" % h["minper"]], OK


@command("hash/setsize", "N", "change hash size")
def _setsize(ctx, arg):
    n = atoi(arg)
    if n <= 0:
        return None, errno.EINVAL
    size = 1
    while size < n:
        size <<= 1
    ctx.set_hash("size", size)           # flushes the table, as 2.3.2 does
    return None, OK


def _setter(name):
    def handler(ctx, arg):
        ctx.set_hash(name, atoi(arg))
        return None, OK
    return handler


command("hash/setgcint", "N", "change garbage collector interval")(_setter("gcint"))
command("hash/setexpire", "N", "change hash entries expire time")(_setter("expire"))
command("hash/setminper", "N", "minimum persistence time")(_setter("minper"))


_MASK64 = (1 << 64) - 1


def bucket(mac: bytes, vlan: int, size: int) -> int:
    """The bucket 2.3.2 files a MAC and VLAN under in a table of ``size``
    (a power of two): the MAC read as a little-endian number with the VLAN
    above it in bits 48-63, through two xor-shift-multiply rounds.  Only
    shown by hash/print and hash/find (our table itself is a dict)."""
    x = (int.from_bytes(mac, "little") + (vlan << 48)) & _MASK64
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & _MASK64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & _MASK64
    return x & (size - 1)


def _row(ctx, b, mac, vlan, port, seen):
    return ("Hash: %04d Addr: %s VLAN %04d to port: %03d  age %d secs"
            % (b, mac_str(mac), vlan, port, int(ctx.now() - seen)))


@command("hash/print", "", "print the hash table", data=True)
def _print(ctx, arg):
    table = getattr(ctx.net.policy, "table", None)
    if table is None:
        return [], OK
    size = ctx.hash_settings["size"]
    # bucket by bucket, as 2.3.2 walks its table; in a bucket the entry
    # learned last comes first (2.3.2 chains new entries at the head)
    rows = sorted((bucket(mac, vlan, size), -i, mac, vlan, port, seen)
                  for i, (vlan, mac, port, seen) in enumerate(table.entries()))
    return [_row(ctx, b, *r) for b, _, *r in rows], OK


@command("hash/find", "MAC [VLAN]", "MAC lookup", data=True)
def _find(ctx, arg):
    parts = arg.split()
    try:
        mac = parse_mac(parts[0])
        vlan = int(parts[1]) if len(parts) > 1 else 0
    except (IndexError, ValueError):
        return [], errno.EINVAL
    table = getattr(ctx.net.policy, "table", None)
    hit = table.lookup(mac, vlan) if table is not None else None
    if hit is None:
        return [], errno.ENODEV
    port, seen = hit
    # 2.3.2 prints port+1 here; kept, since scripts written against it expect it
    return [_row(ctx, bucket(mac, vlan, ctx.hash_settings["size"]), mac, vlan,
                 port + 1, seen)], OK
