"""unixcmd / unixterm / vdeterm drop-ins side by side with Debian's 2.3.2 tools.

Every comparison runs both implementations against the same console (ours
and the C switch), or crosses them (Debian's client on our switch, our
client on the C switch) with pids, MACs, uptimes and paths normalised.
"""
import os
import re
import subprocess
import time

import pexpect
import pytest

from support import COMPAT, C_TOOLS, require

OURS = {name: os.path.join(COMPAT, name) for name in ("unixcmd", "unixterm", "vdeterm")}
VDECMD = "/etc/vde2/vdecmd"
COMMANDS = ["showinfo", "port/print", "help", "bogus", "port/print 99", "vlan/print"]
CROSS_COMMANDS = ["showinfo", "port/print", "bogus", "port/print 99", "vlan/print"]


def run(argv, timeout=10):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def normalise(data: bytes, *paths: str) -> bytes:
    for p in paths:
        data = data.replace(p.encode(), b"PATH")
    data = re.sub(rb"pid \d+", b"pid N", data)
    data = re.sub(rb"uptime \d+", b"uptime N", data)
    return re.sub(rb"MAC ([0-9a-f]{2}:){5}[0-9a-f]{2}", b"MAC M", data)


def unixcmd(tool, sock, cmd, *extra):
    return run([require(tool)] + list(extra) + ["-f", VDECMD, "-s", sock] + cmd.split())


# --------------------------------------------------------------------------- unixcmd
@pytest.mark.parametrize("cmd", COMMANDS)
@pytest.mark.parametrize("verbose", [False, True])
def test_unixcmd_same_bytes_as_debian(new_switch, sockdir, switch_kind, cmd, verbose):
    sw = new_switch(switch_kind, os.path.join(sockdir, "sw"))
    extra = ["-v"] if verbose else []
    theirs = unixcmd(C_TOOLS["unixcmd"], sw.mgmt, cmd, *extra)
    ours = unixcmd(OURS["unixcmd"], sw.mgmt, cmd, *extra)
    assert normalise(ours[1]) == normalise(theirs[1])
    assert (ours[0], ours[2]) == (theirs[0], theirs[2])
    assert ours[0] == 255                 # vdecmd's EXITATOI is no command: EXIT -1
    if cmd in ("showinfo", "help"):
        assert b"\n\0" in ours[1]         # every copied line ends with a NUL


@pytest.mark.parametrize("cmd", CROSS_COMMANDS)
def test_unixcmd_crossed(new_switch, sockdir, cmd):
    ours_sw = new_switch("ours", os.path.join(sockdir, "o"))
    c_sw = new_switch("c", os.path.join(sockdir, "c"))
    theirs = unixcmd(C_TOOLS["unixcmd"], ours_sw.mgmt, cmd)
    ours = unixcmd(OURS["unixcmd"], c_sw.mgmt, cmd)
    assert normalise(ours[1], c_sw.mgmt) == normalise(theirs[1], ours_sw.mgmt)
    assert ours[0] == theirs[0]


def test_unixcmd_libvdemgmt_script(new_switch, sockdir, switch_kind):
    """sendcmd.rc exercises OUTTAG/OUTSHIFT/RVATOI/EXITRV: exit status = 1xxx % 256."""
    sw = new_switch(switch_kind, os.path.join(sockdir, "sw"))
    rc = "/etc/vde2/libvdemgmt/sendcmd.rc"
    for cmd in ("port/print 99", "showinfo"):
        # the script starts with SEND: give the banner time to be there first
        theirs = run([require(C_TOOLS["unixcmd"]), "-f", rc, "-s", sw.mgmt] + cmd.split())
        ours = run([OURS["unixcmd"], "-f", rc, "-s", sw.mgmt] + cmd.split())
        assert (ours[0], normalise(ours[1]), ours[2]) == \
            (theirs[0], normalise(theirs[1]), theirs[2])


def _script(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("case", ["noargs", "nosock", "norc", "badopt", "abbrev",
                                  "runoff", "timeout", "send"])
def test_unixcmd_corners_as_debian(new_switch, sockdir, tmp_path, case):
    sw = new_switch("ours", os.path.join(sockdir, "sw"))
    scripts = {
        "runoff": "1 IN '$ ' 100\n2 COPY\n",
        "timeout": "TIMEOUT 200\n1 IN 'zzz' 100\n100 COPY\n101 EXIT 5\n",
        "send": "1 IN '$ ' 9\n2 SEND '$1 [$2]$x\\n'\n3 THROW\n4 IN '\\n' 9\n"
                "5 IN '\\n' 9\n6 COPY\n7 SKIP 2\n8 RVATOI 8\n9 EXITRV\n",
    }
    rc = _script(tmp_path, "s.rc", scripts.get(case, "1 EXIT 3\n"))
    args = {
        "noargs": [],
        "nosock": ["-f", rc, "-s", os.path.join(sockdir, "none"), "x"],
        "norc": ["-f", os.path.join(sockdir, "none"), "-s", sw.mgmt, "x"],
        "badopt": ["-q", "-f", rc, "-s", sw.mgmt, "x"],
        "abbrev": ["--rc", rc, "-s", sw.mgmt, "x"],
    }.get(case, ["-f", rc, "-s", sw.mgmt, "x", "port/print", "7"])
    theirs = run([require(C_TOOLS["unixcmd"])] + args)
    ours = run([OURS["unixcmd"]] + args)
    strip = lambda b: b.replace(C_TOOLS["unixcmd"].encode(), b"PROG").replace(
        OURS["unixcmd"].encode(), b"PROG")
    assert (ours[0], normalise(strip(ours[1])), strip(ours[2])) == \
        (theirs[0], normalise(strip(theirs[1])), strip(theirs[2]))


# --------------------------------------------------------------------------- terminals
def spawn(tool, sock, echo=True):
    return pexpect.spawn(require(tool), [sock], timeout=5, echo=echo)


def collect(child, until: bytes, count: int, timeout=5.0) -> bytes:
    """Read the child's output until ``until`` was seen ``count`` times."""
    out = b""
    deadline = time.monotonic() + timeout
    while out.count(until) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no %r x%d in %r" % (until, count, out))
        try:
            out += child.read_nonblocking(65536, timeout=min(left, 0.2))
        except pexpect.TIMEOUT:
            pass
    return out


def settle(child, wait=0.3) -> bytes:
    out = b""
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            out += child.read_nonblocking(65536, timeout=0.05)
        except (pexpect.TIMEOUT, pexpect.EOF):
            pass
    return out


def unixterm_session(tool, sock):
    child = spawn(tool, sock)
    try:
        out = collect(child, b"$ ", 1)
        for cmd in ["port/showinfo", "bogus", "port/print 99"]:
            child.sendline(cmd)
            out += collect(child, b"\nvde$ ", 1)
        child.sendline("logout")
        child.expect(pexpect.EOF)
        out += child.before
        child.close()
        return out, child.exitstatus
    finally:
        child.close(force=True)


def test_unixterm_crossed(new_switch, sockdir):
    ours_sw = new_switch("ours", os.path.join(sockdir, "o"))
    c_sw = new_switch("c", os.path.join(sockdir, "c"))
    theirs, their_rc = unixterm_session(C_TOOLS["unixterm"], ours_sw.mgmt)
    ours, our_rc = unixterm_session(OURS["unixterm"], c_sw.mgmt)
    assert b"Numports=32" in ours and b"1038 Function not implemented" in ours
    assert (our_rc, ours.replace(b"9999 END OF SESSION", b"")) == \
        (their_rc, theirs.replace(b"9999 END OF SESSION", b""))


@pytest.mark.parametrize("tool", ["ours", "c"])
def test_unixterm_connect_error_and_eof(sockdir, tool):
    path = OURS["unixterm"] if tool == "ours" else C_TOOLS["unixterm"]
    assert run([require(path), os.path.join(sockdir, "none")]) == \
        (255, b"", b"Socket connecting error: No such file or directory\n")


def render(data: bytes) -> str:
    """The text a terminal shows after ``data`` (the sequences vdeterm uses)."""
    lines, row, col = [[]], 0, 0
    i = 0
    while i < len(data):
        c = data[i]
        line = lines[row]
        if data[i:i + 3] in (b"\x1b[@", b"\x1b[P", b"\x1b[C", b"\x1b[D"):
            op = data[i + 2]
            if op == 0x40:
                line.insert(col, " ")
            elif op == 0x50:
                del line[col:col + 1]
            else:
                col = col + 1 if op == 0x43 else max(0, col - 1)
            i += 3
            continue
        if c == 0x0D:
            col = 0
        elif c == 0x0A:
            row += 1
            if row == len(lines):
                lines.append([])
        elif c == 0x08:
            col = max(0, col - 1)
        elif c >= 0x20:
            line.extend(" " * (col + 1 - len(line)))
            line[col] = chr(c)
            col += 1
        i += 1
    return "\n".join("".join(line).rstrip() for line in lines)


def vdeterm_session(tool, sock):
    """Drive a vdeterm: the rendered screen and the exit status."""
    child = spawn(tool, sock, echo=False)
    prompt = b"vde[" + sock.encode() + b"]: "
    try:
        out = collect(child, prompt, 1)
        steps = [("port/showinfo\n", b"Numports=32"), ("bogus\n", b"Function not implemented"),
                 ("port/sh\t", b"port/showinfo "), ("\n", b"counters=true")]
        for keys, expect in steps:
            child.send(keys)
            out += collect(child, expect, 1)
            out += settle(child)
        child.send("logout\n")
        child.expect(pexpect.EOF)
        out += child.before
        child.close()
        return render(out), child.exitstatus
    finally:
        child.close(force=True)


def test_vdeterm_debian_and_ours_on_our_switch(new_switch, sockdir):
    sw = new_switch("ours", os.path.join(sockdir, "o"))
    theirs = vdeterm_session(C_TOOLS["vdeterm"], sw.mgmt)
    ours = vdeterm_session(OURS["vdeterm"], sw.mgmt)
    assert ours == theirs
    assert ours[1] == 0 and "vde[%s]: logout" % sw.mgmt in ours[0]


def test_vdeterm_crossed(new_switch, sockdir):
    ours_sw = new_switch("ours", os.path.join(sockdir, "o"))
    c_sw = new_switch("c", os.path.join(sockdir, "c"))
    theirs = vdeterm_session(C_TOOLS["vdeterm"], ours_sw.mgmt)
    ours = vdeterm_session(OURS["vdeterm"], c_sw.mgmt)
    assert ours[0].replace(c_sw.mgmt, "S") == theirs[0].replace(ours_sw.mgmt, "S")
    assert ours[1] == theirs[1] == 0


def test_vdeterm_shutdown_ends_both(new_switch, sockdir):
    sw = new_switch("c", os.path.join(sockdir, "c"))
    child = spawn(OURS["vdeterm"], sw.mgmt, echo=False)
    try:
        collect(child, b"]: ", 1)
        child.send("shutdown\n")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        assert sw.proc.wait(timeout=5) == 0
    finally:
        child.close(force=True)


@pytest.mark.parametrize("tool", ["ours", "c"])
def test_vdeterm_connect_error(sockdir, tool):
    path = OURS["vdeterm"] if tool == "ours" else C_TOOLS["vdeterm"]
    assert run([require(path), os.path.join(sockdir, "none")]) == \
        (255, b"", b"Socket connecting error: No such file or directory\n\n")
