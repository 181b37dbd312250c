"""Tap interfaces: the host's network stack on our switch.

A QEMU guest (10.77.2.10) boots once on a switch that runs inside a
namespace made here, with ``-t`` creating a tap there.  Each test puts
a tap in a namespace of its own, gives it an address on 10.77.2.0/24
and pings the guest: the switch's ``-t``, ``vde_plug tap://``,
``vde_plug2tap``, and a persistent tap made by ``vde_tunctl`` for an
unprivileged user.  Non-persistent taps go when their process exits.
"""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from guests import QemuGuest
from ifaces import (NOBODY, NsSwitch, address, ifname, in_ns, link, namespaces,  # noqa: F401
                    still_serving,
                   ns_ping)
from support import C_TOOLS, OURS, Processes, StreamPlug, require, wait_for

pytestmark = pytest.mark.real

GUEST = "10.77.2.10"
COMPAT = os.path.dirname(OURS["vde_switch"])
TOOL = {name: os.path.join(COMPAT, name) for name in ("vde_plug2tap", "vde_tunctl")}


class Lab:
    pass


@pytest.fixture(scope="module")
def lab(namespaces):  # noqa: F811
    procs = Processes()
    work = tempfile.mkdtemp(prefix="vt", dir="/tmp")
    os.chmod(work, 0o755)                # an unprivileged plug reaches the switch
    lab = Lab()
    try:
        lab.ns = namespaces.new("tsw")
        lab.tap = ifname("tsw")
        namespaces.owned_link(lab.tap, lab.ns)
        lab.sw = NsSwitch(procs, lab.ns, os.path.join(work, "sw"), "-m", "666", "-t", lab.tap)
        lab.guest = QemuGuest(procs, work, lab.sw.dir, "52:54:00:77:02:10", name="tapguest")
        lab.guest.configure(GUEST + "/24")
        lab.work = work
        yield lab
    finally:
        procs.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def test_switch_tap_pings_a_guest(lab):
    info = link(lab.tap, lab.ns)
    assert info is not None and info["linkinfo"]["info_kind"] == "tun", info
    text = lab.sw.cmd("port/print")
    assert "module tuntap      : %s\n" % lab.tap in text, text
    address(lab.tap, lab.ns, "10.77.2.1/24")
    ns_ping(lab.ns, GUEST)


@pytest.mark.parametrize("tool", ["vde_plug", "vde_plug2tap"])
def test_plug_tap_pings_a_guest_and_goes_with_the_plug(lab, namespaces, procs, tool):  # noqa: F811
    ns = namespaces.new("p" + tool[-3:])
    name = ifname("p" + tool[-3:])
    namespaces.owned_link(name, ns)
    if tool == "vde_plug":
        argv = [require(OURS["vde_plug"]), "tap://" + name, lab.sw.dir]
    else:
        argv = [require(TOOL["vde_plug2tap"]), "-s", lab.sw.dir, name]
    plug = procs.start(in_ns(ns, argv))
    wait_for(lambda: link(name, ns) is not None or plug.poll() is not None,
             what="%s's tap" % tool)
    assert plug.poll() is None, plug.stderr.read().decode()
    address(name, ns, "10.77.2.%d/24" % (2 if tool == "vde_plug" else 3))
    ns_ping(ns, GUEST)
    plug.terminate()
    assert plug.wait(timeout=10) == 0
    assert link(name, ns) is None


def test_plug2tap_stream_mode(lab, namespaces, procs):  # noqa: F811
    """``vde_plug2tap -s -``: frames of the tap on stdin/stdout, no switch."""
    ns = namespaces.new("strm")
    name = ifname("strm")
    namespaces.owned_link(name, ns)
    plug = StreamPlug(procs, "/usr/bin/ip", "netns", "exec", ns, TOOL["vde_plug2tap"],
                      "-s", "-", name)
    wait_for(lambda: link(name, ns) is not None or plug.proc.poll() is not None,
             what="the stream tap")
    address(name, ns, "10.77.9.1/24")
    subprocess.run(in_ns(ns, ["/usr/bin/busybox", "arping", "-c", "1", "-w", "1", "-I", name,
                              "10.77.9.2"]), stdout=subprocess.DEVNULL)
    f = plug.recv_matching(lambda f: f[12:14] == b"\x08\x06" and f[38:42] == bytes(
        [10, 77, 9, 2]), 5)
    assert f is not None, "no ARP from the tap on stdout"
    assert plug.close() == 0
    assert link(name, ns) is None


def test_persistent_tap_for_a_user(lab, namespaces, procs):  # noqa: F811
    ns = namespaces.new("pers")
    name = ifname("pers")
    namespaces.owned_link(name, ns)
    tunctl = require(TOOL["vde_tunctl"])
    res = subprocess.run(in_ns(ns, [tunctl, "-u", str(NOBODY), "-t", name]),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert (res.returncode, res.stdout) == (
        0, "Set '%s' persistent and owned by uid %d\n" % (name, NOBODY)), res.stderr
    data = link(name, ns)["linkinfo"]["info_data"]
    assert data["type"] == "tap" and data["persist"] is True, data
    assert data.get("user") in ("nobody", NOBODY), data
    # the user attaches it with no privilege at all
    plug = procs.start(in_ns(ns, [TOOL["vde_plug2tap"], "-s", lab.sw.dir, name],
                             as_nobody=True))
    wait_for(lambda: "vde_plug2tap:" in lab.sw.cmd("port/print") or plug.poll() is not None,
             what="the unprivileged plug2tap")
    assert plug.poll() is None, plug.stderr.read().decode()
    address(name, ns, "10.77.2.4/24")
    ns_ping(ns, GUEST)
    plug.terminate()
    assert plug.wait(timeout=10) == 0
    assert link(name, ns) is not None    # persistent: still there
    # a switch attaches the existing tap, and leaves it when it exits
    sw = NsSwitch(procs, ns, os.path.join(lab.work, "pers"), "-t", name, "--nostdin")
    assert "module tuntap      : %s\n" % name in sw.cmd("port/print")
    sw.stop()
    assert link(name, ns) is not None
    res = subprocess.run(in_ns(ns, [tunctl, "-d", name]), stdout=subprocess.PIPE, text=True)
    assert (res.returncode, res.stdout) == (0, "Set '%s' nonpersistent\n" % name)
    assert link(name, ns) is None


@pytest.mark.parametrize("kind", ["ours", "c"])
def test_switch_tap_port_as_2_3_2(lab, namespaces, procs, kind):  # noqa: F811
    ns = namespaces.new("pp" + kind)
    name = ifname("pp" + kind[0])
    namespaces.owned_link(name, ns)
    sw = NsSwitch(procs, ns, os.path.join(lab.work, "pp" + kind), "-t", name,
                  tool=None if kind == "ours" else C_TOOLS["vde_switch"])
    text = sw.cmd("port/print")
    assert re.search(r"\nPort 0001 untagged_vlan=0000 ACTIVE - Unnamed Allocatable\n"
                     r" Current User: NONE Access Control: \(User: NONE - Group: NONE\)\n"
                     r"(?: [^\n]*\n){2}  -- endpoint ID \d{4} module tuntap      : %s\n"
                     % name, text), text
    data = link(name, ns)["linkinfo"]["info_data"]
    assert (data["type"], data["pi"], data["persist"]) == ("tap", False, False), data
    sw.stop()
    assert link(name, ns) is None


def test_switch_exit_removes_its_tap(lab, namespaces, procs):  # noqa: F811
    ns = namespaces.new("gone")
    name = ifname("gone")
    namespaces.owned_link(name, ns)
    sw = NsSwitch(procs, ns, os.path.join(lab.work, "gone"), "-t", name)
    assert link(name, ns) is not None
    sw.stop()
    assert link(name, ns) is None


def test_clear_errors_without_privileges(lab, namespaces, procs):  # noqa: F811
    ns = namespaces.new("priv")
    name = ifname("priv")
    namespaces.owned_link(name, ns)
    free = tempfile.mkdtemp(prefix="vp", dir=lab.work)
    os.chmod(free, 0o777)
    sw = NsSwitch(procs, ns, os.path.join(free, "sw"), "-t", name, as_nobody=True, mgmt=False)
    # the switch serves on without the failed port (its SIGTERM handler
    # runs only in the loop, after the failures were reported)
    assert still_serving(sw)
    err = sw.stop()
    assert "tap %s needs CAP_NET_ADMIN" % name in err and "Traceback" not in err, err
    assert link(name, ns) is None
    for argv, want in (
            ([TOOL["vde_plug2tap"], "-s", "-", name], "tap %s needs CAP_NET_ADMIN" % name),
            ([OURS["vde_plug"], "tap://" + name], "vde_open tap://%s: Operation not permitted "
             "(tap %s needs CAP_NET_ADMIN" % (name, name))):
        res = subprocess.run(in_ns(ns, argv, as_nobody=True), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert res.returncode == 1 and want in res.stderr and "Traceback" not in res.stderr, \
            res.stderr
    res = subprocess.run([TOOL["vde_tunctl"], "-f", "/nonexistent/tun", "-t", name],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert res.returncode == 1 and "tap needs /nonexistent/tun" in res.stderr, res.stderr
