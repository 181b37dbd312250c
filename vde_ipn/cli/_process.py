"""Process helpers shared by the drop-ins: daemon mode and pid files."""

from __future__ import annotations

import os


def daemonize() -> None:
    """glibc ``daemon(0, 0)``: one fork (the parent exits 0), a new session,
    cwd ``/`` and stdin/stdout/stderr on ``/dev/null``."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


def pidfile_path(name: str) -> str:
    """Where the C tools put a pid file: start cwd + "/" + name if relative
    (computed before daemonizing, not normalised)."""
    if name.startswith("/"):
        return name
    return os.getcwd() + "/" + name


def write_pidfile(path: str, log) -> bool:
    """Create ``path`` exclusively with our pid; log and return False on error."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as e:
        log("Error in pidfile creation: %s" % e.strerror)
        return False
    with os.fdopen(fd, "w") as f:
        f.write("%d\n" % os.getpid())
    return True


def remove_pidfile(path: str, shown: str, log) -> None:
    """Unlink the pid file at exit; a failure is logged with the name as given."""
    try:
        os.unlink(path)
    except OSError as e:
        log("Couldn't remove pidfile '%s': %s" % (shown, e.strerror))
