"""Who may take a port: the ``port/setuser`` and ``port/setgroup`` checks.

vde_switch 2.3.2 rules, applied when a client asks for a port that has
no endpoint yet (a port in use only takes more endpoints of the user
already on it):

* a port with neither a user nor a group set is open to everyone;
* root may take any port;
* a port's user may take it;
* so may a member of its group: the group is the user's primary group,
  or the user's name is listed among the group's members.

A client whose uid is unknown (an abstract socket address) passes only
the first rule.  The user and group databases are read at each check,
so changes to them apply to the next client.
"""

from __future__ import annotations

import grp
import pwd

from ...engine.bus import NO_USER


def in_group(uid: int, gid: int) -> bool:
    """True when user ``uid`` belongs to group ``gid`` (primary or listed)."""
    try:
        pw = pwd.getpwuid(uid)
    except (KeyError, OverflowError, ValueError):
        return False
    if pw.pw_gid == gid:
        return True
    try:
        members = grp.getgrgid(gid).gr_mem
    except (KeyError, OverflowError, ValueError):
        return False
    return pw.pw_name in members


def may_take(port, uid: int) -> bool:
    """May a client of user ``uid`` become the current user of ``port``?"""
    if port is None or (port.acl_user == NO_USER and port.acl_group == NO_USER):
        return True
    if uid == NO_USER:
        return False
    if uid == 0 or uid == port.acl_user:
        return True
    return port.acl_group != NO_USER and in_group(uid, port.acl_group)
