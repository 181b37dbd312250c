"""``ipn://PATH``: a plug that is a node of an IPN network.

Joins the network at PATH (a socket file made by ``vde_ipn.ipn``'s
``bind``, or a kvde_switch directory) through the public socket API,
:mod:`vde_ipn.ipn`, as a port of its own; the network's policy (hub,
switch...) and its permission bits apply as to any node.  Any tool of
ours then reaches it: ``vde_plug ipn:///tmp/bus /tmp/sw`` cables it to a
switch.
"""

from __future__ import annotations

import errno
import socket

from ..._errors import ConnectError
from .endpoints import Plug


class IpnNode:
    """The data object of an ``ipn://`` plug."""

    module = "ipn"

    def __init__(self, path: str):
        from ... import ipn               # the public API (it imports this layer)
        self.sock = ipn.socket(ipn.IPN_BROADCAST)   # adopts the network's protocol
        try:
            self.sock.connect(path)
        except BaseException:
            self.sock.close()
            raise
        self.send = self.sock.send

    def recv(self, bufsize: int) -> bytes:
        return self.sock.recv(bufsize, socket.MSG_DONTWAIT)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()


def open_ipn_plug(arg, **_) -> Plug:
    """``ipn://PATH``: see the module docstring."""
    if not arg:
        raise ConnectError(errno.EINVAL, "ipn:// needs the path of a network")
    try:
        return Plug(IpnNode(arg), None, scheme="ipn")
    except OSError as e:
        raise ConnectError(e.errno or errno.EIO, "ipn://%s: %s"
                           % (arg, e.strerror or e)) from None
