"""Tap and grab fail with messages that say what to do, and load lazily."""

import errno
import os
import subprocess
import sys

import pytest

from vde_ipn.io.plugs import grab, tap

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_tap_without_the_clone_device():
    with pytest.raises(tap.TapError) as e:
        tap.TapDevice("tapx", clone="/nonexistent/tun")
    assert e.value.errno == errno.ENOENT
    assert e.value.strerror.startswith("tap needs /nonexistent/tun (the tun module)")


def test_tap_name_too_long():
    with pytest.raises(tap.TapError) as e:
        tap.open_tun("x" * 16)
    assert e.value.errno == errno.EINVAL and "at most 15 bytes" in e.value.strerror


def test_grab_without_pyroute2(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyroute2", None)     # import now fails
    with pytest.raises(grab.GrabError) as e:
        grab.GrabDevice("lo")
    assert e.value.errno == errno.ENOPKG and "needs the pyroute2 package" in e.value.strerror


def test_grab_of_a_missing_interface():
    with pytest.raises(grab.GrabError) as e:
        grab.GrabDevice("nosuch%d" % os.getpid())
    assert e.value.errno == errno.ENODEV and "no such interface" in e.value.strerror


def test_plain_python3_loads_every_drop_in_without_pyroute2():
    """The system python3 (no pyroute2) imports the tools; pyroute2 stays unloaded."""
    code = ("import sys; sys.path.insert(0, %r)\n"
            "import vde_ipn.cli.switch, vde_ipn.cli.plug, vde_ipn.cli.plug2tap, "
            "vde_ipn.cli.pcapplug, vde_ipn.cli.tunctl\n"
            "assert 'pyroute2' not in sys.modules\n" % REPO)
    res = subprocess.run(["/usr/bin/python3", "-S", "-c", code], stderr=subprocess.PIPE,
                         text=True)
    assert res.returncode == 0, res.stderr
