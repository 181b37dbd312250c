"""Shared helpers for tests that run real processes: our tools and the C ones."""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPAT = os.path.join(REPO, "compat")
OURS = {name: os.path.join(COMPAT, name) for name in ("vde_switch", "vde_plug", "dpipe")}
C_TOOLS = {name: "/usr/bin/" + name for name in
           ("vde_switch", "vde_plug", "dpipe", "unixterm", "vdeterm", "unixcmd",
            "wirefilter", "vde_plug2tap")}


def require(path: str) -> str:
    """The path of a real tool; a missing one fails the test (never skips)."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        found = shutil.which(os.path.basename(path))
        pytest.fail("required tool %s is missing (make setup installs it)%s"
                    % (path, "; %s is on PATH" % found if found else ""))
    return path


CACHE = os.path.join(tempfile.gettempdir(), "vde-ipn-test-cache-%d" % os.getuid())


def cached(name: str, key: str, build) -> str:
    """The path of a file built once and shared by every test process (the
    workers of a parallel run, and later runs): ``build(path)`` writes it,
    under an exclusive lock, to a temporary name renamed into place, so a
    reader never sees it half written.  ``key`` names what the content
    depends on (sources, versions): a new key builds a new file."""
    os.makedirs(CACHE, mode=0o700, exist_ok=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = os.path.join(CACHE, "%s-%s" % (digest, name))
    if os.path.exists(path):
        return path
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(path):
            tmp = "%s.%d.tmp" % (path, os.getpid())
            try:
                build(tmp)
                os.rename(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    return path


def compiled(src: str, *flags: str) -> str:
    """``src`` (a C file) compiled with ``cc flags``, once for every test
    process (see :func:`cached`)."""
    cc = require(shutil.which("cc") or "/usr/bin/cc")
    with open(src, "rb") as f:
        key = "%s %s\n%s" % (cc, " ".join(flags), hashlib.sha256(f.read()).hexdigest())
    name = os.path.splitext(os.path.basename(src))[0]
    return cached(name, key, lambda out: subprocess.run(
        [cc] + list(flags) + ["-o", out, src], check=True, timeout=120))


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def mac(n: int) -> bytes:
    """A locally administered unicast MAC 02:00:00:00:00:nn."""
    return b"\x02\x00\x00\x00" + struct.pack("!H", n)


def frame(dst: bytes, src: bytes, payload: bytes = b"", ethertype: int = 0x88B5,
          size: int = 60, tag: int | None = None) -> bytes:
    """An Ethernet frame padded with zeros to ``size``; ``tag`` is an 802.1Q
    TCI (the VLAN id with priority bits) put before the ethertype."""
    vlan = struct.pack("!HH", 0x8100, tag) if tag is not None else b""
    body = dst + src + vlan + struct.pack("!H", ethertype) + payload
    return body + b"\0" * max(0, size - len(body))


BROADCAST = b"\xff" * 6


def descendants(pid):
    """PIDs of every live descendant of ``pid`` (read from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


class Processes:
    """Every process a test starts; all killed by PID at teardown."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def start(self, argv, **kw) -> subprocess.Popen:
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def cleanup(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in reversed(self.procs):
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
            for f in (p.stdin, p.stdout, p.stderr):
                if f is not None:
                    try:
                        f.close()
                    except OSError:
                        pass


STARTUP = 30.0        # seconds a program may take to start on a loaded machine


def listening(path: str) -> bool:
    """Whether a unix socket bound to ``path`` is listening (``/proc/net/unix``
    of this network namespace: flag __SO_ACCEPTCON)."""
    names = {os.fsencode(path), os.fsencode(os.path.realpath(path))}
    with open("/proc/net/unix", "rb") as f:       # abstract names may be any bytes
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) >= 8 and fields[7] in names and int(fields[3], 16) & 0x10000:
                return True
    return False


class Switch:
    """A running switch (ours or the C one) with stdin held open and a mgmt socket."""

    def __init__(self, procs: Processes, tool: str, ctl_dir: str, *args: str,
                 mgmt: bool = True):
        self.dir = ctl_dir
        self.mgmt = ctl_dir + ".mgmt" if mgmt else None
        argv = [require(tool), "-s", ctl_dir] + (["-M", self.mgmt] if mgmt else []) + list(args)
        self.proc = procs.start(argv, stdin=subprocess.PIPE)
        # a socket file exists a moment before it listens (bind, chmod, listen):
        # wait for both to listen, so that no first connection is refused
        wait_for(lambda: listening(os.path.join(ctl_dir, "ctl"))
                 and (not mgmt or listening(self.mgmt)) or self.proc.poll() is not None,
                 timeout=STARTUP, what="switch %s to start" % tool)
        if self.proc.poll() is not None:
            raise AssertionError("switch exited with %s: %s"
                                 % (self.proc.returncode, self.proc.stderr.read().decode()))

    def cmd(self, line: str, timeout: float = 5.0) -> str:
        """Run one console command on the mgmt socket; the text up to the prompt."""
        return console_command(self.mgmt, line, timeout)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=5)


PROMPT = b"\nvde$ "
END_OF_SESSION = b"9999 END OF SESSION"


class Session:
    """A vde_switch management console connection kept open (``-M``):
    commands, and the asynchronous ``debug/*`` lines.

    ``greeting`` is the banner with its prompt, as sent.  ``cmd`` gives the
    text of an answer up to the prompt; ``ask`` the raw bytes including the
    prompt (or the end-of-session line); ``until`` whatever comes before a
    marker.  A read that times out gives what had arrived, so the assertion
    on it fails showing that.
    """

    def __init__(self, path: str, timeout: float = 5.0):
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        wait_for(lambda: self.sock.connect_ex(path) == 0, timeout, "mgmt socket %s" % path)
        self.buf = b""
        self.greeting = self._take(self._fill((PROMPT,), timeout))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fill(self, markers, timeout: float) -> int:
        """Read until one of ``markers`` is in the buffer: the end of the
        first one found (the whole buffer on timeout or EOF)."""
        deadline = time.monotonic() + timeout
        while True:
            ends = [self.buf.find(m) + len(m) for m in markers if m in self.buf]
            if ends:
                return min(ends)
            left = deadline - time.monotonic()
            if left <= 0:
                return len(self.buf)
            self.sock.settimeout(max(0.01, left))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return len(self.buf)
            if not chunk:
                return len(self.buf)
            self.buf += chunk

    def _take(self, end: int) -> bytes:
        got, self.buf = self.buf[:end], self.buf[end:]
        return got

    def until(self, marker: bytes, timeout: float | None = None) -> str:
        """The text before ``marker`` (the marker itself is consumed)."""
        got = self._take(self._fill((marker,), self.timeout if timeout is None else timeout))
        return (got[:-len(marker)] if got.endswith(marker) else got).decode()

    def cmd(self, line: str, timeout: float | None = None) -> str:
        self.sock.sendall(line.encode() + b"\n")
        return self.until(PROMPT, timeout)

    def ask(self, line: str, timeout: float | None = None) -> bytes:
        """Send one command; everything up to and including the prompt."""
        self.sock.sendall(line.encode() + b"\n")
        return self._take(self._fill((PROMPT, END_OF_SESSION),
                                     self.timeout if timeout is None else timeout))

    def at_eof(self) -> bool:
        return not self.buf and self.sock.recv(100) == b""

    def close(self) -> None:
        self.sock.close()


def console_command(path: str, line: str, timeout: float = 5.0) -> str:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        _read_until(s, b"$ ")
        s.sendall(line.encode() + b"\n")
        out = _read_until(s, b"\nvde$ ", also=b"9999 END OF SESSION")
        return out.decode()
    finally:
        s.close()


def _read_until(s: socket.socket, marker: bytes, also: bytes | None = None) -> bytes:
    buf = b""
    while not buf.endswith(marker) and not (also and also in buf):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf[:-len(marker)] if buf.endswith(marker) else buf


class StreamPlug:
    """A vde_plug process (any implementation) driven through its vdestream."""

    def __init__(self, procs: Processes, tool: str, *args: str):
        self.proc = procs.start([require(tool)] + list(args),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.frames: "queue.Queue[bytes]" = queue.Queue()
        self._t = threading.Thread(target=self._reader, daemon=True)
        self._t.start()

    def _reader(self) -> None:
        out = self.proc.stdout
        try:
            while True:
                hdr = out.read(2)
                if len(hdr) < 2:
                    return
                n = struct.unpack("!H", hdr)[0]
                self.frames.put(out.read(n))
        except (OSError, ValueError):
            return

    def send(self, f: bytes) -> None:
        self.proc.stdin.write(struct.pack("!H", len(f)) + f)
        self.proc.stdin.flush()

    def recv(self, timeout: float = 3.0):
        try:
            return self.frames.get(timeout=timeout)
        except queue.Empty:
            return None

    def recv_matching(self, pred, timeout: float = 3.0):
        """The first frame satisfying ``pred`` (others are discarded)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            f = self.recv(left)
            if f is not None and pred(f):
                return f

    def collect(self, pred, count: int, timeout: float = 10.0) -> list:
        """Frames satisfying ``pred``, until ``count`` of them came or
        ``timeout`` passed (others are discarded); then whatever else
        arrives in a short grace period, so that extra copies show."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            f = self.recv(left)
            if f is not None and pred(f):
                got.append(f)
        return got + [f for f in self.drain(0.2) if pred(f)]

    def drain(self, wait: float = 0.3) -> list:
        time.sleep(wait)
        got = []
        while True:
            try:
                got.append(self.frames.get_nowait())
            except queue.Empty:
                return got

    def close(self) -> int:
        self.proc.stdin.close()
        return self.proc.wait(timeout=5)


def in_pkts(switch: Switch, port: int, direction: str = "IN") -> int:
    """How many frames the switch has read from ``port`` (its ``port/print``);
    with ``direction="OUT"``, how many it has handed to the port."""
    text = switch.cmd("port/print %d" % port)
    line = next(ln for ln in text.splitlines() if ln.startswith(" %s:" % direction))
    return int(line.split()[2])


def out_pkts(switch: Switch, port: int) -> int:
    return in_pkts(switch, port, "OUT")


def all_joined(sender: "StreamPlug", receivers, timeout: float = 10.0) -> None:
    """Where no console tells who is attached: broadcast numbered probes
    from ``sender`` until one reaches every receiver (which then hold no
    earlier probe: a switch keeps one sender's frames in order).  Each probe
    is given longer to arrive than the one before, for a loaded machine."""
    deadline = time.monotonic() + timeout
    for n in itertools.count():
        probe = frame(BROADCAST, mac(0xfe), b"join probe %d" % n)
        sender.send(probe)
        wait = min(2.0, 0.2 * 1.5 ** n)
        if all(r.recv_matching(lambda f: f == probe, wait) is not None for r in receivers):
            return
        if time.monotonic() > deadline:
            raise AssertionError("no probe crossed to every receiver in %.1fs" % timeout)


def attached(switch: Switch, count: int, timeout: float = 10.0) -> None:
    """Wait until the switch's port/print shows ``count`` endpoints."""
    def shown():
        try:
            return switch.cmd("port/print").count("-- endpoint ID") == count
        except ConnectionRefusedError:
            return False          # a busy switch's accept queue is full: poll again
    wait_for(shown, timeout, "%d endpoints on %s" % (count, switch.dir))


PY = sys.executable


def loop_turn(loop) -> None:
    """Run an event loop (vde_ipn.io.loop.Loop) for one pass over whatever is ready."""
    loop.call_later(0, lambda now: loop.stop())
    loop.run()


def drain(sock) -> list:
    """Every datagram waiting on a non-blocking socket, in order."""
    got = []
    while True:
        try:
            got.append(sock.recv(65536))
        except BlockingIOError:
            return got


def dgram_pair():
    """Two connected non-blocking unix datagram sockets."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setblocking(False)
    b.setblocking(False)
    return a, b
