"""``slirpvde``: drop-in for vde2 2.3.2's slirpvde, on libslirp.

    slirpvde [OPTIONS] [SWITCH]

A NAT router for every machine on SWITCH (any VNL; ``-`` is a vdestream
on stdin/stdout): router at host 2 of the network (10.0.2.2/24 unless
``-H``/``-n``), DNS proxy at host 3, a DHCP server with ``-D`` (from host
15 on).  The command line is the original's (getopt_long_only, so
``-dhcp`` is ``--dhcp``).  IPv4 only, as the original.

Where 2.3.2 prints an error and carries on without the forward (``-L``
or ``-U`` malformed, host port busy), this one stops with that one-line
error, having left nothing behind.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import sys

from .._errors import ConnectError
from ..io.loop import Loop
from ..io.plugs.opener import open_plug
from ..io.plugs.slirp import open_slirp_plug
from ..wire.slirp_options import (Forward, GuestForward, SlirpSettings, check,
                                  parse_forward)
from ..wire.vnl import VnlError
from ..wire.c_numbers import scan_octal
from ._getopt import LongOpt, getopt_long_only
from ._logging import Logger
from ._process import daemonize, pidfile_path, write_pidfile
from .plug import run_cable, run_stream

SHORTOPTS = "Ds:n:H:p:g:m:L:U:X:x:t:N:dqh"
LONGOPTS = (
    LongOpt("socket", 1, "s"), LongOpt("sock", 1, "s"), LongOpt("vdesock", 1, "s"),
    LongOpt("unix", 1, "s"), LongOpt("pidfile", 1, "p"), LongOpt("dhcp", 2, "D"),
    LongOpt("daemon", 0, "d"), LongOpt("network", 1, "n"), LongOpt("nameserver", 1, "N"),
    LongOpt("dns", 1, "N"), LongOpt("host", 1, "H"), LongOpt("mod", 1, "m"),
    LongOpt("group", 1, "g"), LongOpt("port", 1, "P"), LongOpt("tftp", 1, "t"),
    LongOpt("quiet", 0, "q"), LongOpt("help", 0, "h"),
)

USAGE = """\
Usage:
 %(p)s [-socket vdesock] [-dhcp] [-daemon] [-network netaddr] 
\t [-L host_port:guest_addr:guest_port] [-X guest_addr[:display[.screen]]] 
\t [-x portno:unix_socket_path]
 %(p)s [-s vdesock] [-D] [-d] [-n netaddr]
\t [-L host_port:guest_addr:guest_port] [-X guest_addr[:display[.screen]]] 
\t [-x portno:unix_socket_path]
"""


class Options:
    def __init__(self):
        self.sock: str | None = None
        self.dhcp = False
        self.dhcp_start: str | None = None
        self.daemon = False
        self.host = "10.0.2.2"
        self.maskbits = 24
        self.dns: str | None = None
        self.mode = 0o700
        self.group: str | None = None
        self.pidfile: str | None = None
        self.port: int | None = None
        self.forwards: list = []          # (udp, text)
        self.xredirs: list[str] = []
        self.unixredirs: list[str] = []
        self.tftp: str | None = None
        self.quiet = False


class Refused(Exception):
    """Bad input: one line for stderr, exit status 1."""


def _usage(prog: str) -> None:
    sys.stderr.write(USAGE % {"p": prog})
    raise SystemExit(255)


def parse(argv: list[str]) -> Options:
    prog = os.path.basename(argv[0]) if argv else "slirpvde"
    res = getopt_long_only(list(argv), SHORTOPTS, LONGOPTS)
    for line in res.errors:
        sys.stderr.write(line + "\n")
    o = Options()
    for key, val in res.opts:
        if key == "s":
            o.sock = val
        elif key == "D":
            o.dhcp = True
            if val is not None:
                o.dhcp_start = val
        elif key == "d":
            o.daemon = True
        elif key in ("H", "n"):
            addr, slash, bits = val.partition("/")
            if slash:
                try:
                    o.maskbits = int(bits)
                except ValueError:
                    o.maskbits = 0
            o.host = addr
        elif key == "N":
            o.dns = val
        elif key == "m":
            mode = scan_octal(val)
            if mode is not None:
                o.mode = mode
        elif key == "g":
            o.group = val
        elif key == "p":
            o.pidfile = val
        elif key == "P":
            try:
                o.port = int(val)
            except ValueError:
                o.port = 0
        elif key in ("L", "U"):
            o.forwards.append((key == "U", val))
        elif key == "X":
            o.xredirs.append(val)
        elif key == "x":
            o.unixredirs.append(val)
        elif key == "t":
            o.tftp = val
        elif key == "q":
            o.quiet = True
        else:                            # -h, unknown option, missing argument
            _usage(prog)
    ops = list(res.operands)
    if ops and o.sock is None:
        o.sock = ops.pop(0)
    if ops:
        _usage(prog)
    return o


def settings_of(o: Options) -> SlirpSettings:
    """The router 2.3.2 would build from these options; :class:`Refused`
    for what it would ignore or misread."""
    if not 0 <= o.maskbits <= 30:
        raise Refused("bad network prefix length /%d" % o.maskbits)
    try:
        host = ipaddress.IPv4Address(o.host)
    except ValueError:
        raise Refused("bad host/network address %r" % o.host) from None
    net = ipaddress.IPv4Network((int(host), o.maskbits), strict=False)
    if int(host) & ~int(net.netmask) & 0xFFFFFFFF == 0:
        host = net.network_address + 2
    s = SlirpSettings(ipv6=False, host=ipaddress.IPv4Interface((host, o.maskbits)))
    s.dhcp = o.dhcp
    s.dhcp_start = net.network_address + 15
    s.dns = net.network_address + 3
    try:
        if o.dhcp_start:
            s.dhcp_start = ipaddress.IPv4Address(o.dhcp_start)
        if o.dns:
            s.dns = ipaddress.IPv4Address(o.dns)
    except ValueError as e:
        raise Refused(str(e)) from None
    s.tftp_path = o.tftp
    for udp, text in o.forwards:
        what = "redir %s" % ("UDP" if udp else "TCP")
        if text.count(":") != 2:
            raise Refused("%s syntax error: %r is not port:guest_addr:guest_port"
                          % (what, text))
        try:
            s.forwards.append(parse_forward(text, udp, what))
        except VnlError as e:
            raise Refused(str(e)) from None
    for text in o.xredirs:
        s.forwards.append(_x_redirect(text, net))
    for text in o.unixredirs:
        port, colon, path = text.partition(":")
        if not colon or not port.isdigit() or not path:
            raise Refused("tcp2unix redirection syntax error -x port:path "
                          "e.g. -x 6000:/tmp/.X11-unix/X0")
        s.guest_forwards.append(GuestForward("unix", "", int(port), path))
    try:
        check(s)
    except VnlError as e:
        raise Refused(str(e)) from None
    return s


def _x_redirect(text: str, net) -> Forward:
    """``-X guest[:display[.screen]]``: the first free host X display
    (port 6000 + n) to the guest's display.  The free port is looked for
    when the router starts; 6000 here is replaced then."""
    addr, _, disp = text.partition(":")
    try:
        guest = ipaddress.IPv4Address(addr)
        display = int(disp.split(".")[0]) if disp else 0
    except ValueError:
        raise Refused("X-redirection syntax error %r" % text) from None
    return Forward(False, "0.0.0.0", 0, str(guest), 6000 + display)


def _banner(o: Options, s: SlirpSettings) -> str:
    lines = ["Starting slirpvde: virtual_host=%s/%d" % (s.host.ip, o.maskbits),
             "                   DNS         =%s" % s.dns]
    if s.dhcp:
        lines.append("                   dhcp_start  =%s" % s.dhcp_start)
    if s.tftp_path is not None:
        lines.append("                   tftp prefix =%s" % s.tftp_path)
    lines.append("                   vde switch  =%s" % ("*DEFAULT*" if o.sock is None
                                                           else o.sock))
    for f in s.forwards:
        lines.append("                   redir %s   =%d:%s:%d" % (
            "UDP" if f.udp else "TCP", f.host_port, f.guest_addr, f.guest_port))
    return "".join(line + "\n" for line in lines)


def _open_router(s: SlirpSettings, loop: Loop):
    """The slirp plug; X redirections get the first free port 6000-6100."""
    xs = [f for f in s.forwards if f.host_port == 0]
    s.forwards = [f for f in s.forwards if f.host_port != 0]
    plug = open_slirp_plug("", loop=loop, settings=s)
    router = plug._owner
    try:
        for f in xs:
            for port in range(6000, 6101):
                g = Forward(False, f.host_addr, port, f.guest_addr, f.guest_port)
                try:
                    router.add_forward(g)
                except ConnectError:
                    continue
                s.forwards.append(g)
                break
    except BaseException:
        plug.close()
        raise
    return plug


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    o = parse(argv)
    prog = os.path.basename(argv[0]) if argv else "slirpvde"
    log = Logger(prog, syslog_ident="slirpvde")
    try:
        s = settings_of(o)
    except Refused as e:
        log(str(e))
        return 1
    if o.daemon:
        log.to_syslog()
    pidfile = pidfile_path(o.pidfile) if o.pidfile else None
    stream = o.sock == "-"
    loop = Loop()
    plugs = []
    pid_written = False
    caught: list = []
    try:
        try:
            plugs.append(_open_router(s, loop))
        except ConnectError as e:
            log(str(e))
            return 1
        if not stream:
            try:
                plugs.insert(0, open_plug(o.sock, "slirpvde:", port=o.port or None,
                                          group=o.group, mode=o.mode, loop=loop))
            except ConnectError as e:
                log("Could not connect to the VDE switch at '%s': %s"
                    % (o.sock if o.sock is not None else "(null)", os.strerror(e.errno)))
                return 1
        if o.daemon and not stream:
            daemonize()
        if pidfile:
            if not write_pidfile(pidfile, log):
                return 1
            pid_written = True
        if not (o.quiet or stream):
            sys.stderr.write(_banner(o, s))
            sys.stderr.flush()
        for num in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(num, lambda n: (caught.append(n), loop.stop()))
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        if stream:
            run_stream(loop, plugs[0], 0, 1)
        else:
            run_cable(loop, plugs[0], plugs[1])
        loop.run()
        return 0
    finally:
        for p in plugs:
            for sock in (p, p.ctl):
                if sock is not None:
                    loop.forget(sock)
            p.close()
        loop.close()
        if pid_written:
            try:
                os.unlink(pidfile)
            except OSError as e:
                log("Couldn't remove pidfile '%s': %s" % (o.pidfile, e.strerror))


if __name__ == "__main__":
    sys.exit(main())
