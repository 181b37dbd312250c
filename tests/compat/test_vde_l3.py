"""vde_l3 beside Debian's: the same command lines route real hosts.

Two switches, each with a host (a network namespace whose tap is
plugged into the switch by Debian's vde_plug); the router joins both
switches.  The hosts ping the router and each other through it, with
Debian's vde_l3 and with ours; the management consoles answer alike.
"""

import os
import signal
import socket
import subprocess

import pytest

from ifaces import IP, address, in_ns, namespaces, ns_ping  # noqa: F401  (fixture)
from support import C_TOOLS, COMPAT, OURS, Switch, require, wait_for

C_L3 = "/usr/bin/vde_l3"
OUR_L3 = os.path.join(COMPAT, "vde_l3")


def _host(procs, namespaces, sw, tag, addr, gw):  # noqa: F811
    ns = namespaces.new(tag)
    tap = "t" + tag
    procs.start(in_ns(ns, [require(C_TOOLS["vde_plug"]), "tap://" + tap, sw]))
    wait_for(lambda: subprocess.run([IP, "-n", ns, "link", "show", tap],
                                    capture_output=True).returncode == 0, what="tap " + tap)
    address(tap, ns, addr + "/24")
    subprocess.run([IP, "-n", ns, "route", "add", "default", "via", gw], check=True)
    return ns


def _ping(ns, addr, kind="ours"):
    """Ours: three pings, three replies (a packet waiting for ARP is queued).
    Debian's vde_l3 drops the packet that made it ask ARP and loses some
    more: at least two replies out of six, in one of three tries."""
    if kind == "ours":
        ns_ping(ns, addr)
        return
    for _round in range(3):                    # its losses come in bursts
        out = subprocess.run(in_ns(ns, ["/usr/bin/busybox", "ping", "-c", "6", "-w", "30",
                                        addr]), capture_output=True, text=True, timeout=60).stdout
        received = int(out.split(" packets received")[0].rsplit(" ", 1)[1])
        if received >= 2:
            return
    raise AssertionError(out)


def _net(i):
    return "10.%d.%d." % (90 + os.getpid() % 9, (os.getpid() + i) % 250)


def _console(path, lines):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    out = []
    buf = b""
    for line in [None] + lines:
        if line is not None:
            s.sendall(line.encode() + b"\n")
        if line in ("showinfo", "logout"):
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            out.append(buf.decode())
            break
        while not buf.endswith(b"\nVDE-L3$ "):
            chunk = s.recv(4096)
            assert chunk, "console closed after %r" % line
            buf += chunk
        out.append(buf.decode())
        buf = b""
    s.close()
    return out


CONSOLE = ["help", "ifconfig", "ifconfig vd1", "ifconfig vd7", "ifconfig eth0", "route list",
           "route", "route net 10.200.0.0/255.255.0.0:{gw}", "route net 10.200.0.0/255.255.0.0:{gw}",
           "route default gw {gw}", "route default gw 224.0.0.1", "route list", "route bogus",
           "tc ls", "tc", "tc set vd0 ufifo", "tc set vd0 pfifo limit 10", "tc ls",
           "tc set vd1 bfifo limit 3000", "tc ls", "tc set vd0 tbf rate 800K latency 50", "tc ls",
           "tc set vd1 tbf rate 1M limit 20000", "tc ls", "tc set vd0 ufifo", "tc ls",
           "tc set vd0 tbf rate 4K limit 20000", "tc set vd0 pfifo", "tc set vd0 pfifo limit x",
           "tc set vd0 nosuch", "tc set vd0 ufifo 3", "tc set vd9 ufifo", "bogus",
           "", "ifconfig vd1 {ip}", "ifconfig vd1 {ip} netmask 255.255.255.0",
           "ifconfig vd1 {ip} netmask 0.255.0.0", "ifconfig", "logout"]


# Debian's vde_l3 routes this setup in most runs, but in some (under load)
# it loses every packet for minutes: it is run here only as ours' reference
# by hand (``-k routes`` with "c" added back), not in the suite.
@pytest.mark.parametrize("kind", ["ours"])
def test_vde_l3_routes_between_two_switches(procs, sockdir, namespaces, kind):  # noqa: F811
    a, b = _net(0), _net(1)
    sw1 = Switch(procs, OURS["vde_switch"], os.path.join(sockdir, "s1"))
    sw2 = Switch(procs, OURS["vde_switch"], os.path.join(sockdir, "s2"))
    h1 = _host(procs, namespaces, sw1.dir, "a", a + "2", a + "1")
    h2 = _host(procs, namespaces, sw2.dir, "b", b + "2", b + "1")
    mgmt = os.path.join(sockdir, "l3.mgmt")
    tool = require(C_L3 if kind == "c" else OUR_L3)
    r = procs.start([tool, "-v", "%s:%s1/255.255.255.0" % (sw1.dir, a),
                     "-v", "%s:%s1/255.255.255.0" % (sw2.dir, b), "-M", mgmt])
    wait_for(lambda: os.path.exists(mgmt) or r.poll() is not None, what="vde_l3")
    assert r.poll() is None
    _ping(h1, a + "1", kind)                   # the router answers ARP and ping
    _ping(h1, b + "2", kind)                   # and forwards, both ways
    _ping(h2, a + "2", kind)
    out = subprocess.run(in_ns(h1, ["/usr/bin/busybox", "traceroute", "-n", "-m", "3",
                                    "-w", "2", b + "2"]),
                         capture_output=True, text=True, timeout=60).stdout
    assert b + "2" in out
    assert r.poll() is None


def test_vde_l3_console_matches_the_c_one(procs, sockdir):
    a, b = _net(2), _net(3)
    answers = {}
    for kind, tool in (("c", C_L3), ("ours", OUR_L3)):
        sw1 = Switch(procs, OURS["vde_switch"], os.path.join(sockdir, kind + "1"))
        sw2 = Switch(procs, OURS["vde_switch"], os.path.join(sockdir, kind + "2"))
        mgmt = os.path.join(sockdir, kind + ".l3")
        r = procs.start([require(tool), "-v", "%s:%s1/255.255.255.0" % (sw1.dir, a),
                         "--vdeplug", "%s:%s1/255.255.0.0" % (sw2.dir, b), "--mgmt", mgmt])
        wait_for(lambda: os.path.exists(mgmt) or r.poll() is not None, what="vde_l3")
        lines = [x.format(gw=a + "9", ip=b + "7") for x in CONSOLE]
        answers[kind] = _console(mgmt, lines) + _console(mgmt, ["showinfo"])
        assert r.poll() is None
    assert answers["ours"] == answers["c"]
    assert "Route successfully updated." in "".join(answers["ours"])


@pytest.mark.parametrize("argv,message", [
    (["-v", "S:10.1.0.1/255.0.255.0"], "vdeplug S: Cannot set netmask to '255.0.255.0'\n"),
    (["-v", "S:10.1.0.1/0.255.0.0"], "vdeplug S: Cannot set netmask to '0.255.0.0'\n"
                                     "(Did you mean to set default gateway? then -G)\n"),
    (["-v", "S:300.1.0.1/255.0.0.0"], "vdeplug S: Cannot set ip address to '300.1.0.1'\n"),
    (["-v", "S:224.1.0.1/255.0.0.0"], "vdeplug S: Cannot set ip address to '224.1.0.1'\n"),
    (["-v", "S10.1.0.1/255.0.0.0"], ""),
    (["-G", "bogus", "-v", "S:10.1.0.1/255.0.0.0"], "Cannot set default gateway address to "
                                                   "'bogus'\n"),
    ([], ""), (["-h"], ""), (["-x"], "{p}: unrecognized option '-x'\n"),
    (["-v"], "{p}: option requires an argument -- 'v'\n"),
    (["--bogus"], "{p}: unrecognized option '--bogus'\n"),
    (["-v", "S:10.1.0.1/255.0.0.0", "extra"], ""),
])
def test_vde_l3_rejects_what_the_c_one_rejects(sockdir, argv, message):
    """Bad command lines: the same message, usage and status (before any plug opens)."""
    results = []
    for tool in (C_L3, OUR_L3):
        sw = os.path.join(sockdir, "nosuch")
        args = [x.replace("S", sw, 1) if x.startswith("S") else x for x in argv]
        p = subprocess.run([require(tool)] + args, capture_output=True, text=True, timeout=30)
        # 2.3.2 opens each plug before checking the address that follows it;
        # ours checks the whole command line first and opens nothing
        err = p.stderr.replace(tool, "{p}").replace(sw, "S")
        results.append((p.returncode, err.replace("vdeplug S: No such file or directory\n", "")))
    if results[0][0] != -signal.SIGSEGV:      # 2.3.2 crashes on bad options (its long
        assert results[1] == results[0]       # option table has no terminating entry)
    else:
        assert argv[0].startswith("-") and argv[0] not in ("-v", "-G", "-h")
    assert results[1][0] == 1 and results[1][1].startswith(message)
    assert "Usage: {p} [-G default_gw] -v vde_sock1" in results[1][1]


def test_vde_l3_takes_prefix_lengths_too(procs, sockdir, namespaces):  # noqa: F811
    """2.3.2 refuses ``/24`` (its manual says it takes it); ours takes it, and -r."""
    a, b, far = _net(4), _net(5), _net(6)
    sw1 = Switch(procs, OURS["vde_switch"], os.path.join(sockdir, "s1"))
    sw2 = Switch(procs, OURS["vde_switch"], os.path.join(sockdir, "s2"))
    c = subprocess.run([C_L3, "-v", "%s:%s1/24" % (sw1.dir, a)], capture_output=True,
                       text=True, timeout=30)
    assert c.returncode == 1 and "Cannot set netmask to '24'" in c.stderr
    h1 = _host(procs, namespaces, sw1.dir, "c", a + "2", a + "1")
    h2 = _host(procs, namespaces, sw2.dir, "d", b + "2", b + "1")
    # h2 also holds an address of a "far" network the router reaches through h2
    subprocess.run([IP, "-n", h2, "addr", "add", far + "5/32", "dev", "lo"], check=True)
    subprocess.run([IP, "netns", "exec", h2, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
                   check=True)
    mgmt = os.path.join(sockdir, "l3.mgmt")
    r = procs.start([OUR_L3, "-v", "%s:%s1/24" % (sw1.dir, a), "-v", "%s:%s1/24" % (sw2.dir, b),
                     "-r", "%s0/24:%s2" % (far, b), "-M", mgmt])
    wait_for(lambda: os.path.exists(mgmt) or r.poll() is not None, what="vde_l3")
    assert r.poll() is None
    _ping(h1, b + "2")
    _ping(h1, far + "5")                       # through the static route
    listing = _console(mgmt, ["route list"])[1]
    assert "%s0\t%s2\t\t255.255.255.0\t\tvd1" % (far, b) in listing


def test_vde_l3_tbf_shapes_the_traffic(procs, sockdir, namespaces):  # noqa: F811
    """``tc set vd1 tbf rate 40K limit 100000`` (5000 bytes/s): ten pings of
    1000 bytes sent at once wait their turn, the later ones about a second
    or more, where they took milliseconds before."""
    a, b = _net(7), _net(8)
    sw1 = Switch(procs, OURS["vde_switch"], os.path.join(sockdir, "s1"))
    sw2 = Switch(procs, OURS["vde_switch"], os.path.join(sockdir, "s2"))
    h1 = _host(procs, namespaces, sw1.dir, "e", a + "2", a + "1")
    _host(procs, namespaces, sw2.dir, "f", b + "2", b + "1")
    mgmt = os.path.join(sockdir, "l3.mgmt")
    r = procs.start([OUR_L3, "-v", "%s:%s1/24" % (sw1.dir, a), "-v", "%s:%s1/24" % (sw2.dir, b),
                     "-M", mgmt])
    wait_for(lambda: os.path.exists(mgmt) or r.poll() is not None, what="vde_l3")
    _ping(h1, b + "2")
    burst = ["/usr/bin/busybox", "ping", "-q", "-c", "10", "-i", "0.01", "-s", "1000", "-w", "20",
             b + "2"]

    def slowest():
        out = subprocess.run(in_ns(h1, burst), capture_output=True, text=True, timeout=60).stdout
        assert "round-trip" in out, out
        return float(out.split("round-trip min/avg/max = ")[1].split("/")[2].split()[0])
    fast = slowest()
    assert "queuing discipline set to tbf" in _console(mgmt, ["tc set vd1 tbf rate 40K limit "
                                                              "100000"])[1]
    slow = slowest()
    assert fast < 300 and slow > 700, (fast, slow)
    assert "vd1: tbf. Shaping at Rate = 5000 Bytes/s, bucket limit: 100000 bytes. Overlimits: 0 " \
           "packets. MTU=1042" in _console(mgmt, ["tc ls"])[1]
