"""Who may take a port (io/switch/port_access.py), against the real user database."""

import grp
import pwd

from vde_ipn.engine.bus import NO_USER, Port
from vde_ipn.io.switch.port_access import in_group, may_take

NOBODY = pwd.getpwnam("nobody")
DAEMON = pwd.getpwnam("daemon")


def port(user=NO_USER, group=NO_USER):
    p = Port(5)
    p.acl_user, p.acl_group = user, group
    return p


def test_open_port_takes_anyone_even_an_unknown_uid():
    assert may_take(port(), NOBODY.pw_uid)
    assert may_take(port(), NO_USER)
    assert may_take(None, NOBODY.pw_uid)


def test_user_acl():
    p = port(user=DAEMON.pw_uid)
    assert may_take(p, DAEMON.pw_uid)
    assert may_take(p, 0)                           # root always
    assert not may_take(p, NOBODY.pw_uid)
    assert not may_take(p, NO_USER)                 # abstract client: uid unknown


def test_group_acl_primary_and_listed_members():
    assert may_take(port(group=NOBODY.pw_gid), NOBODY.pw_uid)       # primary group
    assert not may_take(port(group=grp.getgrnam("root").gr_gid), NOBODY.pw_uid)
    listed = [g for g in grp.getgrall() if g.gr_mem]
    for g in listed:
        member = pwd.getpwnam(g.gr_mem[0])
        assert in_group(member.pw_uid, g.gr_gid)


def test_ids_nobody_has_are_refused_not_crashed():
    p = port(user=DAEMON.pw_uid, group=2**32 - 2)
    assert not may_take(p, NOBODY.pw_uid)
    assert not in_group(2**40, 0) and not in_group(NOBODY.pw_uid, 2**40)
