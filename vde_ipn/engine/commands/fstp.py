"""Fast spanning tree commands: fstp/* (the protocol is not available yet)."""

from __future__ import annotations

from ...wire.ethernet import mac_str
from ..console import command, menu, unavailable

menu("fstp", "FAST SPANNING TREE MENU")


@command("fstp/showinfo", "", "show fstp info", data=True)
def _showinfo(ctx, arg):
    prio = ctx.priority
    return ["MAC %s Priority %d (0x%x)" % (mac_str(ctx.macaddr), prio, prio), "FSTP=false"], 0


unavailable("fstp/setfstp", "0/1", "Fast spanning tree protocol 1=ON 0=OFF")
unavailable("fstp/setedge", "VLAN PORT 1/0", "Define an edge port for a vlan 1=Y 0=N")
unavailable("fstp/bonus", "VLAN PORT COST", "set the port bonus for a vlan")
unavailable("fstp/print", "[N]", "print fst data for the defined vlan")
