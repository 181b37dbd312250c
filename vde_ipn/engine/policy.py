"""Delivery policies: who gets a frame that came in on a port.

A policy is a small object with the hooks the AF_IPN protocols had::

    port_up(port)          a port got its first endpoint
    port_down(port)        a port lost its last endpoint
    route(port, frame, now) -> tuple of ports   (the per-frame path)
    expire(now)            periodic housekeeping (MAC aging...)

``route`` must never return the ingress port and should return prebuilt
tuples: it runs once per frame.  Register new policies in ``POLICIES``.

Per-port answers are built lazily (:class:`LazyTable`) and forgotten when
the ports change, so a port joining or leaving costs the same with ten
ports or ten thousand: the work of building "every port but me" is paid
by the first frame that needs it, which walks every port anyway.
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
    from . import hub, netnode  # noqa: F401  (they register themselves)
    from .switch import learning  # noqa: F401  (they register themselves)
    try:
        cls = POLICIES[name]
    except KeyError:
        raise ValueError("unknown delivery policy %r (known: %s)"
                         % (name, ", ".join(sorted(POLICIES)))) from None
    return cls(net, **options)


class LazyTable(dict):
    """A dict whose missing entries are computed by ``build(key)`` and kept.

    A hit costs what a plain dict lookup costs; ``clear()`` forgets
    everything computed so far.
    """

    __slots__ = ("build",)

    def __init__(self, build):
        super().__init__()
        self.build = build

    def __missing__(self, key):
        value = self[key] = self.build(key)
        return value


class Policy:
    """Base class: per-port flood tuples ("every active port but me"), lazily."""

    name = "?"

    def __init__(self, net):
        self.net = net
        self._order: tuple | None = None     # the members, ascending, once asked for
        self.flood: dict[int, tuple[int, ...]] = LazyTable(self._flood_for)
        self._rebuild()

    def _members(self) -> list[int]:
        return self.net.active_ports()

    def _flood_for(self, port: int) -> tuple[int, ...]:
        if port not in self.net.ports:
            return ()
        if self._order is None:
            self._order = tuple(self._members())
        return tuple(q for q in self._order if q != port)

    def _rebuild(self) -> None:
        self._order = None
        self.flood.clear()

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
