"""The BPF interpreter against libpcap: the same frames pass as with tcpdump -r.

Each filter is compiled by libpcap (through scapy) and run by our
interpreter on a mixed set of frames; tcpdump runs the same expression
on a pcap file of those frames, and both must keep the same ones.
"""

import os
import subprocess

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether

from support import require
from vde_ipn.debug.bpf import FilterError, compile_filter, matches, run
from vde_ipn.wire import pcap

TCPDUMP = next((p for p in ("/usr/bin/tcpdump", "/usr/sbin/tcpdump") if os.path.exists(p)),
               "/usr/bin/tcpdump")
A, B = "02:00:00:00:00:01", "02:00:00:00:00:02"


def frames():
    e = Ether(src=A, dst=B)
    pkts = [
        Ether(src=A, dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="10.0.0.2"),
        e / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(),
        e / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=0),
        e / IP(src="10.0.0.1", dst="10.0.0.3") / ICMP(),
        e / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dport=80, flags="S"),
        e / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=80, dport=4000, flags="A"),
        e / IP(src="10.0.0.1", dst="10.0.0.9") / UDP(dport=53) / (b"q" * 200),
        e / IP(src="10.0.0.1", dst="10.0.0.2", flags="MF", frag=0, ihl=6,
               options=b"\x01\x01\x01\x01") / UDP(dport=7),
        e / IP(src="10.0.0.1", dst="10.0.0.2", frag=10) / b"tail",
        Ether(src=B, dst=A) / Dot1Q(vlan=7) / IP(dst="10.0.0.2") / ICMP(),
        Ether(src=B, dst=A) / Dot1Q(vlan=8) / ARP(),
        e / IPv6(dst="fe80::1") / UDP(dport=547),
        Ether(src=A, dst=B, type=0x88B5) / (b"\0" * 46),
        Ether(src=A, dst=B, type=0x0800) / b"\x45",      # truncated IP header
    ]
    return [bytes(p) for p in pkts]


FILTERS = [
    "icmp", "icmp and host 10.0.0.2", "arp", "tcp port 80", "udp and dst port 53",
    "vlan 7", "vlan and arp", "ip6", "ether src 02:00:00:00:00:01", "ip[2:2] > 100",
    "len > 100", "tcp[tcpflags] & tcp-syn != 0", "not arp", "ip[6:2] & 0x1fff != 0",
    "udp port 7", "net 10.0.0.0/30 and not icmp", "ether proto 0x88b5", "greater 200",
    "icmp[icmptype] == icmp-echoreply",
]


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("bpf") / "all.pcap")
    with open(path, "wb") as f:
        f.write(pcap.encode_file_header())
        for i, fr in enumerate(frames()):
            f.write(pcap.encode_record(1000 + i, fr))
    return path


def tcpdump_keeps(path: str, expression: str, out: str) -> list:
    done = subprocess.run([require(TCPDUMP), "-r", path, "-w", out, expression],
                          capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    with open(out, "rb") as f:
        return [r.data for r in pcap.read_records(f)[1]]


@pytest.mark.parametrize("expression", FILTERS)
def test_same_frames_as_tcpdump(capture, tmp_path, expression):
    program = compile_filter(expression)
    ours = [fr for fr in frames() if matches(program, fr)]
    theirs = tcpdump_keeps(capture, expression, str(tmp_path / "out.pcap"))
    assert ours == theirs
    assert 0 < len(ours) < len(frames()) or expression in ("not arp",)


def test_bad_expression_is_a_filter_error():
    with pytest.raises(FilterError, match="syntax error|can't parse"):
        compile_filter("icmp and and")


# hand-written programs: (code, jt, jf, k)
RET_K = 0x06
LD_W_ABS, LD_B_ABS, LD_IMM, LDX_IMM = 0x20, 0x30, 0x00, 0x01
ALU_DIV_X, ALU_MOD_K, ALU_NEG, RET_A = 0x3C, 0x94, 0x84, 0x16


def test_loads_past_the_end_reject():
    assert run(((LD_W_ABS, 0, 0, 58), (RET_A, 0, 0, 0)), bytes(60)) == 0
    assert run(((LD_B_ABS, 0, 0, 59), (RET_K, 0, 0, 1)), bytes(60)) == 1
    assert run(((LD_W_ABS, 0, 0, 0xFFFFF000), (RET_K, 0, 0, 1)), bytes(60)) == 0


def test_division_by_zero_rejects_and_alu_wraps():
    assert run(((LD_IMM, 0, 0, 9), (LDX_IMM, 0, 0, 0), (ALU_DIV_X, 0, 0, 0),
                (RET_K, 0, 0, 1)), bytes(14)) == 0
    assert run(((LD_IMM, 0, 0, 9), (ALU_MOD_K, 0, 0, 4), (RET_A, 0, 0, 0)), bytes(14)) == 1
    assert run(((LD_IMM, 0, 0, 1), (ALU_NEG, 0, 0, 0), (RET_A, 0, 0, 0)), bytes(14)) \
        == 0xFFFFFFFF
