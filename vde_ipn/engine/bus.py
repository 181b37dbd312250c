"""The IPN bus: a network of numbered ports and their endpoints.

Sans-IO: nothing here touches a socket or reads a clock.  The I/O layer
attaches endpoints (one per connected client, tap, ...) and hands every
received frame to :meth:`Network.receive` with the current time; the
answer is the tuple of ports the frame goes out to.  Which ports that is
belongs to the network's delivery policy (hub, switch, ...).

Port numbering follows vde_switch 2.3.2: ``numports`` counts port 0, the
management port, so ``-n 32`` gives client ports 1..31.
"""

from __future__ import annotations

import heapq
from types import MappingProxyType

from .._errors import NoFreePort, PortInUse
from .egress import PORT_MASK
from .policy import make_policy
from ..wire.ethernet import ETH_HLEN
from ..wire.values import FrozenValue

DEFAULT_MAX_FRAME = 9216 + 14 + 4        # jumbo payload + header + one VLAN tag
NO_USER = -1
_NO_VLANS: frozenset = frozenset()       # shared by every port without tagged VLANs
_NO_DROPS = MappingProxyType({})         # shared by every port that dropped nothing

# drop causes, as counted per port
RUNT = "runt"
OVERSIZE = "oversize"
VLAN = "vlan"
QUEUE_FULL = "queue_full"
SEND_ERROR = "send_error"
MONITOR = "monitor"                      # a copy the monitor port had no room for
FRAMING = "framing"                      # a stream record no peer sends (client dropped)
TRUNCATED = "truncated"                  # a stream that ended inside a record


class Endpoint(FrozenValue):
    """One client on a port (a plug, a VM, a tap...).

    ``description`` is None when the endpoint has none (not "").
    """

    __slots__ = ("id", "port", "description", "module", "user")

    def __init__(self, id: int, port: int, description: str | None,
                 module: str = "unix prog", user: int = NO_USER):
        self._init(id, port, description, module, user)


class Port:
    """Configuration, endpoints and counters of one port.

    ``tagged`` (the VLANs the port carries tagged) is a frozenset, changed
    through :meth:`add_tagged` and :meth:`discard_tagged`; ``drops`` maps
    a cause to its count.  Both start as shared empty objects: most ports
    of a big switch never need their own (memory per port).
    """

    __slots__ = ("number", "endpoints", "_allocatable", "curuser", "acl_user",
                 "acl_group", "vlan", "tagged", "in_pkts", "in_bytes",
                 "out_pkts", "out_bytes", "drops", "on_free")

    def __init__(self, number: int, allocatable: bool = True, on_free=None):
        self.number = number
        self.endpoints: dict[int, Endpoint] = {}
        self._allocatable = allocatable
        self.on_free = on_free           # f(number) when it may have become free
        self.curuser = NO_USER
        self.acl_user = NO_USER
        self.acl_group = NO_USER
        self.vlan = 0                    # untagged VLAN (4095 = none)
        self.tagged: frozenset = _NO_VLANS
        self.reset_counters()

    @property
    def allocatable(self) -> bool:
        """May a client asking for any port get this one?"""
        return self._allocatable

    @allocatable.setter
    def allocatable(self, value: bool) -> None:
        self._allocatable = value
        if value and self.on_free is not None:
            self.on_free(self.number)

    @property
    def active(self) -> bool:
        return bool(self.endpoints)

    def reset_counters(self) -> None:
        self.in_pkts = self.in_bytes = self.out_pkts = self.out_bytes = 0
        self.drops = _NO_DROPS

    def count_drop(self, cause: str, n: int = 1) -> None:
        drops = self.drops
        if drops is _NO_DROPS:
            drops = self.drops = {}
        drops[cause] = drops.get(cause, 0) + n

    def add_tagged(self, vlan: int) -> None:
        if vlan not in self.tagged:
            self.tagged = self.tagged | {vlan}

    def discard_tagged(self, vlan: int) -> None:
        if vlan in self.tagged:
            self.tagged = self.tagged - {vlan}

    def statistics(self) -> dict:
        """A snapshot of the counters, for consoles and scripts."""
        return {"in_pkts": self.in_pkts, "in_bytes": self.in_bytes,
                "out_pkts": self.out_pkts, "out_bytes": self.out_bytes,
                "drops": dict(self.drops)}


class Network:
    """Ports, endpoints and a delivery policy.

    Args:
        numports: number of ports including port 0.
        policy: a name from ``POLICIES`` ("hub", "switch").
        max_frame: longest frame accepted; longer ones are dropped and
            counted (never truncated).
    """

    def __init__(self, numports: int = 32, policy: str = "switch", *,
                 max_frame: int = DEFAULT_MAX_FRAME, **policy_options):
        if numports < 1:
            raise ValueError("numports must be at least 1")
        self.numports = numports
        self.max_frame = max_frame
        self.ports: dict[int, Port] = {}
        # free-port search in constant time: every free port below _scanned
        # is in _free (a heap that may also hold ports taken since)
        self._free: list[int] = []
        self._scanned = 1
        self.unroutable = 0              # frames from ports we do not know
        self.vlans: set[int] = {0}       # VLAN 0 always exists
        self.listeners: list = []        # f(category, message) for debug events
        # f(in_port, frame, outs, now) for every accepted frame, or None (the
        # monitor port and the capture, see io/switch/monitor.py); one check per frame
        self.observer = None
        self.policy = make_policy(policy, self, **policy_options)

    # -- control plane ---------------------------------------------------
    def set_policy(self, name: str, **options) -> None:
        """Replace the delivery policy (learned state is dropped)."""
        self.policy = make_policy(name, self, **options)

    def active_ports(self) -> list[int]:
        return sorted(n for n, p in self.ports.items() if p.endpoints)

    def pick_port(self, want: int | None, user: int = NO_USER) -> int:
        """Choose the port for a new endpoint without attaching it.

        Raises:
            NoFreePort: no port can be allocated, or ``want`` is out of range.
            PortInUse: ``want`` is held by another user or refuses the user.
        """
        if want is None:
            n = self._lowest_free()
            if n is None:
                raise NoFreePort("no free port")
            return n
        if not 0 <= want < self.numports:
            raise NoFreePort("port %d out of range 0..%d" % (want, self.numports - 1))
        port = self.ports.get(want)
        if port is not None and port.endpoints and port.curuser != user:
            raise PortInUse("port %d is held by another user" % want)
        return want

    def _is_free(self, n: int) -> bool:
        port = self.ports.get(n)
        return port is None or (port.allocatable and not port.endpoints)

    def _lowest_free(self) -> int | None:
        """The lowest free port (as a scan from 1 would find), or None."""
        free = self._free
        while free:
            n = free[0]
            if n < self.numports and self._is_free(n):
                return n
            heapq.heappop(free)
        while self._scanned < self.numports:
            n = self._scanned
            self._scanned += 1
            if self._is_free(n):
                heapq.heappush(free, n)
                return n
        return None

    def _maybe_free(self, n: int) -> None:
        if 0 < n < self._scanned:
            heapq.heappush(self._free, n)

    def _new_port(self, number: int, allocatable: bool = True) -> Port:
        port = self.ports[number] = Port(number, allocatable, self._maybe_free)
        return port

    def attach(self, endpoint_id: int, want: int | None, description: str = "",
               *, user: int = NO_USER, module: str = "unix prog") -> Endpoint:
        """Add an endpoint on the chosen port (see :meth:`pick_port`)."""
        number = self.pick_port(want, user)
        port = self.ports.get(number)
        if port is None:
            port = self._new_port(number)
        was_active = port.active
        ep = Endpoint(endpoint_id, number, description, module, user)
        port.endpoints[endpoint_id] = ep
        if not was_active:
            port.curuser = user
            self.policy.port_up(number)
            self.emit("port/+", "%02d" % number)
        if self.listeners:
            self.emit("port/ep/+", "Port %02d FD %2d" % (number, endpoint_id))
            if description:
                self.emit("port/descr", 'Port %02d FD %2d -> "%s"'
                          % (number, endpoint_id, description))
        return ep

    def detach(self, endpoint_id: int, port_no: int) -> bool:
        """Remove an endpoint; return True when that left its port inactive."""
        port = self.ports.get(port_no)
        if port is None or port.endpoints.pop(endpoint_id, None) is None:
            return False
        self.emit("port/ep/-", "Port %02d FD %2d" % (port_no, endpoint_id))
        if port.endpoints:
            return False
        port.curuser = NO_USER
        if port.allocatable:
            self._maybe_free(port_no)
        self.policy.port_down(port_no)
        self.emit("port/-", "%02d" % port_no)
        return True

    def emit(self, category: str, message: str) -> None:
        """Tell the listeners (consoles with ``debug/add``) about an event."""
        for listener in self.listeners:
            listener(category, message)

    def create_port(self, number: int, allocatable: bool = False) -> Port:
        """Make an inactive port, as ``port/create`` does."""
        if number in self.ports:
            raise PortInUse("port %d exists" % number)
        port = self._new_port(number, allocatable)
        if allocatable:
            self._maybe_free(number)
        return port

    def remove_port(self, number: int) -> None:
        """Forget an inactive port and its configuration (``port/remove``).

        Raises:
            KeyError: no such port.  PortInUse: it still has endpoints.
        """
        port = self.ports[number]
        if port.endpoints:
            raise PortInUse("port %d has endpoints" % number)
        del self.ports[number]
        self._maybe_free(number)
        self.policy.config_changed(number)

    def set_numports(self, numports: int) -> None:
        """Resize (``port/setnumports``); ports in use must still fit.

        Raises:
            ValueError: fewer than 1.  PortInUse: an allocated port is beyond it.
        """
        if numports < 1:
            raise ValueError("numports must be at least 1")
        if any(n >= numports for n in self.ports):
            raise PortInUse("a port at or beyond %d is allocated" % numports)
        self.numports = numports
        self._free, self._scanned = [], 1    # rare: search afresh

    def expire(self, now: float) -> None:
        """Timer hook: let the policy forget what is too old."""
        self.policy.expire(now)

    # -- data plane --------------------------------------------------------
    def receive(self, port_no: int, frame: bytes, now: float) -> tuple[int, ...]:
        """A frame came in on ``port_no``: count it, return where it goes.

        The answer is a tuple of egress keys (:mod:`vde_ipn.engine.egress`):
        plain port numbers unless a VLAN needs a tag added or removed.
        """
        port = self.ports.get(port_no)
        if port is None:
            self.unroutable += 1
            return ()
        n = len(frame)
        if n < ETH_HLEN:
            port.count_drop(RUNT)
            return ()
        if n > self.max_frame:
            port.count_drop(OVERSIZE)
            return ()
        port.in_pkts += 1
        port.in_bytes += n
        outs = self.policy.route(port_no, frame, now)
        ports = self.ports
        for out in outs:
            p = ports[out & PORT_MASK]         # egress keys may carry a VLAN rewrite
            p.out_pkts += 1
            p.out_bytes += n
        if self.observer is not None:
            self.observer(port_no, frame, outs, now)
        return outs
