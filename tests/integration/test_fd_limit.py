"""The switch at its file-descriptor limit: no spinning, queued clients served.

Run under ``prlimit --nofile=48``, 40 clients connect at once, the way
libvdeplug does (blocking connect, request, wait for the reply).  The
switch can hold about twenty of them; the others wait in the listen
queue or in connect().  While they wait the switch must sleep, not spin
on a listener that accept() cannot serve: its CPU time is read from
/proc.  As served clients leave, the waiting ones must get their ports,
none refused, until all 40 have been served.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time

from support import OURS, require, wait_for
from test_bad_input import REPLY_LEN, v3_request

CLIENTS = 40
NOFILE = 48
CPU_WINDOW = 3.0                         # seconds of waiting clients measured
CPU_MAX = 0.3                            # CPU seconds the switch may use meanwhile
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK     # utime + stime


class Client(threading.Thread):
    """One libvdeplug-like client: blocking connect, request, reply."""

    def __init__(self, ctl: str, addr: str):
        super().__init__(daemon=True)
        self.ctl_path, self.addr = ctl, addr
        self.outcome = None              # "reply", "closed" or an error text
        self.served_at = None
        self.data = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.data.bind(addr)
        self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.start()

    def run(self):
        try:
            self.ctl.connect(self.ctl_path)          # blocks while the queue is full
            self.ctl.sendall(v3_request(self.addr, descr=b"flood"))
            got = b""
            while len(got) < REPLY_LEN:
                chunk = self.ctl.recv(REPLY_LEN - len(got))
                if not chunk:
                    break
                got += chunk
            self.outcome = "reply" if len(got) == REPLY_LEN else "closed"
            self.served_at = time.monotonic()
        except OSError as e:
            self.outcome = "error: %s" % e

    def close(self):
        for s in (self.ctl, self.data):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def limited_switch(procs, d):
    sw = procs.start([require("/usr/bin/prlimit"), "--nofile=%d" % NOFILE,
                      require(OURS["vde_switch"]), "-s", d], stdin=subprocess.PIPE)
    wait_for(lambda: os.path.exists(os.path.join(d, "ctl")) or sw.poll() is not None,
             20, "the switch to start")
    assert sw.poll() is None
    return sw


def test_fd_limit_no_spin_and_waiting_clients_served(procs, sockdir):
    d = os.path.join(sockdir, "sw")
    sw = limited_switch(procs, d)
    clients = [Client(os.path.join(d, "ctl"), os.path.join(sockdir, "c%02d" % i))
               for i in range(CLIENTS)]
    try:
        def served():
            return [c for c in clients if c.outcome == "reply"]

        # the switch fills its descriptors, then the count stops growing
        wait_for(lambda: len(served()) >= 10, 20, "the first clients to be served")
        last = -1
        while len(served()) != last:
            last = len(served())
            time.sleep(0.5)
        assert last < CLIENTS, "the limit was never reached"
        assert all(c.outcome in (None, "reply") for c in clients), (
            "clients refused at the limit: %r" % [c.outcome for c in clients])
        start = cpu_seconds(sw.pid)
        time.sleep(CPU_WINDOW)
        used = cpu_seconds(sw.pid) - start
        print("switch CPU at its fd limit: %.2f s in %.1f s" % (used, CPU_WINDOW))
        assert used < CPU_MAX, "the switch used %.2f CPU s in %.1f s at its fd limit" % (
            used, CPU_WINDOW)
        assert sw.poll() is None
        # clients leave in batches; those waiting are served in their place
        done = set()
        while len(done) < CLIENTS:
            batch = [c for c in served() if c not in done]
            assert batch, "waiting clients are not served: %r" % sorted(
                {c.outcome for c in clients})
            for c in batch:
                c.close()
                done.add(c)
            wait_for(lambda: len(served()) == CLIENTS or len(served()) > len(done),
                     15, "waiting clients to be served after %d left" % len(done))
        assert [c.outcome for c in clients] == ["reply"] * CLIENTS
        assert sw.poll() is None
    finally:
        for c in clients:
            c.close()
    sw.stdin.close()                             # EOF on stdin: the switch exits
    assert sw.wait(timeout=10) == 0
    err = sw.stderr.read().decode()
    assert err.count("no new clients until a descriptor is freed") == 1, err


class Staller(threading.Thread):
    """A local user's connection that never sends its request; connects
    again each time the switch drops it."""

    def __init__(self, ctl: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.ctl_path, self.stop = ctl, stop
        self.drops = 0
        self.start()

    def run(self):
        while not self.stop.is_set():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.ctl_path)
                s.settimeout(0.2)
                while not self.stop.is_set():
                    try:
                        if not s.recv(1):
                            break        # dropped: connect again
                    except socket.timeout:
                        continue
                self.drops += 1
            except OSError:
                time.sleep(0.05)
            finally:
                s.close()


def test_stalled_requests_do_not_pin_every_descriptor(procs, sockdir):
    """Connections that never finish their request fill the switch's
    descriptors and come back as soon as dropped; the switch neither spins
    nor keeps real clients out until they give up."""
    d = os.path.join(sockdir, "sw")
    sw = limited_switch(procs, d)
    stop = threading.Event()
    stallers = [Staller(os.path.join(d, "ctl"), stop) for _ in range(NOFILE)]
    clients = []
    try:
        wait_for(lambda: len(os.listdir("/proc/%d/fd" % sw.pid)) >= NOFILE - 1, 20,
                 "the stalled connections to fill the switch's descriptors")
        start = cpu_seconds(sw.pid)
        clients = [Client(os.path.join(d, "ctl"), os.path.join(sockdir, "c%02d" % i))
                   for i in range(5)]
        time.sleep(CPU_WINDOW)
        used = cpu_seconds(sw.pid) - start
        print("switch CPU at its fd limit: %.2f s in %.1f s" % (used, CPU_WINDOW))
        assert used < CPU_MAX, "the switch used %.2f CPU s in %.1f s" % (used, CPU_WINDOW)
        wait_for(lambda: all(c.outcome is not None for c in clients), 30,
                 "the clients to be answered")
        assert [c.outcome for c in clients] == ["reply"] * 5
        assert sw.poll() is None
    finally:
        stop.set()
        for c in clients:
            c.close()
        for t in stallers:
            t.join(timeout=5)


def test_mgmt_sessions_at_the_fd_limit(procs, sockdir):
    """More console sessions than descriptors: the switch waits for one to
    end, without spinning, and then greets the next."""
    d, mgmt = os.path.join(sockdir, "sw"), os.path.join(sockdir, "mgmt")
    sw = procs.start([require("/usr/bin/prlimit"), "--nofile=%d" % NOFILE,
                      require(OURS["vde_switch"]), "-s", d, "-M", mgmt], stdin=subprocess.PIPE)
    wait_for(lambda: os.path.exists(mgmt) or sw.poll() is not None, 20, "the switch to start")
    sessions = []
    try:
        def greeted(s):
            s.settimeout(0.2)
            try:
                return b"vde$ " in s.recv(4096)
            except socket.timeout:
                return False

        for _ in range(NOFILE + 5):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(mgmt)                      # queued by the kernel when not accepted
            sessions.append(s)
        greeted_now = [greeted(s) for s in sessions]
        assert not all(greeted_now), "the limit was never reached"
        start = cpu_seconds(sw.pid)
        time.sleep(CPU_WINDOW)
        used = cpu_seconds(sw.pid) - start
        print("switch CPU with mgmt sessions at its fd limit: %.2f s" % used)
        assert used < CPU_MAX, "the switch used %.2f CPU s in %.1f s" % (used, CPU_WINDOW)
        waiting = [s for s, ok in zip(sessions, greeted_now) if not ok]
        for s, ok in zip(sessions, greeted_now):
            if ok:
                s.close()
        wait_for(lambda: greeted(waiting[0]), 10, "a waiting session to be greeted")
        assert sw.poll() is None
    finally:
        for s in sessions:
            s.close()
