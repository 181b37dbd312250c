"""Fixtures for the IPN tests: agents are real processes, killed by PID."""

import json
import os
import select
import shutil
import signal
import subprocess
import tempfile

import pytest

from support import require
from vde_ipn.io.ipn.companion import remove_rings

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT = os.path.join(HERE, "ipn_agent.py")
SYSTEM_PYTHON = "/usr/bin/python3"          # reachable by nobody, unlike a venv in /root
SETPRIV = "/usr/bin/setpriv"
AS_NOBODY = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"]


class Agent:
    """One agent process; :meth:`call` sends a request and waits for the reply."""

    def __init__(self, procs, *, user=None, groups=None):
        argv = [require(SYSTEM_PYTHON), AGENT]
        if user == "nobody":
            as_nobody = AS_NOBODY if groups is None else (
                AS_NOBODY[:-1] + ["--groups=" + ",".join(str(g) for g in groups)])
            argv = [require(SETPRIV)] + as_nobody + argv
        self.proc = procs.start(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def call(self, op, timeout=30.0, **kw):
        self.proc.stdin.write((json.dumps(dict(op=op, **kw)) + "\n").encode())
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise AssertionError("agent did not answer %s within %ss" % (op, timeout))
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("agent died during %s: %s"
                                 % (op, self.proc.stderr.read().decode()))
        return json.loads(line)

    def ok(self, op, **kw):
        reply = self.call(op, **kw)
        assert reply["ok"], "%s failed: %s" % (op, reply)
        return reply

    def start(self, op, **kw):
        """Send a request without waiting (collect it with :meth:`result`)."""
        self.proc.stdin.write((json.dumps(dict(op=op, **kw)) + "\n").encode())
        self.proc.stdin.flush()

    def result(self, timeout=60.0):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, "agent did not answer within %ss" % timeout
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("agent died: %s" % self.proc.stderr.read().decode())
        return json.loads(line)

    def kill(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def agent(procs):
    def make(user=None, groups=None):
        return Agent(procs, user=user, groups=groups)
    return make


@pytest.fixture
def netdir():
    """A directory under /tmp that the nobody user can enter and write."""
    d = tempfile.mkdtemp(prefix="ipn", dir="/tmp")
    os.chmod(d, 0o777)
    yield d
    for root, dirs, _files in os.walk(d):              # rings of members killed here
        if os.path.basename(root).startswith(".") and "w" in dirs:
            remove_rings(root)
    shutil.rmtree(d, ignore_errors=True)
