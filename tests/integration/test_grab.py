"""Grab: an existing interface joined to our switch, as a bridge port.

Two namespaces made here are joined by a veth pair: one end is grabbed
into our switch, a QEMU guest (10.77.3.10) is on the switch, and the
namespace at the other end (10.77.3.1) pings the guest.  Three ways to
grab: ``vde_pcapplug``, ``vde_plug grab://``, and ``vde_switch -G`` on a
second switch cabled to the guest's.  The grabbed end starts down and
not promiscuous; it is up and promiscuous while grabbed, and back as it
was once released.
"""

import os
import shutil
import subprocess
import tempfile

import pytest

from guests import QemuGuest
from ifaces import (NsSwitch, address, ifname, in_ns, link, namespaces, ns_ping,  # noqa: F401
                    still_serving)
from support import OURS, Processes, require, wait_for

pytestmark = pytest.mark.real

GUEST = "10.77.3.10"
PCAPPLUG = os.path.join(os.path.dirname(OURS["vde_switch"]), "vde_pcapplug")


class Lab:
    pass


@pytest.fixture(scope="module")
def lab(namespaces):  # noqa: F811
    procs = Processes()
    work = tempfile.mkdtemp(prefix="vg", dir="/tmp")
    lab = Lab()
    try:
        lab.ns_sw, lab.ns_peer = namespaces.new("gsw"), namespaces.new("gpeer")
        lab.grabbed, lab.peer = ifname("ga"), ifname("gb")
        namespaces.veth(lab.grabbed, lab.ns_sw, lab.peer, lab.ns_peer)
        address(lab.peer, lab.ns_peer, "10.77.3.1/24")
        lab.sw = NsSwitch(procs, lab.ns_sw, os.path.join(work, "sw"))
        lab.guest = QemuGuest(procs, work, lab.sw.dir, "52:54:00:77:03:10", name="grabguest")
        lab.guest.configure(GUEST + "/24")
        lab.work = work
        yield lab
    finally:
        procs.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def state(lab):
    info = link(lab.grabbed, lab.ns_sw)
    return "UP" in info["flags"], info["promiscuity"]


@pytest.mark.parametrize("how", ["vde_pcapplug", "grab://", "vde_switch -G"])
def test_grabbed_interface_reaches_a_guest_and_is_restored(lab, procs, how):
    assert state(lab) == (False, 0)
    if how == "vde_pcapplug":
        grab = procs.start(in_ns(lab.ns_sw, [require(PCAPPLUG), "-s", lab.sw.dir, lab.grabbed]))
        module = "unix prog   : vde_pcapplug:"
    elif how == "grab://":
        grab = procs.start(in_ns(lab.ns_sw, [require(OURS["vde_plug"]), "grab://" + lab.grabbed,
                                             lab.sw.dir]))
        module = "unix prog   : vdeplug:"
    else:
        sw2 = NsSwitch(procs, lab.ns_sw, os.path.join(lab.work, "sw2"), "-G", lab.grabbed)
        assert "module grab        : %s\n" % lab.grabbed in sw2.cmd("port/print")
        grab = sw2.proc
        procs.start([require(OURS["vde_plug"]), sw2.dir, lab.sw.dir])
        module = "unix prog   : vdeplug:"
    wait_for(lambda: module in lab.sw.cmd("port/print") or grab.poll() is not None,
             what="%s on the switch" % how)
    assert grab.poll() is None, grab.stderr.read().decode()
    wait_for(lambda: state(lab) == (True, 1), what="the grabbed link up and promiscuous")
    ns_ping(lab.ns_peer, GUEST)
    out = lab.guest.check("ip neigh show 10.77.3.1")
    assert link(lab.peer, lab.ns_peer)["address"] in out, out   # the peer's own MAC
    grab.terminate()
    assert grab.wait(timeout=10) == 0
    assert state(lab) == (False, 0)


def test_an_interface_already_up_stays_up(lab, procs):
    subprocess.run(in_ns(lab.ns_sw, ["ip", "link", "set", lab.grabbed, "up"]), check=True)
    try:
        grab = procs.start(in_ns(lab.ns_sw, [PCAPPLUG, "-s", lab.sw.dir, lab.grabbed]))
        wait_for(lambda: state(lab) == (True, 1) or grab.poll() is not None, what="the grab")
        ns_ping(lab.ns_peer, GUEST)
        grab.terminate()
        assert grab.wait(timeout=10) == 0
        assert state(lab) == (True, 0)
    finally:
        subprocess.run(in_ns(lab.ns_sw, ["ip", "link", "set", lab.grabbed, "down"]))


def test_clear_errors(lab, procs, namespaces):  # noqa: F811
    free = tempfile.mkdtemp(prefix="vp", dir=lab.work)
    os.chmod(lab.work, 0o755)
    os.chmod(free, 0o777)
    sw = NsSwitch(procs, lab.ns_sw, os.path.join(free, "sw"), "-G", lab.grabbed,
                  "-G", "nosuch0", as_nobody=True, mgmt=False)
    # the switch serves on without the failed port (its SIGTERM handler
    # runs only in the loop, after the failures were reported)
    assert still_serving(sw)
    err = sw.stop()
    assert "grab %s: bringing it up needs CAP_NET_ADMIN" % lab.grabbed in err, err
    assert "grab nosuch0: no such interface" in err and "Traceback" not in err, err
    assert state(lab) == (False, 0)
    res = subprocess.run(in_ns(lab.ns_sw, [PCAPPLUG, "-s", lab.sw.dir, "nosuch0"]),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert res.returncode == 1 and res.stderr.endswith(
        "vde_pcapplug: grab nosuch0: no such interface\n"), res.stderr
