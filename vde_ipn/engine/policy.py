"""Delivery policies: who gets a frame that came in on a port.

A policy is a small object with the hooks the AF_IPN protocols had::

    port_up(port)          a port got its first endpoint
    port_down(port)        a port lost its last endpoint
    route(port, frame, now) -> tuple of ports   (the per-frame path)
    expire(now)            periodic housekeeping (MAC aging...)

``route`` must never return the ingress port and should return prebuilt
tuples: it runs once per frame.  Register new policies in ``POLICIES``.
"""

from __future__ import annotations

POLICIES: dict[str, type] = {}


def register(name: str):
    """Class decorator adding a policy to ``POLICIES`` under ``name``."""
    def deco(cls):
        POLICIES[name] = cls
        cls.name = name
        return cls
    return deco


def make_policy(name: str, net, **options):
    # importing here keeps bus -> policy -> hub/switch -> policy acyclic
    from . import hub, netnode, switch  # noqa: F401  (they register themselves)
    try:
        cls = POLICIES[name]
    except KeyError:
        raise ValueError("unknown delivery policy %r (known: %s)"
                         % (name, ", ".join(sorted(POLICIES)))) from None
    return cls(net, **options)


class Policy:
    """Base class: keeps per-port flood tuples ("every active port but me")."""

    name = "?"

    def __init__(self, net):
        self.net = net
        self.flood: dict[int, tuple[int, ...]] = {}
        self._rebuild()

    def _members(self) -> list[int]:
        return self.net.active_ports()

    def _rebuild(self) -> None:
        members = self._members()
        self.flood = {p: tuple(q for q in members if q != p) for p in self.net.ports}

    def port_up(self, port: int) -> None:
        self._rebuild()

    def port_down(self, port: int) -> None:
        self._rebuild()

    def config_changed(self, port: int | None = None) -> None:
        """A port's configuration (VLANs...) or the port set changed."""
        self._rebuild()

    def expire(self, now: float) -> None:
        pass

    def route(self, port: int, frame: bytes, now: float) -> tuple[int, ...]:
        raise NotImplementedError
