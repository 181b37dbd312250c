"""A QEMU guest whose only way out is a slirp router on its switch.

Everything runs inside a network namespace that has nothing but
loopback, as the unprivileged user ``nobody``: the switch, the guest,
the router under test and the "host side" servers (on 127.0.0.1 in that
namespace, which the guests reach as the router's address).  No packet
can leave the machine.  Used by the tests and by
``benchmarks/slirp_throughput.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from guests import QemuGuest, initramfs
from netns import PREFIX, sh
from support import COMPAT, Processes, console_command, require, wait_for

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
SEND_PORT, RECV_PORT = 7001, 7002       # host-side servers (private namespace)
GUEST_MAC = "52:54:00:5a:00:0f"
OURS_PLUG = os.path.join(COMPAT, "vde_plug")
OURS_SLIRPVDE = os.path.join(COMPAT, "slirpvde")
C_PLUG = "/usr/bin/vde_plug"
C_SLIRPVDE = "/usr/bin/slirpvde"

# A DHCP client script for busybox udhcpc: note the lease, apply it.
DHCP_SCRIPT = (
    "#!/bin/sh",
    '[ "$1" = bound ] || exit 0',
    'echo "LEASE ip=$ip subnet=$subnet router=$router dns=$dns serverid=$serverid '
    'lease=$lease" > /tmp/lease',
    "ifconfig $interface $ip netmask $subnet up",
    "route add default gw $router",
)

SERVER = r'''
import hashlib, os, socket, sys, threading, time
data = open(sys.argv[1], "rb").read()
results = sys.argv[2]

def sender():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", %(send)d)); s.listen(8)
    while True:
        c, _ = s.accept()
        try:
            c.sendall(data)
        except OSError:
            pass
        c.close()

def receiver():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", %(recv)d)); s.listen(8)
    while True:
        c, _ = s.accept()
        h, n, t0 = hashlib.md5(), 0, None
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            if t0 is None:
                t0 = time.monotonic()
            h.update(b); n += len(b)
        t1 = time.monotonic()
        c.close()
        with open(results, "a") as f:
            f.write("%%d %%s %%.6f\n" %% (n, h.hexdigest(), t1 - (t0 or t1)))

def dns():
    # a name server on the host side: every A question gets 10.9.8.7
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 53))
    while True:
        q, peer = s.recvfrom(2048)
        end = 12
        while end < len(q) and q[end]:
            end += q[end] + 1
        question = q[12:end + 5]
        qtype = q[end + 1:end + 3]
        answer = (b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x09\x08\x07"
                  if qtype == b"\x00\x01" else b"")
        s.sendto(q[:2] + b"\x81\x80\x00\x01" + (b"\x00\x01" if answer else b"\x00\x00")
                 + b"\x00\x00\x00\x00" + question + answer, peer)

threading.Thread(target=sender, daemon=True).start()
threading.Thread(target=dns, daemon=True).start()
receiver()
''' % {"send": SEND_PORT, "recv": RECV_PORT}


class SlirpLab:
    """Namespace, switch, servers and one booted guest.  :meth:`close`
    removes all of it, whatever state it is in."""

    def __init__(self, file_kib: int = 1024):
        require("/usr/bin/setpriv")
        self.procs = Processes()
        self.ns = "%sslirp%d" % (PREFIX, int(time.monotonic() * 1000) % 100000)
        self.etc = "/etc/netns/" + self.ns
        self.work = tempfile.mkdtemp(prefix="vsl", dir="/tmp")
        self.made_ns = False
        try:
            self._build(file_kib)
        except BaseException:
            self.close()
            raise

    def _build(self, file_kib: int) -> None:
        os.chown(self.work, 65534, 65534)
        sh("ip", "netns", "add", self.ns)
        self.made_ns = True
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")
        # names resolve through 127.0.0.1 in the namespace (ip netns exec
        # mounts this file on /etc/resolv.conf), where our name server
        # listens on port 53, which nobody may bind there
        os.makedirs(self.etc)
        with open(self.etc + "/resolv.conf", "w") as f:
            f.write("nameserver 127.0.0.1\n")
        sh("ip", "netns", "exec", self.ns, "sysctl", "-qw",
           "net.ipv4.ip_unprivileged_port_start=53")
        links = sh("ip", "-n", self.ns, "-o", "link").stdout
        assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"], links
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": self.work,
                    "TMPDIR": self.work, "LANG": "C"}
        # the host-side file and servers
        self.payload = os.urandom(file_kib * 1024)
        path = os.path.join(self.work, "payload")
        with open(path, "wb") as f:
            f.write(self.payload)
        self.results = os.path.join(self.work, "results")
        server = os.path.join(self.work, "server.py")
        with open(server, "w") as f:
            f.write(SERVER)
        self.server = self.start([sys.executable, server, path, self.results])
        # the switch
        self.sw = os.path.join(self.work, "sw")
        self.mgmt = os.path.join(self.work, "mgmt")
        self.switch = self.start([require(os.path.join(COMPAT, "vde_switch")), "-s", self.sw,
                                  "-M", self.mgmt], stdin=subprocess.PIPE)
        wait_for(lambda: os.path.exists(self.mgmt) or self.switch.poll() is not None,
                 20, "the switch")
        assert self.switch.poll() is None, self.switch.stderr.read()
        # the guest, as nobody too: the initramfs must be readable
        image, initrd = initramfs()
        os.chmod(os.path.dirname(initrd), 0o755)
        self.guest = self.add_guest(GUEST_MAC, "slirp-guest")

    def add_guest(self, mac: str, name: str) -> QemuGuest:
        """Another QEMU guest on the switch, as nobody, ready for :meth:`dhcp`."""
        g = QemuGuest(self.procs, self.work, self.sw, mac, name=name, wrap=self.wrap())
        g.check("printf '%%s\\n' %s > /tmp/dhcp.sh && chmod +x /tmp/dhcp.sh"
                % " ".join("'%s'" % line for line in DHCP_SCRIPT))
        g.check("ip link set eth0 up")
        return g

    def wrap(self) -> list:
        return ["ip", "netns", "exec", self.ns] + NOBODY

    def start(self, argv, **kw) -> subprocess.Popen:
        """``argv`` as nobody inside the namespace (same PID: everything execs)."""
        kw.setdefault("env", self.env)
        kw.setdefault("cwd", self.work)
        return self.procs.start(self.wrap() + list(argv), **kw)

    def run(self, argv, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return subprocess.run(self.wrap() + list(argv), env=self.env, cwd=self.work,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)

    def endpoints(self) -> int:
        return console_command(self.mgmt, "port/print").count("-- endpoint ID")

    # -- a router under test -------------------------------------------------------
    def start_router(self, argv) -> subprocess.Popen:
        before = self.endpoints()
        p = self.start(argv)
        wait_for(lambda: self.endpoints() > before or p.poll() is not None, 30,
                 "%s to join the switch" % argv[0])
        assert p.poll() is None, "%s exited %s: %s" % (argv, p.returncode,
                                                       p.stderr.read().decode())
        return p

    def stop_router(self, p: subprocess.Popen) -> int:
        before = self.endpoints()
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=10)
        try:
            wait_for(lambda: self.endpoints() == before - 1, 10, "the router's port to close")
        except AssertionError as e:
            raise AssertionError("%s (rc %s, %d endpoints before):\n%s" % (
                e, rc, before, console_command(self.mgmt, "port/print"))) from None
        return rc

    # -- the guest's side ---------------------------------------------------------------
    def dhcp(self, guest=None) -> dict:
        """Forget the last lease, ask for a new one; its fields."""
        g = guest or self.guest
        g.check("ip addr flush dev eth0; ip neigh flush dev eth0; rm -f /tmp/lease")
        g.check("udhcpc -i eth0 -s /tmp/dhcp.sh -n -q -t 8 -T 2 -A 1", timeout=60)
        out = g.check("cat /tmp/lease")
        m = re.search(r"LEASE (.*)", out)
        assert m, out
        return dict(kv.split("=", 1) for kv in m.group(1).split())

    def fetch(self, router_ip: str, guest=None) -> tuple[str, int]:
        """The host-side file, fetched by the guest over TCP: (md5, size)."""
        out = (guest or self.guest).check("rm -f /tmp/got; nc %s %d </dev/null >/tmp/got; "
                               "md5sum /tmp/got; wc -c </tmp/got"
                               % (router_ip, SEND_PORT), timeout=120)
        m = re.search(r"([0-9a-f]{32})\s+/tmp/got\s+(\d+)", out)
        assert m, out
        return m.group(1), int(m.group(2))

    def upload(self, router_ip: str, kib: int, timeout: float = 300.0) -> tuple[int, float]:
        """``kib`` KiB of zeros sent by the guest to the host-side receiver:
        (bytes received, seconds from first to last byte at the host)."""
        before = self._results()
        self.guest.check("dd if=/dev/zero bs=1024 count=%d 2>/dev/null | nc %s %d"
                         % (kib, router_ip, RECV_PORT), timeout=timeout)
        rows = wait_for(lambda: self._results()[len(before):], 30, "the receiver's note")
        n, _md5, secs = rows[0].split()
        return int(n), float(secs)

    @staticmethod
    def cpu_seconds(pid: int) -> float:
        """User + system CPU time used so far by process ``pid``."""
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _results(self) -> list:
        try:
            with open(self.results) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def close(self) -> None:
        self.procs.cleanup()
        if self.made_ns:
            sh("ip", "netns", "del", self.ns, check=False)
            self.made_ns = False
            shutil.rmtree(self.etc, ignore_errors=True)
        shutil.rmtree(self.work, ignore_errors=True)
