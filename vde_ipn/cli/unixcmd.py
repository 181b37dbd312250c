"""unixcmd: one-shot management command through a script machine (vde-2 2.3.2).

``unixcmd [-v] [-f rcfile] [-s sockname] command [args...]``

Contract (matches Debian's unixcmd 2.3.2+r586):

* Options are parsed by getopt_long (``f:s:v``, ``--rcfile``, ``--sock``,
  ``--verbose``; words are permuted).  A long option that is not spelled
  exactly as one of those three (an abbreviation or an unknown one) crashes
  the C tool with SIGSEGV (its option table lacks the terminator): so does
  this one.  Unknown short options are reported and otherwise ignored.
* No command word: the usage text on stdout, exit status 255.
* The script is ``-f`` or ``/etc/vde2/<basename argv0>``; a missing one:
  ``alloc parse machine: No such file or directory`` on stderr, the usage,
  255.  The socket is ``-s`` or ``/var/run/<basename argv0>`` (cut to 107
  bytes); a failed connect: ``connect: <strerror>`` on stderr, 255.
* The machine (:mod:`vde_ipn.wire.mgmt_script`) runs over the socket; at the
  end the first output buffer (each COPY'd line followed by a NUL byte) is
  written to stdout and the machine's value is the exit status (& 0xff).
  A machine that runs off its script dies of SIGSEGV, as the C one.
* ``-v`` prints the argument list and a ``NOW <state> parsing <buffer>``
  line per step on stdout; as C stdio does, they appear as they go on a
  terminal, and after the output buffer (but for whole 4096-byte blocks
  already flushed) when stdout is a pipe or file.
"""
import errno
import os
import select
import signal
import socket
import sys

from vde_ipn.cli._getopt import REQUIRED_ARG, NO_ARG, LongOpt, getopt_long
from vde_ipn.wire import mgmt_script as ms

RC_DIR = "/etc/vde2"
SOCK_DIR = "/var/run"
SUN_PATH_MAX = 107
STDIO_BLOCK = 4096

LONGOPTS = (LongOpt("rcfile", REQUIRED_ARG, "f"), LongOpt("sock", REQUIRED_ARG, "s"),
            LongOpt("verbose", NO_ARG, "v"))


def _basename(path: str) -> str:
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path else "."
    return stripped.rsplit("/", 1)[-1]


def _usage(progname: str) -> None:
    base = _basename(progname)
    sys.stdout.write("Usage: %s OPTIONS command\n" % progname)
    sys.stdout.write("\t-s sockname  management socket path (default is %s/%s)\n"
                     % (SOCK_DIR, base))
    sys.stdout.write("\t-f rcfile    configuration path (default is %s/%s)\n"
                     % (RC_DIR, base))
    sys.stdout.write("\t-v           run parse machine in debug mode\n")
    sys.stdout.flush()


def _segfault() -> int:
    """Die the way the C tool does on its invalid memory accesses."""
    sys.stdout.flush()
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    signal.signal(signal.SIGSEGV, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGSEGV)
    return 139


def _bad_long_option(argv) -> bool:
    """True when getopt_long would look a long option up past the table."""
    names = {opt.name: opt.has_arg for opt in LONGOPTS}
    posix = "POSIXLY_CORRECT" in os.environ
    i = 1
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return False
        if word.startswith("--"):
            name, eq, _ = word[2:].partition("=")
            if name not in names:
                return True
            i += 1 + (names[name] == REQUIRED_ARG and not eq)
            continue
        if word.startswith("-") and word != "-":
            for k, ch in enumerate(word[1:], 1):
                if ch in "fs":
                    i += 0 if k + 1 < len(word) else 1
                    break
        elif posix:
            return False
        i += 1
    return False


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data):]
        except BrokenPipeError:
            return


def _run(machine: ms.Machine, sock: socket.socket, debug_out: bytearray,
         live_debug: bool) -> ms.Action:
    fd = sock.fileno()
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        act = machine.step()
        if isinstance(act, ms.Debug):
            if live_debug:
                _write_all(1, act.text)
            else:
                debug_out += act.text
        elif isinstance(act, ms.Send):
            try:
                os.write(fd, act.data)
            except BlockingIOError:
                pass
        elif isinstance(act, ms.Read):
            machine.feed(_read(fd, poller, act.timeout))
        else:
            return act


def _read(fd: int, poller, timeout: int) -> bytes:
    while True:
        try:
            if not poller.poll(timeout if timeout >= 0 else None):
                return b""
            return os.read(fd, ms.READ_SIZE)
        except InterruptedError:
            continue
        except BlockingIOError:
            continue
        except OSError:
            return b""


def main(argv) -> int:
    """Entry point; ``argv`` includes argv[0]; returns the exit status."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    argv = list(argv)
    if _bad_long_option(argv):
        return _segfault()
    res = getopt_long(argv, "f:s:v", LONGOPTS)
    for line in res.errors:
        sys.stderr.write(line + "\n")
    rcfile = sockname = None
    debug = False
    for key, val in res.opts:
        if key == "f":
            rcfile = val
        elif key == "s":
            sockname = val
        elif key == "v":
            debug = True
    if not res.operands:
        _usage(argv[0])
        return 255
    base = _basename(argv[0])
    if rcfile is None:
        rcfile = "%s/%s" % (RC_DIR, base)
    try:
        with open(rcfile, "rb") as f:
            text = f.read()
    except IsADirectoryError:
        text = b""
    except OSError:
        sys.stderr.write("alloc parse machine: %s\n" % os.strerror(errno.ENOENT))
        _usage(argv[0])
        return 255
    script = ms.parse_script(text)
    if sockname is None:
        sockname = "%s/%s" % (SOCK_DIR, base)
    path = os.fsencode(sockname)[:SUN_PATH_MAX]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        try:
            sock.connect(path)
        except OSError as e:
            sys.stderr.write("connect: %s\n" % os.strerror(e.errno or errno.EINVAL))
            return 255
        live = debug and os.isatty(1)
        debug_out = bytearray()
        machine = ms.Machine(script, [os.fsencode(a) for a in res.operands], debug)
        sys.stdout.flush()
        act = _run(machine, sock, debug_out, live)
        flushed = ((len(debug_out) - 1) // STDIO_BLOCK) * STDIO_BLOCK if debug_out else 0
        _write_all(1, bytes(debug_out[:flushed]))
        if isinstance(act, ms.Fault):
            return _segfault()
        _write_all(1, bytes(machine.outputs[0].data))
        _write_all(1, bytes(debug_out[flushed:]))
        return act.status & 0xFF
    finally:
        sock.close()
