"""Bad input on the switch's ``--qemu-stream`` and ``--qemu-dgram`` sockets.

Hand-written clients speak QEMU's formats byte by byte (not with our
codec): zero lengths, frames too long, a length no QEMU sends, a stream
cut inside a frame, clients that never read, clients that vanish, and
``nobody`` knocking on sockets whose mode forbids it.  Each scenario
checks the counters on the client's port, whether the client was
disconnected, and that the switch still serves a fresh VDE plug and a
fresh QEMU-format client.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

from support import BROADCAST, OURS, STARTUP, StreamPlug, Switch, frame, mac, require, wait_for

AS_NOBODY = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def qemu_switch(procs, sockdir, *args: str) -> Switch:
    s = Switch(procs, OURS["vde_switch"], os.path.join(sockdir, "sw"),
               "--qemu-stream", os.path.join(sockdir, "st"),
               "--qemu-dgram", os.path.join(sockdir, "dg"), *args)
    s.stream = os.path.join(sockdir, "st")
    s.dgram = os.path.join(sockdir, "dg")
    return s


@pytest.fixture
def sw(procs, sockdir):
    return qemu_switch(procs, sockdir)


@pytest.fixture
def roomy_sw(procs, sockdir):
    """A switch with more ports than a fuzz run makes dgram peers: a peer
    that went away keeps its port until a frame sent to it fails or a
    newcomer finds the switch full (gone peers are looked for at most once
    a second), so 60 peers in a few seconds would see refusals."""
    return qemu_switch(procs, sockdir, "-n", "128")


def rec(f: bytes) -> bytes:
    return struct.pack(">I", len(f)) + f


def stream_client(sw, timeout: float = 5.0) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sw.stream)
    return s


def read_rec(s: socket.socket) -> bytes | None:
    """One record, or None at EOF."""
    def exactly(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf
    head = exactly(4)
    if head is None:
        return None
    return exactly(struct.unpack(">I", head)[0])


def read_matching(s: socket.socket, pred, timeout: float = 5.0) -> bytes | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            f = read_rec(s)
        except socket.timeout:
            return None
        if f is None:
            return None
        if pred(f):
            return f
    return None


def ports(sw) -> dict:
    """{port: endpoint description} of the active ports."""
    out, port = {}, None
    for line in sw.cmd("port/print").splitlines():
        m = re.match(r"Port (\d+) ", line)
        if m:
            port = int(m.group(1))
        m = re.match(r"\s+-- endpoint ID \d+ module (.*?)\s*: (.*)", line)
        if m:
            out[port] = "%s: %s" % (m.group(1), m.group(2))
    return out


def drops(sw, port: int) -> dict:
    line = sw.cmd("port/stats %d" % port)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line.split("drops", 1)[1])}


def new_port(sw, before: dict, timeout: float = 5.0) -> int:
    """The one port that came since ``before``: compared with its endpoint,
    since a port that left meanwhile may give its number to the newcomer."""
    found = wait_for(lambda: set(ports(sw).items()) - set(before.items()), timeout, "a new port")
    assert len(found) == 1, found
    return found.pop()[0]


def still_serving(procs, sw) -> None:
    """A fresh plug and a fresh QEMU stream client exchange broadcasts."""
    before = ports(sw)
    plug = StreamPlug(procs, OURS["vde_plug"], sw.dir)
    new_port(sw, before, STARTUP)              # the plug is on before it sends
    before = ports(sw)
    c = stream_client(sw)
    new_port(sw, before)
    hello = frame(BROADCAST, mac(0x91), b"from the plug")
    plug.send(hello)
    assert read_matching(c, lambda f: f == hello) == hello
    back = frame(BROADCAST, mac(0x92), b"from the qemu client")
    c.sendall(rec(back))
    assert plug.recv_matching(lambda f: f == back, 5) == back
    c.close()
    plug.close()


def closed_by_switch(s: socket.socket, timeout: float = 5.0) -> bool:
    s.settimeout(timeout)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


# -- stream --------------------------------------------------------------------------
def test_zero_length_record_is_a_runt_and_the_stream_goes_on(procs, sw):
    plug = StreamPlug(procs, OURS["vde_plug"], sw.dir)
    wait_for(lambda: len(ports(sw)) == 1, 5, "the plug")
    before = ports(sw)
    c = stream_client(sw)
    port = new_port(sw, before)
    assert ports(sw)[port].startswith("qemu stream: QEMU stream user=root pid=%d"
                                      % os.getpid())
    good = frame(BROADCAST, mac(0x11), b"after a zero length")
    c.sendall(rec(b"") + rec(b"") + rec(good))
    assert plug.recv_matching(lambda f: f == good, 5) == good
    assert drops(sw, port)["runt"] == 2
    assert port in ports(sw)                 # still connected
    c.close()
    plug.close()
    still_serving(procs, sw)


def test_frame_longer_than_the_switch_takes_is_dropped_and_the_stream_goes_on(procs, sw):
    plug = StreamPlug(procs, OURS["vde_plug"], sw.dir)
    wait_for(lambda: len(ports(sw)) == 1, 5, "the plug")
    before = ports(sw)
    c = stream_client(sw)
    port = new_port(sw, before)
    big = frame(BROADCAST, mac(0x12), b"x" * 10000, size=10014)
    good = frame(BROADCAST, mac(0x12), b"after the big one")
    c.sendall(rec(big) + rec(good))
    assert plug.recv_matching(lambda f: f == good, 5) == good
    assert drops(sw, port)["oversize"] == 1
    assert port in ports(sw)
    c.close()
    plug.close()


def test_length_no_qemu_sends_disconnects_the_client(procs, sw):
    before = ports(sw)
    c = stream_client(sw)
    port = new_port(sw, before)
    c.sendall(struct.pack(">I", 70000) + b"\0" * 1000)
    assert closed_by_switch(c)
    wait_for(lambda: port not in ports(sw), 5, "the port freed")
    assert drops(sw, port)["framing"] == 1
    still_serving(procs, sw)


def test_stream_cut_inside_a_frame_is_counted(procs, sw):
    before = ports(sw)
    c = stream_client(sw)
    port = new_port(sw, before)
    c.sendall(struct.pack(">I", 100) + b"\xff" * 30)
    c.close()
    wait_for(lambda: port not in ports(sw), 5, "the port freed")
    assert drops(sw, port)["truncated"] == 1
    still_serving(procs, sw)


def test_stream_client_that_never_reads(procs, sw):
    plug = StreamPlug(procs, OURS["vde_plug"], sw.dir)
    wait_for(lambda: len(ports(sw)) == 1, 5, "the plug")
    before = ports(sw)
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(sw.stream)
    stuck_port = new_port(sw, before)
    before = ports(sw)
    reader = stream_client(sw, timeout=10)
    new_port(sw, before)
    got = []

    def read_all():
        while True:
            try:
                f = read_rec(reader)
            except OSError:
                return
            if f is None:
                return
            got.append(f)
            if f.endswith(b"LAST"):
                return
    t = threading.Thread(target=read_all, daemon=True)
    t.start()
    n = 3000
    for i in range(n):
        plug.send(frame(BROADCAST, mac(0x13), struct.pack("!I", i) + b"y" * 1400, size=1460))
        if i % 50 == 49:                     # at the pace of the reader, which loses nothing
            wait_for(lambda: len(got) > i, 10, "the reader to catch up")
    last = frame(BROADCAST, mac(0x13), b"z" * 100 + b"LAST")
    plug.send(last)
    t.join(60)
    assert got and got[-1] == last, "the reading client got %d frames, not the last" % len(got)
    assert len(got) == n + 1, (len(got), sw.cmd("port/stats"))
    assert drops(sw, stuck_port)["queue_full"] > 0
    assert stuck_port in ports(sw)           # slow, not broken: still a client
    reader.close()
    stuck.close()
    plug.close()
    still_serving(procs, sw)


# -- datagrams -----------------------------------------------------------------------
def dgram_client(sw, path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.bind(path)
    return s


def test_dgram_bad_datagrams_are_counted(procs, sw, sockdir):
    plug = StreamPlug(procs, OURS["vde_plug"], sw.dir)
    wait_for(lambda: len(ports(sw)) == 1, 5, "the plug")
    before = ports(sw)
    d = dgram_client(sw, os.path.join(sockdir, "client"))
    d.sendto(b"", sw.dgram)
    port = new_port(sw, before)
    assert ports(sw)[port] == "qemu dgram: QEMU dgram %s user=root" % os.path.join(
        sockdir, "client")
    d.sendto(frame(BROADCAST, mac(0x21), b"x" * 10000, size=10014), sw.dgram)
    good = frame(BROADCAST, mac(0x21), b"after the bad ones")
    d.sendto(good, sw.dgram)
    assert plug.recv_matching(lambda f: f == good, 5) == good
    assert drops(sw, port)["runt"] == 1 and drops(sw, port)["oversize"] == 1
    back = frame(mac(0x21), mac(0x22), b"answer")
    plug.send(back)
    assert d.recv(65536) == back
    # from a socket with no address: no port, no reply possible
    unbound = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    before = ports(sw)
    unbound.sendto(frame(BROADCAST, mac(0x23), b"who am I"), sw.dgram)
    plug.send(frame(BROADCAST, mac(0x22), b"sync"))
    assert plug.recv_matching(lambda f: b"who am I" in f, 1) is None
    assert ports(sw) == before
    unbound.close()
    d.close()
    plug.close()
    still_serving(procs, sw)


def test_dgram_client_gone_frees_its_port(procs, sw, sockdir):
    plug = StreamPlug(procs, OURS["vde_plug"], sw.dir)
    wait_for(lambda: len(ports(sw)) == 1, 5, "the plug")
    before = ports(sw)
    path = os.path.join(sockdir, "gone")
    d = dgram_client(sw, path)
    d.sendto(frame(BROADCAST, mac(0x31), b"hello"), sw.dgram)
    port = new_port(sw, before)
    d.close()
    os.unlink(path)
    plug.send(frame(BROADCAST, mac(0x32), b"anyone there?"))
    wait_for(lambda: port not in ports(sw), 5, "the port of the vanished client freed")
    plug.close()
    still_serving(procs, sw)


def test_dgram_clients_gone_away_cannot_fill_the_switch(procs, sockdir):
    # any local user allowed to send may use many addresses and leave: the
    # ports of clients whose sockets are gone are freed for a new client
    sw = qemu_switch(procs, sockdir, "-n", "6")
    plug = StreamPlug(procs, OURS["vde_plug"], sw.dir)
    wait_for(lambda: len(ports(sw)) == 1, 5, "the plug")
    clients = []
    for i in range(8):
        path = os.path.join(sockdir, "fill%d" % i)
        d = dgram_client(sw, path)
        d.sendto(frame(BROADCAST, mac(0x40 + i), b"here"), sw.dgram)
        clients.append((d, path))
    for i in range(8):                           # the plug saw every admitted one
        plug.recv_matching(lambda f: f[6:12] == mac(0x40 + i), 0.5)
    full = ports(sw)
    admitted = sum("qemu dgram" in v for v in full.values())
    assert 1 <= admitted < 8, full               # the switch is full
    for k, (d, path) in enumerate(clients):
        d.close()
        if k % 2:
            os.unlink(path)                      # gone, file and all
    newcomer = dgram_client(sw, os.path.join(sockdir, "newcomer"))
    hello = frame(BROADCAST, mac(0x50), b"a port for me?")
    newcomer.sendto(hello, sw.dgram)
    assert plug.recv_matching(lambda f: f == hello, 5) == hello, "the newcomer got no port"
    back = frame(mac(0x50), mac(0x51), b"welcome")
    plug.send(back)
    assert newcomer.recv(65536) == back
    dgram_ports = [v for v in ports(sw).values() if "qemu dgram" in v]
    assert len(dgram_ports) == 1 and "newcomer" in dgram_ports[0], dgram_ports
    newcomer.close()
    plug.close()
    still_serving(procs, sw)


def test_dgram_client_that_never_reads(procs, sw, sockdir):
    plug = StreamPlug(procs, OURS["vde_plug"], sw.dir)
    wait_for(lambda: len(ports(sw)) == 1, 5, "the plug")
    before = ports(sw)
    d = dgram_client(sw, os.path.join(sockdir, "deaf"))
    d.sendto(frame(BROADCAST, mac(0x41), b"hello"), sw.dgram)
    port = new_port(sw, before)
    for i in range(1000):
        plug.send(frame(BROADCAST, mac(0x42), struct.pack("!I", i), size=200))
    wait_for(lambda: drops(sw, port)["queue_full"] > 0, 10, "queue_full on the deaf client")
    assert port in ports(sw)
    d.close()
    plug.close()
    still_serving(procs, sw)


# -- permissions ---------------------------------------------------------------------
NOBODY_SCRIPT = r"""
import socket, sys, struct
kind, path, mine = sys.argv[1:4]
f = b"\xff" * 6 + b"\x02\0\0\0\0\x51" + b"\x88\xb5" + b"from nobody".ljust(46, b"\0")
try:
    if kind == "stream":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall(struct.pack(">I", len(f)) + f)
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(mine)
        s.sendto(f, path)
except PermissionError:
    print("EACCES", flush=True)
    sys.exit(3)
print("READY", flush=True)
sys.stdin.read()
"""


def as_nobody(procs, kind: str, path: str, mine: str, who=AS_NOBODY):
    p = procs.start([require("/usr/bin/setpriv")] + who
                    + [sys.executable, "-c", NOBODY_SCRIPT, kind, path, mine],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return p, p.stdout.readline().strip()


@pytest.mark.parametrize("kind", ["stream", "dgram"])
def test_nobody_refused_by_the_default_mode(procs, sw, sockdir, kind):
    os.chmod(sockdir, 0o777)                 # the directory is not what stops nobody
    path = sw.stream if kind == "stream" else sw.dgram
    assert os.stat(path).st_mode & 0o777 == 0o600
    p, said = as_nobody(procs, kind, path, os.path.join(sockdir, "nobody-" + kind))
    assert said == "EACCES" and p.wait(10) == 3, (said, p.stderr.read())
    assert ports(sw) == {}


@pytest.mark.parametrize("kind", ["stream", "dgram"])
def test_nobody_joins_when_the_mode_allows(procs, sockdir, kind):
    os.chmod(sockdir, 0o777)
    sw = Switch(procs, OURS["vde_switch"], os.path.join(sockdir, "sw"), "-m", "0666",
                "--qemu-stream", os.path.join(sockdir, "st"),
                "--qemu-dgram", os.path.join(sockdir, "dg"))
    path = os.path.join(sockdir, "st" if kind == "stream" else "dg")
    assert os.stat(path).st_mode & 0o777 == 0o666
    p, said = as_nobody(procs, kind, path, os.path.join(sockdir, "nobody-" + kind))
    assert said == "READY", (said, p.stderr.read())
    wait_for(lambda: ports(sw), 5, "nobody's port")
    text = sw.cmd("port/print")
    assert "Current User: nobody" in text, text
    assert ("QEMU %s" % kind) in text and "user=nobody" in text, text
    p.stdin.close()
    p.wait(10)


# -- the socket files ----------------------------------------------------------------
def test_socket_files_replaced_when_stale_refused_when_live_removed_at_exit(procs, sockdir):
    st, dg = os.path.join(sockdir, "st"), os.path.join(sockdir, "dg")
    for path, kind in ((st, socket.SOCK_STREAM), (dg, socket.SOCK_DGRAM)):
        dead = socket.socket(socket.AF_UNIX, kind)
        dead.bind(path)                      # left behind by a process that died
        dead.close()
    first = Switch(procs, OURS["vde_switch"], os.path.join(sockdir, "sw1"),
                   "--qemu-stream", st, "--qemu-dgram", dg)
    first.stream = st
    c = stream_client(first)
    wait_for(lambda: ports(first), 5, "a client of the first switch")
    second = procs.start([OURS["vde_switch"], "-s", os.path.join(sockdir, "sw2"),
                          "--nostdin", "--qemu-dgram", dg])
    assert second.wait(10) == 1
    assert "Could not bind to socket '%s'" % dg in second.stderr.read().decode()
    assert not os.path.exists(os.path.join(sockdir, "sw2", "ctl"))
    assert ports(first)                      # untouched
    c.close()
    assert first.stop() == 0
    assert not os.path.exists(st) and not os.path.exists(dg)


# -- ports like any other ------------------------------------------------------------
def test_vlans_monitor_and_epclose_apply_to_qemu_clients(procs, sockdir):
    sw = Switch(procs, OURS["vde_switch"], os.path.join(sockdir, "sw"), "--monitor", "5",
                "--qemu-stream", os.path.join(sockdir, "st"),
                "--qemu-dgram", os.path.join(sockdir, "dg"))
    sw.stream, sw.dgram = os.path.join(sockdir, "st"), os.path.join(sockdir, "dg")
    monitor = StreamPlug(procs, OURS["vde_plug"], "vde://%s[5]" % sw.dir)
    wait_for(lambda: 5 in ports(sw), 5, "the monitor plug")
    before = ports(sw)
    s1 = stream_client(sw)
    p1 = new_port(sw, before)
    before = ports(sw)
    s2 = stream_client(sw)
    p2 = new_port(sw, before)
    before = ports(sw)
    d = dgram_client(sw, os.path.join(sockdir, "d"))
    d.sendto(frame(BROADCAST, mac(0x53), b"hello"), sw.dgram)
    p3 = new_port(sw, before)
    for line in ("vlan/create 10", "port/setvlan %d 10" % p1, "port/setvlan %d 10" % p3):
        assert "1000 Success" in sw.cmd(line), line
    # s1 and d share VLAN 10; s2 stays on VLAN 0 and hears nothing of it
    hi = frame(BROADCAST, mac(0x51), b"vlan 10 only")
    s1.sendall(rec(hi))
    d.settimeout(5)
    assert d.recv(65536) == hi
    s2.settimeout(1)
    assert read_matching(s2, lambda f: f == hi, 1) is None
    # the monitor port got a copy
    assert monitor.recv_matching(lambda f: f == hi, 5) == hi
    # port/epclose disconnects a stream client and frees a dgram client's port
    ep = int(re.search(r"Port %04d .*?endpoint ID (\d+)" % p1, sw.cmd("port/print"),
                       re.S).group(1))
    assert "1000 Success" in sw.cmd("port/epclose %d %d" % (p1, ep))
    assert closed_by_switch(s1)
    ep = int(re.search(r"Port %04d .*?endpoint ID (\d+)" % p3, sw.cmd("port/print"),
                       re.S).group(1))
    assert "1000 Success" in sw.cmd("port/epclose %d %d" % (p3, ep))
    assert set(ports(sw)) == {p2, 5}
    s2.close()
    d.close()
    monitor.close()


# -- the plug side -------------------------------------------------------------------
def test_plug_to_a_missing_qemu_says_why(procs, sw, sockdir):
    p = procs.start([OURS["vde_plug"], sw.dir, "qemu-stream://" + os.path.join(sockdir, "no")])
    assert p.wait(10) == 1
    err = p.stderr.read().decode()
    assert "vde_open qemu-stream://" in err and "No such file or directory" in err, err


def test_plug_leaves_a_peer_that_breaks_the_framing(procs, sw, sockdir):
    path = os.path.join(sockdir, "fakeqemu")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(10)
    p = procs.start([OURS["vde_plug"], sw.dir, "qemu-stream://" + path])
    conn, _ = srv.accept()
    conn.settimeout(5)
    wait_for(lambda: len(ports(sw)) == 1, 5, "the plug's port")
    # a frame from the switch side arrives framed as QEMU expects it
    before = ports(sw)
    c = stream_client(sw)
    new_port(sw, before)
    hello = frame(BROADCAST, mac(0x61), b"to the fake qemu")
    c.sendall(rec(hello))
    assert read_matching(conn, lambda f: f == hello) == hello
    # a zero-length record is skipped, a good frame still goes through
    good = frame(BROADCAST, mac(0x62), b"from the fake qemu")
    conn.sendall(rec(b"") + rec(good))
    assert read_matching(c, lambda f: f == good) == good
    # then a length no QEMU sends: the plug gives up and exits
    conn.sendall(struct.pack(">I", 70000))
    assert p.wait(10) == 0                  # as when a peer hangs up
    wait_for(lambda: len(ports(sw)) == 1, 5, "the plug's port freed")
    c.close()
    conn.close()
    srv.close()


@pytest.mark.parametrize("kind", ["stream", "dgram"])
def test_the_group_of_g_lets_its_members_in(procs, sockdir, kind):
    import grp
    os.chmod(sockdir, 0o777)
    daemon_gid = grp.getgrnam("daemon").gr_gid
    sw = Switch(procs, OURS["vde_switch"], os.path.join(sockdir, "sw"), "-m", "0660",
                "-g", "daemon", "--qemu-stream", os.path.join(sockdir, "st"),
                "--qemu-dgram", os.path.join(sockdir, "dg"))
    path = os.path.join(sockdir, "st" if kind == "stream" else "dg")
    st = os.stat(path)
    assert (st.st_mode & 0o777, st.st_gid) == (0o660, daemon_gid)
    p, said = as_nobody(procs, kind, path, os.path.join(sockdir, "outsider"))
    assert said == "EACCES" and p.wait(10) == 3
    member = ["--reuid=nobody", "--regid=nogroup", "--groups=daemon"]
    p, said = as_nobody(procs, kind, path, os.path.join(sockdir, "member"), member)
    assert said == "READY", (said, p.stderr.read())
    wait_for(lambda: ports(sw), 5, "the member's port")
    assert "user=nobody" in sw.cmd("port/print")
    p.stdin.close()
    p.wait(10)


# -- fuzzing -------------------------------------------------------------------------
def test_random_streams_and_datagrams_never_stop_the_switch(procs, roomy_sw, sockdir):
    sw = roomy_sw
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    record = st.one_of(
        st.binary(max_size=200).map(rec),                          # well formed
        st.integers(0, 2 ** 32 - 1).map(lambda n: struct.pack(">I", n)),  # any length
        st.binary(max_size=64))                                    # garbage
    paths = iter(range(10 ** 6))

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(record, max_size=8), st.binary(max_size=300))
    def one(records, datagram):
        c = stream_client(sw)
        try:
            c.sendall(b"".join(records))
        except OSError:
            pass                                                   # already dropped
        c.close()
        d = dgram_client(sw, os.path.join(sockdir, "f%d" % next(paths)))
        d.sendto(datagram, sw.dgram)
        d.close()

    one()
    # every stream client is gone; dgram clients go at the next frame sent to them
    wait_for(lambda: all("qemu stream" not in v for v in ports(sw).values()), 10,
             "the stream clients gone")
    still_serving(procs, sw)
    wait_for(lambda: all("qemu dgram" not in v for v in ports(sw).values()), 10,
             "the dgram clients gone")
