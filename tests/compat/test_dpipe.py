"""dpipe drop-in: the same scenario runs with Debian's /usr/bin/dpipe and with
compat/dpipe, and the observable results must agree (and be what dpipe is
documented to do, so a scenario where both do nothing still fails).

Every dpipe is started as the leader of its own process group; the fixture
SIGKILLs each such group by its id when the test ends, pass or fail.
"""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.real

REAL = "/usr/bin/dpipe"
OURS = str(Path(__file__).resolve().parents[2] / "compat" / "dpipe")
TIMEOUT = 10
if sys.version_info >= (3, 11):
    NEW_GROUP = {"process_group": 0}
else:
    NEW_GROUP = {"preexec_fn": os.setpgrp}


@pytest.fixture
def groups():
    """Process group ids to SIGKILL at teardown, and Popen objects to reap."""
    pgids, procs = [], []
    yield pgids, procs
    for pgid in pgids:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    for proc in procs:
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def both(tmp_path, groups):
    """Start/run one dpipe scenario per implementation in its own directory."""
    assert os.access(REAL, os.X_OK), "%s is missing: apt-get install vdeplug" % REAL
    assert os.access(OURS, os.X_OK), OURS

    class Runner:
        def start(self, exe, args):
            work = tmp_path / ("real" if exe == REAL else "ours")
            work.mkdir(exist_ok=True)
            with open(work / "stdout", "wb") as out, \
                    open(work / "stderr", "wb") as err:
                proc = subprocess.Popen([exe] + list(args), cwd=work,
                                        stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=err, **NEW_GROUP)
            groups[0].append(proc.pid)
            groups[1].append(proc)
            proc.work, proc.exe = work, exe
            return proc

        def finish(self, proc):
            rc = proc.wait(timeout=TIMEOUT)
            text = {}
            for name in ("stdout", "stderr"):
                data = (proc.work / name).read_text(errors="replace")
                text[name] = data.replace(proc.exe, "PROG")
            return rc, text["stdout"], text["stderr"]

        def run(self, args):
            """(real result, our result), each (rc, stdout, stderr)."""
            return tuple(self.finish(self.start(exe, args))
                         for exe in (REAL, OURS))
    return Runner()


def wait_for(predicate, what):
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.02)


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


def lines(text):
    return sorted(text.splitlines())


def test_two_way_data(both):
    left = 'echo ping; read r; echo "left got $r" >&2'
    right = 'read r; echo "right got $r" >&2; echo pong'
    real, ours = both.run(["sh", "-c", left, "=", "sh", "-c", right])
    assert real[0] == ours[0] == 0
    assert lines(real[2]) == lines(ours[2]) == ["left got pong",
                                                "right got ping"]


def test_chain_uses_alternate_fds(both):
    left = 'echo L; read x; echo "left got $x" >&2'
    mid = ('echo "env $ALTERNATE_STDIN $ALTERNATE_STDOUT" >&2; read a;'
           ' echo "mid got $a from left" >&2; echo toR >&4;'
           ' read b <&3; echo "mid got $b from right" >&2; echo toL')
    right = 'read x; echo "right got $x" >&2; echo R'
    real, ours = both.run(["sh", "-c", left, "=", "sh", "-c", mid,
                           "=", "sh", "-c", right])
    assert real[0] == ours[0] == 0
    assert lines(real[2]) == lines(ours[2]) == [
        "env 3 4", "left got toL", "mid got L from left",
        "mid got R from right", "right got toR"]


@pytest.mark.parametrize("opening, closing, expected", [
    ("=}", "}=", "a got c:b:ring"),
    ("={", "{=", "a got b:c:ring"),
])
def test_one_direction_ring(both, opening, closing, expected):
    first = 'echo ring; read x; echo "a got $x" >&2'
    real, ours = both.run(["sh", "-c", first, opening,
                           "sh", "-c", 'read x; echo "b:$x"', closing,
                           "sh", "-c", 'read x; echo "c:$x"'])
    assert real[0] == ours[0] == 0
    assert real[2] == ours[2] == expected + "\n"


@pytest.mark.parametrize("args, status", [
    (["sh", "-c", "exit 3", "=", "sh", "-c", "exit 5"], 5),
    (["sh", "-c", "exit 3", "=", "true", "=", "sh", "-c", "exit 7"], 7),
    (["true", "=", "sh", "-c", "kill -9 $$"], 0),
    (["true", "=", "/nonexistent/command"], 127),
    (["/nonexistent/command", "=", "sh", "-c", "exit 9"], 9),
])
def test_exit_status_of_last_command(both, args, status):
    real, ours = both.run(args)
    assert real == ours
    assert real[0] == status
    assert real[2] == ""     # no diagnostic even for a failed exec


def test_children_inherit_signal_setup(both):
    show = "grep -E '^Sig(Ign|Blk)' /proc/self/status >&2"
    real, ours = both.run(["sh", "-c", show, "=", "true"])
    assert real == ours
    # SIGUSR1/2, SIGPIPE, SIGALRM, SIGSTKFLT, SIGVTALRM, SIGPROF, SIGIO, SIGPWR are
    # ignored by dpipe; the runner may pass on more ignored signals of its own
    ignored = int(re.search(r"SigIgn:\t([0-9a-f]+)", real[2]).group(1), 16)
    assert ignored & 0x3600BA00 == 0x3600BA00


def test_pidfiles_written_and_removed(both):
    show = "cat pid pgrp >&2; ls pid pgrp >&2"
    results = []
    for exe in (REAL, OURS):
        proc = both.start(exe, ["-p", "pid", "--pgrpfile", "pgrp",
                                "sh", "-c", show, "=", "true"])
        rc, out, err = both.finish(proc)
        assert rc == 0
        assert err.splitlines() == ["%d" % proc.pid, "-%d" % proc.pid,
                                    "pgrp", "pid"]
        assert not (proc.work / "pid").exists()
        assert not (proc.work / "pgrp").exists()
        results.append(err.replace(str(proc.pid), "PID"))
    assert results[0] == results[1]


def test_sigterm_removes_pidfile_and_stops_last(both):
    results = []
    for exe in (REAL, OURS):
        proc = both.start(exe, ["-p", "pid", "sh", "-c", "exec sleep 30",
                                "=", "sh", "-c", "echo $$ > last; exec sleep 30"])
        last = proc.work / "last"
        wait_for(lambda: last.exists() and last.read_text().strip()
                 and (proc.work / "pid").exists(), "dpipe to start")
        lastpid = int(last.read_text())
        # signal dpipe only once the last command has become "sleep", so the
        # check below does not depend on where the shell was when it arrived
        wait_for(lambda: _cmdline(lastpid).startswith(b"sleep"), "last command to exec")
        os.kill(proc.pid, signal.SIGTERM)
        rc, out, err = both.finish(proc)
        wait_for(lambda: not os.path.exists("/proc/%d" % lastpid)
                 or "Z" == open("/proc/%d/stat" % lastpid).read()
                 .rsplit(")", 1)[1].split()[0], "last command to stop")
        results.append((rc, err, (proc.work / "pid").exists()))
    assert results[0] == results[1] == (0, "", False)


def test_sigint_kills_the_group(both):
    results = []
    for exe in (REAL, OURS):
        proc = both.start(exe, ["sh", "-c", "echo $$ > first; exec sleep 30",
                                "=", "sleep", "30"])
        first = proc.work / "first"
        wait_for(lambda: first.exists() and first.read_text().strip(),
                 "first command")
        firstpid = int(first.read_text())
        os.kill(proc.pid, signal.SIGINT)
        rc = both.finish(proc)
        wait_for(lambda: not os.path.exists("/proc/%d" % firstpid)
                 or "Z" == open("/proc/%d/stat" % firstpid).read()
                 .rsplit(")", 1)[1].split()[0], "first command to stop")
        results.append(rc)
    assert results[0] == results[1] == (-signal.SIGINT, "", "")


def test_nowrap_execs_last_command_in_place(both):
    check = 'test "$$" = "$(cat pid)" && echo same >&2; exit 4'
    real, ours = both.run(["-n", "-p", "pid", "true", "=", "sh", "-c", check])
    assert real == ours == (4, "", "same\n")


def test_daemon(both, groups, tmp_path):
    results = []
    for exe in (REAL, OURS):
        work = tmp_path / ("daemon-real" if exe == REAL else "daemon-ours")
        work.mkdir()
        first = 'pwd > %s/cwd; echo $$ > %s/first; exec sleep 30' % (work, work)
        proc = both.start(exe, ["-d", "-p", str(work / "pid"), "-P",
                                str(work / "pgrp"), "sh", "-c", first, "=",
                                "sh", "-c", "exit 0"])
        assert both.finish(proc) == (0, "", "")
        wait_for(lambda: (work / "first").exists() and (work / "pgrp").exists()
                 and (work / "first").read_text().strip(), "daemon")
        daemon = int((work / "pid").read_text())
        groups[0].append(daemon)
        assert daemon != proc.pid
        assert (work / "pgrp").read_text() == "-%d\n" % daemon
        assert os.getsid(daemon) == daemon
        os.kill(daemon, signal.SIGTERM)
        wait_for(lambda: not (work / "pid").exists(), "pid file removal")
        results.append((work / "cwd").read_text())
    assert results == ["/\n", "/\n"]


@pytest.mark.parametrize("args", [
    [], ["true"], ["true", "="], ["=", "true"], ["true", "=", "true", "="],
    ["true", "=", "=", "true"], ["sh", "-c", "sleep 5", "=}", "true"],
    ["-p", "pid", "true", "="],
])
def test_usage_errors(both, args):
    real, ours = both.run(args)
    assert real == ours
    assert real[0] == 0
    assert real[2].startswith("Usage:\n  PROG [OPTIONS} cmd1 [arg1...] = ")
    assert "-h | --help" in real[2]


def test_help_ends_with_sigterm(both):
    real, ours = both.run(["-x", "--help", "-y", "true", "=", "true"])
    assert real == ours
    assert real[0] == -signal.SIGTERM
    assert real[2].startswith("PROG: invalid option -- 'x'\nUsage:\n")


def test_option_diagnostics(both):
    real, ours = both.run(["-q", "--p", "--daemon=1", "--pidfile", "--",
                           "sh", "-c", "exit 2", "=", "sh", "-c", "exit 3"])
    assert real == ours
    assert real[0] == 3
    assert real[2] == (
        "PROG: invalid option -- 'q'\n"
        "PROG: option '--p' is ambiguous; possibilities: '--pidfile'"
        " '--pgrpfile'\n"
        "PROG: option '--daemon' doesn't allow an argument\n")
