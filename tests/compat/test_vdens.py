"""vdens run by ``nobody``: a namespace of its own, plugged into a switch.

The switch is ours, run by nobody too.  A host made by the test (a
network namespace with a tap on the switch, plugged by Debian's
vde_plug) serves DHCP with busybox udhcpd; inside vdens, as nobody,
busybox udhcpc gets an address, ``ip`` shows it and ping reaches the
host.  Debian 12 ships no vdens binary, so the command line and
behaviours are those of vdeplug4's manual and source.
"""

import os
import re
import subprocess
import textwrap

import pytest

from ifaces import BUSYBOX, IP, NOBODY, SETPRIV, address, in_ns, namespaces  # noqa: F401
from support import C_TOOLS, COMPAT, require, wait_for

VDENS = os.path.join(COMPAT, "vdens")
AS_NOBODY = [SETPRIV, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
NET = "10.%d.%d." % (60 + os.getpid() % 20, os.getpid() % 250)


def _userns_allowed():
    with open("/proc/sys/user/max_user_namespaces") as f:
        return int(f.read()) > 0


@pytest.fixture
def nobody_dir(sockdir):
    os.chmod(sockdir, 0o777)
    return sockdir


@pytest.fixture
def nobody_switch(procs, nobody_dir):
    sw = os.path.join(nobody_dir, "sw")
    p = procs.start(AS_NOBODY + [os.path.join(COMPAT, "vde_switch"), "-s", sw],
                    stdin=subprocess.PIPE)
    wait_for(lambda: os.path.exists(os.path.join(sw, "ctl")) or p.poll() is not None,
             what="switch run by nobody")
    assert p.poll() is None
    return sw


def _vdens(args, timeout=60, env=None):
    e = dict(os.environ, SHELL="/bin/sh", PATH="/usr/sbin:/usr/bin:/sbin:/bin")
    e.update(env or {})
    return subprocess.run(AS_NOBODY + [VDENS] + args, capture_output=True, text=True,
                          timeout=timeout, env=e)


def test_unprivileged_user_namespaces_are_allowed():
    """vdens needs them; this kernel has no unprivileged_userns_clone switch
    (a Debian patch), so the limit is user.max_user_namespaces."""
    assert _userns_allowed()
    r = subprocess.run(AS_NOBODY + ["unshare", "-Urn", "true"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_nobody_gets_an_address_by_dhcp_and_pings_the_switch_side(procs, nobody_dir,
                                                                   nobody_switch, namespaces):
    host = namespaces.new("dh")
    procs.start(in_ns(host, [require(C_TOOLS["vde_plug"]), "tap://srv0", nobody_switch]))
    wait_for(lambda: subprocess.run([IP, "-n", host, "link", "show", "srv0"],
                                    capture_output=True).returncode == 0, what="tap srv0")
    address("srv0", host, NET + "1/24")
    conf = os.path.join(nobody_dir, "udhcpd.conf")
    with open(conf, "w") as f:
        f.write(textwrap.dedent("""\
            start {n}100
            end {n}110
            interface srv0
            lease_file {d}/leases
            option subnet 255.255.255.0
            option router {n}1
            """.format(n=NET, d=nobody_dir)))
    procs.start(in_ns(host, [BUSYBOX, "udhcpd", "-f", conf]))
    script = os.path.join(nobody_dir, "dhcp.script")
    with open(script, "w") as f:
        f.write('#!/bin/sh\ncase "$1" in bound|renew) ip addr add "$ip/$mask" dev "$interface";; '
                "esac\n")
    os.chmod(script, 0o755)
    inside = ("id -u; ip link set vde0 up && {bb} udhcpc -i vde0 -n -q -t 10 -T 2 -s {s} "
              "&& ip -4 addr show vde0 && {bb} ping -c 3 -w 20 {n}1"
              .format(bb=BUSYBOX, s=script, n=NET))
    r = _vdens([nobody_switch, "sh", "-c", inside], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == str(NOBODY)                       # still nobody inside
    # a lease from the pool, .100 to .110 (udhcpd starts its search at a hash
    # of the client's MAC, so any of the eleven)
    assert re.search(r"inet %s(10\d|110)/24 " % re.escape(NET), r.stdout), r.stdout
    assert "3 packets received" in r.stdout


def test_options_interfaces_hostname_resolver_and_status(procs, nobody_dir, nobody_switch):
    other = os.path.join(nobody_dir, "sw2")
    p = procs.start(AS_NOBODY + [os.path.join(COMPAT, "vde_switch"), "-s", other],
                    stdin=subprocess.PIPE)
    wait_for(lambda: os.path.exists(os.path.join(other, "ctl")), what="second switch")
    r = _vdens(["-m", "-i", "eth", "-H", "inside", "-R", "192.0.2.53,2001:db8::53",
                nobody_switch, other, "--", "sh", "-c",
                "ip -o link show | cut -d: -f2; hostname; cat /etc/resolv.conf; exit 5"])
    assert r.returncode == 5, r.stderr
    names = [x.strip() for x in r.stdout.splitlines()[:3]]
    assert names == ["lo", "eth0", "eth1"]
    assert "inside" in r.stdout
    assert "nameserver 192.0.2.53\nnameserver 2001:db8::53\n" in r.stdout
    assert subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip() != "inside"
    # "no": a namespace without an interface; $SHELL runs when no command is given
    r = _vdens(["no"], env={"SHELL": "/bin/sh"})
    assert r.returncode == 0
    r = _vdens(["-", "ip", "-o", "link"])
    assert r.returncode == 0 and r.stdout.count("\n") == 1 and "lo" in r.stdout
    assert p.poll() is None


def test_a_stream_command_as_the_network(procs, nobody_switch):
    """``=COMMAND``: a vdestream (here a vde_plug) instead of a plug."""
    r = _vdens(["=%s %s" % (os.path.join(COMPAT, "vde_plug"), nobody_switch), "sh", "-c",
                "ip link set vde0 up; ip -o link show vde0"])
    assert r.returncode == 0 and "vde0" in r.stdout, r.stderr


@pytest.mark.parametrize("argv", [["-x"], ["-h"], ["--bogus"], ["-i"]])
def test_bad_options_print_the_usage(argv):
    r = _vdens(argv)
    assert r.returncode == 1
    assert "Usage: vdens OPTIONS [vde_net [cmd [arg...]]]" in r.stderr


def test_an_unreachable_network_is_an_error(nobody_dir):
    r = _vdens([os.path.join(nobody_dir, "nosuch"), "true"])
    assert r.returncode == 1 and "nosuch: No such file or directory" in r.stderr
