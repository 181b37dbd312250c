"""Hosts for multi-host tests: network namespaces on one private LAN.

:class:`Lan` creates ``n`` host namespaces, each with ``eth0`` addressed
``10.77.0.<i+1>/24`` (a route sends multicast out of eth0 too), plus one
namespace holding a bridge every eth0 is cabled to (veth pairs).  Every
name starts with a per-process prefix, so tests never touch anything
else; :meth:`Lan.remove` deletes exactly the namespaces it made (which
removes their veths, bridges and tunnel devices with them).
"""

from __future__ import annotations

import itertools
import os
import queue
import subprocess
import threading

from support import StreamPlug, require

PREFIX = "vdeipn-t%d-" % os.getpid()
_count = itertools.count()
SUBNET = "10.77.0."


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command, raising with its stderr on failure."""
    r = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(argv), r.returncode, r.stderr))
    return r


def in_ns(ns: str, argv) -> list:
    """``argv`` run inside namespace ``ns`` (ip netns exec execs in place,
    so the PID of the process started is the command's own)."""
    return ["ip", "netns", "exec", ns] + list(argv)


class Lan:
    def __init__(self, n: int):
        require("/usr/sbin/ip") if os.path.exists("/usr/sbin/ip") else require("/sbin/ip")
        tag = "%s%d" % (PREFIX, next(_count))
        self.bridge_ns = tag + "-br"
        self.hosts = [tag + "-h%d" % i for i in range(n)]
        self.made: list[str] = []
        try:
            self._build()
        except BaseException:
            self.remove()
            raise

    def addr(self, i: int) -> str:
        return SUBNET + str(i + 1)

    def _add_ns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.made.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def _build(self) -> None:
        self._add_ns(self.bridge_ns)
        b = self.bridge_ns
        sh("ip", "-n", b, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        sh("ip", "-n", b, "link", "set", "br0", "up")
        for i, h in enumerate(self.hosts):
            self._add_ns(h)
            sh("ip", "-n", h, "link", "add", "eth0", "type", "veth",
               "peer", "name", "p%d" % i, "netns", b)
            sh("ip", "-n", b, "link", "set", "p%d" % i, "master", "br0", "up")
            sh("ip", "-n", h, "addr", "add", self.addr(i) + "/24", "dev", "eth0")
            sh("ip", "-n", h, "link", "set", "eth0", "up")
            sh("ip", "-n", h, "route", "add", "224.0.0.0/4", "dev", "eth0")

    def run(self, i: int, *argv: str, check: bool = True):
        return sh(*in_ns(self.hosts[i], argv), check=check)

    def remove(self) -> None:
        for name in reversed(self.made):
            sh("ip", "netns", "del", name, check=False)
        self.made.clear()


def leftovers() -> list:
    """Namespaces of this process still present (should be none)."""
    out = sh("ip", "netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


class NsStreamPlug(StreamPlug):
    """A vde_plug (ours or C) run inside a namespace, driven by its vdestream."""

    def __init__(self, procs, ns: str, tool: str, *args: str, env=None):
        self.proc = procs.start(in_ns(ns, [require(tool)] + list(args)),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.frames: "queue.Queue[bytes]" = queue.Queue()
        self._t = threading.Thread(target=self._reader, daemon=True)
        self._t.start()
