"""Real guests for the tests: QEMU with a Debian kernel, and User-Mode Linux.

Nothing is downloaded: the QEMU guest boots Debian's ``linux-image-amd64``
kernel (``/boot/vmlinuz-*``) with an initramfs built here from
``busybox-static`` and the NIC driver modules of that kernel (found in
``/lib/modules/VERSION``, dependencies from ``modules.dep``).  UML boots
``linux.uml`` on the host's root, read-only, through hostfs.

Both guests end their boot in a busybox shell on their console, which
:class:`Console` drives through a pipe: :meth:`Console.run` sends one
command line and returns its exit status and output, found between
markers the shell prints after it.  Every guest is started through the
test's ``Processes`` (killed by PID at teardown); UML's helper processes
are added to the ``tree`` list the caller hands in.
"""

from __future__ import annotations

import glob
import gzip
import itertools
import lzma
import os
import re
import statistics
import subprocess
import threading
import time
import zlib

import pytest

from support import COMPAT, cached, descendants, require

QEMU = "/usr/bin/qemu-system-x86_64"
UML = "/usr/bin/linux.uml"
BUSYBOX = "/usr/bin/busybox"
DRIVERS = ("virtio_net", "virtio_pci", "e1000")
BOOT_TIMEOUT = 90.0

QEMU_INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
for m in $(cat /modules.order); do insmod /lib/modules/$m; done
ip link set lo up
stty -echo
export PS1=
echo GUEST-READY
exec sh
"""

UML_INIT = """#!%(bb)s sh
B=%(bb)s
$B mount -t tmpfs tmpfs /tmp
$B mount -t proc proc /proc
$B mkdir /tmp/bin
$B --install -s /tmp/bin
export PATH=/tmp/bin
ip link set lo up
stty -echo
export PS1=
echo GUEST-READY
exec sh
"""


# -- the initramfs -------------------------------------------------------------
def kernel() -> tuple[str, str]:
    """(vmlinuz path, its module directory) of the newest installed kernel."""
    images = sorted(glob.glob("/boot/vmlinuz-*"))
    if not images:
        pytest.fail("no /boot/vmlinuz-*: install linux-image-amd64 (make setup does)")
    image = images[-1]
    version = image.split("vmlinuz-", 1)[1]
    moddir = "/lib/modules/" + version
    if not os.path.isfile(moddir + "/modules.dep"):
        pytest.fail("%s/modules.dep is missing (linux-image-amd64 installs it)" % moddir)
    return image, moddir


def module_order(moddir: str, wanted=DRIVERS) -> list[str]:
    """Module files (relative to ``moddir``) to insmod, dependencies first."""
    deps, by_name = {}, {}
    with open(moddir + "/modules.dep") as f:
        for line in f:
            path, _, rest = line.partition(":")
            deps[path] = rest.split()
            name = re.sub(r"\.ko(\.\w+)?$", "", os.path.basename(path)).replace("-", "_")
            by_name[name] = path
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in deps.get(path, ()):
            visit(dep)
        order.append(path)

    for name in wanted:
        if name in by_name:              # built into the kernel when absent
            visit(by_name[name])
    return order


def _module_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".zst"):
        return subprocess.run(["zstd", "-dc", path], check=True, stdout=subprocess.PIPE).stdout
    return data


class _Cpio:
    """A "newc" cpio archive, as the kernel unpacks an initramfs."""

    def __init__(self):
        self.out = bytearray()
        self.ino = itertools.count(1)

    def add(self, name: str, mode: int, data: bytes = b"", rdev=(0, 0)) -> None:
        name_b = name.encode() + b"\0"
        fields = (next(self.ino), mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(name_b), 0)
        self.out += b"070701" + b"".join(b"%08X" % v for v in fields) + name_b
        self.out += b"\0" * (-len(self.out) % 4) + data
        self.out += b"\0" * (-len(self.out) % 4)

    def finish(self) -> bytes:
        self.add("TRAILER!!!", 0)
        return bytes(self.out)


_built: dict = {}


def _stat_key(*paths: str) -> str:
    return " ".join("%s:%d:%d" % (p, os.stat(p).st_size, os.stat(p).st_mtime_ns)
                    for p in paths)


def _write_initramfs(moddir: str, path: str) -> None:
    cpio = _Cpio()
    for d in ("bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"):
        cpio.add(d, 0o40755)
    cpio.add("dev/console", 0o20600, rdev=(5, 1))
    with open(BUSYBOX, "rb") as f:
        cpio.add("bin/busybox", 0o100755, f.read())
    cpio.add("init", 0o100755, QEMU_INIT.encode())
    names = []
    for rel in module_order(moddir):
        name = re.sub(r"\.(xz|gz|zst)$", "", os.path.basename(rel))
        cpio.add("lib/modules/" + name, 0o100644, _module_bytes(os.path.join(moddir, rel)))
        names.append(name)
    cpio.add("modules.order", 0o100644, ("\n".join(names) + "\n").encode())
    with open(path, "wb") as f:
        f.write(gzip.compress(cpio.finish(), compresslevel=1))


# where a bzImage's payload starts, by compression: (magic, decompress)
_PAYLOADS = (
    (b"\xfd7zXZ\x00", lambda data: lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(data)),
    (b"\x1f\x8b\x08", lambda data: zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)),
)


def _elf_of(image: str) -> bytes | None:
    """The uncompressed ELF kernel inside a bzImage (None for a compression
    not handled here)."""
    with open(image, "rb") as f:
        data = f.read()
    for magic, decompress in _PAYLOADS:
        at = data.find(magic)
        if at < 0:
            continue
        try:
            elf = decompress(data[at:])
        except (lzma.LZMAError, zlib.error):
            continue
        if elf[:4] == b"\x7fELF":
            return elf
    return None


def boot_image(image: str) -> str:
    """The kernel QEMU is given: the ELF inside the bzImage when the kernel
    has a PVH entry point (Debian's has: CONFIG_PVH), which QEMU loads and
    starts directly, so that the guest does not spend seconds of emulated
    CPU decompressing itself on every boot; else the bzImage.  The ELF is
    extracted once and shared by every test process."""
    version = image.split("vmlinuz-", 1)[1]
    config = "/boot/config-" + version
    try:
        with open(config) as f:
            pvh = "\nCONFIG_PVH=y\n" in f.read()
    except OSError:
        pvh = False
    if not pvh:
        return image

    def build(path: str) -> None:
        data = _elf_of(image)
        if data is None:
            raise LookupError(image)
        with open(path, "wb") as f:
            f.write(data)
    try:
        return cached("vmlinux-" + version, _stat_key(image, config), build)
    except LookupError:
        return image


def initramfs() -> tuple[str, str]:
    """(kernel for QEMU, initramfs path); both built once and shared by the
    test processes (see ``support.cached``)."""
    if "result" in _built:
        return _built["result"]
    image, moddir = kernel()
    require(BUSYBOX)
    key = "\n".join([_stat_key(image, BUSYBOX, moddir + "/modules.dep"), QEMU_INIT,
                     repr(DRIVERS), repr(module_order(moddir))])
    path = cached("initramfs.gz", key, lambda tmp: _write_initramfs(moddir, tmp))
    _built["result"] = (boot_image(image), path)
    return _built["result"]


# -- consoles --------------------------------------------------------------------
class Console:
    """A guest whose console is a busybox shell on our pipes."""

    name = "guest"

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.text = ""
        self._lock = threading.Condition()
        self._seq = itertools.count(1)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self._lock:
                if not chunk:
                    self.text += "\n<console closed>\n"
                    self._lock.notify_all()
                    return
                self.text += chunk.decode(errors="replace").replace("\r", "")
                self._lock.notify_all()

    def wait_text(self, pattern: str, timeout: float, start: int = 0) -> re.Match:
        """The first match of ``pattern`` in the console output after ``start``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                m = re.compile(pattern).search(self.text, start)
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or self.text.endswith("<console closed>\n"):
                    raise AssertionError("%s: no %r within %.0fs; console:\n%s"
                                         % (self.name, pattern, timeout, self.text[-3000:]))
                self._lock.wait(left)

    def run(self, command: str, timeout: float = 30.0) -> tuple[int, str]:
        """Run one shell command line in the guest: (exit status, output)."""
        n = next(self._seq)
        with self._lock:
            start = len(self.text)
        self.proc.stdin.write(("%s; echo \"@@END-%d-$?@@\"\n" % (command, n)).encode())
        self.proc.stdin.flush()
        m = self.wait_text(r"@@END-%d-(\d+)@@" % n, timeout, start)
        out = self.text[start:m.start()]
        return int(m.group(1)), out

    def check(self, command: str, timeout: float = 30.0) -> str:
        """Run ``command``; its output, or an AssertionError when it fails."""
        rc, out = self.run(command, timeout)
        assert rc == 0, "%s: %r exited %d:\n%s" % (self.name, command, rc, out)
        return out

    def configure(self, ip: str) -> None:
        """Bring eth0 up with ``ip`` (CIDR) as its only address."""
        self.check("ip addr add %s dev eth0 && ip link set eth0 up" % ip)
        self.check("(for i in $(seq 50); do grep -q up /sys/class/net/eth0/operstate "
                   "&& exit 0; sleep 0.2; done; exit 1)")


def ping(guest: Console, address: str, count: int = 3, timeout: float = 40.0) -> dict:
    """Ping from ``guest``, 0.2 s apart, until ``count`` replies came (at most 30 s);
    the summary numbers.  Fails unless every reply came."""
    rc, out = guest.run("ping -c %d -i 0.2 -w 30 %s" % (count, address), timeout)
    m = re.search(r"(\d+) packets transmitted, (\d+) packets received", out)
    assert rc == 0 and m and int(m.group(2)) == count, \
        "%s: ping %s failed (rc %d):\n%s" % (guest.name, address, rc, out)
    rtt = re.search(r"min/avg/max = ([\d.]+)/([\d.]+)/([\d.]+)", out)
    return {"sent": int(m.group(1)), "received": int(m.group(2)),
            "avg_ms": float(rtt.group(2)) if rtt else None}


def ping_series(guest: Console, address: str, count: int, interval: float = 0.2,
                extra: float = 10.0) -> dict:
    """Send ``count`` pings ``interval`` seconds apart from ``guest`` and
    wait at most ``extra`` seconds more; whatever came back, measured:
    ``sent``, ``received``, ``loss`` (a fraction), ``rtts`` (ms, one per
    reply) and their ``median`` (None without replies)."""
    deadline = int(count * interval + extra) + 1
    rc, out = guest.run("ping -c %d -i %s -W %d -w %d %s"
                        % (count, interval, extra, deadline, address), deadline + 30)
    m = re.search(r"(\d+) packets transmitted, (\d+) packets received", out)
    assert m, "%s: no ping summary (rc %d):\n%s" % (guest.name, rc, out)
    sent, received = int(m.group(1)), int(m.group(2))
    rtts = [float(t) for t in re.findall(r"seq=\d+ ttl=\d+ time=([\d.]+) ms", out)]
    return {"sent": sent, "received": received,
            "loss": 1.0 - received / sent if sent else 1.0,
            "rtts": rtts, "median": statistics.median(rtts) if rtts else None}


def unreachable(guest: Console, address: str, seconds: int = 2) -> bool:
    """True when ``address`` does not answer one ping within ``seconds``."""
    rc, _ = guest.run("ping -c 1 -W %d -w %d %s" % (seconds, seconds, address), seconds + 30)
    return rc != 0


def neighbour(guest: Console, address: str, mac: str) -> None:
    """A permanent ARP entry in ``guest``: no ARP exchange for ``address``."""
    guest.check("arp -i eth0 -s %s %s" % (address, mac))


def tcp_transfer(tx: Console, rx: Console, address: str, size_kib: int, port: int,
                 timeout: float = 120.0) -> float:
    """Send ``size_kib`` KiB of zeros from ``tx`` to ``rx`` (at ``address``)
    with busybox nc over TCP ``port``; fails unless every byte arrived.
    The seconds from the first connection attempt to the sender's end
    (which comes after the receiver closed, so after the last byte)."""
    # the listener's stdin must stay open: at EOF busybox nc half-closes,
    # and the sender's nc would stop at that FIN
    rx.check("rm -f /tmp/rx%d; (sleep 600 | nc -l -p %d | wc -c > /tmp/rx%d) & sleep 1"
             % (port, port, port))
    t0 = time.monotonic()
    tx.check("dd if=/dev/zero bs=1024 count=%d 2>/dev/null | nc %s %d"
             % (size_kib, address, port), timeout=timeout)
    seconds = time.monotonic() - t0
    got = rx.check("(for i in $(seq 100); do [ -s /tmp/rx%d ] && break; sleep 0.2; done); "
                   "cat /tmp/rx%d" % (port, port))
    assert got.split() and int(got.split()[-1]) == size_kib * 1024, \
        "%s -> %s: %s bytes of %d arrived" % (tx.name, rx.name, got.strip(), size_kib * 1024)
    return seconds


class QemuGuest(Console):
    """QEMU (TCG, 128 MiB) with one NIC on the VDE address ``sock``.

    ``netdev`` replaces the VDE backend with another QEMU ``-netdev``
    (``"tap,ifname=NAME,script=no,downscript=no"``), ``wrap`` is put
    before QEMU's argv (``["ip", "netns", "exec", NS]``: QEMU runs inside
    that namespace, still with its own PID).  With ``wait=False`` the
    constructor returns at once; :meth:`booted` (or :func:`boot_all`)
    waits for the shell.
    """

    def __init__(self, procs, workdir: str, sock: str | None, mac: str, *, name="qemu",
                 nic="virtio-net-pci", netdev: str | None = None, wrap=(), wait: bool = True):
        self.name = name
        image, initrd = initramfs()
        kind, _, opts = (netdev or "vde,sock=%s" % sock).partition(",")
        argv = list(wrap) + [
                require(QEMU), "-nodefaults", "-display", "none", "-machine", "pc",
                "-accel", "tcg", "-m", "128M", "-no-reboot",
                "-kernel", image, "-initrd", initrd,
                # no_timer_check: under TCG on a busy host the timer interrupt
                # may come too late for the kernel's IO-APIC check, which
                # then panics ("IO-APIC + timer doesn't work!")
                "-append", "console=ttyS0 quiet panic=-1 no_timer_check",
                "-serial", "stdio",
                "-netdev", "%s,id=n0%s" % (kind, "," + opts if opts else ""),
                "-device", "%s,netdev=n0,mac=%s" % (nic, mac)]
        self.mac = mac
        self.started = time.monotonic()
        super().__init__(procs.start(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT))
        if wait:
            self.booted()

    def booted(self) -> float:
        """Wait for the guest's shell; the seconds since QEMU started."""
        _boot(self)
        self.boot_seconds = time.monotonic() - self.started
        return self.boot_seconds


def boot_all(guests) -> None:
    """Wait until every guest (started with ``wait=False``) has booted."""
    for g in guests:
        g.booted()


class UmlGuest(Console):
    """User-Mode Linux on the host's root (read-only) with eth0 on ``sock``.

    UML runs ``vde_plug`` from PATH, and compat/ comes first, so its
    helper is our plug.  The helper's PIDs go to ``tree``.
    """

    def __init__(self, procs, tree: list, workdir: str, sock: str, mac: str, *, name="uml"):
        self.name = name
        require(UML)
        require(BUSYBOX)
        init = os.path.join(workdir, "uml-init-%s.sh" % name)
        with open(init, "w") as f:
            f.write(UML_INIT % {"bb": BUSYBOX})
        os.chmod(init, 0o755)
        env = dict(os.environ, PATH=COMPAT + os.pathsep + os.environ.get("PATH", ""),
                   HOME=workdir, TMPDIR=workdir)
        argv = [UML, "mem=64M", "eth0=vde,%s,%s" % (sock, mac), "rootfstype=hostfs",
                "rootflags=/", "ro", "init=%s" % init, "con=null", "con0=fd:0,fd:1",
                "quiet"]
        super().__init__(procs.start(argv, env=env, cwd=workdir, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        try:
            self.boot_seconds = _boot(self)
        finally:
            tree.extend(descendants(self.proc.pid))


def _boot(guest: Console) -> float:
    t0 = time.monotonic()
    guest.wait_text(r"GUEST-READY", BOOT_TIMEOUT)
    guest.check("true")
    return time.monotonic() - t0
