"""Bad input to ``slirp://`` and ``slirpvde``: one line, nothing left behind.

Each case runs the real command against our switch and checks that it
exits non-zero with a single line on stderr saying what is wrong, that
the switch has no port left from it and that no file (pid file, data
socket) stays in the directory.  A busy host port is one the test holds.
"""

import os
import socket
import subprocess
import sys

import pytest

from support import COMPAT, OURS, Switch, require

PLUG = os.path.join(COMPAT, "vde_plug")
SLIRPVDE = os.path.join(COMPAT, "slirpvde")


@pytest.fixture
def switch(procs, sockdir):
    return Switch(procs, OURS["vde_switch"], os.path.join(sockdir, "sw"))


@pytest.fixture
def busy_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    yield s.getsockname()[1]
    s.close()


def endpoints(switch) -> int:
    return switch.cmd("port/print").count("-- endpoint ID")


def run_bad(switch, sockdir, argv, *, status=1):
    before = sorted(os.listdir(sockdir)), sorted(os.listdir(switch.dir))
    p = subprocess.run(argv, cwd=sockdir, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=30)
    lines = p.stderr.splitlines()
    assert p.returncode == status, (p.returncode, p.stderr)
    assert len(lines) == 1, p.stderr
    assert p.stdout == ""
    assert endpoints(switch) == 0
    assert (sorted(os.listdir(sockdir)), sorted(os.listdir(switch.dir))) == before
    return lines[0]


@pytest.mark.parametrize("vnl,says", [
    ("slirp:///bogus=1", "unknown key: bogus"),
    ("slirp:///tcpfwd=8080:10.0.2.15", "'8080:10.0.2.15'"),
    ("slirp:///udpfwd=8080:10.0.2.300:53", "'10.0.2.300' is not an IPv4 address"),
    ("slirp:///tcpfwd=99999:10.0.2.15:80", "bad port '99999'"),
    ("slirp:///dhcp=10.9.9.9", "outside the network"),
])
def test_plug_refuses_bad_options(switch, sockdir, vnl, says):
    line = run_bad(switch, sockdir, [require(PLUG), switch.dir, vnl])
    assert line.startswith("vde_open %s: Invalid argument" % vnl) and says in line, line


def test_plug_refuses_a_busy_host_port(switch, sockdir, busy_port):
    vnl = "slirp:///tcpfwd=127.0.0.1:%d:10.0.2.15:80" % busy_port
    line = run_bad(switch, sockdir, [require(PLUG), switch.dir, vnl])
    assert line.startswith("vde_open %s: Address already in use" % vnl), line
    assert "127.0.0.1:%d" % busy_port in line, line


@pytest.mark.parametrize("args,says", [
    (["-L", "8080:10.0.2.15"], "redir TCP syntax error"),
    (["-U", "8080:nowhere:53"], "'nowhere' is not an IPv4 address"),
    (["--network", "10.0.300.0"], "bad host/network address"),
    (["--dhcp=10.7.0.9"], "outside the network"),
])
def test_slirpvde_refuses_bad_options(switch, sockdir, args, says):
    line = run_bad(switch, sockdir, [require(SLIRPVDE), "-p", "pid", "--unix", switch.dir]
                   + args)
    assert line.startswith("slirpvde: ") and says in line, line


def test_slirpvde_refuses_a_busy_host_port(switch, sockdir, busy_port):
    line = run_bad(switch, sockdir, [require(SLIRPVDE), "-p", "pid", "-s", switch.dir,
                                     "--dhcp", "-L", "%d:10.0.2.15:22" % busy_port])
    assert "Address already in use" in line and str(busy_port) in line, line


@pytest.mark.parametrize("bad", [["-Z"], ["-P", "3"]])
def test_slirpvde_unknown_option_as_2_3_2(switch, sockdir, bad):
    """getopt_long_only's complaint, then the usage, exit 255: as the C tool
    (whose usage ends with a credit line for code this one does not have).
    ``-P`` is one: its manual lists it, but only ``--port`` exists."""
    argv = [require(SLIRPVDE), "-s", switch.dir] + bad
    ours = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    c = subprocess.run([require("/usr/bin/slirpvde")] + argv[1:], capture_output=True,
                       text=True, timeout=30)
    assert ours.returncode == c.returncode == 255
    assert ours.stderr.splitlines()[0] == "%s: unrecognized option '%s'" % (argv[0], bad[0])
    c_lines = [line for line in c.stderr.splitlines()
               if line and "Gasparovski" not in line]
    assert ours.stderr.splitlines()[1:] == c_lines[1:]
    assert endpoints(switch) == 0


@pytest.mark.parametrize("tool", ["vde_plug", "slirpvde"])
def test_missing_libslirp_is_one_line_naming_the_package(switch, sockdir, tool):
    """Without libslirp (its loader made to find nothing) the plug and
    slirpvde say which Debian package to install, in one line."""
    argv = ([tool, switch.dir, "slirp://"] if tool == "vde_plug"
            else [tool, "-s", switch.dir, "--dhcp"])
    code = ("import sys, ctypes.util; sys.path.insert(0, %r)\n"
            "import vde_ipn.io.plugs.libslirp as L\n"
            "L.SONAMES = ('libslirp-absent.so.99',)\n"
            "ctypes.util.find_library = lambda name: None\n"
            "from vde_ipn.cli.%s import main\n"
            "sys.exit(main(%r))\n"
            % (os.path.dirname(COMPAT), tool.replace("vde_", ""), argv))
    line = run_bad(switch, sockdir, [sys.executable, "-c", code])
    assert "install the Debian package libslirp0" in line, line
    assert line.startswith("vde_open slirp://: " if tool == "vde_plug" else "slirpvde: "), line
