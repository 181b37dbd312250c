"""kvde_switch: its command line, run as nobody, with VDE clients, taps and grabs.

The switch is started through the system python as the unprivileged
user nobody wherever no privilege is needed; taps and grabs run as root
inside namespaces made for the test.
"""

import errno
import json
import os
import signal
import stat
import subprocess

import pytest

from ifaces import Namespaces, address, ifname, in_ns, link
from support import (C_TOOLS, COMPAT, OURS, StreamPlug, frame, mac, require, wait_for)
from vde_ipn import ipn

KVDE = os.path.join(COMPAT, "kvde_switch")
PYTHON = "/usr/bin/python3"
SETPRIV = "/usr/bin/setpriv"
AS_NOBODY = [SETPRIV, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
ETH_AGENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "eth_agent.py")


def kvde_argv(*args, nobody=False):
    argv = [require(PYTHON), require(KVDE)] + list(args)
    return (AS_NOBODY + argv) if nobody else argv


def start(procs, sock, *args, nobody=False, wrap=()):
    p = procs.start(list(wrap) + kvde_argv("-s", sock, *args, nobody=nobody),
                    stdin=subprocess.PIPE)
    wait_for(lambda: os.path.exists(os.path.join(sock, ".ctl.ipn", "live")) or p.poll() is not None,
             what="kvde_switch to start")
    assert p.poll() is None, p.stderr.read().decode()
    return p


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])


@pytest.fixture
def namespaces():
    n = Namespaces()
    yield n
    n.cleanup()


def test_usage_version_operands_and_unknown_options(procs, netdir):
    res = subprocess.run(kvde_argv("-h"), stdout=subprocess.PIPE, timeout=30)
    assert res.returncode == 1 and res.stdout.startswith(b"Usage: kvde_switch")
    for opt in (b"--sock", b"--mod", b"--group", b"--tap", b"--grab", b"--daemon",
                b"--pidfile", b"--numports"):
        assert opt in res.stdout
    res = subprocess.run(kvde_argv("-v"), stdout=subprocess.PIPE, timeout=30)
    assert res.returncode == 0 and res.stdout.startswith(b"VDE ")
    res = subprocess.run(kvde_argv("-s", os.path.join(netdir, "x"), "extra"),
                         stdout=subprocess.PIPE, timeout=30)
    assert res.returncode == 1 and b"Usage:" in res.stdout
    res = subprocess.run(kvde_argv("-g", "no-such-group-here"), stderr=subprocess.PIPE,
                         timeout=30)
    assert res.returncode == 1 and b"No such group 'no-such-group-here'" in res.stderr
    sw = start(procs, os.path.join(netdir, "sw"), "--bogus")   # reported, not fatal
    sw.terminate()
    assert sw.wait(timeout=10) == 0
    err = sw.stderr.read().decode()
    assert "unrecognized option '--bogus'" in err and "Caught signal 15" in err
    assert not os.path.exists(os.path.join(netdir, "sw", "ctl"))


def test_mode_group_and_ports_as_nobody(procs, netdir):
    sock = os.path.join(netdir, "sw")
    sw = start(procs, sock, "-m", "0770", "-g", "nogroup", "-n", "2", nobody=True)
    assert uid_of(sw.pid) == 65534
    ctl = os.stat(os.path.join(sock, "ctl"))
    assert stat.S_ISSOCK(ctl.st_mode) and stat.S_IMODE(ctl.st_mode) == 0o770
    assert ctl.st_uid == 65534 and ctl.st_gid == 65534
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o2770
    first = ipn.socket(ipn.IPN_VDESWITCH)
    first.connect(sock)                                  # the directory names its ctl
    assert first.getsockopt(0, ipn.IPN_SO_NUMNODES) == 2
    second = ipn.socket(ipn.IPN_ANY)
    second.connect(os.path.join(sock, "ctl"))
    assert second.protocol == ipn.IPN_VDESWITCH
    third = ipn.socket(ipn.IPN_VDESWITCH)
    with pytest.raises(OSError) as e:
        third.connect(sock)
    assert e.value.errno == errno.EADDRNOTAVAIL
    plug = subprocess.run([require(C_TOOLS["vde_plug"]), sock], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert plug.returncode != 0                          # no third port for a VDE client
    for s in (first, second, third):
        s.close()


def test_daemon_and_pidfile_as_nobody(procs, netdir):
    sock, pidfile = os.path.join(netdir, "sw"), os.path.join(netdir, "kvde.pid")
    res = subprocess.run(kvde_argv("-s", sock, "-d", "-p", pidfile, nobody=True),
                         stdin=subprocess.DEVNULL, timeout=30)
    assert res.returncode == 0
    wait_for(lambda: os.path.exists(pidfile) and open(pidfile).read().endswith("\n"),
             what="the pid file")
    pid = int(open(pidfile).read())
    try:
        assert uid_of(pid) == 65534
        assert stat.S_ISSOCK(os.stat(os.path.join(sock, "ctl")).st_mode)
        with ipn.socket(ipn.IPN_VDESWITCH) as s:
            s.connect(sock)
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not os.path.exists(pidfile), what="the pid file to go")
    assert not os.path.exists(os.path.join(sock, "ctl"))


def test_vde_clients_and_ipn_sockets_share_one_switch(procs, netdir):
    sock = os.path.join(netdir, "sw")
    start(procs, sock, "-m", "0777")
    plugs = [StreamPlug(procs, C_TOOLS["vde_plug"], sock),
             StreamPlug(procs, OURS["vde_plug"], sock)]
    s = ipn.socket(ipn.IPN_VDESWITCH)
    s.connect(sock)
    s.settimeout(10)
    wait_for(lambda: len(os.listdir(os.path.join(sock, ".ctl.ipn", "n"))) == 3,
             what="two plugs and a socket on the network")
    for i, p in enumerate(plugs):
        p.send(frame(b"\xff" * 6, mac(10 + i), b"hello %d" % i))
        assert s.recv(2000)[6:12] == mac(10 + i)         # flooded to the IPN socket
    s.send(frame(mac(11), mac(20), b"for the second plug only"))
    got = plugs[1].recv_matching(lambda f: f[6:12] == mac(20), timeout=10)
    assert got is not None and b"for the second plug only" in got
    assert plugs[0].recv_matching(lambda f: f[6:12] == mac(20), timeout=1) is None
    plugs[0].send(frame(mac(20), mac(10), b"answer"))    # the bridge learned mac(20)
    assert b"answer" in s.recv(2000)
    assert plugs[1].recv_matching(lambda f: b"answer" in f, timeout=1) is None
    s.close()


@pytest.mark.parametrize("kind", ["tap", "grab"])
def test_tap_and_grab_join_the_network(procs, namespaces, netdir, kind):
    ns = namespaces.new("kv")
    sock = os.path.join(netdir, "sw")
    if kind == "tap":
        name = ifname("kt")
        namespaces.owned_link(name, ns)
        start(procs, sock, "-t", name, wrap=in_ns(ns, []))
        wait_for(lambda: link(name, ns) is not None, what="the tap")
        address(name, ns, "10.77.9.1/24")
    else:
        name, peer = ifname("kg"), ifname("kp")
        far = namespaces.new("kf")
        namespaces.veth(name, ns, peer, far)
        start(procs, sock, "-G", name, wrap=in_ns(ns, []))
        address(peer, far, "10.77.9.1/24")
    res = subprocess.run([require(PYTHON), ETH_AGENT, sock, "02:00:00:00:09:02", "10.77.9.2",
                          "10.77.9.1", "3"], stdout=subprocess.PIPE, timeout=120)
    reply = json.loads(res.stdout)
    assert reply["mac"] is not None and reply["replies"] == 3, reply


@pytest.mark.parametrize("option", ["-t", "-G"])
def test_tap_and_grab_need_privileges_and_end_the_switch(procs, namespaces, netdir, option):
    ns = namespaces.new("kn")
    name = ifname("kx")
    if option == "-G":
        namespaces.veth(name, ns, ifname("ky"), ns)
    p = procs.start(in_ns(ns, kvde_argv("-s", os.path.join(netdir, "sw"), option, name),
                          as_nobody=True), stdin=subprocess.PIPE)
    assert p.wait(timeout=30) == 255
    err = p.stderr.read().decode()
    assert "%s interface %s error:" % (name, "tap" if option == "-t" else "grab") in err, err
    assert not os.path.exists(os.path.join(netdir, "sw", "ctl"))
