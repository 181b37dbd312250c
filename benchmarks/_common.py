"""What the benchmarks share: child processes, the C load generator,
reading children's answers, the machine description, pinning, and the
main-function frame (clean exit on Ctrl-C/SIGTERM, every child killed
by PID, temporary directories removed).

``vdeload.c`` is the one C load generator: VDE clients (send, recv,
join, echo, ping) and, with ``--stream``, QEMU ``-netdev stream``
clients (send, recv).  It is compiled at run time with ``cc -O2``.
"""

from __future__ import annotations

import os
import platform
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


class BenchError(Exception):
    """A switch or a load generator did not do its part."""


class Children:
    """Every process and directory this run creates, cleaned up by PID."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []
        self.dirs: list[str] = []

    def start(self, argv, **kw) -> subprocess.Popen:
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def mkdtemp(self, prefix: str) -> str:
        d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")   # short: sun_path is 108 bytes
        self.dirs.append(d)
        return d

    def stop(self, p: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 3.0) -> None:
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        for f in (p.stdin, p.stdout, p.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        if p in self.procs:
            self.procs.remove(p)

    def cleanup(self) -> None:
        for p in reversed(list(self.procs)):
            self.stop(p, timeout=2.0)
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)
        self.dirs.clear()


def read_line(p: subprocess.Popen, timeout: float, what: str) -> str:
    """One line of a child's stdout, or BenchError after ``timeout``."""
    fd = p.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise BenchError("timed out waiting for %s" % what)
        chunk = os.read(fd, 1)
        if not chunk:
            raise BenchError("%s: process exited (status %s)" % (what, p.wait()))
        buf += chunk
    return buf.decode().strip()


def compile_vdeload(children: Children) -> str:
    """Build the load generator in a directory of the run; its path."""
    out = os.path.join(children.mkdtemp("vdeload"), "vdeload")
    src = os.path.join(HERE, "vdeload.c")
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise BenchError("no C compiler (cc) to build the load generator")
    p = children.start([cc, "-O2", "-o", out, src], stderr=subprocess.PIPE)
    err = p.communicate()[1]
    children.procs.remove(p)
    if p.returncode != 0:
        raise BenchError("compiling %s failed:\n%s" % (src, err.decode(errors="replace")))
    return out


def start_switch(children: Children, kind: str, argv: list[str], workdir: str,
                 cpus=()) -> tuple:
    """``argv`` (a vde_switch and its options) serving ``workdir``/sw, once
    its ctl socket exists: (process, switch directory).  Its stdin stays
    open: both switches read their console there and quit on EOF."""
    path = os.path.join(workdir, "sw")
    log_path = os.path.join(workdir, "switch.log")
    with open(log_path, "wb") as log:
        p = children.start(list(argv) + ["-s", path], stdin=subprocess.PIPE, stderr=log)
    pin(p, cpus)
    deadline = time.monotonic() + 20
    while not os.path.exists(os.path.join(path, "ctl")):
        if p.poll() is not None or time.monotonic() > deadline:
            with open(log_path, "rb") as f:
                err = f.read().decode(errors="replace").strip()
            raise BenchError("%s vde_switch failed to start (%s): %s" % (
                kind, "exit %s" % p.returncode if p.poll() is not None else "timeout", err))
        time.sleep(0.01)
    return p, path


def start_client(children: Children, vdeload: str, argv: list[str],
                 cpus=()) -> subprocess.Popen:
    """A load generator that has attached (said READY), pinned to ``cpus``."""
    p = children.start([vdeload] + argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    pin(p, cpus)
    try:
        line = read_line(p, 15, "vdeload %s to attach" % argv[0])
    except BenchError as e:
        err = p.stderr.read().decode(errors="replace").strip() if p.poll() is not None else ""
        raise BenchError("%s %s" % (e, err)) from None
    if line != "READY":
        raise BenchError("vdeload %s said %r" % (argv[0], line))
    return p


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError("no VmRSS for %d" % pid)


# -- pinning ----------------------------------------------------------------------
def auto_pinning() -> tuple:
    """(switch CPUs, client CPUs): the switch alone on the last CPU, the
    load generators on the others; () on a single CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    return ({cpus[-1]}, set(cpus[:-1])) if len(cpus) >= 2 else ()


def pin(p: subprocess.Popen, cpus) -> None:
    if cpus:
        try:
            os.sched_setaffinity(p.pid, cpus)
        except OSError:
            pass


def pinning_line(pinning: tuple) -> str:
    if not pinning:
        return "pinning: off"
    return "pinning: switch on CPU %s, load generators on CPU %s" % (
        ",".join(map(str, sorted(pinning[0]))), ",".join(map(str, sorted(pinning[1]))))


# -- the report ---------------------------------------------------------------------
def load_average() -> str:
    return " ".join("%.2f" % x for x in os.getloadavg())


def machine_header(switches: dict | None = None) -> list[str]:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/sys/net/unix/max_dgram_qlen") as f:
            qlen = f.read().strip()
    except OSError:
        qlen = "?"
    out = ["machine: %s, nproc=%d, CPU: %s" % (platform.node(), os.cpu_count() or 0, cpu),
           "kernel %s, python %s, net.unix.max_dgram_qlen=%s" % (
               platform.release(), platform.python_version(), qlen),
           "load average before start: %s" % load_average()]
    if switches:
        out.append("switches: %s (ours on %s)" % (
            "  ".join("%s=%s" % (k, " ".join(v) if isinstance(v, list) else v)
                      for k, v in switches.items()), sys.executable))
    return out


def run_main(body, children: Children | None = None) -> int:
    """``body()`` with Ctrl-C and SIGTERM turned into a clean exit (130),
    a BenchError into its message (2), and every child of ``children``
    stopped by PID at the end, whatever happened."""
    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)   # even if started in the background
    try:
        return body()
    except BenchError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if children is not None:
            children.cleanup()
