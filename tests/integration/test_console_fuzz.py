"""No console line ends the switch but ``shutdown``: its three consoles fuzzed.

The switch runs as ``nobody`` (so a line such as ``load /etc/shadow``
cannot reach what a local user may not) in a directory of its own, with
its stdin console on a pipe and a management socket.  Lines are made by
hypothesis from the commands the switch's own ``help`` lists, with
arguments shaped by each command's syntax (numbers at and beyond every
limit, names, MACs, paths), mutated command names, long lines and binary
junk.  Every line is sent on its own and the test waits until the switch
has read it, so each becomes one console read, as a user typing it would.

Checked: the switch never exits and never reports an internal error; its
open descriptors and memory stay flat; it still answers afterwards.  The
lines are then replayed as an rc file (``-f``) to a fresh switch.

``make test`` sends VDE_FUZZ_LINES=20000 lines in all (70 % on the
management socket, 30 % on stdin, in hypothesis examples of ten lines;
one to two minutes), then replays them as an rc file.  A longer run::

    VDE_FUZZ_LINES=500000 .venv/bin/python -m pytest tests/integration/test_console_fuzz.py -q
"""

from __future__ import annotations

import array
import fcntl
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import termios
import threading
import time

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from support import OURS, Processes, require, wait_for

from vde_ipn.engine.switch import commands  # noqa: F401  (fills the table find() reads)
from vde_ipn.engine.switch.console import LOGOUT, SHUTDOWN, find
from vde_ipn.wire.mgmt import LINE_MAX, split_command

SETPRIV = "/usr/bin/setpriv"
AS_NOBODY = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"]
TOTAL_LINES = int(os.environ.get("VDE_FUZZ_LINES", "20000"))
MGMT_LINES = TOTAL_LINES * 7 // 10
STDIN_LINES = TOTAL_LINES - MGMT_LINES
RSS_GROWTH_MAX = 16 << 20               # bytes; Python's allocator is not byte-exact
FIONREAD = termios.FIONREAD             # bytes still unread in a pipe (either end)
SIOCOUTQ = termios.TIOCOUTQ             # bytes a unix stream peer has not read yet


# -- the switch under test ------------------------------------------------------------
class Output(threading.Thread):
    """Drains one of the switch's outputs; keeps the tail and whether EOF came."""

    def __init__(self, read, keep=1 << 16):
        super().__init__(daemon=True)
        self.read, self.keep = read, keep
        self.tail = bytearray()
        self.total = 0
        self.eof = threading.Event()
        self.start()

    def run(self):
        while True:
            try:
                chunk = self.read(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.eof.set()
                return
            self.total += len(chunk)
            self.tail += chunk
            del self.tail[:-self.keep]


class FuzzedSwitch:
    """Our vde_switch as nobody: stdin on a pipe, a mgmt socket, a work dir."""

    def __init__(self, procs, workdir, *extra):
        self.dir = os.path.join(workdir, "sw")
        self.mgmt = os.path.join(workdir, "mgmt")
        argv = [require(SETPRIV)] + AS_NOBODY + [require(OURS["vde_switch"]),
                                                 "-s", self.dir, "-M", self.mgmt] + list(extra)
        self.proc = procs.start(argv, cwd=workdir, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = Output(lambda n: os.read(self.proc.stdout.fileno(), n))
        self.err = Output(lambda n: os.read(self.proc.stderr.fileno(), n), keep=1 << 20)
        wait_for(lambda: os.path.exists(self.mgmt) or self.proc.poll() is not None,
                 20, "the switch to start")
        assert self.proc.poll() is None, self.err.tail.decode(errors="replace")

    def fds(self) -> int:
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def fd_names(self) -> list:
        d = "/proc/%d/fd" % self.proc.pid
        names = []
        for n in sorted(os.listdir(d), key=int):
            try:
                names.append("%s->%s" % (n, os.readlink(os.path.join(d, n))))
            except OSError:
                pass
        return names

    def rss(self) -> int:
        with open("/proc/%d/status" % self.proc.pid) as f:
            kb = re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)
        return int(kb) * 1024

    def alive(self, recent) -> None:
        if self.proc.poll() is not None or b"internal error" in self.err.tail:
            pytest.fail("the switch %s after these lines:\n%s\nstderr:\n%s" % (
                "exited with %s" % self.proc.returncode if self.proc.poll() is not None
                else "reported an internal error",
                "\n".join(repr(x) for x in recent[-20:]),
                self.err.tail.decode(errors="replace")[-3000:]))


def unread(fd: int, request: int) -> int:
    buf = array.array("i", [0])
    fcntl.ioctl(fd, request, buf, True)
    return buf[0]


def wait_read(sw, fd: int, request: int, recent) -> None:
    """Wait until the switch has read everything sent on ``fd``."""
    deadline = time.monotonic() + 30
    while unread(fd, request):
        sw.alive(recent)
        if time.monotonic() > deadline:
            pytest.fail("the switch stopped reading its console after:\n%s"
                        % "\n".join(repr(x) for x in recent[-20:]))
        time.sleep(0.0002)


class Session:
    """A management socket session whose output is drained by a thread."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.out = Output(self.sock.recv)
        wait_for(lambda: b"vde$ " in self.out.tail or self.out.eof.is_set(), 10, "the banner")

    def close(self):
        try:                             # wakes the thread blocked in recv(), so
            self.sock.shutdown(socket.SHUT_RDWR)   # the switch sees the end at once
        except OSError:
            pass
        self.sock.close()


def nobody_dir(parent: str) -> str:
    d = tempfile.mkdtemp(dir=parent)
    nobody = pwd.getpwnam("nobody")
    os.chown(d, nobody.pw_uid, nobody.pw_gid)
    return d


@pytest.fixture(scope="module")
def workdir():
    """A directory only the switch (as nobody) writes in: ``load`` and
    relative paths of fuzzed lines land there and nowhere else."""
    top = tempfile.mkdtemp(prefix="vz", dir="/tmp")
    os.chmod(top, 0o755)
    work = os.path.join(top, "w")
    os.mkdir(work, 0o700)
    nobody = pwd.getpwnam("nobody")
    os.chown(work, nobody.pw_uid, nobody.pw_gid)
    with open(os.path.join(work, "script"), "w") as f:
        f.write("port/create 7\nport/setgroup 7 99999999999999999999\nport/allprint\n")
    os.chown(os.path.join(work, "script"), nobody.pw_uid, nobody.pw_gid)
    yield work
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def fuzzed(workdir):
    procs = Processes()
    try:
        yield FuzzedSwitch(procs, workdir)
    finally:
        procs.cleanup()


SENT: list = []                         # every line sent, replayed as an rc file


# -- the lines --------------------------------------------------------------------------
def _help_rows():
    """(path, syntax) of every row of ``help`` on a fresh switch of ours."""
    from vde_ipn.engine.switch.console import help_lines
    rows = []
    for line in help_lines()[2:]:
        path, syntax = line[:18].strip(), line[19:34].strip()
        rows.append((path, syntax))
    return rows


LIMITS = [0, 1, 2, 31, 32, 4094, 4095, 4096, 65534, 65535, 2**31 - 1, 2**31, -2**31,
          -2**31 - 1, 2**32 - 2, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64, 10**20, 10**40, -1]
NUMBER = st.one_of(
    st.integers(-2, 40).map(str),
    st.sampled_from(LIMITS).map(str),
    st.integers(-2**80, 2**80).map(str),
    st.integers(0, 2**40).map(hex),
    st.integers(0, 4096).map(lambda n: "0%o" % n),
    st.text(alphabet="0123456789+-xXabcdef \t", max_size=24),
)
WHO = st.one_of(st.sampled_from(["root", "nobody", "daemon", "nogroup", "users", "NONE",
                                 "ANY", "65534", "0", "4294967294", "4294967295", "²", "a\0b"]),
                NUMBER, st.text(max_size=24))
MAC = st.one_of(st.sampled_from(["00:11:22:33:44:55", "ff:ff:ff:ff:ff:ff", "0.1.2.3.4.5",
                                 "00:11:22:33:44"]),
                st.text(alphabet="0123456789abcdefABCDEF:.-", max_size=30))
PATH = st.one_of(st.sampled_from(["script", "/dev/zero", "/dev/stdin", "/dev/null", "/proc/self/status",
                                  "/etc/shadow", "/nonexistent", "/", ".", "sw/ctl", "mgmt"]),
                 st.text(max_size=40))
ANYTHING = st.one_of(NUMBER, st.text(max_size=40))
BY_SYNTAX = {"N": NUMBER, "VLAN": NUMBER, "PORT": NUMBER, "ID": NUMBER, "COST": NUMBER,
             "0/1": NUMBER, "1/0": NUMBER, "user": WHO, "MAC": MAC, "path": PATH,
             "library": PATH, "dbgpath": st.one_of(st.sampled_from(
                 ["port/+", "port", "hash/-", "fstp", "", "/"]), st.text(max_size=12))}
SEP = st.sampled_from([" ", "  ", "\t", "", " \t "])
END = st.sampled_from(["\n", "\n", "\r\n", "", " \n", "\n\n"])


@st.composite
def command_line(draw, rows):
    path, syntax = draw(st.sampled_from(rows))
    mutate = draw(st.integers(0, 9))
    if mutate == 0:
        path = path[:draw(st.integers(0, len(path)))]
    elif mutate == 1:
        path += draw(st.text(max_size=8))
    wanted = [BY_SYNTAX.get(tok.strip("[]"), ANYTHING) for tok in syntax.split()
              if syntax != "============"]
    count = draw(st.integers(0, len(wanted) + 2))
    args = [draw(wanted[i] if i < len(wanted) else ANYTHING) for i in range(count)]
    text = path + "".join(draw(SEP) + a for a in args)
    return draw(st.sampled_from(["", " ", "\t"])) + text + draw(END)


def lines(rows):
    return st.one_of(
        command_line(rows).map(lambda s: s.encode()),
        command_line(rows).map(lambda s: s.encode()),
        st.tuples(command_line(rows), st.text(min_size=100, max_size=900)).map(
            lambda t: (t[0].rstrip("\n") + t[1] + "\n").encode()),
        st.binary(max_size=400),
        st.binary(min_size=129, max_size=1200),
    )


def chunks(raw: bytes):
    """The commands one write of ``raw`` becomes: one per read of LINE_MAX bytes."""
    for i in range(0, len(raw), LINE_MAX):
        cmd = find(split_command(raw[i:i + LINE_MAX].decode("utf-8", "replace")))
        yield cmd.action if cmd is not None else None


BATCH = 10                              # lines per hypothesis example


def batches(rows):
    return st.lists(lines(rows), min_size=BATCH, max_size=BATCH)


def fuzz_settings(count):
    """Enough examples of BATCH lines for ``count`` lines to be sent (a few
    generated ones are empty, or stop the switch, and are not sent)."""
    return settings(max_examples=-(-count * 11 // (10 * BATCH)), deadline=None, database=None,
                    phases=[Phase.generate], suppress_health_check=list(HealthCheck))


# commands that legitimately keep a file open until told otherwise
LET_GO = [b"dump/stop\n", b"plugin/del pdump\n", b"plugin/del iplog\n"]


def let_go_of_files(sw):
    """Close the captures and logs fuzzed lines may have opened on purpose
    (one command per write: the console reads one command at a time)."""
    s = Session(sw.mgmt)
    try:
        for line in LET_GO:
            del s.out.tail[:]
            s.sock.sendall(line)
            wait_for(lambda: s.out.tail.endswith(b"vde$ "), 10, "an answer to %r" % line)
    finally:
        s.close()


def check_flat(sw, base, less=0):
    let_go_of_files(sw)
    base_fds, base_rss = base["fds"] - less, base["rss"]
    try:
        wait_for(lambda: sw.fds() <= base_fds, 10, "the switch's fds back to %d" % base_fds)
    except AssertionError:
        ss = subprocess.run(["ss", "-xap"], capture_output=True, text=True).stdout
        pytest.fail("fds were %s, now %s\n%s" % (
            base["names"], sw.fd_names(),
            "\n".join(ln for ln in ss.splitlines() if "pid=%d," % sw.proc.pid in ln)))
    grown = sw.rss() - base_rss
    assert grown < RSS_GROWTH_MAX, "memory grew by %d bytes" % grown


def still_answers(sw, timeout=10):
    s = Session(sw.mgmt)
    try:
        s.sock.sendall(b"port/showinfo\n")
        wait_for(lambda: b"counters=true" in s.out.tail, timeout, "an answer to port/showinfo")
    finally:
        s.close()


# -- the tests ---------------------------------------------------------------------------
KILLERS = [
    (b"port/create 3\n", b"1000 Success"),
    (b"port/setgroup 3 99999999999999999999\n", b"1022 Invalid argument"),
    (b"port/setuser 3 4294967296\n", b"1022 Invalid argument"),
    (b"port/setuser 3 a\0b\n", b"1022 Invalid argument"),
    (b"port/setgroup 3 \xc2\xb2\n", b"1022 Invalid argument"),
    (b"port/print 99999999999999999999\n", b"1022 Invalid argument"),
    (b"vlan/create 4294967297\n", b"1022 Invalid argument"),
    (b"load /dev/zero\n", b"1022 Invalid argument"),
    (b"dump/start a\0b\n", b"1022 Invalid argument"),
    (b"plugin/add pdump\n", b"1000 Success"),
    (b"pdump/filename a\0b\n", b"1022 Invalid argument"),
    (b"port/allprint\n", b"(User: NONE - Group: NONE)"),
]


@pytest.mark.parametrize("console", ["stdin", "mgmt", "rc"])
def test_lines_that_used_to_kill_the_switch(procs, workdir, console):
    """Each answered like 2.3.2 answers a bad argument; the switch serves on."""
    rc = os.path.join(workdir, "killers.rc")
    with open(rc, "wb") as f:
        f.write(b"".join(line for line, _ in KILLERS))
    os.chmod(rc, 0o644)
    sw = FuzzedSwitch(procs, nobody_dir(workdir), *(["-f", rc] if console == "rc" else []))
    if console == "mgmt":
        s = Session(sw.mgmt)
        out = s.out
        for line, want in KILLERS:
            del out.tail[:]
            s.sock.sendall(line)
            wait_for(lambda: want in out.tail or out.eof.is_set(), 10, "%r -> %r" % (line, want))
            sw.alive([line])
        s.close()
    elif console == "stdin":
        out = sw.out
        for line, want in KILLERS:
            os.write(sw.proc.stdin.fileno(), line)
            wait_for(lambda: want in out.tail or sw.proc.poll() is not None, 10,
                     "%r -> %r" % (line, want))
            assert sw.proc.poll() is None, sw.err.tail.decode(errors="replace")
            del out.tail[:]
    still_answers(sw)
    sw.alive([line for line, _ in KILLERS])
    if console == "rc":
        assert b"rc file" not in sw.err.tail


def test_fuzz_mgmt_console(fuzzed):
    sw, rows = fuzzed, _help_rows()
    session = [Session(sw.mgmt)]
    sent, base = [], {}

    @fuzz_settings(MGMT_LINES)
    @given(batches(rows))
    def one(batch):
        for raw in batch:
            actions = list(chunks(raw))
            if SHUTDOWN in actions or not raw:
                continue
            s = session[0]
            try:
                s.sock.sendall(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass
            sent.append(raw)
            wait_read(sw, s.sock.fileno(), SIOCOUTQ, sent)
            if LOGOUT in actions or s.out.eof.is_set():
                wait_for(s.out.eof.is_set, 10, "the session to end after logout")
                s.close()
                session[0] = Session(sw.mgmt)
            sw.alive(sent)
        if not base and len(sent) >= MGMT_LINES // 10:
            base.update(fds=sw.fds(), rss=sw.rss(), names=sw.fd_names())

    one()
    SENT.extend(sent)
    assert len(sent) >= MGMT_LINES, "only %d lines were sent" % len(sent)
    session[0].close()
    check_flat(sw, base, less=1)          # our session is closed
    still_answers(sw)
    sw.alive(sent)


def test_fuzz_stdin_console(fuzzed):
    sw, rows = fuzzed, _help_rows()
    fd = sw.proc.stdin.fileno()
    sent, base = [], {}

    @fuzz_settings(STDIN_LINES)
    @given(batches(rows))
    def one(batch):
        for raw in batch:
            if SHUTDOWN in chunks(raw) or not raw:
                continue
            os.write(fd, raw)
            sent.append(raw)
            wait_read(sw, fd, FIONREAD, sent)
            sw.alive(sent)
        if not base and len(sent) >= STDIN_LINES // 10:
            base.update(fds=sw.fds(), rss=sw.rss(), names=sw.fd_names())

    one()
    SENT.extend(sent)
    assert len(sent) >= STDIN_LINES, "only %d lines were sent" % len(sent)
    check_flat(sw, base)
    still_answers(sw)
    sw.alive(sent)


def test_fuzzed_lines_as_rc_file(procs, workdir):
    """Every line the two tests above sent (or as many new ones, when this
    test runs alone), as the ``-f`` script of a new switch."""
    lines_run = list(SENT)
    if len(lines_run) < TOTAL_LINES:
        @fuzz_settings(TOTAL_LINES - len(lines_run))
        @given(batches(_help_rows()))
        def collect(batch):
            lines_run.extend(batch)
        collect()
    rc = os.path.join(workdir, "fuzz.rc")
    data = b"".join(raw if raw.endswith(b"\n") else raw + b"\n" for raw in lines_run)
    with open(rc, "wb") as f:
        f.write(data[:8 << 20])
    os.chmod(rc, 0o644)
    sw = FuzzedSwitch(procs, nobody_dir(workdir), "-f", rc)
    still_answers(sw, timeout=120)              # answered once the rc file has run
    sw.alive(lines_run[-20:])
