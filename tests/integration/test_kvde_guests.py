"""Exercise 1 of the IPN proposal: VMs on a switch a normal user owns.

kvde_switch runs as the unprivileged user nobody; two QEMU guests
(Debian's kernel, a busybox initramfs; QEMU itself runs as root) attach
with ``-netdev vde,sock=DIR`` and ping each other through it, and a
Python IPN socket (also run by nobody) joined to the same network
resolves a guest with ARP and pings it with frames it builds itself.
"""

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from guests import QemuGuest, boot_all, ping
from support import COMPAT, Processes, require, wait_for

pytestmark = pytest.mark.real

HERE = os.path.dirname(os.path.abspath(__file__))
ETH_AGENT = os.path.join(os.path.dirname(HERE), "ipn", "eth_agent.py")
PYTHON = "/usr/bin/python3"
AS_NOBODY = ["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
MACS = {"q1": "52:54:00:78:01:01", "q2": "52:54:00:78:01:02"}
ADDR = {"q1": "10.77.8.1", "q2": "10.77.8.2", "py": "10.77.8.9"}


class Lab:
    pass


@pytest.fixture(scope="module")
def lab():
    procs = Processes()
    work = tempfile.mkdtemp(prefix="kg", dir="/tmp")
    os.chmod(work, 0o777)                # nobody makes the switch directory in it
    lab = Lab()
    try:
        lab.dir = os.path.join(work, "sw")
        lab.switch = procs.start([require(AS_NOBODY[0])] + AS_NOBODY[1:] + [
            require(PYTHON), require(os.path.join(COMPAT, "kvde_switch")), "-s", lab.dir],
            stdin=subprocess.PIPE)
        wait_for(lambda: os.path.exists(os.path.join(lab.dir, ".ctl.ipn", "live"))
                 or lab.switch.poll() is not None, what="kvde_switch")
        assert lab.switch.poll() is None, lab.switch.stderr.read().decode()
        lab.q1 = QemuGuest(procs, work, lab.dir, MACS["q1"], name="q1", wait=False)
        lab.q2 = QemuGuest(procs, work, lab.dir, MACS["q2"], name="q2", nic="e1000",
                           wait=False)
        boot_all([lab.q1, lab.q2])
        for name in ("q1", "q2"):
            getattr(lab, name).configure(ADDR[name] + "/24")
        yield lab
    finally:
        procs.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def test_the_switch_runs_as_nobody_and_owns_its_network(lab):
    with open("/proc/%d/status" % lab.switch.pid) as f:
        uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
    assert uids == ["65534"] * 4
    ctl = os.stat(os.path.join(lab.dir, "ctl"))
    assert ctl.st_uid == 65534 and ctl.st_mode & 0o777 == 0o700
    nodes = os.listdir(os.path.join(lab.dir, ".ctl.ipn", "n"))
    assert len(nodes) == 2, nodes                        # each guest is a port


def test_guests_ping_each_other(lab):
    ping(lab.q1, ADDR["q2"])
    ping(lab.q2, ADDR["q1"])


def test_a_python_ipn_socket_pings_a_guest(lab):
    res = subprocess.run(AS_NOBODY + [require(PYTHON), ETH_AGENT, lab.dir,
                                      "02:00:00:00:78:09", ADDR["py"], ADDR["q1"], "3"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert res.returncode == 0, res.stderr.decode()
    reply = json.loads(res.stdout)
    assert reply["mac"] == MACS["q1"] and reply["replies"] == 3, reply
    # the guest learned the Python node's address from its ARP request
    out = lab.q1.check("arp -an")
    assert "02:00:00:00:78:09" in out.lower(), out
