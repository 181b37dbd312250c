#!/usr/bin/env python3
"""What grows with the work: Debian's C vde_switch and ours, side by side.

Every section starts a fresh switch per measurement, C and ours taking
turns (C first on even runs, ours first on odd ones) to spread machine
noise, and prints medians with the ratio ours/C.  All clients are the C
load generator ``vdeload.c`` (compiled at run time with ``cc -O2``), so
the clients are never the bottleneck.

* ``joins``: one client process opens N ports one after another (each
  handshake waits for its reply) on a switch started with ``-n N+2``;
  the time per join around 100, 1,000 and 5,000 ports, and the time
  for the first 1,000.
* ``memory``: the same joins; the switch's RSS idle and at each mark
  (idle, and KB per port), beside python3 alone.
* ``latency``: round-trip time of one 64-byte frame at a time between
  two ports (ping -> switch -> echo -> switch -> ping): p50/p90/p99,
  idle, while a full-speed flow runs between two other ports, and while
  that flow is held to 40,000 frames/s (the same load for every switch).
* ``lossless``: an independent full-speed sender and receiver (the
  receiver just reads as fast as it can), unicast and broadcast (two
  receivers); frames lost and delivered rate: C, ours, ours --lossless.
* ``aggregate``: 4 independent sender/receiver pairs at once; aggregate
  delivered frames/s and loss, same switches.

The latency, lossless and aggregate sections also measure ``ours-python``:
ours with its flow cache off (``VDE_IPN_FASTPATH=0``), the Python path alone.

``--sections`` picks some (``--sections latency,memory``).  Each switch
runs alone on the last CPU, the load generators on the others
(``--pin off`` to let the scheduler choose).  ``--baseline DIR`` adds
another checkout's switch (say, main before a change) as ``base`` to the
joins, memory and latency sections, in the same turns.

The descriptor limit is raised to its hard maximum for the run (each
port costs the switch and the client two descriptors).  Every process
started here is killed by PID on exit; temporary directories are removed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (REPO, BenchError, Children, auto_pinning, compile_vdeload,  # noqa: E402
                     load_average, machine_header, pinning_line, read_line, rss_kb, run_main,
                     start_client, start_switch)

OURS = os.path.join(REPO, "compat", "vde_switch")
SWITCHES = {
    "C": ["/usr/bin/vde_switch"],
    "ours": [OURS],
    "ours-lossless": [OURS, "--lossless"],
    # ours without its flow cache: the Python path alone
    "ours-python": ["/usr/bin/env", "VDE_IPN_FASTPATH=0", OURS],
}
PACED_RATE = 40000                       # frames/s of the paced flow (latency section)
SECTIONS = ("joins", "memory", "latency", "lossless", "aggregate")
PINNING: tuple = ()                      # (switch CPUs, client CPUs), set by main


def mac(n: int) -> str:
    return "02:00:00:00:%02x:%02x" % (n >> 8, n & 0xFF)


class Fresh:
    """A switch in a directory of its own, for one measurement."""

    def __init__(self, children: Children, kind: str, numports: int = 32):
        self.children, self.kind = children, kind
        self.workdir = children.mkdtemp("vs")
        self.clients: list[subprocess.Popen] = []
        cpus = PINNING[0] if PINNING else ()
        self.sw, self.path = start_switch(children, kind, SWITCHES[kind] + ["-n", str(numports)],
                                          self.workdir, cpus)

    def client(self, vdeload: str, *args: str) -> subprocess.Popen:
        p = start_client(self.children, vdeload, [args[0], self.path] + list(args[1:]),
                         PINNING[1] if PINNING else ())
        self.clients.append(p)
        return p

    def close(self) -> None:
        for p in self.clients + [self.sw]:
            self.children.stop(p)
        self.children.dirs.remove(self.workdir)
        subprocess.run(["rm", "-rf", self.workdir])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def go(p: subprocess.Popen) -> None:
    p.stdin.write(b"go\n")
    p.stdin.flush()


# -- sections --------------------------------------------------------------------
def measure_joins(children, vdeload, kind: str, marks: list[int]) -> dict:
    with Fresh(children, kind, numports=marks[-1] + 2) as f:
        time.sleep(0.3)                          # let the interpreter settle
        idle = rss_kb(f.sw.pid)
        p = f.client(vdeload, "join", "--count", str(marks[-1]),
                     "--marks", ",".join(map(str, marks[:-1])))
        go(p)
        seg, rss, prev = {}, {}, 0
        for m in marks:
            word, n, secs = read_line(p, 600, "join mark %d" % m).split()
            if word != "MARK" or int(n) != m:
                raise BenchError("join client said %s %s" % (word, n))
            seg[m] = (float(secs), m - prev)     # seconds for the joins since prev
            rss[m] = rss_kb(f.sw.pid)
            prev = m
            if m != marks[-1]:
                p.stdin.write(b"\n")
                p.stdin.flush()
        # every port leaves at once (the client exits): time until the switch
        # has removed every data socket file (both switches unlink them)
        left = time.monotonic()
        p.stdin.close()
        p.wait(timeout=60)
        while any(n != "ctl" for n in os.listdir(f.path)):
            if time.monotonic() - left > 300 or f.sw.poll() is not None:
                raise BenchError("%s switch did not let the ports go" % kind)
            time.sleep(0.002)
        left = time.monotonic() - left
        if f.sw.poll() is not None:
            raise BenchError("%s switch exited during the joins" % kind)
    return {"idle_kb": idle, "rss_kb": rss, "segments": seg, "leave_s": left}


def interpreter_kb(children) -> int:
    """RSS of the interpreter our switch runs on (``env python3``, with its
    site hooks) doing nothing: the floor under our idle figure."""
    p = children.start(["/usr/bin/env", "python3", "-c", "import sys; sys.stdin.read()"],
                       stdin=subprocess.PIPE)
    try:
        time.sleep(0.5)
        return rss_kb(p.pid)
    finally:
        children.stop(p)


def measure_latency(children, vdeload, kind: str, count: int, loaded: bool,
                    rate: float = 0) -> dict:
    """Round trips of lone frames; ``loaded``: beside a flow between two
    other ports, at full speed or held to ``rate`` frames/s."""
    with Fresh(children, kind) as f:
        load_rx = load_tx = None
        if loaded:
            pace = ["--rate", str(rate), "--batch", "4"] if rate else []
            load_tx = f.client(vdeload, "send", "--mac", mac(11), "--dst", mac(12),
                               "--size", "64", "--duration", "600", *pace)
            load_rx = f.client(vdeload, "recv", "--mac", mac(12), "--from", mac(11),
                               "--announce")
        # the echo port comes up last: the C switch forgets every MAC it
        # learned whenever a port comes up, and would flood the pings
        ping = f.client(vdeload, "ping", "--mac", mac(1), "--dst", mac(2),
                        "--count", str(count), "--interval-us", "100")
        f.client(vdeload, "echo", "--mac", mac(2))
        time.sleep(0.1)
        if load_tx is not None:
            go(load_tx)
            time.sleep(0.3)
        go(ping)
        try:
            r = json.loads(read_line(ping, 120, "ping results"))
        except BenchError:               # replies lost (200 ms each): stop it there
            os.kill(ping.pid, signal.SIGTERM)
            r = json.loads(read_line(ping, 10, "ping results"))
            r["lost"] += count - r["count"] - r["lost"]
        if load_tx is not None:
            os.kill(load_tx.pid, signal.SIGTERM)
            sent = json.loads(read_line(load_tx, 10, "load sender result"))
            r["load_per_s"] = sent["sent"] / (sent["elapsed"] or 1e-9)
    return r


def measure_flows(children, vdeload, kind: str, pairs: int, duration: float,
                  broadcast: bool = False) -> dict:
    """``pairs`` independent senders, each to its own receiver (or, with
    ``broadcast``, one sender flooding two receivers)."""
    with Fresh(children, kind) as f:
        rx, tx = [], []
        nrx = 2 if broadcast else pairs
        for i in range(nrx):
            src = mac(100) if broadcast else mac(100 + i)
            rx.append(f.client(vdeload, "recv", "--mac", mac(200 + i), "--from", src,
                               "--announce"))
        for i in range(1 if broadcast else pairs):
            dst = "ff:ff:ff:ff:ff:ff" if broadcast else mac(200 + i)
            tx.append(f.client(vdeload, "send", "--mac", mac(100 + i), "--dst", dst,
                               "--size", "64", "--duration", str(duration)))
        time.sleep(0.2)
        for p in tx:
            go(p)
        sent = [json.loads(read_line(p, duration + 60, "a sender's result")) for p in tx]
        time.sleep(0.5)                        # what the switch still holds
        got = []
        for p in rx:
            os.kill(p.pid, signal.SIGUSR1)
            got.append(json.loads(read_line(p, 10, "a receiver's result")))
        if f.sw.poll() is not None:
            raise BenchError("%s switch exited during the run" % kind)
    elapsed = max(s["elapsed"] for s in sent) or 1e-9
    copies = nrx if broadcast else 1
    expected = sum(s["sent"] for s in sent) * copies
    delivered = sum(g["frames"] for g in got)
    return {"sent_per_s": sum(s["sent"] for s in sent) / elapsed,
            "delivered_per_s": delivered / elapsed,
            "loss_pct": 100.0 * (expected - delivered) / expected if expected else 0.0}


# -- report -----------------------------------------------------------------------
def med(xs):
    return statistics.median(xs) if xs else float("nan")


def rate(x: float) -> str:
    return "%.0f" % x if x < 1e4 else "%.1fk" % (x / 1e3)


def ratio(a: float, b: float) -> str:
    return "%.2f" % (a / b) if b else "-"


def join_table(res: dict, marks: list[int]) -> list[str]:
    out = ["### joins: one client opening ports one after another",
           "",
           "| ports | C us/join | ours us/join | ours/C | C total s | ours total s | ours/C |",
           "|---|---|---|---|---|---|---|"]
    for m in marks:
        row = []
        for kind in ("C", "ours"):
            rs = res.get(kind, [])
            per = med([r["segments"][m][0] / r["segments"][m][1] * 1e6 for r in rs])
            tot = med([sum(r["segments"][k][0] for k in marks if k <= m) for r in rs])
            row.append((per, tot))
        (cp, ct), (op, ot) = row
        out.append("| %d | %.0f | %.0f | %s | %.3f | %.3f | %s |"
                   % (m, cp, op, ratio(op, cp), ct, ot, ratio(ot, ct)))
    leave = [med([r["leave_s"] for r in res.get(kind, [])]) for kind in ("C", "ours")]
    out.append("")
    out.append("us/join: median time per join over the joins since the previous mark "
               "(the first mark: from 0).")
    out.append("Then all %d leave at once (the client exits): C %.3f s, ours %.3f s "
               "(ours/C %s) until every data socket is gone."
               % (marks[-1], leave[0], leave[1], ratio(leave[1], leave[0])))
    return out


def memory_table(res: dict, marks: list[int], floor_kb: int) -> list[str]:
    out = ["### memory: RSS of the switch process", "",
           "| | idle | " + " | ".join("%d ports" % m for m in marks)
           + " | KB per port |", "|---|---|" + "---|" * len(marks) + "---|"]
    for kind in ("C", "base", "ours"):
        rs = res.get(kind, [])
        if not rs:
            continue
        idle = med([r["idle_kb"] for r in rs])
        at = [med([r["rss_kb"][m] for r in rs]) for m in marks]
        per = (at[-1] - idle) / marks[-1]
        out.append("| %s | %.1f MB | %s | %.2f |" % (
            kind, idle / 1024, " | ".join("%.1f MB" % (a / 1024) for a in at), per))
    out.append("| python3 alone | %.1f MB |%s |" % (floor_kb / 1024, " |" * len(marks)))
    out += ["", "python3 alone: the interpreter ours runs on (env python3, with its site "
            "hooks), doing nothing."]
    return out


def latency_table(res: dict) -> list[str]:
    out = ["### latency: round trip through the switch twice, 64 B, one frame at a time",
           "", "| | switch | p50 us | p90 us | p99 us | ours/C p50 | ours/C p99 | lost | load fr/s |",
           "|---|---|---|---|---|---|---|---|---|"]
    for cond in ("idle", "loaded", "paced"):
        base = {}
        for kind in ("C", "base", "ours", "ours-lossless", "ours-python"):
            rs = res.get((cond, kind), [])
            if not rs:
                continue
            p = {q: med([r[q] for r in rs]) for q in ("p50", "p90", "p99")}
            if kind == "C":
                base = p
            load = med([r.get("load_per_s", 0) for r in rs]) if cond != "idle" else 0
            out.append("| %s | %s | %.0f | %.0f | %.0f | %s | %s | %d | %s |" % (
                cond, kind, p["p50"], p["p90"], p["p99"],
                "" if kind == "C" else ratio(p["p50"], base.get("p50", 0)),
                "" if kind == "C" else ratio(p["p99"], base.get("p99", 0)),
                sum(r["lost"] for r in rs), rate(load) if load else "-"))
    out.append("")
    out.append("loaded: a full-speed 64 B flow between two other ports during the pings "
               "(its sender and receiver share the clients' CPU with the ping and echo "
               "clients: the more a switch carries, the busier that CPU).")
    out.append("paced: the same flow held to %s frames/s, below what every switch carries: "
               "the same load for all." % rate(PACED_RATE))
    if any(kind == "base" for _cond, kind in res):
        out.append("base: %s" % " ".join(SWITCHES["base"]))
    return out


def flow_table(title: str, res: dict, cells: list[str]) -> list[str]:
    out = [title, "", "| traffic | switch | delivered fr/s | ours/C | sent fr/s | lost % |",
           "|---|---|---|---|---|---|"]
    for cell in cells:
        base = None
        for kind in ("C", "ours", "ours-lossless", "ours-python"):
            rs = res.get((cell, kind), [])
            if not rs:
                continue
            d = med([r["delivered_per_s"] for r in rs])
            if kind == "C":
                base = d
            out.append("| %s | %s | %s [%s..%s] | %s | %s | %.2f |" % (
                cell, kind, rate(d), rate(min(r["delivered_per_s"] for r in rs)),
                rate(max(r["delivered_per_s"] for r in rs)),
                "" if kind == "C" or not base else ratio(d, base),
                rate(med([r["sent_per_s"] for r in rs])),
                med([r["loss_pct"] for r in rs])))
    return out


# -- main -------------------------------------------------------------------------
def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help="comma-separated, of: %s (default all)" % ", ".join(SECTIONS))
    ap.add_argument("--runs", type=int, default=3, help="measurements per cell (default 3)")
    ap.add_argument("--marks", default="100,1000,5000",
                    help="port counts for the joins section (default 100,1000,5000)")
    ap.add_argument("--pings", type=int, default=2000, help="round trips per measurement")
    ap.add_argument("--duration", type=float, default=2.0,
                    help="seconds of sending in the lossless and aggregate sections")
    ap.add_argument("--pin", choices=("auto", "off"), default="auto",
                    help="auto: each switch alone on the last CPU, the load generators "
                    "on the others (needs 2+ CPUs)")
    ap.add_argument("--baseline", metavar="DIR",
                    help="also measure DIR/compat/vde_switch (another checkout, e.g. "
                    "before a change) as 'base' in the joins, memory and latency sections")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 run, marks 20,50, 200 pings, 0.3 s flows")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs, args.marks, args.pings, args.duration = 1, "20,50", 200, 0.3
    args.sections = [s for s in args.sections.split(",") if s]
    if any(s not in SECTIONS for s in args.sections):
        ap.error("--sections takes %s" % ", ".join(SECTIONS))
    args.marks = sorted(int(m) for m in args.marks.split(","))
    return args


def raise_fd_limit(need: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, need)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < need:
        raise BenchError("%d ports need %d descriptors; the hard limit is %d"
                         % (need // 2, need, want))
    return want


def main(argv=None) -> int:
    global PINNING
    args = parse_args(sys.argv[1:] if argv is None else argv)
    children = Children()
    PINNING = auto_pinning() if args.pin == "auto" else ()
    if args.baseline:
        SWITCHES["base"] = [os.path.join(os.path.abspath(args.baseline), "compat", "vde_switch")]

    def body() -> int:
        limit = raise_fd_limit(2 * args.marks[-1] + 100)
        for line in machine_header(SWITCHES) + [pinning_line(PINNING)]:
            print(line)
        print("descriptor limit: %d; %d run(s) per cell, C and ours alternating\n"
              % (limit, args.runs), flush=True)
        vdeload = compile_vdeload(children)
        out: list[str] = []

        def each(kinds, fn, label):
            for run in range(args.runs):
                for kind in (kinds if run % 2 == 0 else kinds[::-1]):
                    r = fn(kind)
                    print("  %s %s run %d: %s" % (label, kind, run + 1, json.dumps(r)),
                          file=sys.stderr, flush=True)
                    yield kind, r

        two = ["C"] + (["base"] if args.baseline else []) + ["ours"]
        if "joins" in args.sections or "memory" in args.sections:
            res: dict = {}
            for kind, r in each(two, lambda k: measure_joins(
                    children, vdeload, k, args.marks), "joins"):
                res.setdefault(kind, []).append(r)
            if "joins" in args.sections:
                out += join_table(res, args.marks) + [""]
            if "memory" in args.sections:
                out += memory_table(res, args.marks, interpreter_kb(children)) + [""]
        three = two + ["ours-lossless", "ours-python"]
        if "latency" in args.sections:
            res = {}
            for cond in ("idle", "loaded", "paced"):
                for kind, r in each(three, lambda k: measure_latency(
                        children, vdeload, k, args.pings, cond != "idle",
                        PACED_RATE if cond == "paced" else 0), cond):
                    res.setdefault((cond, kind), []).append(r)
            out += latency_table(res) + [""]
        three = ["C", "ours", "ours-lossless", "ours-python"]
        if "lossless" in args.sections:
            res = {}
            for cell, bcast in (("unicast", False), ("broadcast to 2", True)):
                for kind, r in each(three, lambda k: measure_flows(
                        children, vdeload, k, 1, args.duration, bcast), cell):
                    res.setdefault((cell, kind), []).append(r)
            out += flow_table("### independent full-speed sender and receiver(s), 64 B",
                              res, ["unicast", "broadcast to 2"]) + [""]
        if "aggregate" in args.sections:
            res = {}
            for kind, r in each(three, lambda k: measure_flows(
                    children, vdeload, k, 4, args.duration), "4 pairs"):
                res.setdefault(("4 pairs", kind), []).append(r)
            out += flow_table("### aggregate: 4 independent sender/receiver pairs, 64 B",
                              res, ["4 pairs"]) + [""]
        print("\n".join(out))
        print("load average after: %s" % load_average())
        return 0
    return run_main(body, children)


if __name__ == "__main__":
    sys.exit(main())
