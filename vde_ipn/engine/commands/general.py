"""General commands: ds, help, logout, shutdown, showinfo, load, debug, plugin."""

from __future__ import annotations

import errno

from ...wire.ethernet import mac_str
from ...wire.mgmt import BANNER
from ..console import LOGOUT, SHUTDOWN, command, help_lines, menu, unavailable

OK = 0

menu("ds", "DATA SOCKET MENU")


@command("ds/showinfo", "", "show ds info", data=True)
def _ds_showinfo(ctx, arg):
    return ["ctl dir %s" % ctx.dir, "std mode 0%03o" % ctx.mode], OK


@command("help", "[arg]", "Help (limited to arg when specified)", data=True)
def _help(ctx, arg):
    return help_lines(arg.strip()), OK


@command("logout", "", "logout from this mgmt terminal", action=LOGOUT)
def _logout(ctx, arg):
    return None, OK


@command("shutdown", "", "shutdown of the switch", action=SHUTDOWN)
def _shutdown(ctx, arg):
    return None, OK


@command("showinfo", "", "show switch version and info", data=True)
def _showinfo(ctx, arg):
    lines = BANNER.split("\n")           # header, copyright, ""
    lines.append("pid %d MAC %s uptime %d" % (ctx.pid, mac_str(ctx.macaddr), ctx.uptime()))
    if ctx.mgmt:
        lines.append("mgmt %s perm 0%03o" % (ctx.mgmt, ctx.mgmtmode))
    return lines, OK


unavailable("load", "path", "load a configuration script")

# debug categories: (path, octal tag, help)
DEBUG_CATEGORIES = (
    ("hash/+", 0o11, "hash: new element"),
    ("hash/-", 0o12, "hash: discarded element"),
    ("fstp/status", 0o44, "fstp: status change"),
    ("fstp/root", 0o45, "fstp: rootswitch/port change"),
    ("fstp/+", 0o41, "fstp: port becomes active"),
    ("fstp/-", 0o42, "fstp: port becomes inactive"),
    ("port/+", 0o21, "new port"),
    ("port/-", 0o22, "closed port"),
    ("port/descr", 0o23, "set port description"),
    ("port/ep/+", 0o31, "new endpoint"),
    ("port/ep/-", 0o32, "closed endpoint"),
)

menu("debug", "DEBUG MENU")


@command("debug/list", "", "list debug categories", data=True)
def _debug_list(ctx, arg):
    prefix = arg.strip()
    rows = [(p, t, h) for p, t, h in DEBUG_CATEGORIES if p.startswith(prefix)]
    on = getattr(ctx, "debug_on", lambda path: False)
    lines = ["%-22s %-3s %-6s %s" % ("CATEGORY", "TAG", "STATUS", "HELP"),
             "%-22s %-3s %-6s %s" % ("------------", "---", "------", "----")]
    lines += ["%-22s %03o %-6s %s" % (p, t, "ON" if on(p) else "OFF", h) for p, t, h in rows]
    return lines, (OK if rows else errno.ENOENT)


unavailable("debug/add", "dbgpath", "enable debug info for a given category")
unavailable("debug/del", "dbgpath", "disable debug info for a given category")

menu("plugin", "PLUGINS MENU")


@command("plugin/list", "", "list plugins", data=True)
def _plugin_list(ctx, arg):
    # no loadable plugins: the header and "none", as a switch without plugins
    return ["%-22s %s" % ("NAME", "HELP"), "%-22s %s" % ("------------", "----")], errno.ENOENT


unavailable("plugin/add", "library", "load a plugin")
unavailable("plugin/del", "name", "unload a plugin")
