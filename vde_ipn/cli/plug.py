"""``vde_plug``: drop-in for vdeplug4 4.0.1's vde_plug.

Forms (argv as the C tool parses it, with getopt_long)::

    vde_plug [OPTIONS] [VNL]                 VNL <-> stdin/stdout vdestream
    vde_plug [OPTIONS] VNL1 VNL2             a cable between two networks
    vde_plug [OPTIONS] [VNL] = cmd args...   VNL <-> cmd's stdin/stdout

The process exits 0 when its input ends, when a switch closes the port
(its control connection becomes readable), when a seqpacket peer hangs
up, when the command exits, or on SIGTERM (after closing its plugs, so
an in-process ``switch://`` removes its files).
"""

from __future__ import annotations

import errno
import os
import select
import signal
import subprocess
import sys

from .._errors import ConnectError
from ..io.loop import Loop
from ..io.plugs.opener import Plug, open_plug
from ..wire.stream import STREAM_MAX, StreamDecoder, encode
from ..wire.c_numbers import scan_octal
from ._getopt import LongOpt, getopt_long
from ._logging import Logger
from ._process import daemonize, write_pidfile
from ..wire.ethernet import ETH_HLEN

SHORTOPTS = "c:hdp:lLg:G:m:M:D:"
LONGOPTS = (
    LongOpt("daemon", 0, "d"), LongOpt("pidfile", 1, "p"), LongOpt("log", 0, "l"),
    LongOpt("iplog", 0, "L"), LongOpt("help", 0, "h"), LongOpt("group", 1, "g"),
    LongOpt("group2", 1, "G"), LongOpt("mod", 1, "m"), LongOpt("mod2", 1, "M"),
    LongOpt("port", 1, "port"), LongOpt("port2", 1, "port2"), LongOpt("descr", 1, "D"),
    LongOpt("retry", 1, "retry"),
)

USAGE = """\
Usage:
  vde_plug [ OPTIONS ]
  vde_plug [ OPTIONS ] VNL
  vde_plug [ OPTIONS ] VNL VNL
  vde_plug [ OPTIONS ] = command [args ...]
  vde_plug [ OPTIONS ] VNL = command [args ...]
  an omitted or empty '' VNL means the default switch
  (~/.vdeplug/default, ~/.vde2/default.switch, /var/run/vde.ctl, /tmp/vde.ctl)
Options:
  -d | --daemon               run in the background
  -p FILE | --pidfile FILE    write the pid to FILE
  -l | --log                  log start and stop on syslog
  -L | --iplog                -l, and log on syslog each IP address seen
                              on the stream (or on the second VNL)
  -h | --help                 this summary
  -g GROUP | --group GROUP    group of the data socket (vde://)
  -G GROUP | --group2 GROUP   the same for the second VNL
  -m MODE | --mod MODE        octal mode of the data socket (vde://)
  -M MODE | --mod2 MODE       the same for the second VNL
  --port N, --port2 N         port of the first/second VNL (prefer VNL[N])
  -D DESCR | --descr DESCR    description of this connection (default "vdeplug:")
  --retry SECS                reconnect SECS seconds after the switch, the other
                              VNL or the command went away (not in vdeplug4)
"""

BROKER = ("This is a Virtual Distributed Ethernet (vde) tunnel broker. \n"
          "This is not a login shell, only vde_plug can be executed\n")
SEND_TIMEOUT = 1.0
IPLOG_GROUP = "vdeplug_iplog"           # -c vde_plug logs addresses for its members
# open errors told with their reason (the others read as vdeplug4's)
_EXPLAINED = ("tap://", "grab://", "pcap://", "agno://", "tee://", "cmd://", "slirp://", "passt://", "qemu-")


class Options:
    def __init__(self):
        self.daemon = False
        self.pidfile = None
        self.log = False
        self.descr = "vdeplug:"
        self.group = [None, None]
        self.mode = [None, None]
        self.port = [None, None]
        self.vnls: list[str] = []
        self.command: list[str] | None = None
        self.retry: float | None = None     # reconnect after this many seconds
        self.iplog = False                  # -L: log the source addresses seen


def _usage_exit() -> None:
    sys.stderr.write(USAGE)
    raise SystemExit(255)


def parse(argv: list[str]) -> Options:
    res = getopt_long(list(argv), SHORTOPTS, LONGOPTS)
    for line in res.errors:
        sys.stderr.write(line + "\n")
    o = Options()
    for key, val in res.opts:
        if key == "?" or key == "h":
            _usage_exit()
        elif key == "c":
            if val != "vde_plug":
                sys.stderr.write(BROKER)
                raise SystemExit(255)
            o.log = True
            o.iplog = _in_group(os.getuid(), IPLOG_GROUP)
        elif key == "d":
            o.daemon = True
        elif key == "p":
            o.pidfile = os.path.abspath(val)
        elif key in ("l", "L"):
            o.log = True
            o.iplog = o.iplog or key == "L"
        elif key in ("g", "G"):
            o.group[key == "G"] = val
        elif key in ("m", "M"):
            o.mode[key == "M"] = scan_octal(val)
        elif key in ("port", "port2"):
            try:
                n = int(val)
            except ValueError:
                n = 0
            if n <= 0:
                _usage_exit()
            o.port[key == "port2"] = n
        elif key == "D":
            if val:
                o.descr = val
        elif key == "retry":
            try:
                o.retry = float(val)
            except ValueError:
                o.retry = -1.0
            if not 0 < o.retry < 86400:
                sys.stderr.write("%s: --retry wants seconds between 0 and 86400\n" % argv[0])
                _usage_exit()
    ops = res.operands
    if "=" in ops:
        i = ops.index("=")
        o.vnls, o.command = ops[:i], ops[i + 1:]
        if len(o.vnls) > 1 or not o.command:
            _usage_exit()
    else:
        o.vnls = ops
        if len(o.vnls) > 2:
            _usage_exit()
    return o


def _in_group(uid: int, group: str) -> bool:
    """Whether the user ``uid`` belongs to ``group`` (primary or supplementary)."""
    import grp
    import pwd
    try:
        pw = pwd.getpwuid(uid)
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        return False
    return gid in os.getgrouplist(pw.pw_name, pw.pw_gid)


class SessionLog:
    """-l/-L on syslog as vdeplug4 writes it (ident ``vde_plug``, facility
    user): ``START: user U IP H``, ``STOP: ...`` and, with -L, each new
    source address: ``user U Real-IP H has got VDE-IP4 A on vlan V``.
    H is the client address of an ssh session ($SSH_CLIENT)."""

    def __init__(self, iplog: bool):
        import pwd
        import syslog
        self.syslog = syslog
        try:
            self.user = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            self.user = str(os.getuid())
        client = os.environ.get("SSH_CLIENT")
        self.host = client.split()[0][:255] if client and client.split() else "UNKNOWN_IP_ADDRESS"
        self.seen = None
        if iplog:
            from ..engine.switch.iplog import SeenAddresses
            self.seen = SeenAddresses()
        syslog.openlog("vde_plug", 0, syslog.LOG_USER)

    def event(self, what: str) -> None:
        self.syslog.syslog(self.syslog.LOG_INFO, "%s: user %s IP %s" % (what, self.user, self.host))

    def frames(self, frames):
        """Log the new addresses among ``frames``; yield them all on."""
        check = self.seen.check
        for f in frames:
            new = check(f)
            if new is not None:
                self.syslog.syslog(self.syslog.LOG_INFO,
                                   "user %s Real-IP %s has got VDE-IP%d %s on vlan %d"
                                   % (self.user, self.host, new[0], new[1], new[2]))
            yield f


def _send_frames(plug: Plug, frames) -> None:
    """Send; on a full receiver wait a little (back-pressure), then drop."""
    send = plug.send
    for frame in frames:
        try:
            send(frame)
        except BlockingIOError:
            if select.select([], [plug], [], SEND_TIMEOUT)[1]:
                try:
                    send(frame)
                except OSError:
                    pass
        except OSError:
            pass                           # gone: the frame is lost, as on a wire


def _watch_ctl(loop: Loop, plug: Plug, on_close) -> None:
    if plug.ctl is not None:
        loop.add_reader(plug.ctl, lambda now: on_close())


def run_stream(loop: Loop, plug: Plug, fd_in: int, fd_out: int, ended=None,
               inspect=None) -> None:
    """Bridge a plug and a vdestream on (fd_in, fd_out) until either ends.

    When the stream's input ends, "input" is appended to ``ended``.
    """
    decoder = StreamDecoder(STREAM_MAX)
    recv = plug.recv
    hangup = plug.hangup_on_empty

    def from_stream(now: float) -> None:
        try:
            data = os.read(fd_in, 65536)
        except OSError:
            data = b""
        if not data:
            if ended is not None:
                ended.append("input")
            loop.stop()
            return
        frames = decoder.feed(data)
        _send_frames(plug, inspect(frames) if inspect is not None else frames)

    def from_plug(now: float) -> None:
        out = []
        for _ in range(64):
            try:
                frame = recv(STREAM_MAX)
            except (BlockingIOError, TimeoutError):
                break
            except OSError:
                loop.stop()
                break
            if len(frame) >= ETH_HLEN:
                out.append(encode(frame))
            elif not frame and hangup:
                loop.stop()
                break
        if out:
            try:
                _write_all(fd_out, b"".join(out))
            except OSError:
                loop.stop()

    try:
        loop.add_reader(fd_in, from_stream)
    except PermissionError:
        # epoll refuses regular files and /dev/null, which poll() reports
        # as always readable: read them once per loop turn instead.
        def every_turn(now: float) -> None:
            from_stream(now)
            loop.call_later(0, every_turn)
        loop.call_later(0, every_turn)
    loop.add_reader(plug, from_plug)
    _watch_ctl(loop, plug, loop.stop)


def run_cable(loop: Loop, a: Plug, b: Plug, inspect=None) -> None:
    """Copy frames both ways between two plugs (``inspect`` sees b's)."""
    def pump(src: Plug, dst: Plug, inspect=None):
        recv, hangup = src.recv, src.hangup_on_empty

        def on_readable(now: float) -> None:
            for _ in range(64):
                try:
                    frame = recv(STREAM_MAX)
                except (BlockingIOError, TimeoutError):
                    return
                except OSError:
                    loop.stop()
                    return
                if len(frame) >= ETH_HLEN:
                    _send_frames(dst, inspect((frame,)) if inspect is not None else (frame,))
                elif not frame and hangup:
                    loop.stop()
                    return
        return on_readable

    loop.add_reader(a, pump(a, b))
    loop.add_reader(b, pump(b, a, inspect))
    _watch_ctl(loop, a, loop.stop)
    _watch_ctl(loop, b, loop.stop)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _open(o: Options, i: int, loop: Loop) -> Plug:
    vnl = o.vnls[i] if i < len(o.vnls) else ""
    plug = open_plug(vnl, o.descr, port=o.port[i], group=o.group[i], mode=o.mode[i],
                     loop=loop)
    return plug


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    if argv and argv[0].startswith("-"):
        sys.stderr.write(BROKER)
        return 255
    o = parse(argv)
    prog = argv[0] if argv else "vde_plug"
    log = Logger(prog, syslog_ident="vde_plug")
    if o.daemon:
        daemonize()
    session_log = SessionLog(o.iplog) if o.log else None
    if session_log is not None:
        session_log.event("START")
    caught: list = []
    pidfile_written = False
    try:
        while True:
            status, ended, pidfile_written = _session(o, log, caught, pidfile_written,
                                                      session_log)
            # --retry: reconnect after the switch, the peer or the command went
            # away; not after a signal or the end of our own input
            if o.retry is None or caught or "input" in ended:
                return status
            if not _pause(o.retry, caught):
                return 0
    finally:
        if session_log is not None:
            session_log.event("STOP")
        if pidfile_written:
            try:
                os.unlink(o.pidfile)
            except OSError:
                pass
        if caught and caught[0] != signal.SIGTERM:
            signal.signal(caught[0], signal.SIG_DFL)
            os.killpg(os.getpgrp(), caught[0])


def _session(o: Options, log, caught: list, pidfile_written: bool, session_log=None):
    """Open the plugs, copy frames until something ends, close everything.

    Returns (exit status, how the stream ended, whether the pid file exists).
    """
    loop = Loop()
    _handle_signals(loop, caught)
    plugs: list[Plug] = []
    child = None
    ended: list = []
    try:
        for i in range(max(1, len(o.vnls))):
            try:
                plugs.append(_open(o, i, loop))
            except ConnectError as e:
                vnl = o.vnls[i] if i < len(o.vnls) else ""
                why = os.strerror(e.errno)
                if vnl.startswith(_EXPLAINED) or e.errno == errno.EPROTONOSUPPORT:
                    why = "%s (%s)" % (why, e)     # which privilege, file or plugin is missing
                sys.stderr.write("vde_open %s: %s\n" % (vnl or "default switch", why))
                return 1, ended, pidfile_written
        if o.pidfile and not pidfile_written:
            if not write_pidfile(o.pidfile, log):
                return 1, ended, pidfile_written
            pidfile_written = True
        inspect = session_log.frames if session_log is not None and session_log.seen else None
        if len(plugs) == 2:
            run_cable(loop, plugs[0], plugs[1], inspect)
        elif o.command is not None:
            child = subprocess.Popen(o.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     restore_signals=False)
            run_stream(loop, plugs[0], child.stdout.fileno(), child.stdin.fileno(),
                       inspect=inspect)
        else:
            run_stream(loop, plugs[0], 0, 1, ended, inspect)
        loop.run()
        return 0, ended, pidfile_written
    finally:
        for p in plugs:
            for sock in (p, p.ctl):
                if sock is not None:
                    loop.forget(sock)
            p.close()
        if child is not None:
            child.stdin.close()
            try:
                child.wait(timeout=2)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        loop.close()


def _pause(seconds: float, caught: list) -> bool:
    """Wait before reconnecting; False if a signal asked us to stop."""
    loop = Loop()
    _handle_signals(loop, caught)
    loop.call_later(seconds, lambda now: loop.stop())
    try:
        loop.run()
    finally:
        loop.close()
    return not caught


# Signals that would end the process and mean nothing to a plug.
_QUIET = ("SIGPIPE", "SIGALRM", "SIGUSR1", "SIGUSR2", "SIGPROF", "SIGVTALRM",
          "SIGPOLL", "SIGSTKFLT", "SIGIO", "SIGPWR")


def _handle_signals(loop: Loop, caught: list) -> list:
    """As vdeplug4's vde_plug: SIGTERM, SIGINT and SIGHUP end the plug
    after cleaning up (SIGTERM with status 0; the other two are then sent
    again to the whole process group); the quiet signals are ignored (the
    ``= cmd`` child inherits that).  Returns a list that receives the
    signal caught."""

    def on_signal(signum: int) -> None:
        caught.append(signum)
        loop.stop()

    for name in _QUIET:
        num = getattr(signal, name, None)
        if num is not None:
            signal.signal(num, signal.SIG_IGN)
    for num in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(num, on_signal)
    return caught


if __name__ == "__main__":
    sys.exit(main())
