"""vde_plug2tap and vde_pcapplug: one switch port bridged to one interface.

Both parse the 2.3.2 command line (getopt_long_only)::

    vde_plug2tap [OPTION]... TAPNAME      a tap interface (created if missing)
    vde_pcapplug [OPTION]... IFACE        an existing interface, grabbed

with ``-p/--port``, ``-g/--group``, ``-m/--mode``, ``-s/--sock``,
``-d/--daemon``, ``-P/--pidfile``, ``-h/--help`` (usage on stderr, exit
255; also for a missing TAPNAME, or a missing IFACE once the switch is
open; operands after the first are ignored).  ``vde_plug2tap -s -`` has no switch: frames go over stdin/stdout
as a vdestream.  The switch is opened first, then the interface;
either failing is one line on stderr and exit 1.  The process runs
until the switch closes the port, the interface goes, or SIGTERM,
SIGINT or SIGHUP; the interface is then released (a tap goes away
unless persistent; a grabbed interface gets its earlier state back).
"""

from __future__ import annotations

import os
import signal
import sys

from .._errors import ConnectError
from ..io.plugs.endpoints import Plug
from ..io.loop import Loop
from ..io.plugs.opener import open_plug
from ..wire.c_numbers import scan_octal
from ._getopt import LongOpt, getopt_long_only
from ._logging import Logger
from ._process import daemonize, write_pidfile

SHORTOPTS = "hdP:p:g:m:s:"
LONGOPTS = (
    LongOpt("port", 1, "p"), LongOpt("group", 1, "g"), LongOpt("mode", 1, "m"),
    LongOpt("sock", 1, "s"), LongOpt("daemon", 0, "d"), LongOpt("pidfile", 1, "P"),
    LongOpt("help", 0, "h"),
)

USAGE = """\
Usage: %s [OPTION]... %s

  -p, --port=portnum          Port number in the VDE switch
  -g, --group=group           Group for the socket
  -m, --mode=mode             Octal mode for the socket
  -s, --sock=socket           VDE switch control socket or dir
  -d, --daemon                Launch in background
  -P, --pidfile=pidfile       Create pidfile with our PID
  -h, --help                  This help
"""

TOOLS = {"tap": ("vde_plug2tap", "tap_name"), "grab": ("vde_pcapplug", "interface")}


class Options:
    def __init__(self):
        self.sock = None
        self.port = None
        self.group = None
        self.mode = None
        self.daemon = False
        self.pidfile = None
        self.iface = None
        self.usage = None


def parse(argv: list[str], kind: str) -> Options:
    name, operand = TOOLS[kind]
    prog = argv[0] if argv else name

    def usage():
        sys.stderr.write(USAGE % (prog, operand))
        raise SystemExit(255)

    res = getopt_long_only(list(argv), SHORTOPTS, LONGOPTS)
    for line in res.errors:
        sys.stderr.write(line + "\n")
    o = Options()
    for key, val in res.opts:
        if key in ("?", ":", "h"):
            usage()
        elif key == "p":
            try:
                o.port = int(val)
            except ValueError:
                o.port = 0
        elif key == "g":
            o.group = val
        elif key == "m":
            o.mode = scan_octal(val)
        elif key == "s":
            o.sock = val
        elif key == "d":
            o.daemon = True
        elif key == "P":
            o.pidfile = os.path.abspath(val)
    if res.operands:
        o.iface = res.operands[0]        # more operands are ignored, as in 2.3.2
    elif kind == "tap":
        usage()
    o.usage = usage
    return o


def open_interface(kind: str, name: str):
    """The device for ``kind`` ("tap" or "grab"); raises OSError with a message."""
    if kind == "tap":
        from ..io.plugs.tap import TapDevice
        return TapDevice(name)
    from ..io.plugs.grab import GrabDevice
    return GrabDevice(name)


def main(argv: list[str], kind: str) -> int:
    """Run the tool; its exit status."""
    prog = argv[0] if argv else TOOLS[kind][0]
    o = parse(argv, kind)
    log = Logger(prog, syslog_ident=TOOLS[kind][0])
    stream = kind == "tap" and o.sock == "-"
    loop = Loop()
    plugs: list[Plug] = []
    try:
        if not stream:
            try:
                plugs.append(open_plug(o.sock or "", "%s:" % TOOLS[kind][0], port=o.port,
                                       group=o.group, mode=o.mode, loop=loop))
            except ConnectError as e:
                log("vde_open %s: %s" % (o.sock or "DEF_SWITCH", os.strerror(e.errno)))
                return 1
        if o.iface is None:              # vde_pcapplug checks only after the switch
            o.usage()
        try:
            dev = open_interface(kind, o.iface)
        except OSError as e:
            log(e.strerror or str(e))
            return 1
        plugs.append(Plug(dev, None, scheme=kind))
        if o.daemon:
            log.to_syslog()
            daemonize()
        if o.pidfile and not write_pidfile(o.pidfile, log):
            return 1
        from .plug import run_cable, run_stream
        if stream:
            run_stream(loop, plugs[0], 0, 1)
        else:
            run_cable(loop, plugs[0], plugs[1])
        for num in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(num, lambda signum: loop.stop())
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        loop.run()
        return 0
    finally:
        for p in reversed(plugs):
            p.close()
        if o.pidfile:
            try:
                os.unlink(o.pidfile)
            except OSError:
                pass
        loop.close()
