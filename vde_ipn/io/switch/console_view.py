"""What the console commands may change on a running switch.

A mixin of :class:`~vde_ipn.io.switch.server.SwitchServer`: the engine's command
handlers see the server through these methods only (see
``vde_ipn/engine/switch/commands/__init__.py`` for the whole context contract).
"""

from __future__ import annotations

import grp
import pwd


class ConsoleView:
    @property
    def priority(self) -> int:
        return self.config.priority

    @property
    def fstp_on(self) -> bool:
        return self.fstp.enabled

    def set_fstp_edge(self, vlan: int, port: int, on: bool) -> None:
        """``fstp/setedge``: an edge port neither sends nor hears BPDUs."""
        self.fstp.set_edge(vlan, port, on)

    def set_fstp_bonus(self, vlan: int, port: int, cost: int) -> None:
        """``fstp/bonus``: BPDUs heard on ``port`` count ``cost`` less."""
        self.fstp.set_bonus(vlan, port, cost)

    def fstp_print(self, vlan: int) -> list[str]:
        """``fstp/print`` lines of one VLAN."""
        return self.fstp.print_lines(vlan, self.loop.clock())

    def set_hash(self, name: str, value: int) -> None:
        """``hash/set*``: size (flushes the table), gcint, expire, minper."""
        c = self.config
        if name == "size":
            c.hashsize = value
            table = getattr(self.net.policy, "table", None)
            if table is not None:
                table.clear()
        elif name == "gcint":
            c.gcint = value
            if self._gc is not None:
                self.loop.cancel(self._gc)
                self._gc = self.loop.call_every(max(value, 1), self.expire)
        elif name == "expire":
            c.expire = value
        elif name == "minper":
            c.minper = value
        else:
            raise ValueError("unknown hash setting %r" % name)
        self._tune_policy()

    @staticmethod
    def lookup_user(name: str) -> int | None:
        """The uid of the user called ``name``; None if there is none."""
        try:
            return pwd.getpwnam(name).pw_uid
        except (KeyError, ValueError):   # ValueError: a NUL in the name
            return None

    @staticmethod
    def lookup_group(name: str) -> int | None:
        """The gid of the group called ``name``; None if there is none."""
        try:
            return grp.getgrnam(name).gr_gid
        except (KeyError, ValueError):
            return None
