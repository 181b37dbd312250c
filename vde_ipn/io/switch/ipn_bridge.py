"""One engine for both worlds: VDE clients as ports of an IPN network.

:class:`IpnBridge` serves vde_switch's control protocol on a directory
whose ``ctl`` is at the same time the socket file of an IPN network, as
kvde_switch's socket was: QEMU, UML or vde_plug attach with
``sock=DIR``, Python programs with ``ipn.socket(...).connect(DIR)``.

Every VDE client, tap and grabbed interface becomes a port of that
network of its own: an :class:`IpnSocket` held by this process.  Frames
the client writes on its data socket are sent into the network, and the
messages the network delivers to that port go out on the data socket.
Switching is the network's policy only, so a frame crosses one switch
whichever kind of member sent it, and every member counts in the
network's ports and numnodes.  The ports held here share one MAC table
(IPN_VDESWITCH), learned from what any of them receives and from the
source of what each sends, as the kernel's single table was; Python
members learn from what they receive, as they always do.  The bridge itself is a bound, unconnected
node (the network's manager) that keeps the network alive.

The bridge never blocks: a frame for a lossless network that is full is
dropped and counted on the port, as is one longer than the network's MTU
and one its client is too slow to take (after a short queue).
"""

from __future__ import annotations

import errno
import os
import socket
import stat

from ..._errors import RemoteProtocolError
from ...engine.ipn.protocols import IPN_VDESWITCH, has_learn
from ...wire import vde_ctl
from . import ctldir
from .ctl import PendingRequests, client_user, open_data_socket, set_data_perms, watch_ctl
from .datasock import BATCH, Sender
from ..ipn import set_network_group
from ..ipn import (IPN_SO_DESCR, IPN_SO_MODE, IPN_SO_MTU, IPN_SO_NUMNODES, IPN_SO_PORT,
                         IpnSocket)

DEFAULT_MTU = 1514                       # IPN's default: an untagged Ethernet frame
_RECV_MAX = 65536


class Link:
    """One port of the network and the device behind it.

    ``dev`` has ``fileno``/``recv``/``send``/``close`` like a non-blocking
    datagram socket (a VDE data socket, a tap, a grabbed interface).
    Counters: ``to_net``/``to_dev`` frames moved, ``drops`` by cause.
    """

    __slots__ = ("ipn", "dev", "ctl", "path", "descr", "module", "sender", "to_net",
                 "to_dev", "drops")

    def __init__(self, ipn: IpnSocket, dev, descr: str, module: str, ctl=None, path=None):
        self.ipn, self.dev, self.descr, self.module = ipn, dev, descr, module
        self.ctl, self.path = ctl, path
        self.sender = None
        self.to_net = self.to_dev = 0
        self.drops: dict[str, int] = {}

    @property
    def port(self) -> int:
        return self.ipn.statistics()["port"]

    def count_drop(self, cause: str) -> None:
        self.drops[cause] = self.drops.get(cause, 0) + 1


class IpnBridge:
    """VDE clients, taps and grabs on the IPN network at ``DIR/ctl``.

    ``mode`` is the socket file's mode (r: may receive, w: may send, x:
    may manage; connecting to ``ctl`` needs w as for any unix socket),
    ``gid`` its group (-1: the creator's), ``numports`` the network's
    ports, ``protocol`` its policy.  :meth:`start` raises OSError
    (``ctldir.AddressInUse`` when a live switch serves ``DIR``).
    """

    def __init__(self, loop, directory: str, *, mode: int = 0o700, gid: int = -1,
                 numports: int = 64, protocol: int = IPN_VDESWITCH, mtu: int = DEFAULT_MTU,
                 log=lambda msg: None):
        self.loop = loop
        self.config_dir = directory
        self.mode = mode
        self.gid = gid
        self.numports = numports
        self.protocol = protocol
        self.mtu = mtu
        self.log = log
        self.dir: str | None = None
        self.path: str | None = None
        self.manager: IpnSocket | None = None
        self.listener: socket.socket | None = None
        self.links: list[Link] = []
        self._pending = PendingRequests(loop, self._on_request)
        self._table = None               # the policy whose MAC table all ports share

    # -- life cycle ----------------------------------------------------------
    def start(self) -> None:
        """Create ``DIR``, the network at ``DIR/ctl`` and start serving."""
        try:
            os.mkdir(self.config_dir, 0o777)
        except FileExistsError:
            pass
        real = os.path.realpath(self.config_dir)
        if self.gid != -1:
            os.chown(real, -1, self.gid)
        os.chmod(real, ctldir.derive_modes(self.mode & 0o666, None)[1])
        self.dir, self.path = real, os.path.join(real, "ctl")
        self._clear_stale(self.path)
        mgr = IpnSocket(self.protocol)
        try:
            mgr.setsockopt(0, IPN_SO_MODE, self.mode)
            mgr.setsockopt(0, IPN_SO_NUMNODES, self.numports)
            mgr.setsockopt(0, IPN_SO_MTU, self.mtu)
            mgr.bind(self.path, inode=self._make_ctl)
            if self.gid != -1:
                set_network_group(self.path, self.gid)
        except BaseException:
            mgr.close()
            if self.listener is not None:
                self.listener.close()
                self.listener = None
            raise
        self.manager = mgr
        self.loop.add_reader(self.listener, self._on_accept)

    @staticmethod
    def _clear_stale(path: str) -> None:
        if not os.path.lexists(path):
            return
        if ctldir.is_alive(path):
            raise ctldir.AddressInUse(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE), path)
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise OSError(errno.EEXIST, "exists and is not a socket", path)
        os.unlink(path)                  # a dead switch's socket

    def _make_ctl(self, path: str, mode: int) -> None:
        """The network's socket file: our listening control socket."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                sock.bind(path)
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    raise FileExistsError(errno.EEXIST, "exists", path) from None
                raise
            os.chmod(path, mode)
            sock.listen(ctldir.BACKLOG)
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)
        self.listener = sock

    def close(self) -> None:
        """Detach every port, leave the network and remove ``ctl``."""
        for link in list(self.links):
            self.close_link(link)
        self._pending.close()
        if self.listener is not None:
            self.loop.forget(self.listener)
            self.listener.close()
            self.listener = None
            try:
                os.unlink(self.path)
            except OSError:
                pass
        if self.manager is not None:
            self.manager.close()
            self.manager = None
            try:
                os.rmdir(self.dir)
            except OSError:
                pass                     # clients' sockets left in it, or not ours

    # -- ports -----------------------------------------------------------------
    def _new_port(self, descr: str, want: int | None = None) -> IpnSocket:
        s = IpnSocket(self.protocol)
        try:
            if want:
                s.setsockopt(0, IPN_SO_PORT, want)
            s.setsockopt(0, IPN_SO_DESCR, descr.encode()[:127] + b"\0")
            s.connect(self.path)
        except BaseException:
            s.close()
            raise
        policy = s.policy
        if hasattr(policy, "share_table"):
            if self._table is None:
                self._table = policy
            else:
                policy.share_table(self._table)
        return s

    def attach_device(self, dev, description: str) -> Link:
        """A tap or grabbed interface as a port; the bridge owns ``dev`` now."""
        try:
            ipn = self._new_port(description)
        except BaseException:
            dev.close()
            raise
        return self._start_link(Link(ipn, dev, description, getattr(dev, "module", "dev")))

    def _start_link(self, link: Link) -> Link:
        link.sender = Sender(link.dev, link, self.loop)
        self.links.append(link)
        self.loop.add_reader(link.dev, self._dev_reader(link))
        self.loop.add_reader(link.ipn.fileno(), self._net_reader(link))
        return link

    def _dev_reader(self, link: Link):
        recv, send, limit = link.dev.recv, link.ipn.send, self.mtu
        dontwait = socket.MSG_DONTWAIT
        policy = link.ipn.policy
        learn = policy.learn if has_learn(policy) else None
        port = link.port

        def on_readable(now: float) -> None:
            for _ in range(BATCH):
                try:
                    frame = recv(_RECV_MAX)
                except BlockingIOError:
                    return
                except OSError:
                    self.close_link(link)
                    return
                if len(frame) < 14:
                    link.count_drop("runt")
                    continue
                if len(frame) > limit:
                    link.count_drop("oversize")
                    continue
                if learn is not None:    # the sender's MACs are behind its port
                    learn(port, frame, now)
                try:
                    send(frame, dontwait)
                    link.to_net += 1
                except BlockingIOError:
                    link.count_drop("net_full")
                except OSError:
                    link.count_drop("send_error")
        return on_readable

    def _net_reader(self, link: Link):
        recv, dontwait = link.ipn.recv, socket.MSG_DONTWAIT

        def on_readable(now: float) -> None:
            out = link.sender.send
            for _ in range(BATCH):
                try:
                    frame = recv(_RECV_MAX, dontwait)
                except BlockingIOError:
                    return
                except OSError:
                    self.close_link(link)
                    return
                out(frame)
                link.to_dev += 1
        return on_readable

    def close_link(self, link: Link) -> None:
        """Take one port off the network (client gone, device broken)."""
        if link not in self.links:
            return
        self.links.remove(link)
        for fd in (link.dev, link.ipn.fileno(), link.ctl):
            if fd is not None:
                self.loop.forget(fd)
        link.ipn.close()
        link.dev.close()
        if link.ctl is not None:
            link.ctl.close()
        if link.path is not None:
            try:
                os.unlink(link.path)
            except OSError:
                pass

    # -- the VDE control protocol ----------------------------------------------
    def _on_accept(self, now: float) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self._pending.add(conn)

    def _on_request(self, conn: socket.socket, raw: bytes) -> None:
        try:
            self._serve(conn, vde_ctl.decode_request(raw))
        except (OSError, RemoteProtocolError) as e:
            self.log("cannot give a port: %s" % e)
            conn.close()

    def _serve(self, conn: socket.socket, req) -> None:
        """Give the client a port, or raise OSError (the caller closes ``conn``)."""
        user = client_user(req)
        ipn = self._new_port(req.description, req.port)
        try:
            # as vde_switch: a root bridge hands the socket to its client
            data, path = open_data_socket(
                conn, self.dir, ipn.statistics()["port"], req,
                lambda path: set_data_perms(path, self.mode & 0o666, self.gid, user))
        except BaseException:
            ipn.close()
            raise
        link = self._start_link(Link(ipn, data, req.description, "unix", conn, path))
        watch_ctl(self.loop, conn, lambda _now: self.close_link(link))
