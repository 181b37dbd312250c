"""A VDE switch: the engine's network served over vde_switch's sockets.

Owns the control directory, the handshakes on ``ctl``, one data socket
per endpoint and the MAC-aging timer.  Where vde_switch 2.3.2 is broken
this server is stricter and stays compatible:

* a request it cannot serve closes the control connection (2.3.2 leaves
  the client waiting forever); so does a client that has not completed
  its request within ``HANDSHAKE_TIMEOUT``, and one that ``port/setuser``
  or ``port/setgroup`` does not admit to the port it asked for;
* a request split across writes is reassembled; one that can no longer
  become valid is refused as soon as that is known;
* bytes written on ``ctl`` after the handshake are ignored, and never
  leave a port that cannot be freed;
* a failed handshake leaves no data socket file behind;
* clients that leave are let go a slice of time per loop turn, so the
  consoles answer while hundreds leave at once;
* at the descriptor limit the ``ctl`` listener is left alone (no busy
  loop) until a descriptor is freed; a complete request that cannot get
  its data socket yet waits for one, and requests left unfinished for
  ``STALLED`` seconds make way for newcomers (see ``_on_accept``);
* frames longer than the maximum are dropped and counted, not truncated;
* refusals are logged at a bounded rate (a flood of bad requests must not
  flood the log, nor stall the switch on a stderr pipe nobody reads).
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import socket
import time

from ..._errors import NoFreePort, PortInUse, RemoteProtocolError
from ...engine.bus import DEFAULT_MAX_FRAME, NO_USER, Network
from ...engine.switch.fstp import Fstp
from ...wire import vde_ctl
from ...wire.values import Value
from . import ctldir
from .ctl import (PendingRequests, client_user, open_data_socket, set_data_perms, unlink_quietly,
                  watch_ctl)
from .console_view import ConsoleView
from .fastpath import FlowCache
from .datasock import Backpressure, Batcher, FramePath, Gate, Sender, drain
from .fstp import FstpIO
from ..accept_gate import OUT_OF_FDS, AcceptGate
from ..log_limit import LimitedLog
from .monitor import MonitorIO
from .plugins import PluginIO
from .port_access import may_take
from .senders import SenderTable

STALLED = 1.0            # a request unfinished this long may be dropped for a newcomer
PENDING_MAX = 64         # unfinished requests at once; the oldest makes way
LEAVE_SLICE = 0.05       # seconds of endpoint closing per loop turn
class SwitchConfig(Value):
    """Everything ``vde_switch`` options can set (defaults of 2.3.2).

    ``sock`` None: :func:`ctldir.default_dir`; ``monitor``: "PORT [PORTS]
    [VLANS]" (io/switch/monitor.py); ``dump``: pcap file of all traffic;
    ``lossless`` (ours): full receivers pause their senders.
    """

    __slots__ = ("sock", "numports", "hub", "mode", "dirmode", "gid", "mgmt", "mgmtmode",
                 "mgmt_gid", "macaddr", "max_frame", "hashsize", "gcint", "expire", "minper",
                 "priority", "fstp", "monitor", "dump", "lossless")

    def __init__(self, sock: str | None = None, numports: int = 32, hub: bool = False,
                 mode: int | None = None, dirmode: int | None = None, gid: int = -1,
                 mgmt: str | None = None, mgmtmode: int = 0o600, mgmt_gid: int = -1,
                 macaddr: bytes | None = None, max_frame: int = DEFAULT_MAX_FRAME,
                 hashsize: int = 128, gcint: float = 2.0, expire: float = 100.0,
                 minper: float = 3.0, priority: int = 0x8000, fstp: bool = False,
                 monitor: str | None = None, dump: str | None = None,
                 lossless: bool = False):
        self.sock = ctldir.default_dir() if sock is None else sock
        self.numports, self.hub, self.mode, self.dirmode = numports, hub, mode, dirmode
        self.gid, self.mgmt, self.mgmtmode, self.mgmt_gid = gid, mgmt, mgmtmode, mgmt_gid
        self.macaddr, self.max_frame, self.hashsize = macaddr, max_frame, hashsize
        self.gcint, self.expire, self.minper = gcint, expire, minper
        self.priority, self.fstp, self.monitor = priority, fstp, monitor
        self.dump, self.lossless = dump, lossless


class _Endpoint:
    __slots__ = ("id", "port", "ctl", "data", "path", "sender", "gate")

    def __init__(self, id, port, ctl, data, path, sender, gate=None):
        self.id, self.port, self.ctl, self.data = id, port, ctl, data
        self.path, self.sender, self.gate = path, sender, gate


class SwitchServer(ConsoleView, FstpIO, MonitorIO, PluginIO):
    """Serve a :class:`Network` to VDE clients through a control directory."""

    def __init__(self, config: SwitchConfig, loop, log=lambda msg: None):
        self.config = config
        self.loop = loop
        self.log = log
        # what clients cause is logged at a bounded rate (see io/log_limit.py)
        self.client_log = LimitedLog(log, loop.clock)
        self.mode, self.dirmode = ctldir.derive_modes(config.mode, config.dirmode)
        self.macaddr = config.macaddr or b"\x00\xff" + os.urandom(4)
        self.fstp = Fstp(self.macaddr, config.priority, origin=loop.clock())
        self._hello = None
        self._held = None                # BPDUs waiting for a joining endpoint
        self.net = Network(config.numports, "hub" if config.hub else "switch",
                           max_frame=config.max_frame)
        self.fstp.listeners.append(self.net.emit)   # fstp/* debug events to consoles
        self.dir: str | None = None
        self._own_dir = False            # made by us: removed at exit
        self.listener: socket.socket | None = None
        self.endpoints: dict[int, _Endpoint] = {}
        self.senders = SenderTable()
        self.batcher = Batcher.create()   # None: one system call per frame
        # lossless mode: readers pause while they send to a full receiver
        self.backpressure = Backpressure() if config.lossless else None
        self._pending = PendingRequests(loop, self._handshake, self._fd_freed)
        # what every reader shares (one small Reader per endpoint); devices
        # (taps, grabbed interfaces) read one frame per call
        # known unicast forwarded in C (io/switch/fastpath.py), or None
        self.flows = FlowCache.create(loop, self.net, self.senders)
        self.frame_path = FramePath(self.net, self.senders, self.batcher, self.backpressure,
                                    self.flows)
        self._device_frames = FramePath(self.net, self.senders, None, self.backpressure)
        self._waiting: list = []         # (conn, request) waiting for a free descriptor
        self._gate: AcceptGate | None = None
        self._freeing = False
        self._leaving: list = []         # endpoints whose client left, to close
        self._reaper = None
        self.started = time.monotonic()
        self._tune_policy()
        self.on_shutdown = loop.stop
        self._gc = None
        self.plugins = {}                # built-in 2.3.2 plugins loaded (io/switch/plugins.py)

    # -- life cycle ------------------------------------------------------------
    def start(self, dir_created: bool | None = None) -> None:
        """Create the directory and start serving (raises on failure).

        ``dir_created``: whether the caller has just made the directory
        (by default it is made here); see ``ctldir.open_ctl``.
        """
        self.dir, self.listener, self._own_dir = ctldir.open_ctl(
            self.config.sock, self.mode, self.dirmode, self.config.gid, dir_created)
        self._gate = AcceptGate(self.loop, self.listener, self._on_accept, self.log,
                                on_retry=self._fd_freed)
        self._gc = self.loop.call_every(self.config.gcint, self.expire)
        if self.config.fstp and not self.hub:
            self.set_fstp(True)
        self.start_observing()

    def close(self) -> None:
        """Close every endpoint and remove our files."""
        self._freeing = True             # no more clients served from here on
        self.stop_observing()
        self.close_plugins()
        if self._reaper is not None:
            self.loop.cancel(self._reaper)
        self._leaving.clear()
        for ep_id in list(self.endpoints):
            self.close_endpoint(ep_id)
        self._pending.close()
        for conn, _raw in self._waiting:
            conn.close()
        self._waiting.clear()
        if self._gc is not None:
            self.loop.cancel(self._gc)
        if self.flows is not None:
            if self.loop.poll_override == self.flows.c.poll:
                self.loop.poll_override = None
            self.flows = self.frame_path.flows = None
        if self._hello is not None:
            self.loop.cancel(self._hello)
            self._hello = None
        if self.listener is not None:
            self._gate.close()
            self.listener.close()
            self.listener = None
            ctldir.remove_ctl(self.dir, self.log, remove_dir=self._own_dir)

    def expire(self, now: float) -> None:
        """The MAC table's expiry tick (every ``gcint`` seconds)."""
        if self.flows is not None:
            self.flows.stale()           # ages first; and flows never live long
        self.net.expire(now)

    def sync_counters(self) -> None:
        """Before a console command: counters and MAC ages made current."""
        if self.flows is not None:
            self.flows.sync()

    def set_hub(self, hub: bool) -> None:
        if hub:                          # a hub has no spanning tree (2.3.2 stops it)
            self.set_fstp(False)
        self.net.set_policy("hub" if hub else "switch")
        self._tune_policy()

    def _tune_policy(self) -> None:
        policy = self.net.policy
        if hasattr(policy, "expire_after"):
            policy.expire_after = self.config.expire
            policy.min_persistence = self.config.minper
        if hasattr(policy, "use_fstp"):
            policy.use_fstp(self.fstp, self._send_bpdus)
        else:
            self.fstp.on_change = None
        if self.flows is not None:
            self.flows.hook(policy)

    # -- control connections -------------------------------------------------
    def _on_accept(self, now: float) -> None:
        """Take one connection on ``ctl``.

        Out of descriptors, a request left unfinished for ``STALLED``
        seconds is dropped to make room (a local user must not pin every
        descriptor with connections that never finish); without one the
        listener is paused until a descriptor is freed.
        """
        try:
            conn, _ = self.listener.accept()
        except OSError as e:             # EAGAIN, or the client gave up already
            if e.errno in OUT_OF_FDS:
                self._short_of_fds(e)
            return
        if len(self._pending) >= PENDING_MAX:
            self._pending.drop(self._pending.oldest(now))
        self._pending.add(conn)

    def _short_of_fds(self, err: OSError) -> None:
        """No descriptor free: drop the unfinished request that has stalled
        longest to make room, or else stop accepting until one is freed."""
        stalled = self._pending.oldest(self.loop.clock() - STALLED)
        if stalled is None:
            self._gate.pause(err)
            return
        self._pending.drop(stalled)

    def _fd_freed(self) -> None:
        """A descriptor was closed: serve the requests waiting for one, in
        order, then accept again."""
        if self._freeing or self._gate is None:
            return                       # the loop below is already at work
        self._freeing = True
        try:
            while self._waiting:
                conn, raw = self._waiting[0]
                if not self._serve_or_refuse(conn, raw):
                    self._gate.pause(OSError(errno.EMFILE, os.strerror(errno.EMFILE)))
                    return               # still none free: it waits on
                self._waiting.pop(0)
            self._gate.resume()
        finally:
            self._freeing = False

    def _handshake(self, conn: socket.socket, raw: bytes) -> None:
        """Serve one complete request; on any failure close ``conn``.

        Closing is the only refusal the protocol has: clients see EOF
        instead of a reply (vde_switch 2.3.2 leaves them waiting instead).
        A request that finds no free descriptor for its data socket waits
        for one (see :meth:`_fd_freed`).
        """
        if self._waiting or not self._serve_or_refuse(conn, raw):
            self._waiting.append((conn, raw))
            self._short_of_fds(OSError(errno.EMFILE, os.strerror(errno.EMFILE)))

    def _serve_or_refuse(self, conn: socket.socket, raw: bytes) -> bool:
        """False, keeping ``conn``, when no descriptor is free to serve it."""
        try:
            req = vde_ctl.decode_request(raw)
        except RemoteProtocolError as e:
            self.client_log(str(e))
            conn.close()
            return True
        try:
            self._serve(conn, req)
        except OSError as e:
            if e.errno in OUT_OF_FDS:
                return False
            self._refuse(conn, req, e)
        except (NoFreePort, PortInUse) as e:
            self._refuse(conn, req, e)
        return True

    def _refuse(self, conn, req, err) -> None:
        self.client_log("cannot give a port to %s: %s" % (req.path or "abstract client", err))
        conn.close()

    def _serve(self, conn: socket.socket, req) -> None:
        user = client_user(req)
        port_no = self.net.pick_port(req.port, user)
        port = self.net.ports.get(port_no)
        if port is not None and not port.endpoints and not may_take(port, user):
            raise PermissionError(errno.EPERM, "port %d: refused by its access control"
                                  % port_no)
        mgmt = req.kind is vde_ctl.RequestKind.NEW_PORT0
        data, path = open_data_socket(
            conn, self.dir, port_no, req, lambda path: self._set_data_perms(path, mgmt, user),
            log=self.client_log)
        self._attach(conn, data, path, port_no, req, user)

    def _set_data_perms(self, path: str, mgmt: bool, user: int) -> None:
        """Owner and mode of a switch data socket (reference 1.1).

        A root switch gives the socket to the client's uid, owner-only;
        otherwise the ctl mode applies.  Port-0 requests then get the
        management mode and group on top, as vde_switch does (it does so
        after replying; doing it before avoids a window with other modes).
        """
        set_data_perms(path, self.mode, self.config.gid, user)
        if mgmt:
            os.chmod(path, self.config.mgmtmode)
            if self.config.mgmt_gid != -1:
                os.chown(path, -1, self.config.mgmt_gid)

    def _attach(self, conn, data, path, port_no, req, user) -> None:
        ep_id = conn.fileno()
        with self._holding_bpdus():
            self.net.attach(ep_id, port_no, req.description, user=user)
            port = self.net.ports[port_no]
            sender = Sender(data, port, self.loop, batcher=self.batcher,
                            backpressure=self.backpressure, flows=self.flows)
            ep = _Endpoint(ep_id, port_no, conn, data, path, sender, self._read_gate(data))
            self.endpoints[ep_id] = ep
            self._rebuild_senders(port_no)
        self.loop.add_reader(data, self.frame_path.reader(data, port_no, gate=ep.gate))
        if self.flows is not None:
            self.flows.attach(data)
        watch_ctl(self.loop, conn, self._ctl_gone, ep)   # no closure: memory, per port

    def _ctl_gone(self, ep: _Endpoint, now: float) -> None:
        self.loop.forget(ep.ctl)
        self._leave_soon(ep)

    def _leave_soon(self, ep: _Endpoint) -> None:
        """Close a departed client's endpoint from a timer, a slice at a time
        (``LEAVE_SLICE`` seconds per loop turn), so that consoles and other
        clients are served between the slices when hundreds leave at once."""
        self._leaving.append(ep)
        if self._reaper is None:
            self._reaper = self.loop.call_later(0, self._reap)

    def _reap(self, now: float) -> None:
        self._reaper = None
        deadline = self.loop.clock() + LEAVE_SLICE
        while self._leaving:
            ep = self._leaving.pop(0)
            if self.endpoints.get(ep.id) is ep:   # not closed (and its id reused) meanwhile
                self.close_endpoint(ep.id)
            if self.loop.clock() >= deadline:
                break
        if self._leaving:
            self._reaper = self.loop.call_later(0, self._reap)

    def attach_local(self, description: str, want: int | None = None) -> socket.socket:
        """An endpoint inside this process: returns our end of a socketpair.

        Used by ``hub://``/``switch://`` plugs and by in-process users of the
        bus; closing the returned socket does not detach it, :meth:`close` does.
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        port_no = self.net.pick_port(want)
        ours.setblocking(False)
        ep_id = -(len(self.endpoints) + 1000)
        while ep_id in self.endpoints:
            ep_id -= 1
        with self._holding_bpdus():
            self.net.attach(ep_id, port_no, description, module="local")
            port = self.net.ports[port_no]
            ep = self.endpoints[ep_id] = _Endpoint(
                ep_id, port_no, None, ours, None,
                Sender(ours, port, self.loop, batcher=self.batcher,
                       backpressure=self.backpressure, flows=self.flows),
                self._read_gate(ours))
            self._rebuild_senders(port_no)
        self.loop.add_reader(ours, self.frame_path.reader(ours, port_no, gate=ep.gate))
        if self.flows is not None:
            self.flows.attach(ours)
        return theirs

    def attach_device(self, dev, description: str | None, want: int | None = None,
                      *, user: int = NO_USER) -> int:
        """An endpoint on a device this process opened (a tap, a grabbed NIC).

        ``dev`` has ``fileno()``, non-blocking ``recv(n)``/``send(frame)``
        (one frame per call, OSError once broken), ``close()`` and the
        ``module`` name ``port/print`` shows.  The switch owns it from now
        on: a read error or :meth:`close_endpoint` closes it.  Returns the
        endpoint id (the descriptor, as vde_switch numbers endpoints).
        """
        port_no = self.net.pick_port(want, user)     # user: shown, and checked by ACLs
        ep_id = dev.fileno()
        self.net.attach(ep_id, port_no, description, module=dev.module, user=user)
        port = self.net.ports[port_no]
        ep = self.endpoints[ep_id] = _Endpoint(
            ep_id, port_no, None, dev, None,
            Sender(dev, port, self.loop, backpressure=self.backpressure), self._read_gate(dev))
        self._rebuild_senders(port_no)
        self.loop.add_reader(dev, self._device_frames.reader(
            dev, port_no, lambda: self.close_endpoint(ep_id), gate=ep.gate))
        return ep_id

    def close_endpoint(self, ep_id: int) -> bool:
        """Close one endpoint (client gone, or ``port/epclose``)."""
        ep = self.endpoints.pop(ep_id, None)
        if ep is None:
            return False
        if ep.gate is not None:
            # lossless: what the client sent before leaving still goes out
            drain(ep.gate, self.loop.clock())
        self.net.detach(ep_id, ep.port)
        self._rebuild_senders(ep.port)
        ep.sender.close()                # readers it held back go on
        if self.flows is not None and isinstance(ep.data, socket.socket):
            self.flows.detach(ep.data)   # before it is closed: no flow names it
        for sock in (ep.data, ep.ctl):
            if sock is not None:
                self.loop.forget(sock)
                sock.close()
        if ep.path is not None:
            unlink_quietly(ep.path)
        self._fd_freed()
        return True

    def _read_gate(self, sock):
        return None if self.backpressure is None else Gate(sock, self.loop)

    def _flows_stale(self) -> None:
        if self.flows is not None:
            self.flows.stale()

    def _rebuild_senders(self, port_no: int) -> None:
        # the port's own endpoint list: constant time whatever the port count
        self._flows_stale()
        port = self.net.ports.get(port_no)
        endpoints = self.endpoints
        sends = () if port is None else tuple(
            endpoints[i].sender.send for i in port.endpoints if i in endpoints)
        self.senders.set_port(port_no, sends)

    # -- the console's view (see engine/switch/commands/__init__.py) ---------------------------
    @property
    def pid(self) -> int:
        return os.getpid()

    @property
    def mgmt(self) -> str | None:
        return self.config.mgmt

    @property
    def mgmtmode(self) -> int:
        return self.config.mgmtmode

    @property
    def hub(self) -> bool:
        return self.net.policy.name == "hub"

    @property
    def hash_settings(self) -> dict:
        c = self.config
        return {"size": c.hashsize, "gcint": c.gcint, "expire": c.expire, "minper": c.minper}

    def now(self) -> float:
        return self.loop.clock()

    def uptime(self) -> int:
        return int(time.monotonic() - self.started)

    def epclose(self, port: int, ep_id: int) -> bool:
        ep = self.endpoints.get(ep_id)
        if ep is None or ep.port != port:
            return False
        return self.close_endpoint(ep_id)

    def shutdown(self, reason: str) -> None:
        self.log(reason)
        self.on_shutdown()

    @staticmethod
    def user_name(uid: int) -> str:
        try:
            return pwd.getpwuid(uid).pw_name
        except (KeyError, OverflowError, ValueError):
            return str(uid)

    @staticmethod
    def group_name(gid: int) -> str:
        try:
            return grp.getgrgid(gid).gr_name
        except (KeyError, OverflowError, ValueError):
            return str(gid)
