"""The switch's control directory: creation, permissions, stale detection.

Follows vde_switch 2.3.2 (wire-protocol reference, section 1.1):
``mkdir(dir, 0777)`` -> chown group -> chmod dirmode -> bind ``ctl`` ->
chmod mode -> chown group -> listen.  A ``ctl`` left by a dead switch
(connecting is refused) is replaced; one that a live switch answers on,
or that cannot be proved dead, is an error.
"""

from __future__ import annotations

import errno
import os
import socket
import stat

DEFAULT_MODE = 0o600
DEFAULT_DIRMODE = 0o2700
BACKLOG = 15
PROBE_TIMEOUT = 1.0


def default_dir() -> str:
    return "/var/run/vde.ctl" if os.geteuid() == 0 else "/tmp/vde.ctl"


def derive_modes(mode: int | None, dirmode: int | None) -> tuple[int, int]:
    """(ctl mode, dir mode) from ``-m`` and ``--dirmode`` as the C switch does."""
    if mode is None and dirmode is None:
        return DEFAULT_MODE, DEFAULT_DIRMODE
    if dirmode is None:
        dirmode = 0o2000
        for rw, x in ((0o600, 0o100), (0o060, 0o010), (0o006, 0o001)):
            if mode & rw:
                dirmode |= (mode & rw) | x
    elif mode is None:
        mode = dirmode & 0o666
    return mode, dirmode


class AddressInUse(OSError):
    """A live switch already answers on this ``ctl``."""


def open_ctl(path: str, mode: int, dirmode: int, gid: int = -1) -> tuple[str, socket.socket]:
    """Create the directory and the listening ``ctl``; return (realdir, sock).

    Raises:
        AddressInUse: another live switch owns the directory.
        OSError: the directory or socket cannot be made.
    """
    try:
        os.mkdir(path, 0o777)
    except FileExistsError:
        pass
    real = os.path.realpath(path)
    if gid != -1:
        os.chown(real, -1, gid)
    os.chmod(real, dirmode)
    ctl_path = os.path.join(real, "ctl")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        _bind_replacing_stale(sock, ctl_path)
        os.chmod(ctl_path, mode)
        if gid != -1:
            os.chown(ctl_path, -1, gid)
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return real, sock


def _bind_replacing_stale(sock: socket.socket, path: str) -> None:
    try:
        sock.bind(path)
        return
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise
    if is_alive(path):
        raise AddressInUse(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE), path)
    # only a socket is replaced: a file or symlink planted under that name
    # is refused, since a root switch would otherwise bind where it points
    if not stat.S_ISSOCK(os.lstat(path).st_mode):
        raise OSError(errno.EEXIST, "exists and is not a socket", path)
    os.unlink(path)
    sock.bind(path)


def is_alive(path: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """False only when ``path`` is provably dead (nothing listens on it).

    ECONNREFUSED and ENOENT prove it; any other failure (EACCES on
    another user's socket, a backlog so full that connecting times
    out...) counts as alive, so a live socket is never removed.
    """
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(timeout)
    try:
        probe.connect(path)
        return True
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:
        return True
    finally:
        probe.close()


def remove_ctl(real: str, log) -> None:
    """Remove ``ctl`` and the directory unless another switch took it over."""
    ctl_path = os.path.join(real, "ctl")
    if is_alive(ctl_path):
        log("Cleanup not removing files")
        return
    try:
        os.unlink(ctl_path)
    except FileNotFoundError:
        pass
    try:
        os.rmdir(real)
    except OSError as e:
        log("Could not remove ctl dir '%s': %s" % (real, e.strerror))
