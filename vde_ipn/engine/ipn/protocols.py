"""IPN delivery policies ("protocols" in AF_IPN words) and the protocol table.

An IPN network has no central process: every member that sends runs the
network's policy itself, on its own copy, and the message goes straight
to the receivers the policy picks.  A policy is a class with the hooks
the kernel module's ``struct ipn_protocol`` had (ipn.md section 9); all
of them are optional except :meth:`IpnPolicy.handlemsg`::

    newnet()                      the member's view of the network was made
    newport(used, want) -> port   pick the port of a joining node (-1: none)
    postnewport(port)             a port joined (seen by this member)
    predelport(port)/delport(port) a port is leaving / has left
    resizenet(old, new) -> errno  0 to accept a new number of ports
    delnet()                      this member leaves the network
    handlemsg(port, msg, now)     -> tuple of receiving ports (the hot path)
    learn(port, msg, now)         a message from ``port`` was received here
    setsockopt(opt, value) / getsockopt(opt)   the protocol's own options

``handlemsg`` must never return the sending port and should return
prebuilt tuples; returning ``self.flood`` (the exact object) means
"every receiver but me" and is the cheapest delivery.  ``learn`` runs on
the receiving side, so a switch learns from the frames it receives.  A
policy is sans-IO: time comes in as ``now`` (only when ``needs_clock``).

Register a policy with :func:`ipn_proto_register` (or the ``@protocol``
decorator) under a protocol number; every process that joins the network
must have registered the same class under the same number.
"""

from __future__ import annotations

import errno

IPN_ANY = 0
IPN_BROADCAST = IPN_HUB = 1
IPN_VDESWITCH = 2
IPN_VDESWITCH_L3 = 3
IPN_MAX_PROTO = 4

IPN_PROTOCOLS: dict[int, type] = {}


def ipn_proto_register(number: int, cls: type) -> None:
    """Add ``cls`` as protocol ``number`` (1..4).

    Raises:
        OSError(EINVAL): number out of range.
        OSError(EEXIST): that number is taken by another class.
    """
    if not 1 <= number <= IPN_MAX_PROTO:
        raise OSError(errno.EINVAL, "IPN protocol number must be 1..%d" % IPN_MAX_PROTO)
    old = IPN_PROTOCOLS.get(number)
    if old is not None and old is not cls:
        raise OSError(errno.EEXIST, "IPN protocol %d is registered" % number)
    IPN_PROTOCOLS[number] = cls
    cls.protocol = number


def ipn_proto_deregister(number: int) -> None:
    """Forget protocol ``number`` (networks already open keep their copy)."""
    IPN_PROTOCOLS.pop(number, None)


def protocol(number: int):
    """Class decorator: ``@protocol(4)`` registers the class as protocol 4."""
    def deco(cls):
        ipn_proto_register(number, cls)
        return cls
    return deco


def policy_class(number: int) -> type:
    """The class of protocol ``number``; OSError(EPROTONOSUPPORT) if none."""
    from . import channel_bus, vdeswitch  # noqa: F401  (they register themselves)
    try:
        return IPN_PROTOCOLS[number]
    except KeyError:
        raise OSError(errno.EPROTONOSUPPORT, "no IPN protocol %d" % number) from None


class NetView:
    """What a policy knows of its network, kept current by the member.

    Attributes:
        port: this member's port (-1 while not connected).
        maxports: number of ports of the network.
        readers: sorted tuple of the ports that receive (this one included).
    """

    __slots__ = ("port", "maxports", "readers")

    def __init__(self, maxports: int, port: int = -1, readers: tuple = ()):
        self.port = port
        self.maxports = maxports
        self.readers = readers


class IpnPolicy:
    """Base policy: first-free-slot ports, prebuilt flood tuple, no options."""

    protocol = 0
    needs_clock = False

    def __init__(self, net: NetView):
        self.net = net
        self.flood: tuple[int, ...] = ()

    # -- control plane ---------------------------------------------------
    def newnet(self) -> None:
        self.members_changed()

    def newport(self, used, want: int) -> int:
        """First free slot (``want`` is ignored, as in the kernel's hub)."""
        for port in range(self.net.maxports):
            if port not in used:
                return port
        return -1

    def postnewport(self, port: int) -> None:
        pass

    def predelport(self, port: int) -> None:
        pass

    def delport(self, port: int) -> None:
        pass

    def resizenet(self, old: int, new: int) -> int:
        return 0

    def delnet(self) -> None:
        pass

    def members_changed(self) -> None:
        """The set of readers changed: rebuild the prebuilt tuples."""
        me = self.net.port
        self.flood = tuple(p for p in self.net.readers if p != me)

    def setsockopt(self, opt: int, value) -> None:
        raise OSError(errno.EOPNOTSUPP, "protocol has no options")

    def getsockopt(self, opt: int):
        raise OSError(errno.EOPNOTSUPP, "protocol has no options")

    # -- data plane ------------------------------------------------------
    def handlemsg(self, port: int, msg: bytes, now: float) -> tuple[int, ...]:
        raise NotImplementedError

    def learn(self, port: int, msg: bytes, now: float) -> None:
        pass


@protocol(IPN_BROADCAST)
class Broadcast(IpnPolicy):
    """IPN_BROADCAST: every message to every receiver but the sender."""

    def handlemsg(self, port: int, msg: bytes, now: float) -> tuple[int, ...]:
        return self.flood


def floods_only(policy: IpnPolicy) -> bool:
    """True when the policy sends every message to every receiver (a hub)."""
    return type(policy).handlemsg is Broadcast.handlemsg


def has_learn(policy: IpnPolicy) -> bool:
    """True when the policy wants :meth:`IpnPolicy.learn` called on receive."""
    return type(policy).learn is not IpnPolicy.learn
