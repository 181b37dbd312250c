"""``vdeq``: drop-in for vde2 2.3.2's QEMU wrapper, working with today's QEMU.

Command lines, as 2.3.2 takes them::

    vdeq QEMU [--mod OCTAL] QEMU_OPTIONS -net vde[,vlan=N][,sock=PATH][,port=N] ...
    vdeq QEMU [-sock PATH[,PATH...]] [--mod OCTAL] QEMU_OPTIONS      (old syntax)
    vdeQEMU ...        (vdeq under another name starting with vde: QEMU is the rest)

vdeq opens one connection per ``-net vde`` (or per ``-sock`` path, or to
the default switch), hands QEMU one end of a datagram socket pair for
each and carries frames between the pairs and the switches until QEMU
exits, with QEMU's exit status.

2.3.2 gives QEMU ``-net tap,vlan=N,fd=FD``, which QEMU refuses since 3.0
(no ``vlan`` parameter; a socket is not a tap).  Ours gives
``-netdev socket,id=vdeqK,fd=FD`` joined to QEMU hub N (``-netdev
hubport,hubid=N,netdev=vdeqK``); ``-net nic,vlan=N`` options are turned
into NICs on hub N the same way, so the manual's multi-NIC examples work.
The old syntax gets ``-net socket,fd=FD`` per path and one ``-net nic``.
Other differences: SIGTERM, SIGINT and SIGHUP are passed on to QEMU
(2.3.2 leaves QEMU running unplugged); a switch that cannot be reached
is an error naming it (2.3.2 crashes); no ``arg ...`` debug line on
stdout; an old QEMU (before 0.8, ``-tun-fd``) is not supported.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

from .._errors import ConnectError
from ..io.loop import Loop
from ..io.plugs.opener import open_plug
from ..wire.c_numbers import scan_octal

HELP = ("-h", "-help", "--help")
DESCR = "vdeqemu"
BUFSIZE = 2048


class Usage(Exception):
    pass


class BadArg(Exception):
    pass


def _atoi(text: str) -> int:
    digits = ""
    for i, c in enumerate(text.lstrip()):
        if c.isdigit() or (i == 0 and c in "+-"):
            digits += c
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return 0


def parse_vde(arg: str) -> tuple[int, str | None, int]:
    """``(vlan, sock, port)`` of the text after ``vde`` in ``-net vde,...``."""
    vlan, sock, port = 0, None, 0
    i = 0
    while i < len(arg):
        while i < len(arg) and arg[i] == ",":
            i += 1
        if i >= len(arg):
            break
        rest = arg[i:]
        if rest.startswith("vlan="):
            vlan = _atoi(rest[5:])
            i = _next_comma(arg, i)
        elif rest.startswith("port="):
            port = _atoi(rest[5:])
            i = _next_comma(arg, i)
        elif rest.startswith("sock="):
            i += 5
            if i < len(arg) and arg[i] == '"':
                end = arg.find('"', i + 1)
                end = len(arg) if end < 0 else end
                sock = arg[i + 1:end]
            else:
                end = _next_comma(arg, i)
                sock = arg[i:end]
            i = end + 1
        else:
            raise BadArg(rest)
    return vlan, sock, port


def _next_comma(text: str, i: int) -> int:
    j = text.find(",", i)
    return len(text) if j < 0 else j


def _without_vlan(spec: str) -> tuple[str, int | None]:
    """``spec`` (``nic,vlan=1,model=e1000``) without its vlan, and the vlan."""
    parts, vlan = [], None
    for p in spec.split(","):
        if p.startswith("vlan="):
            vlan = _atoi(p[5:])
        else:
            parts.append(p)
    return ",".join(parts), vlan


def vde_count(args: list[str]) -> int:
    """How many ``-net vde...`` options (2.3.2's countnewnics)."""
    n, after_net = 0, False
    for a in args:
        if a == "-net":
            after_net = True
            continue
        if after_net and a.startswith("vde"):
            n += 1
        after_net = False
    return n


def endpoints(args: list[str], socks: str | None) -> list[tuple[str | None, int]]:
    """``(switch, port)`` of each connection to open (None: default switch)."""
    if vde_count(args):
        out, after_net = [], False
        for a in args:
            if after_net and a.startswith("vde"):
                _vlan, sock, port = parse_vde(a[3:])
                out.append((sock, port))
            after_net = a == "-net"
        return out
    if socks is None:
        return [(None, 0)]
    return [(s, 0) for s in socks.split(",")]


def qemu_args(args: list[str], fds: list[int]) -> list[str]:
    """QEMU's options: ``args`` with each ``-net vde`` (new syntax) turned
    into a socket netdev on FDS[k], in hub N; without ``-net vde``, one
    ``-net socket,fd=`` per fd and a ``-net nic`` first."""
    if not vde_count(args):
        out = []
        for fd in fds:
            out += ["-net", "socket,fd=%d" % fd]
        return out + ["-net", "nic"] + list(args)
    out, k, nics, i = [], 0, 0, 0
    while i < len(args):
        a = args[i]
        if a == "-net" and i + 1 < len(args):
            spec = args[i + 1]
            if spec.startswith("vde"):
                vlan, _sock, _port = parse_vde(spec[3:])
                out += ["-netdev", "socket,id=vdeq%d,fd=%d" % (k, fds[k]),
                        "-netdev", "hubport,id=vdeqh%d,hubid=%d,netdev=vdeq%d" % (k, vlan, k)]
                k += 1
                i += 2
                continue
            kind = spec.split(",", 1)[0]
            rest, vlan = _without_vlan(spec)
            if vlan is not None and kind == "nic":
                if vlan == 0:
                    out += ["-net", rest]
                else:
                    out += ["-netdev", "hubport,id=vdeqn%d,hubid=%d" % (nics, vlan),
                            "-net", "%s,netdev=vdeqn%d" % (rest, nics)]
                    nics += 1
                i += 2
                continue
        out.append(a)
        i += 1
    return out


def wants_daemon(filename: str, args: list[str]) -> bool:
    """2.3.2's isdaemonize: ``-daemonize`` (for ``qemu`` only with ``-vnc``
    or ``-nographic`` too)."""
    if "-daemonize" not in args:
        return False
    if filename == "qemu":
        return "-vnc" in args or "-nographic" in args
    return True


class Plan:
    def __init__(self, filename, args, socks, mode, daemon):
        self.filename, self.args, self.socks, self.mode, self.daemon = (
            filename, args, socks, mode, daemon)


def usage(name: str, filename: str | None) -> int:
    if name != "vdeq" and name.startswith("vde"):
        sys.stderr.write(
            "Usage: %s [-h]\n\t %s ...qemu options... -net vde[,vlan=n][,sock=sock] ... \n"
            "Old syntax:\n\t %s  [-sock sock1 [,sock2...]] qemu_options\n"
            "\t (%s executes a qemu machine named %s, \n\t  output of \"%s -h\" follows)\n\n"
            % (name, name, name, name, filename, filename))
        sys.stderr.flush()
        try:
            os.execvp(filename, [filename, "-h"])
        except OSError:
            return 0
    sys.stderr.write(
        "Usage: %s [-h]\n\t %s qemu_executable ...qemu options... -net vde[,vlan=n][,sock=sock] ... \n"
        "Old syntax:\n\t %s qemu_executable [-sock sock1 [,sock2...]] qemu_options\n"
        % (name, name, name))
    return 0


def parse(argv: list[str]) -> Plan | int:
    name = os.path.basename(argv[0]) if argv else "vdeq"
    args = list(argv[1:])
    if name != "vdeq" and name.startswith("vde"):
        filename = name[3:]
    elif args:
        filename = args.pop(0)
    else:
        return usage(name, None)
    if (args and args[0] in HELP) or filename in HELP:
        return usage(name, filename)
    daemon = wants_daemon(filename, args)
    socks = None
    if len(args) > 1 and args[0] in ("-vdesock", "-sock", "-unix"):
        socks, args = args[1], args[2:]
    mode = 0o700
    if len(args) > 1 and args[0] == "--mod":
        mode = scan_octal(args[1])
        mode = 0o700 if mode is None else mode
        args = args[2:]
    return Plan(filename, args, socks, mode, daemon)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    name = os.path.basename(argv[0]) if argv else "vdeq"
    sys.stderr.write(
        "NOTE: %s is now DEPRECATED -- both QEMU and KVM have native support for\n"
        "      VDE. This binary will be removed soon from the distribution, consider\n"
        "      stopping using it.\n\n" % name)
    plan = parse(argv)
    if isinstance(plan, int):
        return plan
    try:
        ends = endpoints(plan.args, plan.socks)
    except BadArg as e:
        sys.stdout.write("WARNING: unknown parameter in argument %s\n" % e.args[0])
        return 255
    loop = Loop()
    plugs, pairs = [], []
    try:
        for sock, port in ends:
            try:
                plugs.append(open_plug(sock, DESCR, port=port or None, mode=plan.mode,
                                       loop=loop))
            except ConnectError as e:
                sys.stderr.write("%s: vde_open %s: %s\n" % (name, sock or "default switch",
                                                           os.strerror(e.errno)))
                return 1
            pairs.append(socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM))
        qemu_fds = [p[0].fileno() for p in pairs]
        argv_q = [plan.filename] + qemu_args(plan.args, qemu_fds)
        try:
            proc = subprocess.Popen(argv_q, pass_fds=qemu_fds)
        except OSError as e:
            sys.stderr.write("%s: %s: %s\n" % (name, plan.filename, e.strerror))
            return 255
        for p in pairs:
            p[0].close()
        if plan.daemon:
            _daemonize_keep_fds()
        for plug, (_, ours) in zip(plugs, pairs):
            _relay(loop, plug, ours)
        status = []

        def child(signum: int) -> None:
            if proc.poll() is not None:
                status.append(proc.returncode)
                loop.stop()

        def pass_on(signum: int) -> None:
            try:
                proc.send_signal(signum)
            except ProcessLookupError:
                pass
        loop.add_signal_handler(signal.SIGCHLD, child)
        for num in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(num, pass_on)
        for num in (signal.SIGPIPE, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM):
            signal.signal(num, signal.SIG_IGN)
        child(signal.SIGCHLD)
        if not status:
            loop.run()
        rc = status[0] if status else 0
        return rc if rc >= 0 else 255
    finally:
        for plug in plugs:
            plug.close()
        for a, b in pairs:
            a.close()
            b.close()
        loop.close()


def _daemonize_keep_fds() -> None:
    """glibc ``daemon(1, 1)``: fork (the parent exits 0) and a new session."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()


def _relay(loop: Loop, plug, pair: socket.socket) -> None:
    pair.setblocking(False)

    def from_qemu(now: float) -> None:
        for _ in range(64):
            try:
                data = pair.recv(BUFSIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                loop.forget(pair)
                return
            try:
                plug.send(data)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                loop.forget(pair)
                return

    def from_switch(now: float) -> None:
        for _ in range(64):
            try:
                data = plug.recv(BUFSIZE)
            except (BlockingIOError, TimeoutError, InterruptedError):
                return
            except OSError:
                _unplug()
                return
            if not data:
                if plug.hangup_on_empty:
                    _unplug()
                    return
                continue
            try:
                pair.send(data)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                return

    def _unplug() -> None:
        loop.forget(plug)
        if plug.ctl is not None:
            loop.forget(plug.ctl)
    loop.add_reader(pair, from_qemu)
    loop.add_reader(plug, from_switch)
    if plug.ctl is not None:
        loop.add_reader(plug.ctl, lambda now: _unplug())
