"""The IPN socket: AF_IPN's calls and errors on a network without a server.

``bind`` creates the network (or joins it as a manager, needing x on the
socket file), ``connect`` makes the node a port; the data path (send,
recv, doorbells, queueing) is :mod:`vde_ipn.io.ipn_datapath`.

A ring holds at least ``msgpool_size`` full-MTU messages (usually far
more: it has 256 KiB at least); lossy overruns are counted in
``statistics()["lost"]``.  A receiver that never reads blocks the
senders of a lossless network, as it did in the kernel: a pure producer
should ``shutdown(SHUT_RD)``.  OOB messages (numnodes notifications) are
returned before ring messages, unless a doorbell is queued ahead of them.

A socket may be shared by threads: each call takes the node's lock (a
blocking call lets it go while it sleeps), so two sending threads never
interleave their writes into the ring.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
import stat
import threading
from collections import deque

from ..engine.ipn_policy import IPN_BROADCAST, IPN_MAX_PROTO, has_learn, policy_class
from ..wire.ipn_registry import Params, cursor_slot
from . import ipn_bell
from .ipn_ring import require_tso
from .ipn_watch import DeathWatch
from .ipn_datapath import MSG_OOB, DataPath, _err
from .ipn_member import NetView
from .ipn_registry import Registry

IPN_SO_PORT, IPN_SO_DESCR, IPN_SO_CHANGE_NUMNODES = 0, 1, 2
IPN_SO_HANDLE_OOB, IPN_SO_WANT_OOB_NUMNODES = 3, 4
IPN_SO_MTU, IPN_SO_NUMNODES, IPN_SO_MSGPOOLSIZE, IPN_SO_FLAGS, IPN_SO_MODE = range(0x80, 0x85)
IPN_FLAG_EXCL, IPN_FLAG_FLEXMTU = 2, 4
IPN_DESCRLEN = 128


def network_path(path: str) -> str:
    """The socket file a path names: a directory stands for its ``ctl``.

    A kvde_switch serves VDE clients on a directory whose ``ctl`` is both
    the control socket and the IPN network, so ``connect(DIR)`` joins it.
    """
    try:
        if stat.S_ISDIR(os.stat(path).st_mode):
            return os.path.join(path, "ctl")
    except OSError:
        pass
    return path


def _access(path: str, mode: int) -> bool:
    if os.access in os.supports_effective_ids:
        return os.access(path, mode, effective_ids=True)
    return os.access(path, mode)


class IpnSocket(DataPath):
    """One IPN node.  Create with :func:`vde_ipn.ipn.socket`."""

    def __init__(self, protocol: int = IPN_BROADCAST):
        require_tso()
        if not 0 <= protocol <= IPN_MAX_PROTO:
            raise _err(errno.EPROTONOSUPPORT)
        self.protocol = protocol
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        # fileno() sends plugs only (its writability is POLLOUT, see _plug)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, ipn_bell.PLUG_SNDBUF)
        self._tx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)   # doorbells out
        self._lock = threading.Lock()
        self._filter = ipn_bell.BellFilter(self._sock)
        self._member_init()
        self._pre = {IPN_SO_MTU: 1514, IPN_SO_NUMNODES: 64, IPN_SO_MSGPOOLSIZE: 8,
                     IPN_SO_FLAGS: 0, IPN_SO_MODE: 0o777}
        self._want_port = -1
        self._descr = b""
        self._handle_oob = self._want_numnodes = False
        self._shut_rd = self._shut_wr = False
        self._connected = self._closed = False
        self._rcv_timeout = self._snd_timeout = None
        self._secret = ipn_bell.new_arm(0)        # readiness (see ipn_datapath)
        self._arm_count = self._wait_count = 0
        self._bell = self._armed = False
        self._last_counts = None
        self._watch = None                          # DeathWatch while numnodes are wanted
        self._oob: deque = deque()
        self._genv = None
        self._learn = False
        self._rr = 0
        self._fast_ring = None
        self.sent = self.received = 0
        self._set_filter()

    # -- bind / connect ------------------------------------------------------
    def bind(self, path: str, *, inode=None) -> None:
        """Create the network at ``path``, or join it as a manager (x bit).

        ``inode(path, mode)``, when given, makes the socket file of a new
        network instead of ``mknod`` (kvde_switch binds a listening VDE
        control socket there, so one path serves both kinds of client);
        it must raise FileExistsError when ``path`` exists.
        """
        self._check_open()
        if self._reg is not None:
            raise _err(errno.EISCONN)
        pre = self._pre
        params = Params(self.protocol or IPN_BROADCAST, pre[IPN_SO_FLAGS], pre[IPN_SO_NUMNODES],
                        pre[IPN_SO_MTU], pre[IPN_SO_MSGPOOLSIZE], pre[IPN_SO_MODE] & 0o777, 0)
        try:
            reg = (Registry.create(path, params) if inode is None
                   else Registry.create(path, params, make_inode=inode))
        except FileExistsError:
            if not _access(path, os.X_OK):
                raise _err(errno.EACCES, path) from None
            reg = Registry.open(path)
            if reg.params.flags & IPN_FLAG_EXCL:
                reg.close()
                raise _err(errno.ECONNREFUSED, "exclusive IPN network") from None
        try:
            self._adopt_protocol(reg)
            policy = policy_class(self.protocol)(NetView(reg.params.maxports))
            policy.newnet()
        except BaseException:
            reg.close()
            raise
        self._reg, self._policy, self._genv = reg, policy, reg.gen

    def connect(self, path: str | None = None) -> None:
        """Become a port: of the bound network, or of the one at ``path``
        (a directory: its ``ctl``, see :func:`network_path`).

        Without r on the socket file the node is shut for reading, without
        w for writing; with neither (and no OOB) connect fails with EACCES.
        """
        self._check_open()
        if self._connected:
            raise _err(errno.EISCONN)
        reg = self._reg
        if reg is None:
            if path is None:
                raise _err(errno.EINVAL, "an unbound IPN socket needs an address")
            path = network_path(path)
            try:
                os.lstat(path)
            except FileNotFoundError:
                raise _err(errno.ENOENT, path) from None
            except PermissionError:          # a directory on the way is closed to us
                raise _err(errno.EACCES, path) from None
            self._shut_rd |= not _access(path, os.R_OK)
            self._shut_wr |= not _access(path, os.W_OK)
            if self._shut_rd and self._shut_wr and not self._handle_oob:
                raise _err(errno.EACCES, path)
            reg = Registry.open(path)
        try:
            self._adopt_protocol(reg)
            self._genv = reg.gen
            self._join(reg, self.protocol, self._want_port)
        except BaseException:
            if reg is not self._reg:
                reg.close()
            raise
        with self._lock:
            self._connected = True
            self._learn = has_learn(self._policy)
            self.refresh()
            self._settle()                       # armed, or ringing itself
            self._update_watch()

    def refresh(self) -> None:
        super().refresh()
        rings = self._rings
        if self._lossless:
            for r in rings:
                if r.pub is None:
                    r.pub, r.pslot, r.wake = self._cursors, cursor_slot(r.port) + 1, self._wake_writer
        simple = self._connected and not (self._learn or self._handle_oob)
        self._fast_ring = rings[0] if simple and len(rings) == 1 else None

    def _adopt_protocol(self, reg: Registry) -> None:
        net = reg.params.protocol
        if self.protocol in (0, IPN_BROADCAST):
            self.protocol = net
        elif self.protocol != net:
            raise _err(errno.EPROTO, "the network runs protocol %d" % net)

    # -- data --------------------------------------------------------------
    def shutdown(self, how: int) -> None:
        """SHUT_RD / SHUT_WR / SHUT_RDWR; allowed before connect, irreversible."""
        self._check_open()
        if how not in (socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR):
            raise _err(errno.EINVAL)
        before = (self._shut_rd, self._shut_wr)
        self._shut_rd |= how != socket.SHUT_WR
        self._shut_wr |= how != socket.SHUT_RD
        if self._connected and before != (self._shut_rd, self._shut_wr):
            with self._lock:
                if self._shut_rd:
                    self._oob.clear()
                self._change_flags()
                self._settle()
                self._update_watch()

    def _update_watch(self) -> None:
        want = self._connected and self._handle_oob and self._want_numnodes
        if want and self._watch is None:
            self._watch = DeathWatch(self._reg)
        elif not want and self._watch is not None:
            self._watch.stop()
            self._watch = None

    def setsockopt(self, level: int, opt: int, value) -> None:
        """Level 0 options, or the policy's at level = protocol (ipn_options)."""
        from .ipn_options import set_option      # it imports the constants here
        set_option(self, level, opt, value)

    def getsockopt(self, level: int, opt: int, buflen: int = 0):
        """int options, or bytes of ``buflen`` for IPN_SO_DESCR."""
        from .ipn_options import get_option
        return get_option(self, level, opt, buflen)

    def _resize(self, new: int) -> None:
        reg = self._reg
        with reg.locked():
            params = reg.read_params()
            if any(p >= new for p, _f, _n in reg.nodes()):
                raise _err(errno.EADDRINUSE, "a port above the new size is in use")
            veto = self._policy.resizenet(params.maxports, new)
            if veto:
                raise _err(veto)
            reg.write_params(dataclasses.replace(params, maxports=new))
            reg.bump()

    # -- plumbing --------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise _err(errno.EBADF)

    def fileno(self) -> int:
        """Readable when a message, an OOB message or a doorbell is waiting."""
        return self._sock.fileno()

    def setblocking(self, flag: bool) -> None:
        self._rcv_timeout = self._snd_timeout = None if flag else 0.0

    def settimeout(self, value) -> None:
        self._rcv_timeout = self._snd_timeout = None if value is None else float(value)

    def gettimeout(self):
        return self._rcv_timeout

    @property
    def policy(self):
        """This node's copy of the network's policy (None before bind/connect)."""
        return self._policy

    def getsockname(self) -> str:
        if self._reg is None:
            raise _err(errno.ENOTCONN)
        return self._reg.path

    getpeername = getsockname

    def statistics(self) -> dict:
        """Counters of this node: sent, received, lost (lossy overruns)."""
        return {"port": self._port, "sent": self.sent, "received": self.received,
                "lost": self._lost_gone + sum(r.lost for r in self._rings)}

    def close(self) -> None:
        """Leave the network; the last node to leave ends it."""
        if self._closed:
            return
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        with self._lock:
            self._closed = True
            try:
                if self._reg is not None:
                    self._leave()
            finally:
                self._connected = False
                self._fast_ring = None
                self._sock.close()
                self._tx.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self._reg.path if self._reg is not None else "unbound"
        return "<IpnSocket protocol=%d port=%d %s>" % (self.protocol, self._port, where)
