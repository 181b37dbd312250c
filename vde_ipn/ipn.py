"""Inter Process Networking: AF_IPN's socket API, without a kernel module.

Processes join a named network (a socket file) and every message one of
them sends is delivered to the others by the network's policy::

    from vde_ipn import ipn
    with ipn.socket(ipn.IPN_BROADCAST) as s:
        s.connect("/tmp/bus")          # r/w bits of the file: receive/send
        s.send(b"hello")               # to every other member
        print(s.recv(1514))

``bind`` creates a network (``IPN_SO_*`` pre-bind options shape it first),
``connect`` joins one as a port.  Semantics and errors follow the AF_IPN
module (ipn.md); where an emulation has to differ, the modules under
``vde_ipn.io.ipn`` say so.  Policies: ``IPN_BROADCAST`` (hub),
``IPN_VDESWITCH`` (kvde_switch) and the example ``IPN_CHANNEL``; write
your own with :func:`vde_ipn.engine.ipn.protocols.protocol`.

Socket semantics: ``fileno()`` is readable exactly when ``recv`` has a
message or OOB message to return (``select``, ``poll``, ``epoll``,
``selectors``, asyncio); a socket may be shared by threads; SOL_SOCKET
options (``SO_RCVTIMEO``, ``SO_SNDTIMEO``, ``SO_TYPE``...) come before the
IPN levels, as in the kernel.  x86 only: elsewhere ``socket()`` raises
OSError(EAFNOSUPPORT).

Permissions.  The socket file's bits mean r = receive, w = send, x =
manage, and the kernel enforces them on the companion directory and the
shared memory, for every class (owner, group, others) separately:

* r: read the senders' rings, create one's own cursor words;
* w: create one's own ring, read the receivers' cursor words;
* x: ``bind`` the existing network and resize it; no ring or cursor
  words are readable with x alone;
* any bit: one's own doorbell socket in ``n/``.

Per-member memory is a System V segment (fixed size: nobody can shrink
it under the others) named by a file its member owns in a sticky
directory; ``chgrp``/``chmod`` of the socket file are followed.  The
whole model, and what the emulation cannot enforce, is in
:mod:`vde_ipn.io.ipn` and the README.
"""

from __future__ import annotations

from .engine.ipn.channel_bus import IPN_CHANNEL
from .engine.ipn.protocols import (IPN_ANY, IPN_BROADCAST, IPN_HUB, IPN_VDESWITCH,
                                IPN_VDESWITCH_L3, IpnPolicy, ipn_proto_deregister,
                                ipn_proto_register, protocol)
from .io.ipn import IPN_FLAG_LOSSLESS, set_network_group
from .io.ipn import (IPN_DESCRLEN, IPN_FLAG_EXCL, IPN_FLAG_FLEXMTU,
                            IPN_SO_CHANGE_NUMNODES, IPN_SO_DESCR, IPN_SO_FLAGS,
                            IPN_SO_HANDLE_OOB, IPN_SO_MODE, IPN_SO_MSGPOOLSIZE, IPN_SO_MTU,
                            IPN_SO_NUMNODES, IPN_SO_PORT, IPN_SO_WANT_OOB_NUMNODES, MSG_OOB,
                            IpnSocket)
from .wire.ipn_layout import IPN_OOB_NUMNODE_TAG, decode_numnode_oob

AF_IPN = PF_IPN = 13
IPN_PORTNO_ANY = -1


def socket(protocol: int = IPN_BROADCAST) -> IpnSocket:
    """A new, unbound IPN socket; OSError(EPROTONOSUPPORT) for protocol > 4."""
    return IpnSocket(protocol)


__all__ = [
    "AF_IPN", "PF_IPN", "IPN_ANY", "IPN_BROADCAST", "IPN_HUB", "IPN_VDESWITCH",
    "IPN_VDESWITCH_L3", "IPN_CHANNEL", "IPN_PORTNO_ANY", "IPN_DESCRLEN",
    "IPN_FLAG_LOSSLESS", "IPN_FLAG_EXCL", "IPN_FLAG_FLEXMTU", "IPN_OOB_NUMNODE_TAG",
    "IPN_SO_PORT", "IPN_SO_DESCR", "IPN_SO_CHANGE_NUMNODES", "IPN_SO_HANDLE_OOB",
    "IPN_SO_WANT_OOB_NUMNODES", "IPN_SO_MTU", "IPN_SO_NUMNODES", "IPN_SO_MSGPOOLSIZE",
    "IPN_SO_FLAGS", "IPN_SO_MODE", "MSG_OOB", "IpnSocket", "IpnPolicy", "socket",
    "protocol", "ipn_proto_register", "ipn_proto_deregister", "decode_numnode_oob",
    "set_network_group",
]
