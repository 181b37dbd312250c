"""The same console script on the C switch and ours gives the same answers.

Only what must differ is normalised: pids, MAC addresses and endpoint
ids (the C switch uses its fd numbers).
"""

import os
import re
import socket
import threading
import time

import pytest

from support import BROADCAST, C_TOOLS, StreamPlug, attached, console_command, frame, mac

SCRIPT = [
    "vlan/create 10", "vlan/create 10", "vlan/create 0", "vlan/create 4094", "vlan/create 4093",
    "port/setvlan 1 10", "port/setvlan 1 11", "port/setvlan 9 10", "port/setvlan 3 10",
    "port/create 3", "port/create 3", "port/create 8", "port/createauto",
    "vlan/addport 10 3", "vlan/addport 11 3", "vlan/addport 10 5",
    "vlan/print", "vlan/allprint", "vlan/print 10", "vlan/print 12", "vlan/allprint 0",
    "vlan/delport 10 1", "vlan/delport 10 3", "vlan/remove 10", "vlan/remove 4093",
    "vlan/remove 4095", "vlan/remove 20",
    "port/allprint", "port/remove 3", "port/remove 3", "port/remove 1",
    "port/allocatable 2 1", "port/allocatable 6 0", "port/allocatable x",
    "port/setuser 2 root", "port/setuser 2 nosuch", "port/setgroup 2 daemon",
    "port/setuser 6 1000", "port/allprint 2",
    "port/setnumports 0", "port/setnumports 1", "port/setnumports 16", "port/showinfo",
    "hash/setsize 100", "hash/showinfo", "hash/setsize 0", "hash/setgcint 5",
    "hash/setexpire 50", "hash/setminper 1", "hash/showinfo",
    "hash/find zz", "hash/find 00:11:22:33:44:55",
    "help", "help port", "help vlan/", "helpport", "debug/list", "debug/list port",
    "debug/list nothing", "fstp/showinfo", "plugin/list",
    "port/print 1", "port/print 99", "port/print 7", "port/resetcounter 99",
    "port/epclose 1 99", "port/epclose x", "port/showinfoXYZ",
    "vlan/delport 0 2", "vlan/addport 0 2", "vlan/allprint", "vlan/remove 0",
    "bogus", "port/bogus", "   showinfo", "#comment", "",
    "port/sethub 1", "port/showinfo", "port/sethub 0", "port/showinfo",
]


# rows our help adds for commands 2.3.2 does not have (documented in the README)
EXTRA_HELP_ROWS = re.compile(r"^(json|json/\S+|port/stats|monitor|monitor/\S+|dump|dump/\S+) .*\n", re.M)


def normalise(text: str) -> str:
    text = EXTRA_HELP_ROWS.sub("", text)
    text = re.sub(r"pid=\d+", "pid=P", text)
    text = re.sub(r"pid \d+ MAC [0-9a-f:]+ uptime \d+", "pid P MAC M uptime U", text)
    text = re.sub(r"MAC [0-9a-f:]{17}", "MAC M", text)
    text = re.sub(r"endpoint ID \d+", "endpoint ID E", text)
    text = re.sub(r"ctl dir \S+", "ctl dir D", text)
    text = re.sub(r"mgmt \S+ perm", "mgmt M perm", text)
    return text


def run_script(sw) -> list:
    return [(line, normalise(sw.cmd(line))) for line in SCRIPT]


def test_console_script_matches_the_c_switch(procs, sockdir, new_switch):
    answers = {}
    for kind in ("c", "ours"):
        sw = new_switch(kind, os.path.join(sockdir, kind), "-n", "8")
        StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
        attached(sw, 1)
        answers[kind] = run_script(sw)
    for (line, c_out), (_, our_out) in zip(answers["c"], answers["ours"]):
        assert our_out == c_out, "answers differ for %r" % line


def test_showinfo_and_ds_showinfo_match(procs, sockdir, new_switch):
    outs = {}
    for kind in ("c", "ours"):
        sw = new_switch(kind, os.path.join(sockdir, kind))
        outs[kind] = [normalise(sw.cmd(c)) for c in ("showinfo", "ds/showinfo")]
    assert outs["ours"] == outs["c"]


def _session(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    buf = b""
    while not buf.endswith(b"$ "):
        buf += s.recv(4096)
    return s


def _answer(s, quiet=0.3):
    """Everything the switch writes until it has been quiet for a while."""
    buf = b""
    s.settimeout(quiet)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        pass
    s.settimeout(5)
    return buf


@pytest.mark.parametrize("junk", [
    bytes(range(256)),                       # binary junk, NULs included
    b"x" * 1000000 + b"\n",                  # a 1 MB line
    b"port/setvlan banana split\n",
    b"hash/find 1:2:3\n",
    b"\xff\xfe\n",
], ids=["binary", "1MB-line", "bad-args", "bad-mac", "bad-utf8"])
def test_garbage_on_the_console_is_answered_and_harmless(procs, sockdir, new_switch, junk):
    sw = new_switch("ours", os.path.join(sockdir, "sw"))
    a = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    b = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    attached(sw, 2)
    s = _session(sw.mgmt)
    sender = threading.Thread(target=s.sendall, args=(junk,), daemon=True)
    sender.start()                            # read while it is being sent
    reply = _answer(s, quiet=1.0)
    sender.join(10)
    assert not sender.is_alive()
    assert re.search(rb"^1\d\d\d ", reply, re.M), reply[:200]   # a status line came back
    s.sendall(b"port/showinfo\n")
    reply = _answer(s)
    assert b"Numports=32" in reply and reply.rstrip().endswith(b"vde$")
    s.close()
    f = frame(BROADCAST, mac(1))
    a.send(f)
    assert b.recv() == f                                           # still switching


def test_console_works_with_the_c_unixterm_style_client(procs, sockdir, new_switch):
    """A command per write, as unixterm sends it; the same for both switches."""
    out = {}
    for kind in ("c", "ours"):
        sw = new_switch(kind, os.path.join(sockdir, kind))
        out[kind] = normalise(console_command(sw.mgmt, "port/showinfo"))
    assert out["ours"] == out["c"]


def test_a_console_client_that_does_not_read_blocks_nobody(procs, sockdir, new_switch):
    """Answers pile up for a client that never reads; frames keep flowing
    and other console sessions keep working."""
    sw = new_switch("ours", os.path.join(sockdir, "sw"))
    a = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    b = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    attached(sw, 2)
    s = _session(sw.mgmt)
    s.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 5
    while sent < 4000000 and time.monotonic() < deadline:
        try:
            sent += s.send(b"help\n" * 2000)
        except BlockingIOError:
            time.sleep(0.01)
    f = frame(BROADCAST, mac(1))
    a.send(f)
    assert b.recv(timeout=5) == f
    assert "Numports=32" in sw.cmd("port/showinfo")
    s.close()
