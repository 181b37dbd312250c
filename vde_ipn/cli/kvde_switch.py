"""``kvde_switch``: vde-2's kernel switch front end, on the IPN engine.

vde-2's kvde_switch created an IPN_VDESWITCH network at its socket path
(``socket(AF_IPN, SOCK_RAW, IPN_VDESWITCH)`` + ``bind``), gave it mode
and group, added ``-t`` taps and ``-G`` grabbed interfaces to it and then
only kept it alive.  Here the network is emulated (no kernel module, no
privileges needed) and the socket path is a directory as vde_switch's:
its ``ctl`` is the IPN network and the VDE control socket at once, so
QEMU/UML/vde_plug attach with ``sock=DIR`` and Python programs with
``ipn.socket(IPN_VDESWITCH).connect(DIR)``; every one of them is a port
of the same network (see :mod:`vde_ipn.io.switch.ipn_bridge`).

The command line is kvde_switch's, parsed with getopt_long_only over its
option table in its order: ``-s/--sock/--vdesock/--unix``, ``-m/--mod``
(octal, default 0700), ``-g/--group``, ``-t/--tap``, ``-G/--grab``,
``-d/--daemon``, ``-p/--pidfile``, ``-f/--rcfile``, ``-M/--mgmt``,
``--mgmtmode``, ``-h``, ``-v``; an unknown option is reported and
ignored, an operand prints the usage (exit 1).  Ours: ``-n/--numports
N``, the network's number of ports (the kernel's default: 64).  A tap or
grab that cannot be opened ends the switch (exit 255), as in vde-2.
``-f``, ``-M`` and ``--mgmtmode`` are accepted but no console is served:
the standard input is only watched for end of file (then the switch
exits, unless ``-d``).
"""

from __future__ import annotations

import grp
import os
import signal
import sys
import syslog

from ..engine.ipn.protocols import IPN_VDESWITCH
from ..io.switch import ctldir
from ..io.switch.ipn_bridge import IpnBridge
from ..io.loop import Loop
from ..wire.mgmt import VERSION
from ..wire.c_numbers import scan_int
from ._getopt import LongOpt, getopt_long_only
from ._logging import LOG_ERR, LOG_WARNING, Logger
from ._process import daemonize, pidfile_path, remove_pidfile, write_pidfile
from ._switch_args import apply_shared

LONGOPTS = (
    LongOpt("help", 0, "h"), LongOpt("version", 0, "v"),
    LongOpt("sock", 1, "s"), LongOpt("vdesock", 1, "s"), LongOpt("unix", 1, "s"),
    LongOpt("mod", 1, "m"), LongOpt("group", 1, "g"), LongOpt("tap", 1, "t"),
    LongOpt("grab", 1, "G"),
    LongOpt("daemon", 0, "d"), LongOpt("pidfile", 1, "p"), LongOpt("rcfile", 1, "f"),
    LongOpt("mgmt", 1, "M"), LongOpt("mgmtmode", 1, "mgmtmode"),
    LongOpt("numports", 1, "n"),        # ours
)
SHORTOPTS = "hvs:m:g:t:G:dp:f:M:n:"

USAGE = """\
Usage: kvde_switch [OPTIONS]
Runs a VDE switch on an IPN network (vde-ipn drop-in for kvde_switch).
(global opts)
  -h, --help                 Display this help and exit
  -v, --version              Display informations on version and exit
(opts from datasock module)
  -s, --sock SOCK            control directory pathname
  -s, --vdesock SOCK         Same as --sock SOCK
  -s, --unix SOCK            Same as --sock SOCK
  -m, --mod MODE             Standard access mode for comm sockets (octal)
  -g, --group GROUP          Group owner for comm sockets
  -t, --tap TAP              Enable routing through TAP tap interface
  -G, --grab INT             Enable routing grabbing an existing interface
(opts from consmgmt module)
  -d, --daemon               Daemonize kvde_switch once run
  -p, --pidfile PIDFILE      Write pid of daemon to PIDFILE
  -f, --rcfile               Accepted (no console in this drop-in)
  -M, --mgmt SOCK            Accepted (no console in this drop-in)
      --mgmtmode MODE        Accepted (no console in this drop-in)
(opts of vde-ipn)
  -n, --numports N           Number of ports of the IPN network (default 64)
"""

VERSION_TEXT = """\
VDE %s
vde-ipn drop-in kvde_switch: IPN_VDESWITCH networks without a kernel module.
Free software under the GNU General Public License v2 or later.
""" % VERSION


class Options:
    """kvde_switch's settings after parsing, before anything is created."""

    def __init__(self):
        self.sock = "/var/run/vde.ctl" if os.geteuid() == 0 else "/tmp/vde.ctl"
        self.mode = 0o700
        self.gid = -1
        self.ifaces: list[tuple[str, str]] = []      # ("t" or "G", name), in order
        self.daemon = False
        self.pidfile: str | None = None
        self.rcfile: str | None = None
        self.mgmt: str | None = None
        self.mgmtmode = 0o600
        self.numports = 64


def parse(argv: list[str], log: Logger) -> Options:
    """Parse as kvde_switch does; SystemExit where it exits."""
    res = getopt_long_only([argv[0] if argv else "kvde_switch"] + list(argv[1:]),
                           SHORTOPTS, LONGOPTS)
    errors = iter(res.errors)
    o = Options()
    for key, val in res.opts:
        if key in ("?", ":"):
            line = next(errors, None)
            if line is not None:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
        elif apply_shared(o, o, key, val, USAGE, VERSION_TEXT):
            pass
        elif key == "s":
            o.sock = os.path.realpath(val)
        elif key == "g":
            try:
                o.gid = grp.getgrnam(val).gr_gid
            except KeyError:
                log("No such group '%s'" % val, LOG_ERR)
                raise SystemExit(1) from None
        elif key in ("t", "G"):
            o.ifaces.append((key, val))
        elif key == "n":
            n = scan_int(val)
            if n is None or not 1 <= n <= 0xFFFF:
                log("Invalid number of ports %s" % val, LOG_ERR)
                _usage()
            o.numports = n
    if res.operands:
        _usage()
    return o


def _usage() -> None:
    sys.stdout.write(USAGE)
    sys.stdout.flush()
    raise SystemExit(1)


def _open_iface(kind: str, name: str):
    if kind == "t":
        from ..io.plugs.tap import TapDevice
        return TapDevice(name)
    from ..io.plugs.grab import GrabDevice
    return GrabDevice(name)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    log = Logger(argv[0] if argv else "kvde_switch")
    for name in ("SIGPIPE", "SIGALRM", "SIGUSR1", "SIGUSR2", "SIGPROF", "SIGVTALRM",
                 "SIGPOLL", "SIGIO", "SIGPWR"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    opts = parse(argv, log)
    loop = Loop()
    stop = {"signal": 0}

    def on_signal(signum: int) -> None:
        log("Caught signal %d, cleaning up and exiting" % signum, LOG_ERR)
        stop["signal"] = signum
        loop.stop()

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(s, on_signal)
    bridge = IpnBridge(loop, opts.sock, mode=opts.mode, gid=opts.gid,
                       numports=opts.numports, protocol=IPN_VDESWITCH,
                       log=lambda m: log(m, LOG_WARNING))
    try:
        bridge.start()
    except ctldir.AddressInUse:
        log("cannot bind socket %s" % os.path.join(opts.sock, "ctl"), LOG_ERR)
        return 255
    except OSError as e:
        log("cannot bind socket %s: %s" % (os.path.join(opts.sock, "ctl"),
                                           e.strerror or e), LOG_ERR)
        return 255
    pidpath = pidfile_path(opts.pidfile) if opts.pidfile else None
    written: list = []
    try:
        for kind, name in opts.ifaces:
            try:
                dev = _open_iface(kind, name)
                bridge.attach_device(dev, "%s %s" % ("tap" if kind == "t" else "grab", name))
            except OSError as e:
                log("%s interface %s error: %s" % (name, "tap" if kind == "t" else "grab",
                                                   e.strerror or e), LOG_ERR)
                return 255
        return _serve(loop, opts, log, pidpath, written)
    finally:
        bridge.close()                   # ctl goes first, as vde_switch does,
        if written:                      # so a vanished pid file means all is gone
            remove_pidfile(pidpath, opts.pidfile, lambda m: log(m, LOG_WARNING))
        loop.close()
        if stop["signal"] and stop["signal"] != signal.SIGTERM:
            signal.signal(stop["signal"], signal.SIG_DFL)
            os.kill(os.getpid(), stop["signal"])


def _serve(loop: Loop, opts: Options, log: Logger, pidpath, written: list) -> int:
    """Run until stopped; ``written`` gets True once the pid file is made."""
    if opts.daemon:
        log.to_syslog(syslog.LOG_USER)
        log("VDE_SWITCH started")
        daemonize()
    else:
        _watch_stdin(loop, log)
    if pidpath:
        if not write_pidfile(pidpath, lambda m: log(m, LOG_ERR)):
            return 1
        written.append(True)
    loop.run()
    return 0


def _watch_stdin(loop: Loop, log: Logger) -> None:
    """End of file on stdin ends the switch; lines are read and ignored."""
    try:
        os.fstat(0)
    except OSError:
        return

    def on_readable(now: float) -> None:
        try:
            data = os.read(0, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.forget(0)
            log("EOF on stdin, cleaning up and exiting", LOG_WARNING)
            loop.stop()

    try:
        loop.add_reader(0, on_readable)
    except (OSError, ValueError):
        pass                             # a regular file or /dev/null: nothing to watch


if __name__ == "__main__":
    sys.exit(main())
