"""Network namespaces, veth pairs and interface checks for the tap and grab tests.

Every namespace gets a name unique to this test run (``vt<pid>-<tag>``)
and is deleted at teardown with the links the test made in it, even
when the test fails; traffic stays inside them, on 10.77.x.0/24.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess

import pytest

IP = "/usr/bin/ip"
_serial = itertools.count()
SETPRIV = "/usr/bin/setpriv"
BUSYBOX = "/usr/bin/busybox"
NOBODY = 65534


def ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    argv = ([IP, "netns", "exec", ns] if ns else []) + [IP] + list(args)
    res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and res.returncode != 0:
        raise AssertionError("%s: %s" % (" ".join(argv), res.stderr))
    return res


def link(name: str, ns: str) -> dict | None:
    """``ip -d -j link show NAME`` in ``ns`` (None when there is no such link)."""
    res = ip("-d", "-j", "link", "show", name, ns=ns, check=False)
    if res.returncode != 0:
        return None
    return json.loads(res.stdout)[0]


def is_up(info: dict) -> bool:
    return "UP" in info["flags"]


def in_ns(ns: str, argv: list[str], *, as_nobody: bool = False) -> list[str]:
    """``argv`` run inside ``ns`` (and as uid/gid 65534 with ``as_nobody``)."""
    prefix = [IP, "netns", "exec", ns]
    if as_nobody:
        prefix += [SETPRIV, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
    return prefix + list(argv)


class Namespaces:
    """Creates namespaces and links; :meth:`cleanup` removes them all."""

    def __init__(self):
        self.names: list[str] = []
        self.links: list[tuple[str, str]] = []

    def new(self, tag: str) -> str:
        name = "vt%d-%s%d" % (os.getpid(), tag, next(_serial))
        ip("netns", "add", name)
        self.names.append(name)
        ip("link", "set", "lo", "up", ns=name)
        return name

    def veth(self, a: str, ns_a: str, b: str, ns_b: str) -> None:
        """A veth pair: ``a`` in ``ns_a``, ``b`` in ``ns_b``, both down."""
        self.links.append((a, ns_a))
        ip("link", "add", a, "type", "veth", "peer", "name", b, "netns", ns_b, ns=ns_a)

    def owned_link(self, name: str, ns: str) -> None:
        """Remember a link made by a tool under test, to delete it at the end."""
        self.links.append((name, ns))

    def cleanup(self) -> None:
        for name, ns in reversed(self.links):
            if link(name, ns) is not None:
                ip("link", "del", name, ns=ns, check=False)
        for ns in reversed(self.names):
            ip("netns", "del", ns, check=False)


@pytest.fixture(scope="module")
def namespaces():
    for tool in (IP, SETPRIV, BUSYBOX):
        if not os.access(tool, os.X_OK):
            pytest.fail("required tool %s is missing (make setup installs it)" % tool)
    n = Namespaces()
    yield n
    n.cleanup()


def ifname(tag: str) -> str:
    """An interface name unique to this run (at most 15 bytes)."""
    return ("v%d%s" % (os.getpid() % 100000, tag))[:15]


class NsSwitch:
    """A vde_switch (ours unless ``tool``) started inside namespace ``ns``
    (stdin held open)."""

    def __init__(self, procs, ns: str, ctl_dir: str, *args: str, as_nobody: bool = False,
                 mgmt: bool = True, tool: str | None = None):
        from support import OURS, require, wait_for
        self.dir = ctl_dir
        self.mgmt = ctl_dir + ".mgmt" if mgmt else None
        argv = [require(tool or OURS["vde_switch"]), "-s", ctl_dir] + (
            ["-M", self.mgmt] if mgmt else []) + list(args)
        self.proc = procs.start(in_ns(ns, argv, as_nobody=as_nobody),
                                stdin=subprocess.PIPE)
        wait_for(lambda: os.path.exists(os.path.join(ctl_dir, "ctl"))
                 and (not mgmt or os.path.exists(self.mgmt)) or self.proc.poll() is not None,
                 what="switch in %s to start" % ns)
        if self.proc.poll() is not None:
            raise AssertionError("switch exited with %s: %s"
                                 % (self.proc.returncode, self.proc.stderr.read().decode()))

    def cmd(self, line: str) -> str:
        from support import console_command
        return console_command(self.mgmt, line)

    def stop(self) -> str:
        """SIGTERM it; its stderr."""
        self.proc.terminate()
        self.proc.wait(timeout=10)
        return self.proc.stderr.read().decode()


def ns_ping(ns: str, address: str, count: int = 3) -> str:
    """Ping from ``ns``, 0.2 s apart, until ``count`` replies (at most 30 s);
    fails otherwise."""
    res = subprocess.run([IP, "netns", "exec", ns, BUSYBOX, "ping", "-c", str(count), "-i",
                          "0.2", "-w", "30", address], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    assert res.returncode == 0 and " %d packets received" % count in res.stdout, res.stdout
    return res.stdout


def address(name: str, ns: str, cidr: str) -> None:
    """Give link ``name`` in ``ns`` the address ``cidr`` and bring it up."""
    ip("addr", "add", cidr, "dev", name, ns=ns)
    ip("link", "set", name, "up", ns=ns)


def still_serving(sw: NsSwitch, seconds: float = 0.5) -> bool:
    """True when ``sw`` is alive after ``seconds`` and a plug gets a port on it."""
    import time
    from support import OURS
    time.sleep(seconds)
    if sw.proc.poll() is not None:
        return False
    res = subprocess.run([OURS["vde_plug"], sw.dir], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=10)
    return res.returncode == 0 and sw.proc.poll() is None
