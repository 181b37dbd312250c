"""``vde_l3``: drop-in for vde2 2.3.2's small layer 3 router.

Command line (getopt_long_only, as vde2 builds it, ``hM:r:G:v:``)::

    vde_l3 -v VNL:ADDRESS/NETMASK [-v ...] [-r NETWORK/NETMASK:GATEWAY ...]
           [-G DEFAULT_GW] [-M MGMT_SOCKET]

Each ``-v`` is an interface ``vdN`` (N from 0, in order) plugged into a
VDE network.  NETMASK is dotted (``255.255.255.0``) as 2.3.2 takes it,
or a prefix length (``24``) as its manual describes.  The router itself
is :mod:`vde_ipn.engine.l3.router`; the console on ``-M`` is
:mod:`vde_ipn.engine.l3.console`.
"""

from __future__ import annotations

import os
import signal
import sys

from .._errors import ConnectError
from ..engine.l3.console import BANNER, PROMPT, run_command
from ..engine.l3.router import Router, parse_ip, parse_netmask
from ..io.loop import Loop
from ..io.unix_listen import listen_unix
from ..io.plugs.opener import open_plug
from ._getopt import LongOpt, getopt_long_only

SHORTOPTS = "hM:r:G:v:"
LONGOPTS = (LongOpt("help", 0, "h"), LongOpt("route", 1, "r"), LongOpt("defaultgw", 1, "G"),
            LongOpt("vdeplug", 1, "v"), LongOpt("mgmt", 1, "M"))
DESCR = "vde_L3"
MGMT_MODE = 0o700
FRAME_MAX = 1548

USAGE = """\
Usage: {p} [-G default_gw] -v vde_sock1:ipaddess1/netmask1 [-v ...] [-v vde_sockN:ipaddessN/netmaskN]
          [-r network/netmask:gateway ] [-r ...] 
Options:
-v VDESOCK:ADDRESS/NETMASK adds a network interface
\twith address ADDRESS and netmask NETMASK. 
\tThe interface is connected to the vde socket VDESOCK.
\t(At least one '-v' argument is required.)

-r ADDRESS/NETMASK:GATEWAY adds a static route to the network
\tADDRESS with netmask NETMASK, through the gateway GATEWAY. 

-G ADDRESS sets the router default gateway to ADDRESS.

"""


class Usage(Exception):
    pass


def _usage(prog: str) -> int:
    sys.stderr.write(USAGE.format(p=prog))
    return 1


def _mask_hint(nm: str) -> None:
    if nm.startswith("0"):
        sys.stderr.write("(Did you mean to set default gateway? then -G)\n")


def parse(argv: list[str]):
    """(router, [(vnl, iface)], mgmt path); raises Usage after saying why."""
    res = getopt_long_only(list(argv), SHORTOPTS, LONGOPTS)
    for line in res.errors:
        sys.stderr.write(line + "\n")
    router, plugs, mgmt = Router(), [], None
    for key, val in res.opts:
        if key == "M":
            mgmt = val
        elif key == "G":
            router.default_gw = parse_ip(val)
            if not router.default_gw:
                sys.stderr.write("Cannot set default gateway address to '%s'\n" % val)
                raise Usage
        elif key == "r":
            net, sep, rest = val.partition("/")
            nm, sep2, gw = rest.partition(":")
            if not sep or not sep2:
                raise Usage
            network, mask, gateway = parse_ip(net), parse_netmask(nm), parse_ip(gw)
            if not network:
                sys.stderr.write("route: Cannot set network address to '%s'\n" % net)
                raise Usage
            if not mask:
                sys.stderr.write("route: Cannot set netmask to '%s'\n" % nm)
                _mask_hint(nm)
                raise Usage
            if not gateway:
                sys.stderr.write("route: Cannot set gateway address to '%s'\n" % gw)
                raise Usage
            router.set_route(network & mask, mask, gateway)
        elif key == "v":
            vnl, sep, rest = val.rpartition(":")
            addr, sep2, nm = rest.partition("/")
            if not sep or not sep2:
                raise Usage
            ip = parse_ip(addr)
            if not ip:
                sys.stderr.write("vdeplug %s: Cannot set ip address to '%s'\n" % (vnl, addr))
                raise Usage
            mask = parse_netmask(nm)
            if not mask:
                sys.stderr.write("vdeplug %s: Cannot set netmask to '%s'\n" % (vnl, nm))
                _mask_hint(nm)
                raise Usage
            plugs.append((vnl, router.add_iface(ip, mask)))
        else:                            # -h, or an error getopt reported
            raise Usage
    if res.operands or not plugs:
        raise Usage
    return router, plugs, mgmt


class L3:
    def __init__(self, router: Router, loop: Loop):
        self.router, self.loop = router, loop
        self.plugs: dict = {}            # interface id -> plug
        self.waiting: set = set()        # interfaces with a drain timer (tbf)
        self.listener = None

    def attach(self, iface_id: int, plug) -> None:
        self.plugs[iface_id] = plug

        def readable(now: float) -> None:
            for _ in range(64):
                try:
                    frame = plug.recv(FRAME_MAX)
                except (BlockingIOError, TimeoutError):
                    return
                except OSError:
                    self.loop.forget(plug)
                    return
                self.send(self.router.receive(iface_id, frame, now))
        self.loop.add_reader(plug, readable)

    def send(self, frames) -> None:
        """Through each interface's queueing discipline (tc)."""
        now = self.loop.clock()
        touched = {}
        for iface_id, frame in frames:
            iface = self.router.iface(iface_id)
            if iface is not None and iface.queue.enqueue(frame, now):
                touched[iface_id] = iface
        for iface in touched.values():
            self._drain(iface, now)

    def _drain(self, iface, now: float) -> None:
        plug = self.plugs.get(iface.id)
        while True:
            frame = iface.queue.dequeue(now)
            if frame is None:
                break
            try:
                plug.send(frame)
            except OSError:
                pass                     # full or gone: lost, as on a wire
        wait = getattr(iface.queue, "wait", None)
        if wait is not None and iface.queue.q and iface.id not in self.waiting:
            self.waiting.add(iface.id)

            def later(now: float, iface=iface) -> None:
                self.waiting.discard(iface.id)
                self._drain(iface, now)
            self.loop.call_later(max(wait(now), 0.001), later)

    def open_mgmt(self, path: str) -> None:
        try:
            os.unlink(path)
        except OSError:
            pass
        s = listen_unix(path, MGMT_MODE)
        self.listener, self.mgmt_path = s, path
        self.loop.add_reader(s, self._accept)

    def _accept(self, now: float) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        conn.setblocking(True)
        conn.settimeout(2.0)
        self._write(conn, BANNER + PROMPT)
        buf = [b""]

        def readable(now: float) -> None:
            try:
                data = conn.recv(4096)
            except OSError:
                data = b""
            if not data:
                self._end(conn)
                return
            buf[0] += data
            while b"\n" in buf[0]:
                line, buf[0] = buf[0].split(b"\n", 1)
                reply = run_command(self.router, line.decode("utf-8", "replace"))
                if reply.shutdown:
                    self.loop.stop()
                    return
                self._write(conn, reply.text)
                if reply.close:
                    self._end(conn)
                    return
                self._write(conn, PROMPT)
        self.loop.add_reader(conn, readable)

    @staticmethod
    def _write(conn, text: str) -> None:
        try:
            conn.sendall(text.encode())
        except OSError:
            pass

    def _end(self, conn) -> None:
        self.loop.forget(conn)
        conn.close()

    def close(self) -> None:
        for plug in self.plugs.values():
            self.loop.forget(plug)
            plug.close()
        if self.listener is not None:
            self.loop.forget(self.listener)
            self.listener.close()
            try:
                os.unlink(self.mgmt_path)
            except OSError:
                pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    prog = argv[0] if argv else "vde_l3"
    try:
        router, wanted, mgmt = parse(argv)
    except Usage:
        return _usage(prog)
    loop = Loop()
    l3 = L3(router, loop)
    try:
        for vnl, iface in wanted:
            try:
                plug = open_plug(vnl, DESCR, loop=loop)
            except ConnectError as e:
                sys.stderr.write("vdeplug %s: %s\n" % (vnl, os.strerror(e.errno)))
                return 1
            l3.attach(iface.id, plug)
        if mgmt is not None:
            try:
                l3.open_mgmt(mgmt)
            except OSError as e:
                sys.stderr.write("%s: mgmt bind %s\n" % (prog, e.strerror))
                return 1
        loop.call_every(1.0, router.expire)
        for num in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(num, lambda signum: loop.stop())
        loop.run()
        return 0
    finally:
        l3.close()
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
