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
GROUPS_ENV = "VDE_IPN_XDIST_GROUPS"


def _rank(item) -> int:
    path = item.nodeid.split("::", 1)[0]
    for i, name in enumerate(FIRST):
        if path.endswith(name):
            return i
    return len(FIRST)


def _grouped(items) -> list:
    """(node id, group) of the tests to keep together: those marked
    ``xdist_group(NAME)`` (tests that share state outside the test, such as
    files in /tmp), and those that use a module-scoped fixture (booted
    guests, namespaces, a compiled helper), by file."""
    found = []
    for item in items:
        mark = item.get_closest_marker("xdist_group")
        info = getattr(item, "_fixtureinfo", None)
        if mark is not None:
            found.append((item.nodeid, "group:%s" % (mark.args[0] if mark.args else
                                                     mark.kwargs.get("name", "default"))))
        elif info is not None and any(fd.scope in _SHARED_SCOPES for name in info.names_closure
                                      for fd in info.name2fixturedefs.get(name, ())):
            found.append((item.nodeid, item.nodeid.split("::", 1)[0]))
    return found


def pytest_configure(config):
    # the xdist controller: a directory where the workers say which tests
    # must stay on one worker (they collect; it does not)
    if (not os.environ.get("PYTEST_XDIST_WORKER") and config.pluginmanager.has_plugin("xdist")
            and config.getoption("dist", "no") != "no" and not os.environ.get(GROUPS_ENV)):
        import tempfile
        os.environ[GROUPS_ENV] = tempfile.mkdtemp(prefix="vde-ipn-groups-")
        config._vde_groups_dir = os.environ[GROUPS_ENV]


def pytest_unconfigure(config):
    d = getattr(config, "_vde_groups_dir", None)
    if d:
        import shutil
        shutil.rmtree(d, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    """In an xdist worker: the files in FIRST come first, and the tests to
    keep together are written down for the scheduler."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    items.sort(key=_rank)
    d = os.environ.get(GROUPS_ENV)
    if d:
        tmp = os.path.join(d, ".%s" % worker)
        with open(tmp, "w") as f:
            f.write("".join("%s\t%s\n" % pair for pair in _grouped(items)))
        os.rename(tmp, os.path.join(d, worker))


@pytest.hookimpl(optionalhook=True)             # a hook of xdist's: pytest -p no:xdist works too
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup``: the tests of a file that use a module fixture
    are one unit of work (they run on one worker, which sets the fixture up
    once), as are the tests of one ``xdist_group``; every other test is a
    unit of its own.  Units are handed out in collection order (FIRST
    first), with --no-loadscope-reorder.  (xdist 3.8 itself groups by
    appending the group to the node id, which pytest 9 no longer reads.)"""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class FileGroups(LoadGroupScheduling):
        grouped = None

        def _split_scope(self, nodeid):
            if "@" in nodeid.rsplit("]", 1)[-1]:
                return super()._split_scope(nodeid)     # an explicit xdist_group
            if self.grouped is None:
                self.grouped = {}
                d = os.environ.get(GROUPS_ENV)
                for name in os.listdir(d) if d else ():
                    if not name.startswith("."):
                        with open(os.path.join(d, name)) as f:
                            self.grouped.update(line.rsplit("\t", 1)
                                                for line in f.read().splitlines())
            return self.grouped.get(nodeid, nodeid)

    return FileGroups(config, log)
