"""``vde_switch``: drop-in for vde_switch 2.3.2 on the IPN engine.

Options are parsed with getopt_long_only semantics, exactly as the C
switch parses them (``-sock`` = ``--sock``, unambiguous prefixes, and an
unknown option reported but not fatal).  Additions, chosen so that no
prefix the C switch accepts changes meaning: ``--nostdin`` (no stdin
console, as later vde-2 releases have) and ``--ethmax N`` (largest
frame accepted, default 9234 so jumbo frames pass).
"""

from __future__ import annotations

import grp
import os
import signal
import sys

from ..engine import commands  # noqa: F401  (fills the command table)
from ..engine.console import execute
from ..io import ctldir
from ..io.console import MgmtServer, StdinConsole
from ..io.loop import Loop
from ..io.switch import SwitchConfig, SwitchServer
from ..wire.ethernet import parse_mac
from ..wire.mgmt import VERSION
from ._cparse import scan_int, scan_octal
from ._getopt import LongOpt, getopt_long_only
from ._logging import Logger
from ._process import daemonize, write_pidfile

SHORTOPTS = "hvn:xFs:m:g:dp:f:M:D:t:"
LONGOPTS = (
    LongOpt("help", 0, "h"), LongOpt("version", 0, "v"),
    LongOpt("numports", 1, "n"), LongOpt("hub", 0, "x"), LongOpt("fstp", 0, "F"),
    LongOpt("macaddr", 1, "macaddr"), LongOpt("priority", 1, "priority"),
    LongOpt("hashsize", 1, "hashsize"),
    LongOpt("sock", 1, "s"), LongOpt("vdesock", 1, "s"), LongOpt("unix", 1, "s"),
    LongOpt("mod", 1, "m"), LongOpt("mode", 1, "m"), LongOpt("dirmode", 1, "dirmode"),
    LongOpt("group", 1, "g"),
    LongOpt("daemon", 0, "d"), LongOpt("pidfile", 1, "p"), LongOpt("rcfile", 1, "f"),
    LongOpt("mgmt", 1, "M"), LongOpt("mgmtmode", 1, "mgmtmode"),
    LongOpt("mgmtgroup", 1, "mgmtgroup"), LongOpt("debugclients", 1, "D"),
    LongOpt("tap", 1, "t"),
    LongOpt("nostdin", 0, "nostdin"), LongOpt("ethmax", 1, "ethmax"),
)

USAGE = """\
Usage: vde_switch [OPTIONS]
Runs a VDE switch (vde-ipn drop-in).
(global opts)
  -h, --help                 Show this help and exit
  -v, --version              Show the version and exit
  -n  --numports N           Number of ports, port 0 included (default 32)
  -x, --hub                  Behave as a hub instead of a learning switch
  -F, --fstp                 Fast spanning tree (not available yet)
      --macaddr MAC          Switch MAC address
      --priority N           FST priority
      --hashsize N           MAC table size shown by hash/showinfo
      --ethmax N             Largest frame accepted (default 9234: jumbo frames)
      --nostdin              Do not use stdin as a console
(opts from datasock module)
  -s, --sock SOCK            Control directory (also --vdesock, --unix)
  -m, --mode MODE            Permissions of the control socket (octal)
      --dirmode MODE         Permissions of the control directory (octal)
  -g, --group GROUP          Group owner of the sockets
(opts from consmgmt module)
  -d, --daemon               Run in the background, log to syslog
  -p, --pidfile PIDFILE      Write the pid to PIDFILE
  -f, --rcfile FILE          Console commands to run at start
  -M, --mgmt SOCK            Management console UNIX socket
      --mgmtmode MODE        Permissions of the management socket (octal)
      --mgmtgroup GROUP      Group owner of the management socket
  -D, --debugclients N       Accepted, ignored (as in vde_switch 2.3.2)
(opts from tuntap module)
  -t, --tap TAP              Attach a TAP interface (not available yet)
"""

VERSION_TEXT = """\
VDE %s
vde-ipn drop-in vde_switch, on the IPN engine.
Free software under the GNU General Public License v2 or later.
""" % VERSION


class Options:
    """The parsed command line, before anything is created."""

    def __init__(self):
        self.config = SwitchConfig()
        self.daemon = False
        self.pidfile: str | None = None
        self.rcfile: str | None = None
        self.nostdin = False
        self.unavailable: list[str] = []


def parse(argv: list[str], err=sys.stderr) -> Options:
    """Parse argv; raise SystemExit for -h, -v and fatal errors."""
    res = getopt_long_only(list(argv), SHORTOPTS, LONGOPTS)
    for line in res.errors:                       # reported, never fatal
        err.write(line + "\n")
    o = Options()
    c = o.config
    for key, val in res.opts:
        if key == "h":
            sys.stdout.write(USAGE)
            raise SystemExit(1)
        if key == "v":
            sys.stdout.write(VERSION_TEXT)
            raise SystemExit(0)
        if key == "n":
            n = scan_int(val)
            if n is not None:
                c.numports = n
        elif key == "x":
            c.hub = True
        elif key == "F":
            o.unavailable.append("-F/--fstp (fast spanning tree)")
        elif key == "macaddr":
            try:
                c.macaddr = parse_mac(val)
            except ValueError:
                err.write("Invalid MAC Addr %s\n" % val)
                sys.stdout.write(USAGE)
                raise SystemExit(1)
        elif key == "priority":
            c.priority = (scan_int(val) or 0) & 0xFFFF
        elif key == "hashsize":
            c.hashsize = _hashsize(scan_int(val) or 0, err)
        elif key == "ethmax":
            n = scan_int(val)
            if n is None or n < 14:
                err.write("vde_switch: invalid frame size %s\n" % val)
                raise SystemExit(1)
            c.max_frame = n
        elif key == "s":
            c.sock = val
        elif key == "m":
            c.mode = scan_octal(val)
        elif key == "dirmode":
            c.dirmode = scan_octal(val)
        elif key == "g":
            c.gid = _group(val, err)
        elif key == "d":
            o.daemon = True
        elif key == "p":
            o.pidfile = os.path.abspath(val)
        elif key == "f":
            o.rcfile = val
        elif key == "M":
            c.mgmt = val
        elif key == "mgmtmode":
            c.mgmtmode = scan_octal(val) or 0
        elif key == "mgmtgroup":
            c.mgmt_gid = _group(val, err)
        elif key == "t":
            o.unavailable.append("-t/--tap %s (tap interfaces)" % val)
        elif key == "nostdin":
            o.nostdin = True
    if res.operands:
        sys.stdout.write(USAGE)
        raise SystemExit(1)
    if c.numports < 1:
        err.write("vde_switch: the number of ports must be at least 1\n")
        raise SystemExit(1)
    return o


def _group(name: str, err) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        err.write("No such group '%s'\n" % name)
        raise SystemExit(1)


def _hashsize(n: int, err) -> int:
    if n <= 0:
        return 128
    size = 1
    while size < n:
        size <<= 1
    if size != n:
        err.write("Hash size must be a power of 2. %d rounded to %d\n" % (n, size))
    return size


def _rc_path(rcfile: str | None) -> str | None:
    if rcfile is not None:
        return rcfile
    home = os.environ.get("HOME")
    for path in ([os.path.join(home, ".vde2", "vde_switch.rc")] if home else []) + [
            "/etc/vde2/vde_switch.rc"]:
        if os.access(path, os.R_OK):
            return path
    return None


def run_rcfile(ctx, path: str) -> None:
    """Run a startup script: no output, errors ignored (as 2.3.2)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line != "\n":
                    line = line.rstrip("\n")
                if line.lstrip(" \t").startswith("#"):
                    continue
                execute(ctx, line.lstrip(" \t"))
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    opts = parse(argv)
    if opts.unavailable:
        for what in opts.unavailable:
            sys.stderr.write("vde_switch: %s is not available yet in this version\n" % what)
        return 1
    log = Logger(argv[0] if argv else "vde_switch", syslog_ident="vde_switch")
    loop = Loop()
    server = SwitchServer(opts.config, loop, log)
    try:
        server.start()
    except ctldir.AddressInUse:
        log("Could not bind to socket '%s/ctl': Address already in use"
            % os.path.realpath(opts.config.sock))
        return 255
    except OSError as e:
        log("Could not create the control directory '%s': %s" % (opts.config.sock, e.strerror))
        return 255
    if opts.daemon:
        daemonize()
        log.to_syslog()
    if opts.pidfile:
        if not write_pidfile(opts.pidfile, log):
            server.close()
            return 1
    mgmt = None
    if opts.config.mgmt:
        try:
            mgmt = MgmtServer(server, loop, opts.config.mgmt, opts.config.mgmtmode,
                              opts.config.mgmt_gid)
        except OSError:
            mgmt = None                   # 2.3.2 runs on without a mgmt socket
    rc = _install_signals(loop, log)
    if not opts.daemon and not opts.nostdin:
        def on_eof():
            log("EOF on stdin, cleaning up and exiting")
            loop.stop()
        StdinConsole(server, loop, on_eof)
    path = _rc_path(opts.rcfile)
    if path:
        run_rcfile(server, path)
    try:
        loop.run()
    finally:
        if mgmt is not None:
            mgmt.close()
        server.close()
        if opts.pidfile:
            try:
                os.unlink(opts.pidfile)
            except OSError:
                pass
        loop.close()
    if rc["signal"] and rc["signal"] != signal.SIGTERM:
        signal.signal(rc["signal"], signal.SIG_DFL)
        os.kill(os.getpid(), rc["signal"])
    return 0


def _install_signals(loop: Loop, log) -> dict:
    caught = {"signal": 0}

    def on_signal(signum: int) -> None:
        log("Caught signal %d, cleaning up and exiting" % signum)
        caught["signal"] = signum
        loop.stop()

    for s in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(s, on_signal)
    for s in (signal.SIGPIPE, signal.SIGUSR1, signal.SIGUSR2, signal.SIGPROF,
              signal.SIGVTALRM, signal.SIGIO, signal.SIGPWR):
        signal.signal(s, signal.SIG_IGN)
    return caught


if __name__ == "__main__":
    sys.exit(main())
