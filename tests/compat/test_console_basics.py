"""The management console of vde_switch, ours next to 2.3.2's.

Both switches run side by side with a ``-M`` socket; every command's
answer (data block, status line, prompt) is compared byte for byte,
after replacing what legitimately differs: the pid, the MAC address,
the uptime and the per-implementation directory.
"""

import os
import re
import subprocess

import pytest

from support import C_TOOLS, OURS, PROMPT, Session, require, wait_for
from support import END_OF_SESSION as EOS

BANNER = (b"VDE switch V.2.3.2\n(C) Virtual Square Team (coord. R. Davoli) "
          b"2005,2006,2007 - GPLv2\n")


class Running:
    """A switch started with stdin held open and a mgmt socket."""

    def __init__(self, procs, sockdir, kind, *args):
        self.tool = require(C_TOOLS["vde_switch"] if kind == "c" else OURS["vde_switch"])
        self.root = os.path.join(sockdir, kind)
        os.makedirs(self.root)
        self.dir, self.mgmt = self.root + "/sw", self.root + "/m"
        self.proc = procs.start([self.tool, "-s", self.dir, "-M", self.mgmt] + list(args),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        wait_for(lambda: self.proc.poll() is not None or os.path.exists(self.mgmt),
                 what="%s switch" % kind)
        assert self.proc.poll() is None, self.proc.stderr.read()

    def session(self):
        return Session(self.mgmt)

    def norm(self, data: bytes) -> bytes:
        data = data.replace(self.root.encode(), b"@R")
        return re.sub(rb"pid \d+ MAC [0-9a-f:]{17} uptime \d+", b"pid P MAC M uptime U", data)

    def answers(self, lines):
        """The normalised raw answer to each line, in one session."""
        with self.session() as s:
            return [self.norm(s.ask(line)) for line in lines]

    def end(self):
        """EOF on stdin; (status, stderr) with the tool path replaced."""
        self.proc.stdin.close()
        self.proc.stdin = None
        _, err = self.proc.communicate(timeout=5)
        return self.proc.returncode, err.replace(self.tool.encode(), b"PROG")


@pytest.fixture
def pair(procs, sockdir):
    def start(*args):
        return {k: Running(procs, sockdir, k, *args) for k in ("c", "ours")}
    return start


def compare(pair_, lines, *args):
    switches = pair_(*args)
    res = {k: sw.answers(lines) for k, sw in switches.items()}
    assert res["ours"] == res["c"]
    return res["c"]


def test_banner_and_prompt(pair):
    switches = pair()
    for sw in switches.values():
        with sw.session() as s:
            assert s.greeting == BANNER + PROMPT


# Console commands of our own, listed by ``help`` after all of 2.3.2's rows.
EXTENSIONS = re.compile(rb"(port/stats|json|json/\S+|monitor|monitor/\S+|dump|dump/\S+) ")


def without_extensions(answer: bytes) -> bytes:
    """``answer`` minus the help rows of our own commands, which must all
    come after the last row 2.3.2 has (so clients that build completion
    lists from ``help`` see 2.3.2's table first and unchanged)."""
    rows = answer.split(b"\n")
    ext = [i for i, row in enumerate(rows) if EXTENSIONS.match(row)]
    # then ".", the status line and the prompt ("", "vde$ ")
    assert ext == list(range(len(rows) - 4 - len(ext), len(rows) - 4))
    return b"\n".join(row for i, row in enumerate(rows) if i not in ext)


def compare_help(pair_, line):
    switches = pair_()
    res = {k: sw.answers([line])[0] for k, sw in switches.items()}
    assert without_extensions(res["c"]) == res["c"]
    assert without_extensions(res["ours"]) == res["c"]
    return res["c"]


def test_help_is_identical(pair):
    out = compare_help(pair, "help")
    assert out.startswith(b"0000 DATA END WITH '.'\nCOMMAND PATH       SYNTAX          HELP\n")
    assert b"\nvlan/allprint      [N]             print the list of defined vlan (including "\
        b"inactive port)\n.\n1000 Success\n" + PROMPT in out


@pytest.mark.parametrize("line", ["help port", "help port/set", "helpds", "help nothing",
                                  "help vlan", "help hash"])
def test_help_with_prefix(pair, line):
    compare_help(pair, line)


def test_showinfo(pair):
    (out,) = compare(pair, ["showinfo"])
    assert out == (b"0000 DATA END WITH '.'\n" + BANNER + b"\npid P MAC M uptime U\n"
                   b"mgmt @R/m perm 0600\n.\n1000 Success\n" + PROMPT)


def test_showinfo_mgmtmode(pair):
    compare(pair, ["showinfo"], "--mgmtmode", "640")


@pytest.mark.parametrize("line", ["port/showinfo", "hash/showinfo", "ds/showinfo"])
def test_module_showinfo(pair, line):
    (out,) = compare(pair, [line])
    assert out.endswith(b"1000 Success\n" + PROMPT)


def test_module_showinfo_with_options(pair):
    compare(pair, ["port/showinfo", "hash/showinfo", "ds/showinfo"],
            "-x", "-n", "9", "--hashsize", "64", "-m", "660")


def test_unknown_command(pair):
    (out,) = compare(pair, ["bogus"])
    assert out == b"1038 Function not implemented\n" + PROMPT


def test_prefix_lookup(pair):
    compare(pair, ["showinfoXYZ", "port/showinfo trailing", "  \tshowinfo", "hash/showinfo\r"])


def test_print_missing_port(pair):
    (out,) = compare(pair, ["port/print 7"])
    assert out == b"0000 DATA END WITH '.'\n.\n1006 No such device or address\n" + PROMPT


def test_empty_and_comment_lines(pair):
    outs = compare(pair, ["", "   ", "# a comment", "\t#x"])
    assert outs == [PROMPT] * 4


def test_logout(pair):
    switches = pair()
    res = {}
    for kind, sw in switches.items():
        with sw.session() as s:
            out = s.ask("logout")
            res[kind] = (out, s.at_eof())
        assert sw.proc.poll() is None
    assert res["c"] == (EOS, True)
    assert res["ours"] == res["c"]


def test_shutdown(pair):
    switches = pair()
    res = {}
    for kind, sw in switches.items():
        with sw.session() as s:
            out = s.ask("shutdown")
            eof = s.at_eof()
        sw.proc.wait(timeout=5)
        res[kind] = (out, eof) + sw.end()
        assert not os.path.exists(sw.dir) and not os.path.exists(sw.mgmt)
    assert res["c"] == (EOS, True, 0, b"PROG: Shutdown from mgmt command\n")
    assert res["ours"] == res["c"]


def test_two_sessions(pair):
    switches = pair()
    res = {}
    for kind, sw in switches.items():
        with sw.session() as a, sw.session() as b:
            outs = [a.ask("port/showinfo"), b.ask("hash/showinfo"), a.ask("bogus"),
                    b.ask("logout"), a.ask("ds/showinfo")]
            res[kind] = [sw.norm(o) for o in outs] + [b.at_eof()]
    assert res["c"][3:5] == [EOS, b"0000 DATA END WITH '.'\nctl dir @R/sw\n"
                             b"std mode 0600\n.\n1000 Success\n" + PROMPT]
    assert res["ours"] == res["c"]


def test_closing_a_session_keeps_the_switch(pair):
    switches = pair()
    for sw in switches.values():
        s = sw.session()
        s.sock.close()
        assert sw.answers(["port/showinfo"])[0].endswith(b"1000 Success\n" + PROMPT)
    assert switches["ours"].end() == switches["c"].end()
