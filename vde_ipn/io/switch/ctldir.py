"""The switch's control directory: creation, permissions, stale detection.

Follows vde_switch 2.3.2 (wire-protocol reference, section 1.1):
``mkdir(dir, 0777)`` -> chown group -> chmod dirmode -> bind ``ctl`` ->
chmod mode -> chown group -> listen.  A ``ctl`` left by a dead switch
(connecting is refused) is replaced; one that a live switch answers on,
or that cannot be proved dead, is an error.

Unlike 2.3.2, a directory is only chmod'ed, chown'ed and removed at exit
when it is the switch's own: made by this switch, or left behind by a
dead one (see :func:`is_switch_dir`).  Any other directory (one reached
through a symlink, ``/tmp``, someone else's) is used as it is and kept.
"""

from __future__ import annotations

import errno
import os
import re
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


_LEFT_BY_A_SWITCH = re.compile(r"ctl|[0-9]{3}\.[0-9]+")


def make_dir(path: str) -> bool:
    """``mkdir(path, 0777)`` as 2.3.2; True when this call created it.

    Raises:
        OSError: it cannot be made (other than because it exists).
    """
    try:
        os.mkdir(path, 0o777)
        return True
    except FileExistsError:
        return False


def is_switch_dir(path: str) -> bool:
    """True for a directory a dead switch left behind.

    That is a real directory (``path`` itself no symlink) owned by our
    effective user and holding nothing but the sockets a switch makes
    (``ctl`` and ``NNN.fd`` data sockets).  Such a directory is taken over
    as if made now; any other existing directory is not the switch's.
    """
    try:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            return False
        names = os.listdir(path)
        return bool(names) and all(
            _LEFT_BY_A_SWITCH.fullmatch(n)
            and stat.S_ISSOCK(os.lstat(os.path.join(path, n)).st_mode) for n in names)
    except OSError:
        return False


class AddressInUse(OSError):
    """A live switch already answers on this ``ctl``."""


def open_ctl(path: str, mode: int, dirmode: int, gid: int = -1,
             created: bool | None = None) -> tuple[str, socket.socket, bool]:
    """Create the directory and the listening ``ctl``; return (realdir,
    sock, owned): ``owned`` when the directory is the switch's own (made
    now or left by a dead switch), the only kind given ``dirmode`` and
    ``gid`` and removed at exit.

    ``created`` tells whether the caller has just made ``path``; by
    default it is made here.

    Raises:
        AddressInUse: another live switch owns the directory.
        OSError: the directory or socket cannot be made.
    """
    if created is None:
        created = make_dir(path)
    owned = created or is_switch_dir(path)
    real = os.path.realpath(path)
    if owned:
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
    return real, sock, owned


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


def remove_ctl(real: str, log, remove_dir: bool = True) -> None:
    """Remove ``ctl`` unless another switch took it over, then the
    directory when ``remove_dir`` (only a directory that is the switch's)."""
    ctl_path = os.path.join(real, "ctl")
    if is_alive(ctl_path):
        log("Cleanup not removing files")
        return
    try:
        if stat.S_ISSOCK(os.lstat(ctl_path).st_mode):
            os.unlink(ctl_path)
    except FileNotFoundError:
        pass
    if not remove_dir:
        return
    try:
        os.rmdir(real)
    except OSError as e:
        log("Could not remove ctl dir '%s': %s" % (real, e.strerror))
