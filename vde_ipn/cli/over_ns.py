"""``vde_over_ns``: drop-in for vde2 2.3.2's cable through DNS datagrams.

Command line (getopt, ``Dh:i:s:c:``)::

    vde_over_ns [-c DNSSERVER] [-s VDESOCK] [-i IP] [-D] DOMAIN

Without ``-c`` it is the server: it binds UDP port 53 (of ``-i IP`` only,
else of every address) and answers the queries of a client with the
frames of its side.  With ``-c`` it is the client of the server at
DNSSERVER's port 53.  A side is the VNL of ``-s``, or a vdestream on
stdin/stdout.  ``-D`` detaches (daemon(3)) before anything is opened;
``-h`` takes an argument and shows the usage, as in 2.3.2.  The manual's
``-b`` is not an option of the C tool (``-i`` is), nor of ours.

The datagrams are those of :mod:`vde_ipn.wire.nstx`, so either end may be
the C tool. Differences from 2.3.2: a domain name with an empty or too
long label is refused (the C tool crashes); the server answers only
queries of the cable (under its domain, carrying a fragment), of the
latest client only; a frame
filling its last fragment exactly is delivered (the C client never ends
it); fragment id 0, which both C ends drop, is never used; stdin/stdout
works (2.3.2 replaces its DNS socket by -1 there and sends nothing: only
its ``-s`` mode carries frames), and carries bare frames as ``-s`` does; a
client polls from the start (2.3.2 waits for a first frame of its own
side); the end of stdin, or the switch closing the port, ends the program
(2.3.2 spins); the server keeps at most 256 frames waiting for queries and
drops frames longer than sixteen answers carry (about 3.5 kB).
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys

from .._errors import ConnectError
from ..io.plugs.dns_cable import DnsCableClient, DnsCableServer, FrameSide, client_socket, server_socket
from ..io.loop import Loop
from ..io.plugs.opener import open_plug
from ..wire import nstx
from ._getopt import getopt_long
from ._process import daemonize

SHORTOPTS = "Dh:i:s:c:"
EX_USAGE, EX_OSERR = 64, 71
DESCR = "vde_over_ns"


def usage(prog: str, code: int) -> int:
    sys.stderr.write(
        "usage: %s [-c DNSSERVER] [-s VDESOCK] [-i IP] [-D] <domainname>\n"
        "Options:\n"
        "\t-i IP (bind to port 53 on this IP only)\n"
        "\n"
        "\t-D (call daemon(3) to detach from terminal)\n"
        "\n"
        "\t-c DNSSERVER: Client mode. Tries to 'connect' to DNSSERVER.\n"
        "\t\t(if this is not specified, server mode will be enabled by default.) \n"
        "\n"
        "\t-s VDESOCKET: Attach to socket VDESOCKET \n"
        "\t\t(if not specified, use stdin/stdout) \n"
        "\n"
        "example:\n"
        "\t%s -s /tmp/vde.ctl -c 1.2.3.4 tun.vdevirtualnetwork.foo [Client mode]\n"
        "\t%s -s /var/vde-master-switch.ctl tun.vdevirtualnetwork.foo [Server mode]\n"
        % (prog, prog, prog))
    return code


class Options:
    def __init__(self):
        self.bind = "0.0.0.0"
        self.daemon = False
        self.sock = None
        self.server = None
        self.domain = ""


def _inet_addr(text: str) -> str | None:
    """inet_addr(3): the address, or None for INADDR_NONE (which
    255.255.255.255 also is)."""
    try:
        packed = socket.inet_aton(text)
    except (OSError, ValueError):
        return None
    return None if packed == b"\xff" * 4 else socket.inet_ntoa(packed)


def parse(argv: list[str]) -> Options | int:
    """The options, or the exit status when the usage was shown."""
    prog = argv[0] if argv else "vde_over_ns"
    res = getopt_long(list(argv), SHORTOPTS)
    errors = iter(res.errors)
    o = Options()
    for key, val in res.opts:          # C acts on each option in turn
        if key == "i":
            addr = _inet_addr(val)
            if addr is None:
                sys.stderr.write("`%s' is not an IP-address\n" % val)
                return EX_USAGE
            o.bind = addr
        elif key == "D":
            o.daemon = True
        elif key == "s":
            o.sock = val
        elif key == "c":
            o.server = val
        elif key == "h":
            return usage(prog, 0)
        else:
            line = next(errors, None)
            if line is not None:
                sys.stderr.write(line + "\n")
            return usage(prog, EX_USAGE)
    if not res.operands:
        return usage(prog, EX_USAGE)
    o.domain = res.operands[0]
    return o


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    o = parse(argv)
    if isinstance(o, int):
        return o
    try:
        nstx.domain_labels(o.domain)
    except nstx.NstxError as e:
        sys.stderr.write("vde_over_ns: %s\n" % e)
        return EX_USAGE
    if o.daemon:
        daemonize()
    for num in (signal.SIGINT, signal.SIGTERM):
        signal.signal(num, signal.SIG_DFL)
    if o.server is not None:
        sys.stderr.write("Client Mode\n")
        sys.stderr.write("Opening nameserver-socket... ")
        sys.stderr.flush()
        try:
            sock = client_socket(o.server)
        except OSError as e:
            sys.stderr.write("connect: %s\n" % e.strerror)
            return 1
        sys.stderr.write("Using nameserver %s\n" % o.server)
    else:
        sys.stderr.write("Server Mode\n")
        sys.stderr.write("Opening nameserver-socket... ")
        sys.stderr.flush()
        try:
            sock = server_socket(o.bind)
        except OSError as e:
            sys.stderr.write("failed!\n")
            where = "all local IPs" if o.bind == "0.0.0.0" else "the specified IP"
            sys.stderr.write(_bind_error(e, where))
            return 1
        sys.stderr.write("listening on 53/UDP\n")
    loop = Loop()
    plug = None
    try:
        if o.sock is not None:
            try:
                plug = open_plug(o.sock, DESCR, loop=loop)
            except ConnectError as e:
                sys.stderr.write("Fatal Error. Vdeplug %s: %s\n" % (o.sock, os.strerror(e.errno)))
                return 1
        side = FrameSide(loop, plug)
        try:
            cable = (DnsCableClient if o.server is not None else DnsCableServer)(
                loop, sock, o.domain, side)
        except nstx.NstxError:
            sys.stdout.write("Fatal: no free space in dns-packet?!\n")
            return 1
        cable.start()
        loop.run()
        return 0
    finally:
        if plug is not None:
            plug.close()
        sock.close()
        loop.close()


def _bind_error(e: OSError, where: str) -> str:
    if e.errno == errno.EADDRINUSE:
        return ("Address is in use, please kill other processes listening on UDP-Port 53 "
                "on %s\n" % where)
    if e.errno in (errno.EACCES, errno.EPERM):
        return ("Permission denied binding port 53. You generally have to be root to "
                "bind privileged ports.\n")
    return "Unexpected error: bind: %s\n" % e.strerror


if __name__ == "__main__":
    sys.exit(main())
