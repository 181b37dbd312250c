"""The hub policy: every frame to every other active port (never port 0)."""

from __future__ import annotations

from .policy import Policy, register


@register("hub")
class Hub(Policy):
    def _members(self) -> list[int]:
        return [p for p in self.net.active_ports() if p != 0]

    def route(self, port: int, frame: bytes, now: float) -> tuple[int, ...]:
        return self.flood[port]
