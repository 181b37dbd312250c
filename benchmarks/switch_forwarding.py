#!/usr/bin/env python3
"""Forwarding rate of Debian's C vde_switch and ours, side by side.

Both switches are driven by the same C load generator (``vdeload.c``,
compiled at run time with ``cc -O2``), on the same topology:

* one sender blasting frames of one size at the receiver's MAC for
  ``--duration`` seconds (blocking sends: it goes as fast as the switch
  takes frames in);
* one receiver, which first announced its MAC with a broadcast so a
  learning switch forwards the load as learned unicast;
* one witness port that only counts: in switch mode it must get nothing
  (else the switch is flooding), in hub mode it is a second receiver.

Every (mode, size) pair is measured ``--runs`` times per switch, the two
switches alternating (C first on even runs, ours first on odd ones) to
spread machine noise; each measurement uses a fresh switch.  The table
shows medians with min..max, the ratio ours/C of the median delivered
rates and the drop rate (copies expected vs copies delivered).

With ``strace`` installed, one extra run per cell counts the system calls
of each switch per frame it took in (``strace -c -f -p``); strace slows
the switch a lot, so these runs are not timed.

Every process started here is killed by PID on exit, Ctrl-C included, and
the temporary directory is removed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (REPO, BenchError, Children, auto_pinning, compile_vdeload,  # noqa: E402,F401
                     cpu_seconds, load_average, machine_header, pin, pinning_line, read_line,
                     run_main, start_client)
from _common import start_switch as common_start_switch  # noqa: E402

SWITCHES = {
    "C": "/usr/bin/vde_switch",
    "ours": os.path.join(REPO, "compat", "vde_switch"),
}
SENDER_MAC = "02:00:00:00:00:01"
RECEIVER_MAC = "02:00:00:00:00:02"
WITNESS_MAC = "02:00:00:00:00:03"
MODES = ("switch", "hub")


# -- machine description ----------------------------------------------------------
def header(strace: str | None) -> list[str]:
    return machine_header(SWITCHES) + ["syscall counting: %s" % (strace or "off")]


# -- one measurement ----------------------------------------------------------------
def start_switch(children: Children, kind: str, workdir: str, hub: bool):
    argv = [SWITCHES[kind]] + (["-x"] if hub else [])
    return common_start_switch(children, kind, argv, workdir)


def start_strace(children: Children, strace: str, pid: int, out: str) -> subprocess.Popen:
    p = children.start([strace, "-c", "-f", "-o", out, "-p", str(pid)],
                       stderr=subprocess.PIPE)
    # strace reports each attached thread on stderr before it starts counting
    fd = p.stderr.fileno()
    deadline = time.monotonic() + 10
    buf = b""
    while b"attached" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise BenchError("strace did not attach to %d" % pid)
        chunk = os.read(fd, 4096)
        if not chunk:
            raise BenchError("strace exited: %s" % buf.decode(errors="replace"))
        buf += chunk
    return p


def parse_strace(path: str) -> dict[str, int]:
    """{syscall: calls} from an ``strace -c`` summary."""
    calls: dict[str, int] = {}
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return calls
    for line in lines:
        tok = line.split()
        if len(tok) < 5 or tok[-1] == "total" or not tok[0][0].isdigit():
            continue
        try:
            calls[tok[-1]] = int(tok[3])
        except ValueError:
            continue
    return calls


def measure(children: Children, vdeload: str, kind: str, mode: str, size: int,
            duration: float, witness: bool = True, strace: str | None = None,
            pinning: tuple = ()) -> dict:
    """Run one load on a fresh switch; the counts of everyone involved."""
    workdir = children.mkdtemp("vb")
    sw = sender = None
    receivers: list[subprocess.Popen] = []
    tracer = None
    try:
        sw, path = start_switch(children, kind, workdir, hub=(mode == "hub"))
        sw_cpus, client_cpus = pinning or ((), ())
        pin(sw, sw_cpus)
        # attach order matters for the C switch, which forgets every learned
        # MAC when a port comes up: the receiver announces itself last
        sender = start_client(children, vdeload, [
            "send", path, "--mac", SENDER_MAC, "--dst", RECEIVER_MAC,
            "--size", str(size), "--duration", str(duration)])
        if witness:
            receivers.append(start_client(children, vdeload, [
                "recv", path, "--mac", WITNESS_MAC, "--from", SENDER_MAC]))
        receivers.insert(0, start_client(children, vdeload, [
            "recv", path, "--mac", RECEIVER_MAC, "--from", SENDER_MAC, "--announce"]))
        for p in [sender] + receivers:
            pin(p, client_cpus)
        time.sleep(0.1)                  # let the switch learn the announcement
        if strace:
            trace_out = os.path.join(workdir, "strace.txt")
            tracer = start_strace(children, strace, sw.pid, trace_out)
        clients = [sender] + receivers
        cpu0 = cpu_seconds(sw.pid)
        gen0 = sum(cpu_seconds(p.pid) for p in clients)
        sender.stdin.write(b"go\n")
        sender.stdin.flush()
        sent = json.loads(read_line(sender, duration + 30, "the sender's result"))
        cpu = cpu_seconds(sw.pid) - cpu0
        gen_cpu = sum(cpu_seconds(p.pid) for p in clients) - gen0
        time.sleep(0.2)                  # frames still queued in the switch
        if tracer is not None:
            children.stop(tracer, signal.SIGINT, timeout=10)
        got = []
        for r in receivers:
            os.kill(r.pid, signal.SIGUSR1)
            got.append(json.loads(read_line(r, 5, "a receiver's result")))
        if sw.poll() is not None:
            raise BenchError("%s vde_switch exited during the run (status %s)"
                             % (kind, sw.returncode))
    finally:
        for p in [tracer, sender] + receivers + [sw]:
            if p is not None:
                children.stop(p)
        children.dirs.remove(workdir)
        calls = parse_strace(os.path.join(workdir, "strace.txt")) if strace else {}
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = sent["elapsed"] or 1e-9
    copies = 2 if (mode == "hub" and witness) else 1
    delivered = got[0]["frames"] + (got[1]["frames"] if copies == 2 else 0)
    expected = sent["sent"] * copies
    return {
        "switch": kind, "mode": mode, "size": size,
        "sent": sent["sent"], "elapsed": elapsed,
        "sent_per_s": sent["sent"] / elapsed,
        "delivered_per_s": got[0]["frames"] / elapsed,
        "received": got[0]["frames"],
        "witness": got[1]["frames"] if witness else None,
        "switch_cpu_pct": 100.0 * cpu / elapsed,
        "gen_cpu_pct": 100.0 * gen_cpu / elapsed,
        "cpu_us_per_frame": 1e6 * cpu / sent["sent"] if sent["sent"] else 0.0,
        "drop_pct": 100.0 * (expected - delivered) / expected if expected else 0.0,
        "syscalls": calls,
    }


# -- the report -----------------------------------------------------------------------
def fmt_rate(x: float) -> str:
    return "%.0f" % x if x < 1e4 else "%.1fk" % (x / 1e3)


def summarize(results: list[dict], cell_key) -> dict:
    by: dict = {}
    for r in results:
        by.setdefault(cell_key(r), []).append(r)
    return by


def report(args, results: list[dict], sys_results: list[dict]) -> list[str]:
    cells = summarize(results, lambda r: (r["mode"], r["size"], r["switch"]))
    sysc = summarize(sys_results, lambda r: (r["mode"], r["size"], r["switch"]))
    cols = "%-6s %5s %-4s %-28s %7s %7s %7s %6s %6s %6s %6s"
    head = cols % ("mode", "size", "sw", "delivered fr/s med [min..max]", "sent/s",
                   "ours/C", "drop%", "swCPU%", "genCPU", "us/fr", "us/C")
    if args.witness:
        head += " %-13s" % "witness"
    if sys_results:
        head += " syscalls/frame in (top 3)"
    out = [head, "-" * len(head)]
    for mode in args.modes:
        for size in args.sizes:
            medians = {}
            cpu_medians = {}
            for kind in ("C", "base", "ours"):
                rs = cells.get((mode, size, kind), [])
                if not rs:
                    continue
                d = [r["delivered_per_s"] for r in rs]
                medians[kind] = statistics.median(d)
                cpu_medians[kind] = statistics.median(r["cpu_us_per_frame"] for r in rs)
                ratio = cpu_ratio = ""
                if kind != "C" and medians.get("C"):
                    ratio = "%.2f" % (medians[kind] / medians["C"])
                if kind != "C" and cpu_medians.get("C"):
                    cpu_ratio = "%.2f" % (cpu_medians[kind] / cpu_medians["C"])
                line = cols % (
                    mode, size, kind,
                    "%s [%s..%s]" % (fmt_rate(medians[kind]), fmt_rate(min(d)), fmt_rate(max(d))),
                    fmt_rate(statistics.median(r["sent_per_s"] for r in rs)), ratio,
                    "%.2f" % statistics.median(r["drop_pct"] for r in rs),
                    "%.0f" % statistics.median(r["switch_cpu_pct"] for r in rs),
                    "%.0f" % statistics.median(r["gen_cpu_pct"] for r in rs),
                    "%.2f" % cpu_medians[kind], cpu_ratio)
                if args.witness:
                    if mode == "switch":        # learned unicast: must stay silent
                        wit = "%d frames" % max(r["witness"] for r in rs)
                    else:
                        wit = "%s fr/s" % fmt_rate(statistics.median(
                            r["witness"] / r["elapsed"] for r in rs))
                    line += " %-13s" % wit
                sr = sysc.get((mode, size, kind))
                if sr:
                    line += " " + syscalls_text(sr[0])
                out.append(line)
    out.append("")
    out.append("delivered = frames/s reaching the receiver; sent = frames/s the switch took "
               "from the sender")
    out.append("(blocking sends); drop%% = copies lost in the switch (hub: %s); "
               "swCPU%% / us/fr = switch" % ("2 copies per frame" if args.witness
                                             else "1 copy per frame"))
    out.append("CPU use during the window and CPU microseconds per frame taken in "
               "(us/C = ours/C of that);")
    out.append("genCPU = CPU% of the load generator (all its processes); "
               "ours/C = ratio of median delivered rates.")
    out.append("A switch below ~90% CPU was not the bottleneck (machine busy or "
               "scheduling): then us/fr compares the switches better than fr/s.")
    if args.witness:
        out.append("witness = a third port: silent in switch mode (learned unicast), "
                   "a second receiver in hub mode.")
    if "base" in args.switches:
        out.append("base = %s (ours/C and us/C of base: base against C)" % SWITCHES["base"])
    return out


def syscalls_text(r: dict) -> str:
    calls = r["syscalls"]
    frames = r["sent"]
    if not calls or not frames:
        return "n/a"
    total = sum(calls.values())
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:3]
    return "%.2f (%s)" % (total / frames, ", ".join(
        "%s %.2f" % (name, n / frames) for name, n in top))


# -- main -------------------------------------------------------------------------------
def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=3.0,
                    help="seconds of sending per measurement (default 3)")
    ap.add_argument("--runs", type=int, default=5,
                    help="measurements per switch and cell (default 5)")
    ap.add_argument("--sizes", default="64,1500",
                    help="comma-separated frame sizes in bytes (default 64,1500)")
    ap.add_argument("--modes", default="switch,hub",
                    help="comma-separated: switch (learned unicast), hub (default both)")
    ap.add_argument("--switches", default="C,ours", help=argparse.SUPPRESS)
    ap.add_argument("--c-switch", default=SWITCHES["C"], metavar="PATH",
                    help="the C vde_switch (default %(default)s)")
    ap.add_argument("--our-switch", default=SWITCHES["ours"], metavar="PATH",
                    help="our vde_switch (default %(default)s)")
    ap.add_argument("--baseline", metavar="DIR",
                    help="also measure DIR/compat/vde_switch (another checkout, e.g. before "
                    "a change) as 'base', in the same turns")
    ap.add_argument("--no-witness", dest="witness", action="store_false",
                    help="no third port (hub mode then delivers one copy per frame)")
    ap.add_argument("--syscalls", choices=("auto", "off"), default="auto",
                    help="count system calls per frame with strace when installed")
    ap.add_argument("--pin", choices=("auto", "off"), default="auto",
                    help="auto: the switch alone on the last CPU, the load generator "
                    "on the others (needs 2+ CPUs)")
    ap.add_argument("--json", metavar="FILE", help="also write every measurement to FILE")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 0.3 s, 1 run, no syscall counting")
    args = ap.parse_args(argv)
    if args.quick:
        args.duration, args.runs, args.syscalls = 0.3, 1, "off"
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s]
    except ValueError:
        ap.error("--sizes takes integers")
    if any(not 14 <= s <= 9234 for s in args.sizes):
        ap.error("frame sizes must be within 14..9234")
    args.modes = [m for m in args.modes.split(",") if m]
    if any(m not in MODES for m in args.modes):
        ap.error("--modes takes switch and/or hub")
    args.switches = [s for s in args.switches.split(",") if s]
    if args.baseline:
        SWITCHES["base"] = os.path.join(os.path.abspath(args.baseline), "compat", "vde_switch")
        args.switches.insert(1, "base")
    args.pinning = auto_pinning() if args.pin == "auto" else ()
    if args.runs < 1 or args.duration <= 0:
        ap.error("--runs and --duration must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    SWITCHES["C"], SWITCHES["ours"] = args.c_switch, args.our_switch
    strace = shutil.which("strace") if args.syscalls == "auto" else None
    children = Children()
    results: list[dict] = []
    sys_results: list[dict] = []

    def body() -> int:
        for line in header(strace) + [pinning_line(args.pinning)]:
            print(line)
        for kind in args.switches:
            if not os.access(SWITCHES[kind], os.X_OK):
                raise BenchError("%s vde_switch not found at %s" % (kind, SWITCHES[kind]))
        vdeload = compile_vdeload(children)
        print("%d run(s) x %.1f s per switch, sizes %s, modes %s\n" % (
            args.runs, args.duration, ",".join(map(str, args.sizes)), ",".join(args.modes)),
            flush=True)
        for mode in args.modes:
            for size in args.sizes:
                for run in range(args.runs):
                    order = args.switches if run % 2 == 0 else args.switches[::-1]
                    for kind in order:
                        r = measure(children, vdeload, kind, mode, size, args.duration,
                                    witness=args.witness, pinning=args.pinning)
                        r["run"] = run
                        results.append(r)
                        print("  %-6s %5d %-5s run %d: sent %s/s delivered %s/s drop %.2f%%"
                              % (mode, size, kind, run + 1, fmt_rate(r["sent_per_s"]),
                                 fmt_rate(r["delivered_per_s"]), r["drop_pct"]),
                              file=sys.stderr, flush=True)
                if strace:
                    for kind in args.switches:
                        sys_results.append(measure(
                            children, vdeload, kind, mode, size, min(args.duration, 1.0),
                            witness=args.witness, strace=strace, pinning=args.pinning))
        print("\n".join(report(args, results, sys_results)))
        print("\nload average after: %s" % load_average())
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"header": header(strace), "results": results,
                           "syscalls": sys_results}, f, indent=1)
        bad = [r for r in results if r["received"] == 0]
        if bad:
            print("error: %d measurement(s) delivered nothing" % len(bad), file=sys.stderr)
            return 1
        return 0
    return run_main(body, children)


if __name__ == "__main__":
    sys.exit(main())
