"""A real guest gets DHCP and reaches host services through a slirp router.

One QEMU guest (busybox initramfs) sits on our switch inside a network
namespace whose only interface is loopback; everything, the guest, the
switch, the routers and the host-side servers, runs as ``nobody``.  The
routers take turns as the guest's only way out:

* ours: ``vde_plug SW slirp://...`` and ``slirpvde ...``;
* the references: Debian's C ``vde_plug SW slirp://`` (vdeplug4's plugin)
  and C ``slirpvde`` (vde2 2.3.2).

With each, the guest asks DHCP for an address (the lease fields are
compared with the C tools'), pings the router and fetches a file from a
server on the host side, whose checksum must match; a host forward
``tcp:HOSTPORT:GUESTIP:GUESTPORT`` must reach a server in the guest.
Then, with ours: IPv6 (router advertisement, ping), names through the DNS
proxy (the C plugin too), a UDP host forward, a guest connection to a
host command.
"""

import hashlib
import itertools
import os
import time

import pytest

from slirp_lab import C_PLUG, C_SLIRPVDE, OURS_PLUG, OURS_SLIRPVDE, SlirpLab
from support import require

pytestmark = pytest.mark.real

FWD_HOST, FWD_GUEST = 7080, 8080
DEFAULT_LEASE = {"ip": "10.0.2.15", "subnet": "255.255.255.0", "router": "10.0.2.2",
                 "dns": "10.0.2.3"}
NET9_LEASE = {"ip": "10.0.9.15", "subnet": "255.255.255.0", "router": "10.0.9.2",
              "dns": "10.0.9.3"}
FIELDS = ("ip", "subnet", "router", "dns", "serverid")
TOKENS = itertools.count(1)


@pytest.fixture(scope="module")
def lab():
    lab = SlirpLab()
    lab.leases = {}
    try:
        yield lab
    finally:
        lab.close()


def status_of(pid: int) -> dict:
    with open("/proc/%d/status" % pid) as f:
        return dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)


def unprivileged(pid: int) -> None:
    st = status_of(pid)
    assert st["Uid"].split()[:2] == ["65534", "65534"], st["Uid"]
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0, st


def host_forward_reaches_guest(lab, guest_ip: str, host: str = "127.0.0.1",
                               port: int = FWD_HOST) -> str:
    """A server in the guest on FWD_GUEST; the host side connects to
    ``host``:``port`` and reads what it says."""
    token = "fwd-token-%d-%d" % (os.getpid(), next(TOKENS))   # one per router
    # (the listener's stdin stays open: busybox nc -l whose stdin ends at
    # once takes the guest's shell down with it)
    lab.guest.check("((echo %s; sleep 900) | nc -l -p %d >/dev/null) & sleep 1"
                    % (token, FWD_GUEST))
    client = ("import socket,time\n"
              "for i in range(40):\n"
              "    try:\n"
              "        s=socket.create_connection((%r,%d),timeout=10); break\n"
              "    except OSError: time.sleep(0.25)\n"
              "d=b''\n"
              "while not d.endswith(b'\\n'):\n"
              "    b=s.recv(4096)\n"
              "    if not b: break\n"
              "    d+=b\n"
              "print(d.decode().strip())\n" % (host, port))
    r = lab.run(["python3", "-c", client], timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == token, (r.stdout, r.stderr, guest_ip)
    return token


def exercise(lab, key, argv, expected, forward=True):
    """Run one router: lease, ping, file fetch, forward; stop it cleanly."""
    p = lab.start_router(argv)
    try:
        unprivileged(p.pid)
        lease = lab.dhcp()
        lab.leases[key] = lease
        for field, value in expected.items():
            assert lease[field] == value, (key, lease)
        rc, out = lab.guest.run("ping -c 3 -w 20 %s" % lease["router"], 40)
        assert rc == 0 and "3 packets received" in out, out
        md5, size = lab.fetch(lease["router"])
        assert (md5, size) == (hashlib.md5(lab.payload).hexdigest(), len(lab.payload))
        if forward:
            host_forward_reaches_guest(lab, lease["ip"])
    finally:
        if p.poll() is None:
            lab.stop_router(p)
    return lease


def test_ours_vde_plug_slirp(lab):
    """``vde_plug SW slirp:///tcpfwd=...``: DHCP, ping, TCP both ways."""
    exercise(lab, "ours-plug", [require(OURS_PLUG), lab.sw,
                                "slirp:///tcpfwd=%d:10.0.2.15:%d" % (FWD_HOST, FWD_GUEST)],
             DEFAULT_LEASE)


def test_c_vde_plug_slirp(lab):
    """The reference: Debian's libvdeplug_slirp through C vde_plug."""
    exercise(lab, "c-plug", [require(C_PLUG), lab.sw,
                             "slirp:///tcpfwd=%d:10.0.2.15:%d" % (FWD_HOST, FWD_GUEST)],
             DEFAULT_LEASE)


def test_vde_plug_leases_match_c(lab):
    if not {"ours-plug", "c-plug"} <= set(lab.leases):
        pytest.fail("a router test above failed: no leases to compare")
    ours, c = lab.leases["ours-plug"], lab.leases["c-plug"]
    assert {k: ours.get(k) for k in FIELDS} == {k: c.get(k) for k in FIELDS}
    assert ours["lease"] == c["lease"]


def test_ours_slirpvde_marionnet_command_line(lab):
    """``slirpvde --mod 777 --unix SOCK --network N --dhcp`` as Marionnet
    runs it, plus a ``-L`` forward."""
    exercise(lab, "ours-slirpvde",
             [require(OURS_SLIRPVDE), "--mod", "777", "--unix", lab.sw, "--network",
              "10.0.9.0", "--dhcp", "-L", "%d:10.0.9.15:%d" % (FWD_HOST, FWD_GUEST)],
             NET9_LEASE)


def test_c_slirpvde_reference(lab):
    """vde2 2.3.2's own slirpvde (Debian 12 ships it), same command line."""
    exercise(lab, "c-slirpvde",
             [require(C_SLIRPVDE), "--mod", "777", "--unix", lab.sw, "--network",
              "10.0.9.0", "--dhcp", "-L", "%d:10.0.9.15:%d" % (FWD_HOST, FWD_GUEST)],
             NET9_LEASE)


def test_slirpvde_leases_match_c(lab):
    if not {"ours-slirpvde", "c-slirpvde"} <= set(lab.leases):
        pytest.fail("a router test above failed: no leases to compare")
    ours, c = lab.leases["ours-slirpvde"], lab.leases["c-slirpvde"]
    assert {k: ours.get(k) for k in FIELDS} == {k: c.get(k) for k in FIELDS}
    assert ours["lease"] == c["lease"]


def test_dhcp_off_and_custom_network(lab):
    """``slirp:///host=10.3.0.2%2F16/dhcp=10.3.0.50/vnameserver=10.3.0.9``
    moves every lease field; ``dhcp=off`` gets the guest no lease."""
    exercise(lab, "ours-custom",
             [require(OURS_PLUG), lab.sw,
              "slirp:///host=10.3.0.2%2F16/dhcp=10.3.0.50/vnameserver=10.3.0.9/v4"],
             {"ip": "10.3.0.50", "subnet": "255.255.0.0", "router": "10.3.0.2",
              "dns": "10.3.0.9"}, forward=False)
    p = lab.start_router([require(OURS_PLUG), lab.sw, "slirp:///dhcp=off"])
    try:
        lab.guest.check("ip addr flush dev eth0; rm -f /tmp/lease")
        rc, out = lab.guest.run("udhcpc -i eth0 -s /tmp/dhcp.sh -n -q -t 3 -T 1 -A 1", 60)
        assert rc != 0, out
        # the router itself still answers a guest configured by hand
        lab.guest.check("ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up")
        rc, out = lab.guest.run("ping -c 2 -w 20 10.0.2.2", 40)
        assert rc == 0, out
    finally:
        lab.stop_router(p)


def test_guest_connection_to_a_command(lab):
    """``cmdfwd=IP:PORT:COMMAND``: a guest's connection to IP:PORT talks to
    a command libslirp starts on the host side (as nobody, like the rest)."""
    p = lab.start_router([require(OURS_PLUG), lab.sw,
                          "slirp:///cmdfwd=10.0.2.4:6000:echo cmd-says-hi"])
    try:
        lab.dhcp()
        out = lab.guest.check("nc 10.0.2.4 6000 </dev/null", timeout=60)
        assert "cmd-says-hi" in out, out
    finally:
        lab.stop_router(p)


def test_ipv6_router_advertisement_ping_and_forward(lab):
    """IPv6 as libslirp offers it: a router advertisement gives the guest
    an address in the ``host6=`` prefix, the router answers pings, and a
    host forward on [::1] reaches the guest's IPv6 address."""
    p = lab.start_router([require(OURS_PLUG), lab.sw,
                          "slirp:///host6=fd42:7::2%2F64"
                          "/tcpfwd=[::1]:7081:[fd42:7::5054:ff:fe5a:f]:8080"])
    try:
        g = lab.guest
        g.check("ip -6 addr flush dev eth0 scope global; ip link set eth0 down; "
                "ip link set eth0 up")
        out = g.check("for i in $(seq 80); do ip -6 addr show dev eth0 | "
                      "grep -q 'inet6 fd42:7::' && break; sleep 0.5; done; "
                      "ip -6 addr show dev eth0", timeout=90)
        assert "inet6 fd42:7::5054:ff:fe5a:f/64" in out, out
        rc, out = g.run("ping -6 -c 3 -w 20 fd42:7::2", 40)
        assert rc == 0 and "3 packets received" in out, out
        host_forward_reaches_guest(lab, "fd42:7::5054:ff:fe5a:f", "::1", 7081)
    finally:
        lab.stop_router(p)


def test_names_resolve_through_the_dns_proxy(lab):
    """The DNS address in the lease answers: libslirp relays the guest's
    UDP question to the host's resolver (here a name server on the
    namespace's 127.0.0.1, through its resolv.conf)."""
    for key, tool in (("ours", OURS_PLUG), ("C", C_PLUG)):
        p = lab.start_router([require(tool), lab.sw, "slirp://"])
        try:
            lease = lab.dhcp()
            out = lab.guest.check("nslookup vm-host.test %s" % lease["dns"], timeout=60)
            assert "10.9.8.7" in out, (key, out)
        finally:
            lab.stop_router(p)


def udp_noports(lab) -> int:
    """Datagrams the guest's kernel got for a UDP port nobody listens on."""
    lines = [line.split() for line in lab.guest.check("grep Udp: /proc/net/snmp").splitlines()
             if line.startswith("Udp:")]
    return int(lines[1][lines[0].index("NoPorts")])


def test_udp_host_forward_reaches_the_guest(lab):
    """``udpfwd=7053:10.0.2.15:5353``: datagrams sent to the host's port
    arrive at the guest's port 5353 (busybox has no UDP listener: the
    guest kernel's count of datagrams for unopened ports shows them)."""
    p = lab.start_router([require(OURS_PLUG), lab.sw, "slirp:///udpfwd=7053:10.0.2.15:5353"])
    try:
        lab.dhcp()
        before = udp_noports(lab)
        r = lab.run(["python3", "-c",
                     "import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                     "for i in range(5): s.sendto(b'dgram%d' % i, ('127.0.0.1', 7053))\n"])
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 20
        while udp_noports(lab) < before + 5 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert udp_noports(lab) >= before + 5
    finally:
        lab.stop_router(p)


def test_every_guest_on_the_switch_gets_a_lease(lab):
    """A second VM on the same switch: its own address from the pool, and
    both reach the host side through the one router."""
    second = lab.add_guest("52:54:00:5a:00:10", "slirp-guest2")
    p = lab.start_router([require(OURS_PLUG), lab.sw, "slirp://"])
    try:
        first_lease, second_lease = lab.dhcp(), lab.dhcp(second)
        assert (first_lease["ip"], second_lease["ip"]) == ("10.0.2.15", "10.0.2.16"), (
            first_lease, second_lease)                 # the pool, in order
        for g in (lab.guest, second):
            assert lab.fetch("10.0.2.2", g) == (hashlib.md5(lab.payload).hexdigest(),
                                                len(lab.payload))
        rc, out = second.run("ping -c 2 -w 20 %s" % first_lease["ip"], 40)
        assert rc == 0, out                  # and they see each other on the switch
    finally:
        lab.stop_router(p)
