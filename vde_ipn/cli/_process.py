"""Process helpers shared by the drop-ins: daemon mode and pid files."""

from __future__ import annotations

import os


def daemonize() -> None:
    """``daemon(0, 0)``: background, new session, cwd /, stdio on /dev/null."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


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
