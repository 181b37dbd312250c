"""``vde_tunctl``: drop-in for vde-2 2.3.2's vde_tunctl.

::

    vde_tunctl [-b] [-u owner] [-g group] [-n] [-t name] [-f clonedev]
    vde_tunctl -d name [-f clonedev]

Creates a persistent tap (a tun with ``-n`` or a name starting with
``tun``) owned by ``owner`` (default: the effective uid, when neither
``-u`` nor ``-g`` is given) and/or ``group``, so that user can attach it
without privileges; prints ``Set 'tap0' persistent and owned by uid
1000`` (just the name with ``-b``).  ``-d`` makes it non-persistent,
so it goes away.  Errors: one line on stderr, exit 1; bad usage prints
the usage on stderr, exit 1.
"""

from __future__ import annotations

import grp
import os
import pwd
import sys

from ..io.plugs import tap
from ._getopt import getopt_long

USAGE = """\
Create: %(p)s [-b] [-u owner] [-g group] [-n] [-t device-name] [-f tun-clone-device]
Delete: %(p)s -d device-name [-f tun-clone-device]

The default tun clone device is /dev/net/tun - some systems use
/dev/misc/net/tun instead

-b will result in brief output (just the device name)
-n create a tun interface (not needed if the device name prefix is tun
"""


def _usage(prog: str) -> int:
    sys.stderr.write(USAGE % {"p": prog})
    return 1


def _id(text: str, lookup, what: str, prog: str) -> int:
    try:
        return lookup(text)
    except KeyError:
        pass
    try:
        return int(text, 0)
    except ValueError:
        sys.stderr.write("'%s' is neither a %s.\n" % (text, what))
        raise SystemExit(_usage(prog))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    prog = argv[0] if argv else "vde_tunctl"
    res = getopt_long(list(argv), "bd:f:t:u:g:n", ())
    for line in res.errors:
        sys.stderr.write(line + "\n")
    if res.errors or res.operands:
        return _usage(prog)
    brief = tun = False
    delete = None
    name, clone = "", tap.CLONE_DEVICE
    owner = group = -1
    for key, val in res.opts:
        if key == "b":
            brief = True
        elif key == "d":
            delete = val
        elif key == "f":
            clone = val
        elif key == "t":
            name = val
        elif key == "n":
            tun = True
        elif key == "u":
            owner = _id(val, lambda t: pwd.getpwnam(t).pw_uid, "username nor a numeric uid",
                        prog)
        elif key == "g":
            group = _id(val, lambda t: grp.getgrnam(t).gr_gid,
                        "groupname nor a numeric group", prog)
    try:
        if delete is not None:
            fd, real = tap.open_tun(delete, _flags(delete, tun), clone, nonblocking=False)
            try:
                tap.set_persistent(fd, False, real)
            finally:
                os.close(fd)
            print("Set '%s' nonpersistent" % real)
            return 0
        flags = _flags(name, tun)
        fd, real = tap.open_tun(name or ("tun%d" if flags & tap.IFF_TUN else "tap%d"),
                                flags, clone, nonblocking=False)
        try:
            if owner == -1 and group == -1:
                owner = os.geteuid()
            tap.set_owner(fd, owner, group, real)
            tap.set_persistent(fd, True, real)
        finally:
            os.close(fd)
    except OSError as e:
        sys.stderr.write("%s: %s\n" % (prog, e.strerror or e))
        return 1
    if brief:
        print(real)
    else:
        print("Set '%s' persistent and owned by%s%s" % (
            real, " uid %d" % owner if owner != -1 else "",
            " gid %d" % group if group != -1 else ""))
    return 0


def _flags(name: str, tun: bool) -> int:
    kind = tap.IFF_TUN if tun or name.startswith("tun") else tap.IFF_TAP
    return kind | tap.IFF_NO_PI


if __name__ == "__main__":
    sys.exit(main())
