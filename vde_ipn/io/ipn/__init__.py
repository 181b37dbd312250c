"""The AF_IPN emulation: one node class and the parts it is made of.

* :mod:`.node`: :class:`IpnNode` (``IpnSocket``), the socket API and
  options, and the declaration of every attribute of a node;
* :mod:`.membership`: joining, following and leaving a network;
* :mod:`.datapath`: send, receive, readiness and lossless waiting;
* :mod:`.companion`: the companion directory ``.NAME.ipn`` next to the
  socket file (parameters, port claims, liveness, the id of
  the ``gen`` segment);
  its byte layouts are :mod:`vde_ipn.wire.ipn_layout`;
* :mod:`.ring`: one writer's message ring; :mod:`.shm`: the System V
  segments that hold rings, cursor words and the ``gen`` word;
  :mod:`.bell`: doorbells and their socket filter;
  :mod:`.macs`: MAC announcements; :mod:`.watch`: the numnodes watch;
  :mod:`.follow`: following ``chgrp``/``chmod`` of the socket file.

Delivery policies (the protocol table) are :mod:`vde_ipn.engine.ipn.protocols`.

The permission model.  The socket file's bits mean r = receive, w =
send, x = manage; owner, group and others each get exactly their bits,
and the kernel enforces them on every part of the network, so a program
that bypasses this library gets no more:

* r: attach (read-only) the senders' rings; create one's own cursor words;
* w: create one's own ring and MAC list; attach (read-only) the
  receivers' cursor words (their progress and doorbell secrets);
* x: ``bind`` the existing network, resize it (rewrite ``net``); x alone
  opens and attaches no ring and no cursor words;
* any bit: one's own doorbell socket in ``n/``, a port claim in ``p/``,
  the ``gen`` segment, the ``live`` lock.

Owners and modes (:func:`vde_ipn.wire.ipn_layout.derived_modes` derives
every mode from the socket file's bits):

* the creator owns the companion directory, its setgid and sticky
  subdirectories ``n/ w/ c/ m/ p/``, ``net``, ``live``, and
  ``gen`` with its segment; all take the socket file's group;
* each member owns its doorbell socket, its MAC list, and its ring
  ``w/P.I`` and cursor words ``c/P.I``: files that name a System V
  segment, which carries the file's permission bits and group.  Before
  attaching another member's memory a member checks that the segment was
  created by the file's owner and has the size expected, and attaches it
  read-only.  A segment's size is fixed, so a member truncating or
  removing (``IPC_RMID``) its own memory hurts nobody attached to it
  (no SIGBUS).  Cursor words are marked for removal at once; a ring when
  its writer leaves (with a copy in its file if a receiver had not
  attached it yet); a killed writer's ring stays until a member of its
  user (or root) sweeps it, or the network ends;
* ``chgrp``/``chmod`` of the socket file are followed: every process
  with a member watches its networks' socket files (inotify) and gives
  the parts and segments it owns the new group and derived modes (a
  join waits up to ``FOLLOW_WAIT`` s for that).

What arrives is checked by the kernel: a doorbell socket's filter passes
only datagrams carrying the node's secret, found in its cursor words
(readable with w), or, only while the node waits in a lossless send, the
wait secret its ring shows its receivers; numnodes messages come from
the node's own watch thread, which recounts the members when ``gen``
moves, and no datagram can forge one.

What the emulation cannot do, having no kernel of its own:

* a member with w knows every receiver's doorbell secret (a sender must)
  and can ring it without sending: ``select`` then says readable and a
  blocking ``recv`` waits;
* a writer may fill its own ring with garbage for its receivers;
* System V gives a segment's group rights also to the creator's primary
  group: a user in a member's primary group but not the network's gets
  the network's group rights on that member's memory;
* any member can hold ``live`` (a dead network stays alive), take the
  claim ``p/PORT`` of a port whose member left, and bind extra sockets in
  ``n/``: both count as ports.  Nothing else it can hold stops a join:
  there is no global membership lock (a node claims its port with a flock
  on ``p/PORT``, publishes its parts, doorbell last, and gives ``gen`` a
  new value; see :mod:`.companion`);
* parts whose owner has left follow ``chgrp``/``chmod`` only when another
  process of that user (or root) is a member, and a process that gets no
  inotify instance (``fs.inotify.max_user_instances``) follows nothing;
* every member uses two segments and every network one, against the
  machine's limit (``kernel.shmmni``, 4096 by default).
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
