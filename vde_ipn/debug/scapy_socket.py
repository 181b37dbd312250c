"""A scapy SuperSocket on any VDE network: ``sendp``, ``srp``, ``sniff`` as on a NIC.

::

    from scapy.all import ARP, Ether, srp1, sniff
    from vde_ipn.scapy import VDESocket

    with VDESocket("/tmp/sw") as s:                 # vde_switch, ours or the C one
        srp1(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="10.0.0.2"), socket=s, timeout=2)
        sniff(opened_socket=s, count=10, prn=lambda p: p.summary())

Addresses are those :func:`vde_ipn.io.plugs.opener.open_plug` takes (``vde://``
or a plain path, ``vde://DIR[PORT]`` for a given port such as a monitor
port, ``hub://``, ``switch://``, ``vxvde://``, ...), plus ``ipn://PATH``
for an IPN network.  ``hub://`` and ``switch://`` networks live inside
this process: their event loop runs in a thread of the socket's own
until :meth:`VDESocket.close`.

Frames shorter than 60 bytes are padded with zeros on the way out, as a
NIC pads them (guests may ignore runts).  A ``filter`` (tcpdump syntax)
is compiled by libpcap and run here on every frame received.  Received
frames are read in batches: :meth:`VDESocket.select` reports a socket
with frames already read as ready, so scapy never waits on a descriptor
while frames sit in the batch.
"""

from __future__ import annotations

import collections
import select
import socket
import threading
import time

from scapy.config import conf
from scapy.layers.l2 import Ether
from scapy.supersocket import SuperSocket

from ..io.loop import Loop
from ..io.plugs.ipn import IpnNode
from ..io.plugs.opener import REPLY_TIMEOUT, RECV_MAX, open_plug
from ..io.plugs.vnl_resolve import resolve
from .bpf import compile_filter, matches

MIN_FRAME = 60                           # Ethernet minimum without FCS
BATCH = 64
SEND_WAIT = 5.0                          # longest wait for room in a full receiver
_IN_PROCESS = ("hub", "switch", "multi", "bonding")


class VDESocket(SuperSocket):
    """A layer-2 scapy socket on a VDE or IPN network.

    Args:
        vnl: the network's address (see the module docstring).
        descr: the description the switch shows for this port.
        port: a port number to ask for (None: any).
        filter: a tcpdump filter expression; frames it rejects are skipped.
        basecls: the class received frames are dissected with.

    Raises:
        vde_ipn.ConnectError: the network cannot be opened.
        vde_ipn.debug.bpf.FilterError: a bad filter, or no libpcap.
    """

    desc = "a VDE or IPN network (vde_ipn)"
    nonblocking_socket = False

    def __init__(self, vnl: str, descr: str = "scapy", *, port: int | None = None,
                 filter: str | None = None, basecls=Ether, timeout: float = REPLY_TIMEOUT):
        self.closed = True               # until opened: close() and __del__ do nothing
        self.vnl = self.iface = vnl
        self.basecls = basecls
        self.promisc = True
        self.program = compile_filter(filter) if filter else None
        self.backlog: collections.deque = collections.deque()
        self.received = self.filtered = 0
        self._loop = self._thread = self._wake = None
        if vnl.startswith("ipn://"):
            plug = IpnNode(vnl[len("ipn://"):])
        elif resolve(vnl)[0] in _IN_PROCESS:
            plug = self._open_in_process(vnl, descr, port, timeout)
        else:
            plug = open_plug(vnl, descr, port=port, timeout=timeout)
        self.ins = self.outs = self.plug = plug
        self.closed = False

    def _open_in_process(self, vnl, descr, port, timeout):
        loop = Loop()
        plug = open_plug(vnl, descr, port=port, timeout=timeout, loop=loop)
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        loop.add_reader(wake_r, lambda now: loop.stop())
        self._loop, self._wake = loop, (wake_r, wake_w)
        self._thread = threading.Thread(target=loop.run, name="vde-ipn " + vnl, daemon=True)
        self._thread.start()
        return plug

    # -- sending -------------------------------------------------------------------
    def send(self, x) -> int:
        """Send one frame (a Packet or bytes), padded to 60 bytes; its length."""
        frame = bytes(x)
        if len(frame) < MIN_FRAME:
            frame += bytes(MIN_FRAME - len(frame))
        try:
            x.sent_time = time.time()
        except AttributeError:
            pass
        deadline = None
        while True:
            try:
                self.plug.send(frame)
                return len(frame)
            except BlockingIOError:      # the network is full: wait for room
                now = time.monotonic()
                deadline = deadline or now + SEND_WAIT
                if now >= deadline:
                    raise
                select.select([], [self.plug], [], deadline - now)

    # -- receiving -----------------------------------------------------------------
    def recv_raw(self, x: int = RECV_MAX):
        """(basecls, frame, time) of the next frame, or (None, None, None) if none is ready."""
        if not self.backlog:
            self._fill()
        if not self.backlog:
            return None, None, None
        frame, ts = self.backlog.popleft()
        return self.basecls, frame, ts

    def _fill(self) -> None:
        recv, program, plug = self.plug.recv, self.program, self.plug
        for _ in range(BATCH):
            try:
                frame = recv(RECV_MAX)
            except BlockingIOError:
                return
            except OSError as e:         # the network went away
                raise EOFError(str(e)) from e
            if not frame:
                if getattr(plug, "hangup_on_empty", False):
                    raise EOFError("the network hung up")
                continue
            self.received += 1
            if program is not None and not matches(program, frame):
                self.filtered += 1
                continue
            self.backlog.append((frame, time.time()))

    @staticmethod
    def select(sockets, remain=conf.recv_poll_rate):
        """Sockets holding frames already read come first; else wait on descriptors."""
        ready = [s for s in sockets if getattr(s, "backlog", None)]
        return ready or SuperSocket.select(sockets, remain)

    def fileno(self) -> int:
        return self.plug.fileno()

    def close(self) -> None:
        """Leave the network (and stop an in-process one); idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._thread is not None:
            self._wake[1].send(b"x")
            self._thread.join(5)
        self.plug.close()
        if self._wake is not None:
            for s in self._wake:
                s.close()


def srp(x, socket: VDESocket, **kwargs):
    """scapy's ``srp`` on an open :class:`VDESocket`: (answered, unanswered).

    scapy's own ``srp`` opens a socket on an interface; this one takes
    ``socket`` as ``sendp`` does.  Other arguments are ``srp``'s
    (``timeout``, ``retry``, ``inter``, ``multi``, ``verbose``...).
    """
    from scapy.sendrecv import sndrcv
    kwargs.setdefault("verbose", False)
    return sndrcv(socket, x, **kwargs)


def srp1(x, socket: VDESocket, **kwargs):
    """The first answer :func:`srp` gets, or None."""
    ans, _unans = srp(x, socket, **kwargs)
    return ans[0][1] if ans else None
