"""vde-ipn sniff/inject, vde_switch --dump, and VDESocket on every kind of network.

Frames come from vde_plug processes driven through their vdestream
(``StreamPlug``) and from VDESockets in this process; tcpdump reads the
pcap files we write.
"""

import os
import re
import subprocess
import threading

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.sendrecv import sendp, sniff

from support import (C_TOOLS, OURS, PY, REPO, StreamPlug, attached, mac, require, wait_for)
from vde_ipn import ipn
from vde_ipn.scapy import VDESocket, srp1
from vde_ipn.wire import pcap

VDE_IPN = os.path.join(REPO, "bin", "vde-ipn")
TCPDUMP = next((p for p in ("/usr/bin/tcpdump", "/usr/sbin/tcpdump") if os.path.exists(p)),
               "/usr/bin/tcpdump")
A, B = mac(1), mac(2)
SA, SB = "02:00:00:00:00:01", "02:00:00:00:00:02"


def icmp(src, dst, to_ip, seq=0):
    return bytes(Ether(src=src, dst=dst) / IP(src="10.0.0.1", dst=to_ip) / ICMP(seq=seq))


def tcpdump_lines(path, *expr):
    done = subprocess.run([require(TCPDUMP), "-nn", "-r", path, *expr],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.fixture
def two_hosts(procs, sockdir, new_switch):
    """Our switch with monitor port 5 and two plugs on it that have been learned."""
    sw = new_switch("ours", os.path.join(sockdir, "sw"), "--monitor", "5")
    a = StreamPlug(procs, OURS["vde_plug"], sw.dir)
    b = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    attached(sw, 2)
    a.send(icmp(SA, "ff:ff:ff:ff:ff:ff", "10.0.0.9"))
    b.send(icmp(SB, "ff:ff:ff:ff:ff:ff", "10.0.0.9"))
    assert a.recv() and b.recv()
    return sw, a, b


def start_sniff(procs, *args):
    return procs.start([PY, VDE_IPN, "sniff", *args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)


def test_sniff_filter_count_and_pcap(two_hosts, procs, tmp_path):
    sw, a, b = two_hosts
    out = str(tmp_path / "x.pcap")
    sniffer = start_sniff(procs, "vde://%s[5]" % sw.dir, "-f", "icmp and host 10.0.0.2",
                          "-c", "3", "-w", out, "-t", "60")
    attached(sw, 3)
    for i in range(5):
        a.send(icmp(SA, SB, "10.0.0.3", i))          # filtered out
        a.send(icmp(SA, SB, "10.0.0.2", i))          # unicast a -> b: by copy
    stdout, stderr = sniffer.communicate(timeout=60)
    lines = stdout.decode().splitlines()
    assert sniffer.returncode == 0, stderr.decode()
    assert len(lines) == 3 and all("10.0.0.1 > 10.0.0.2 echo-request" in ln for ln in lines)
    assert re.search(r"3 frames captured, \d+ filtered out", stderr.decode())
    assert len(tcpdump_lines(out)) == 3
    assert len(tcpdump_lines(out, "icmp and dst host 10.0.0.2")) == 3


def test_sniff_verbose_and_timeout(two_hosts, procs):
    sw, a, b = two_hosts
    sniffer = start_sniff(procs, "vde://%s[5]" % sw.dir, "-v", "-t", "3")
    attached(sw, 3)
    a.send(icmp(SA, SB, "10.0.0.2", 7))
    stdout, stderr = sniffer.communicate(timeout=60)
    assert sniffer.returncode == 0, stderr.decode()
    text = stdout.decode()
    assert "###[ Ethernet ]###" in text and "###[ ICMP ]###" in text and "seq       = 0x7" in text
    assert "1 frames captured" in stderr.decode()


def test_sniff_bad_filter_is_a_clear_error(two_hosts, procs):
    sw, _a, _b = two_hosts
    done = subprocess.run([PY, VDE_IPN, "sniff", sw.dir, "-f", "icmp and and", "-c", "1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "bad filter 'icmp and and'" in done.stderr


def test_inject_from_pcap_and_from_an_expression(two_hosts, procs, tmp_path):
    sw, a, b = two_hosts
    path = str(tmp_path / "in.pcap")
    frames = [icmp(SA, SB, "10.0.0.2", i) for i in range(4)]
    with open(path, "wb") as f:
        f.write(pcap.encode_file_header())
        for fr in frames:
            f.write(pcap.encode_record(0, fr))
    done = subprocess.run([PY, VDE_IPN, "inject", sw.dir, "-r", path],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "4 frames sent" in done.stderr, done.stderr
    padded = [fr + bytes(60 - len(fr)) for fr in frames]       # as a NIC sends them
    assert [b.recv_matching(lambda f: f[:6] == B) for _ in frames] == padded
    expr = "Ether(src='%s', dst='%s')/IP(dst='10.0.0.2')/UDP(dport=9)/b'hi'" % (SA, SB)
    done = subprocess.run([PY, VDE_IPN, "inject", sw.dir, "-e", expr, "-c", "2"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "2 frames sent" in done.stderr, done.stderr
    for _ in range(2):
        got = Ether(b.recv_matching(lambda f: f[:6] == B))
        assert got[UDP].dport == 9 and bytes(got[UDP].payload)[:2] == b"hi"
        assert len(bytes(got)) == 60                 # padded to the Ethernet minimum


def test_switch_dump_option_and_console(procs, sockdir, new_switch, tmp_path):
    first = str(tmp_path / "first.pcap")
    sw = new_switch("ours", os.path.join(sockdir, "sw"), "--dump", first)
    a = StreamPlug(procs, OURS["vde_plug"], sw.dir)
    b = StreamPlug(procs, OURS["vde_plug"], sw.dir)
    attached(sw, 2)
    for i in range(3):
        a.send(icmp(SA, SB, "10.0.0.2", i))
        assert b.recv() is not None
    assert "Dump %s frames 3 bytes" % first in sw.cmd("dump/showinfo")
    assert "1000 Success" in sw.cmd("dump/stop")
    assert len(tcpdump_lines(first, "icmp")) == 3
    second = str(tmp_path / "second.pcap")
    assert "1000 Success" in sw.cmd("dump/start " + second)
    b.send(icmp(SB, SA, "10.0.0.1"))
    assert a.recv() is not None
    sw.stop()                                         # closing flushes the capture
    assert len(tcpdump_lines(second)) == 1


def test_vdesocket_on_the_c_switch(procs, sockdir, new_switch):
    sw = new_switch("c", os.path.join(sockdir, "csw"))
    peer = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    with VDESocket(sw.dir) as s:
        attached(sw, 2)
        sendp(Ether(src=SA, dst="ff:ff:ff:ff:ff:ff") / IP(dst="10.0.0.2") / ICMP(), socket=s,
              verbose=False)
        got = peer.recv()
        assert got is not None and Ether(got)[IP].dst == "10.0.0.2"
        peer.send(icmp(SB, SA, "10.0.0.1", 3))
        pkts = sniff(opened_socket=s, count=1, timeout=10)
        assert len(pkts) == 1 and pkts[0][ICMP].seq == 3


def echo_responder(sock, stop):
    """Answers ICMP echo requests on ``sock`` (a VDESocket) until ``stop`` is set."""
    def answer(p):
        if ICMP in p and p[ICMP].type == 8:
            sendp(Ether(src=p.dst, dst=p.src) / IP(src=p[IP].dst, dst=p[IP].src)
                  / ICMP(type=0, id=p[ICMP].id, seq=p[ICMP].seq), socket=sock, verbose=False)
    sniff(opened_socket=sock, prn=answer, store=False, stop_filter=lambda p: stop.is_set(),
          timeout=30)


@pytest.mark.parametrize("scheme", ["hub", "switch"])
def test_vdesocket_hosting_a_network_in_process(procs, sockdir, scheme):
    """hub:// and switch://: the network lives in the socket; a C vde_plug joins it."""
    path = os.path.join(sockdir, "node")
    with VDESocket("%s://%s" % (scheme, path)) as s:
        peer = StreamPlug(procs, C_TOOLS["vde_plug"], path)
        wait_for(lambda: peer.proc.poll() is None and os.listdir(path), what="the plug")
        for _ in range(50):                           # until the plug has its port
            s.send(Ether(src=SA, dst="ff:ff:ff:ff:ff:ff") / IP(dst="10.0.0.2") / ICMP())
            if peer.recv(0.2) is not None:
                break
        else:
            raise AssertionError("nothing reached the plug")
        peer.send(icmp(SB, SA, "10.0.0.1", 4))
        pkts = sniff(opened_socket=s, count=1, timeout=10, lfilter=lambda p: ICMP in p)
        assert len(pkts) == 1 and pkts[0][ICMP].seq == 4


def test_vdesocket_on_an_ipn_network(sockdir):
    path = os.path.join(sockdir, "bus")
    owner = ipn.socket(ipn.IPN_BROADCAST)
    owner.bind(path)
    try:
        with VDESocket("ipn://" + path) as asker, VDESocket("ipn://" + path) as answerer:
            stop = threading.Event()
            t = threading.Thread(target=echo_responder, args=(answerer, stop), daemon=True)
            t.start()
            reply = srp1(Ether(src=SA, dst=SB) / IP(src="10.0.0.1", dst="10.0.0.2")
                         / ICMP(id=5, seq=1), asker, timeout=3, retry=5)
            stop.set()
            asker.send(Ether(src=SA, dst=SB) / IP() / ICMP(type=3))   # wakes the responder
            t.join(10)
        assert reply is not None and reply[ICMP].type == 0 and reply[ICMP].seq == 1
    finally:
        owner.close()
