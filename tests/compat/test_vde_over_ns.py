"""vde_over_ns beside Debian's: a cable through DNS queries and answers.

The server end listens on UDP port 53 of 127.0.0.1 inside a network
namespace the test makes (and removes), the client end asks it there;
each end is plugged into a switch (ours on the server side, Debian's on
the client side) and each end is Debian's vde_over_ns or ours, in every
pairing.  Frames of many sizes go both ways between a vde_plug on each
switch.  Debian's tool only works with ``-s`` (on stdin/stdout it sends
nothing: see the last test), and its client starts asking only once its
switch gave it a frame, so the client side speaks first.
"""

import os
import secrets
import socket
import subprocess
import time

import pytest

from netns import in_ns, sh
from support import (BROADCAST, C_TOOLS, COMPAT, OURS, StreamPlug, attached, frame, mac,
                     require, wait_for)

C_TOOL = "/usr/bin/vde_over_ns"
OUR_TOOL = os.path.join(COMPAT, "vde_over_ns")
TOOLS = {"c": C_TOOL, "ours": OUR_TOOL}
DOMAIN = "tun.example.vde"
BUSYBOX = "/usr/bin/busybox"
# Debian's client cuts a frame in pieces of 165 bytes under DOMAIN and never
# ends one that fills its last piece exactly: those sizes go only with ours
SIZES = [60, 61, 200, 600, 1000, 1400, 1514]
EXACT = [330, 1485]


@pytest.fixture
def netns():
    name = "vdeipn-ns53-%d-%s" % (os.getpid(), secrets.token_hex(3))
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


def bound_53(ns: str) -> bool:
    out = sh(*in_ns(ns, ["ss", "-Hlun", "sport = :53"])).stdout
    return "127.0.0.1:53" in out


def start_cable(procs, netns, server, client, server_side, client_side):
    srv = procs.start(in_ns(netns, [require(TOOLS[server]), "-s", server_side.dir,
                                    "-i", "127.0.0.1", DOMAIN]))
    wait_for(lambda: bound_53(netns) or srv.poll() is not None, 30, "the server on port 53")
    assert srv.poll() is None, srv.stderr.read().decode()
    cli = procs.start(in_ns(netns, [require(TOOLS[client]), "-s", client_side.dir,
                                    "-c", "127.0.0.1", DOMAIN]))
    return srv, cli


def numbered(src: int, sizes, tag: bytes):
    return [frame(BROADCAST, mac(src), (tag + b" %d " % i + bytes(range(256)) * 6)[:n - 14],
                  size=n) for i, n in enumerate(sizes)]


def crossing(sender, receiver, frames, timeout=60.0):
    for f in frames:
        sender.send(f)
    want = set(frames)
    got = receiver.collect(lambda f: f in want, len(frames), timeout)
    return got


@pytest.mark.parametrize("server,client", [("ours", "ours"), ("c", "ours"), ("ours", "c"),
                                           ("c", "c")])
def test_frames_cross_both_ways(procs, new_switch, sockdir, netns, server, client):
    a = new_switch("ours", os.path.join(sockdir, "a"))
    b = new_switch("c", os.path.join(sockdir, "b"))
    srv, cli = start_cable(procs, netns, server, client, a, b)
    pa = StreamPlug(procs, C_TOOLS["vde_plug"], a.dir)
    pb = StreamPlug(procs, OURS["vde_plug"], b.dir)
    attached(a, 2, 30)
    attached(b, 2, 30)
    sizes = SIZES + (EXACT if client == "ours" else [])
    # client side first (Debian's client polls only after a first frame)
    up = numbered(0x11, sizes, b"up")
    got = crossing(pb, pa, up)
    assert got == up, "client->server: %d of %d frames" % (len(got), len(up))
    down = numbered(0x22, SIZES + EXACT, b"down")
    got = crossing(pa, pb, down)
    assert got == down, "server->client: %d of %d frames" % (len(got), len(down))
    # many at once: the server answers as fast as queries come
    burst = numbered(0x22, [100] * 50, b"burst")
    assert crossing(pa, pb, burst) == burst
    assert srv.poll() is None and cli.poll() is None


@pytest.mark.parametrize("server,client", [("ours", "ours"), ("c", "ours"), ("ours", "c")])
def test_a_ping_crosses_the_cable(procs, new_switch, sockdir, netns, server, client):
    """Two namespaces, each with a tap on one switch, ping each other
    (the client side first: its ARP request starts Debian's client)."""
    hosts = [netns + "a", netns + "b"]
    made, taps = [], []
    try:
        for i, h in enumerate(hosts):
            sh("ip", "netns", "add", h)
            made.append(h)
            tap = ("ons%d%s" % (os.getpid() % 10000, "ab"[i]))[:15]
            sh("ip", "tuntap", "add", "dev", tap, "mode", "tap")
            taps.append(tap)
        a = new_switch("ours", os.path.join(sockdir, "a"), "-t", taps[0])
        b = new_switch("c", os.path.join(sockdir, "b"), "-t", taps[1])
        for i, (h, tap) in enumerate(zip(hosts, taps)):
            sh("ip", "link", "set", tap, "netns", h)
            sh("ip", "-n", h, "addr", "add", "10.53.0.%d/24" % (i + 1), "dev", tap)
            sh("ip", "-n", h, "link", "set", tap, "up")
            sh("ip", "-n", h, "link", "set", "lo", "up")
        start_cable(procs, netns, server, client, a, b)
        attached(a, 2, 30)
        attached(b, 2, 30)
        r = sh(*in_ns(hosts[1], [require(BUSYBOX), "ping", "-c", "3", "-W", "10",
                                       "10.53.0.1"]), check=False)
        assert " 0% packet loss" in r.stdout or ", 0% packet loss" in r.stdout, r.stdout
    finally:
        for h in made:
            sh("ip", "netns", "del", h, check=False)
        for tap in taps:                 # one never moved to its namespace
            if os.path.exists("/sys/class/net/" + tap):
                sh("ip", "link", "del", tap, check=False)


def test_c_client_on_stdin_sends_nothing(procs, netns):
    """Debian's stdin/stdout mode drops its DNS socket (descriptor -1):
    a frame on its stdin makes no query; ours sends it."""
    got = {}
    for kind in ("c", "ours"):
        listener = [sys_python(), "-c", LISTEN]
        lp = procs.start(in_ns(netns, listener), stdout=subprocess.PIPE)
        wait_for(lambda: bound_53(netns), 30, "the listener")
        f = frame(BROADCAST, mac(5), b"stdin", size=60)
        tool = procs.start(in_ns(netns, [require(TOOLS[kind]), "-c", "127.0.0.1", DOMAIN]),
                           stdin=subprocess.PIPE)
        tool.stdin.write(len(f).to_bytes(2, "big") + f)
        tool.stdin.flush()
        out, _ = lp.communicate(timeout=30)
        got[kind] = int(out.split()[0])
        tool.kill()
    assert got["c"] == 0
    assert got["ours"] >= 1


def sys_python():
    import sys
    return sys.executable


# counts the queries carrying a frame of 60 bytes that reach 127.0.0.1:53 in 3 s
LISTEN = r"""
import socket, sys, time
sys.path.insert(0, %r)
from vde_ipn.wire import nstx
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
s.settimeout(0.2)
suffix = nstx.domain_labels(%r)
n, end = 0, time.monotonic() + 3
while time.monotonic() < end:
    try:
        msg, _ = s.recvfrom(4096)
    except socket.timeout:
        continue
    data = nstx.name_data(nstx.parse_query(msg)[1], suffix)
    if data and len(nstx.parse_fragment(data)[3]) == 60:
        n += 1
print(n)
""" % (os.path.dirname(COMPAT), DOMAIN)


@pytest.mark.parametrize("args", [
    [], ["-g", DOMAIN], ["-h"], ["-h", "x"], ["-i", "nonsense", DOMAIN],
    ["-i", "255.255.255.255", DOMAIN], ["-D"], ["-s"], ["-c"], ["--"],
    ["-b", "127.0.0.1", DOMAIN], ["-x", "-h", "x"],
])
def test_command_line_answers_as_debian(netns, args):
    """Usage, errors and exit statuses, byte for byte (argv[0] aside); run
    in the test's namespace, so that a line taken for a server's could
    bind nothing real."""
    out = {}
    for kind, tool in TOOLS.items():
        r = subprocess.run(in_ns(netns, [require(tool)] + args), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=30)
        out[kind] = (r.returncode, r.stdout, r.stderr.replace(tool.encode(), b"PROG"))
    assert out["ours"] == out["c"]
    assert out["c"][0] in (0, 64)


def test_benchmark_runs():
    """benchmarks/dns_cable.py completes and prints both tools both ways
    (how fast is not a test result)."""
    import re
    import sys
    script = os.path.join(os.path.dirname(COMPAT), "benchmarks", "dns_cable.py")
    r = subprocess.run([sys.executable, script, "--runs", "1", "--frames", "20"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = re.findall(r"^(up|down)\s+(C|ours)\s+(\d+) \[", r.stdout, re.M)
    assert {(d, k) for d, k, _ in rows} == {(d, k) for d in ("up", "down")
                                           for k in ("C", "ours")}, r.stdout
    assert all(int(v) > 0 for _, _, v in rows), r.stdout
    assert "load average" in r.stdout


JUNK = r"""
import os, random, socket, struct, sys, threading, time
sys.path.insert(0, %r)
from vde_ipn.wire import nstx
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", 53))
s.settimeout(2.0)
answers, polls = [], []

def read():                 # answers are read as they come (the buffer holds ~250)
    try:
        while True:
            msg = s.recv(4096)
            dns_id = struct.unpack(">H", msg[:2])[0]
            answers.append(dns_id)
            if dns_id >= 0x8000:
                polls.append(nstx.parse_answer(msg)[1] == [nstx.FILLER])
    except (socket.timeout, ConnectionRefusedError):
        pass
reader = threading.Thread(target=read)
reader.start()
rnd = random.Random(7)
for n in range(300):
    s.send(bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 600))))
other = nstx.domain_labels("other.example")
s.send(nstx.build_query(0x4242, nstx.data_name(nstx.pack_fragment(5, 0, True, b"x" * 60), other)))
mine = nstx.domain_labels(%r)
s.send(nstx.build_answer(0x4343, nstx.data_name(b"abcd", mine), b"zz"))
s.send(nstx.build_query(0x4444, nstx.data_name(b"\xb4", mine)))       # shorter than a header
s.send(nstx.build_query(0x4545, b"\x03a!b" + mine))                     # not the alphabet
time.sleep(0.3)             # paced, so that the server's socket buffer holds them all
for n in range(300):        # polls of a stranger: answered, but never with data
    if n %% 25 == 0:
        time.sleep(0.05)
    s.send(nstx.build_query(0x8000 + n, nstx.data_name(nstx.pack_fragment(0, 0, True), mine)))
reader.join()
print(" ".join("%%04x" %% a for a in answers if a < 0x8000))
print(len(polls), all(polls))
""" % (os.path.dirname(COMPAT), DOMAIN)


def test_our_server_shrugs_off_junk(procs, new_switch, sockdir, netns):
    """Random datagrams, queries for another domain, answers sent to the
    server and names that do not decode to a fragment: none is answered
    (an answer would carry a piece of a frame away from the client); a
    stranger's polls are answered empty; the cable still carries frames
    both ways."""
    a = new_switch("ours", os.path.join(sockdir, "a"))
    b = new_switch("c", os.path.join(sockdir, "b"))
    srv, cli = start_cable(procs, netns, "ours", "ours", a, b)
    pa = StreamPlug(procs, C_TOOLS["vde_plug"], a.dir)
    pb = StreamPlug(procs, OURS["vde_plug"], b.dir)
    attached(a, 2, 30)
    attached(b, 2, 30)
    r = sh(*in_ns(netns, [sys_python(), "-c", JUNK]))
    answered, polls = r.stdout.splitlines()
    assert not {"4242", "4343", "4444", "4545"} & set(answered.split()), answered
    # the cable's own client took over again: every poll of the stranger was
    # answered, empty
    assert polls == "300 True", polls
    assert srv.poll() is None
    up, down = numbered(0x11, SIZES, b"up"), numbered(0x22, SIZES, b"down")
    assert crossing(pb, pa, up) == up
    assert crossing(pa, pb, down) == down


@pytest.mark.parametrize("kind", ["c", "ours"])
def test_daemon_mode(procs, new_switch, sockdir, netns, kind):
    """-D: the command returns 0 at once, a daemon holds port 53."""
    a = new_switch("ours", os.path.join(sockdir, "a"))
    r = subprocess.run(in_ns(netns, [require(TOOLS[kind]), "-D", "-s", a.dir, "-i",
                                     "127.0.0.1", DOMAIN]),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    pids = []
    try:
        def daemon_pid():
            out = sh(*in_ns(netns, ["ss", "-Hlunp", "sport = :53"])).stdout
            pids[:] = [int(p) for p in __import__("re").findall(r"pid=(\d+)", out)]
            return pids
        wait_for(daemon_pid, 30, "the daemon on port 53")
        attached(a, 1, 30)
    finally:
        for pid in pids:
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pass


@pytest.mark.parametrize("stream_end", ["server", "client"])
def test_our_end_on_stdin_stdout_with_debian_end(procs, tree, new_switch, sockdir, netns,
                                                 stream_end):
    """The manual's ``dpipe vde_plug SW = vde_over_ns ...`` form: ours on a
    vdestream (Debian's dpipe and vde_plug), Debian's with ``-s`` at the
    other end."""
    from support import descendants
    a = new_switch("ours", os.path.join(sockdir, "a"))
    b = new_switch("c", os.path.join(sockdir, "b"))
    dpipe, plug = require("/usr/bin/dpipe"), C_TOOLS["vde_plug"]
    if stream_end == "server":
        srv = procs.start(in_ns(netns, [dpipe, plug, a.dir, "=", OUR_TOOL, "-i", "127.0.0.1",
                                        DOMAIN]))
    else:
        srv = procs.start(in_ns(netns, [C_TOOL, "-s", a.dir, "-i", "127.0.0.1", DOMAIN]))
    wait_for(lambda: bound_53(netns) or srv.poll() is not None, 30, "the server on port 53")
    assert srv.poll() is None, srv.stderr.read().decode()
    if stream_end == "client":
        cli = procs.start(in_ns(netns, [dpipe, plug, b.dir, "=", OUR_TOOL, "-c", "127.0.0.1",
                                        DOMAIN]))
    else:
        cli = procs.start(in_ns(netns, [C_TOOL, "-s", b.dir, "-c", "127.0.0.1", DOMAIN]))
    pa = StreamPlug(procs, C_TOOLS["vde_plug"], a.dir)
    pb = StreamPlug(procs, OURS["vde_plug"], b.dir)
    attached(a, 2, 30)
    attached(b, 2, 30)
    tree.extend(descendants(srv.pid) + descendants(cli.pid))     # dpipe's children
    up, down = numbered(0x11, SIZES, b"up"), numbered(0x22, SIZES + EXACT, b"down")
    assert crossing(pb, pa, up) == up
    assert crossing(pa, pb, down) == down


@pytest.mark.parametrize("client", ["c", "ours"])
def test_a_frame_filling_its_last_fragment(procs, new_switch, sockdir, netns, client):
    """Under DOMAIN a query holds 165 bytes of frame: Debian's client never
    ends a 330-byte frame (no fragment says "last"), ours does."""
    a = new_switch("ours", os.path.join(sockdir, "a"))
    b = new_switch("c", os.path.join(sockdir, "b"))
    start_cable(procs, netns, "ours", client, a, b)
    pa = StreamPlug(procs, C_TOOLS["vde_plug"], a.dir)
    pb = StreamPlug(procs, OURS["vde_plug"], b.dir)
    attached(a, 2, 30)
    attached(b, 2, 30)
    exact, other = numbered(0x11, [330, 331], b"edge")
    pb.send(exact)
    pb.send(other)
    # the switches and the cable keep one sender's order: the 330-byte frame,
    # if delivered, comes first
    got = pa.collect(lambda f: f in (exact, other), 1 if client == "c" else 2, 30)
    assert got == ([other] if client == "c" else [exact, other])
