"""Real guests on two hosts joined by VXLAN and vxvde.

Three hosts are network namespaces on one bridged LAN (``netns.Lan``,
10.77.0.0/24).  Three QEMU guests boot once for this module:

* g0 (10.77.3.1) on our switch S0, g1 (10.77.3.2) on our switch S1; the
  guests and the switches run in the root namespace on unix sockets, and
  only the uplink ``vde_plug S VNL``, started inside host 0 or host 1,
  puts their frames on the LAN;
* g2 (10.77.3.3) inside host 2 on a tap, bridged by a Linux bridge to a
  kernel ``vxlan`` device: no VDE code on that side at all.  The tap has
  no virtio header (``vnet_hdr=off``): with checksum offload, the guest's
  TCP checksums would be left to a NIC, and the veth LAN delivers them
  to the far plug's UDP socket unfilled.

Each test starts the uplinks for one overlay, has the guests ping each
other and move a TCP stream, then removes the uplinks; the first test checks the guests cannot meet
without them.  Debian's ``vde_plug vxlan://`` (vdeplug4 4.0.1) cannot
send unicast to a learned MAC, so the VXLAN legs use our plug; Debian's
plug takes one side of the vxvde overlay.
"""

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from guests import QemuGuest, boot_all, ping, tcp_transfer, unreachable
from netns import Lan, in_ns, leftovers, sh
from support import C_TOOLS, OURS, Processes, Switch, attached, require

pytestmark = pytest.mark.real

ADDR = ["10.77.3.1", "10.77.3.2", "10.77.3.3"]
MAC = ["52:54:00:77:03:01", "52:54:00:77:03:02", "52:54:00:77:03:03"]
PLUG = {"ours": OURS["vde_plug"], "c": C_TOOLS["vde_plug"]}
TAG = "%d" % (os.getpid() % 100000)
KERNEL_VNL = ("239.5.6.3", 77)


class Lab:
    pass


def kernel_side(net, lab) -> None:
    """Host 2: a vxlan device and a tap, both ports of a Linux bridge."""
    h = net.hosts[2]
    lab.vx, lab.br, lab.tap = "vx" + TAG, "br" + TAG, "tq" + TAG
    group, vni = KERNEL_VNL
    lab.links = []
    for argv in (["link", "add", lab.br, "type", "bridge"],
                 ["link", "add", lab.vx, "type", "vxlan", "id", str(vni), "dstport", "4789",
                  "group", group, "dev", "eth0", "ttl", "1"],
                 ["tuntap", "add", "dev", lab.tap, "mode", "tap"]):
        sh(*in_ns(h, ["ip"] + argv))
        lab.links.append(argv[2] if argv[0] == "link" else argv[3])
    for dev in (lab.vx, lab.tap):
        sh(*in_ns(h, ["ip", "link", "set", dev, "master", lab.br, "up"]))
    sh(*in_ns(h, ["ip", "link", "set", lab.br, "up"]))


@pytest.fixture(scope="module")
def lab():
    procs = Processes()
    work = tempfile.mkdtemp(prefix="vo", dir="/tmp")
    lab = Lab()
    lab.procs, lab.links, net = procs, [], None
    try:
        net = lab.net = Lan(3)
        kernel_side(net, lab)
        lab.sw = [Switch(procs, OURS["vde_switch"], os.path.join(work, "s%d" % i))
                  for i in range(2)]
        lab.g = [QemuGuest(procs, work, lab.sw[i].dir, MAC[i], name="g%d" % i, wait=False)
                 for i in range(2)]
        lab.g.append(QemuGuest(procs, work, None, MAC[2], name="g2", wait=False,
                               netdev="tap,ifname=%s,script=no,downscript=no,vnet_hdr=off"
                               % lab.tap,
                               wrap=["ip", "netns", "exec", net.hosts[2]]))
        boot_all(lab.g)
        for g, a in zip(lab.g, ADDR):
            g.configure(a + "/24")
        # the kernel vxlan device carries 1450-byte frames (1500 less the
        # encapsulation), and the bridge drops longer ones from the tap
        lab.g[2].check("ip link set eth0 mtu 1450")
        yield lab
    finally:
        procs.cleanup()                  # the processes first: they hold the namespaces
        if net is not None:
            for name in reversed(lab.links):
                sh(*in_ns(net.hosts[2], ["ip", "link", "del", name]), check=False)
            made = list(net.made)
            net.remove()
            assert not [ns for ns in leftovers() if ns in made]
        shutil.rmtree(work, ignore_errors=True)


class Uplinks:
    """``vde_plug SWITCH VNL`` inside host ``i`` for each (i, plug, VNL);
    stopped by PID on exit, and the switches must see them go."""

    def __init__(self, lab, *ends):
        self.lab, self.ends, self.procs = lab, ends, []

    def __enter__(self):
        try:
            for i, kind, vnl in self.ends:
                self.procs.append(self.lab.procs.start(
                    in_ns(self.lab.net.hosts[i], [require(PLUG[kind]), self.lab.sw[i].dir, vnl])))
            for i, _, _ in self.ends:
                attached(self.lab.sw[i], 2, timeout=10)     # the guest and the uplink
            for p in self.procs:
                assert p.poll() is None, p.stderr.read().decode()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for i, _, _ in self.ends:
            attached(self.lab.sw[i], 1, timeout=10)


def report(capsys, text):
    with capsys.disabled():
        print("\n    " + text)


def both_ways(lab, a, b, capsys, what):
    there = ping(lab.g[a], ADDR[b])
    back = ping(lab.g[b], ADDR[a])
    report(capsys, "%s: g%d->g%d %d/%d, avg %s ms; back %d/%d, avg %s ms"
           % (what, a, b, there["received"], there["sent"], there["avg_ms"],
              back["received"], back["sent"], back["avg_ms"]))


def transfer(lab, a, b, capsys, what, port, size_kib=2048):
    seconds = tcp_transfer(lab.g[a], lab.g[b], ADDR[b], size_kib, port)
    report(capsys, "%s: tcp g%d->g%d %d KiB in %.2f s = %.0f KiB/s"
           % (what, a, b, size_kib, seconds, size_kib / seconds))


def vxlan_counters(lab) -> dict:
    out = sh(*in_ns(lab.net.hosts[2], ["ip", "-s", "-j", "link", "show", lab.vx])).stdout
    stats = json.loads(out)[0]["stats64"]
    return {"rx": stats["rx"]["packets"], "tx": stats["tx"]["packets"]}


def test_guests_are_apart_without_an_overlay(lab):
    assert unreachable(lab.g[0], ADDR[1])
    assert unreachable(lab.g[0], ADDR[2])
    assert unreachable(lab.g[1], ADDR[2])


def test_vxlan_between_our_switches_on_two_hosts(lab, capsys):
    vnl = "vxlan://239.5.6.1/vni=71"
    with Uplinks(lab, (0, "ours", vnl), (1, "ours", vnl)):
        both_ways(lab, 0, 1, capsys, "vxlan ours<->ours")
        transfer(lab, 0, 1, capsys, "vxlan ours<->ours", 5201)


def test_vxlan_to_a_kernel_vxlan_device_bridged_to_a_guest_tap(lab, capsys):
    group, vni = KERNEL_VNL
    before = vxlan_counters(lab)
    with Uplinks(lab, (0, "ours", "vxlan://%s/vni=%d" % (group, vni))):
        both_ways(lab, 0, 2, capsys, "vxlan ours<->kernel vxlan+bridge+tap")
        transfer(lab, 2, 0, capsys, "vxlan kernel+bridge+tap<->ours", 5204, 1024)
    after = vxlan_counters(lab)
    # the echoes and the stream crossed the kernel device both ways
    assert after["rx"] - before["rx"] >= 6 and after["tx"] - before["tx"] >= 700, \
        (before, after)


@pytest.mark.parametrize("kinds", [("ours", "c"), ("c", "ours")], ids=["ours-c", "c-ours"])
def test_vxvde_ours_and_debian_plug(lab, capsys, kinds):
    vnl = "vxvde://239.5.6.2"
    what = "vxvde %s(g0)<->%s(g1)" % kinds
    with Uplinks(lab, (0, kinds[0], vnl), (1, kinds[1], vnl)):
        both_ways(lab, 0, 1, capsys, what)
        transfer(lab, 1, 0, capsys, what, 5202 if kinds[0] == "ours" else 5203)
