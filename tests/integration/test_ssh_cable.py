"""A cable over ssh between two hosts (network namespaces): an sshd started
by the test on the second host's address, dpipe + vde_plug at each end,
ours at one end and Debian's at the other."""

import os
import subprocess
import time

import pytest

from netns import Lan, in_ns, leftovers
from support import BROADCAST, C_TOOLS, OURS, StreamPlug, frame, mac, require, wait_for

SSHD, SSH, KEYGEN = "/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keygen"
TOOL = {"ours": OURS, "c": C_TOOLS}


@pytest.fixture
def hosts(procs, tree):
    net = Lan(2)
    yield net
    for pid in list(tree):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    procs.cleanup()
    net.remove()
    assert not [ns for ns in leftovers() if ns in net.hosts]


def start_sshd(procs, net, d):
    for tool in (SSHD, SSH, KEYGEN):
        require(tool)
    hostkey, userkey = os.path.join(d, "host"), os.path.join(d, "user")
    for k in (hostkey, userkey):
        subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", k], check=True)
    auth = os.path.join(d, "authorized_keys")
    with open(userkey + ".pub") as src, open(auth, "w") as dst:
        dst.write(src.read())
    os.chmod(auth, 0o600)
    os.makedirs("/run/sshd", exist_ok=True)          # sshd's privilege-separation dir
    sshd = procs.start(in_ns(net.hosts[1], [
        SSHD, "-D", "-e", "-f", "/dev/null", "-o", "HostKey=" + hostkey,
        "-o", "ListenAddress=%s:2222" % net.addr(1), "-o", "AuthorizedKeysFile=" + auth,
        "-o", "PidFile=none", "-o", "PermitRootLogin=yes", "-o", "StrictModes=no",
        "-o", "UsePAM=no", "-o", "PasswordAuthentication=no"]))
    wait_for(lambda: "2222" in net.run(1, "ss", "-ltn", check=False).stdout
             or sshd.poll() is not None, what="sshd to listen")
    assert sshd.poll() is None, sshd.stderr.read().decode()
    return [SSH, "-p", "2222", "-o", "StrictHostKeyChecking=no", "-o", "BatchMode=yes",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-i", userkey,
            "root@" + net.addr(1)]


@pytest.mark.parametrize("local,remote", [("ours", "c"), ("c", "ours")])
def test_cable_over_ssh(procs, tree, hosts, sockdir, local, remote):
    net = hosts
    ssh = start_sshd(procs, net, sockdir)
    sw = []
    for i, kind in enumerate((local, remote)):
        path = os.path.join(sockdir, "sw%d" % i)
        procs.start(in_ns(net.hosts[i], [require(TOOL[kind]["vde_switch"]), "-s", path]),
                    stdin=subprocess.PIPE)
        wait_for(lambda: os.path.exists(os.path.join(path, "ctl")), what="switch %d" % i)
        sw.append(path)
    cable = procs.start(in_ns(net.hosts[0], [
        require(TOOL[local]["dpipe"]), TOOL[local]["vde_plug"], sw[0], "="] + ssh +
        [TOOL[remote]["vde_plug"], sw[1]]))
    a = StreamPlug(procs, OURS["vde_plug"], sw[0])
    b = StreamPlug(procs, C_TOOLS["vde_plug"], sw[1])
    deadline = time.monotonic() + 15
    got = None
    while got is None and time.monotonic() < deadline:
        a.send(frame(BROADCAST, mac(1), b"over-ssh"))
        got = b.recv_matching(lambda f: f[14:22] == b"over-ssh", 1)
    tree.extend(__import__("support").descendants(cable.pid))
    assert got is not None, "nothing crossed the ssh cable: %s" % (
        cable.stderr.read1(2000) if cable.poll() is not None else "")
    b.send(frame(mac(1), mac(2), b"back"))
    assert a.recv_matching(lambda f: f[14:18] == b"back", 5)
    for i in range(50):
        a.send(frame(mac(2), mac(1), b"n%02d" % i, size=1000))
    assert sum(f[14:15] == b"n" for f in b.drain(1.5)) == 50
