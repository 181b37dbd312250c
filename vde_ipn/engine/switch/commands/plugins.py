"""vde_switch 2.3.2's plugins, built in: ``dump``, ``pdump`` and ``iplog``.

``plugin/add NAME`` (or a path to 2.3.2's ``NAME.so``) makes a plugin's
commands and debug categories appear, after the switch's own in ``help``
and ``debug/list``, as loading the shared object did; ``plugin/del``
removes them again.  The commands here only parse and answer; the
context does the I/O.  Beyond the base contract it provides:
``plugins`` (name -> state, in load order), ``dump_set_active(bool)``,
``pdump_filename(path or "") -> (lines, rc)``, ``pdump_set_active(bool)
-> (lines, rc)``, ``pdump_set_buffered(bool)``, ``iplog`` (an
:class:`~vde_ipn.engine.switch.iplog.IpLog`), ``iplog_logfile(arg) -> rc``,
``iplog_destination()`` (the showinfo line), ``iplog_set_gc_interval(n)``,
``port_user_name(port)`` and ``lookup_user(text)``.
"""

from __future__ import annotations

import errno

from .. import iplog as iplog_mod
from ..console import Command
from ._args import atoi
from ....wire.values import FrozenValue

OK = 0


class PluginSpec(FrozenValue):
    """``commands``: Command rows, menu first; ``debug``: (path, tag, help)."""

    __slots__ = ("name", "help", "commands", "debug")

    def __init__(self, name: str, help: str, commands: tuple, debug: tuple):
        self._init(name, help, commands, debug)


def _menu(path, title):
    return Command(path, "============", title, menu=True)


# -- dump ------------------------------------------------------------------
def _dump_active(ctx, arg):
    ctx.dump_set_active(atoi(arg) != 0)
    return None, OK


def dump_line(port: int, frame: bytes) -> str:
    """The debug text 2.3.2's dump plugin writes for one frame."""
    return "Pkt: Port %04d len=%04d %s" % (port, len(frame),
                                           "".join("%02x " % b for b in frame))


# -- pdump -----------------------------------------------------------------
def _pdump_active(ctx, arg):
    return ctx.pdump_set_active(atoi(arg) != 0)


def _pdump_filename(ctx, arg):
    return ctx.pdump_filename(arg)


def _pdump_buffered(ctx, arg):
    ctx.pdump_set_buffered(atoi(arg) != 0)
    return None, OK


# -- iplog -----------------------------------------------------------------
def _iplog_showinfo(ctx, arg):
    log = ctx.iplog
    return ["iplog: ip/port/user logging plugin", ctx.iplog_destination(),
            "GC interval %d secs" % log.gc_interval, "GC expire %d secs" % log.expire], OK


def _iplog_logfile(ctx, arg):
    return None, ctx.iplog_logfile(arg)


def _range(arg):
    try:
        return iplog_mod.parse_range(arg)
    except ValueError:
        return None


def _iplog_ipadd(ctx, arg):
    rng = _range(arg)
    if rng is None:
        return None, errno.EINVAL
    return None, OK if ctx.iplog.add_range(rng) else errno.EEXIST


def _iplog_ipdel(ctx, arg):
    rng = _range(arg)
    if rng is None:
        return None, errno.EINVAL
    return None, OK if ctx.iplog.del_range(rng) else errno.ENOENT


def _iplog_list(ctx, arg):
    return ctx.iplog.range_lines(), OK


def _iplog_setgcint(ctx, arg):
    ctx.iplog_set_gc_interval(atoi(arg))
    return None, OK


def _iplog_setexpire(ctx, arg):
    ctx.iplog.expire = atoi(arg)
    return None, OK


def _lines(ctx, entries):
    return [iplog_mod.list_line(e, ctx.port_user_name(e.port)) for e in entries]


def _iplog_iplist(ctx, arg):
    return _lines(ctx, ctx.iplog.listing()), OK


def _iplog_ipport(ctx, arg):
    port = atoi(arg)
    return _lines(ctx, [e for e in ctx.iplog.listing() if e.port == port]), OK


def _iplog_ipuser(ctx, arg):
    name = arg.strip()
    if not name:
        return None, errno.EINVAL
    uid = ctx.lookup_user(name)
    if uid is None:
        return None, errno.EINVAL
    return _lines(ctx, [e for e in ctx.iplog.listing() if ctx.port_user(e.port) == uid]), OK


def _iplog_ipsearch(ctx, arg):
    text = arg.strip()
    if not text:
        return None, errno.EINVAL
    import ipaddress                     # only when asked (memory)
    try:
        addr = ipaddress.ip_address(text).packed
    except ValueError:
        return None, errno.EINVAL
    return _lines(ctx, ctx.iplog.search(addr)), OK


def _cmd(path, syntax, help, handler, data=False):
    return Command(path, syntax, help, handler, data=data)


PLUGINS = {
    "dump": PluginSpec("dump", "dump packets", (
        _menu("dump", "DUMP Packets"),
        _cmd("dump/active", "0/1", "start dumping data", _dump_active),
    ), (
        ("dump/packetin", 0o101, "dump incoming packet"),
        ("dump/packetout", 0o102, "dump outgoing packet"),
    )),
    "pdump": PluginSpec("pdump", "dump packets to file, in pcap format", (
        _menu("pdump", "DUMP Packets to file"),
        _cmd("pdump/active", "0/1", "start dumping data", _pdump_active, data=True),
        _cmd("pdump/filename", "<file>", "set/show output filename (default: vde_dump.cap)",
             _pdump_filename, data=True),
        _cmd("pdump/buffered", "0/1", "set buffered/unbuffered dump", _pdump_buffered),
    ), (
        ("pdump/packetin", 0o101, "dump incoming packet to file"),
        ("pdump/packetout", 0o102, "dump outgoing packet to file"),
    )),
    "iplog": PluginSpec("iplog", "log ip/port/user assignment", (
        _menu("iplog", "IP/Mac/User Logging"),
        _cmd("iplog/showinfo", "", "Show info on logging", _iplog_showinfo, data=True),
        _cmd("iplog/logfile", "pathname", "Set the logfile", _iplog_logfile),
        _cmd("iplog/ipadd", "ipaddr/mask", "add an ipv4/v6 range", _iplog_ipadd),
        _cmd("iplog/ipdel", "ipaddr/mask", "del an ipv6/v6 range", _iplog_ipdel),
        _cmd("iplog/list", "", "list ip ranges", _iplog_list, data=True),
        _cmd("iplog/setgcint", "N", "change garbage collector interval", _iplog_setgcint),
        _cmd("iplog/setexpire", "N", "change iplog entries expire time", _iplog_setexpire),
        _cmd("iplog/iplist", "", "list active IP", _iplog_iplist, data=True),
        _cmd("iplog/ipport", "port", "list active IP on a port", _iplog_ipport, data=True),
        _cmd("iplog/ipuser", "user", "list active IP of a user", _iplog_ipuser, data=True),
        _cmd("iplog/ipsearch", "ipaddr", "search an IP address", _iplog_ipsearch, data=True),
    ), (
        ("iplog/newip", 0o301, "show new ip addresses"),
    )),
}

#: every plugin debug category's tag (the names never collide)
TAGS = {path: tag for spec in PLUGINS.values() for path, tag, _h in spec.debug}


def plugin_name(arg: str) -> str | None:
    """Which built-in plugin ``plugin/add ARG`` means, or None.

    2.3.2 dlopen()s ARG, then ARG.so and ARG in its plugin directories:
    a bare name (``dump``) or a path to the shared object
    (``/usr/lib/vde2/plugins/dump.so``) finds one.
    """
    arg = arg.strip()
    if not arg:
        return None
    base = arg.rsplit("/", 1)[-1]
    if "/" in arg and base.endswith(".so"):
        base = base[:-3]
    elif "/" not in arg and base.endswith(".so"):
        return None
    return base if base in PLUGINS else None


def commands(ctx) -> list:
    """The command rows of the loaded plugins, in load order."""
    loaded = getattr(ctx, "plugins", None)
    if not loaded:
        return []
    return [c for name in loaded for c in PLUGINS[name].commands]


def debug_categories(ctx) -> list:
    loaded = getattr(ctx, "plugins", None)
    if not loaded:
        return []
    return [d for name in loaded for d in PLUGINS[name].debug]
