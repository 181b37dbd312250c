"""``vdens``: drop-in for vdeplug4's vdens, a namespace plugged into a VDE network.

Command line (getopt_long, ``+i:hsucmr:H:R:``)::

    vdens [OPTIONS] [VNL [COMMAND [ARG...]]]
    vdens -m [OPTIONS] VNL [VNL...] [-- COMMAND [ARG...]]

COMMAND (``$SHELL`` when omitted) runs in new user, network and UTS
namespaces, as the same uid and gid, with the network capabilities over
them (ambient, so ``ip`` and ``udhcpc`` work for any user).  Unless VNL
is empty, ``-`` or ``no``, the namespace has a tap ``vde0`` (``-i PREFIX``
changes the name) whose frames this process carries to and from the VNL,
opened before leaving the host's namespaces; ``=COMMAND`` uses a
command's stdin/stdout as a vdestream instead.  ``-H`` sets the host
name, ``-R ADDR[,ADDR]`` and ``-r FILE`` give the namespace its own
``/etc/resolv.conf`` (a mount namespace is then made, as with ``-s``,
which also grants CAP_SYS_ADMIN).  ``-c`` and ``-u`` are accepted; this
process always unshares itself and keeps one child, the command.

The exit status is the command's (vdens exits 0).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile

from .._errors import ConnectError
from ..io import userns
from ..io.loop import Loop
from ..io.plugs.opener import open_plug
from ..io.plugs.tap import TapDevice, TapError
from ..wire.stream import STREAM_MAX, StreamDecoder, encode
from ._getopt import LongOpt, getopt_long

SHORTOPTS = "+i:hsucmr:H:R:"
LONGOPTS = (
    LongOpt("help", 0, "h"), LongOpt("multi", 0, "m"), LongOpt("iface", 1, "i"),
    LongOpt("sysadm", 0, "s"), LongOpt("unshare", 0, "u"), LongOpt("clone", 0, "c"),
    LongOpt("resolvconf", 1, "r"), LongOpt("resolvaddr", 1, "R"), LongOpt("hostname", 1, "H"),
)
DESCR = "vdens"
FRAME_MAX = 9216 + 14 + 4

USAGE = """\
Usage: {p} OPTIONS [vde_net [cmd [arg...]]]
       {p} -m OPTIONS vde_net [vde_net ...] [-- cmd [arg...]]
OPTIONS:
  -h | --help    print this short usage message
  -m | --multi   connect two or more vde networks
  -i | --iface interface_prefix
                 define the interface name prefix, the default value is "vde"
                 e.g. use "-i eth" to name the virtual interfaces eth0, eth1, ...
  -r | --resolvconf file
                 define the /etc/resolv.conf file, e.g. -r /tmp/resolv.conf
  -R | --resolvaddr string
                 define the address of the DNS servers, e.g. -R 80.80.80.80
  -H | --hostname string
                 define the hostname of the namespace
  -s | --sysadm  enable the cap_sys_admin ambient capability
  -c | --clone   use clone instead of unshare:
                 {p} uses one more process
                 (default bevavior: try unshare and use clone if unshare fails)
  -u | --unshare use unshare instead of clone:
                 {p} saves 1 process (for non-multithreaded vde plugins only)
  no virtual interface if vde_net omitted or "no"
  it runs $SHELL if cmd omitted

"""


class Options:
    def __init__(self):
        self.ifname = "vde"
        self.resolvconf = os.environ.get("VDE_RESOLVCONF")
        self.resolvaddr = os.environ.get("VDE_RESOLVADDR")
        self.hostname = None
        self.sysadm = False
        self.multi = False
        self.vnls: list[str] = []
        self.command: list[str] = []


def _fail(msg: str) -> int:
    sys.stderr.write(msg + "\n")
    return 1


def parse(argv: list[str]):
    """Options, or None after printing the usage."""
    res = getopt_long(list(argv), SHORTOPTS, LONGOPTS)
    for line in res.errors:
        sys.stderr.write(line + "\n")
    o = Options()
    for key, val in res.opts:
        if key == "i":
            o.ifname = val
        elif key == "r":
            o.resolvconf = val
        elif key == "R":
            o.resolvaddr = val
        elif key == "H":
            o.hostname = val
        elif key == "s":
            o.sysadm = True
        elif key in ("u", "c"):
            pass
        elif key == "m":
            o.multi = True
        else:
            return None
    ops = res.operands
    shell = [os.environ["SHELL"]] if os.environ.get("SHELL") else []
    if o.multi and ops:
        if "--" in ops[1:]:
            i = ops.index("--", 1)
            o.vnls, o.command = ops[:i], ops[i + 1:]
        else:
            o.vnls, o.command = ops, []
        o.command = o.command or shell
    else:
        o.multi = False
        if ops and ops[0] not in ("", "-", "no"):
            o.vnls = ops[:1]
        o.command = ops[1:] or shell
    return o


class _StreamEnd:
    """A command's stdin/stdout as one end of a cable (``=COMMAND``)."""

    def __init__(self, command: str):
        self.proc = subprocess.Popen(shlex.split(command), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        self.decoder = StreamDecoder(STREAM_MAX)
        self.out = self.proc.stdin.fileno()

    def fileno(self) -> int:
        return self.proc.stdout.fileno()

    def frames(self) -> list:
        data = os.read(self.fileno(), 65536)
        if not data:
            raise EOFError
        return self.decoder.feed(data)

    def send(self, frame: bytes) -> None:
        os.write(self.out, encode(frame))

    def close(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _resolv(o: Options) -> None:
    if o.resolvaddr:
        fd, path = tempfile.mkstemp(prefix="vdensmount", dir="/tmp")
        try:
            for addr in (a for a in o.resolvaddr.split(",") if a):
                os.write(fd, ("nameserver %s\n" % addr).encode())
            os.fchmod(fd, 0o400)
            os.close(fd)
            userns.bind_mount(path, "/etc/resolv.conf")
        finally:
            os.unlink(path)
    elif o.resolvconf:
        userns.bind_mount(o.resolvconf, "/etc/resolv.conf")


def _pump(loop: Loop, ends: list, taps: list, stop) -> None:
    for end, tap in zip(ends, taps):
        def from_tap(now, end=end, tap=tap):
            for _ in range(64):
                try:
                    frame = tap.recv(FRAME_MAX)
                except BlockingIOError:
                    return
                except OSError:
                    stop()
                    return
                try:
                    end.send(frame)
                except OSError:
                    pass

        def from_end(now, end=end, tap=tap):
            if isinstance(end, _StreamEnd):
                try:
                    frames = end.frames()
                except (EOFError, OSError):
                    stop()
                    return
            else:
                frames = []
                for _ in range(64):
                    try:
                        frame = end.recv(FRAME_MAX)
                    except (BlockingIOError, TimeoutError):
                        break
                    except OSError:
                        stop()
                        return
                    if not frame and end.hangup_on_empty:
                        stop()
                        return
                    frames.append(frame)
            for frame in frames:
                if len(frame) >= 14:
                    try:
                        tap.send(frame)
                    except OSError:
                        pass
        loop.add_reader(tap, from_tap)
        loop.add_reader(end, from_end)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    prog = os.path.basename(argv[0]) if argv else "vdens"
    o = parse(argv)
    if o is None:
        sys.stderr.write(USAGE.format(p=prog))
        return 1
    if not o.command:
        return _fail("Error: $SHELL env variable not set")
    loop = Loop()
    ends: list = []
    taps: list = []
    try:
        for vnl in o.vnls:                         # opened in the host's namespaces
            if vnl.startswith("="):
                ends.append(_StreamEnd(vnl[1:]))
                continue
            try:
                ends.append(open_plug(vnl, DESCR, loop=loop))
            except ConnectError as e:
                return _fail("%s: %s" % (vnl, os.strerror(e.errno)))
        try:
            userns.enter(mount_ns=o.sysadm or bool(o.resolvconf) or bool(o.resolvaddr))
        except OSError as e:
            return _fail("%s (are unprivileged user namespaces enabled? "
                         "sysctl user.max_user_namespaces)" % e.strerror)
        try:
            if o.hostname:
                import socket
                socket.sethostname(o.hostname)
            _resolv(o)
            for i in range(len(ends)):
                taps.append(TapDevice("%s%d" % (o.ifname, i)))
            caps = userns.NET_CAPS + ((userns.CAP_SYS_ADMIN,) if o.sysadm else ())
            userns.raise_ambient(caps)
        except (OSError, TapError) as e:
            return _fail("%s" % (e.strerror or e))
        return _run(loop, o.command, ends, taps)
    finally:
        for end in ends:
            try:
                loop.forget(end)
            except (ValueError, OSError):
                pass
            end.close()
        for tap in taps:
            loop.forget(tap)
            tap.close()
        loop.close()


def _run(loop: Loop, command: list, ends: list, taps: list) -> int:
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)     # the command's, not ours
    old_quit = signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    try:
        child = subprocess.Popen(command, restore_signals=True,
                                 preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL),
                                                     signal.signal(signal.SIGQUIT,
                                                                   signal.SIG_DFL)))
    except OSError as e:
        return _fail("execvp: %s" % e.strerror)
    status = []

    def on_child(signum: int) -> None:
        if child.poll() is not None:
            status.append(child.returncode)
            loop.stop()
    loop.add_signal_handler(signal.SIGCHLD, on_child)
    loop.add_signal_handler(signal.SIGTERM, lambda s: (child.terminate()))

    def network_gone() -> None:                     # the command goes on, unplugged
        for fd in ends + taps:
            try:
                loop.forget(fd)
            except (ValueError, OSError):
                pass
    _pump(loop, ends, taps, network_gone)
    if child.poll() is None:
        loop.run()
    child.wait()
    signal.signal(signal.SIGINT, old_int)
    signal.signal(signal.SIGQUIT, old_quit)
    rc = child.returncode
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main())
