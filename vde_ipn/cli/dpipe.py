"""dpipe: connect commands with pairs of pipes (drop-in for vdeplug4 4.0.1).

``dpipe [OPTIONS] cmd1 [args] = cmd2 [args] [= cmd3 [args] ...]``

* ``a = b``: a.stdout -> b.stdin and b.stdout -> a.stdin.  In a chain a middle
  command talks to its left neighbour on stdin/stdout and to its right one on
  the two lowest fds free at start-up (normally 3 and 4), exported to every
  child as ``ALTERNATE_STDIN`` / ``ALTERNATE_STDOUT``.
* ``=} b }=`` puts b on the left->right path only, ``={ b {=`` on the
  right->left path only; any word starting with ``=`` separates commands.
* Usage errors (``=`` first or last, fewer than 3 words, unclosed ``=}``):
  usage on stderr, SIGTERM to dpipe's own process group, exit status 0.
  ``-h``: usage, then dpipe ends itself (only itself) with SIGTERM.
* dpipe becomes a process-group leader (``-d``: a daemon), forks every
  command and waits for all; the exit status is the last command's (0 if a
  signal killed it).  A command that cannot be executed exits 127 silently.
  SIGTERM/SIGINT/SIGHUP remove the pid files and SIGTERM the last command;
  PIPE, ALRM, USR1, ... are ignored by dpipe and so by the commands.
* ``-p F`` writes dpipe's pid, ``-P F`` ``-<pgrp>``; dpipe, or a child that
  fails to exec, removes them when it exits.  ``-n``: the last command
  replaces dpipe and a helper removes the files once it is gone; ``-N``: the
  same without the helper.
"""
import errno
import os
import signal
import sys
import time

from vde_ipn.cli._getopt import LongOpt, getopt_long
from vde_ipn.cli._process import daemonize

USAGE = (
    "Usage:\n"
    "  %s [OPTIONS} cmd1 [arg1...] = cmd2 [arg2...] [ = cmd3 [arg3...] ]\n"
    "    using: ... =} cmd [arg] }= ...\n"
    "       or: ... ={ cmd [arg] {= ...\n"
    "    instead of ... = cmd [arg] = ...\n"
    "  means that the intermediate command processes data flowing in one"
    " direction only\n"
    "  (left to right, or right to left respectively as indicated by the"
    " brackets)\n"
    "OPTIONS:\n"
    "  -p PIDFILE | --pidfile PIDFILE     write process id to PIDFILE\n"
    "  -P PGRPFILE | --pgrpfile PGRPFILE  write process group id to PIDFILE\n"
    "  -d | --daemon                      daemonize the process group\n"
    "  -n | --nowrapproc                  do not create the dpipe parent"
    " process\n"
    "  -N | --nowrapnoclean               -n and do not remove pid/pgrp file\n"
    "  -h | --help                        show this short summary\n")

SHORTOPTS = "+dp:P:hnN"
LONGOPTS = (LongOpt("nowrapproc", 0, "n"), LongOpt("nowrapnoclean", 0, "N"),
            LongOpt("pidfile", 1, "p"), LongOpt("pgrpfile", 1, "P"),
            LongOpt("daemon", 0, "d"), LongOpt("help", 0, "h"))

_QUIET = ("SIGPIPE", "SIGALRM", "SIGUSR1", "SIGUSR2", "SIGPROF", "SIGVTALRM",
          "SIGPOLL", "SIGSTKFLT", "SIGIO", "SIGPWR")
_LINUX = sys.platform.startswith("linux")
_CLEAN = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)
_PATH_SKIP = (errno.EACCES, errno.ENOENT, errno.ESTALE, errno.ENOTDIR,
              errno.ENODEV, errno.ETIMEDOUT)


def parse_options(argv):
    """The one place where dpipe's command line is parsed.

    Returns ``(opts, operands)``: opts lists ``(key, value)`` in order, with
    ``("?", message)`` for each diagnostic, operands is the command chain.
    """
    result = getopt_long(argv, SHORTOPTS, LONGOPTS)
    errors = iter(result.errors)
    return [(key, next(errors, "") + "\n" if key == "?" else value)
            for key, value in result.opts], result.operands


def _split(words, dirchar):
    """Index of the next separator in words and the direction it opens."""
    for i, word in enumerate(words):
        if word == "" and not dirchar and i + 1 < len(words) \
                and words[i + 1][:1] == "=":
            word = words[i + 1]     # as vdeplug4 reads past the empty word
        elif dirchar and word[:1] == dirchar and word[1:2] == "=":
            word, dirchar = word[1:], ""
        if word[:1] == "=":
            if word[1:2] in ("{", "}"):
                dirchar = word[1:2]
            return i, dirchar
    return len(words), dirchar


def _execvp(args):
    """Run args like glibc's execvp (shell fallback on ENOEXEC); on failure
    return to the caller."""
    name = args[0]
    if not name:
        return
    if "/" in name:
        paths = [name]
    else:
        path = os.environ.get("PATH")
        path = "/bin:/usr/bin" if path is None else path
        paths = [(d + "/" if d else "") + name for d in path.split(":")]
    for path in paths:
        try:
            os.execv(path, args)
        except OSError as err:
            if err.errno == errno.ENOEXEC:
                try:
                    os.execv("/bin/sh", ["/bin/sh", path] + args[1:])
                except OSError:
                    return
            if err.errno not in _PATH_SKIP:
                return


def _close_except(fds, moves):
    keep = {src for src, _ in moves}
    for fd in fds:
        if fd >= 0 and fd not in keep:
            os.close(fd)


class _Dpipe:
    def __init__(self, prog):
        self.prog = prog
        self.files = []
        self.lastpid = -1

    def cleanup(self):
        for path in self.files:
            try:
                os.unlink(path)
            except OSError:
                pass

    def exit(self, status):
        self.cleanup()
        os._exit(status)

    def on_signal(self, sig, frame):
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        self.cleanup()
        if self.lastpid >= 0:
            os.kill(self.lastpid, signal.SIGTERM)
        signal.signal(sig, signal.SIG_DFL)
        if sig == signal.SIGTERM:
            os._exit(0)
        os.kill(-os.getpgrp(), sig)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signal.valid_signals())

    def usage_error(self):
        sys.stderr.write(USAGE % self.prog)
        sys.stderr.flush()
        os.kill(-os.getpgrp(), signal.SIGTERM)
        self.exit(255)

    def write_file(self, path, text):
        try:
            with open(path, "w") as f:
                f.write(text)
        except OSError:
            return
        self.files.append(path)

    def fork(self):
        """fork() with the cleanup signals held back in the child until
        exec_args (a Python handler could otherwise be lost by exec)."""
        signal.pthread_sigmask(signal.SIG_BLOCK, _CLEAN)
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _CLEAN)
        return pid

    def exec_args(self, args):
        """Handle held-back signals, then exec args; 127 if impossible."""
        signal.pthread_sigmask(signal.SIG_BLOCK, _CLEAN)
        pending = signal.sigpending()
        for sig in _CLEAN:
            if sig in pending:
                self.on_signal(sig, None)
        for sig in _CLEAN:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _CLEAN)
        _execvp(args)
        self.exit(127)

    def run_child(self, args, moves, pipes):
        """In a fresh child: keep only the pipe ends moved (dup2) onto their
        targets, then exec args."""
        _close_except(pipes, moves)
        for src, dst in moves:
            if src != dst:
                os.dup2(src, dst)
                os.close(src)
            os.set_inheritable(dst, True)
        self.exec_args(args)

    def start(self, words, nowrap, helper):
        """Fork the chain; return the pid of the last command."""
        split, dirchar = _split(words, "")
        if len(words) < 3 or split == 0 or split >= len(words) - 1:
            self.usage_error()
        olddir, targets = "", (0, 1)    # the first command uses stdin/stdout
        while True:
            r1, w1 = os.pipe()
            r2, w2 = os.pipe() if not olddir else (-1, -1)
            if not olddir:      # ... = this = ...: both ways, two pipes
                child = ((r1, targets[0]), (w2, targets[1]))
                parent = ((r2, 0), (w1, 1))
            elif olddir == "{":     # ={ this {=: right to left only
                child, parent = ((r1, 0),), ((w1, 1),)
            else:                   # =} this }=: left to right only
                child, parent = ((w1, 1),), ((r1, 0),)
            if self.fork() == 0:
                self.run_child(words[:split], child, (r1, w1, r2, w2))
            _close_except((r1, w1, r2, w2), parent)
            for src, dst in parent:
                os.dup2(src, dst)
                os.close(src)
            words, olddir, targets = words[split + 1:], dirchar, self.alt
            split, dirchar = _split(words, olddir)
            if split >= len(words):
                break
            if len(words) < 3 or split == 0 or split == len(words) - 1:
                self.usage_error()
        if dirchar:
            self.usage_error()
        if nowrap:
            parent = os.getpid()
            if helper and self.fork() == 0:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _CLEAN)
                os.close(0)
                os.close(1)
                while True:
                    try:
                        os.kill(parent, 0)
                    except OSError:
                        break
                    time.sleep(1)
                self.exit(0)
            self.exec_args(words)
        last = self.fork()
        if last == 0:
            self.exec_args(words)
        os.close(0)
        os.close(1)
        return last

    def wait(self, last):
        self.lastpid, status = last, -1
        while True:
            try:
                pid, wstatus = os.waitpid(-1, 0)
            except OSError:
                return status
            if pid == last:
                status = os.WEXITSTATUS(wstatus)


def main(argv):
    """Run dpipe with argv (argv[0] is the program name); return the exit
    status of the last command."""
    prog, given = argv[0], {}
    opts, words = parse_options(argv)
    for key, value in opts:
        if key == "?":
            sys.stderr.write(value)
        elif key == "h":
            sys.stderr.write(USAGE % prog)
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGTERM)
            return 255
        else:
            given[key] = value
    pidfile, pgrpfile = given.get("p"), given.get("P")
    nowrap, noclean = "n" in given or "N" in given, "N" in given
    sys.stderr.flush()
    if "d" in given:
        try:
            daemonize()
        except OSError as err:
            sys.stderr.write("%s daemonize: %s\n" % (prog, err.strerror))
            return 1
    else:
        try:
            os.setpgrp()
        except OSError:
            sys.stderr.write("Err: cannot create pgrp\n")
            return 1
    run = _Dpipe(prog)
    for sig in _CLEAN:
        signal.signal(sig, run.on_signal)
    for name in _QUIET:
        if hasattr(signal, name) or name == "SIGSTKFLT" and _LINUX:
            signal.signal(getattr(signal, name, 16), signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    if pidfile is not None:
        run.write_file(pidfile, "%d\n" % os.getpid())
    if pgrpfile is not None:
        run.write_file(pgrpfile, "-%d\n" % os.getpgrp())
    run.alt = [os.open(os.devnull, os.O_RDONLY) for _ in "io"]
    for fd, name in zip(run.alt, ("ALTERNATE_STDIN", "ALTERNATE_STDOUT")):
        os.close(fd)
        os.environ[name] = str(fd)
    helper = (pidfile is not None or pgrpfile is not None) and not noclean
    try:
        status = run.wait(run.start(words, nowrap, helper))
    finally:
        run.cleanup()
    return status
