"""User-Mode Linux's vde transport: vde_plug as UML's helper.

Debian's linux.uml does not talk to a switch itself: it spawns
``vde_plug --descr D [--port2 N] --mod2 0MODE seqpacket://FD VNL`` from
PATH with one end of a SOCK_SEQPACKET socketpair as FD.  The first tests
play UML's part with a socketpair; the last boots the real linux.uml
(hostfs root, a busybox script as init) with compat/ first on PATH, so
UML spawns our vde_plug, and exchanges ARP with the guest.
"""

import os
import re
import signal
import socket
import subprocess
import threading

import pytest

from support import (BROADCAST, C_TOOLS, COMPAT, OURS, StreamPlug, attached, descendants, frame,
                     in_pkts, mac, require, wait_for)

UML = "/usr/bin/linux.uml"
BUSYBOX = "/usr/bin/busybox"
GUEST_MAC = bytes.fromhex("525400aabbcc")
HOST_MAC = mac(1)


def plug_tool(kind):
    return require(OURS["vde_plug"] if kind == "ours" else C_TOOLS["vde_plug"])


@pytest.fixture(params=["ours", "c"])
def sw_kind(request):
    return request.param


@pytest.fixture(params=["ours", "c"])
def plug_kind(request):
    return request.param


def helper(procs, kind, vnl, *, descr="UML vde_transport", port=None, mode="0700"):
    """Start vde_plug exactly as UML does; return (process, our socket end)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    argv = [plug_tool(kind), "--descr", descr]
    if port is not None:
        argv += ["--port2", str(port)]
    argv += ["--mod2", mode, "seqpacket://%d" % theirs.fileno(), vnl]
    p = procs.start(argv, pass_fds=(theirs.fileno(),))
    theirs.close()
    ours.settimeout(3)
    return p, ours


def recv_matching(sock, pred, timeout=3.0):
    sock.settimeout(timeout)
    try:
        while True:
            f = sock.recv(65536)
            if pred(f):
                return f
    except socket.timeout:
        return None


def test_helper_form_exchanges_frames(procs, sockdir, new_switch, sw_kind, plug_kind):
    sw = new_switch(sw_kind, os.path.join(sockdir, "sw"))
    p, end = helper(procs, plug_kind, sw.dir, descr="umltest", port=7)
    other = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    attached(sw, 2)
    text = sw.cmd("port/print")
    assert re.search(r"Port 0007 [^\n]*\n(?:[^\n]*\n){3}  -- endpoint ID \d+ module unix "
                     r"prog   : umltest user=\S+ pid=%d\n" % p.pid, text), text
    f = frame(BROADCAST, GUEST_MAC, b"from the guest")
    end.send(f)                                 # one packet = one frame
    assert other.recv() == f
    g = frame(GUEST_MAC, HOST_MAC, b"to the guest")
    other.send(g)
    assert recv_matching(end, lambda x: x == g) == g
    short = frame(BROADCAST, GUEST_MAC, b"42-byte ARP-sized", size=42)
    end.send(short)                             # unpadded frames pass unchanged
    assert other.recv() == short


def test_helper_default_description_and_mode(procs, sockdir, new_switch, plug_kind):
    sw = new_switch("ours", os.path.join(sockdir, "sw"))
    p, end = helper(procs, plug_kind, "vde://" + sw.dir)
    attached(sw, 1)
    assert ": UML vde_transport user=" in sw.cmd("port/print")


def test_helper_exits_when_uml_closes_its_end(procs, sockdir, new_switch, sw_kind, plug_kind):
    sw = new_switch(sw_kind, os.path.join(sockdir, "sw"))
    p, end = helper(procs, plug_kind, sw.dir)
    attached(sw, 1)
    end.close()
    assert p.wait(timeout=10) == 0
    if sw_kind == "ours":                       # 2.3.2 may keep a ghost endpoint
        attached(sw, 0)


def test_helper_exits_when_the_switch_goes(procs, sockdir, new_switch, sw_kind, plug_kind):
    sw = new_switch(sw_kind, os.path.join(sockdir, "sw"))
    p, end = helper(procs, plug_kind, sw.dir, port=5)
    attached(sw, 1)
    # the switch lists the port once it has answered the request, before
    # the helper has connected its data socket: stopping the switch in
    # between fails the helper's open (exit 1, ENOENT).  A frame the switch
    # has read from the port shows the helper's open has ended (the helper
    # reads its socketpair only then).
    end.send(frame(BROADCAST, GUEST_MAC, b"up?"))
    wait_for(lambda: in_pkts(sw, 5) == 1, what="the frame from the helper read by the switch")
    sw.stop()
    # Ours exits 0; Debian's sometimes exits 1 here (a race in its teardown).
    assert p.wait(timeout=10) in ((0,) if plug_kind == "ours" else (0, 1)), \
        p.stderr.read().decode()
    assert end.recv(100) == b""                 # UML sees its helper hang up


def test_helper_connection_failure(procs, sockdir, plug_kind):
    missing = os.path.join(sockdir, "nothere")
    p, end = helper(procs, plug_kind, missing)
    assert p.wait(timeout=5) == 1
    assert p.stderr.read().decode() == "vde_open %s: No such file or directory\n" % missing


# -- the real linux.uml -----------------------------------------------------
GUEST_INIT = """#!%(bb)s sh
B=%(bb)s
$B ip link set eth0 up
$B ip addr add 10.99.0.2/24 dev eth0
$B echo GUEST-UP
$B arping -c 3 -w 5 -I eth0 10.99.0.1
$B echo GUEST-DONE
$B poweroff -f
"""


def arp(op, sha, spa, tha, tpa, dst):
    body = (b"\x00\x01\x08\x00\x06\x04" + op.to_bytes(2, "big") + sha + bytes(spa)
            + tha + bytes(tpa))
    return frame(dst, sha, body, ethertype=0x0806)


def test_real_uml_spawns_our_plug(procs, sockdir, new_switch, sw_kind, tree, tmp_path):
    require(UML)
    require(BUSYBOX)
    sw = new_switch(sw_kind, os.path.join(sockdir, "sw"))
    host = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    init = tmp_path / "init.sh"
    init.write_text(GUEST_INIT % {"bb": BUSYBOX})
    init.chmod(0o755)
    env = dict(os.environ, PATH=COMPAT + os.pathsep + os.environ.get("PATH", ""),
               HOME=str(tmp_path), TMPDIR=str(tmp_path))
    uml = procs.start([UML, "mem=64M", "eth0=vde,%s,52:54:00:aa:bb:cc" % sw.dir,
                       "rootfstype=hostfs", "rootflags=/", "ro", "init=%s" % init,
                       "con=null", "con0=null,fd:1"],
                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                      cwd=str(tmp_path))
    console = []

    def read_console():
        for line in uml.stdout:
            console.append(line.decode(errors="replace").rstrip("\n"))

    reader = threading.Thread(target=read_console, daemon=True)
    reader.start()
    # The guest's ARP request arrives through UML's helper and the switch.
    req = host.recv_matching(lambda f: f[12:14] == b"\x08\x06" and f[6:12] == GUEST_MAC, 25)
    assert req is not None, "no ARP from the guest"
    tree.extend(descendants(uml.pid))
    assert req[:6] == BROADCAST and req[38:42] == bytes([10, 99, 0, 1])
    text = sw.cmd("port/print")
    m = re.search(r"prog   : UML vde_transport user=\S+ pid=(\d+)\n", text)
    assert m, text
    with open("/proc/%s/cmdline" % m.group(1), "rb") as f:
        cmdline = f.read().split(b"\0")
    assert os.fsencode(os.path.join(COMPAT, "vde_plug")) in cmdline, cmdline
    assert b"--mod2" in cmdline and any(a.startswith(b"seqpacket://") for a in cmdline)
    # The answer goes back to the guest, which reports it on its console.
    host.send(arp(2, HOST_MAC, [10, 99, 0, 1], GUEST_MAC, [10, 99, 0, 2], GUEST_MAC))
    assert uml.wait(timeout=20) == 0
    reader.join(5)
    out = "\n".join(console)
    assert "vde backend - connection opened" in out, out
    assert "GUEST-DONE" in out, out
    assert re.search(r"reply from 10\.99\.0\.1 \[02:00:00:00:00:01\]", out, re.I), out
    attached(sw, 1)                              # UML's helper has let go of its port
