"""General commands: ds, help, logout, shutdown, showinfo, load, debug, plugin."""

from __future__ import annotations

import errno

from ....wire.ethernet import mac_str
from ....wire.mgmt import BANNER, response, script_lines
from ..console import LOGOUT, SHUTDOWN, Text, command, execute, help_lines, menu
from . import plugins

OK = 0

menu("ds", "DATA SOCKET MENU")


@command("ds/showinfo", "", "show ds info", data=True)
def _ds_showinfo(ctx, arg):
    return ["ctl dir %s" % ctx.dir, "std mode 0%03o" % ctx.mode], OK


@command("help", "[arg]", "Help (limited to arg when specified)", data=True)
def _help(ctx, arg):
    return help_lines(arg.strip(), ctx), OK


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


LOAD_DEPTH_MAX = 8                       # scripts loading scripts: a loop ends here


@command("load", "path", "load a configuration script")
def _load(ctx, arg):
    """Run a script, echoing each line as ``vde[PATH]: line`` before its answer."""
    path = arg.strip()
    depth = getattr(ctx, "load_depth", 0)
    if depth >= LOAD_DEPTH_MAX:
        return None, errno.ELOOP
    try:
        data = ctx.read_script(path)
    except OSError as e:
        return None, e.errno or errno.EIO
    out = []
    ctx.load_depth = depth + 1
    try:
        for raw in script_lines(data):
            line = raw.decode("utf-8", "replace")
            out.append("vde[%s]: %s\n" % (path, line))
            res = execute(ctx, line.lstrip(" \t"))
            if res is not None and res.action is None:
                out.append(response(res.lines, res.rc, res.text))
    finally:
        ctx.load_depth = depth
    return Text("".join(out)), OK


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
    rows = [(p, t, h) for p, t, h in _categories(ctx) if p.startswith(prefix)]
    subs = getattr(ctx, "debug_subscriptions", ())
    lines = ["%-22s %-3s %-6s %s" % ("CATEGORY", "TAG", "STATUS", "HELP"),
             "%-22s %-3s %-6s %s" % ("------------", "---", "------", "----")]
    lines += ["%-22s %03o %-6s %s" % (p, t, "ON" if p in subs else "OFF", h) for p, t, h in rows]
    return lines, (OK if rows else errno.ENOENT)


TAGS = {path: tag for path, tag, _help in DEBUG_CATEGORIES}
TAGS.update(plugins.TAGS)


def _categories(ctx):
    """The switch's debug categories, then those of the loaded plugins."""
    return list(DEBUG_CATEGORIES) + plugins.debug_categories(ctx)


def _matching(ctx, arg):
    prefix = arg.strip()
    return [p for p, _t, _h in _categories(ctx) if p.startswith(prefix)]


@command("debug/add", "dbgpath", "enable debug info for a given category")
def _debug_add(ctx, arg):
    paths = _matching(ctx, arg)
    if not paths:
        return None, errno.EINVAL
    subs = ctx.debug_subscriptions
    new = [p for p in paths if p not in subs]
    if not new:
        return None, errno.EEXIST
    subs.update(new)
    return None, OK


@command("debug/del", "dbgpath", "disable debug info for a given category")
def _debug_del(ctx, arg):
    paths = _matching(ctx, arg)
    if not paths:
        return None, errno.EINVAL
    subs = ctx.debug_subscriptions
    on = [p for p in paths if p in subs]
    if not on:
        return None, errno.ENOENT
    subs.difference_update(on)
    return None, OK


menu("plugin", "PLUGINS MENU")


@command("plugin/list", "", "list plugins", data=True)
def _plugin_list(ctx, arg):
    prefix = arg.strip()
    lines = ["%-22s %s" % ("NAME", "HELP"), "%-22s %s" % ("------------", "----")]
    rc = errno.ENOENT
    for name in getattr(ctx, "plugins", ()):
        if name.startswith(prefix):
            lines.append("%-22s %s" % (name, plugins.PLUGINS[name].help))
            rc = OK
    return lines, rc


@command("plugin/add", "library", "load a plugin")
def _plugin_add(ctx, arg):
    if not arg.strip():
        return None, errno.EINVAL        # dlopen("") is the switch itself: no plugin in it
    name = plugins.plugin_name(arg)
    if name is None:
        return None, errno.ENOENT
    if name in ctx.plugins:
        return None, errno.EEXIST
    ctx.plugin_add(name)
    return None, OK


@command("plugin/del", "name", "unload a plugin")
def _plugin_del(ctx, arg):
    prefix = arg.strip()
    for name in list(getattr(ctx, "plugins", ())):
        if name.startswith(prefix):
            ctx.plugin_del(name)
            return None, OK
    return None, errno.ENOENT
