"""vdeterm: line-editing terminal for vde_switch/wirefilter consoles (vde-2 2.3.2).

``vdeterm SOCKET``

Contract (matches the C tool):

* Connects to SOCKET (cut to 107 bytes; no argument: the path ``(null)``);
  failure: ``Socket connecting error: <strerror>`` and an empty line on
  stderr, exit status 255.
* Puts the terminal in non-canonical, no-echo mode (VMIN 1, VTIME 0; signals
  still work) and restores it at the end, always printing a newline on
  stderr when it finishes (exit, SIGHUP, SIGINT, SIGTERM; PIPE, ALRM, USR1,
  USR2, PROF, VTALRM, IO, STKFLT, PWR are ignored).
* Copies the console's banner to the terminal until a read ends with
  ``$ ``; the text before the ``$`` on that last line gives the prompt
  ``TEXT[SOCKET]: `` (printed once with a trailing NUL byte, as C does).
* Then the line editor of :mod:`vde_ipn.cli._vdehist` runs: it first loads
  the completion list with ``help``; a hang-up of the terminal or the
  console, EOF or ^D on the terminal, ``logout`` or ``shutdown`` end the
  program with status 0.
* If the console closes before its prompt was seen, vdeterm ends with
  status 0 (the C tool spins forever there).
"""
import os
import select
import signal
import sys

from vde_ipn.cli._vdehist import Hist
from vde_ipn.cli.unixterm import connect

BUFSIZE = 1024
_FATAL = ("SIGHUP", "SIGINT", "SIGTERM")
_IGNORED = ("SIGPIPE", "SIGALRM", "SIGUSR1", "SIGUSR2", "SIGPROF", "SIGVTALRM",
            "SIGIO", "SIGSTKFLT", "SIGPWR")


class _Terminal:
    """The saved terminal mode and the end-of-session cleanup."""

    def __init__(self):
        self.saved = None
        self.changed = False
        try:
            import termios
            self.saved = termios.tcgetattr(0)
        except Exception:           # not a terminal: nothing to restore
            self.saved = None

    def raw(self) -> None:
        if self.saved is None:
            return
        import termios
        mode = [list(x) if isinstance(x, list) else x for x in self.saved]
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        mode[3] &= ~(termios.ICANON | termios.ECHO)
        termios.tcsetattr(0, termios.TCSAFLUSH, mode)
        self.changed = True

    def cleanup(self) -> None:
        try:
            os.write(2, b"\n")
        except OSError:
            pass
        if self.changed:
            import termios
            try:
                termios.tcsetattr(0, termios.TCSAFLUSH, self.saved)
            except Exception:
                pass


def _signals(term: _Terminal) -> None:
    def fatal(sig, _frame):
        term.cleanup()
        signal.signal(sig, signal.SIG_DFL)
        if sig == signal.SIGTERM:
            os._exit(0)
        os.kill(os.getpid(), sig)
    for name in _FATAL:
        signal.signal(getattr(signal, name), fatal)
    for name in _IGNORED:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


def _banner(fd: int, sock_arg: bytes):
    """Copy the banner; the prompt, or None if the console went away."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    while True:
        poller.poll()
        while True:
            try:
                buf = os.read(fd, BUFSIZE)
            except BlockingIOError:
                break
            except OSError:
                return None
            if not buf:
                return None
            if len(buf) >= 2 and buf.endswith(b"$ "):
                n = len(buf) - 2
                while n > 0 and buf[n:n + 1] != b"\n":
                    n -= 1
                _term_write(buf[:n + 1])
                return buf[n + 1:len(buf) - 2] + b"[" + sock_arg + b"]: "
            _term_write(buf)


def _term_write(data: bytes) -> None:
    try:
        while data:
            data = data[os.write(1, data):]
    except OSError:
        pass


def main(argv) -> int:
    """Entry point; ``argv`` includes argv[0]; returns the exit status."""
    term = _Terminal()
    _signals(term)
    try:
        return _session(argv, term)
    finally:
        term.cleanup()


def _session(argv, term: _Terminal) -> int:
    sock_arg = argv[1] if len(argv) > 1 else None
    sock = connect(sock_arg, "Socket connecting error")
    if sock is None:
        return 255
    fd = sock.fileno()
    term.raw()
    sock.setblocking(False)
    prompt = _banner(fd, os.fsencode(sock_arg if sock_arg is not None else "(null)"))
    if prompt is None:
        return 0

    def mgmt_read(block):
        if block:
            select.select([fd], [], [])
        try:
            return os.read(fd, BUFSIZE)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def mgmt_write(data):
        try:
            os.write(fd, data)
        except OSError:
            pass

    def term_read():
        try:
            return os.read(0, BUFSIZE)
        except OSError:
            return b""

    hist = Hist(prompt, term_read, _term_write, mgmt_read, mgmt_write)
    hist.load_commands()
    _term_write(prompt + b"\0")
    poller = select.poll()
    poller.register(0, select.POLLIN | select.POLLHUP)
    poller.register(fd, select.POLLIN | select.POLLHUP)
    while True:
        try:
            events = dict(poller.poll())
        except InterruptedError:
            continue
        if (events.get(0, 0) | events.get(fd, 0)) & (select.POLLHUP | select.POLLERR
                                                     | select.POLLNVAL):
            return 0
        if events.get(0, 0) & select.POLLIN and hist.from_term() != 0:
            return 0
        if events.get(fd, 0) & select.POLLIN:
            hist.from_mgmt()
