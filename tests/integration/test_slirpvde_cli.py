"""slirpvde beside vde2 2.3.2's: stream mode, DHCP offers, banner, daemon.

``slirpvde -`` speaks a vdestream on stdin/stdout; a DHCP discover sent
that way gets an offer whose fields are compared with the C tool's.  The
start-up banner is compared line by line, and ``-d -p FILE`` is checked
to detach, write the pid file, hold a port and clean both up on SIGTERM.
"""

import os
import select
import signal
import socket
import subprocess
import time

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from support import COMPAT, OURS, StreamPlug, Switch, require, wait_for

SLIRPVDE = os.path.join(COMPAT, "slirpvde")
C_SLIRPVDE = "/usr/bin/slirpvde"
MAC = "52:54:00:12:34:56"


def discover() -> bytes:
    return bytes(
        Ether(src=MAC, dst="ff:ff:ff:ff:ff:ff")
        / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67)
        / BOOTP(chaddr=bytes.fromhex(MAC.replace(":", "")) + b"\0" * 10, xid=0x1234)
        / DHCP(options=[("message-type", "discover"), "end"]))


def offer_fields(plug: StreamPlug) -> dict:
    plug.send(discover())
    f = plug.recv_matching(lambda f: DHCP in Ether(f), timeout=15)
    assert f is not None, "no DHCP answer"
    pkt = Ether(f)
    opts = {o[0]: o[1] for o in pkt[DHCP].options if isinstance(o, tuple)}
    return {"yiaddr": pkt[BOOTP].yiaddr, "xid": pkt[BOOTP].xid,
            "type": opts.get("message-type"), "subnet": opts.get("subnet_mask"),
            "router": opts.get("router"), "dns": opts.get("name_server"),
            "server": opts.get("server_id"), "lease": opts.get("lease_time")}


@pytest.mark.parametrize("args", [["--dhcp"], ["-n", "10.0.9.0", "-D"],
                                  ["--network", "10.4.0.0/16", "--dhcp=10.4.0.99"]])
def test_stream_mode_dhcp_offer_as_c(procs, args):
    ours = offer_fields(StreamPlug(procs, SLIRPVDE, "-", *args))
    c = offer_fields(StreamPlug(procs, C_SLIRPVDE, "-", *args))
    assert ours["type"] == 2 and ours["xid"] == 0x1234
    assert ours == c


@pytest.mark.parametrize("tool", [SLIRPVDE, C_SLIRPVDE])
def test_no_dhcp_without_d(procs, tool):
    plug = StreamPlug(procs, tool, "-")
    plug.send(discover())
    assert plug.recv_matching(lambda f: DHCP in Ether(f), timeout=3) is None
    assert plug.proc.poll() is None


def test_banner_as_c(procs, sockdir):
    sw = Switch(procs, OURS["vde_switch"], os.path.join(sockdir, "sw"))
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]              # free now; each tool listens there in turn
    probe.close()
    outs = []
    for tool in (SLIRPVDE, require(C_SLIRPVDE)):
        p = procs.start([tool, "-s", sw.dir, "-D", "-H", "10.2.0.1/16", "-N", "10.2.0.53",
                         "-L", "%d:10.2.0.15:80" % port])
        wait_for(lambda: sw.cmd("port/print").count("-- endpoint ID") == 1, 20,
                 "%s to join" % tool)
        text = b""                      # the banner may come after the port
        deadline = time.monotonic() + 20
        while text.count(b"\n") < 5 and time.monotonic() < deadline:
            if select.select([p.stderr], [], [], 1)[0]:
                chunk = os.read(p.stderr.fileno(), 4096)
                if not chunk:
                    break
                text += chunk
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)
        outs.append((text + p.stderr.read()).decode().splitlines())
        wait_for(lambda: sw.cmd("port/print").count("-- endpoint ID") == 0, 10, "port freed")
    assert outs[0] == outs[1]
    assert outs[0][0] == "Starting slirpvde: virtual_host=10.2.0.1/16"


def test_daemon_pidfile_and_clean_exit(procs, sockdir):
    sw = Switch(procs, OURS["vde_switch"], os.path.join(sockdir, "sw"))
    pidfile = os.path.join(sockdir, "slirp.pid")
    r = subprocess.run([SLIRPVDE, "-d", "-p", pidfile, "-s", sw.dir, "--dhcp"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    pid = int(wait_for(lambda: os.path.exists(pidfile) and open(pidfile).read().strip(),
                       10, "the pid file"))
    try:
        wait_for(lambda: sw.cmd("port/print").count("-- endpoint ID") == 1, 10, "a port")
        assert "slirpvde:" in sw.cmd("port/print")
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not os.path.exists(pidfile), 10, "the pid file to go")
    wait_for(lambda: sw.cmd("port/print").count("-- endpoint ID") == 0, 10, "the port to go")
    deadline = time.monotonic() + 10
    while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists("/proc/%d" % pid)
