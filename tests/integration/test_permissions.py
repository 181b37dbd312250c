"""Who may use a switch: modes and groups of its directory and sockets.

Each check runs on our switch and on vde_switch 2.3.2 with the same
arguments and expects the same result (wire-protocol reference, 1.1).
Modes are read with stat.  The suite runs as root, so the non-root
client is ``nobody`` started through setpriv.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
import subprocess
import time

import pytest

from support import BROADCAST, C_TOOLS, OURS, StreamPlug, attached, frame, mac, require, wait_for
from test_bad_input import RawClient, uml_address, v3_request

KINDS = ["ours", "c"]
SETPRIV = "/usr/bin/setpriv"
AS_NOBODY = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"]
NOBODY = pwd.getpwnam("nobody").pw_uid


def mode_of(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def plug_tool(kind):
    return OURS["vde_plug"] if kind == "ours" else C_TOOLS["vde_plug"]


@pytest.fixture
def raw(sockdir):
    made = []

    def factory(sw, addr):
        c = RawClient(sw, addr)
        made.append(c)
        return c
    yield factory
    for c in made:
        c.close()


@pytest.fixture
def group():
    """A group made for the test (name, gid), removed afterwards."""
    name = "vdet%d" % os.getpid()
    groupadd, groupdel = require("/usr/sbin/groupadd"), require("/usr/sbin/groupdel")
    subprocess.run([groupdel, name], stderr=subprocess.DEVNULL)
    subprocess.run([groupadd, name], check=True)
    try:
        yield name, grp.getgrnam(name).gr_gid
    finally:
        subprocess.run([groupdel, name], check=True)


def switch_data_sockets(sw) -> list:
    return [os.path.join(sw.dir, n) for n in sorted(os.listdir(sw.dir)) if n != "ctl"]


@pytest.mark.parametrize("args,dirmode,ctlmode", [
    ([], 0o2700, 0o600),
    (["-m", "660"], 0o2770, 0o660),
    (["-m", "666"], 0o2777, 0o666),
    (["--dirmode", "2770"], 0o2770, 0o660),
    (["-m", "0640", "--dirmode", "0750"], 0o750, 0o640),
], ids=["defaults", "m660", "m666", "dirmode2770", "both"])
@pytest.mark.parametrize("kind", KINDS)
def test_directory_and_ctl_modes(new_switch, sockdir, kind, args, dirmode, ctlmode):
    sw = new_switch(kind, os.path.join(sockdir, "sw"), *args)
    st_dir = os.stat(sw.dir)
    st_ctl = os.stat(os.path.join(sw.dir, "ctl"))
    assert stat.S_ISDIR(st_dir.st_mode) and stat.S_ISSOCK(st_ctl.st_mode)
    assert (stat.S_IMODE(st_dir.st_mode), stat.S_IMODE(st_ctl.st_mode)) == (dirmode, ctlmode)


@pytest.mark.parametrize("kind", KINDS)
def test_group_on_dir_ctl_and_data_sockets(procs, new_switch, sockdir, group, kind):
    name, gid = group
    sw = new_switch(kind, os.path.join(sockdir, "sw"), "-g", name)
    assert os.stat(sw.dir).st_gid == gid
    assert os.stat(os.path.join(sw.dir, "ctl")).st_gid == gid
    StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    StreamPlug(procs, OURS["vde_plug"], sw.dir)
    attached(sw, 2)
    # vdeplug4 binds a socket of its own in the directory for the handshake
    # and removes it once connected, a moment after the switch lists its port
    wait_for(lambda: len(switch_data_sockets(sw)) == 2, 10,
             "two data sockets in %s (%s)" % (sw.dir, os.listdir(sw.dir)))
    socks = switch_data_sockets(sw)
    for path in socks:
        # a root switch hands the socket to the client (root here) and the
        # client, its owner now, sets its own mode (0700 by default)
        def owner_mode(path=path):
            st = os.stat(path)
            return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)
        wait_for(lambda: owner_mode() == (0, gid, 0o700), 2,
                 "%s to be root:%d 0700 (is %r)" % (path, gid, owner_mode()))


@pytest.mark.parametrize("kind", KINDS)
def test_root_switch_data_socket_owner_and_mode(new_switch, raw, sockdir, group, kind):
    """Root switch: known client owner -> chown to it, mode & 0700; else the ctl mode.

    Port 0 then gets the management mode and group (2.3.2 applies them just
    after its reply, hence the waits).
    """
    name, gid = group
    sw = new_switch(kind, os.path.join(sockdir, "sw"), "-m", "666", "-g", name,
                    "--mgmtmode", "0640", "--mgmtgroup", "daemon")
    daemon_gid = grp.getgrnam("daemon").gr_gid
    cases = [
        ("nobody-any", os.path.join(sockdir, "a"), 0, (NOBODY, gid, 0o600)),
        ("abstract-any", uml_address(), 0, (0, gid, 0o666)),
        ("nobody-port0", os.path.join(sockdir, "b"), 1, (NOBODY, daemon_gid, 0o640)),
    ]
    for label, addr, kind_field, want in cases:
        c = raw(sw, addr)
        if isinstance(addr, str):
            os.chown(addr, NOBODY, -1)
        c.ctl.sendall(v3_request(addr, kind=kind_field, descr=label.encode()))
        assert c.outcome() == "reply", label

        def owner_mode(path=c.remote):
            st = os.stat(path)
            return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)
        wait_for(lambda: owner_mode() == want, 2,
                 "%s: %s to be %r (is %r)" % (label, c.remote, want, owner_mode()))


# -- a non-root client ---------------------------------------------------------------
def nobody_plug(plug_kind, sw):
    return [require(SETPRIV)] + AS_NOBODY + [require(plug_tool(plug_kind)), sw.dir]


@pytest.mark.parametrize("plug_kind", KINDS)
@pytest.mark.parametrize("sw_kind", KINDS)
def test_nobody_connects_to_mode_666(procs, new_switch, sockdir, sw_kind, plug_kind):
    os.chmod(sockdir, 0o755)                    # let nobody reach the switch directory
    sw = new_switch(sw_kind, os.path.join(sockdir, "sw"), "-m", "666")
    mine = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    attached(sw, 1)
    theirs = StreamPlug(procs, require(SETPRIV), *AS_NOBODY,
                        require(plug_tool(plug_kind)), sw.dir)
    attached(sw, 2)
    assert "Current User: nobody" in sw.cmd("port/print")
    f = frame(BROADCAST, mac(0x61), b"from root")
    mine.send(f)
    assert theirs.recv_matching(lambda x: x == f) == f
    g = frame(BROADCAST, mac(0x62), b"from nobody")
    theirs.send(g)
    assert mine.recv_matching(lambda x: x == g) == g


@pytest.mark.parametrize("plug_kind", KINDS)
@pytest.mark.parametrize("sw_kind", KINDS)
def test_nobody_refused_by_default_modes(procs, new_switch, sockdir, sw_kind, plug_kind):
    os.chmod(sockdir, 0o755)
    sw = new_switch(sw_kind, os.path.join(sockdir, "sw"))
    start = time.monotonic()
    p = procs.start(nobody_plug(plug_kind, sw),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    rc = p.wait(timeout=10)
    assert time.monotonic() - start < 5
    err = p.stderr.read().decode()
    assert rc == 1 and err.startswith("vde_open ") and "Permission denied" in err
    assert "-- endpoint" not in sw.cmd("port/print")


# -- port access control: port/setuser and port/setgroup ---------------------------------
@pytest.fixture
def nobody_in_group(group):
    """The test's group with ``nobody`` listed as a member."""
    name, gid = group
    subprocess.run([require("/usr/bin/gpasswd"), "-a", "nobody", name], check=True,
                   stdout=subprocess.DEVNULL)
    return name, gid


def plug_on_port(procs, sw, port, as_nobody, descr):
    argv = ([require(SETPRIV)] + AS_NOBODY if as_nobody else []) + [
        require(C_TOOLS["vde_plug"]), "--descr", descr, "%s[%d]" % (sw.dir, port)]
    return procs.start(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)


@pytest.mark.parametrize("kind", KINDS)
def test_port_acl_decides_who_takes_a_port(procs, new_switch, sockdir, nobody_in_group, kind):
    """2.3.2's rules: the port's user, a member of its group, or root; else refused.

    Ours refuses by closing ctl (the plug fails at once); 2.3.2 leaves the
    refused client waiting without a port.
    """
    name, _gid = nobody_in_group
    os.chmod(sockdir, 0o755)
    sw = new_switch(kind, os.path.join(sockdir, "sw"), "-m", "666")
    setup = ["port/create 5", "port/setuser 5 daemon",
             "port/create 6", "port/setgroup 6 users",
             "port/create 7", "port/setgroup 7 %s" % name,
             "port/create 8", "port/setuser 8 nobody",
             "port/create 9", "port/setuser 9 daemon", "port/setgroup 9 nogroup"]
    for line in setup:
        assert sw.cmd(line).rstrip().endswith("1000 Success"), line
    refused = {p: plug_on_port(procs, sw, p, True, "refused%d" % p) for p in (5, 6)}
    allowed = {7: plug_on_port(procs, sw, 7, True, "member"),
               8: plug_on_port(procs, sw, 8, True, "owner"),
               9: plug_on_port(procs, sw, 9, True, "primary group"),
               5: plug_on_port(procs, sw, 5, False, "root")}
    attached(sw, 4, timeout=10)
    if kind == "ours":
        for p, proc in refused.items():
            assert proc.wait(timeout=5) == 1, p
            assert "vde_open" in proc.stderr.read().decode()
    else:
        time.sleep(1)
        assert all(proc.poll() is None for proc in refused.values())
    text = sw.cmd("port/print")
    assert "refused" not in text
    for p, who in ((7, "nobody"), (8, "nobody"), (9, "nobody"), (5, "root")):
        record = sw.cmd("port/print %d" % p)
        assert "Current User: %s " % who in record, record
    assert all(proc.poll() is None for proc in allowed.values())


# -- files the switch did not create are left alone --------------------------------------
def as_nobody(*argv):
    subprocess.run([require(SETPRIV)] + AS_NOBODY + list(argv), check=True)


@pytest.mark.parametrize("kind", KINDS)
def test_mgmt_path_on_a_regular_file(procs, new_switch, sockdir, kind):
    """``-M`` naming an existing file: 2.3.2 deletes it and binds there; ours
    keeps the file, says why, and runs on without a management socket."""
    target = os.path.join(sockdir, "precious")
    with open(target, "w") as f:
        f.write("not a socket\n")
    sw = new_switch(kind, os.path.join(sockdir, "sw"), "-M", target, mgmt=False)
    attached_plug = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    if kind == "ours":
        wait_for(lambda: attached_plug.proc.poll() is None and len(switch_data_sockets(sw)) == 1,
                 5, "the switch to serve a plug")
        assert stat.S_ISREG(os.lstat(target).st_mode)
        with open(target) as f:
            assert f.read() == "not a socket\n"
        assert sw.stop() == 0
        assert "mgmt bind %s: exists and is not a socket" % target in sw.proc.stderr.read().decode()
        assert open(target).read() == "not a socket\n"
    else:
        wait_for(lambda: stat.S_ISSOCK(os.lstat(target).st_mode), 5, "2.3.2 to bind there")
        sw.stop()
        assert not os.path.lexists(target)


@pytest.mark.parametrize("content", ["empty", "with-a-file"])
@pytest.mark.parametrize("kind", KINDS)
def test_sock_through_a_symlink_to_a_directory(procs, new_switch, sockdir, kind, content):
    """A local user points the switch's path at another directory: 2.3.2
    chmods it to 2700 and removes it at exit; ours serves in it and leaves
    its mode and its existence alone."""
    os.chmod(sockdir, 0o1777)                   # a /tmp-like place nobody may write in
    victim = os.path.join(sockdir, "victim")
    os.mkdir(victim, 0o755)
    os.chmod(victim, 0o755)
    if content == "with-a-file":
        open(os.path.join(victim, "keep"), "w").close()
    link = os.path.join(sockdir, "vde.ctl")
    as_nobody("/bin/ln", "-s", victim, link)
    sw = new_switch(kind, link)
    plug = StreamPlug(procs, C_TOOLS["vde_plug"], link)
    attached(sw, 1)
    mode_while_serving = mode_of(victim)
    plug.close()
    sw.stop()
    if kind == "ours":
        assert mode_while_serving == 0o755
        assert os.path.isdir(victim) and mode_of(victim) == 0o755
        assert sorted(os.listdir(victim)) == ([] if content == "empty" else ["keep"])
    else:
        assert mode_while_serving == 0o2700
        assert os.path.isdir(victim) == (content == "with-a-file")
    assert os.path.islink(link)


def test_failed_start_keeps_a_planted_ctl(procs, sockdir):
    """A regular file named ctl makes our switch refuse to start; the file
    and its directory are left as they were."""
    d = os.path.join(sockdir, "sw")
    os.mkdir(d)
    with open(os.path.join(d, "ctl"), "w") as f:
        f.write("planted\n")
    p = procs.start([require(OURS["vde_switch"]), "-s", d], stdin=subprocess.PIPE)
    assert p.wait(timeout=10) == 255
    assert open(os.path.join(d, "ctl")).read() == "planted\n"
    assert os.path.isdir(d)


# -- a non-root member and the flow cache ---------------------------------------------
def test_nobody_cannot_ride_or_steal_a_cached_conversation(procs, new_switch, sockdir):
    """Two root clients talk; the switch forwards their frames in C once it
    knows both MACs.  A nobody member sends frames claiming to be one of
    them, to the other, from its own port: the claimed MAC stays where it
    was learned (min_persistence), so the conversation is neither seen by
    nor diverted to nobody; and nobody on another VLAN reaches no one."""
    os.chmod(sockdir, 0o755)
    sw = new_switch("ours", os.path.join(sockdir, "sw"), "-m", "666")
    a = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    b = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    attached(sw, 2)
    ma, mb, mn = mac(0x71), mac(0x72), mac(0x73)

    def talk(tag: bytes, count: int = 5) -> None:
        for i in range(count):                       # a <-> b, both ways, in turn
            f = frame(mb, ma, tag + b" a%d" % i)
            a.send(f)
            assert b.recv_matching(lambda x: x == f) == f
            g = frame(ma, mb, tag + b" b%d" % i)
            b.send(g)
            assert a.recv_matching(lambda x: x == g) == g
    sw.cmd("hash/setminper 1")                       # a MAC moves after 1 s of silence
    a.send(frame(BROADCAST, ma, b"hello from a"))
    assert b.recv_matching(lambda x: b"hello from a" in x) is not None
    b.send(frame(BROADCAST, mb, b"hello from b"))    # both known before nobody comes
    assert a.recv_matching(lambda x: b"hello from b" in x) is not None
    n = StreamPlug(procs, require(SETPRIV), *AS_NOBODY, require(plug_tool("ours")), sw.dir)
    attached(sw, 3)
    assert "Current User: nobody" in sw.cmd("port/print")
    n.send(frame(BROADCAST, mn, b"hello from nobody"))
    talk(b"before")                                  # learned, then cached
    deadline = time.monotonic() + 1.5                # then only C sees a and b talk
    while time.monotonic() < deadline:               # (no console command: it would
        talk(b"cached", 1)                           # take C's ages): the move below
    for i in range(5):                               # is judged on the ages C hands back                               # "I am a", to b; and "I am b", to a
        n.send(frame(mb, ma, b"forged as a %d" % i))
        n.send(frame(ma, mb, b"forged as b %d" % i))
    # the forged frames reach their addressees (nobody may send on this
    # LAN), but a and b keep their MACs: their talk still goes to them only
    talk(b"after")
    assert n.recv_matching(lambda x: b"before" in x or b"after" in x, 1) is None
    # on another VLAN, nobody reaches no one, forged or not
    sw.cmd("vlan/create 5")
    port_n = max(int(p) for p in re.findall(r"^Port (\d+) ", sw.cmd("port/allprint"), re.M))
    sw.cmd("port/setvlan %d 5" % port_n)
    for i in range(5):
        n.send(frame(mb, ma, b"vlan 5 as a %d" % i))
        n.send(frame(BROADCAST, mn, b"vlan 5 broadcast %d" % i))
    talk(b"last")
    for p in (a, b):
        assert p.recv_matching(lambda x: b"vlan 5" in x, 1) is None
    assert n.recv_matching(lambda x: b"last" in x, 1) is None
