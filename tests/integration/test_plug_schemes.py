"""vde_plug's other schemes and its connection errors, against Debian's vdeplug4.

* ``ptp://PATH``: our plug at one end, Debian's at the other (both orders);
* ``null://``; ``hub://`` and ``switch://`` hosted by our vde_plug and
  joined by Debian's plugs;
* failures: messages and exit status compared with Debian's vde_plug.
"""

import os
import socket
import subprocess
import time

import pytest

from support import (BROADCAST, C_TOOLS, OURS, StreamPlug, all_joined, attached, frame,
                     in_pkts, listening, mac, out_pkts, require, wait_for)

KINDS = ("ours", "c")


def plug_tool(kind):
    return require(OURS["vde_plug"] if kind == "ours" else C_TOOLS["vde_plug"])


def is_socket(path):
    try:
        import stat
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


# -- ptp:// ------------------------------------------------------------------
PTP_PAIRS = [(a, b) for a in KINDS for b in KINDS]


@pytest.mark.parametrize("first,second", PTP_PAIRS)
def test_ptp_pair(procs, sockdir, first, second):
    path = os.path.join(sockdir, "p")
    a = StreamPlug(procs, plug_tool(first), "ptp://" + path)
    wait_for(lambda: is_socket(path), what="the first ptp end")
    a.send(frame(BROADCAST, mac(1), b"nobody there yet"))     # lost, harmless
    b = StreamPlug(procs, plug_tool(second), "ptp://" + path)
    wait_for(lambda: is_socket(path + "+"), what="the second ptp end")
    for _ in range(3):
        f = frame(BROADCAST, mac(1), b"first to second")
        a.send(f)
        assert b.recv_matching(lambda x: x == f) == f
        g = frame(mac(1), mac(2), b"second to first")
        b.send(g)
        assert a.recv_matching(lambda x: x == g) == g
    assert b.drain(0.1) == []                 # the lost frame stayed lost
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o700)
    # A third plug cannot join a busy pair (same answer as vdeplug4).
    for kind in KINDS:
        c = procs.start([plug_tool(kind), "ptp://" + path])
        assert c.wait(timeout=5) == 1
        assert c.stderr.read().decode() == (
            "vde_open ptp://%s: Operation not permitted\n" % path)
    assert a.close() == 0 and b.close() == 0
    wait_for(lambda: not os.path.exists(path) and not os.path.exists(path + "+"),
             what="both ptp sockets removed")


@pytest.mark.parametrize("kind", KINDS)
def test_ptp_replaces_a_stale_socket(procs, sockdir, kind):
    path = os.path.join(sockdir, "p")
    for name in (path, path + "+"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(name)
        s.close()                               # the file stays, nobody listens
    a = StreamPlug(procs, plug_tool(kind), "ptp://" + path)
    b = StreamPlug(procs, C_TOOLS["vde_plug"], "ptp://" + path)
    f = frame(BROADCAST, mac(3), b"through a recycled path")

    def crossed():
        a.send(f)
        return b.recv(0.2) == f
    wait_for(crossed, what="a frame over the recycled ptp path")


# -- null:// -----------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_null_swallows_and_stays(procs, sockdir, new_switch, kind):
    p = StreamPlug(procs, plug_tool(kind), "null://")
    p.send(frame(BROADCAST, mac(1)))
    assert p.drain(0.3) == []
    assert p.proc.poll() is None
    assert p.close() == 0
    # cabled to a switch, null:// is a port that takes every frame and sends none
    sw = new_switch("c", os.path.join(sockdir, "sw"))
    cable = procs.start([plug_tool(kind), "null://", sw.dir])
    attached(sw, 1)
    peer = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    attached(sw, 2)
    peer.send(frame(BROADCAST, mac(2), b"into the void"))
    wait_for(lambda: out_pkts(sw, 1) == 1, what="the frame handed to the null port")
    assert in_pkts(sw, 1) == 0 and peer.drain(0.3) == []
    assert cable.poll() is None
    cable.terminate()
    cable.wait(timeout=10)


# -- hub:// and switch:// ----------------------------------------------------
def node(procs, sockdir, kind):
    path = os.path.join(sockdir, kind)
    p = procs.start([plug_tool("ours"), "null://", "%s://%s" % (kind, path)])
    wait_for(lambda: listening(os.path.join(path, "ctl")) or p.poll() is not None,
             what="%s:// to listen" % kind)
    assert p.poll() is None, p.stderr.read()
    return p, path


@pytest.mark.parametrize("kind", ["switch", "hub"])
def test_in_process_network_serves_c_plugs(procs, sockdir, kind):
    p, path = node(procs, sockdir, kind)
    a, b, c = (StreamPlug(procs, C_TOOLS["vde_plug"], path) for _ in range(3))
    all_joined(a, (b, c))
    f = frame(BROADCAST, mac(1), b"hello")
    a.send(f)
    assert b.recv() == f and c.recv() == f
    b.send(frame(BROADCAST, mac(2)))            # teaches mac(2)'s place
    assert a.recv() is not None and c.recv() is not None
    g = frame(mac(2), mac(1), b"unicast")
    a.send(g)
    assert b.recv() == g
    leaked = c.drain(0.3)
    assert leaked == ([g] if kind == "hub" else [])
    assert a.drain(0.1) == []


def test_in_process_switch_ends_cleanly(procs, sockdir):
    p, path = node(procs, sockdir, "switch")
    a, b = (StreamPlug(procs, C_TOOLS["vde_plug"], path) for _ in range(2))
    all_joined(a, (b,))
    p.terminate()
    assert p.wait(timeout=5) in (0, -15)
    assert a.proc.wait(timeout=5) == 0          # its clients see the port close
    assert b.proc.wait(timeout=5) == 0
    assert not os.path.exists(os.path.join(path, "ctl"))


# -- connection failures -----------------------------------------------------
def run(kind, *args, timeout=10):
    r = subprocess.run([plug_tool(kind)] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stderr.decode()


@pytest.mark.parametrize("form", ["%s", "vde://%s", "vde://%s[3]", "%s[2]"])
def test_missing_switch_directory(sockdir, form):
    vnl = form % os.path.join(sockdir, "nothere")
    expected = (1, "vde_open %s: No such file or directory\n" % vnl)
    assert run("c", vnl) == expected           # the reference
    assert run("ours", vnl) == expected


def test_missing_switch_in_a_cable(sockdir, new_switch):
    sw = new_switch("ours", os.path.join(sockdir, "sw"))
    missing = os.path.join(sockdir, "nothere")
    expected = (1, "vde_open %s: No such file or directory\n" % missing)
    assert run("c", sw.dir, missing) == expected
    assert run("ours", sw.dir, missing) == expected


@pytest.mark.parametrize("sw_kind", KINDS)
def test_ctl_socket_is_not_a_directory(sockdir, new_switch, sw_kind):
    sw = new_switch(sw_kind, os.path.join(sockdir, "sw"))
    ctl = os.path.join(sw.dir, "ctl")
    expected = (1, "vde_open %s: Not a directory\n" % ctl)
    assert run("c", ctl) == expected
    assert run("ours", ctl) == expected


def test_no_free_port_is_an_error_not_a_hang(procs, sockdir, new_switch):
    """2.3.2 never answers when it has no free port; Debian's plug hangs."""
    sw = new_switch("c", os.path.join(sockdir, "sw"), "-n", "2")   # port 1 only
    StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    wait_for(lambda: "-- endpoint ID" in sw.cmd("port/print"), what="port 1 taken")
    with pytest.raises(subprocess.TimeoutExpired):
        run("c", sw.dir, timeout=2)                # the reference hangs
    start = time.monotonic()
    status, err = run("ours", sw.dir, timeout=15)
    assert time.monotonic() - start < 7.5
    assert (status, err) == (1, "vde_open %s: Connection timed out\n" % sw.dir)


@pytest.mark.parametrize("source", ["/dev/null", "file"])
def test_input_that_cannot_be_polled(procs, sockdir, new_switch, tmp_path, source):
    """stdin from /dev/null or a regular file: frames are sent, then EOF ends the plug."""
    sw = new_switch("ours", os.path.join(sockdir, "sw"))
    watcher = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    wait_for(lambda: "-- endpoint ID" in sw.cmd("port/print"), what="the watcher")
    frames = [frame(BROADCAST, mac(i), b"from a file") for i in range(1, 4)]
    if source == "file":
        path = tmp_path / "frames"
        path.write_bytes(b"".join(len(f).to_bytes(2, "big") + f for f in frames))
        source = str(path)
    else:
        frames = []
    for kind in KINDS:
        with open(source, "rb") as stdin:
            r = subprocess.run([plug_tool(kind), sw.dir], stdin=stdin,
                               stderr=subprocess.PIPE, timeout=10)
        assert (r.returncode, r.stderr) == (0, b"")
        assert [watcher.recv_matching(lambda x: x == f) for f in frames] == frames
