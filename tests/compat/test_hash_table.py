"""hash/print and hash/find, ours beside 2.3.2, byte for byte.

The same stations are learned in the same order on both switches; every
line must match, bucket numbers and order included (2.3.2 walks its table
bucket by bucket, the entry learned last first).  Only the ages, which
depend on when the command runs, are replaced.
"""

import os
import re

import pytest

from support import BROADCAST, C_TOOLS, StreamPlug, attached, frame, wait_for


def station(i: int) -> bytes:
    """A unicast MAC whose every byte changes with ``i``."""
    return bytes([(i * 34) & 0xFE, (i * 7 + 1) & 0xFF, (i * 13) & 0xFF,
                  0x5A ^ i, i, (i * 101) & 0xFF])


def rows(text: str) -> list:
    assert text.startswith("0000 DATA END WITH '.'\n"), text
    return re.sub(r"age \d+ secs", "age A secs", text).splitlines()


def learn(sw, plug, macs, expect_rows):
    for m in macs:
        plug.send(frame(BROADCAST, m))
    wait_for(lambda: sw.cmd("hash/print").count("Hash: ") == expect_rows,
             what="%d entries in hash/print" % expect_rows)


@pytest.mark.parametrize("args", [(), ("--hashsize", "16")], ids=["128", "16"])
def test_hash_print_and_find_as_2_3_2(procs, sockdir, new_switch, args):
    macs_a = [station(i) for i in range(1, 25)]
    macs_b = [station(i) for i in range(40, 52)]
    seen = {}
    for kind in ("c", "ours"):
        sw = new_switch(kind, os.path.join(sockdir, kind), *args)
        a = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
        attached(sw, 1)                               # a on port 1, b on port 2
        b = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
        attached(sw, 2)
        for line in ("vlan/create 10", "port/setvlan 2 10"):
            assert sw.cmd(line).endswith("1000 Success\n"), line
        learn(sw, a, macs_a, len(macs_a))
        learn(sw, b, macs_b, len(macs_a) + len(macs_b))
        finds = [sw.cmd("hash/find %s" % ":".join("%02x" % x for x in m))
                 for m in macs_a[:6]]
        finds += [sw.cmd("hash/find %s 10" % ":".join("%02x" % x for x in m))
                  for m in macs_b[:6]]
        finds.append(sw.cmd("hash/find %s 10" % ":".join("%02x" % x for x in macs_a[0])))
        seen[kind] = (rows(sw.cmd("hash/print")), [rows(f) if f.startswith("0000") else f
                                                   for f in finds])
    assert seen["ours"][0] == seen["c"][0]
    assert seen["ours"][1] == seen["c"][1]
    printed = seen["ours"][0]
    buckets = [int(r.split()[1]) for r in printed[1:-2]]
    assert len(buckets) == 36 and buckets == sorted(buckets)
    assert len(set(buckets)) < len(buckets), "no two stations share a bucket"
