"""vde_switch's command line and process behaviour, ours next to 2.3.2's.

Each case runs the same argv against Debian's /usr/bin/vde_switch and
against compat/vde_switch, each in its own directory, and compares exit
status, stdout and stderr once the program path and the directory are
replaced by placeholders.  Deliberate differences are tested on ours
alone and say so.
"""

import os
import re
import signal
import socket
import stat
import subprocess
import time

import pytest

from support import C_TOOLS, OURS, STARTUP, listening, require, wait_for

KINDS = ("c", "ours")


def tool(kind):
    return require(C_TOOLS["vde_switch"] if kind == "c" else OURS["vde_switch"])


class Side:
    """One implementation's run: its own root directory and process."""

    def __init__(self, procs, sockdir, kind):
        self.procs, self.kind, self.tool = procs, kind, tool(kind)
        self.root = os.path.join(sockdir, kind)
        os.makedirs(self.root, exist_ok=True)
        self.dir = os.path.join(self.root, "sw")
        self.mgmt = os.path.join(self.root, "m")
        self.pidfile = os.path.join(self.root, "pid")
        self.proc = None

    def argv(self, args):
        return [self.tool] + [a.format(D=self.dir, M=self.mgmt, P=self.pidfile, R=self.root)
                              for a in args]

    def start(self, args, stdin=subprocess.PIPE, wait_ctl=True, **kw):
        """Start with ``args``; unless ``wait_ctl`` is False wait for the ctl
        socket (in ``wait_ctl`` if it is a path, else in ``self.dir``)."""
        self.proc = self.procs.start(self.argv(args), stdin=stdin,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
        if wait_ctl:
            ctl = os.path.join(self.argv([wait_ctl])[1] if wait_ctl is not True
                               else self.dir, "ctl")
            wait_for(lambda: self.proc.poll() is not None or listening(ctl),
                     STARTUP, "%s switch to start" % self.kind)
        return self.proc

    def finish(self, timeout=20.0):
        """Close stdin (EOF) if still running; (status, stdout, stderr) normalised."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
            self.proc.stdin = None
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, self.norm(out), self.norm(err)

    def run(self, args, stdin=subprocess.DEVNULL, timeout=20.0):
        """Run to completion (for argv that make the switch exit)."""
        self.start(args, stdin=stdin, wait_ctl=False)
        return self.finish(timeout)

    def norm(self, data):
        text = data.decode() if isinstance(data, bytes) else data
        return text.replace(self.tool, "PROG").replace(self.root, "@R")

    def cmd(self, line):
        return self.norm(session(self.mgmt, [line])[0])


def session(path, lines, timeout=5.0):
    """One mgmt session: the answer (up to the prompt) to each line."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        # the socket file exists a moment before the switch listens on it
        wait_for(lambda: s.connect_ex(path) == 0, what="mgmt socket %s" % path)
        read_until(s, b"\nvde$ ")
        out = []
        for line in lines:
            s.sendall(line.encode() + b"\n")
            out.append(read_until(s, b"\nvde$ ")[:-6].decode())
        return out
    finally:
        s.close()


def read_until(s, marker):
    buf = b""
    while not buf.endswith(marker):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def showinfo_norm(text):
    return re.sub(r"pid \d+ MAC [0-9a-f:]{17} uptime \d+", "pid P MAC M uptime U", text)


@pytest.fixture
def sides(procs, sockdir):
    return {k: Side(procs, sockdir, k) for k in KINDS}


def both_running(sides, args, commands=()):
    """Start both with stdin held open, run mgmt commands, then EOF both.

    Returns {kind: (status, stdout, stderr, [command outputs])}."""
    res = {}
    for kind, side in sides.items():
        side.start(["-s", "{D}", "-M", "{M}"] + list(args))
        assert side.proc.poll() is None, side.finish()
        outs = [side.cmd(c) for c in commands]
        res[kind] = side.finish() + (outs,)
    return res


def assert_same(res):
    assert res["ours"] == res["c"]


# -- option spellings ------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["-s", "{D}"], ["-sock", "{D}"], ["--sock", "{D}"], ["--sock={D}"],
    ["-vdesock", "{D}"], ["-unix", "{D}"], ["-so", "{D}"], ["--vde={D}"], ["-s{D}"],
])
def test_sock_spellings(sides, args):
    res = {}
    for kind, side in sides.items():
        side.start(args + ["-M", "{M}"])
        assert os.path.exists(os.path.join(side.dir, "ctl"))
        out = side.cmd("ds/showinfo")
        res[kind] = side.finish() + (out,)
        assert not os.path.exists(side.dir)
    assert "ctl dir @R/sw\n" in res["c"][3]
    assert_same(res)


@pytest.mark.parametrize("args", [
    ["-n", "8"], ["-numports", "8"], ["--numports=8"], ["-n", "0x10"], ["-n", "010"],
    ["--n", "4"], ["-num", "5"], ["-n8"], ["-n", "abc"], ["-n", "1"],
])
def test_numports(sides, args):
    res = both_running(sides, args, ["port/showinfo"])
    assert "Numports=" in res["c"][3][0]
    assert_same(res)


@pytest.mark.parametrize("args", [["-x"], ["-hub"], ["--hub"], ["-x", "-F"], ["-hu"]])
def test_hub(sides, args):
    res = both_running(sides, args, ["port/showinfo"])
    assert "HUB=true" in res["c"][3][0]
    assert_same(res)


@pytest.mark.parametrize("args", [
    ["-m", "660"], ["-mode", "666"], ["--mod=640"], ["--dirmode", "2770"], ["-m", "abc"],
    ["-m", "600", "-m", "xyz"], ["--dirmode", "750", "-m", "640"], [],
])
def test_modes(sides, args):
    res = {}
    for kind, side in sides.items():
        side.start(["-s", "{D}", "-M", "{M}"] + args)
        modes = (stat.S_IMODE(os.stat(side.dir).st_mode),
                 stat.S_IMODE(os.stat(os.path.join(side.dir, "ctl")).st_mode))
        info = side.cmd("ds/showinfo")
        res[kind] = side.finish() + (info, modes)
    assert_same(res)


@pytest.mark.parametrize("value", ["100", "128", "3", "0", "1", "abc", "0x40", "1025"])
def test_hashsize(sides, value):
    res = both_running(sides, ["--hashsize", value], ["hash/showinfo"])
    assert "Hash size " in res["c"][3][0]
    assert_same(res)


def test_hashsize_warning_text(sides):
    res = both_running(sides, ["--hashsize", "100"], ["hash/showinfo"])
    assert "PROG: Hash size must be a power of 2. 100 rounded to 128\n" in res["c"][2]
    assert "Hash size 128\n" in res["c"][3][0]
    assert_same(res)


@pytest.mark.parametrize("mac", [
    "02:11:22:33:44:55", "2.11.22.33.44.55", "0x2:1ff:3:4:5:6junk", " a: b:c:d:e:f",
])
def test_macaddr_good(sides, mac):
    res = both_running(sides, ["--macaddr", mac], ["showinfo"])
    for kind in KINDS:
        res[kind] = res[kind][:3] + (re.sub(r"pid \d+ (.*) uptime \d+", r"\1",
                                            res[kind][3][0]),)
    assert re.search(r"\nMAC [0-9a-f:]{17}\n", res["c"][3])
    assert_same(res)


def test_ambiguous_prefix_then_operand(sides):
    """"--mo 600": --mo is ambiguous, so 600 is an extra operand: usage, exit 1."""
    res = {k: s.run(["-s", "{D}", "--mo", "600"]) for k, s in sides.items()}
    assert res["c"][0] == 1
    assert res["ours"][0::2] == res["c"][0::2]


@pytest.mark.parametrize("args", [
    ["--macaddr", "zz"], ["--macaddr", "1:2:3:4:5"], ["-macaddr", "1.2.3.4.5:6"],
    ["--bogus", "--macaddr", "zz"], ["--macaddr", "zz", "--bogus"],
    ["extra"], ["-x", "one", "two"], ["--bogus", "extra"],
])
def test_usage_exits(sides, args):
    res = {k: s.run(["-s", "{D}"] + args) for k, s in sides.items()}
    for kind in KINDS:
        rc, out, err = res[kind]
        assert rc == 1 and out.startswith("Usage: vde_switch [OPTIONS]\n")
        assert not os.path.exists(sides[kind].dir)
    assert res["ours"][0::2] == res["c"][0::2]          # status and stderr
    if "zz" in args:
        assert "PROG: Invalid MAC Addr zz\n" in res["c"][2]


@pytest.mark.parametrize("args", [
    ["-g", "nosuchgroup"], ["--group=nosuchgroup"], ["--mgmtgroup", "nosuchgroup"],
    ["--bogus", "-g", "nosuchgroup"], ["-n", "0"], ["-n", "-3"],
    ["--hashsize", "5", "-n", "0"],
])
def test_fatal_option_values(sides, args):
    res = {k: s.run(["-s", "{D}"] + args) for k, s in sides.items()}
    assert res["c"][0] == 1
    assert_same(res)
    assert not os.path.exists(sides["ours"].dir)


def test_no_such_group_message(sides):
    assert sides["ours"].run(["-s", "{D}", "-g", "nosuchgroup"]) == \
        (1, "", "No such group 'nosuchgroup'\n")


@pytest.mark.parametrize("args", [
    ["--bogus"], ["--m"], ["--h"], ["--d"], ["--p"], ["--v"], ["--mo"], ["--mg"],
    ["-so"], ["--hub=1"], ["-q"], ["-nostd"], ["--bogus=3", "-zq"], ["-D", "3"],
    ["--c"],
])
def test_option_errors_keep_running(sides, args):
    res = {}
    for kind, side in sides.items():
        side.start(["-s", "{D}", "-M", "{M}"] + args)
        alive = side.proc.poll() is None
        res[kind] = side.finish() + (alive,)
    assert_same(res)


def test_unknown_option_message(sides):
    res = both_running(sides, ["--bogus"])
    assert res["c"][2] == ("PROG: unrecognized option '--bogus'\n"
                           "PROG: EOF on stdin, cleaning up and exiting\n")
    assert_same(res)


def test_ambiguous_prefix_message(sides):
    res = both_running(sides, ["--m"])
    assert res["c"][2].startswith(
        "PROG: option '--m' is ambiguous; possibilities: '--macaddr' '--mod' '--mode'"
        " '--mgmt' '--mgmtmode' '--mgmtgroup'\n")
    assert_same(res)


def test_help(sides):
    res = {k: s.run(["-h"]) for k, s in sides.items()}
    for kind in KINDS:
        rc, out, err = res[kind]
        assert (rc, err) == (1, "")
        assert out.startswith("Usage: vde_switch [OPTIONS]\n")   # the wording is our own


@pytest.mark.parametrize("flag", ["-v", "--version", "-version", "-vers"])
def test_version(sides, flag):
    res = {k: s.run(["-s", "{D}", flag]) for k, s in sides.items()}
    for kind in KINDS:
        rc, out, err = res[kind]
        assert (rc, err, out.split("\n")[0]) == (0, "", "VDE 2.3.2")
        assert not os.path.exists(sides[kind].dir)


@pytest.mark.parametrize("flag", ["-nostdin", "--nostdin"])
def test_nostdin_is_ours(sides, flag):
    """Deliberate: -nostdin/--nostdin means "no stdin console" (2.3.2 read
    -nostdin as -n ostdin and has no --nostdin)."""
    ours = sides["ours"]
    ours.start(["-s", "{D}", "-M", "{M}", flag], stdin=subprocess.DEVNULL)
    time.sleep(0.5)
    assert ours.proc.poll() is None
    assert "Numports=32\n" in ours.cmd("port/showinfo")
    ours.proc.send_signal(signal.SIGTERM)
    assert ours.finish() == (0, "", "PROG: Caught signal 15, cleaning up and exiting\n")


def test_nostdin_prefix_keeps_its_meaning(sides):
    """Only the exact words are ours: "-nost" is still -n ost, "--no" is unknown."""
    res = both_running(sides, ["-nost", "--no"], ["port/showinfo"])
    assert_same(res)


def test_c_reads_nostdin_as_numports(sides):
    c = sides["c"]
    assert c.run(["-s", "{D}", "-nostdin"]) == (
        0, "", "PROG: EOF on stdin, cleaning up and exiting\n")


# -- runtime ---------------------------------------------------------------------

def test_eof_on_stdin(sides):
    res = {}
    for kind, side in sides.items():
        side.start(["-s", "{D}", "-M", "{M}"])
        res[kind] = side.finish()
        assert not os.path.exists(side.dir) and not os.path.exists(side.mgmt)
    assert res["c"] == (0, "", "PROG: EOF on stdin, cleaning up and exiting\n")
    assert_same(res)


def test_dev_null_stdin_exits_at_once(sides):
    res = {k: s.run(["-s", "{D}"]) for k, s in sides.items()}
    assert res["c"] == (0, "", "PROG: EOF on stdin, cleaning up and exiting\n")
    assert_same(res)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals(sides, signum):
    res = {}
    for kind, side in sides.items():
        side.start(["-s", "{D}", "-M", "{M}", "-p", "{P}"])
        # started: the pid file written and the mgmt socket listening (2.3.2
        # opens the mgmt socket after the ctl one)
        wait_for(lambda: pid_written(side.pidfile) and listening(side.mgmt),
                 STARTUP, "pid file and mgmt socket")
        side.proc.send_signal(signum)
        side.proc.wait(timeout=5)
        res[kind] = side.finish()
        assert not os.path.exists(side.dir), kind
        assert not os.path.exists(side.mgmt) and not os.path.exists(side.pidfile), kind
    assert res["c"] == (0 if signum == signal.SIGTERM else -signum, "",
                        "PROG: Caught signal %d, cleaning up and exiting\n" % signum)
    assert_same(res)


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2,
                                    signal.SIGPIPE, signal.SIGALRM])
def test_ignored_signals(sides, signum):
    res = {}
    for kind, side in sides.items():
        side.start(["-s", "{D}", "-M", "{M}"])
        side.proc.send_signal(signum)
        time.sleep(0.3)
        alive = side.proc.poll() is None
        res[kind] = side.finish() + (alive,)
    assert res["c"][3] is True
    assert_same(res)


def pid_written(path):
    try:
        with open(path) as f:
            return f.read().endswith("\n")
    except FileNotFoundError:
        return False


def test_pidfile(sides):
    res = {}
    for kind, side in sides.items():
        side.start(["-s", "{D}", "-p", "{P}"])
        wait_for(lambda: pid_written(side.pidfile), what="pid file")   # made, then written
        with open(side.pidfile) as f:
            assert f.read() == "%d\n" % side.proc.pid
        res[kind] = side.finish()
        assert not os.path.exists(side.pidfile)
    assert_same(res)


def test_relative_pidfile_is_resolved_against_the_start_dir(sides):
    res = {}
    for kind, side in sides.items():
        side.start(["-s", "{D}", "-p", "pidrel"], cwd=side.root)
        path = os.path.join(side.root, "pidrel")
        wait_for(lambda: os.path.exists(path), what="pid file")
        res[kind] = side.finish()
        assert not os.path.exists(path)
    assert_same(res)


def test_existing_pidfile(sides):
    res = {}
    for kind, side in sides.items():
        with open(side.pidfile, "w") as f:
            f.write("1\n")
        res[kind] = side.run(["-s", "{D}", "-M", "{M}", "-p", "{P}"])
        assert not os.path.exists(side.dir) and not os.path.exists(side.mgmt)
    assert res["c"] == (1, "", "PROG: Error in pidfile creation: File exists\n")
    assert_same(res)
    # deliberate: 2.3.2 then deletes the pid file it failed to create; ours leaves it
    assert open(sides["ours"].pidfile).read() == "1\n"


def test_pidfile_in_missing_dir(sides):
    res = {k: s.run(["-s", "{D}", "-p", "{R}/none/pid"]) for k, s in sides.items()}
    assert res["c"][0] == 1
    assert_same(res)


def test_daemon(sides, tree):
    res = {}
    for kind, side in sides.items():
        rc, out, err = side.run(["-s", "{D}", "-M", "{M}", "-d", "-p", "{P}"])
        wait_for(lambda: pid_written(side.pidfile) and listening(side.mgmt),
                 what="daemon files")
        pid = int(open(side.pidfile).read())
        tree.append(pid)
        assert pid != side.proc.pid
        assert os.path.exists(os.path.join(side.dir, "ctl"))
        info = showinfo_norm(side.cmd("showinfo"))
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not os.path.exists(side.dir) and not os.path.exists(side.pidfile)
                 and not os.path.exists(side.mgmt), what="daemon clean-up")
        res[kind] = (rc, out, err, info)
    assert res["c"][:3] == (0, "", "")
    assert_same(res)


def test_stale_ctl_is_replaced(sides):
    res = {}
    for kind, side in sides.items():
        side.start(["-s", "{D}"])
        side.proc.kill()
        side.proc.wait()
        assert os.path.exists(os.path.join(side.dir, "ctl"))
        side.start(["-s", "{D}", "-M", "{M}"])
        assert side.proc.poll() is None
        res[kind] = side.finish()
        assert not os.path.exists(side.dir)
    assert_same(res)


def test_live_ctl_conflict(sides):
    res = {}
    for kind, side in sides.items():
        first = side.start(["-s", "{D}"])
        res[kind] = side.run(["-s", "{D}", "-M", "{M}"])
        assert first.poll() is None and os.path.exists(os.path.join(side.dir, "ctl"))
        assert not os.path.exists(side.mgmt)
    assert res["c"] == (255, "", "PROG: Could not bind to socket '@R/sw/ctl': Address "
                        "already in use\nPROG: Cleanup not removing files\n")
    assert_same(res)


@pytest.mark.parametrize("where", ["{R}/none/sw", "{R}/file", "{R}/file/sw"])
def test_ctl_dir_errors(sides, where):
    res = {}
    for kind, side in sides.items():
        open(os.path.join(side.root, "file"), "w").close()
        res[kind] = side.run(["-s", where])
    assert res["c"][0] == 255
    assert_same(res)


def test_mgmt_bind_error_is_not_fatal(sides):
    res = {}
    for kind, side in sides.items():
        side.start(["-s", "{D}", "-M", "{R}/none/m"])
        res[kind] = side.finish()
    assert "PROG: mgmt bind No such file or directory\n" in res["c"][2]
    assert_same(res)


def test_mgmt_held_by_live_owner(sides):
    """The mgmt path answered by another switch: 2.3.2 runs on without one."""
    res = {}
    for kind, side in sides.items():
        other = side.start(["-s", "{R}/other", "-M", "{M}"], wait_ctl="{R}/other")
        # the mgmt socket comes after the ctl one: it must answer first
        wait_for(lambda: other.poll() is not None or listening(side.mgmt),
                 STARTUP, "the first %s switch's mgmt socket" % kind)
        side.start(["-s", "{D}", "-M", "{M}"])
        info = side.norm(session(side.mgmt, ["ds/showinfo"])[0])
        res[kind] = side.finish() + (info, other.poll())
    assert "ctl dir @R/other\n" in res["c"][3]
    assert_same(res)


def test_mgmt_banner_and_prompt_bytes(sides):
    res = {}
    for kind, side in sides.items():
        side.start(["-s", "{D}", "-M", "{M}"])
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        wait_for(lambda: s.connect_ex(side.mgmt) == 0, what="mgmt socket")
        res[kind] = read_until(s, b"$ ")
        s.close()
        side.finish()
    assert res["c"] == (b"VDE switch V.2.3.2\n(C) Virtual Square Team (coord. R. Davoli) "
                        b"2005,2006,2007 - GPLv2\n\nvde$ ")
    assert res["ours"] == res["c"]


def stdin_console(side, args, lines):
    """Write each line to the switch's stdin; the stdout answer to each."""
    side.start(["-s", "{D}"] + args)
    outs = []
    fd = side.proc.stdout.fileno()
    for line in lines:
        side.proc.stdin.write(line.encode() + b"\n")
        side.proc.stdin.flush()
        buf = b""
        while not re.search(rb"(^|\n)1\d\d\d [^\n]*\n$", buf):
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
        outs.append(side.norm(buf))
    side.proc.stdin.close()
    side.proc.stdin = None
    err = side.proc.stderr.read()
    return outs, side.proc.wait(timeout=5), side.norm(err)


def test_stdin_console(sides):
    res = {k: stdin_console(s, [], ["showinfo", "help ds", "port/showinfo", "bogus",
                                    "ds/showinfo", "help hash"])
           for k, s in sides.items()}
    for kind in KINDS:
        outs = res[kind][0]
        outs[0] = showinfo_norm(outs[0])
    assert res["c"][0][0].startswith("0000 DATA END WITH '.'\nVDE switch V.2.3.2\n")
    assert res["c"][0][3] == "1038 Function not implemented\n"
    assert res["c"][1:] == (0, "PROG: EOF on stdin, cleaning up and exiting\n")
    assert res["ours"] == res["c"]


def test_stdin_console_shutdown(sides):
    res = {}
    for kind, side in sides.items():
        side.start(["-s", "{D}"])
        side.proc.stdin.write(b"logout\n")
        side.proc.stdin.flush()
        time.sleep(0.3)
        alive = side.proc.poll() is None
        side.proc.stdin.write(b"shutdown\n")
        side.proc.stdin.flush()
        side.proc.wait(timeout=5)
        res[kind] = side.finish() + (alive,)
        assert not os.path.exists(side.dir)
    assert res["c"] == (0, "", "PROG: Shutdown from mgmt command\n", True)
    assert_same(res)


def test_rcfile(sides):
    res = {}
    for kind, side in sides.items():
        rc = os.path.join(side.root, "rc")
        with open(rc, "w") as f:
            f.write("# a comment\n\n   \t# indented comment\nbogus\nport/sethub 1\n"
                    "logout\nshutdown\n")
        side.start(["-s", "{D}", "-M", "{M}", "-f", rc])
        out = side.cmd("port/showinfo")
        res[kind] = side.finish() + (out,)
    assert "HUB=true" in res["c"][3]
    assert_same(res)


def test_missing_rcfile_is_ignored(sides):
    res = both_running(sides, ["-f", "{R}/no/such/rc"], ["port/showinfo"])
    assert_same(res)
