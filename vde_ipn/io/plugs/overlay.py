"""Schemes that carry frames over UDP between hosts: vxvde, vxlan, udp.

* ``vxvde://[GROUP][/OPT...]``: a distributed switch with no central
  process, wire-compatible with vdeplug4's ``vxvde`` plugin.  Every node
  listens on GROUP:PORT (default 239.0.0.1 or ff05:56de::1, port 14789,
  shared with other nodes on the host) and sends from its own ephemeral
  port: floods to the group, unicast to the port a MAC was learned from.
  Options: ``port``, ``vni`` (number or group name; default the ``grp``
  gid, else 1), ``grp`` (also written into the low 24 bits of the group
  address), ``ttl`` (default 1), ``rcvbuf``, ``v6``, ``v4``,
  ``hashsize``, ``expiretime`` (default 128 s), ``if``, ``bind``.
  Closing sends a header-only datagram: the others forget our MACs.
* ``vxlan://[ADDR][/OPT...]``: RFC 7348 VXLAN on one socket bound to
  PORT (default 4789), compatible with vdeplug4's ``vxlan`` plugin and
  with Linux kernel ``vxlan`` devices.  ADDR is a multicast group
  (joined; loopback off) or, an extension, one or more comma-separated
  unicast addresses: static peers, each sent every flooded frame.
  Learned peers are always answered on PORT.  Options: ``port``,
  ``vni`` (default 1), ``ttl``, ``rcvbuf``, ``v6``, ``v4``,
  ``hashsize``, ``expiretime``, ``if``.
* ``udp://[SRC:]SPORT->DST:DPORT``: a point-to-point cable, one frame
  per datagram with no header, as vdeplug4's ``udp`` plugin.

Each returns a :class:`Plug` whose data object is non-blocking: ``recv``
returns the next accepted frame or raises ``BlockingIOError``;
``fileno`` is readable whenever a datagram is waiting.
"""

from __future__ import annotations

import errno
import os
import re
import select
import socket
import struct
import time

from ..._errors import ConnectError
from ...engine.overlay import PeerTable
from ...wire import vxlan as vx
from ...wire.ethernet import ETH_HLEN
from ...wire.vnl import parse_head_options
from .endpoints import Plug, group_id

RECV_MAX = 9216 + 14 + 4 + vx.HEADER_LEN
VXVDE_KEYS = ("port", "vni", "grp", "ttl", "rcvbuf", "v6", "v4", "hashsize",
              "expiretime", "if", "bind")
VXLAN_KEYS = ("port", "vni", "ttl", "rcvbuf", "v6", "v4", "hashsize",
              "expiretime", "if")


def _atoi(text: str | None, default: int = 0) -> int:
    m = re.match(r"\s*([+-]?\d+)", text or "")
    return int(m.group(1)) if m else default


def _family(opts: dict) -> int:
    v4, v6 = "v4" in opts, "v6" in opts
    return socket.AF_INET if v4 and not v6 else socket.AF_INET6 if v6 and not v4 \
        else socket.AF_UNSPEC


def _resolve(host: str, port: str, family: int, what: str):
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as e:
        raise ConnectError(errno.ENOENT, "%s %s: %s" % (what, host, e)) from e
    return [(fam, addr) for fam, _, _, _, addr in infos
            if fam in (socket.AF_INET, socket.AF_INET6)]


def _is_multicast(family: int, addr: tuple) -> bool:
    packed = socket.inet_pton(family, addr[0].split("%")[0])
    return packed[0] >> 4 == 0xE if family == socket.AF_INET else packed[0] == 0xFF


def _join(sock: socket.socket, family: int, group: str, ifindex: int) -> None:
    if family == socket.AF_INET:
        mreq = struct.pack("4s4si", socket.inet_aton(group), b"\0" * 4, ifindex)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    else:
        mreq = socket.inet_pton(family, group.split("%")[0]) + struct.pack("@I", ifindex)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)


def _sender_opts(sock: socket.socket, family: int, ttl: int, ifindex: int,
                 loop: bool | None = None) -> None:
    if family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        if loop is not None:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(loop))
        if ifindex:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                            struct.pack("4s4si", b"\0" * 4, b"\0" * 4, ifindex))
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
        if loop is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, int(loop))
        if ifindex:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)


def _ifindex(opts: dict) -> int:
    name = opts.get("if")
    if not name:
        return 0
    try:
        return socket.if_nametoindex(name)
    except OSError as e:
        raise ConnectError(errno.ENODEV, "no interface %s" % name) from e


class _UdpOverlay:
    """The data object of a vxvde or vxlan plug (see the module doc).

    ``listen``: sockets datagrams arrive on; ``out``: the socket we send
    from; ``flood``: addresses a flooded frame goes to; ``fixed_port``:
    the port learned peers are answered on (vxlan), or None to answer the
    port they sent from (vxvde); ``own_port``: our sending port, whose
    datagrams coming back through the group are our own (vxvde).
    """

    def __init__(self, listen, out, flood, vni: int, *, strict: bool,
                 table: PeerTable, fixed_port=None, own_port=None, goodbye=False):
        self.listen = listen
        self.out = out
        self.flood = flood
        self.vni = vni
        self.strict = strict
        self.table = table
        self.fixed_port = fixed_port
        self.own_port = own_port
        self.goodbye = goodbye
        self.hdr = vx.header(vni)
        self.rejected = 0
        self._local: dict = {}
        self._ep = select.epoll()
        for s in listen:
            s.setblocking(False)
            self._ep.register(s.fileno(), select.EPOLLIN)
        out.setblocking(False)

    def fileno(self) -> int:
        return self._ep.fileno()

    def send(self, frame) -> int:
        if len(frame) < ETH_HLEN:
            return len(frame)
        data = self.hdr + bytes(frame)
        peer = self.table.destination(frame, time.monotonic())
        if peer is not None:
            self.out.sendto(data, peer)
        else:
            for addr in self.flood:
                try:
                    self.out.sendto(data, addr)
                except OSError:
                    if len(self.flood) == 1:
                        raise
        return len(frame)

    def recv(self, bufsize: int = RECV_MAX) -> bytes:
        for s in self.listen:
            while True:
                try:
                    data, sender = s.recvfrom(RECV_MAX)
                except (BlockingIOError, InterruptedError):
                    break
                frame = self._accept(data, sender)
                if frame:
                    return frame[:bufsize]
        raise BlockingIOError(errno.EAGAIN, "no frame waiting")

    def _accept(self, data: bytes, sender: tuple):
        frame = vx.decapsulate(data, self.vni, strict=self.strict)
        if frame is None:
            self.rejected += 1
            return None
        if self.own_port is not None and sender[1] == self.own_port \
                and self._is_local(sender[0]):
            return None                                 # our own flood, looped back
        peer = sender if self.fixed_port is None else (sender[0], self.fixed_port) + \
            tuple(sender[2:])
        if not frame:
            self.table.forget_peer(peer)
            return None
        self.table.learn(frame, peer, time.monotonic())
        return frame

    def _is_local(self, host: str) -> bool:
        known = self._local.get(host)
        if known is None:
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            probe = socket.socket(fam, socket.SOCK_DGRAM)
            try:
                probe.bind((host, 0))
                known = True
            except OSError:
                known = False
            finally:
                probe.close()
            self._local[host] = known
        return known

    def close(self) -> None:
        if self._ep.closed:
            return
        if self.goodbye:
            for addr in self.flood:
                try:
                    self.out.sendto(self.hdr, addr)
                except OSError:
                    pass
        self._ep.close()
        for s in set(self.listen) | {self.out}:
            s.close()


def open_vxvde(arg, **_) -> Plug:
    """``vxvde://`` (see the module doc)."""
    head, opts = parse_head_options(arg, VXVDE_KEYS)
    family = _family(opts)
    grp = group_id(opts["grp"]) if opts.get("grp") else None
    vni = group_id(opts["vni"]) if opts.get("vni") else (grp if grp is not None else 1)
    if not head:
        head = vx.DEFAULT_GROUP_V6 if "v6" in opts else vx.DEFAULT_GROUP_V4
    ttl = _atoi(opts.get("ttl"), vx.DEFAULT_TTL)
    ifindex = _ifindex(opts)
    last = None
    for fam, addr in _resolve(head, opts.get("port") or str(vx.VXVDE_PORT), family, "vxvde"):
        packed = vx.group_with_gid(socket.inet_pton(fam, addr[0].split("%")[0]), grp)
        group = (socket.inet_ntop(fam, packed),) + tuple(addr[1:])
        multi = socket.socket(fam, socket.SOCK_DGRAM)
        uni = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            if opts.get("rcvbuf"):
                uni.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _atoi(opts["rcvbuf"]))
            if fam == socket.AF_INET:
                uni.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            _sender_opts(uni, fam, ttl, ifindex)
            multi.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            multi.bind(group)
            _join(multi, fam, group[0], ifindex)
            bind_host = opts.get("bind") or ("0.0.0.0" if fam == socket.AF_INET else "::")
            uni.bind((bind_host, 0))
        except OSError as e:
            multi.close()
            uni.close()
            last = e
            continue
        table = PeerTable(_atoi(opts.get("expiretime"), vx.DEFAULT_EXPIRE) or vx.DEFAULT_EXPIRE,
                          _atoi(opts.get("hashsize"), 1024) or 1024)
        try:
            data = _UdpOverlay([multi, uni], uni, [group], vni & vx.VNI_MAX, strict=True,
                               table=table, own_port=uni.getsockname()[1], goodbye=True)
        except BaseException:
            multi.close()
            uni.close()
            raise
        return Plug(data, None, scheme="vxvde")
    err = last.errno if last is not None and last.errno else errno.ENETUNREACH
    raise ConnectError(err, "vxvde://%s: %s" % (arg, os.strerror(err)))


def open_vxlan(arg, **_) -> Plug:
    """``vxlan://`` (see the module doc)."""
    head, opts = parse_head_options(arg, VXLAN_KEYS)
    family = _family(opts)
    vni = _atoi(opts.get("vni"), 1) & vx.VNI_MAX
    port = opts.get("port") or str(vx.VXLAN_PORT)
    ttl = _atoi(opts.get("ttl"), vx.DEFAULT_TTL)
    ifindex = _ifindex(opts)
    if not head:
        head = vx.DEFAULT_GROUP_V6 if "v6" in opts else vx.DEFAULT_GROUP_V4
    targets = []
    for host in head.split(","):
        found = _resolve(host.strip(), port, family, "vxlan")
        if not found:
            raise ConnectError(errno.ENOENT, "vxlan: no address for %s" % host)
        targets.append(found[0])
    fam = targets[0][0]
    if any(f != fam for f, _ in targets):
        raise ConnectError(errno.EINVAL, "vxlan://%s: mixed address families" % arg)
    flood = [a for _, a in targets]
    sock = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        if opts.get("rcvbuf"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _atoi(opts["rcvbuf"]))
        _sender_opts(sock, fam, ttl, ifindex, loop=False)
        sock.bind(("0.0.0.0" if fam == socket.AF_INET else "::", flood[0][1]))
        for addr in flood:
            if _is_multicast(fam, addr):
                _join(sock, fam, addr[0], ifindex)
        table = PeerTable(_atoi(opts.get("expiretime"), vx.DEFAULT_EXPIRE) or vx.DEFAULT_EXPIRE,
                          _atoi(opts.get("hashsize"), 1024) or 1024)
        data = _UdpOverlay([sock], sock, flood, vni, strict=False, table=table,
                           fixed_port=flood[0][1])
    except OSError as e:
        sock.close()
        raise ConnectError(e.errno or errno.ENETUNREACH,
                           "vxlan://%s: %s" % (arg, e.strerror or e)) from e
    return Plug(data, None, scheme="vxlan")


class _UdpCable:
    """The data object of a ``udp://`` plug: raw frames, one per datagram."""

    def __init__(self, sock: socket.socket, peer):
        self.sock = sock
        self.peer = peer
        sock.setblocking(False)
        self.recv = sock.recv
        self.fileno = sock.fileno

    def send(self, frame) -> int:
        return self.sock.sendto(frame, self.peer)

    def close(self) -> None:
        self.sock.close()


def open_udp(arg, **_) -> Plug:
    """``udp://[SRC:]SPORT->DST:DPORT`` (see the module doc)."""
    src, arrow, dst = arg.partition("->")
    if not arrow:
        raise ConnectError(errno.EINVAL, "udp://%s: expected SPORT->DST:DPORT" % arg)
    dhost, colon, dport = dst.rpartition(":")
    if not colon:
        raise ConnectError(errno.EINVAL, "udp://%s: destination needs :PORT" % arg)
    shost, colon, sport = src.rpartition(":")
    dests = _resolve(dhost.strip("[]") or None, dport, socket.AF_UNSPEC, "udp")
    if not dests:
        raise ConnectError(errno.ECONNABORTED, "udp://%s: no destination" % arg)
    fam, peer = dests[0]
    try:
        srcs = socket.getaddrinfo(shost.strip("[]") or None, sport, fam, socket.SOCK_DGRAM,
                                  0, socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ConnectError(errno.ECONNABORTED, "udp://%s: %s" % (arg, e)) from e
    last = None
    for sfam, stype, proto, _, saddr in srcs:
        sock = socket.socket(sfam, stype, proto)
        try:
            sock.bind(saddr)
        except OSError as e:
            sock.close()
            last = e
            continue
        return Plug(_UdpCable(sock, peer), None, scheme="udp")
    raise ConnectError(errno.ECONNABORTED, "udp://%s: cannot bind: %s" % (arg, last))


SCHEMES = {"vxvde": open_vxvde, "vxlan": open_vxlan, "udp": open_udp}
