"""The IPN socket: AF_IPN's calls and errors on a network without a server.

``bind`` creates the network (or joins it as a manager, needing x on the
socket file), ``connect`` makes the node a port; the data path (send,
recv, doorbells, queueing) is :mod:`vde_ipn.io.ipn.datapath`.

A ring holds at least ``msgpool_size`` full-MTU messages (usually far
more: it has 256 KiB at least); lossy overruns are counted in
``statistics()["lost"]``.  A receiver that never reads blocks the
senders of a lossless network, as it did in the kernel: a pure producer
should ``shutdown(SHUT_RD)``.  OOB messages (numnodes notifications) are
returned before ring messages, unless a doorbell is queued ahead of them.

A socket may be shared by threads: each call takes the node's lock (a
blocking call lets it go while it sleeps), so two sending threads never
interleave their writes into the ring.

Options (ipn.md section 5). ``SOL_SOCKET`` comes first, as in the kernel
(whose ``sys_setsockopt`` hands that level to the generic socket code
before any family sees it): ``SO_RCVTIMEO``/``SO_SNDTIMEO`` (a ``struct
timeval``), ``SO_TYPE``, ``SO_DOMAIN``, ``SO_PROTOCOL``, ``SO_ERROR``,
``SO_ACCEPTCONN``; other SOL_SOCKET options give ENOPROTOOPT. So a
policy registered as protocol 1 (IPN_BROADCAST, equal to SOL_SOCKET) has
no reachable options, as in AF_IPN. Level 0 is the IPN generic level; a
level equal to the network's protocol number goes to the policy's own
``setsockopt``/``getsockopt``; any other level is EPROTONOSUPPORT.
Options with bit 0x80 are pre-bind: they only shape a network this
socket creates, are stored as unsigned short, and give EISCONN once the
socket is bound or connected.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import select
import socket
import stat
import struct
import threading
from collections import deque

from ...engine.ipn.protocols import IPN_BROADCAST, IPN_MAX_PROTO, floods_only, has_learn, policy_class
from ...wire.ipn_layout import Params, cursor_slot
from . import bell
from .ring import require_tso
from .watch import DeathWatch
from .datapath import MSG_OOB, DataPath, _err
from .membership import NetView
from .companion import Companion

IPN_SO_PORT, IPN_SO_DESCR, IPN_SO_CHANGE_NUMNODES = 0, 1, 2
IPN_SO_HANDLE_OOB, IPN_SO_WANT_OOB_NUMNODES = 3, 4
IPN_SO_MTU, IPN_SO_NUMNODES, IPN_SO_MSGPOOLSIZE, IPN_SO_FLAGS, IPN_SO_MODE = range(0x80, 0x85)
IPN_FLAG_EXCL, IPN_FLAG_FLEXMTU = 2, 4
IPN_DESCRLEN = 128


_PREBIND_FIELD = {IPN_SO_MTU: "mtu", IPN_SO_NUMNODES: "maxports",
                  IPN_SO_MSGPOOLSIZE: "msgpool", IPN_SO_FLAGS: "flags"}


def _int(value) -> int:
    if isinstance(value, (bytes, bytearray, memoryview)):
        if len(value) < 4:
            raise _err(errno.EINVAL, "integer options need 4 bytes")
        return int.from_bytes(bytes(value[:4]), "little", signed=True)
    return int(value)


_TIMEVAL = struct.Struct("@ll")
AF_IPN = 13
SOCK_RAW = socket.SOCK_RAW            # AF_IPN sockets were SOCK_RAW


def _timeval(value) -> float | None:
    if isinstance(value, (bytes, bytearray, memoryview)):
        if len(value) < _TIMEVAL.size:
            raise _err(errno.EINVAL, "a struct timeval is %d bytes" % _TIMEVAL.size)
        sec, usec = _TIMEVAL.unpack_from(bytes(value))
    else:
        sec, usec = int(value), 0
    if sec < 0 or not 0 <= usec < 1000000:
        raise _err(errno.EDOM, "timeout out of range")
    t = sec + usec / 1e6
    return None if t == 0 else t             # 0 means "no timeout", as in the kernel


def _to_timeval(t) -> bytes:
    if t is None:
        return _TIMEVAL.pack(0, 0)
    if t == 0:
        return _TIMEVAL.pack(0, 1)            # non-blocking: the smallest timeout
    return _TIMEVAL.pack(int(t), int(round((t - int(t)) * 1e6)))


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


class IpnNode(DataPath):
    """One IPN node: the socket API, its options, and the state of the node.

    Create with :func:`vde_ipn.ipn.socket`.  Membership and the data path
    are in the mixins :mod:`~vde_ipn.io.ipn.membership` and
    :mod:`~vde_ipn.io.ipn.datapath`; every attribute is declared in
    :meth:`__init__`.
    """

    def __init__(self, protocol: int = IPN_BROADCAST):
        require_tso()
        if not 0 <= protocol <= IPN_MAX_PROTO:
            raise _err(errno.EPROTONOSUPPORT)
        # -- the whole state of a node, declared here (mixins only use it) --
        self.protocol = protocol
        # descriptors: fileno() (doorbells in, plugs out) and doorbells out
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bell.PLUG_SNDBUF)
        self._tx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._lock = threading.Lock()               # one call at a time (threads)
        self._filter = bell.BellFilter(self._sock)
        self._readable = select.poll()              # is a datagram queued on fileno()?
        self._readable.register(self._sock, select.POLLIN)
        # options and socket state
        self._pre = {IPN_SO_MTU: 1514, IPN_SO_NUMNODES: 64, IPN_SO_MSGPOOLSIZE: 8,
                     IPN_SO_FLAGS: 0, IPN_SO_MODE: 0o777}   # pre-bind options
        self._want_port = -1
        self._descr = b""
        self._handle_oob = self._want_numnodes = False
        self._shut_rd = self._shut_wr = False
        self._connected = self._closed = False
        self._rcv_timeout = self._snd_timeout = None
        # the network: companion directory, policy, membership (membership.py)
        self._comp: Companion | None = None
        self._genv = None                           # the companion's gen word
        self._gen_seen = -1
        self._join_gen = 0
        self._policy = None
        self._view = None                           # the policy's NetView
        self._learn = False                         # the policy learns on receive
        self._port = -1
        self._claim = -1                            # flock held on our port's claim file
        self._nid = ""                              # random identity of this node
        self._name = ""                             # doorbell socket name P.F.I
        self._lossless = False
        self._mtu = 1514
        self._peers: dict = {}                      # port -> Peer
        self._readers: list = []                    # peers that receive
        self._announcer = None                      # MACs we send from (switch policies)
        self._mac_scan = 0.0
        self._watch = None                          # DeathWatch while numnodes are wanted
        # sending (datapath.py)
        self._ring = None                           # our RingWriter
        self._limit = 0                             # ring end allowed (lossless)
        self.sent = 0
        # receiving (datapath.py)
        self._cursors = None                        # our cursor words
        self._rings: list = []                      # RingReaders we read, in turn
        self._rr = 0
        self._fast_ring = None                      # the only ring, when nothing else to do
        self._hub = False                           # every entry is for every reader
        self._joined_rings: dict = {}               # node name -> ring positioned at join
        self._draining: list = []                   # rings of writers that left
        self._finished: set = set()                 # ids of rings read to their end
        self._lost_gone = 0
        self.received = 0
        self._oob: deque = deque()                  # numnodes messages to return
        self._last_counts = None
        # readiness (datapath.py module doc)
        self._secret = bell.new_arm(0)              # what doorbells must carry
        self._arm_count = self._wait_count = 0
        self._bell = self._armed = False
        self._watched = False                       # fileno() was handed out
        self._since = 0                             # messages received when last armed
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
        if self._comp is not None:
            raise _err(errno.EISCONN)
        pre = self._pre
        params = Params(self.protocol or IPN_BROADCAST, pre[IPN_SO_FLAGS], pre[IPN_SO_NUMNODES],
                        pre[IPN_SO_MTU], pre[IPN_SO_MSGPOOLSIZE], pre[IPN_SO_MODE] & 0o777, 0)
        try:
            comp = (Companion.create(path, params) if inode is None
                   else Companion.create(path, params, make_inode=inode))
        except FileExistsError:
            if not _access(path, os.X_OK):
                raise _err(errno.EACCES, path) from None
            comp = Companion.open(path)
            if comp.params.flags & IPN_FLAG_EXCL:
                comp.close()
                raise _err(errno.ECONNREFUSED, "exclusive IPN network") from None
        try:
            self._adopt_protocol(comp)
            policy = policy_class(self.protocol)(NetView(comp.params.maxports))
            policy.newnet()
        except BaseException:
            comp.close()
            raise
        self._comp, self._policy, self._genv = comp, policy, comp.gen

    def connect(self, path: str | None = None) -> None:
        """Become a port: of the bound network, or of the one at ``path``
        (a directory: its ``ctl``, see :func:`network_path`).

        Without r on the socket file the node is shut for reading, without
        w for writing; with neither (and no OOB) connect fails with EACCES.
        """
        self._check_open()
        if self._connected:
            raise _err(errno.EISCONN)
        comp = self._comp
        if comp is None:
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
            comp = Companion.open(path)
        try:
            self._adopt_protocol(comp)
            self._genv = comp.gen
            self._join(comp, self.protocol, self._want_port)
        except BaseException:
            if comp is not self._comp:
                comp.close()
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
                    r.unplug = self._plugged_ring
        simple = self._connected and not (self._learn or self._handle_oob)
        self._fast_ring = rings[0] if simple and len(rings) == 1 else None
        self._hub = self._policy is not None and floods_only(self._policy)

    def _adopt_protocol(self, comp: Companion) -> None:
        net = comp.params.protocol
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
            self._watch = DeathWatch(self._comp, self._numnodes_moved)
            self._hint()                         # the counts now, at once
            if self._oob and not self._bell:
                self._self_ring()
        elif not want and self._watch is not None:
            self._watch.stop()
            self._watch = None

    # -- options (ipn.md section 5; SOL_SOCKET first, as in the kernel) -------
    def _set_sol_socket(self, opt: int, value) -> None:
        if opt == socket.SO_RCVTIMEO:
            self._rcv_timeout = _timeval(value)
        elif opt == socket.SO_SNDTIMEO:
            self._snd_timeout = _timeval(value)
        else:
            raise _err(errno.ENOPROTOOPT, "SOL_SOCKET option %d" % opt)


    def _get_sol_socket(self, opt: int, buflen: int):
        if opt == socket.SO_RCVTIMEO:
            return _to_timeval(self._rcv_timeout)
        if opt == socket.SO_SNDTIMEO:
            return _to_timeval(self._snd_timeout)
        values = {socket.SO_TYPE: SOCK_RAW, socket.SO_DOMAIN: AF_IPN,
                  socket.SO_PROTOCOL: self.protocol, socket.SO_ERROR: 0, socket.SO_ACCEPTCONN: 0}
        if opt not in values:
            raise _err(errno.ENOPROTOOPT, "SOL_SOCKET option %d" % opt)
        v = values[opt]
        return v.to_bytes(4, "little", signed=True).ljust(buflen, b"\0") if buflen else v

    def _generic_level(self, level: int) -> bool:
        """True for the generic level; raises for levels nobody handles."""
        self._check_open()
        if self._shut_rd and self._shut_wr and self._connected:
            raise _err(errno.ECONNRESET)
        if level == 0:
            return True
        if level == self.protocol and self._policy is not None:
            return False
        if level == self.protocol:
            raise _err(errno.ENOTCONN)
        raise _err(errno.EPROTONOSUPPORT)


    def setsockopt(self, level: int, opt: int, value) -> None:
        """SOL_SOCKET, level 0 (IPN), or the policy's at level = protocol."""
        if level == socket.SOL_SOCKET:
            self._check_open()
            self._set_sol_socket(opt, value)
            return
        if not self._generic_level(level):
            self._policy.setsockopt(opt, value)
            return
        if opt & 0x80:
            if opt not in self._pre:
                raise _err(errno.EINVAL)
            if self._comp is not None:
                raise _err(errno.EISCONN)
            v = _int(value)
            if opt == IPN_SO_MTU and v <= 0:
                raise _err(errno.EINVAL, "mtu must be positive")
            self._pre[opt] = v & 0xFFFF
        elif opt == IPN_SO_PORT:
            if self._connected:
                raise _err(errno.EISCONN)
            self._want_port = _int(value)
        elif opt == IPN_SO_DESCR:
            raw = value.encode() if isinstance(value, str) else bytes(value)
            if len(raw) > IPN_DESCRLEN:
                raise _err(errno.EINVAL, "description longer than %d" % IPN_DESCRLEN)
            self._descr = raw[:-1].split(b"\0", 1)[0] if raw else b""   # last byte becomes NUL
        elif opt == IPN_SO_CHANGE_NUMNODES:
            v = _int(value)
            if self._comp is None:
                return                                  # silently ignored when unbound
            if v <= 0:
                raise _err(errno.EINVAL)
            self._resize(v)
        elif opt in (IPN_SO_HANDLE_OOB, IPN_SO_WANT_OOB_NUMNODES):
            before = self._flags() if self._connected else None
            if opt == IPN_SO_HANDLE_OOB:
                self._handle_oob = bool(_int(value))
            else:
                self._want_numnodes = bool(_int(value))
            with self._lock:
                self._set_filter()
                if before is not None and self._flags() != before:
                    self._change_flags()
                    self._settle()
                self._update_watch()
        else:
            raise _err(errno.EINVAL)


    def getsockopt(self, level: int, opt: int, buflen: int = 0):
        """int options, or bytes of ``buflen`` for IPN_SO_DESCR and timevals."""
        if level == socket.SOL_SOCKET:
            self._check_open()
            return self._get_sol_socket(opt, buflen)
        if not self._generic_level(level):
            return self._policy.getsockopt(opt)
        if opt & 0x80 and opt in self._pre:
            if self._comp is None:
                return self._pre[opt]
            if opt == IPN_SO_MODE:
                return -1
            return getattr(self._comp.read_params(), _PREBIND_FIELD[opt])
        if opt == IPN_SO_PORT:
            return self._port if self._connected else -1
        if opt == IPN_SO_DESCR:
            if buflen < IPN_DESCRLEN:
                raise _err(errno.EINVAL, "IPN_SO_DESCR needs a %d-byte buffer" % IPN_DESCRLEN)
            return self._descr.ljust(buflen, b"\0")
        if opt == IPN_SO_HANDLE_OOB:
            return int(self._handle_oob)
        if opt == IPN_SO_WANT_OOB_NUMNODES:
            return int(self._want_numnodes)
        raise _err(errno.EINVAL)

    def _resize(self, new: int) -> None:
        comp = self._comp
        params = comp.read_params()
        if any(p >= new for p, _f, _n in comp.nodes()):
            raise _err(errno.EADDRINUSE, "a port above the new size is in use")
        veto = self._policy.resizenet(params.maxports, new)
        if veto:
            raise _err(veto)
        comp.write_params(dataclasses.replace(params, maxports=new))
        # no lock: a join binds, then reads the size; we write, then look
        if any(p >= new for p, _f, _n in comp.nodes()):
            comp.write_params(params)
            raise _err(errno.EADDRINUSE, "a port above the new size is in use")
        comp.bump()

    # -- plumbing --------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise _err(errno.EBADF)

    def fileno(self) -> int:
        """Readable when a message, an OOB message or a doorbell is waiting.

        From the first call on, every ``recv`` leaves the descriptor in
        that state (the datapath module's readiness protocol).
        """
        if not self._watched:
            with self._lock:
                self._watched = True
                if self._connected and not self._closed:
                    self._settle()
            # from now on select() & co. call the socket's own fileno (-1 once closed)
            self.fileno = self._sock.fileno
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
        if self._comp is None:
            raise _err(errno.ENOTCONN)
        return self._comp.path

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
                if self._comp is not None:
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
        where = self._comp.path if self._comp is not None else "unbound"
        return "<IpnNode protocol=%d port=%d %s>" % (self.protocol, self._port, where)


IpnSocket = IpnNode          # the name users know from vde_ipn.ipn
