"""The AF_IPN emulation: one node class and the parts it is made of.

* :mod:`.node`: :class:`IpnNode` (``IpnSocket``), the socket API and
  options, and the declaration of every attribute of a node;
* :mod:`.membership`: joining, following and leaving a network;
* :mod:`.datapath`: send, receive, readiness and lossless waiting;
* :mod:`.companion`: the companion directory ``.NAME.ipn`` next to the
  socket file (parameters, membership lock, liveness, the id of
  the ``gen`` segment);
  its byte layouts are :mod:`vde_ipn.wire.ipn_layout`;
* :mod:`.ring`: one writer's message ring; :mod:`.shm`: mappings that
  hold no descriptor and the ``gen`` segment; :mod:`.bell`: doorbells and their socket filter;
  :mod:`.macs`: MAC announcements; :mod:`.watch`: the numnodes watch.

Delivery policies (the protocol table) are :mod:`vde_ipn.engine.ipn_policy`.
The permission model is written in :mod:`vde_ipn.ipn` and the README.
"""

from .companion import Companion, companion, set_network_group
from .membership import IPN_FLAG_LOSSLESS
from .node import (IPN_DESCRLEN, IPN_FLAG_EXCL, IPN_FLAG_FLEXMTU, IPN_SO_CHANGE_NUMNODES,
                   IPN_SO_DESCR, IPN_SO_FLAGS, IPN_SO_HANDLE_OOB, IPN_SO_MODE,
                   IPN_SO_MSGPOOLSIZE, IPN_SO_MTU, IPN_SO_NUMNODES, IPN_SO_PORT,
                   IPN_SO_WANT_OOB_NUMNODES, MSG_OOB, IpnNode, IpnSocket, network_path)

__all__ = [
    "Companion", "companion", "set_network_group", "IPN_FLAG_LOSSLESS", "IPN_DESCRLEN",
    "IPN_FLAG_EXCL", "IPN_FLAG_FLEXMTU", "IPN_SO_CHANGE_NUMNODES", "IPN_SO_DESCR",
    "IPN_SO_FLAGS", "IPN_SO_HANDLE_OOB", "IPN_SO_MODE", "IPN_SO_MSGPOOLSIZE", "IPN_SO_MTU",
    "IPN_SO_NUMNODES", "IPN_SO_PORT", "IPN_SO_WANT_OOB_NUMNODES", "MSG_OOB", "IpnNode",
    "IpnSocket", "network_path",
]
