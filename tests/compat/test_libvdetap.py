"""Debian's libvdetap.so (LD_PRELOAD) joins a program's tap to our switch.

A small C program, compiled here, opens a tap as any program does
(``/dev/net/tun``, ``TUNSETIFF``); under ``LD_PRELOAD=libvdetap.so`` with
``VDEALLTAP`` naming a switch, the library gives it a socket carried to
the switch by Debian's ``vdetap`` helper instead.  Frames go both ways
between the program and a vde_plug on the switch, ours and Debian's.
"""

import os
import secrets
import subprocess

import pytest

from netns import in_ns, sh
from support import BROADCAST, C_TOOLS, StreamPlug, attached, frame, mac, require

LIB = "/usr/lib/vde2/libvdetap.so"
HELPER = "/usr/lib/vde2/vdetap"
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tapper.c")


@pytest.fixture(scope="module")
def tapper(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("tapper") / "tapper")
    subprocess.run([require("/usr/bin/gcc"), "-O0", "-o", out, SOURCE], check=True,
                   capture_output=True, timeout=120)
    return out


@pytest.fixture
def netns():
    """Where the program runs: were the library not to catch its open, the
    kernel's tap0 it would get stays in there, removed with it."""
    name = "vdeipn-vdetap-%d-%s" % (os.getpid(), secrets.token_hex(3))
    sh("ip", "netns", "add", name)
    try:
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


@pytest.mark.parametrize("env_name", ["VDEALLTAP", "tap0"])
def test_a_tap_program_talks_to_the_switch(procs, new_switch, switch_kind, sockdir, tapper,
                                           env_name, netns):
    if not os.path.isfile(LIB):
        pytest.fail("%s is missing (make setup installs vde2)" % LIB)
    require(HELPER)
    sw = new_switch(switch_kind, os.path.join(sockdir, "sw"))
    plug = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    attached(sw, 1, 30)
    hello = frame(BROADCAST, mac(0x31), b"from the tap program")
    env = dict(os.environ, LD_PRELOAD=LIB)
    env[env_name] = sw.dir
    prog = procs.start(in_ns(netns, [tapper, hello.hex()]), env=env, stdout=subprocess.PIPE)
    assert prog.stdout.readline().decode().strip() == "tap0"
    got = plug.recv_matching(lambda f: f == hello, 30)
    assert got == hello, "the program's frame never reached the switch"
    reply = frame(mac(0x31), mac(0x32), b"to the tap program")
    plug.send(reply)
    line = prog.stdout.readline().decode().strip()
    assert prog.wait(timeout=30) == 0, prog.stderr.read().decode()
    assert bytes.fromhex(line) == reply
