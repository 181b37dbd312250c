"""2.3.2's switch plugins (dump, pdump, iplog) and vde_plug -L, beside the C tools.

Debian's vde_switch loads /usr/lib/vde2/plugins/*.so with plugin/add;
ours has the same three built in under the same commands.  Both are
driven with the same console script and the same traffic, and their
answers, debug lines, log files and pcap files compared.
"""

import os
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

from support import (C_TOOLS, OURS, StreamPlug, Switch, attached, console_command, frame,
                     mac, wait_for)
from syslogcap import SyslogCapture
from test_console_commands import normalise

PLUGDIR = "/usr/lib/vde2/plugins"

SCRIPT = [
    "plugin/list", "plugin/add", "plugin/add nosuch", "plugin/add dump.so",
    "plugin/add " + PLUGDIR + "/dump.so", "plugin/add dump", "plugin/add pdump",
    "plugin/add " + PLUGDIR + "/iplog.so", "plugin/list", "plugin/list pd", "plugin/list x",
    "help", "help iplog", "help pdump/", "debug/list", "debug/list iplog", "debug/add pdump",
    "debug/add dump", "debug/add dump", "debug/del dump/packetin",
    "pdump/filename", "pdump/active 0", "pdump/buffered 1", "pdump/buffered 0",
    "iplog/showinfo", "iplog/list", "iplog/ipadd 10.0.0.0/8", "iplog/ipadd 10.0.0.0/8",
    "iplog/ipadd 10.9.9.9/16", "iplog/ipadd fe80::1/10", "iplog/ipadd 192.168.1.7",
    "iplog/ipadd bogus", "iplog/ipadd", "iplog/ipadd 10.0.0.0/99", "iplog/list",
    "iplog/ipdel 10.9.0.0/16", "iplog/ipdel 10.9.0.0/16", "iplog/ipdel x", "iplog/list",
    "iplog/setexpire 100", "iplog/setgcint 5", "iplog/showinfo",
    "iplog/logfile /nonexistent-dir/x", "iplog/showinfo", "iplog/iplist", "iplog/ipport 1",
    "iplog/ipuser", "iplog/ipuser root", "iplog/ipuser nosuchuser", "iplog/ipsearch",
    "iplog/ipsearch bogus", "iplog/ipsearch 10.0.0.1",
    "dump/active 1", "dump/active 0", "plugin/del pdump", "plugin/del pdump",
    "plugin/list", "help pdump", "debug/list", "plugin/del", "plugin/list", "help",
]


def test_plugin_console_matches_the_c_switch(sockdir, new_switch):
    answers = {}
    for kind in ("c", "ours"):
        sw = new_switch(kind, os.path.join(sockdir, kind))
        answers[kind] = [(line, normalise(sw.cmd(line))) for line in SCRIPT]
    assert "iplog/ipsearch" in answers["ours"][11][1]
    for (line, c_out), (_, our_out) in zip(answers["c"], answers["ours"]):
        assert our_out == c_out, "answers differ for %r" % line


def _ip_frame(src_mac: bytes, src_ip: str, vlan: int | None = None) -> bytes:
    ip = bytes([0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0]) + socket.inet_aton(src_ip) \
        + socket.inet_aton("10.255.255.255") + struct.pack("!HHHH", 1000, 2000, 8, 0)
    if vlan is None:
        return frame(b"\xff" * 6, src_mac, ip, 0x0800)
    return b"\xff" * 6 + src_mac + struct.pack("!HH", 0x8100, vlan) + b"\x08\x00" + ip


def _ip6_frame(src_mac: bytes, src: bytes) -> bytes:
    ip6 = bytes([0x60, 0, 0, 0, 0, 8, 17, 64]) + src + bytes(15) + b"\x01" + bytes(8)
    return frame(b"\x33\x33\0\0\0\x01", src_mac, ip6, 0x86DD)


class Session:
    """A mgmt connection that stays open to receive debug lines."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""
        self.until(b"vde$ ")

    def until(self, marker, timeout=10.0):
        deadline = time.monotonic() + timeout
        while marker not in self.buf:
            self.s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                raise AssertionError("no %r in %r" % (marker, self.buf[-300:]))
            if not chunk:
                raise AssertionError("session closed")
            self.buf += chunk
        out, self.buf = self.buf.split(marker, 1)
        return out.decode()

    def cmd(self, line):
        self.s.sendall(line.encode() + b"\n")
        return self.until(b"\nvde$ ")

    def debug_lines(self, count, timeout=10.0):
        wait_for(lambda: self._pull() or self.buf.count(b"\n") >= count, timeout,
                 "%d debug lines" % count)
        lines = self.buf.decode().splitlines()[:count]
        return lines

    def _pull(self):
        self.s.settimeout(0.2)
        try:
            chunk = self.s.recv(65536)
            self.buf += chunk
        except socket.timeout:
            pass
        return False

    def close(self):
        self.s.close()


SENT = [_ip_frame(mac(1), "10.0.0.5"),             # logged: new
        _ip_frame(mac(1), "10.0.0.5"),             # same port, same MAC: not again
        _ip_frame(mac(1), "192.168.0.5"),          # outside the ranges
        _ip_frame(mac(2), "10.0.0.5"),             # another MAC: logged again
        _ip_frame(mac(1), "10.0.0.6", vlan=7),     # tagged (both are trunks of VLAN 7)
        _ip6_frame(mac(1), b"\xfe\x80" + bytes(13) + b"\x09")]

# One plugin per run: with iplog loaded, 2.3.2's dump and pdump read the
# packet event's arguments after iplog has consumed them (garbled lines,
# then a crash), so each is compared on its own.
SETUP = {
    "iplog": ["plugin/add iplog", "iplog/ipadd 10.0.0.0/8", "iplog/ipadd fe80::/10",
              "iplog/logfile {log}"],
    "dump": ["plugin/add dump", "dump/active 1"],
    "pdump": ["plugin/add pdump", "pdump/filename {cap}", "pdump/active 1"],
}


def _traffic_run(procs, sockdir, new_switch, kind, plugin):
    d = os.path.join(sockdir, kind + plugin)
    os.mkdir(d)
    sw = new_switch(kind, os.path.join(d, "sw"))
    a = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    attached(sw, 1)
    b = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    attached(sw, 2)
    log, cap = os.path.join(d, "ip.log"), os.path.join(d, "x.pcap")
    s = Session(sw.mgmt)
    debug = {"iplog": "debug/add iplog/newip", "dump": "debug/add dump",
             "pdump": "debug/add pdump"}[plugin]
    setup = SETUP[plugin][:1] + [debug] + SETUP[plugin][1:]     # after plugin/add
    for line in setup + ["vlan/create 7", "vlan/addport 7 1", "vlan/addport 7 2"]:
        assert "1000 Success" in s.cmd(line.format(log=log, cap=cap)), line
    for f in SENT:
        a.send(f)
        assert b.recv_matching(lambda g: g[6:12] == f[6:12] and g[-30:] == f[-30:]) is not None, \
            (kind, f.hex())
    if plugin == "dump":
        return s.debug_lines(12)
    if plugin == "pdump":
        s.cmd("pdump/active 0")
        with open(cap, "rb") as f:
            return f.read()
    lines = s.debug_lines(4)
    lists = [sw.cmd(c) for c in ("iplog/iplist", "iplog/ipport 1", "iplog/ipuser root",
                                 "iplog/ipsearch 10.0.0.6")]
    a.close()
    wait_for(lambda: "-- endpoint ID" not in sw.cmd("port/print 1"), what="port 1 closed")
    lists.append(sw.cmd("iplog/iplist"))               # forgotten with the port
    with open(log) as f:
        logged = f.read()
    return lines, lists, logged


def _pcap_frames(data):
    magic, vmaj, vmin, _z, _s, snaplen, linktype = struct.unpack("<IHHiIII", data[:24])
    frames, pos = [], 24
    while pos < len(data):
        _sec, _usec, caplen, length = struct.unpack("<IIII", data[pos:pos + 16])
        frames.append((caplen, length, data[pos + 16:pos + 16 + caplen]))
        pos += 16 + caplen
    return (magic, vmaj, vmin, snaplen, linktype), frames


def _norm_pid(text):
    return re.sub(r"pid=\d+", "pid=P", text)


def _norm_tagged_mac(text):
    """2.3.2 reads the source MAC of a tagged frame 4 bytes too late
    (``mac=00:01:81:00:00:07``); ours logs the real one.  Only that differs."""
    return re.sub(r"mac=\S+( port=\d+ vlan=[1-9])", r"mac=M\1", _norm_pid(text))


def test_iplog_matches_the_c_switch(procs, sockdir, new_switch):
    c = _traffic_run(procs, sockdir, new_switch, "c", "iplog")
    ours = _traffic_run(procs, sockdir, new_switch, "ours", "iplog")
    assert [_norm_tagged_mac(x) for x in ours[0]] == [_norm_tagged_mac(x) for x in c[0]]
    assert "ipv4 10.0.0.6 mac=02:00:00:00:00:01 port=1 vlan=7" in ours[0][2]
    assert ours[0][0].startswith("3301 iplog/newip ipv4 10.0.0.5 mac=02:00:00:00:00:01 port=1 "
                                 "vlan=0 user=root")
    # listings, and the port's addresses forgotten when it closes
    assert ours[1] == c[1]
    assert "ipv4 10.0.0.6 port=1 user=root" in ours[1][3] and "ipv" not in ours[1][4]
    # the log file: "Mon dd hh:mm:ss " then the message
    stamp = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d ", re.M)
    assert len(stamp.findall(ours[2])) == 4
    assert _norm_tagged_mac(stamp.sub("", ours[2])) == _norm_tagged_mac(stamp.sub("", c[2]))


def test_dump_matches_the_c_switch(procs, sockdir, new_switch):
    c = _traffic_run(procs, sockdir, new_switch, "c", "dump")
    ours = _traffic_run(procs, sockdir, new_switch, "ours", "dump")
    assert ours == c
    tagged = "".join("%02x " % x for x in SENT[4])
    assert ours[8] == "3101 dump/packetin Pkt: Port 0001 len=0046 " + tagged
    assert ours[9] == "3102 dump/packetout Pkt: Port 0002 len=0046 " + tagged


def test_pdump_matches_the_c_switch(procs, sockdir, new_switch):
    c = _traffic_run(procs, sockdir, new_switch, "c", "pdump")
    ours = _traffic_run(procs, sockdir, new_switch, "ours", "pdump")
    # same header, same records (each frame in, then each copy out)
    c_head, c_frames = _pcap_frames(c)
    our_head, our_frames = _pcap_frames(ours)
    assert our_head == c_head == (0xA1B2C3D4, 2, 4, 96, 1)
    assert our_frames == c_frames and len(our_frames) == 12


def test_pdump_file_is_read_by_tcpdump(procs, sockdir, new_switch):
    sw = new_switch("ours", os.path.join(sockdir, "sw"))
    a = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    b = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    attached(sw, 2)
    cap = os.path.join(sockdir, "t.pcap")
    assert "1000 Success" in sw.cmd("plugin/add pdump")
    assert "dumpfile=" + cap in sw.cmd("pdump/filename " + cap)
    assert "1000 Success" in sw.cmd("pdump/active 1")
    assert "1017 File exists" in sw.cmd("pdump/active 1")
    f = _ip_frame(mac(3), "10.1.2.3")
    a.send(f)
    assert b.recv() == f
    wait_for(lambda: os.path.getsize(cap) >= 24 + 2 * (16 + len(f)), what="two records")
    out = subprocess.run(["tcpdump", "-nr", cap], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("10.1.2.3.1000 > 10.255.255.255.2000: UDP, length 0") == 2, out.stdout
    assert "1000 Success" in sw.cmd("plugin/del pdump")
    assert "1038" in sw.cmd("pdump/active 1")           # its commands are gone
    a.send(f)
    assert b.recv() == f                                  # still switching


def _plug_syslog(procs, sockdir, tool, kind, frames, expect):
    d = os.path.join(sockdir, "log-" + kind)
    os.mkdir(d)
    cap = SyslogCapture(d)
    try:
        sw = os.path.join(sockdir, "sw-" + kind)
        switch = Switch(procs, C_TOOLS["vde_switch"], sw)
        peer = StreamPlug(procs, C_TOOLS["vde_plug"], sw)
        p = StreamPlug(procs, "/usr/bin/unshare", *cap.wrap([tool, "-L", sw])[1:])
        attached(switch, 2)
        for line in ("vlan/create 12", "vlan/addport 12 1", "vlan/addport 12 2"):
            assert "1000 Success" in switch.cmd(line)
        for f in frames:
            p.send(f)
            assert peer.recv_matching(lambda g: g == f) is not None
        wait_for(lambda: sum("VDE-IP" in m for m in cap.messages()) >= expect, what="IP lines in %r"
                 % (cap.messages(),))
        assert p.close() == 0
        wait_for(lambda: any("STOP" in m for m in cap.messages()), what="STOP")
        return cap.messages()
    finally:
        cap.close()


def test_vde_plug_iplog_matches_vdeplug4(procs, sockdir):
    frames = [_ip_frame(mac(1), "10.0.0.5"), _ip_frame(mac(1), "10.0.0.5"),
              _ip_frame(mac(1), "172.16.0.9", vlan=12), _ip_frame(mac(2), "10.0.0.5"),
              _ip6_frame(mac(1), b"\xfe\x80" + bytes(13) + b"\x09")]
    c = _plug_syslog(procs, sockdir, C_TOOLS["vde_plug"], "c", frames, 2)
    ours = _plug_syslog(procs, sockdir, OURS["vde_plug"], "ours", frames, 3)
    # vdeplug4 looks for the IP header of a tagged frame after the tag but
    # still reads the type before it, so it never logs tagged packets; ours does
    assert [m for m in ours if "vlan 12" not in m] == c
    assert ours == ["vde_plug: START: user root IP UNKNOWN_IP_ADDRESS",
                    "vde_plug: user root Real-IP UNKNOWN_IP_ADDRESS has got VDE-IP4 10.0.0.5 on vlan 0",
                    "vde_plug: user root Real-IP UNKNOWN_IP_ADDRESS has got VDE-IP4 172.16.0.9 on vlan 12",
                    "vde_plug: user root Real-IP UNKNOWN_IP_ADDRESS has got VDE-IP6 fe80::9 on vlan 0",
                    "vde_plug: STOP: user root IP UNKNOWN_IP_ADDRESS"]


def test_switch_iplog_to_syslog(procs, sockdir):
    d = os.path.join(sockdir, "slog")
    os.mkdir(d)
    cap = SyslogCapture(d)
    try:
        sw, mgmt = os.path.join(sockdir, "sw"), os.path.join(sockdir, "sw.mgmt")
        proc = procs.start(cap.wrap([OURS["vde_switch"], "-s", sw, "-M", mgmt]),
                           stdin=subprocess.PIPE)
        wait_for(lambda: os.path.exists(mgmt) or proc.poll() is not None, what="switch")
        assert proc.poll() is None
        for line in ("plugin/add iplog", "iplog/ipadd 10.0.0.0/8", "iplog/logfile -"):
            assert "1000 Success" in console_command(mgmt, line)
        assert "log on syslog" in console_command(mgmt, "iplog/showinfo")
        a = StreamPlug(procs, C_TOOLS["vde_plug"], sw)
        a.send(_ip_frame(mac(4), "10.3.3.3"))
        wait_for(lambda: any("10.3.3.3" in m for m in cap.messages()), what="syslog line")
        line = [m for m in cap.messages() if "10.3.3.3" in m][0]
        assert re.fullmatch(r'vde_switch(\[\d+\])?: ipv4 10\.3\.3\.3 mac=02:00:00:00:00:04 '
                            r'port=1 vlan=0 user=root "vdeplug: user=root pid=\d+"', line), line
    finally:
        cap.close()


pytestmark = pytest.mark.real


def test_iplog_reopens_its_file_on_sighup_as_the_c_switch(procs, sockdir, new_switch):
    """Log rotation: after a rename and SIGHUP the old file ends with
    ``SIGHUP: closing file`` and a new one starts with ``SIGHUP: opening file``."""
    results = {}
    for kind in ("c", "ours"):
        d = os.path.join(sockdir, "hup-" + kind)
        os.mkdir(d)
        sw = new_switch(kind, os.path.join(d, "sw"))
        log = os.path.join(d, "ip.log")
        for line in ("plugin/add iplog", "iplog/logfile " + log, "iplog/ipadd 10.0.0.0/8"):
            assert "1000 Success" in sw.cmd(line)
        os.rename(log, log + ".1")
        sw.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: os.path.exists(log), what="a new log file")
        a = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
        a.send(_ip_frame(mac(9), "10.9.9.9"))
        wait_for(lambda: "10.9.9.9" in open(log).read(), what="the address in the new file")
        stamp = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d ", re.M)
        results[kind] = [stamp.sub("", open(p).read()) for p in (log + ".1", log)]
        assert sw.proc.poll() is None                    # SIGHUP does not stop it
    assert results["ours"][0] == results["c"][0] == "SIGHUP: closing file\n"
    assert _norm_pid(results["ours"][1]) == _norm_pid(results["c"][1])
    assert results["ours"][1].startswith("SIGHUP: opening file\nipv4 10.9.9.9 mac=02:00:00:00:00:09")
