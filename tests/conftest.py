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


# -- the parallel suite (pytest-xdist, ``--dist loadgroup``) -----------------------
# Test files that take longest (a module whose guests boot once, or one long
# test), longest first as measured with --durations: under xdist they are
# handed out before everything else, so that no worker begins one as the
# others run out of work.
FIRST = (
    "compat/test_vde_autolink.py",          # a link's retry comes 60 s after its wire dies
    "integration/test_qemu_netdevs.py",
    "integration/test_guests.py",
    "integration/test_wirefilter_guests.py",
    "integration/test_slirp_guests.py",
    "integration/test_overlay_guests.py",
    "integration/test_grab.py",
    "integration/test_console_fuzz.py",
    "integration/test_tap.py",
    "integration/test_ctl_fuzz.py",
    "integration/test_kvde_guests.py",
    "integration/test_scapy_guests.py",
    "integration/test_benchmark_runs.py",
    "integration/test_slirp_benchmark_runs.py",
    "integration/test_passt.py",
    "integration/test_lossless.py",
)
_SHARED_SCOPES = ("module", "class", "package")


def _rank(item) -> int:
    path = item.nodeid.split("::", 1)[0]
    for i, name in enumerate(FIRST):
        if path.endswith(name):
            return i
    return len(FIRST)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """In an xdist worker: a test that uses a module-scoped fixture (booted
    guests, a compiled helper, namespaces) joins its file's group, so the
    file's tests run on one worker and set that up once; every other test
    is handed out on its own.  The files in FIRST come first."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    for item in items:
        defs = getattr(item, "_fixtureinfo", None)
        if defs is None:
            continue
        shared = any(fd.scope in _SHARED_SCOPES
                     for name in defs.names_closure
                     for fd in defs.name2fixturedefs.get(name, ()))
        if shared:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
    items.sort(key=_rank)
