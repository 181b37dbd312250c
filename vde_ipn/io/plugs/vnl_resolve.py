"""Resolving a VNL to ``(scheme, argument)`` the way vdeplug4 4.0.1 does.

This is the part of ``vde_open`` that looks at the filesystem and the
environment before any scheme module is involved; the argument itself is
then parsed by ``vde_ipn.wire.vnl`` (e.g. :func:`~vde_ipn.wire.vnl.parse_vde`).
"""

import os
import pwd
import stat
from typing import Mapping, Optional, Tuple

from vde_ipn.wire.vnl import split_scheme

__all__ = [
    "DEFAULT_SWITCH_DIRS", "MAX_DESCRIPTION", "default_switch_dirs",
    "resolve", "vde_description",
]

# Per-user default VNL files, relative to $HOME, in the order tried.
_USER_DEFAULTS = ("/.vdeplug/default", "/.vde2/default.switch")
# Switch directories tried, in order, by the ``vde`` scheme for an empty PATH.
DEFAULT_SWITCH_DIRS = ("/var/run/vde.ctl", "/tmp/vde.ctl")
# The description buffer holds 128 bytes including the terminating NUL.
MAX_DESCRIPTION = 127
# fgets() into a PATH_MAX buffer reads at most this many bytes of a line.
_LINE_MAX = 4095


def default_switch_dirs() -> Tuple[str, ...]:
    """The switch directories the ``vde`` scheme tries when PATH is empty."""
    return DEFAULT_SWITCH_DIRS


def _first_line(path: str) -> Optional[str]:
    """What vdeplug4 takes from an indirection file, or None to keep path.

    It reads one line (at most 4095 bytes, newline included) and always
    drops its last byte, newline or not; the line also ends at a NUL byte.
    """
    try:
        with open(path, "rb") as f:
            line = f.readline(_LINE_MAX)
    except OSError:
        return None
    if not line:
        return None
    nul = line.find(b"\0")
    if nul >= 0:
        line = line[:nul]
    return os.fsdecode(line[:-1])


def resolve(vnl: Optional[str], *,
            environ: Mapping[str, str] = os.environ) -> Tuple[str, str]:
    """Return ``(scheme, argument)`` for ``vnl`` as ``vde_open`` resolves it.

    1. ``None`` or ``""``: the first of ``$HOME/.vdeplug/default`` and
       ``$HOME/.vde2/default.switch`` that ``lstat()`` succeeds on (a
       symlink to a switch dir, or an indirection file); neither, or no
       ``HOME``: ``""`` (the ``vde`` scheme then uses
       :func:`default_switch_dirs`).
    2. If the text has no ``://`` and ``stat()`` finds a regular file, its
       first line minus its last character becomes the VNL (once: the new
       text is not looked up again).  Unreadable or empty files are kept.
    3. Split with :func:`~vde_ipn.wire.vnl.split_scheme`.

    Only the raw text is looked up: ``/tmp/%73w`` or ``/tmp/f[3]`` are
    never taken for the files ``/tmp/sw`` or ``/tmp/f``.
    """
    vnl = vnl or ""
    if "://" not in vnl:
        if not vnl:
            home = environ.get("HOME")
            if home is not None:
                for name in _USER_DEFAULTS:
                    try:
                        os.lstat(home + name)
                    except (OSError, ValueError):
                        continue
                    vnl = home + name
                    break
        try:
            regular = stat.S_ISREG(os.stat(vnl).st_mode) if vnl else False
        except (OSError, ValueError):
            regular = False
        if regular:
            line = _first_line(vnl)
            if line is not None:
                vnl = line
    return split_scheme(vnl)


def vde_description(descr: Optional[str], *,
                    environ: Mapping[str, str] = os.environ,
                    euid: Optional[int] = None,
                    pid: Optional[int] = None) -> str:
    """The description vdeplug4 4.0.1 sends to a switch for ``descr``.

    ``"<descr> user=<name> pid=<pid>"``, where name is the effective user's
    login name (its number when it has no passwd entry), followed by
    ``" SSH=<first word>"`` when ``$SSH_CLIENT`` is set (the text before
    its first space, possibly empty).  The result is cut to 127 bytes
    (UTF-8, ``surrogateescape``; a cut may split a character, as in C).
    ``None`` prints as ``(null)``; ``descr`` ends at a NUL, like a C
    string.  ``euid``/``pid`` default to this process.
    """
    if euid is None:
        euid = os.geteuid()
    if pid is None:
        pid = os.getpid()
    try:
        user = pwd.getpwuid(euid).pw_name
    except KeyError:
        user = str(euid)
    descr = "(null)" if descr is None else descr.split("\0", 1)[0]
    text = "%s user=%s pid=%d" % (descr, user, pid)
    ssh = environ.get("SSH_CLIENT")
    if ssh is not None:
        text += " SSH=" + ssh.split(" ", 1)[0]
    data = text.encode("utf-8", "surrogateescape")[:MAX_DESCRIPTION]
    return data.decode("utf-8", "surrogateescape")
