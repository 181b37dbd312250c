"""The socket file's r, w and x bits, exercised by the unprivileged user nobody.

Root creates each network with an explicit mode (umask 0); nobody joins
through the library and also tries the shared files directly, which
shows the kernel (not only the library) refuses what the bits deny.
"""

import errno
import os
import signal
import socket
import struct

import pytest
from support import wait_for

from vde_ipn.ipn import IPN_SO_HANDLE_OOB, IPN_SO_MODE, IPN_SO_WANT_OOB_NUMNODES

OOB_OPTS = [[0, IPN_SO_HANDLE_OOB, 1], [0, IPN_SO_WANT_OOB_NUMNODES, 1]]


def make_net(agent, path, mode, **new):
    owner = agent()
    owner.ok("umask", mask=0)
    owner.ok("new", opts=[[0, IPN_SO_MODE, mode]] + new.pop("opts", []), **new)
    owner.ok("bind", path=path)
    owner.ok("connect")
    assert os.stat(path).st_mode & 0o777 == mode
    return owner


def test_read_only_members_receive_and_cannot_send(agent, netdir):
    path = os.path.join(netdir, "bus")
    owner = make_net(agent, path, 0o604)
    reader = agent("nobody")
    reader.ok("new")
    reader.ok("connect", path=path)                      # no w: shut for writing
    assert reader.call("send", data=["x"])["errno"] == errno.EPIPE
    owner.ok("send", data=["to readers"])
    assert reader.ok("recv")["msgs"] == ["to readers"]
    comp = os.path.join(netdir, ".bus.ipn")
    ring = os.path.join(comp, "w", "9.abcd0123")
    reply = reader.call("access", path=ring, flags=os.O_CREAT | os.O_WRONLY)
    assert reply["errno"] == errno.EACCES                # cannot make itself a writer


def test_write_only_members_send_and_cannot_receive(agent, netdir):
    path = os.path.join(netdir, "bus")
    owner = make_net(agent, path, 0o602)
    writer = agent("nobody")
    writer.ok("new")
    writer.ok("connect", path=path)                      # no r: shut for reading
    assert writer.call("recv")["errno"] == errno.EPIPE
    writer.ok("send", data=["from nobody"])
    assert owner.ok("recv")["msgs"] == ["from nobody"]
    wdir = os.path.join(netdir, ".bus.ipn", "w")
    owner_ring = os.path.join(wdir, [n for n in os.listdir(wdir) if n.startswith("0.")][0])
    assert writer.call("access", path=owner_ring, flags=os.O_RDONLY)["errno"] == errno.EACCES


def test_no_r_and_no_w_is_refused_unless_oob_is_wanted(agent, netdir):
    path = os.path.join(netdir, "bus")
    make_net(agent, path, 0o601)
    outsider = agent("nobody")
    outsider.ok("new")
    assert outsider.call("connect", path=path)["errno"] == errno.EACCES
    watcher = agent("nobody")
    watcher.ok("new", opts=OOB_OPTS)
    watcher.ok("connect", path=path)                     # OOB only: numnodes
    reply = watcher.ok("recv")
    assert reply["flags"] == [socket.MSG_OOB]
    assert struct.unpack("=iiii", reply["msgs"][0].encode("latin-1")) == (0, 0, 1, 1)


def test_bind_on_an_existing_network_needs_x(agent, netdir):
    path = os.path.join(netdir, "bus")
    owner = make_net(agent, path, 0o606)
    stranger = agent("nobody")
    stranger.ok("new")
    assert stranger.call("bind", path=path)["errno"] == errno.EACCES
    path2 = os.path.join(netdir, "bus2")
    make_net(agent, path2, 0o607)
    manager = agent("nobody")
    manager.ok("new")
    manager.ok("bind", path=path2)                       # x: joins as a manager
    manager.ok("connect")
    assert owner.call("recv", nonblock=True)["status"] == "eagain"


def test_a_group_restricted_network_admits_its_group_only(agent, netdir):
    path = os.path.join(netdir, "lab")
    owner = make_net(agent, path, 0o760)
    owner.ok("chgrp", path=path, group="nogroup")
    student = agent("nobody")                            # primary group nogroup
    student.ok("new")
    student.ok("connect", path=path)
    student.ok("send", data=["hi from a student"])
    assert owner.ok("recv")["msgs"] == ["hi from a student"]
    owner.ok("send", data=["hi from root"])
    assert student.ok("recv")["msgs"] == ["hi from root"]
    closed = os.path.join(netdir, "private")
    make_net(agent, closed, 0o700)
    other = agent("nobody")
    other.ok("new")
    assert other.call("connect", path=closed)["errno"] == errno.EACCES


# -- what a hostile member (nobody) must not be able to do ---------------------
def _files(comp, sub):
    return [os.path.join(comp, sub, n) for n in sorted(os.listdir(os.path.join(comp, sub)))]


def test_a_manager_without_r_cannot_read_the_traffic(agent, netdir):
    path = os.path.join(netdir, "bus")
    owner = make_net(agent, path, 0o701)
    owner.ok("send", data=["secret payload"])
    manager = agent("nobody")
    manager.ok("new")
    manager.ok("bind", path=path)                        # x: may manage
    comp = os.path.join(netdir, ".bus.ipn")
    rings = _files(comp, "w")
    assert rings
    for ring in rings:
        assert manager.call("access", path=ring, flags=os.O_RDONLY)["errno"] == errno.EACCES
    assert manager.call("listdir", path=os.path.join(comp, "w"))["errno"] == errno.EACCES


def test_a_read_only_member_cannot_forge_numnodes(agent, netdir):
    path = os.path.join(netdir, "bus")
    owner = make_net(agent, path, 0o704, opts=OOB_OPTS)
    assert struct.unpack("=iiii", owner.ok("recv")["msgs"][0].encode("latin-1"))[2:] == (1, 1)
    intruder = agent("nobody")
    intruder.ok("new")
    intruder.ok("connect", path=path)                    # r only
    assert struct.unpack("=iiii", owner.ok("recv")["msgs"][0].encode("latin-1"))[2:] == (2, 1)
    forged = struct.pack("=iiii", 0, 0, 99, 99).decode("latin-1")
    for sock in _files(os.path.join(netdir, ".bus.ipn"), "n"):
        intruder.ok("sendto_raw", path=sock, data=forged)
        intruder.ok("sendto_raw", path=sock, data="\0\0\0\0")
    reply = owner.call("recv", nonblock=True)
    assert reply["ok"] and reply["status"] == "eagain", reply


def test_a_read_only_member_cannot_remove_or_take_another_port(agent, netdir):
    path = os.path.join(netdir, "bus")
    owner = make_net(agent, path, 0o704)
    intruder = agent("nobody")
    intruder.ok("new")
    mine = intruder.ok("connect", path=path)["port"]
    comp = os.path.join(netdir, ".bus.ipn")
    for sub in ("n", "w", "c"):
        for f in _files(comp, sub):
            if os.path.basename(f).startswith("%d." % mine):
                continue
            assert intruder.call("unlink", path=f)["errno"] in (errno.EPERM, errno.EACCES), f
    late = agent()
    late.ok("new", shutdown=socket.SHUT_WR)
    assert late.ok("connect", path=path)["port"] not in (0, mine)
    owner.ok("send", data=["still one network"])
    assert intruder.ok("recv")["msgs"] == ["still one network"]


def test_scribbling_on_the_shared_generation_breaks_no_join(agent, netdir):
    path = os.path.join(netdir, "bus")
    owner = make_net(agent, path, 0o646)
    vandal = agent("nobody")
    vandal.ok("new")
    vandal.ok("connect", path=path)                      # r and w as "other"
    gen = os.path.join(netdir, ".bus.ipn", "gen")
    vandal.ok("scribble_gen", path=gen, data="\xff" * 8)
    late = agent()
    late.ok("new", shutdown=socket.SHUT_WR)
    late.ok("connect", path=path)
    owner.ok("send", data=["after the scribble"])
    assert late.ok("recv")["msgs"] == ["after the scribble"]


def test_a_member_cannot_truncate_the_generation_under_the_others(agent, netdir):
    path = os.path.join(netdir, "bus")
    owner = make_net(agent, path, 0o646)
    reader = agent()
    reader.ok("new", shutdown=socket.SHUT_WR)
    reader.ok("connect", path=path)
    vandal = agent("nobody")
    vandal.ok("new")
    vandal.ok("connect", path=path)
    gen = os.path.join(netdir, ".bus.ipn", "gen")
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC):
        assert vandal.call("access", path=gen, flags=flags)["errno"] == errno.EACCES
    assert vandal.call("write_file", path=gen, data="", truncate=True)["errno"] == errno.EACCES
    assert vandal.call("unlink", path=gen)["errno"] in (errno.EPERM, errno.EACCES)
    vandal.ok("close")                                   # membership moves: gen is read
    late = agent()
    late.ok("new", shutdown=socket.SHUT_WR)
    late.ok("connect", path=path)
    owner.ok("send", data=["all alive"])
    assert reader.ok("recv")["msgs"] == ["all alive"]
    assert late.ok("recv")["msgs"] == ["all alive"]


@pytest.mark.parametrize("mode", [0o644, 0o646], ids=["r", "rw"])
def test_a_member_holding_every_lock_it_can_freezes_no_join(agent, netdir, mode):
    path = os.path.join(netdir, "bus")
    comp = os.path.join(netdir, ".bus.ipn")
    owner = make_net(agent, path, mode)
    left = [agent(), agent()]                            # ports left behind: 1 and 2
    for member in left:
        member.ok("new")
        member.ok("connect", path=path)
    for member in left:
        member.ok("close")
    hog = agent("nobody")
    hog.ok("new")
    hog.ok("connect", path=path)                         # r only, or r and w
    held = dict(hog.ok("hog", path=comp)["held"])
    assert "flock" in held["live"] and "flock" in held["mutex" if "mutex" in held
                                                       else os.path.join("p", "2")], held
    wait_for(lambda: _state(hog.proc.pid) == "T", what="the hog to stop itself")
    try:
        late = agent()                                   # root
        late.ok("new")
        late.ok("connect", path=path)
        other = agent("nobody")                          # and another unprivileged one
        other.ok("new")
        other.ok("connect", path=path)
        owner.ok("send", data=["joins went on"])
        assert late.ok("recv")["msgs"] == ["joins went on"]
        assert other.ok("recv")["msgs"] == ["joins went on"]
        late.ok("send", data=["from the late one"])
        assert owner.ok("recv")["msgs"] == ["from the late one"]
        late.ok("close")
        other.ok("close")
    finally:
        os.kill(hog.proc.pid, signal.SIGCONT)
    hog.ok("close")


def _state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_concurrent_joins_and_leaves_keep_ports_unique(agent, netdir):
    path = os.path.join(netdir, "bus")
    owner = make_net(agent, path, 0o666, opts=OOB_OPTS)
    assert struct.unpack("=iiii", owner.ok("recv")["msgs"][0].encode("latin-1"))[2:] == (1, 1)
    listener = agent("nobody")                           # port 1, there all along
    listener.ok("new")
    assert listener.ok("connect", path=path)["port"] == 1
    churners = [agent("nobody" if i % 2 else None) for i in range(20)]
    for c in churners:
        c.start("churn", path=path, rounds=10)
    owner.start("send", count=300, pace=10)              # messages flow meanwhile
    spans = []
    for c in churners:
        reply = c.result(timeout=240.0)
        assert reply["ok"], reply
        spans += reply["memberships"]
    assert owner.result(timeout=240.0)["sent"] == 300
    got = listener.ok("recv", count=300, summary=True)
    assert got["n"] == 300 and got["in_order"], got
    listener.ok("close")
    assert len(spans) == 200
    by_port = {}
    for port, joined, leaving in spans:
        assert 1 < port < 64
        by_port.setdefault(port, []).append((joined, leaving))
    for port, held in by_port.items():                   # never two members on one port
        held.sort()
        for (_j1, l1), (j2, _l2) in zip(held, held[1:]):
            assert l1 < j2, (port, held)
    nodes = os.listdir(os.path.join(netdir, ".bus.ipn", "n"))
    assert len(nodes) == 1 and nodes[0].startswith("0."), nodes
    last = agent()
    last.ok("new")
    assert last.ok("connect", path=path)["port"] == 1    # every port was given back

    def counts():
        msgs = owner.ok("recv", count=1000, nonblock=True)["msgs"]
        return [struct.unpack("=iiii", m.encode("latin-1"))[2:] for m in msgs]
    seen = []
    wait_for(lambda: seen.extend(counts()) or (seen and seen[-1] == (2, 2)),
             what="numnodes to say 2 members")
