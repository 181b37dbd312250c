#!/usr/bin/env python3
"""IPN against UDP multicast and the C vde_switch hub, one sender, N receivers.

The 2007 AF_IPN proposal reported (quoted, not measured here) 333,000
msg/s for IPN against 244,000 for UDP multicast with one receiver, and
250,000 against 174,000 with two.  This script reruns that experiment
side by side: one sender sends short messages ("Hello World") as fast as
it can for a few seconds; every receiver counts what it gets.  Figures
are messages delivered per second at each receiver (the mean over
receivers), and the messages each receiver missed.

Contenders, all in separate processes on loopback / unix sockets:

* ``ipn lossless`` / ``ipn lossy``: vde_ipn.ipn, Python on both sides;
* ``... select+recv``: the same receivers written the obvious event-loop
  way, ``select()`` then a blocking ``recv()``;
* ``udp mcast py``: UDP multicast on 127.0.0.1, written the obvious way;
* ``udp mcast C``: the same in C (compiled here when a C compiler exists);
* ``vde_switch hub``: the C vde_switch -hub with Python clients speaking
  its ctl/data protocol (messages get a 14-byte Ethernet header there).

``--rev REV`` (repeatable) adds the IPN rows of a git revision's package
beside ours, each run in its own interpreter with that package first on
its path, so a before/after comparison happens in one invocation, under
the same load, against the same UDP multicast.  ``--runs N`` repeats the
whole table N times, contenders interleaved within each run, and prints
medians.  ``--latency`` adds a row for one message at a time: send, then
recv, two nodes in one process (microseconds per message, median).

Usage: ``python3 benchmarks/ipn_vs_multicast.py [--seconds 3] [--receivers 1,2,4]
[--runs 3] [--rev 7439c32] [--latency] [--only ipn,udp]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# a --rev worker imports the package of that revision instead of ours
sys.path.insert(0, os.environ.get("IPN_BENCH_PKG") or REPO)

from vde_ipn import ipn  # noqa: E402
from vde_ipn.wire import vde_ctl  # noqa: E402

MSG = b"Hello World"
END = b"END-OF-RUN!"
GROUP, MPORT = "239.255.42.42", 42424
SILENCE = 1.0

C_MCAST = r"""
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
int main(int c,char**v){
  int s=socket(AF_INET,SOCK_DGRAM,0),one=1;struct sockaddr_in a={0};
  a.sin_family=AF_INET;a.sin_port=htons(atoi(v[3]));a.sin_addr.s_addr=inet_addr(v[2]);
  if(!strcmp(v[1],"send")){
    struct in_addr lo;lo.s_addr=inet_addr("127.0.0.1");unsigned char ttl=0;
    setsockopt(s,IPPROTO_IP,IP_MULTICAST_IF,&lo,sizeof lo);
    setsockopt(s,IPPROTO_IP,IP_MULTICAST_TTL,&ttl,1);
    connect(s,(struct sockaddr*)&a,sizeof a);
    double end=now()+atof(v[4]);long n=0;
    while(1){for(int i=0;i<1000;i++)send(s,"Hello World",11,0);n+=1000;if(now()>end)break;}
    for(int i=0;i<3;i++){usleep(20000);send(s,"END-OF-RUN!",11,0);}
    printf("%ld\n",n);return 0;}
  setsockopt(s,SOL_SOCKET,SO_REUSEADDR,&one,sizeof one);
  bind(s,(struct sockaddr*)&a,sizeof a);
  struct ip_mreq m;m.imr_multiaddr.s_addr=inet_addr(v[2]);m.imr_interface.s_addr=inet_addr("127.0.0.1");
  setsockopt(s,IPPROTO_IP,IP_ADD_MEMBERSHIP,&m,sizeof m);
  struct timeval tv={1,0};setsockopt(s,SOL_SOCKET,SO_RCVTIMEO,&tv,sizeof tv);
  printf("R\n");fflush(stdout);
  char b[2048];long n=0;double t0=0,t1=0;
  while(1){int r=recv(s,b,sizeof b,0);if(r<0)break;if(r==11&&!memcmp(b,"END-OF-RUN!",11))break;
    if(!n)t0=now();n++;t1=now();}
  printf("%ld %.6f\n",n,t1-t0);return 0;}
"""


def run_receivers(nrecv, make_recv, sender, seconds):
    """Fork ``nrecv`` receivers, run ``sender``; returns (sent, [(n, secs)])."""
    results, pids, pipes = [], [], []
    for i in range(nrecv):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                recv = make_recv(i)
                os.write(w, b"R")
                n, t0, t1 = 0, 0.0, 0.0
                clock = time.perf_counter
                try:
                    while True:
                        m = recv()
                        if m == END:
                            break
                        if not n:
                            t0 = clock()
                        n += 1
                        t1 = clock()
                except (TimeoutError, socket.timeout):
                    pass
                os.write(w, b"%d %.6f" % (n, t1 - t0))
            finally:
                os._exit(0)
        os.close(w)
        pids.append(pid)
        pipes.append(r)
    for r in pipes:
        assert os.read(r, 1) == b"R", "a receiver failed to start"
    sent = sender(seconds)
    for pid, r in zip(pids, pipes):
        out = os.read(r, 100).split()
        os.waitpid(pid, 0)
        os.close(r)
        results.append((int(out[0]), float(out[1])))
    return sent, results


def timed_send(send, seconds, msg=MSG, end=END):
    deadline = time.perf_counter() + seconds
    n = 0
    while True:
        for _ in range(1000):
            send(msg)
        n += 1000
        if time.perf_counter() > deadline:
            break
    for _ in range(3):
        time.sleep(0.02)
        try:
            send(end)
        except BlockingIOError:
            pass
    return n


# -- contenders ------------------------------------------------------------
def bench_ipn(nrecv, seconds, lossless, style="recv"):
    d = tempfile.mkdtemp(prefix="ipnb", dir="/tmp")
    path = os.path.join(d, "bus")
    creator = ipn.socket()
    if lossless:
        creator.setsockopt(0, ipn.IPN_SO_FLAGS, ipn.IPN_FLAG_LOSSLESS)
    creator.bind(path)

    def make_recv(_i):
        s = ipn.socket()
        s.shutdown(socket.SHUT_WR)
        s.connect(path)
        s.settimeout(SILENCE)
        recv = s.recv
        if style == "select":
            return lambda: _select_then_recv(s, recv)
        return lambda: recv(2048)

    def sender(secs):
        s = ipn.socket()
        s.shutdown(socket.SHUT_RD)
        s.connect(path)
        n = timed_send(s.send, secs)
        s.close()
        return n
    try:
        return run_receivers(nrecv, make_recv, sender, seconds)
    finally:
        creator.close()
        shutil.rmtree(d, ignore_errors=True)


def _select_then_recv(s, recv):
    """The obvious event-loop receiver: wait for readable, then a blocking recv."""
    if not select.select([s], [], [], SILENCE)[0]:
        raise TimeoutError
    return recv(2048)


def bench_mcast_py(nrecv, seconds):
    def make_recv(_i):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((GROUP, MPORT))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                     socket.inet_aton(GROUP) + socket.inet_aton("127.0.0.1"))
        s.settimeout(SILENCE)
        recv = s.recv
        return lambda: recv(2048)

    def sender(secs):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
        s.connect((GROUP, MPORT))
        n = timed_send(s.send, secs)
        s.close()
        return n
    return run_receivers(nrecv, make_recv, sender, seconds)


def build_c_mcast(workdir):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    src, exe = os.path.join(workdir, "mcast.c"), os.path.join(workdir, "mcast")
    with open(src, "w") as f:
        f.write(C_MCAST)
    if subprocess.run([cc, "-O2", "-o", exe, src]).returncode != 0:
        return None
    return exe


def bench_mcast_c(exe, nrecv, seconds):
    recvs = [subprocess.Popen([exe, "recv", GROUP, str(MPORT + 1)], stdout=subprocess.PIPE)
             for _ in range(nrecv)]
    try:
        for p in recvs:
            assert p.stdout.readline().strip() == b"R"
        out = subprocess.run([exe, "send", GROUP, str(MPORT + 1), str(seconds)],
                             stdout=subprocess.PIPE, check=True).stdout
        res = []
        for p in recvs:
            n, secs = p.communicate(timeout=seconds + 10)[0].split()
            res.append((int(n), float(secs)))
        return int(out), res
    finally:
        for p in recvs:
            if p.poll() is None:
                p.kill()
                p.wait()


def vde_open(ctl_dir, workdir, name):
    """A data socket on a running vde_switch (the ctl handshake, v3)."""
    data = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    mine = os.path.join(workdir, name)
    data.bind(mine)
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ctl.connect(os.path.join(ctl_dir, "ctl"))
    ctl.sendall(vde_ctl.encode_request(mine, description="bench"))
    reply = b""
    while len(reply) < vde_ctl.SOCKADDR_LEN:
        chunk = ctl.recv(vde_ctl.SOCKADDR_LEN - len(reply))
        assert chunk, "vde_switch closed the ctl connection"
        reply += chunk
    data.connect(vde_ctl.decode_reply(reply))
    return ctl, data


def bench_vde_hub(nrecv, seconds):
    exe = shutil.which("vde_switch")
    if exe is None:
        return None
    d = tempfile.mkdtemp(prefix="vdeb", dir="/tmp")
    ctl_dir = os.path.join(d, "sw")
    sw = subprocess.Popen([exe, "-hub", "-s", ctl_dir], stdin=subprocess.PIPE,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    eth = b"\xff" * 6 + b"\x02\0\0\0\0\x01" + b"\x88\xb5"
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(ctl_dir, "ctl")):
            assert time.monotonic() < deadline, "vde_switch did not start"
            time.sleep(0.02)

        def make_recv(i):
            ctl, data = vde_open(ctl_dir, d, "r%d" % i)
            data.settimeout(SILENCE)
            recv = data.recv
            make_recv.keep = ctl
            return lambda: recv(2048)[14:]

        def sender(secs):
            ctl, data = vde_open(ctl_dir, d, "s")
            n = timed_send(data.send, secs, eth + MSG, eth + END)
            ctl.close()
            data.close()
            return n
        return run_receivers(nrecv, make_recv, sender, seconds)
    finally:
        sw.kill()
        sw.wait()
        shutil.rmtree(d, ignore_errors=True)


def summary(result):
    sent, res = result
    rate = sum(n / t if t > 0 else 0 for n, t in res) / len(res)
    missed = sum(sent - n for n, _ in res) / len(res)
    return rate, missed, sent


def bench_latency(count=20000):
    """One message at a time, send then recv, two nodes in this process: us/message."""
    d = tempfile.mkdtemp(prefix="ipnl", dir="/tmp")
    path = os.path.join(d, "bus")
    creator = ipn.socket()
    creator.setsockopt(0, ipn.IPN_SO_FLAGS, ipn.IPN_FLAG_LOSSLESS)
    creator.bind(path)
    r, s = ipn.socket(), ipn.socket()
    try:
        r.shutdown(socket.SHUT_WR)
        r.connect(path)
        s.shutdown(socket.SHUT_RD)
        s.connect(path)
        send, recv = s.send, r.recv
        for _ in range(1000):
            send(MSG)
            recv(2048)
        t = time.perf_counter()
        for _ in range(count):
            send(MSG)
            assert recv(2048) == MSG
        return (time.perf_counter() - t) / count * 1e6
    finally:
        for x in (s, r, creator):
            x.close()
        shutil.rmtree(d, ignore_errors=True)


IPN_ROWS = {"ipn lossless (py)": lambda n, secs: bench_ipn(n, secs, True),
            "ipn lossless select+recv": lambda n, secs: bench_ipn(n, secs, True, "select"),
            "ipn lossy (py)": lambda n, secs: bench_ipn(n, secs, False),
            "ipn lossy select+recv": lambda n, secs: bench_ipn(n, secs, False, "select")}


def extract_rev(rev, work):
    """The vde_ipn package of git revision ``rev``, unpacked under ``work``."""
    dest = os.path.join(work, "rev-" + rev.replace("/", "_"))
    os.makedirs(dest)
    archive = subprocess.run(["git", "-C", REPO, "archive", rev, "vde_ipn"],
                             stdout=subprocess.PIPE, check=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    return dest


def in_worker(pkg, what, n, seconds):
    """Run IPN row ``what`` (or "latency") with the package at ``pkg``."""
    env = dict(os.environ, IPN_BENCH_PKG=pkg)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", what,
                          "--receivers", str(n), "--seconds", str(seconds)],
                         stdout=subprocess.PIPE, env=env, timeout=seconds * 10 + 120)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--receivers", default="1,2,4")
    ap.add_argument("--runs", type=int, default=1, help="repeat the table, print medians")
    ap.add_argument("--rev", action="append", default=[],
                    help="also run the IPN rows of this git revision's package")
    ap.add_argument("--latency", action="store_true", help="add the send-then-recv row")
    ap.add_argument("--only", default="", help="comma list of row name prefixes to run")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:                       # one row, for --rev: JSON on stdout
        if args.worker == "latency":
            print(json.dumps(bench_latency()))
        else:
            print(json.dumps(IPN_ROWS[args.worker](int(args.receivers), args.seconds)))
        return 0
    counts = [int(x) for x in args.receivers.split(",")]
    work = tempfile.mkdtemp(prefix="ipnc", dir="/tmp")
    cexe = build_c_mcast(work)
    revs = [(rev, extract_rev(rev, work)) for rev in args.rev]
    rows = []
    for name in IPN_ROWS:
        # every IPN row in a fresh interpreter: a child forked from this
        # process (which built and ran the others) measured slower
        rows.append((name, lambda n, name=name: in_worker(REPO, name, n, args.seconds)))
        for rev, pkg in revs:
            rows.append(("%s @%s" % (name, rev),
                         lambda n, name=name, pkg=pkg: in_worker(pkg, name, n, args.seconds)))
    rows += [("udp mcast (py)", lambda n: bench_mcast_py(n, args.seconds)),
             ("udp mcast (C)", (lambda n: bench_mcast_c(cexe, n, args.seconds)) if cexe else None),
             ("vde_switch -hub (C, py clients)", lambda n: bench_vde_hub(n, args.seconds))]
    if args.only:
        keep = tuple(x.strip() for x in args.only.split(","))
        rows = [(name, fn) for name, fn in rows if name.startswith(keep)]
    lat_rows = []
    if args.latency:
        lat_rows = [("ipn send-then-recv", lambda: in_worker(REPO, "latency", 1, args.seconds))]
        lat_rows += [("ipn send-then-recv @%s" % rev,
                      lambda pkg=pkg: in_worker(pkg, "latency", 1, args.seconds))
                     for rev, pkg in revs]
    rates = {}                            # (name, n) -> [rate per run]
    misses = {}
    lats = {}
    load = [os.getloadavg()[0]]
    for _run in range(args.runs):         # contenders interleaved within each run
        for name, fn in rows:
            for n in counts:
                r = fn(n) if fn else None
                if r is None:
                    continue
                rate, missed, _sent = summary(r)
                rates.setdefault((name, n), []).append(rate)
                misses.setdefault((name, n), []).append(missed)
        for name, fn in lat_rows:
            v = fn()
            if v is not None:
                lats.setdefault(name, []).append(v)
        load.append(os.getloadavg()[0])
    table = {k: statistics.median(v) for k, v in rates.items()}
    print("%d-core machine, %.0f s per run, msg/s delivered per receiver (mean), "
          "missed = messages sent but not received" % (os.cpu_count(), args.seconds))
    if args.runs > 1:
        print("median of %d runs (contenders interleaved); load average (1 min) %s"
              % (args.runs, " ".join("%.2f" % x for x in load)))
    header = "%-32s" % "contender" + "".join("%24s" % ("%d receiver%s" % (n, "s" if n > 1 else ""))
                                             for n in counts)
    print(header)
    for name, fn in rows:
        line = "%-32s" % name
        for n in counts:
            if (name, n) not in table:
                line += "%24s" % "n/a"
                continue
            line += "%24s" % ("%9.0f (missed %d)" % (table[(name, n)],
                                                     max(misses[(name, n)])))
        print(line, flush=True)
    if args.runs > 1:                     # how far apart the runs were
        for name, _fn in rows:
            spread = ["%d receiver(s) %s" % (n, "/".join("%.0fk" % (r / 1000)
                                                           for r in rates[(name, n)]))
                      for n in counts if (name, n) in rates]
            if spread:
                print("  runs of %-24s %s" % (name, "; ".join(spread)))
    for name, _fn in lat_rows:
        if name in lats:
            print("%-32s %9.2f us/message (median of %d: %s)"
                  % (name, statistics.median(lats[name]), len(lats[name]),
                     " ".join("%.2f" % x for x in lats[name])))
    print()
    ours_rows = [name for name, _fn in rows if name.startswith("ipn lossless")]
    for n in counts:
        for ours in ours_rows:
            for base in ("udp mcast (py)", "udp mcast (C)", "vde_switch -hub (C, py clients)"):
                if (base, n) in table and table[(base, n)] and (ours, n) in table:
                    print("%d receiver(s): %s / %s = %.2f"
                          % (n, ours, base, table[(ours, n)] / table[(base, n)]))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
