"""NAT through passt: ``vde_plug SW passt://ARGS`` gives a switch's VM the
network of the namespace passt runs in.

The namespace has only loopback; a TCP service there listens on
127.0.0.1.  A QEMU guest on the switch connects to the gateway address,
which passt maps to the host's loopback, and sends a token: it crossed
the switch, the plug and passt.  When the plug stops, passt goes with it.
"""

import os
import secrets
import shutil
import subprocess
import sys
import tempfile

import pytest

from guests import QemuGuest
from netns import in_ns, sh
from support import OURS, Processes, Switch, descendants, require, wait_for

pytestmark = pytest.mark.real

PASST_ARGS = "-4 -i lo -a 10.0.2.15 -n 24 -g 10.0.2.2 -M 02:00:00:00:00:01"


@pytest.fixture
def lonely_ns():
    """A network namespace with nothing but loopback (unique name)."""
    require("/usr/bin/passt")
    name = "vqp%d-%s" % (os.getpid(), secrets.token_hex(3))
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


SINK = r"""
import socket, sys
port, out = int(sys.argv[1]), sys.argv[2]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(1)
print("LISTENING", flush=True)
conn, peer = srv.accept()
data = b""
while True:
    chunk = conn.recv(65536)
    if not chunk:
        break
    data += chunk
with open(out, "wb") as f:
    f.write(peer[0].encode() + b" " + data)
conn.close()
"""


def test_guest_reaches_a_loopback_service_through_passt(lonely_ns):
    links = sh("ip", "-n", lonely_ns, "-o", "link").stdout.strip().splitlines()
    assert len(links) == 1 and ": lo:" in links[0], links
    procs = Processes()
    work = tempfile.mkdtemp(prefix="vqp", dir="/tmp")
    try:
        token = "passt-" + secrets.token_hex(8)
        got = os.path.join(work, "got")
        port = 20000 + os.getpid() % 20000
        sink = procs.start(in_ns(lonely_ns, [sys.executable, "-c", SINK, str(port), got]),
                           stdout=subprocess.PIPE)
        assert sink.stdout.readline().strip() == b"LISTENING"
        sw = Switch(procs, OURS["vde_switch"], os.path.join(work, "sw"))
        plug = procs.start(in_ns(lonely_ns, [require(OURS["vde_plug"]), sw.dir,
                                             "passt://" + PASST_ARGS]))
        # the switch's port comes first, then passt is started
        passt = wait_for(lambda: descendants(plug.pid) or plug.poll() is not None, 15,
                         "passt under the plug")
        assert plug.poll() is None, plug.stderr.read().decode()
        guest = QemuGuest(procs, work, sw.dir, "52:54:00:78:02:01", name="qpasst",
                          wait=False)
        guest.wait_text(r"GUEST-READY", 300)      # generous: a shared, busy machine
        guest.check("true")
        guest.configure("10.0.2.15/24")
        guest.check("ip route add default via 10.0.2.2")
        # guest -> host data only: Debian 12's passt (2023-03) repeats host ->
        # guest TCP data on this machine's kernel, also with QEMU plugged
        # straight into it (no switch); the connection itself works
        guest.check("echo %s | nc -w 20 10.0.2.2 %d" % (token, port), timeout=60)
        wait_for(lambda: os.path.exists(got) and os.path.getsize(got), 20, "the sink's file")
        with open(got) as f:
            peer, data = f.read().split(" ", 1)
        assert data == token + "\n", data
        assert peer == "127.0.0.1", peer     # passt's own socket, from inside the namespace
        text = sw.cmd("port/print")
        assert ": vdeplug: user=root" in text and ": QEMU user=root" in text, text
        plug.terminate()
        assert plug.wait(10) == 0
        wait_for(lambda: not any(_alive(p) for p in passt), 10, "passt to exit with its plug")
    finally:
        procs.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_passt_failure_is_reported(procs, sockdir, lonely_ns):
    sw = Switch(procs, OURS["vde_switch"], os.path.join(sockdir, "sw"))
    # with only loopback and no addresses given, passt finds no usable interface
    plug = procs.start(in_ns(lonely_ns, [require(OURS["vde_plug"]), sw.dir, "passt://"]))
    assert plug.wait(20) == 1
    err = plug.stderr.read().decode()
    assert "vde_open passt://" in err and "passt exited" in err, err
    assert "External interface not usable" in err, err
