"""``wirefilter``: drop-in for vde-2 2.3.2's wirefilter (an emulated cable).

Forms, as the C tool::

    dpipe A = wirefilter OPTIONS = B     both ways: L = stdin/stdout,
                                          R = $ALTERNATE_STDIN/$ALTERNATE_STDOUT
    ... =} wirefilter OPTIONS }= ...     one way, stdin -> stdout
    wirefilter OPTIONS -v VNL_L:VNL_R    two plugs (VNLs split at the first ':'),
    wirefilter OPTIONS VNL_L VNL_R       the same, for VNLs containing ':'
    -v -:VNL / -v VNL:-                  one side is the stdin/stdout stream

LR is the direction from left to right.  With two plugs and no
``--daemon`` stdin is a console (``VDEwf$`` prompt); ``-M PATH`` opens
the same console on a unix socket.  The cable model is
:mod:`vde_ipn.engine.wirefilter.channel` (Markov mode:
:mod:`vde_ipn.engine.wirefilter.markov`, stepped by a timer here); the commands
are :mod:`vde_ipn.engine.wirefilter.commands`.  Node changes are written to the
consoles whose ``markov-debug`` level is above 0.  The process exits 0
when an input stream ends, when a switch closes a plug, on ``shutdown``
or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import sys

from .._errors import ConnectError
from ..engine.wirefilter.channel import LR, RL, Channel, ValueError_
from ..engine.wirefilter.commands import LINE_MAX, run_command
from ..io.loop import Loop
from ..io.plugs.opener import open_plug
from ..wire.stream import STREAM_MAX, StreamDecoder, encode
from ._getopt import LongOpt, getopt_long
from ._process import daemonize, write_pidfile
from ._logging import Logger
from ._wireconsole import Session, write_all

SHORTOPTS = "hNl:n:d:M:D:m:b:s:c:v:L:f:"
LONGOPTS = tuple(LongOpt(n, a, k) for n, a, k in (
    ("help", 0, "h"), ("rcfile", 1, "f"), ("loss", 1, "l"), ("lostburst", 1, "L"),
    ("delay", 1, "d"), ("dup", 1, "D"), ("band", 1, "b"), ("speed", 1, "s"),
    ("chanbufsize", 1, "c"), ("capacity", 1, "c"), ("noise", 1, "n"), ("mtu", 1, "m"),
    ("nofifo", 0, "N"), ("mgmt", 1, "M"), ("mgmtmode", 1, "mgmtmode"),
    ("vde-plug", 1, "v"), ("daemon", 0, "daemon"), ("pidfile", 1, "pidfile"),
    ("blink", 1, "blink"), ("blinkid", 1, "blinkid")))
OPT_PARAM = {"l": "loss", "L": "lostburst", "d": "delay", "D": "dup", "b": "band",
             "s": "speed", "c": "chanbufsize", "n": "noise", "m": "mtu"}
USAGE = ("Usage: %s OPTIONS\n\t--help|-h\n\t--rcfile|-f Configuration file\n"
         "\t--loss|-l loss_percentage\n\t--lostburst|-L lost_packet_burst_len\n"
         "\t--delay|-d delay_ms\n\t--dup|-D dup_percentage\n\t--band|-b bandwidth(bytes/s)\n"
         "\t--speed|-s interface_speed(bytes/s)\n\t--chanbufsize|-c channel_bufsize\n"
         "\t--noise|-n noise_bits/megabye\n\t--mtu|-m mtu_size\n\t--nofifo|-N\n"
         "\t--mgmt|-M management_socket\n\t--mgmtmode management_permission(octal)\n"
         "\t--vde-plug plug1:plug2 | -v plug1:plug2\n\t--daemon\n\t--pidfile pidfile\n"
         "\t--blink blinksocket\n\t--blinkid blink_id_string\n")


class Usage(Exception):
    pass


def _is_fifo(fd: int) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False


class Wirefilter:
    """One running filter: endpoints, channel, consoles, timers."""

    def __init__(self, prog: str, loop: Loop):
        self.prog, self.loop = prog, loop
        self.ch = Channel()
        self.inputs = [None, None]        # ("fd", fd, decoder) or ("plug", plug)
        self.outputs = [None, None]       # fd (int) or plug, for frames going LR/RL
        self.plugs = []
        self.mgmt_path = None
        self.mgmt_mode = 0o700
        self.blink = None
        self._timer = None
        self._markov_timer = None
        self._paused = [None, None]
        self.sessions = []

    # -- setup ------------------------------------------------------------
    def open_ends(self, vnls) -> None:
        alt_in = os.environ.get("ALTERNATE_STDIN")
        alt_out = os.environ.get("ALTERNATE_STDOUT")
        plugs = [None, None]
        if vnls:
            for i, v in enumerate(vnls):
                if v != "-":
                    plugs[i] = open_plug(v, "vde_crosscable", loop=self.loop)
                    self.plugs.append(plugs[i])
        if plugs[LR] is None or plugs[RL] is None:
            for fd, name in ((0, "stdin"), (1, "stdin")):
                if not _is_fifo(fd):
                    raise Usage("%s: Error on %s: it is not a pipe" % (self.prog, name))
        if vnls:
            self.ch.ndirs = 2
            for d in (LR, RL):
                if plugs[d] is not None:
                    self.inputs[d] = ("plug", plugs[d])
                    self.outputs[1 - d] = plugs[d]
                else:
                    self.inputs[d] = ("fd", 0, StreamDecoder(STREAM_MAX))
                    self.outputs[1 - d] = 1
        elif alt_in is not None and alt_out is not None and _valid_fd(int(alt_in or -1)):
            ai, ao = int(alt_in), int(alt_out)
            if not _is_fifo(ai):
                raise Usage("%s: Error on secondary in: it is not a pipe" % self.prog)
            if not _is_fifo(ao):
                raise Usage("%s: Error on secondary out: it is not a pipe" % self.prog)
            self.ch.ndirs = 2
            self.inputs = [("fd", 0, StreamDecoder(STREAM_MAX)), ("fd", ai, StreamDecoder(STREAM_MAX))]
            self.outputs = [ao, 1]
        else:
            self.ch.ndirs = 1
            self.inputs[LR] = ("fd", 0, StreamDecoder(STREAM_MAX))
            self.outputs[LR] = 1

    def start(self, console_on_stdin: bool) -> None:
        for d in (LR, RL):
            if self.inputs[d] is not None:
                self._watch(d)
        for p in self.plugs:
            if p.ctl is not None:
                self.loop.add_reader(p.ctl, lambda now: self.loop.stop())
        if self.mgmt_path:
            self._open_mgmt()
        if console_on_stdin:
            Session(self, 0, 1)
        self._markov_arm(self.loop.clock())

    # -- Markov mode ------------------------------------------------------
    def _markov_arm(self, now: float) -> None:
        if self._markov_timer is not None:
            self.loop.cancel(self._markov_timer)
            self._markov_timer = None
        due = self.ch.markov.next_due()
        if due is not None:
            self._markov_timer = self.loop.call_later(max(0.0, due / 1000.0 - now),
                                                      self._markov_tick)

    def _markov_tick(self, now: float) -> None:
        self._markov_timer = None
        self._report(self.ch.markov.advance(now * 1000.0))
        self._markov_arm(now)

    def _report(self, transitions) -> None:
        if not transitions:
            return
        text = "".join(self.ch.markov.transition_line(i, k)[:LINE_MAX - 1] + "\n"
                       for i, k in transitions)
        for sess in self.sessions:
            if sess.debug > 0:
                sess.write(text)

    def _watch(self, d: int) -> None:
        src = self.inputs[d]
        self.loop.add_reader(src[1], lambda now, d=d: self._readable(d, now))

    # -- frames -----------------------------------------------------------
    def _readable(self, d: int, now: float) -> None:
        src = self.inputs[d]
        ms = now * 1000.0
        if src[0] == "plug":
            for _ in range(64):
                try:
                    f = src[1].recv(STREAM_MAX)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    self.loop.stop()
                    return
                if len(f) >= 14:
                    self.ch.push(d, f, ms)
        else:
            try:
                data = os.read(src[1], 65536)
            except OSError:
                data = b""
            if not data:
                self.loop.stop()
                return
            for f in src[2].feed(data):
                self.ch.push(d, f, ms)
        self._pump(now)
        ready = self.ch.input_ready_at(d)
        if ready > ms:
            self.loop.remove_reader(src[1])
            self.loop.call_later((ready - ms) / 1000.0, lambda t, d=d: self._watch(d))

    def _pump(self, now: float) -> None:
        for d, f in self.ch.due(now * 1000.0):
            self._out(d, f)
        if self._timer is not None:
            self.loop.cancel(self._timer)
            self._timer = None
        nxt = self.ch.next_due()
        if nxt is not None:
            self._timer = self.loop.call_later(max(0.0, nxt / 1000.0 - now), self._pump)

    def _out(self, d: int, f: bytes) -> None:
        dst = self.outputs[d]
        if self.blink is not None:
            sock, path, ident = self.blink
            tag = "--" if self.ch.ndirs != 2 else ("LR" if d == LR else "RL")
            try:
                sock.sendto(("%s %s %d\n" % (ident, tag, len(f) + 2)).encode(), path)
            except OSError:
                pass
        try:
            if isinstance(dst, int):
                write_all(dst, encode(f))
            elif dst is not None:
                dst.send(f)
        except BlockingIOError:
            pass
        except OSError:
            if isinstance(dst, int):
                self.loop.stop()

    # -- consoles ---------------------------------------------------------
    def _open_mgmt(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.mgmt_path)
        os.chmod(self.mgmt_path, self.mgmt_mode)
        s.listen(15)
        s.setblocking(False)
        self._mgmt = s

        def accept(now):
            try:
                c, _ = s.accept()
            except OSError:
                return
            Session(self, c.fileno(), c.fileno(), c)
        self.loop.add_reader(s, accept)

    def command(self, line: str, interactive: bool = True, session=None):
        title = "WireFilter: %sdirectional" % ("bi" if self.ch.ndirs == 2 else "mono")
        now = self.loop.clock()
        reply = run_command(line, self.ch, read_file=_read_file, title=title,
                            interactive=interactive, now=now * 1000.0)
        if session is not None and reply.debug is not None:
            session.debug = reply.debug
        self._report(reply.transitions)
        self._markov_arm(now)
        return reply

    def close(self) -> None:
        for p in self.plugs:
            p.close()
        if self.mgmt_path:
            try:
                os.unlink(self.mgmt_path)
            except OSError:
                pass


def _valid_fd(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def main(argv=None) -> int:
    argv = sys.argv if argv is None else argv
    prog = os.path.basename(argv[0]) if argv else "wirefilter"
    log = Logger(prog, syslog_ident=prog)
    loop = Loop()
    wf = Wirefilter(prog, loop)
    res = getopt_long(list(argv), SHORTOPTS, LONGOPTS)
    for line in res.errors:
        sys.stderr.write(line + "\n")
    rcfile = pidfile = None
    daemon = False
    vnls = None
    blink_path = blink_id = None
    try:
        for key, val in res.opts:
            if key in OPT_PARAM:
                try:
                    wf.ch.set(OPT_PARAM[key], val)
                except ValueError_:
                    pass
            elif key == "N":
                wf.ch.fifo = False
            elif key == "f":
                rcfile = val
            elif key == "M":
                wf.mgmt_path = val
            elif key == "mgmtmode":
                wf.mgmt_mode = int(val, 8) if val.strip() else 0o700
            elif key == "v":
                left, colon, right = val.partition(":")
                if not colon:
                    sys.stderr.write("Bad vde_plugs specification.\n")
                    raise Usage("")
                vnls = [left, right]
            elif key == "daemon":
                daemon = True
            elif key == "pidfile":
                pidfile = os.path.abspath(val)
            elif key == "blink":
                blink_path = val
            elif key == "blinkid":
                blink_id = val
            else:
                raise Usage("")
        ops = list(res.operands)
        if ops:
            vnls = (vnls or [None, None])
            vnls[0] = ops.pop(0)
            if ops:
                vnls[1] = ops.pop(0)
            if ops or vnls[1] is None:
                raise Usage("")
        try:
            wf.open_ends(vnls)
        except ConnectError as e:
            sys.stderr.write("vdeplug %s: %s\n" % (":".join(vnls), os.strerror(e.errno)))
            raise Usage("")
    except Usage as u:
        if str(u):
            sys.stderr.write(str(u) + "\n")
        sys.stderr.write(USAGE % prog)
        wf.close()
        return 1
    if rcfile:
        for line in _read_rc(rcfile, log):
            r = wf.command(line, interactive=False)
            if r.rc:
                log("rc command error: %s %s" % (line, os.strerror(r.rc)))
    if blink_path:
        ident = blink_id if blink_id is not None else "%06d" % os.getpid()
        wf.blink = (socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM), blink_path, ident)
    if daemon:
        log.to_syslog()
        daemonize()
    if pidfile and not write_pidfile(pidfile, log):
        return 1
    for num in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(num, lambda signum: loop.stop())
    for name in ("SIGPIPE", "SIGALRM", "SIGUSR1", "SIGUSR2"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    try:
        wf.start(console_on_stdin=len(wf.plugs) == 2 and not daemon)
        loop.run()
    finally:
        wf.close()
        if pidfile:
            try:
                os.unlink(pidfile)
            except OSError:
                pass
        loop.close()
    return 0


def _read_rc(path: str, log):
    try:
        data = _read_file(path)
    except OSError:
        return []
    return [ln.decode("utf-8", "replace") for ln in data.split(b"\n")]


if __name__ == "__main__":
    sys.exit(main())
