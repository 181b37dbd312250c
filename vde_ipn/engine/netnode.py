"""Policies of vdeplug4's multilink nodes: ``multi`` and ``bonding``.

One port, the *host* (the process that opened ``multi://`` or
``bonding://``), faces many *links* (the clients that joined the node's
control directory).  Links never hear each other:

* ``multi``: a frame from the host goes out on every link (a link being
  replaced by another is never a gap, at the price of duplicates while
  both are up); a frame from any link goes to the host;
* ``bonding``: a frame from the host goes out on one link, each frame on
  the next one in turn (round robin); a frame from any link goes to the host.
"""

from __future__ import annotations

from .policy import Policy, register


class _HostPolicy(Policy):
    def __init__(self, net, host: int = 1):
        self.host = host
        self.to_host: tuple[int, ...] = ()
        self.links: tuple[int, ...] = ()
        super().__init__(net)

    def _rebuild(self) -> None:
        active = self.net.active_ports()
        self.links = tuple(p for p in active if p != self.host)
        self.to_host = (self.host,) if self.host in active else ()
        self.flood = {}


@register("multi")
class Multi(_HostPolicy):
    def route(self, port: int, frame: bytes, now: float) -> tuple[int, ...]:
        return self.links if port == self.host else self.to_host


@register("bonding")
class Bonding(_HostPolicy):
    def __init__(self, net, host: int = 1):
        self.turn = 0
        super().__init__(net, host)

    def route(self, port: int, frame: bytes, now: float) -> tuple[int, ...]:
        if port != self.host:
            return self.to_host
        links = self.links
        if not links:
            return ()
        self.turn = (self.turn + 1) % len(links)
        return (links[self.turn],)
