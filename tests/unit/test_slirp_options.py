"""slirp:// option lists and slirpvde command lines, parsed (pure).

Defaults and the way ``host`` moves the DHCP start and DNS address are
the ones Debian's libvdeplug_slirp prints with ``/verbose``; slirpvde's
are 2.3.2's (host part 2, DNS 3, DHCP 15 of the given network).
"""

import ipaddress

import pytest

from vde_ipn.cli.slirpvde import Refused, parse, settings_of
from vde_ipn.wire.slirp_options import Forward, GuestForward, parse_slirp_vnl
from vde_ipn.wire.vnl import VnlError


def test_defaults_are_the_plugins():
    s = parse_slirp_vnl("")
    assert (s.ipv4, s.ipv6, str(s.host), str(s.host6)) == (True, True, "10.0.2.2/24",
                                                           "fd00::2/64")
    assert (str(s.dhcp_start), str(s.dns), str(s.dns6), s.dhcp) == (
        "10.0.2.15", "10.0.2.3", "fd00::3", True)
    assert s.forwards == [] and s.hostname == "slirp"


def test_host_moves_dhcp_and_dns_into_its_network():
    s = parse_slirp_vnl("/host=10.1.0.2%2F16")
    assert str(s.network) == "10.1.0.0/16"
    assert (str(s.dhcp_start), str(s.dns)) == ("10.1.2.15", "10.1.2.3")   # as the plugin
    s = parse_slirp_vnl('/addr="192.168.7.1/24"/dhcp=192.168.7.100/vnameserver=192.168.7.53')
    assert (str(s.host.ip), str(s.dhcp_start), str(s.dns)) == (
        "192.168.7.1", "192.168.7.100", "192.168.7.53")


def test_host6_moves_dns6():
    s = parse_slirp_vnl("/host6=fd42::1%2F64")
    assert str(s.host6.network) == "fd42::/64" and str(s.dns6) == "fd42::3"


def test_families():
    assert (parse_slirp_vnl("/v4").ipv4, parse_slirp_vnl("/v4").ipv6) == (True, False)
    assert (parse_slirp_vnl("/v6").ipv4, parse_slirp_vnl("/v6").ipv6) == (False, True)
    both = parse_slirp_vnl("/v4/v6")
    assert both.ipv4 and both.ipv6


def test_forwards_both_protocols_with_and_without_host_address():
    s = parse_slirp_vnl("/tcpfwd=8080:10.0.2.15:80,127.0.0.1:2222:10.0.2.15:22"
                        "/udpfwd=:5353:10.0.2.15:53")
    assert s.forwards == [
        Forward(False, "0.0.0.0", 8080, "10.0.2.15", 80),
        Forward(False, "127.0.0.1", 2222, "10.0.2.15", 22),
        Forward(True, "0.0.0.0", 5353, "10.0.2.15", 53)]


def test_guest_forwards_and_misc():
    s = parse_slirp_vnl("/cmdfwd=10.0.2.5:6000:socat STDIO TCP%3Alocalhost%3A1"
                        "/vdnssearch=a.org,b.net/vdomainname=lab/mtu=1400/dhcp=off/verbose")
    assert s.guest_forwards == [GuestForward("cmd", "10.0.2.5", 6000,
                                             "socat STDIO TCP:localhost:1")]
    assert (s.dnssearch, s.domainname, s.mtu, s.dhcp, s.verbose) == (
        ["a.org", "b.net"], "lab", 1400, False, True)


@pytest.mark.parametrize("text", [
    "/nosuch=1", "/tcpfwd=1:2", "/tcpfwd=a:10.0.2.15:80", "/tcpfwd=80:10.0.2:80",
    "/udpfwd=0:10.0.2.15:53", "/host=10.0.2.999", "/host=10.0.2.2%2F40", "/mtu=big",
    "/dhcp=10.0.3.15", "/vnameserver=10.0.2.2", "/host6=fd00::2%2F127",
])
def test_bad_items_are_refused(text):
    with pytest.raises(VnlError):
        parse_slirp_vnl(text)


def test_slirpvde_marionnet_line():
    o = parse(["slirpvde", "--mod", "777", "--unix", "/tmp/sw", "--network", "10.0.9.0",
               "--dhcp"])
    assert (o.sock, o.mode, o.dhcp) == ("/tmp/sw", 0o777, True)
    s = settings_of(o)
    assert (str(s.host), str(s.dhcp_start), str(s.dns), s.ipv6) == (
        "10.0.9.2/24", "10.0.9.15", "10.0.9.3", False)


def test_slirpvde_single_dash_long_options_and_operand():
    o = parse(["slirpvde", "-dhcp=10.5.0.40", "-network", "10.5.0.0/16", "-N", "10.5.0.9",
               "-L", "2222:10.5.0.40:22", "-U", "5353:10.5.0.40:53", "/tmp/sw"])
    s = settings_of(o)
    assert o.sock == "/tmp/sw"
    assert (str(s.host), str(s.dhcp_start), str(s.dns)) == (
        "10.5.0.2/16", "10.5.0.40", "10.5.0.9")
    assert s.forwards == [Forward(False, "0.0.0.0", 2222, "10.5.0.40", 22),
                          Forward(True, "0.0.0.0", 5353, "10.5.0.40", 53)]


def test_slirpvde_host_keeps_its_host_part_and_dhcp_is_off_without_d():
    s = settings_of(parse(["slirpvde", "-H", "192.168.1.1/24"]))
    assert str(s.host) == "192.168.1.1/24" and not s.dhcp
    assert s.network == ipaddress.IPv4Network("192.168.1.0/24")


@pytest.mark.parametrize("argv", [
    ["slirpvde", "-L", "22"], ["slirpvde", "-n", "10.0.2.0/31"], ["slirpvde", "-x", "x"],
    ["slirpvde", "-X", "nohost:0"],
])
def test_slirpvde_bad_values_refused(argv):
    with pytest.raises(Refused):
        settings_of(parse(argv))


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="/=:,.%\"'\\[]abcdefhlnoprstuv0123456789", max_size=60))
def test_any_text_parses_or_is_refused_cleanly(text):
    """Whatever follows ``slirp://``, the answer is settings or a VnlError."""
    try:
        s = parse_slirp_vnl(text)
    except VnlError:
        return
    assert s.ipv4 or s.ipv6
    assert all(0 < f.host_port < 65536 and 0 < f.guest_port < 65536 for f in s.forwards)


def test_ipv6_forwards():
    s = parse_slirp_vnl("/tcpfwd=[::1]:7081:[fd00::5054:ff:fe5a:f]:8080,7082:[fd00::15]:22"
                        "/udpfwd=[]:5353:[fd00::15]:53")
    assert s.forwards == [
        Forward(False, "::1", 7081, "fd00::5054:ff:fe5a:f", 8080),
        Forward(False, "::", 7082, "fd00::15", 22),
        Forward(True, "::", 5353, "fd00::15", 53)]
    assert str(s.forwards[0]) == "tcp:[::1]:7081:[fd00::5054:ff:fe5a:f]:8080"


@pytest.mark.parametrize("text", [
    "/tcpfwd=[::1]:7081:fd00::15:80", "/tcpfwd=[::1]:7081:[10.0.2.15]:80",
    "/tcpfwd=[::1]:0:[fd00::15]:80", "/tcpfwd=[::1]7081:[fd00::15]:80"])
def test_bad_ipv6_forwards(text):
    with pytest.raises(VnlError):
        parse_slirp_vnl(text)
