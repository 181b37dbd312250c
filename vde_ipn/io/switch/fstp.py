"""The I/O side of the fast spanning tree, a mixin of the switch server.

The engine's :class:`~vde_ipn.engine.switch.fstp.Fstp` decides; this sends what it
returns through the senders table (egress keys tag the copies for tagged
members) and runs the hello timer, every ``HELLO`` (4) seconds as
vde_switch does.  The server provides ``fstp``, ``net``, ``loop``,
``senders``, ``_hello`` (timer handle or None) and ``_held`` (None).
"""

from __future__ import annotations

import contextlib

from ...engine.egress import port_of
from ...engine.switch.fstp import HELLO


class FstpIO:
    def set_fstp(self, on: bool) -> None:
        """Start or stop FSTP: BPDUs every ``HELLO`` seconds while on."""
        self._send_bpdus(self.fstp.set_enabled(on, self.loop.clock()))
        self.net.policy.config_changed(None)   # install or remove the FSTP path
        if on and self._hello is None:
            self._hello = self.loop.call_every(HELLO, self._on_hello)
        elif not on and self._hello is not None:
            self.loop.cancel(self._hello)
            self._hello = None

    def _on_hello(self, now: float) -> None:
        self._send_bpdus(self.fstp.hello(now))

    @contextlib.contextmanager
    def _holding_bpdus(self):
        """Keep the BPDUs a joining port causes until its endpoint can send:
        the first one goes to that very port (as in 2.3.2, which links the
        endpoint before telling FSTP)."""
        self._held = []
        try:
            yield
        finally:
            held, self._held = self._held, None
            self._send_bpdus(held)

    def _send_bpdus(self, out: list) -> None:
        """Send ``(egress key, frame)`` pairs, counted as the port's output."""
        if self._held is not None:
            self._held.extend(out)
            return
        ports, senders = self.net.ports, self.senders
        for key, frame in out:
            port = ports.get(port_of(key))
            if port is None:
                continue
            port.out_pkts += 1
            port.out_bytes += len(frame) + (0 if key == port.number else 4)
            for send in senders[key]:
                send(frame)
