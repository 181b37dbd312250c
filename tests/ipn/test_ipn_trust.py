"""What a hostile member (the unprivileged user nobody) does to what it owns
or may touch, and what the others must not suffer from it.

Root creates each network with an explicit mode (umask 0); nobody joins
through the library, then works on the companion's files and memory
directly, bypassing the library, as any program of its user could.
"""

import errno
import grp
import os
import socket
import struct
import time

import pytest

from vde_ipn.ipn import (IPN_FLAG_LOSSLESS, IPN_SO_FLAGS, IPN_SO_HANDLE_OOB, IPN_SO_MODE,
                         IPN_SO_WANT_OOB_NUMNODES)

from vde_ipn.io.ipn.shm import open_memory
from vde_ipn.wire.ipn_layout import RING_DATA, RING_WAIT_W

OOB_OPTS = [[0, IPN_SO_HANDLE_OOB, 1], [0, IPN_SO_WANT_OOB_NUMNODES, 1]]


def make_net(agent, path, mode):
    owner = agent()
    owner.ok("umask", mask=0)
    owner.ok("new", opts=[[0, IPN_SO_MODE, mode]])
    owner.ok("bind", path=path)
    owner.ok("connect")
    assert os.stat(path).st_mode & 0o777 == mode
    return owner


def owned_by(comp, uid, subs=("w", "c")):
    out = []
    for sub in subs:
        d = os.path.join(comp, sub)
        out += [os.path.join(d, n) for n in sorted(os.listdir(d))
                if os.lstat(os.path.join(d, n)).st_uid == uid]
    return out


NOBODY = 65534


@pytest.mark.parametrize("how", ["truncate", "destroy"])
def test_a_member_shrinking_or_removing_its_own_memory_kills_nobody(agent, netdir, how):
    path = os.path.join(netdir, "bus")
    owner = make_net(agent, path, 0o646)
    reader = agent()
    reader.ok("new", shutdown=socket.SHUT_WR)
    reader.ok("connect", path=path)
    vandal = agent("nobody")
    vandal.ok("new")
    vandal.ok("connect", path=path)
    vandal.ok("send", data=["from the vandal"])          # the others map its ring
    assert reader.ok("recv")["msgs"] == ["from the vandal"]
    assert owner.ok("recv")["msgs"] == ["from the vandal"]
    owner.ok("send", data=["to all"])                    # the owner maps its cursors
    assert vandal.ok("recv")["msgs"] == ["to all"]
    assert reader.ok("recv")["msgs"] == ["to all"]
    mine = owned_by(os.path.join(netdir, ".bus.ipn"), NOBODY)
    assert len(mine) == 2                                # its ring and its cursors
    for f in mine:
        vandal.ok(how, path=f)
    owner.ok("send", data=["after the vandal's work"])   # reads the vandal's cursors
    assert reader.ok("recv")["msgs"] == ["after the vandal's work"]   # scans its ring
    vandal.ok("send", data=["the vandal again"])
    assert reader.ok("recv")["msgs"] == ["the vandal again"]
    assert owner.ok("recv", count=2)["msgs"] == ["the vandal again"]
    late = agent()                                       # joins past the wreck
    late.ok("new", shutdown=socket.SHUT_WR)
    late.ok("connect", path=path)
    owner.ok("send", data=["all alive"])
    for member in (reader, late):
        assert member.ok("recv")["msgs"] == ["all alive"]
    for member in (owner, reader, late):
        assert member.proc.poll() is None
    vandal.ok("close")                                   # its memory goes with it


def test_a_manager_without_r_cannot_attach_the_traffic(agent, netdir):
    path = os.path.join(netdir, "bus")
    owner = make_net(agent, path, 0o701)
    reader = agent()
    reader.ok("new", shutdown=socket.SHUT_WR)
    reader.ok("connect", path=path)
    secret = "secret payload %s" % os.urandom(8).hex()
    owner.ok("send", data=[secret])
    assert reader.ok("recv")["msgs"] == [secret]
    manager = agent("nobody")
    manager.ok("new")
    manager.ok("bind", path=path)                        # x: may manage
    scan = manager.ok("scan_shm", needle=secret)
    assert scan["found"] == [], scan
    assert root_finds(agent, secret)                     # the scan would see it


def root_finds(agent, needle):
    return agent().ok("scan_shm", needle=needle)["found"]


def wait_for(cond, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in %ss" % timeout
        time.sleep(0.05)


def test_chgrp_and_chmod_of_the_socket_file_are_followed(agent, netdir):
    path = os.path.join(netdir, "lab")
    comp = os.path.join(netdir, ".lab.ipn")
    owner = make_net(agent, path, 0o600)
    reader = agent()
    reader.ok("new", shutdown=socket.SHUT_WR)
    reader.ok("connect", path=path)
    users = grp.getgrnam("users").gr_gid
    student = agent("nobody", groups=[users])
    student.ok("new")
    assert student.call("connect", path=path)["errno"] == errno.EACCES
    os.chown(path, -1, users)                            # plain chgrp users; chmod 0660
    os.chmod(path, 0o660)
    student.ok("new")
    student.ok("connect", path=path)
    student.ok("send", data=["hi from the group"])
    assert owner.ok("recv")["msgs"] == ["hi from the group"]
    assert reader.ok("recv")["msgs"] == ["hi from the group"]
    secret = "for the group %s" % os.urandom(8).hex()
    owner.ok("send", data=[secret])
    assert student.ok("recv")["msgs"] == [secret]
    assert reader.ok("recv")["msgs"] == [secret]
    outsider = agent("nobody")                           # not in the group
    outsider.ok("new")
    assert outsider.call("connect", path=path)["errno"] == errno.EACCES
    assert outsider.call("access", path=os.path.join(comp, "live"),
                         flags=os.O_RDONLY)["errno"] == errno.EACCES
    assert outsider.ok("scan_shm", needle=secret)["found"] == []
    os.chmod(path, 0o600)                                # and back: new joins stay out
    wait_for(lambda: os.stat(comp).st_mode & 0o077 == 0)
    secret = "after chmod 0600 %s" % os.urandom(8).hex()
    owner.ok("send", data=[secret])
    assert reader.ok("recv")["msgs"] == [secret]
    late = agent("nobody", groups=[users])
    late.ok("new")
    assert late.call("connect", path=path)["errno"] == errno.EACCES
    assert late.call("access", path=os.path.join(comp, "live"),
                     flags=os.O_RDONLY)["errno"] == errno.EACCES
    wait_for(lambda: not late.ok("scan_shm", needle=secret)["found"])
    assert root_finds(agent, secret)


def test_a_member_without_w_cannot_make_another_readable(agent, netdir):
    """The wait word a blocked lossless sender publishes in its ring (read by
    its receivers) must not let a receiver ring that sender's doorbell later."""
    path = os.path.join(netdir, "bus")
    owner = agent()
    owner.ok("umask", mask=0)
    owner.ok("new", opts=[[0, IPN_SO_MODE, 0o604], [0, IPN_SO_FLAGS, IPN_FLAG_LOSSLESS]])
    owner.ok("bind", path=path)
    owner.ok("connect")
    intruder = agent("nobody")
    intruder.ok("new")
    intruder.ok("connect", path=path)                    # r only
    comp = os.path.join(netdir, ".bus.ipn")
    ring = owned_by(comp, 0, ("w",))[0]
    doorbell = owned_by(comp, 0, ("n",))[0]
    owner.start("send", count=20000)                     # more than a ring: it waits
    header = open_memory(ring, minimum=RING_DATA)[:RING_DATA].cast("Q")
    wait_for(lambda: header[RING_WAIT_W] >> 32)          # waiting, its wait word out
    header.release()
    got = intruder.ok("recv", count=20000, summary=True, timeout=30)
    assert (got["n"], got["status"]) == (20000, "done")
    assert owner.result()["sent"] == 20000
    assert owner.ok("select_recv", wait=0) == {"ok": True, "readable": False}
    assert intruder.ok("ring_with_wait_word", ring=ring, sock=doorbell)["secret"]
    reply = owner.ok("select_recv")
    assert reply == {"ok": True, "readable": False}, reply


def test_forged_numnodes_messages_do_not_make_a_node_readable(agent, netdir):
    path = os.path.join(netdir, "bus")
    owner = agent()
    owner.ok("umask", mask=0)
    owner.ok("new", opts=[[0, IPN_SO_MODE, 0o706]] + OOB_OPTS)
    owner.ok("bind", path=path)
    owner.ok("connect")
    assert struct.unpack("=iiii", owner.ok("recv")["msgs"][0].encode("latin-1"))[2:] == (1, 1)
    intruder = agent("nobody")
    intruder.ok("new")
    intruder.ok("connect", path=path)                    # r and w as "other"
    reply = owner.ok("select_recv")                      # the join is told, once
    assert struct.unpack("=iiii", reply["got"].encode("latin-1"))[2:] == (2, 2), reply
    assert owner.ok("select_recv", wait=0) == {"ok": True, "readable": False}
    doorbell = owned_by(os.path.join(netdir, ".bus.ipn"), 0, ("n",))[0]
    for counts in ((2, 2), (99, 99)):
        forged = struct.pack("=iiii", 0, 0, *counts).decode("latin-1")
        intruder.ok("sendto_raw", path=doorbell, data=forged)
    reply = owner.ok("select_recv")
    assert reply == {"ok": True, "readable": False}, reply
    intruder.ok("close")                                 # a real change is told
    reply = owner.ok("select_recv", wait=5.0)
    assert struct.unpack("=iiii", reply["got"].encode("latin-1"))[2:] == (1, 1), reply
