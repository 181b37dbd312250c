"""``vde_autolink``: drop-in for vde2 2.3.2's self-healing links between switches.

Command line (getopt_long_only as vde2 builds it, ``hf:dp:M:s:S:`` and
``--mgmtmode``)::

    vde_autolink -s SWITCH_SOCK -S SWITCH_MGMT [-M SOCK [--mgmtmode MODE]]
                 [-f RCFILE] [-d] [-p PIDFILE]

It logs into the switch's management socket, follows its fast spanning
tree events (``debug/add fstp/+``, ``fstp/-``, ``fstp/status``), reserves
ports with ``port/create`` and runs the wire commands of
:mod:`vde_ipn.engine.autolink`, killing and replacing them (SIGQUIT) as
the links fail.  Its console (a terminal on stdin, ``-M``) takes
2.3.2's commands with 2.3.2's answers; the rc file is
``-f``, ``~/.vde2/vde_autolink.rc`` or ``/etc/vde2/vde_autolink.rc``.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import syslog

from ..engine.autolink import HEADER, PROMPT, AutoLink
from ..io.loop import Loop
from ..io.unix_listen import listen_unix
from ..wire.c_numbers import scan_octal
from ._getopt import LongOpt, getopt_long_only
from ._process import daemonize

SHORTOPTS = "hf:dp:M:s:S:"
LONGOPTS = (LongOpt("help", 0, "h"), LongOpt("rcfile", 1, "f"), LongOpt("daemon", 0, "d"),
            LongOpt("pidfile", 1, "p"), LongOpt("mgmt", 1, "M"), LongOpt("mgmtmode", 1, "mode"),
            LongOpt("sock", 1, "s"), LongOpt("switchmgmt", 1, "S"))
STDRCFILE = "/etc/vde2/vde_autolink.rc"
MAXCONS = 4
LINE_MAX = 128
EVENTS = ("fstp/+", "fstp/-", "fstp/status")

USAGE = """\
  -h, --help                 Display this help
  -f, --rcfile               Configuration file (overrides %s and ~/.vde_autolinkrc)
  -d, --daemon               Daemonize vde_autolink once run
  -p, --pidfile PIDFILE      Write pid of daemon to PIDFILE
  -M, --mgmt SOCK            Path of the management UNIX socket
      --mgmtmode MODE        Management UNIX socket access mode (octal)
  -s, --sock             [*] Attach to this vde_switch socket
  -S, --switchmgmt       [*] Attach to this vde_switch management socket
  [*] == Required option!
""" % STDRCFILE


class SwitchMgmt:
    """A session on the switch's management socket: commands, and the
    asynchronous debug lines (``3TTT event text``) handed to ``on_event``."""

    def __init__(self, path: str, on_event):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(path)
        self.buf = b""
        self.on_event = on_event
        self.pending: list = []
        self.watched = False             # non-blocking between commands
        self._until(b"$ ")

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("switch closed connection")
            self.buf += data
        head, self.buf = self.buf.split(marker, 1)
        return head

    def command(self, line: str) -> int:
        """Run one command; its status (1000 -> 0)."""
        self.sock.settimeout(5)
        try:
            self.sock.sendall(line.encode() + b"\n")
            text = self._until(b"\nvde$ ").decode("utf-8", "replace")
        finally:
            if self.watched:
                self.sock.setblocking(False)
        rc = errno.EIO
        for row in text.split("\n"):
            if row[:1] == "3" and row[1:4].isdigit():
                self.pending.append(row)
            elif row[:1] == "1" and row[1:4].isdigit():
                rc = int(row[1:4]) % 1000
        return rc

    def readable(self) -> bool:
        """Read what came; False when the switch closed the session."""
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, socket.timeout):
            return True
        except OSError:
            return False
        if not data:
            return False
        self.buf += data
        while b"\n" in self.buf:
            row, self.buf = self.buf.split(b"\n", 1)
            self.pending.append(row.decode("utf-8", "replace"))
        self.dispatch()
        return True

    def dispatch(self) -> None:
        rows, self.pending = self.pending, []
        for row in rows:
            if row[:1] == "3" and row[1:4].isdigit():
                event, _, data = row[5:].partition(" ")
                self.on_event(event, data)


class Effects:
    def __init__(self, tool):
        self.tool = tool

    def spawn(self, argv) -> int:
        try:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL).pid
        except OSError as e:
            self.log("wire %s: %s" % (argv[0] if argv else "", e.strerror))
            return -1

    @staticmethod
    def kill(pid: int) -> None:
        try:
            os.kill(pid, signal.SIGQUIT)
        except ProcessLookupError:
            pass

    def wait(self, pid: int, timeout: float = 3.0) -> None:
        """Reap a killed wire (SIGKILL if it lingers)."""
        import time
        deadline = time.monotonic() + timeout
        while True:
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return
            if done:
                return
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.02)

    def port_create(self, n: int) -> bool:
        return self.tool.switch.command("port/create %d" % n) == 0

    def port_remove(self, n: int) -> None:
        """``port/remove``; retried for a moment while the switch has not
        yet seen a killed wire's plug go."""
        import time
        for _ in range(20):
            try:
                if self.tool.switch.command("port/remove %d" % n) != errno.EADDRINUSE:
                    return
            except OSError:
                return
            time.sleep(0.05)

    def log(self, msg: str) -> None:
        self.tool.log(msg)


class Tool:
    def __init__(self, prog: str, sock: str, loop: Loop, to_syslog: bool):
        self.prog, self.loop = prog, loop
        self.to_syslog = to_syslog
        self.al = AutoLink(sock, Effects(self))
        self.switch = None
        self.listener = None
        self.mgmt_path = None
        self.sessions = 0

    def log(self, msg: str) -> None:
        if self.to_syslog:
            syslog.syslog(syslog.LOG_NOTICE, msg)
        else:
            sys.stderr.write("%s: %s\n" % (self.prog, msg))

    # -- switch ----------------------------------------------------------------
    def attach(self, path: str) -> None:
        self.switch = SwitchMgmt(path, self._event)
        for event in EVENTS:
            if self.switch.command("debug/add " + event) != 0:
                raise OSError(errno.EIO, "cannot register async handler on switch")
        self.switch.watched = True
        self.switch.sock.setblocking(False)
        self.loop.add_reader(self.switch.sock, self._switch_readable)
        self.switch.dispatch()

    def _event(self, event: str, data: str) -> None:
        if event in EVENTS:
            self.al.fstp_event(event, data, self.loop.clock())

    def _switch_readable(self, now: float) -> None:
        if not self.switch.readable():
            self.log("switch closed connection, exiting")
            self.exit_code = 1
            self.loop.stop()

    def command(self, line: str) -> tuple[str | None, int | None]:
        out = self.al.command(line, self.loop.clock(), self._runscript)
        self.switch.dispatch()
        return out

    def _runscript(self, path: str):
        try:
            f = open(path, "rb")
        except OSError:
            return [], errno.ENOENT
        lines = []
        with f:
            for raw in _fgets_lines(f.read()):
                text = raw.decode("utf-8", "replace")
                lines.append("%s[%s]: %s" % ("vde_autolink", path, text))
                out, _rc = self.al.command(text, self.loop.clock(), self._runscript)
                if out:
                    lines.append(out.rstrip("\n"))
        return lines, 0

    def load_rc(self, rcfile: str | None) -> None:
        path = rcfile
        if path is None:
            home = os.path.join(os.environ.get("HOME", ""), ".vde2", "vde_autolink.rc")
            path = home if os.access(home, os.R_OK) else (
                STDRCFILE if os.access(STDRCFILE, os.R_OK) else None)
        if path is not None:
            self._runscript(path)

    # -- consoles --------------------------------------------------------------------
    def console(self, rfd: int, wfd: int, conn=None) -> None:
        buf = [b""]
        self.sessions += 1

        def write(text: str) -> None:
            try:
                data = text.encode()
                while data:
                    data = data[os.write(wfd, data):]
            except OSError:
                pass

        def readable(now: float) -> None:
            try:
                data = os.read(rfd, 4096)
            except OSError:
                data = b""
            if not data:
                end()
                return
            buf[0] += data
            while b"\n" in buf[0]:
                raw, buf[0] = buf[0].split(b"\n", 1)
                out, rc = self.command(raw[:LINE_MAX].decode("utf-8", "replace"))
                if out is None:                     # shutdown
                    self.log("Shutdown from mgmt command")
                    self.exit_code = 0
                    self.loop.stop()
                    return
                write(out + PROMPT)

        def end() -> None:
            self.loop.forget(rfd)
            self.sessions -= 1
            if conn is not None:
                conn.close()
            else:                                   # the terminal went away
                self.exit_code = 0
                self.loop.stop()
        if conn is not None:
            write(HEADER + PROMPT)
        self.loop.add_reader(rfd, readable)

    def open_mgmt(self, path: str, mode: int) -> None:
        s = listen_unix(path, mode)
        self.listener, self.mgmt_path = s, path

        def accept(now: float) -> None:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            if self.sessions + 2 >= MAXCONS + 1:
                self.log("too many mgmt connections")
                conn.close()
                return
            self.console(conn.fileno(), conn.fileno(), conn)
        self.loop.add_reader(s, accept)

    def close(self) -> None:
        try:
            self.al.shutdown()
        except OSError:
            pass
        if self.switch is not None:
            for event in EVENTS:
                try:
                    self.switch.command("debug/del " + event)
                except OSError:
                    break
            self.switch.sock.close()
        if self.listener is not None:
            self.listener.close()
            try:
                os.unlink(self.mgmt_path)
            except OSError:
                pass


def _fgets_lines(data: bytes):
    """Lines as fgets() into a 128-byte buffer reads them (newline removed)."""
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos, pos + LINE_MAX - 1)
        if end < 0:
            end = min(len(data), pos + LINE_MAX - 1)
            yield data[pos:end]
            pos = end
        else:
            yield data[pos:end]
            pos = end + 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    prog = os.path.basename(argv[0]) if argv else "vde_autolink"
    res = getopt_long_only(list(argv), SHORTOPTS, LONGOPTS)
    for line in res.errors:
        sys.stderr.write(line + "\n")
    opts = {"f": None, "d": False, "p": None, "M": None, "mode": 0o700, "s": None, "S": None}
    show_usage = False
    for key, val in res.opts:
        if key in ("f", "p", "M", "s", "S"):
            opts[key] = val
        elif key == "d":
            opts["d"] = True
        elif key == "mode":
            opts["mode"] = scan_octal(val)
        else:
            show_usage = True
    if show_usage or res.operands or not opts["s"] or not opts["S"]:
        sys.stdout.write(USAGE)
        sys.stdout.flush()
    if not opts["s"] or not opts["S"]:
        sys.stderr.write("%s: cannot open %s\n\n" % (prog, opts["S"] or "(null)"))
        return 255
    loop = Loop()
    tool = Tool(prog, opts["s"], loop, to_syslog=opts["d"])
    tool.exit_code = 0
    if opts["d"]:
        syslog.openlog(prog, syslog.LOG_PID, syslog.LOG_USER)
        syslog.syslog(syslog.LOG_INFO, "VDE_AUTOLINK started")
        daemonize()
    pidfile = os.path.abspath(opts["p"]) if opts["p"] else None
    try:
        if pidfile:
            try:
                fd = os.open(pidfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(fd, b"%d\n" % os.getpid())
                os.close(fd)
            except OSError as e:
                tool.log("Error in pidfile creation: %s" % e.strerror)
                return 1
        try:
            tool.attach(opts["S"])
        except OSError as e:
            tool.log("cannot open %s\n" % opts["S"])
            return 255
        if opts["M"]:
            try:
                tool.open_mgmt(opts["M"], opts["mode"])
            except OSError as e:
                sys.stderr.write("%s: mgmt bind %s" % (prog, e.strerror))
                return 1
        if os.isatty(0) and not opts["d"]:
            tool.console(0, 1)
        tool.load_rc(opts["f"])

        def reap(signum: int) -> None:
            while True:
                try:
                    pid, _status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    return
                tool.al.wire_exited(pid)
        loop.add_signal_handler(signal.SIGCHLD, reap)
        for num in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(num, lambda s: loop.stop())
        for name in ("SIGPIPE", "SIGALRM", "SIGUSR1", "SIGUSR2", "SIGPROF", "SIGVTALRM",
                     "SIGPOLL", "SIGIO", "SIGPWR"):
            num = getattr(signal, name, None)
            if num is not None:
                signal.signal(num, signal.SIG_IGN)
        loop.call_every(0.5, tool.al.run_jobs)
        loop.run()
        return tool.exit_code
    finally:
        tool.close()
        loop.close()
        if pidfile:
            try:
                os.unlink(pidfile)
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main())
