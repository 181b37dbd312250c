"""A user-mode NAT router on libslirp, run by our event loop (``slirp://``).

libslirp holds the TCP/IP stack (DHCP, DNS proxy, NAT of TCP, UDP and
ICMP echo onto ordinary host sockets); this module only drives it:

* libslirp's sockets: after every piece of work we ask it which
  descriptors it wants (``slirp_pollfds_fill``) and keep the loop's
  readers and writers equal to that set; when the loop reports one ready
  we hand the readiness back (``slirp_pollfds_poll``), which also runs
  its TCP timers.  The timeout it asks for becomes a loop timer.
* libslirp's own timers (IPv6 router advertisements) are loop timers.
* Frames: the plug the user gets (:func:`open_slirp_plug`) hands what
  it is given straight to ``slirp_input``; libslirp's output waits in a
  queue the plug's ``recv`` takes from, and a pipe makes the plug's
  ``fileno`` readable while the queue is not empty, so the plug is
  polled like any VDE plug.

No thread: everything runs in the loop that runs the rest of the program.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import os
import socket
import sys
import time

from ..._errors import ConnectError
from ...wire.slirp_options import SlirpSettings, parse_slirp_vnl
from ...wire.vnl import VnlError
from . import libslirp as L
from .endpoints import Plug

QUEUE_MAX = 1024          # frames waiting for the plug's reader; more are lost


class SlirpError(ConnectError):
    pass


class SlirpRouter:
    """One libslirp instance, configured by ``settings``, fed by
    :meth:`feed`; what it sends to the guests goes to ``output(frame)``.

    ``loop`` is a :class:`vde_ipn.io.loop.Loop`; :meth:`close` stops
    everything and closes the sockets libslirp opened.
    """

    def __init__(self, settings: SlirpSettings, loop, output, *, log=None):
        self.lib = L.load()
        self.loop = loop
        self.settings = settings
        self.log = log or (lambda text: sys.stderr.write("slirp: %s\n" % text))
        self._slirp = None
        self._watched: dict[int, int] = {}      # fd -> events watched in the loop
        self._ready: dict[int, int] = {}        # fd -> SLIRP_POLL_* seen ready
        self._polled: list[int] = []            # poll index -> fd
        self._events: list[int] = []            # poll index -> events asked
        self._tick = None                       # loop timer for libslirp's timeout
        self._tick_at = 0.0
        self._timers: dict[int, list] = {}      # our timer id -> [id, cb_opaque, handle]
        self._next_timer = 1
        self._busy = False
        self._again = False
        self.output = output
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    # -- set-up --------------------------------------------------------------
    def _start(self) -> None:
        s = self.settings
        cfg = L.SlirpConfig()
        cfg.version = L.CONFIG_VERSION
        cfg.restricted = int(s.restricted)
        cfg.in_enabled = s.ipv4
        cfg.vnetwork = L.InAddr.of(str(s.network.network_address))
        cfg.vnetmask = L.InAddr.of(str(s.network.netmask))
        cfg.vhost = L.InAddr.of(str(s.host.ip))
        cfg.in6_enabled = s.ipv6
        cfg.vprefix_addr6 = L.In6Addr.of(str(s.host6.network.network_address))
        cfg.vprefix_len = s.host6.network.prefixlen
        cfg.vhost6 = L.In6Addr.of(str(s.host6.ip))
        self._keep = []                      # C strings libslirp points at

        def cstr(text):
            if text is None:
                return None
            b = os.fsencode(text)
            self._keep.append(b)
            return b

        cfg.vhostname = cstr(s.hostname)
        cfg.tftp_server_name = cstr(s.tftp_server_name)
        cfg.tftp_path = cstr(s.tftp_path)
        cfg.bootfile = cstr(s.bootfile)
        cfg.vdhcp_start = L.InAddr.of(str(s.dhcp_start))
        cfg.vnameserver = L.InAddr.of(str(s.dns))
        cfg.vnameserver6 = L.In6Addr.of(str(s.dns6))
        if s.dnssearch:
            arr = (ctypes.c_char_p * (len(s.dnssearch) + 1))(
                *[cstr(d) for d in s.dnssearch], None)
            self._keep.append(arr)
            cfg.vdnssearch = ctypes.cast(arr, ctypes.POINTER(ctypes.c_char_p))
        cfg.vdomainname = cstr(s.domainname)
        cfg.if_mtu = s.mtu
        cfg.if_mru = s.mru
        cfg.disable_host_loopback = s.disable_host_loopback
        cfg.disable_dhcp = not s.dhcp
        self._cfg = cfg
        cb = L.SlirpCb()
        self._cbs = [
            ("send_packet", L.WriteCb(self._cb_send)),
            ("guest_error", L.GuestErrorCb(self._cb_guest_error)),
            ("clock_get_ns", L.ClockCb(lambda opaque: time.monotonic_ns())),
            ("timer_free", L.TimerFreeCb(self._cb_timer_free)),
            ("timer_mod", L.TimerModCb(self._cb_timer_mod)),
            ("register_poll_fd", L.FdCb(lambda fd, opaque: None)),
            ("unregister_poll_fd", L.FdCb(self._cb_unregister)),
            ("notify", L.NotifyCb(self._cb_notify)),
            ("timer_new_opaque", L.TimerNewOpaqueCb(self._cb_timer_new)),
        ]
        for name, fn in self._cbs:
            setattr(cb, name, fn)
        self._cb = cb
        self._add_poll = L.AddPollCb(self._cb_add_poll)
        self._get_revents = L.GetReventsCb(self._cb_get_revents)
        self._slirp = self.lib.slirp_new(ctypes.byref(cfg), ctypes.byref(cb), None)
        if not self._slirp:
            raise SlirpError(errno.EINVAL, "libslirp refused the configuration")
        for f in s.forwards:
            self.add_forward(f)
        for g in s.guest_forwards:
            addr = L.InAddr.of(g.addr or "0.0.0.0")
            if g.kind == "unix":
                rc = self.lib.slirp_add_unix(self._slirp, os.fsencode(g.target),
                                             ctypes.byref(addr), g.port)
            else:
                rc = self.lib.slirp_add_exec(self._slirp, os.fsencode(g.target),
                                             ctypes.byref(addr), g.port)
            if rc < 0:
                raise SlirpError(errno.EINVAL, "%sfwd %s:%d: refused by libslirp"
                                 % (g.kind, g.addr, g.port))
        self._cycle(False)

    def add_forward(self, f) -> None:
        """Listen on the host for ``f`` (a :class:`Forward`); raise
        :class:`SlirpError` when the port cannot be had."""
        probe = _probe_port(f)
        if probe is not None:
            raise SlirpError(probe, "cannot forward %s host port %s: %s" % (
                "udp" if f.udp else "tcp", _hostport(f), os.strerror(probe)))
        if f.ipv6:
            host = L.sockaddr_in6(f.host_addr, f.host_port)
            guest = L.sockaddr_in6(f.guest_addr, f.guest_port)
            rc = self.lib.slirp_add_hostxfwd(
                self._slirp, host, len(host), guest, len(guest),
                L.HOSTFWD_V6ONLY | (L.HOSTFWD_UDP if f.udp else 0))
        else:
            rc = self.lib.slirp_add_hostfwd(self._slirp, int(f.udp),
                                            L.InAddr.of(f.host_addr), f.host_port,
                                            L.InAddr.of(f.guest_addr), f.guest_port)
        if rc < 0:
            raise SlirpError(errno.EADDRINUSE, "cannot forward %s host port %s"
                             % ("udp" if f.udp else "tcp", _hostport(f)))

    # -- frames ------------------------------------------------------------------
    def feed(self, frame) -> int:
        """Give libslirp one frame from the guests (the plug's ``send``:
        no socket in between when the plug's user is in this process)."""
        if self._slirp is None:
            raise OSError(errno.EBADF, "the slirp router is closed")
        if len(frame) >= 14:
            if not isinstance(frame, bytes):
                frame = bytes(frame)
            self.lib.slirp_input(self._slirp, frame, len(frame))
            self._cycle(True)
        return len(frame)

    def _cb_send(self, buf, size, opaque) -> int:
        self.output(ctypes.string_at(buf, size))
        return size

    def _cb_guest_error(self, msg, opaque) -> None:
        self.log("guest error: %s" % (msg or b"").decode(errors="replace"))

    # -- libslirp's sockets ---------------------------------------------------
    def _cb_add_poll(self, fd, events, opaque) -> int:
        self._polled.append(fd)
        self._events.append(events)
        return len(self._polled) - 1

    def _cb_get_revents(self, idx, opaque) -> int:
        # only what was asked for: a socket still connecting asks for OUT
        # alone, and reporting it readable (data came with the connection)
        # would make libslirp read before it knows it is connected
        try:
            return self._ready.get(self._polled[idx], 0) & self._events[idx]
        except IndexError:
            return 0

    def _cb_unregister(self, fd, opaque) -> None:
        if self._watched.pop(fd, None) is not None:
            self.loop.forget(fd)
        self._ready.pop(fd, None)

    def _cb_notify(self, opaque) -> None:
        self._schedule(0.0)

    def _cycle(self, poll: bool = True) -> None:
        """Hand libslirp what became ready, then ask what to watch next."""
        if self._slirp is None:
            return
        if self._busy:                  # called back from inside libslirp
            self._again = True
            return
        self._busy = True
        try:
            while True:
                self._again = False
                if poll:                # also sends what waited for ARP/NDP
                    self.lib.slirp_pollfds_poll(self._slirp, 0, self._get_revents, None)
                self._ready.clear()
                self._fill()
                if not self._again:
                    break
                poll = True
        finally:
            self._busy = False

    def _fill(self) -> None:
        self._polled, self._events = [], []
        timeout = ctypes.c_uint32(L.NO_TIMEOUT)
        self.lib.slirp_pollfds_fill(self._slirp, ctypes.byref(timeout), self._add_poll, None)
        wanted: dict[int, int] = {}
        for fd, ev in zip(self._polled, self._events):
            wanted[fd] = wanted.get(fd, 0) | ev
        loop = self.loop
        for fd in list(self._watched):
            if fd not in wanted:
                del self._watched[fd]
                loop.forget(fd)
        for fd, ev in wanted.items():
            mask = (1 if ev & (L.POLL_IN | L.POLL_PRI) else 0) | (2 if ev & L.POLL_OUT else 0)
            if self._watched.get(fd) == mask:
                continue
            self._watched[fd] = mask
            try:
                if mask & 1:
                    loop.add_reader(fd, self._reader(fd))
                else:
                    loop.remove_reader(fd)
                if mask & 2:
                    loop.add_writer(fd, self._writer(fd))
                else:
                    loop.remove_writer(fd)
            except (OSError, ValueError):
                # a descriptor closed and reused behind our back: start afresh
                loop.forget(fd)
                self._watched.pop(fd, None)
        if timeout.value != L.NO_TIMEOUT:
            self._schedule(timeout.value / 1000.0)

    def _reader(self, fd: int):
        def ready(now: float) -> None:
            self._ready[fd] = self._ready.get(fd, 0) | L.POLL_IN
            self._cycle(True)
        return ready

    def _writer(self, fd: int):
        def ready(now: float) -> None:
            self._ready[fd] = self._ready.get(fd, 0) | L.POLL_OUT
            self._cycle(True)
        return ready

    def _schedule(self, delay: float) -> None:
        at = time.monotonic() + delay
        if self._tick is not None and self._tick_at <= at:
            return
        if self._tick is not None:
            self.loop.cancel(self._tick)
        self._tick_at = at
        self._tick = self.loop.call_later(delay, self._on_tick)

    def _on_tick(self, now: float) -> None:
        self._tick = None
        self._cycle(True)

    # -- libslirp's timers ------------------------------------------------------
    def _cb_timer_new(self, timer_id, cb_opaque, opaque):
        key = self._next_timer
        self._next_timer += 1
        self._timers[key] = [timer_id, cb_opaque, None]
        return key

    def _cb_timer_free(self, timer, opaque) -> None:
        t = self._timers.pop(timer, None)
        if t is not None and t[2] is not None:
            self.loop.cancel(t[2])

    def _cb_timer_mod(self, timer, expire_ms, opaque) -> None:
        t = self._timers.get(timer)
        if t is None:
            return
        if t[2] is not None:
            self.loop.cancel(t[2])
        delay = max(0.0, expire_ms / 1000.0 - time.monotonic())

        def fire(now: float, key=timer) -> None:
            t = self._timers.get(key)
            if t is None or self._slirp is None:
                return
            t[2] = None
            self.lib.slirp_handle_timer(self._slirp, t[0], t[1])
            self._cycle(True)
        t[2] = self.loop.call_later(delay, fire)

    # -- the end -------------------------------------------------------------------
    def close(self) -> None:
        loop = self.loop
        for fd in list(self._watched):
            loop.forget(fd)
        self._watched.clear()
        if self._tick is not None:
            loop.cancel(self._tick)
            self._tick = None
        for t in self._timers.values():
            if t[2] is not None:
                loop.cancel(t[2])
        if self._slirp is not None:
            slirp, self._slirp = self._slirp, None
            self.lib.slirp_cleanup(slirp)
        self._timers.clear()


class _RouterEnd:
    """The data "socket" of a slirp plug: ``send`` feeds the router,
    ``recv`` takes what it answered, ``fileno`` is readable while there
    is something to take."""

    def __init__(self):
        self.queue: collections.deque = collections.deque()
        self._r, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._signalled = False
        self.send = None                # the router's feed, once it exists

    def push(self, frame: bytes) -> None:
        if len(self.queue) >= QUEUE_MAX or self._w < 0:
            return                      # nobody reading (fast enough): a lost frame
        self.queue.append(frame)
        if not self._signalled:
            self._signalled = True
            os.write(self._w, b"!")

    def recv(self, bufsize: int) -> bytes:
        if self.queue:
            return self.queue.popleft()[:bufsize]
        if self._signalled:
            self._signalled = False
            try:
                os.read(self._r, 64)
            except BlockingIOError:
                pass
        raise BlockingIOError(errno.EAGAIN, "no frame from the slirp router")

    def fileno(self) -> int:
        return self._r

    def close(self) -> None:
        if self._r >= 0:
            os.close(self._r)
            os.close(self._w)
            self._r = self._w = -1
        self.queue.clear()


def _hostport(f) -> str:
    return ("[%s]:%d" if f.ipv6 else "%s:%d") % (f.host_addr, f.host_port)


def _probe_port(f) -> int | None:
    """An errno when ``f``'s host port cannot be bound now, else None
    (libslirp only says -1; this says why, and finds a busy port the
    same way its bind would)."""
    kind = socket.SOCK_DGRAM if f.udp else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET6 if f.ipv6 else socket.AF_INET, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if f.ipv6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((f.host_addr, f.host_port))
        if not f.udp:
            s.listen(1)
    except OSError as e:
        return e.errno or errno.EADDRINUSE
    finally:
        s.close()
    return None


def open_slirp_plug(arg, *, loop=None, settings: SlirpSettings | None = None, **_) -> Plug:
    """``slirp://[/OPTION...]``: a NAT router with DHCP and DNS for every
    guest on the other side of the plug (see
    :mod:`vde_ipn.wire.slirp_options` for the options).  Needs the
    caller's event loop, which runs the router."""
    if settings is None:
        try:
            settings = parse_slirp_vnl(arg)
        except VnlError as e:
            raise ConnectError(errno.EINVAL, str(e)) from e
    if loop is None:
        raise ConnectError(errno.EINVAL, "slirp:// needs an event loop")
    end = _RouterEnd()
    try:
        router = SlirpRouter(settings, loop, end.push)
    except L.SlirpMissing as e:
        end.close()
        raise ConnectError(errno.ENOPKG if hasattr(errno, "ENOPKG") else errno.ENOENT,
                           str(e)) from e
    except BaseException:
        end.close()
        raise
    if settings.verbose:
        sys.stderr.write("SLIRP configuration\n" + settings.table())
    end.send = router.feed
    return Plug(end, None, scheme="slirp", owner=router)
