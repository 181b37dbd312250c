"""Settings of a user-mode (slirp) router, from a ``slirp://`` VNL or argv.

:func:`parse_slirp_vnl` reads the option list of vdeplug4's slirp plugin
(``slirp:///tcpfwd=8080:10.0.2.15:80/dhcp=10.0.2.50``): items are
separated by ``/`` and quoted as in every VNL, so a prefix length is
written ``host=10.1.0.2%2F16`` or ``host="10.1.0.2/16"``.  The defaults,
and the way a new ``host`` moves the default DHCP start and DNS address
into its network, are the plugin's.  Unlike the plugin, a malformed
address or forward is an error (it ignores them, or crashes), and
``dhcp=off`` turns the DHCP server off (the plugin has no way to).

Pure: :mod:`ipaddress` only, no sockets.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import List, Optional

from .vnl import VnlError, parse_head_options

__all__ = ["Forward", "GuestForward", "SlirpSettings", "parse_slirp_vnl",
           "parse_forward", "SLIRP_KEYS"]

# Tag order of the plugin: a tag given in short matches the first key it
# is a prefix of (``v`` is ``v4``, ``h`` is ``host``).
SLIRP_KEYS = ("restricted", "v4", "v6", "host", "addr", "host6", "addr6", "hostname",
              "tftp_server_name", "tftp_path", "bootfile", "dhcp", "vnameserver",
              "vnameserver6", "vdnssearch", "vdomainname", "mtu", "mru",
              "disable_host_loopback", "tcpfwd", "udpfwd", "unixfwd", "cmdfwd", "verbose")
_ALIASES = {"addr": "host", "addr6": "host6"}
_OFF = ("off", "no", "0", "false")


@dataclass(frozen=True)
class Forward:
    """Host ``host_addr:host_port`` -> guest ``guest_addr:guest_port``."""
    udp: bool
    host_addr: str
    host_port: int
    guest_addr: str
    guest_port: int

    @property
    def ipv6(self) -> bool:
        return ":" in self.guest_addr

    def __str__(self) -> str:
        fmt = "%s:[%s]:%d:[%s]:%d" if self.ipv6 else "%s:%s:%d:%s:%d"
        return fmt % ("udp" if self.udp else "tcp", self.host_addr, self.host_port,
                      self.guest_addr, self.guest_port)


@dataclass(frozen=True)
class GuestForward:
    """Connections from the guests to ``addr:port`` go to a unix socket
    (``kind`` "unix") or to a command's stdin/stdout ("cmd")."""
    kind: str
    addr: str
    port: int
    target: str


@dataclass
class SlirpSettings:
    ipv4: bool = True
    ipv6: bool = True
    host: ipaddress.IPv4Interface = ipaddress.IPv4Interface("10.0.2.2/24")
    host6: ipaddress.IPv6Interface = ipaddress.IPv6Interface("fd00::2/64")
    hostname: str = "slirp"
    tftp_server_name: Optional[str] = None
    tftp_path: Optional[str] = None
    bootfile: Optional[str] = None
    dhcp: bool = True
    dhcp_start: ipaddress.IPv4Address = ipaddress.IPv4Address("10.0.2.15")
    dns: ipaddress.IPv4Address = ipaddress.IPv4Address("10.0.2.3")
    dns6: ipaddress.IPv6Address = ipaddress.IPv6Address("fd00::3")
    dnssearch: List[str] = field(default_factory=list)
    domainname: Optional[str] = None
    mtu: int = 0                         # 0: libslirp's default (1500)
    mru: int = 0
    restricted: bool = False
    disable_host_loopback: bool = False
    forwards: List[Forward] = field(default_factory=list)
    guest_forwards: List[GuestForward] = field(default_factory=list)
    verbose: bool = False

    @property
    def network(self) -> ipaddress.IPv4Network:
        return self.host.network

    def table(self) -> str:
        """The configuration, one ``name value`` row a line (``verbose``)."""
        rows = [
            ("ipv4-enable", int(self.ipv4)), ("ipv4-network", self.network.network_address),
            ("ipv4-netmask", self.network.netmask), ("ipv4-host", self.host.ip),
            ("ipv6-enabled", int(self.ipv6)),
            ("ipv6-prefix", self.host6.network.network_address),
            ("ipv6-preflen", self.host6.network.prefixlen), ("ipv6-host", self.host6.ip),
            ("hostname", self.hostname), ("tftp-servname", self.tftp_server_name),
            ("tftp-path", self.tftp_path), ("bootfile", self.bootfile),
            ("dhcp-start", self.dhcp_start if self.dhcp else "off"),
            ("ipv4-vDNS", self.dns), ("ipv6-vDNS", self.dns6),
            ("vDNS-search", " ".join(self.dnssearch)), ("vdomainname", self.domainname),
            ("MTU(0=def)", self.mtu), ("MRU(0=def)", self.mru),
            ("disable-lback", int(self.disable_host_loopback)),
        ]
        rows += [("forward", f) for f in self.forwards]
        rows += [("%sfwd" % g.kind, "%s:%d -> %s" % (g.addr, g.port, g.target))
                 for g in self.guest_forwards]
        return "".join("%-13s %s\n" % (k, "(null)" if v is None else v) for k, v in rows)


def _v4(text: str, what: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise VnlError("%s: %r is not an IPv4 address" % (what, text)) from None


def _v6(text: str, what: str) -> ipaddress.IPv6Address:
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        raise VnlError("%s: %r is not an IPv6 address" % (what, text)) from None


def _port(text: str, what: str, item: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise VnlError("%s: bad port %r in %r" % (what, text, item))
    return int(text)


def _int(text: str, what: str, low: int, high: int) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise VnlError("%s: %r is not a number from %d to %d" % (what, text, low, high))
    return value


def _move(addr, new_net):
    """``addr``'s host part (under the new mask) put in ``new_net``: the
    plugin's way of following a new host address."""
    mask = int(new_net.netmask)
    return type(addr)((int(addr) & ~mask & ((1 << addr.max_prefixlen) - 1))
                      | int(new_net.network_address))


_V6_FORWARD = re.compile(r"(?:\[([0-9A-Fa-f:.]*)\]:)?([^:]*):\[([0-9A-Fa-f:.]+)\]:([^:]*)")


def parse_forward(item: str, udp: bool, what: str = "forward") -> Forward:
    """``[hostIP:]hostport:guestIP:guestport`` (an empty hostIP is any).

    IPv6 (ours): ``[[HOST6]:]hostport:[GUEST6]:guestport``, addresses in
    brackets (an empty or missing ``[HOST6]`` is ``[::]``).
    """
    if "[" in item:
        m = _V6_FORWARD.fullmatch(item)
        if m is None:
            raise VnlError("%s: %r is not [[hostIP6]:]hostport:[guestIP6]:guestport"
                           % (what, item))
        haddr, hport, gaddr, gport = m.groups()
        return Forward(udp, str(_v6(haddr or "::", what)), _port(hport, what, item),
                       str(_v6(gaddr, what)), _port(gport, what, item))
    parts = item.split(":")
    if len(parts) == 3:
        parts.insert(0, "")
    if len(parts) != 4:
        raise VnlError("%s: %r is not [hostIP:]hostport:guestIP:guestport" % (what, item))
    haddr, hport, gaddr, gport = parts
    return Forward(udp, str(_v4(haddr or "0.0.0.0", what)), _port(hport, what, item),
                   str(_v4(gaddr, what)), _port(gport, what, item))


def _guest_forward(kind: str, item: str) -> GuestForward:
    parts = item.split(":", 2)
    if len(parts) == 2:
        parts.insert(0, "")
    if len(parts) != 3 or not parts[2]:
        raise VnlError("%sfwd: %r is not [slirpIP:]port:%s" % (
            kind, item, "path" if kind == "unix" else "command"))
    addr = str(_v4(parts[0], kind + "fwd")) if parts[0] else ""
    return GuestForward(kind, addr, _port(parts[1], kind + "fwd", item), parts[2])


def _iface4(text: str, what: str) -> ipaddress.IPv4Interface:
    addr, _, plen = text.partition("/")
    return ipaddress.IPv4Interface((_v4(addr, what), _int(plen, what, 0, 32) if plen else 24))


def _iface6(text: str, what: str) -> ipaddress.IPv6Interface:
    addr, _, plen = text.partition("/")
    return ipaddress.IPv6Interface((_v6(addr, what), _int(plen, what, 0, 128) if plen else 64))


def parse_slirp_vnl(arg: str) -> SlirpSettings:
    """The settings a ``slirp://ARG`` VNL asks for; :class:`VnlError` when
    an item is unknown or malformed."""
    _head, raw = parse_head_options(arg, SLIRP_KEYS)
    opts = {}
    for key, value in raw.items():
        opts[_ALIASES.get(key, key)] = value
    s = SlirpSettings()
    if "restricted" in opts:
        s.restricted = True
    if ("v4" in opts) != ("v6" in opts):
        s.ipv4, s.ipv6 = "v4" in opts, "v6" in opts
    if "host" in opts:
        s.host = _iface4(opts["host"], "host")
        s.dhcp_start = _move(s.dhcp_start, s.network)
        s.dns = _move(s.dns, s.network)
    if "host6" in opts:
        s.host6 = _iface6(opts["host6"], "host6")
        s.dns6 = _move(s.dns6, s.host6.network)
    for key in ("hostname", "tftp_server_name", "tftp_path", "bootfile"):
        if key in opts:
            setattr(s, key, opts[key])
    if "dhcp" in opts:
        if opts["dhcp"].lower() in _OFF:
            s.dhcp = False
        elif opts["dhcp"]:
            s.dhcp_start = _v4(opts["dhcp"], "dhcp")
    if "vnameserver" in opts:
        s.dns = _v4(opts["vnameserver"], "vnameserver")
    if "vnameserver6" in opts:
        s.dns6 = _v6(opts["vnameserver6"], "vnameserver6")
    if "vdnssearch" in opts:
        s.dnssearch = [d for d in opts["vdnssearch"].split(",") if d]
    if "vdomainname" in opts:
        s.domainname = opts["vdomainname"]
    if "mtu" in opts:
        s.mtu = _int(opts["mtu"], "mtu", 68, 65521)
    if "mru" in opts:
        s.mru = _int(opts["mru"], "mru", 68, 65521)
    if "disable_host_loopback" in opts:
        s.disable_host_loopback = True
    for key, udp in (("tcpfwd", False), ("udpfwd", True)):
        for item in opts.get(key, "").split(","):
            if item:
                s.forwards.append(parse_forward(item, udp, key))
    for kind in ("unix", "cmd"):
        for item in opts.get(kind + "fwd", "").split(","):
            if item:
                s.guest_forwards.append(_guest_forward(kind, item))
    if "verbose" in opts:
        s.verbose = True
    check(s)
    return s


def check(s: SlirpSettings) -> None:
    """Refuse settings libslirp would refuse, with a message saying why."""
    if not (s.ipv4 or s.ipv6):
        raise VnlError("neither IPv4 nor IPv6 enabled")
    net = s.network
    if s.ipv4:
        for name, addr in (("dhcp start", s.dhcp_start), ("DNS address", s.dns)):
            if name == "dhcp start" and not s.dhcp:
                continue
            if addr not in net:
                raise VnlError("%s %s is outside the network %s" % (name, addr, net))
        if s.dns == s.host.ip:
            raise VnlError("the DNS address %s is the host address" % s.dns)
    if s.ipv6 and s.host6.network.prefixlen > 126:
        raise VnlError("IPv6 prefix /%d is too long" % s.host6.network.prefixlen)
