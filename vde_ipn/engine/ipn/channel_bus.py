"""An example policy, written the way a user would write one.

``ChannelBus`` is a MIDI-like bus: the low nibble of a channel status
byte (0x80..0xEF) picks the receivers.  A receiver asks for port N
(``IPN_SO_PORT`` before connect) to hear channel N; ports 16 and up hear
every channel ("omni"); system and running-status bytes go to everyone.
It is protocol 4 (``IPN_CHANNEL``), the free AF_IPN slot.  The whole
recipe for a policy is::

    @protocol(NUMBER)
    class MyPolicy(IpnPolicy):
        def newport(self, used, want): ...        # optional: pick ports
        def members_changed(self): ...            # prebuild tuples
        def handlemsg(self, port, msg, now): ...  # -> tuple of ports

Every process joining the network must import the module that
registers the class (here ``vde_ipn.engine.ipn.channel_bus``).
"""

from __future__ import annotations

from .protocols import IpnPolicy, protocol

IPN_CHANNEL = 4
CHANNELS = 16


@protocol(IPN_CHANNEL)
class ChannelBus(IpnPolicy):
    """Deliver by channel byte, as a MIDI bus would (see the module doc)."""

    def __init__(self, net):
        super().__init__(net)
        self.by_channel: tuple[tuple[int, ...], ...] = ((),) * CHANNELS

    def newport(self, used, want: int) -> int:
        if 0 <= want < self.net.maxports and want not in used:
            return want
        return super().newport(used, want)

    def members_changed(self) -> None:
        super().members_changed()
        others = self.flood
        self.by_channel = tuple(tuple(p for p in others if p == ch or p >= CHANNELS)
                                for ch in range(CHANNELS))

    def handlemsg(self, port: int, msg: bytes, now: float) -> tuple[int, ...]:
        if msg and 0x80 <= msg[0] < 0xF0:
            return self.by_channel[msg[0] & 0x0F]
        return self.flood
