"""vdeq: a QEMU guest started by vdeq, on our switch and on Debian's.

Debian's vdeq gives QEMU ``-net tap,vlan=N,fd=FD``, which Debian's QEMU
(7.2) refuses; ours gives it a socket netdev in hub N, so the manual's
command line (``-net nic,vlan=1 -net vde,vlan=1,sock=SW``) boots a guest
that pings a tap of the switch, inside a namespace made here.
"""

import os
import secrets
import subprocess

import pytest

from guests import BOOT_TIMEOUT, QEMU, Console, initramfs
from netns import sh
from support import COMPAT, require

OUR_VDEQ = os.path.join(COMPAT, "vdeq")
C_VDEQ = "/usr/bin/vdeq"


def guest_args(sock: str, mac: str, syntax: str = "new") -> list:
    """vdeq's arguments: the manual's new syntax (``-net vde``, a NIC with
    ``mac`` in QEMU vlan 1) or the old one (``-sock``: vdeq adds the NIC,
    QEMU's default MAC)."""
    image, initrd = initramfs()
    common = ["-nodefaults", "-display", "none", "-machine", "pc",
              "-accel", "tcg", "-m", "128M", "-no-reboot",
              "-kernel", image, "-initrd", initrd,
              "-append", "console=ttyS0 quiet panic=-1", "-serial", "stdio"]
    if syntax == "old":
        return [require(QEMU), "-sock", sock] + common
    return [require(QEMU)] + common + [
        "-net", "nic,vlan=1,model=virtio-net-pci,macaddr=%s" % mac,
        "-net", "vde,vlan=1,sock=%s" % sock]


@pytest.fixture
def tapped_ns():
    """A namespace and a tap name (the tap is made by the caller's switch
    ``-t``, then moved in); both removed at the end."""
    ns = "vdeipn-vdeq-%d-%s" % (os.getpid(), secrets.token_hex(3))
    tap = ("vq%d%s" % (os.getpid() % 10000, secrets.token_hex(2)))[:15]
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "tuntap", "add", "dev", tap, "mode", "tap")
        yield ns, tap
    finally:
        sh("ip", "netns", "del", ns, check=False)
        if os.path.exists("/sys/class/net/" + tap):
            sh("ip", "link", "del", tap, check=False)


@pytest.mark.parametrize("syntax", ["new", "old"])
def test_guest_through_our_vdeq_pings_the_switch_tap(procs, new_switch, switch_kind, sockdir,
                                                     tapped_ns, syntax):
    ns, tap = tapped_ns
    mac = "52:54:00:54:00:02" if syntax == "new" else "52:54:00:12:34:56"
    sw = new_switch(switch_kind, os.path.join(sockdir, "sw"), "-t", tap)
    sh("ip", "link", "set", tap, "netns", ns)
    sh("ip", "-n", ns, "addr", "add", "10.54.0.1/24", "dev", tap)
    sh("ip", "-n", ns, "link", "set", tap, "up")
    proc = procs.start([require(OUR_VDEQ)] + guest_args(sw.dir, mac, syntax),
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    g = Console(proc)
    g.name = "vdeq guest"
    g.wait_text("GUEST-READY", BOOT_TIMEOUT)
    g.configure("10.54.0.2/24")
    rc, out = g.run("ping -c 3 -w 30 10.54.0.1", 60)
    assert rc == 0 and "3 packets received" in out, out
    # the guest's NIC is on the switch, by its MAC
    text = sw.cmd("hash/print")
    assert mac in text, text
    proc.stdin.write(b"poweroff -f\n")
    proc.stdin.flush()
    assert proc.wait(timeout=60) == 0          # QEMU's status, passed on


def test_debian_vdeq_is_refused_by_todays_qemu(sockdir, new_switch):
    sw = new_switch("c", os.path.join(sockdir, "sw"))
    r = subprocess.run([require(C_VDEQ), require(QEMU), "-nodefaults", "-display", "none",
                        "-S", "-net", "nic", "-net", "vde,sock=%s" % sw.dir],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "Invalid parameter 'vlan'" in r.stderr, r.stderr


def test_a_vde_link_runs_the_named_qemu(tmp_path):
    """vdeq linked as vdeqemu-system-x86_64: its usage, then that QEMU's help."""
    link = tmp_path / "vdeqemu-system-x86_64"
    link.symlink_to(OUR_VDEQ)
    env = dict(os.environ, PATH=os.path.dirname(require(QEMU)) + ":" + os.environ["PATH"])
    r = subprocess.run([str(link), "-h"], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60, env=env)
    assert "Usage: vdeqemu-system-x86_64 [-h]" in r.stderr, r.stderr
    assert "QEMU emulator version" in r.stdout, r.stdout


def test_sigterm_is_passed_on_to_qemu(procs, new_switch, sockdir, tree):
    """SIGTERM to our vdeq ends QEMU too (Debian's would leave QEMU running
    unplugged); vdeq exits with QEMU's status."""
    from support import attached, descendants, wait_for
    sw = new_switch("ours", os.path.join(sockdir, "sw"))
    proc = procs.start([require(OUR_VDEQ), require(QEMU), "-nodefaults", "-display", "none",
                        "-machine", "pc", "-accel", "tcg", "-m", "64", "-S",
                        "-net", "nic", "-net", "vde,sock=%s" % sw.dir])
    attached(sw, 1, 60)
    qemu = wait_for(lambda: descendants(proc.pid), 30, "QEMU under vdeq")
    tree.extend(qemu)

    def handles_sigterm():          # QEMU sets its handler late in its start
        status = open("/proc/%d/status" % qemu[0]).read()
        caught = int(status.split("SigCgt:")[1].split()[0], 16)
        return caught & (1 << (15 - 1))
    wait_for(handles_sigterm, 60, "QEMU to handle SIGTERM")
    proc.terminate()
    assert proc.wait(timeout=60) == 0, proc.stderr.read().decode()
    for pid in qemu:
        assert not os.path.exists("/proc/%d" % pid) or \
            open("/proc/%d/stat" % pid).read().split(")")[1].split()[0] == "Z"
