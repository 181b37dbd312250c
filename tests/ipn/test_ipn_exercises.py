"""Exercises 2 and 3 of the IPN proposal, as the README shows them.

(Exercise 1, VMs on a switch a normal user runs, is
``tests/integration/test_kvde_guests.py``.)

2. A group-restricted network for many users: mode 770 and a group;
   members of the group (nobody, whose group is nogroup) join, others
   (the user daemon) are refused.
3. A private stream: one producer, consumers that join and leave while
   it runs; a consumer gets what is sent after it joined, and other
   users cannot join a 700 network.
"""

import errno
import json
import os
import select
import signal
import stat
import subprocess
import sys

from support import COMPAT, REPO, require, wait_for
from vde_ipn import ipn

CAT = os.path.join(REPO, "bin", "vde-ipn-cat")
KVDE = os.path.join(COMPAT, "kvde_switch")
AGENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ipn_agent.py")
PYTHON = "/usr/bin/python3"
SETPRIV = "/usr/bin/setpriv"
USERS = {"member": ["--reuid=nobody", "--regid=nogroup", "--clear-groups"],
         "outsider": ["--reuid=daemon", "--regid=daemon", "--clear-groups"]}


def agent(procs, who):
    """An ipn_agent.py process run by ``who``; returns a call(op, **kw) function."""
    p = procs.start([require(SETPRIV)] + USERS[who] + [require(PYTHON), AGENT],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def call(op, **kw):
        p.stdin.write((json.dumps(dict(op=op, **kw)) + "\n").encode())
        p.stdin.flush()
        ready, _, _ = select.select([p.stdout], [], [], 30)
        assert ready, "%s agent did not answer %s" % (who, op)
        line = p.stdout.readline()
        assert line, "%s agent died: %s" % (who, p.stderr.read().decode())
        return json.loads(line)
    return call


def line_of(p, timeout=30.0):
    ready, _, _ = select.select([p.stdout], [], [], timeout)
    assert ready, "no line within %ss" % timeout
    return p.stdout.readline()


def nodes(path):
    head, tail = os.path.split(path)
    try:
        return len(os.listdir(os.path.join(head, ".%s.ipn" % tail, "n")))
    except FileNotFoundError:
        return -1                        # the socket file is made before its companion


def test_exercise2_a_group_restricted_network_with_ipn_cat(procs, netdir):
    path = os.path.join(netdir, "lab")
    listener = procs.start([sys.executable, require(CAT), "listen", "--create", "--mode", "770",
                            "--group", "nogroup", path, "--count", "1"],
                           stdout=subprocess.PIPE)
    wait_for(lambda: os.path.exists(path) and nodes(path) == 1, what="the network")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o770 and st.st_gid == 65534
    member = agent(procs, "member")
    member("new")
    assert member("connect", path=path)["ok"]
    assert member("send", data=["hi from a student"])["ok"]
    assert line_of(listener) == b"hi from a student\n"
    outsider = agent(procs, "outsider")
    outsider("new")
    assert outsider("connect", path=path)["errno"] == errno.EACCES


def test_exercise2_a_group_restricted_switch_with_kvde_switch(procs, netdir):
    sock = os.path.join(netdir, "lab")
    sw = procs.start([require(PYTHON), require(KVDE), "-s", sock, "-m", "0770", "-g", "nogroup"],
                     stdin=subprocess.PIPE)
    wait_for(lambda: os.path.exists(os.path.join(sock, ".ctl.ipn", "live")) or sw.poll() is not None,
             what="kvde_switch")
    assert sw.poll() is None, sw.stderr.read().decode()
    watcher = ipn.socket(ipn.IPN_VDESWITCH)
    watcher.connect(sock)
    watcher.settimeout(10)
    member = agent(procs, "member")
    member("new", protocol=ipn.IPN_VDESWITCH)
    assert member("connect", path=sock)["ok"]
    frame = "\xff" * 6 + "\x02\x00\x00\x00\x00\x07" + "\x88\xb5" + "student frame" + "\0" * 33
    assert member("send", data=[frame])["ok"]
    assert b"student frame" in watcher.recv(2000)
    outsider = agent(procs, "outsider")
    outsider("new", protocol=ipn.IPN_VDESWITCH)
    assert outsider("connect", path=sock)["errno"] == errno.EACCES
    watcher.close()


def test_exercise3_a_private_stream_with_consumers_joining_and_leaving(procs, netdir):
    path = os.path.join(netdir, "stream")
    producer = procs.start([sys.executable, require(CAT), "send", "--create", "--mode", "700",
                            path], stdin=subprocess.PIPE)
    wait_for(lambda: os.path.exists(path) and nodes(path) == 1, what="the stream")

    def consumer():
        p = procs.start([sys.executable, CAT, "listen", path], stdout=subprocess.PIPE)
        return p

    def produce(text):
        producer.stdin.write(text.encode() + b"\n")
        producer.stdin.flush()

    a = consumer()
    wait_for(lambda: nodes(path) == 2, what="the first consumer")
    produce("one")
    assert line_of(a) == b"one\n"
    b = consumer()
    wait_for(lambda: nodes(path) == 3, what="the second consumer")
    produce("two")
    assert line_of(a) == b"two\n" and line_of(b) == b"two\n"
    os.kill(a.pid, signal.SIGKILL)                       # leaves without a word
    a.wait()
    produce("three")
    assert line_of(b) == b"three\n"
    with ipn.socket() as probe:                          # a join purges the dead one
        probe.connect(path)
    assert nodes(path) == 2
    c = consumer()
    wait_for(lambda: nodes(path) == 3, what="the third consumer")
    produce("four")
    assert line_of(b) == b"four\n"
    assert line_of(c) == b"four\n"                       # nothing from before it joined
    stranger = agent(procs, "member")
    stranger("new")
    assert stranger("connect", path=path)["errno"] == errno.EACCES
    producer.stdin.close()
    assert producer.wait(timeout=30) == 0
