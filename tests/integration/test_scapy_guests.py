"""Packet debugging against real guests: the monitor port, sniff, and scapy's srp.

Two QEMU guests (Debian's kernel, a busybox initramfs: ``tests/guests.py``)
sit on our switch, which has a monitor port (5); Debian's C vde_switch is
cabled to ours.  The guests ping each other while ``vde-ipn sniff`` on
the monitor port writes a pcap; scapy, through :class:`VDESocket`, asks
the guests for their MAC (ARP) and pings them, on our switch and on the
C one.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from guests import QemuGuest, boot_all, ping
from support import C_TOOLS, OURS, PY, REPO, Processes, Switch, attached, descendants, require
from vde_ipn.scapy import VDESocket, srp1
from vde_ipn.wire import pcap

pytestmark = pytest.mark.real

VDE_IPN = os.path.join(REPO, "bin", "vde-ipn")
TCPDUMP = next((p for p in ("/usr/bin/tcpdump", "/usr/sbin/tcpdump") if os.path.exists(p)),
               "/usr/bin/tcpdump")
MAC = {"q1": "52:54:00:78:01:01", "q2": "52:54:00:78:01:02"}
IP_OF = {"q1": "10.78.1.1", "q2": "10.78.1.2"}
ME_MAC, ME_IP = "02:00:00:78:01:64", "10.78.1.100"
MONITOR = 5


class Lab:
    pass


@pytest.fixture(scope="module")
def lab():
    procs = Processes()
    work = tempfile.mkdtemp(prefix="vs", dir="/tmp")
    lab = Lab()
    lab.procs, lab.work = procs, work
    try:
        lab.ours = Switch(procs, OURS["vde_switch"], os.path.join(work, "sw"),
                          "--monitor", str(MONITOR))
        lab.c = Switch(procs, C_TOOLS["vde_switch"], os.path.join(work, "csw"))
        procs.start([require(OURS["dpipe"]), OURS["vde_plug"], lab.ours.dir,
                     "=", require(C_TOOLS["vde_plug"]), lab.c.dir])
        lab.q1 = QemuGuest(procs, work, lab.ours.dir, MAC["q1"], name="q1", wait=False)
        lab.q2 = QemuGuest(procs, work, lab.ours.dir, MAC["q2"], name="q2", nic="e1000",
                           wait=False)
        boot_all([lab.q1, lab.q2])
        for name in ("q1", "q2"):
            getattr(lab, name).configure(IP_OF[name] + "/24")
        attached(lab.ours, 3)            # q1, q2, the cable
        yield lab
    finally:
        for p in procs.procs:
            if p.poll() is None:
                for pid in descendants(p.pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        procs.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def report(capsys, text):
    with capsys.disabled():
        print("\n    " + text)


def test_sniffer_on_the_monitor_port_sees_the_guests_unicast_pings(lab, procs, capsys):
    out_pcap = os.path.join(lab.work, "pings.pcap")
    sniffer = procs.start([PY, VDE_IPN, "sniff", "vde://%s[%d]" % (lab.ours.dir, MONITOR),
                           "-f", "icmp and host %s" % IP_OF["q2"], "-c", "6", "-t", "120",
                           "-w", out_pcap], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    attached(lab.ours, 4)
    ping(lab.q1, IP_OF["q2"], count=3)
    out, err = sniffer.communicate(timeout=120)
    lines = out.decode().splitlines()
    report(capsys, "sniff on the monitor port:\n      " + "\n      ".join(lines))
    assert sniffer.returncode == 0, err.decode()
    assert len(lines) == 6, out.decode() + err.decode()
    requests = [ln for ln in lines if "%s > %s echo-request" % (IP_OF["q1"], IP_OF["q2"]) in ln]
    replies = [ln for ln in lines if "%s > %s echo-reply" % (IP_OF["q2"], IP_OF["q1"]) in ln]
    assert len(requests) == 3 and len(replies) == 3, out.decode()
    with open(out_pcap, "rb") as f:
        frames = [r.data for r in pcap.read_records(f)[1]]
    # unicast between two other ports: the destinations are the guests' MACs
    dsts = {":".join("%02x" % b for b in fr[:6]) for fr in frames}
    assert dsts == {MAC["q1"], MAC["q2"]}
    done = subprocess.run([require(TCPDUMP), "-nn", "-r", out_pcap, "icmp"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 6
    assert len(re.findall(r"ICMP echo request", done.stdout)) == 3
    assert len(re.findall(r"ICMP echo reply", done.stdout)) == 3
    info = lab.ours.cmd("monitor/showinfo")
    assert "Monitor port 5 watching ports all vlans all" in info
    copies = int(re.search(r"copies (\d+)", info).group(1))
    assert copies >= 6                    # the pings came by copy, not by flooding


def scapy_arp_and_ping(sock, guest):
    arp = srp1(Ether(src=ME_MAC, dst="ff:ff:ff:ff:ff:ff")
               / ARP(hwsrc=ME_MAC, psrc=ME_IP, pdst=IP_OF[guest]), sock, timeout=5, retry=3)
    assert arp is not None and arp[ARP].op == 2, "no ARP reply from %s" % guest
    assert arp[ARP].hwsrc == MAC[guest] and arp[ARP].psrc == IP_OF[guest]
    echo = srp1(Ether(src=ME_MAC, dst=MAC[guest]) / IP(src=ME_IP, dst=IP_OF[guest])
                / ICMP(id=0x77, seq=1) / b"vde-ipn", sock, timeout=5, retry=3)
    assert echo is not None, "no echo reply from %s" % guest
    assert echo[ICMP].type == 0 and echo[IP].src == IP_OF[guest]
    assert echo[Raw].load == b"vde-ipn"          # an e1000 guest pads its frames
    return arp, echo


def test_scapy_gets_arp_and_ping_replies_on_our_switch(lab, capsys):
    with VDESocket(lab.ours.dir) as sock:
        arp, echo = scapy_arp_and_ping(sock, "q1")
    report(capsys, "our switch: %s / %s" % (arp.summary(), echo.summary()))


def test_scapy_gets_arp_and_ping_replies_on_the_c_switch(lab, capsys):
    """Debian's vde_switch: the guest answers from our switch, across the cable."""
    with VDESocket(lab.c.dir) as sock:
        arp, echo = scapy_arp_and_ping(sock, "q2")
    report(capsys, "C vde_switch: %s / %s" % (arp.summary(), echo.summary()))
