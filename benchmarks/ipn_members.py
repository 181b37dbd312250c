#!/usr/bin/env python3
"""What IPN members cost: join time, descriptors and mappings, at N members.

All members live in this one process (the worst case for descriptors and
memory mappings: a kvde_switch holding a port per VDE client).  For each
N, members join one by one (half of them senders, all receivers); the
script prints the median time of the last ten joins, the descriptors and
memory mappings the process holds per member, the files left in the
companion directory after half of the senders left, and whether one
message still reaches every receiver.

Usage: ``python3 benchmarks/ipn_members.py [--members 10,100,500]``
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vde_ipn import ipn  # noqa: E402


def count(path: str) -> int:
    try:
        return len(os.listdir(path))
    except OSError:
        return -1


def maps() -> int:
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


def run(n: int) -> str:
    d = tempfile.mkdtemp(prefix="ipnm", dir="/tmp")
    path = os.path.join(d, "bus")
    fds0, maps0 = count("/proc/self/fd"), maps()
    first = ipn.socket()
    first.setsockopt(0, ipn.IPN_SO_NUMNODES, max(64, n + 1))
    first.bind(path)
    members, joins = [], []
    try:
        for i in range(n):
            s = ipn.socket()
            t0 = time.perf_counter()
            s.connect(path)
            joins.append(time.perf_counter() - t0)
            members.append(s)
        fds = count("/proc/self/fd") - fds0
        mapped = maps() - maps0
        members[0].send(b"hello")             # members refresh as they use the network
        heard = 0
        for s in members[1:]:
            s.settimeout(5)
            try:
                heard += s.recv(64) == b"hello"
            except (TimeoutError, OSError):
                pass
        for s in members[n // 2:]:
            s.close()
        members = members[:n // 2]
        late = ipn.socket()
        late.connect(path)                      # a join sweeps what departed senders left
        rings = count(os.path.join(d, ".bus.ipn", "w"))
        late.close()
        return ("%5d members: join %.2f ms (median of the last 10), %.1f fds and %.1f "
                "mappings per member, %d/%d receivers heard one message, %d ring files "
                "after %d left" % (n, 1000 * statistics.median(joins[-10:]), fds / n,
                                   mapped / n, heard, n - 1, rings, n - n // 2))
    except OSError as e:
        return "%5d members: failed after %d joins: %s" % (n, len(members), e)
    finally:
        for s in members:
            s.close()
        first.close()
        shutil.rmtree(d, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", default="10,100,500")
    args = ap.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print("%d-core machine, one process; vm.max_map_count %s" % (
        os.cpu_count(), open("/proc/sys/vm/max_map_count").read().strip()))
    for n in (int(x) for x in args.members.split(",")):
        print(run(n), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
