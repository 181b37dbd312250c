"""``vde_switch``: drop-in for vde_switch 2.3.2 on the IPN engine.

The command line is parsed with getopt_long_only over the same option
table, in the same order, as the C switch (``-sock`` = ``--sock``,
unambiguous prefixes, an unknown option reported but not fatal), and
each option takes effect, or fails, at the point where the C switch
handles it, so messages come out in the same order.  Additions:

* the exact words ``-nostdin`` and ``--nostdin``: no stdin console (as
  later vde-2 releases have; in 2.3.2 ``-nostdin`` meant ``-n ostdin``).
  They are matched as whole words only, so every prefix keeps its 2.3.2
  meaning (``--n`` is still ``--numports``);
* ``--ethmax N``: largest frame accepted (default 9234, jumbo frames).
* ``--lossless``: a full receiver pauses the ports sending to it instead
  of losing frames (see ``io/switch/datasock.py``); off by default, as in 2.3.2.
* ``--monitor PORT[:PORTS[:VLANS]]``: a monitor port (copies of the
  traffic of PORTS and VLANS, default all) and ``--dump FILE``: a pcap
  capture of every frame; whole words only, like ``--nostdin``.
* ``--qemu-stream PATH`` and ``--qemu-dgram PATH``: sockets where QEMU's
  own ``-netdev stream`` and ``-netdev dgram`` clients join the switch
  (see :mod:`vde_ipn.io.switch.qemu_sock`); whole words only.

``-F``/``--fstp`` runs the fast spanning tree (``-x`` disables it, as in
2.3.2), with ``--priority`` and ``--macaddr`` making the bridge id.
``-t``/``--tap NAME`` attaches a tap interface (created if missing) and
``-G``/``--grab IFACE`` (ours; whole words only) an existing interface,
each on a port of its own; one that fails is reported and the switch
runs on without it.
"""

from __future__ import annotations

import errno
import gc
import os
import signal
import socket
import stat
import sys
import syslog

from ..engine.switch import commands  # noqa: F401  (fills the command table)
from ..io.switch import ctldir
from ..io.switch.console import MgmtServer, StdinConsole, run_script
from ..io.loop import Loop
from ..io.switch.server import SwitchConfig, SwitchServer
from ._logging import LOG_ERR, LOG_WARNING, Logger
from ._process import daemonize, pidfile_path, remove_pidfile, write_pidfile
from ._switch_args import Options, hash_size, parse


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    prog = argv[0] if argv else "vde_switch"
    log = Logger(prog)
    _ignore_signals()
    opts = parse(argv, log)
    cfg = opts.config
    cfg.hashsize = hash_size(opts.hashsize, log)
    if cfg.numports < 1:
        log("The switch must have at least 1 port\n", LOG_ERR)
        return 1
    cfg.fstp = opts.fstp                 # -x after -F has already turned it off
    return _run(opts, log)


def _run(opts: Options, log: Logger) -> int:
    cfg = opts.config
    loop = Loop()
    server = SwitchServer(cfg, loop, log)
    caught = _install_signals(loop, log, server)
    rc = _start_ctl(server, log)
    if rc:
        return rc
    if opts.taps or opts.grabs:
        _attach_interfaces(server, opts, log)
    qemu = _start_qemu_sockets(server, opts, log) if opts.qemu_stream or opts.qemu_dgram else []
    if qemu is None:
        server.close()
        return 1
    if opts.daemon:
        log.to_syslog(syslog.LOG_USER)
        log("VDE_SWITCH started")
    else:
        if not opts.nostdin:
            def on_eof() -> None:
                log("EOF on stdin, cleaning up and exiting", LOG_WARNING)
                loop.stop()
            StdinConsole(server, loop, on_eof)
    pidpath = pidfile_path(opts.pidfile) if opts.pidfile else None
    if opts.daemon:
        daemonize()
    if pidpath and not write_pidfile(pidpath, lambda m: log(m, LOG_ERR)):
        server.close()
        if not os.path.lexists(pidpath):     # never remove another process's pid file
            remove_pidfile(pidpath, opts.pidfile, lambda m: log(m, LOG_WARNING))
        return 1
    mgmt = _start_mgmt(server, loop, cfg, log)
    path = _rc_path(opts.rcfile)
    if path:
        run_script(server, path, lambda m: log(m, LOG_WARNING))
    # what start-up made lives as long as the switch: out of the
    # collector's way, so that a full collection later (after many joins)
    # walks only what came since, not every module and function
    gc.freeze()
    try:
        loop.run()
    finally:
        if mgmt is not None:
            mgmt.close()
        for listener in qemu:
            listener.close()
        server.close()
        if pidpath:
            remove_pidfile(pidpath, opts.pidfile, lambda m: log(m, LOG_WARNING))
        loop.close()
    signum = caught["signal"]
    if signum and signum != signal.SIGTERM:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    return 0


def _attach_interfaces(server: SwitchServer, opts: Options, log: Logger) -> None:
    """Each ``-t`` tap, then each ``-G`` grabbed interface, on a port of its own.

    One that cannot be opened is reported and left out; the switch runs on.
    """
    from ..io.plugs.grab import GrabDevice
    from ..io.plugs.tap import TapDevice
    for kind, names in ((TapDevice, opts.taps), (GrabDevice, opts.grabs)):
        for name in names:
            try:
                dev = kind(name)
            except OSError as e:
                log(e.strerror or str(e), LOG_ERR)
                continue
            try:
                server.attach_device(dev, dev.name)
            except Exception as e:
                dev.close()
                log("%s: no port for it: %s" % (name, e), LOG_ERR)


def _start_qemu_sockets(server: SwitchServer, opts: Options, log: Logger):
    """The ``--qemu-stream`` and ``--qemu-dgram`` sockets; None (after
    saying why) when one cannot be made."""
    from ..io.switch.qemu_sock import DgramListener, StreamListener
    made = []
    for kind, path in ((StreamListener, opts.qemu_stream), (DgramListener, opts.qemu_dgram)):
        if not path:
            continue
        try:
            made.append(kind(server, path, lambda m: log(m, LOG_WARNING)))
        except OSError as e:
            log("Could not bind to socket '%s': %s" % (path, e.strerror or e), LOG_ERR)
            for listener in made:
                listener.close()
            return None
    return made


def _start_ctl(server: SwitchServer, log: Logger) -> int:
    """Create the ctl directory and socket; 0, or the exit status of a failure
    (messages and the clean-up attempt as in vde-2 datasock.c init())."""
    path = server.config.sock
    try:
        created = ctldir.make_dir(path)
    except OSError as e:
        sys.stderr.write("Cannot create ctl directory '%s': %s\n" % (path, e.strerror))
        return 255
    own = created or ctldir.is_switch_dir(path)
    real = os.path.realpath(path)
    try:
        server.start(dir_created=created)
        return 0
    except ctldir.AddressInUse as e:
        log("Could not bind to socket '%s/ctl': %s" % (real, e.strerror), LOG_ERR)
    except OSError as e:
        if e.filename is None:
            log("Could not bind to socket '%s/ctl' (second attempt): %s"
                % (real, e.strerror), LOG_ERR)
        else:
            log("Could not set the VDE ctl directory '%s' permissions: %s"
                % (real, e.strerror), LOG_ERR)
    _failed_start_cleanup(real, own, log)
    return 255


def _failed_start_cleanup(real: str, own: bool, log: Logger) -> None:
    """What 2.3.2's exit-time clean-up does to a ctl directory it did not get,
    short of harm: only a socket is removed as ``ctl``, and the directory
    only when it is the switch's own (``ctldir.is_switch_dir``)."""
    ctl = real + "/ctl"
    if _answers(ctl):
        log("Cleanup not removing files", LOG_WARNING)
        return
    try:
        if os.path.lexists(ctl) and not stat.S_ISSOCK(os.lstat(ctl).st_mode):
            raise OSError(errno.EPERM, "not a socket: left as it is")
        os.unlink(ctl)
    except OSError as e:
        log("Could not remove ctl socket '%s': %s" % (real, e.strerror), LOG_WARNING)
        return
    if not own:
        return
    try:
        os.rmdir(real)
    except OSError as e:
        log("Could not remove ctl dir '%s': %s" % (real, e.strerror), LOG_WARNING)


def _answers(path: str) -> bool:
    """True when something accepts a connection on ``path`` (C's test-connect)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
        return True
    except socket.timeout:
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _start_mgmt(server, loop, cfg: SwitchConfig, log: Logger):
    if not cfg.mgmt:
        return None
    try:
        return MgmtServer(server, loop, cfg.mgmt, cfg.mgmtmode, cfg.mgmt_gid)
    except OSError as e:
        if e.filename is not None:          # ours: a file that is not a socket
            log("mgmt bind %s: %s" % (e.filename, e.strerror), LOG_ERR)
        elif e.errno != errno.EADDRINUSE:   # a live owner: run on silently, as 2.3.2
            log("mgmt bind %s" % (e.strerror or e), LOG_ERR)
        return None


def _rc_path(rcfile: str | None) -> str | None:
    if rcfile is not None:
        return rcfile
    for path in ("%s/.vde2/vde_switch.rc" % os.environ.get("HOME", "(null)"),
                 "/etc/vde2/vde_switch.rc"):
        if os.access(path, os.R_OK):
            return path
    return None


_IGNORED = ("SIGPIPE", "SIGALRM", "SIGUSR1", "SIGUSR2", "SIGPROF", "SIGVTALRM",
            "SIGPOLL", "SIGSTKFLT", "SIGIO", "SIGPWR")


def _ignore_signals() -> None:
    for name in _IGNORED:
        num = getattr(signal, name, None)
        if num is not None:
            signal.signal(num, signal.SIG_IGN)


def _install_signals(loop: Loop, log: Logger, server=None) -> dict:
    caught = {"signal": 0}

    def on_signal(signum: int) -> None:
        if caught["signal"]:
            return
        log("Caught signal %d, cleaning up and exiting" % signum, LOG_ERR)
        caught["signal"] = signum
        loop.stop()

    for s in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(s, on_signal)
    # 2.3.2 catches SIGHUP only to raise a "sig/hup" event (iplog reopens
    # its file on it, for log rotation): it goes on running
    loop.add_signal_handler(signal.SIGHUP,
                            lambda signum: server.sighup() if server is not None else None)
    return caught


if __name__ == "__main__":
    sys.exit(main())
