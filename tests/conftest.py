import os
import signal
import sys

import pytest
from hypothesis import settings

# Examples are judged by what they produce, not by how long one takes: on a
# loaded machine a slow example is not a failure.
settings.register_profile("vde", deadline=None)
settings.load_profile("vde")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support import C_TOOLS, OURS, Processes, Switch  # noqa: E402


@pytest.fixture
def procs():
    p = Processes()
    yield p
    p.cleanup()


@pytest.fixture
def tree(procs):
    """PIDs of helper processes a test found (a dpipe's or UML's children,
    see ``support.descendants``, or a daemon's from its pid file); killed
    at teardown, after ``procs``."""
    pids = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def sockdir(tmp_path_factory):
    """A short directory for unix sockets (sun_path is 108 bytes)."""
    import tempfile
    d = tempfile.mkdtemp(prefix="vt", dir="/tmp")
    yield d
    import shutil
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=["ours", "c"])
def switch_kind(request):
    return request.param


def make_switch(procs, kind: str, path: str, *args, **kw) -> Switch:
    tool = OURS["vde_switch"] if kind == "ours" else C_TOOLS["vde_switch"]
    return Switch(procs, tool, path, *args, **kw)


@pytest.fixture
def new_switch(procs):
    def factory(kind: str, path: str, *args, **kw):
        return make_switch(procs, kind, path, *args, **kw)
    return factory
