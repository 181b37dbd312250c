"""IPN_VDESWITCH: kvde_switch (ipn.md section 10) on the userland switch's MAC table.

Each member learns source MACs from the frames it receives (the sending
port is known from the ring the frame came on) and from what the senders
announce they sent from (so a member that never receives knows them too:
one table per network, as in the kernel), sends known unicast to one port
and floods the rest.  Entries live 30 s.  A frame for a MAC
learned on the sender's own port is dropped (the kernel echoed it back
to the sender).  No VLANs: every MAC is keyed on VLAN 0.
"""

from __future__ import annotations

from .protocols import IPN_VDESWITCH, IpnPolicy, protocol
from ..mac_table import MacTable
from ...wire.ethernet import ETH_HLEN

KVDE_EXPIRE = 30.0                       # kvde_switch entry lifetime


@protocol(IPN_VDESWITCH)
class VdeSwitch(IpnPolicy):
    """kvde_switch: learning switch without VLANs (key VLAN 0)."""

    needs_clock = True

    def __init__(self, net, expire: float = KVDE_EXPIRE):
        super().__init__(net)
        self.table = MacTable()
        self._macs = self.table.vlans.setdefault(0, {})
        self.expire_after = expire
        self._single: dict[int, tuple[int]] = {}

    def share_table(self, other: "VdeSwitch") -> None:
        """Learn into ``other``'s MAC table from now on (and forget ours).

        Members living in one process (the ports a kvde_switch holds for
        its VDE clients) then switch as one table, as the kernel's did:
        what any of them received or sent teaches all of them.
        """
        self.table = other.table
        self._macs = other._macs

    def members_changed(self) -> None:
        super().members_changed()
        self._single = {p: (p,) for p in self.net.readers}

    def delport(self, port: int) -> None:
        self.table.forget_port(port)

    def learn(self, port: int, frame: bytes, now: float) -> None:
        if len(frame) >= ETH_HLEN and not frame[6] & 1:
            self.table.learn(self._macs, 0, frame[6:12], port, now)

    announces = True                     # senders publish their source MACs

    def learn_mac(self, port: int, mac: bytes, when: float) -> None:
        """``port`` sent from ``mac`` at ``when`` (told by the port itself)."""
        e = self._macs.get(mac)
        if e is None:
            self._macs[mac] = [port, when]
        elif when >= e[1]:
            e[0] = port
            e[1] = when

    def handlemsg(self, port: int, frame: bytes, now: float) -> tuple[int, ...]:
        if len(frame) < ETH_HLEN:
            return ()
        if not frame[0] & 1:
            e = self._macs.get(frame[0:6])
            if e is not None:
                if now - e[1] <= self.expire_after:
                    out = self._single.get(e[0])
                    if out is not None:
                        return () if e[0] == port else out
                del self._macs[frame[0:6]]
        return self.flood
