"""The console command table of the switch (sans-IO).

Commands are looked up as vde_switch does: the first entry of the table
whose path is a prefix of the input line (menu headers skipped), so
``showinfoXYZ`` runs ``showinfo`` and ``port/createauto`` must come
before ``port/create``.  Handlers receive the switch context and the
argument text and return ``(lines_or_None, errno)``; they never write.
Commands this version does not provide yet answer with a data line that
says so and ``1038 Function not implemented``.
"""

from __future__ import annotations

import errno
TYPE_CHECKING = False                    # typing is not loaded at run time (memory)
if TYPE_CHECKING:
    from typing import Callable, Optional

from ...wire.values import FrozenValue


class OutOfRange(ValueError):
    """A number in a console argument does not fit where 2.3.2 stores it
    (see ``commands/_args.py``); answered with ``EINVAL``."""


LOGOUT = "logout"
SHUTDOWN = "shutdown"


class Command(FrozenValue):
    """One console command.  ``handler`` None: a menu header or not
    available; ``action``: LOGOUT / SHUTDOWN; ``data``: always answers
    with a DATA block."""

    __slots__ = ("path", "syntax", "help", "handler", "menu", "action", "data")

    def __init__(self, path: str, syntax: str, help: str,
                 handler: Optional[Callable] = None, menu: bool = False,
                 action: Optional[str] = None, data: bool = False):
        self._init(path, syntax, help, handler, menu, action, data)


class Result(FrozenValue):
    """A command's answer; ``text`` is raw output before the data block."""

    __slots__ = ("lines", "rc", "action", "text")

    def __init__(self, lines: Optional[list], rc: int, action: Optional[str] = None,
                 text: str = ""):
        self._init(lines, rc, action, text)


class Text(str):
    """A handler's raw output, written as is before the status line."""


TABLE: list[Command] = []


def menu(path: str, title: str) -> None:
    TABLE.append(Command(path, "============", title, menu=True))


def command(path: str, syntax: str = "", help: str = "", action: str | None = None,
            data: bool = False):
    """Decorator registering a handler ``f(ctx, arg) -> (lines, rc)``.

    ``data`` commands answer with a DATA block even when they fail (an
    empty one), as vde_switch does; the others only with a status line.
    """
    def deco(f):
        TABLE.append(Command(path, syntax, help, f, action=action, data=data))
        return f
    return deco


def unavailable(path: str, syntax: str, help: str) -> None:
    TABLE.append(Command(path, syntax, help))


#: index in TABLE of the first command 2.3.2 does not have (set by
#: engine/switch/commands/__init__.py); loaded plugins' rows go before it
EXTENSIONS_START = None


def _table(ctx=None) -> list:
    """TABLE with the rows of the plugins ``ctx`` has loaded (2.3.2 lists
    them after its own rows, so they come before our extensions)."""
    extra = ctx.plugin_commands() if hasattr(ctx, "plugin_commands") else ()
    if not extra:
        return TABLE
    cut = len(TABLE) if EXTENSIONS_START is None else EXTENSIONS_START
    return TABLE[:cut] + list(extra) + TABLE[cut:]


def find(line: str, ctx=None) -> Optional[Command]:
    for cmd in _table(ctx):
        if not cmd.menu and line.startswith(cmd.path):
            return cmd
    return None


def execute(ctx, line: str) -> Optional[Result]:
    """Run one console line; None for an empty or comment line."""
    if not line or line.startswith("#"):
        return None
    cmd = find(line, ctx)
    if cmd is None:
        return Result(None, errno.ENOSYS)
    if cmd.handler is None:
        return Result(["%s: not available yet in this version" % cmd.path], errno.ENOSYS)
    arg = line[len(cmd.path):].lstrip(" \t")
    try:
        lines, rc = cmd.handler(ctx, arg)
    except OutOfRange:                   # a number 2.3.2 would have wrapped
        lines, rc = None, errno.EINVAL
    if type(lines) is Text:
        return Result(None, rc, cmd.action, str(lines))
    if cmd.data and lines is None:
        lines = []
    return Result(lines, rc, cmd.action)


def help_lines(prefix: str = "", ctx=None) -> list[str]:
    rows = ["%-18s %-15s %s" % ("COMMAND PATH", "SYNTAX", "HELP"),
            "%-18s %-15s %s" % ("------------", "--------------", "------------")]
    menus = set()
    for cmd in _table(ctx):
        if cmd.menu:
            if cmd.path in menus:
                continue                 # our dump/* after the dump plugin's menu
            menus.add(cmd.path)
        if cmd.path.startswith(prefix):
            rows.append("%-18s %-15s %s" % (cmd.path, cmd.syntax, cmd.help))
    return rows
