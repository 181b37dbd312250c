"""vdeq's command line: what it opens and what QEMU is given."""

import pytest

from vde_ipn.cli import vdeq


def test_new_syntax_with_hubs():
    args = ["-m", "64", "-net", "nic,vlan=0", "-net", "nic,vlan=1,model=e1000",
            "-net", "vde,vlan=0", "-net", "vde,vlan=1,sock=/tmp/my.ctl,port=10"]
    assert vdeq.vde_count(args) == 2
    assert vdeq.endpoints(args, None) == [(None, 0), ("/tmp/my.ctl", 10)]
    assert vdeq.qemu_args(args, [7, 9]) == [
        "-m", "64", "-net", "nic",
        "-netdev", "hubport,id=vdeqn0,hubid=1", "-net", "nic,model=e1000,netdev=vdeqn0",
        "-netdev", "socket,id=vdeq0,fd=7", "-netdev", "hubport,id=vdeqh0,hubid=0,netdev=vdeq0",
        "-netdev", "socket,id=vdeq1,fd=9", "-netdev", "hubport,id=vdeqh1,hubid=1,netdev=vdeq1"]


def test_old_syntax():
    assert vdeq.endpoints(["-m", "64"], None) == [(None, 0)]
    assert vdeq.endpoints(["-m", "64"], "/a,/b") == [("/a", 0), ("/b", 0)]
    assert vdeq.qemu_args(["-m", "64"], [5, 6]) == [
        "-net", "socket,fd=5", "-net", "socket,fd=6", "-net", "nic", "-m", "64"]


def test_vde_parameters():
    assert vdeq.parse_vde(',sock="/tmp/a,b",vlan=3') == (3, "/tmp/a,b", 0)
    assert vdeq.parse_vde(",,port=4,,sock=/x") == (0, "/x", 4)
    assert vdeq.parse_vde("") == (0, None, 0)
    with pytest.raises(vdeq.BadArg):
        vdeq.parse_vde(",model=e1000")


def test_parse_command_line(capsys):
    p = vdeq.parse(["vdeq", "qemu-system-x86_64", "-sock", "/a,/b", "--mod", "660", "-m", "64"])
    assert (p.filename, p.socks, p.mode, p.args) == ("qemu-system-x86_64", "/a,/b", 0o660,
                                                     ["-m", "64"])
    assert vdeq.parse(["vdeq"]) == 0 and "qemu_executable" in capsys.readouterr().err
    assert vdeq.parse(["vdeq", "qemu", "--help"]) == 0
    assert vdeq.parse(["vdeq", "-h"]) == 0
    assert vdeq.wants_daemon("qemu", ["-daemonize"]) is False
    assert vdeq.wants_daemon("qemu", ["-daemonize", "-nographic"]) is True
    assert vdeq.wants_daemon("kvm", ["-daemonize"]) is True
