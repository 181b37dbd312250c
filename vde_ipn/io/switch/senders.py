"""Where frames go out: egress key -> the send functions of its endpoints.

A plain port number maps to the ``send`` of each endpoint on that port,
kept current by the switch as endpoints come and go.  An egress key that
carries a VLAN rewrite (see :mod:`vde_ipn.engine.egress`) is derived on
first use from its port's entry, so untagged-only networks never pay
for VLAN support.
"""

from __future__ import annotations

from ...engine.egress import port_of, rewrite


def _rewriting(send, key):
    def send_rewritten(frame: bytes) -> None:
        send(rewrite(key, frame))
    return send_rewritten


class SenderTable(dict):
    """``{egress key: (send, ...)}``; missing rewrite keys are built lazily."""

    __slots__ = ("_derived",)

    def __init__(self):
        super().__init__()
        self._derived: dict[int, list] = {}   # port -> rewrite keys built from it

    def __missing__(self, key: int) -> tuple:
        port = port_of(key)
        if port == key:
            return ()                    # a port with no endpoint (yet)
        sends = tuple(_rewriting(send, key) for send in self[port])
        self[key] = sends
        self._derived.setdefault(port, []).append(key)
        return sends

    def set_port(self, port: int, sends: tuple) -> None:
        """Replace a port's senders and forget the rewrites derived from them."""
        for key in self._derived.pop(port, ()):
            self.pop(key, None)
        if sends:
            self[port] = sends
        else:
            self.pop(port, None)
