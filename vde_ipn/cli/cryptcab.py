"""``vde_cryptcab``: drop-in for vde2 2.3.2's encrypted UDP cable.

Command line (getopt_long_only, as vde2 builds it, ``s:p:c:P:hv::xkd``)::

    vde_cryptcab [-s VNL] [-c [USER@]HOST[:PORT]] [-p LOCALPORT]
                 [-P KEYFILE] [-d] [-x] [-k] [-v[v...]]

Without ``-c`` it is a server: every client that proves it holds the key
gets a port of its own on the local switch.  With ``-c`` it is a client
for the server at HOST:PORT (UDP, default 7667).  The key is a fresh
random one sent to the server's ``/tmp`` with ``scp`` (the default), or
the 24 bytes of a file both ends read (``-P``); ``-x`` sends frames in
clear.  The datagrams are those of Debian's 2.3.2 build (see
:mod:`vde_ipn.wire.cryptcab`), so either end may be the C tool.

Beyond 2.3.2: a frame arriving here has its CRC and counter checked and
is delivered without the 12 trailing bytes (2.3.2 passes them on); a
client that is not logged in retries every 5 seconds on its own.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import tempfile

from .._errors import ConnectError
from ..io.loop import Loop
from ..io.plugs.opener import open_plug
from ..wire import cryptcab as cc
from ..wire.c_numbers import atoi
from ._getopt import LongOpt, getopt_long_only
from ._process import daemonize

SHORTOPTS = "s:p:c:P:hv::xkd"
LONGOPTS = (
    LongOpt("sock", 1, "s"), LongOpt("vdesock", 1, "s"), LongOpt("unix", 1, "s"),
    LongOpt("localport", 1, "p"), LongOpt("connect", 1, "c"), LongOpt("preshared ", 1, "P"),
    LongOpt("noencrypt", 0, "x"), LongOpt("keepalive", 0, "k"), LongOpt("verbose", 2, "v"),
    LongOpt("help", 0, "h"), LongOpt("daemon", 0, "d"),
)
DESCR = "vde_cryptcab"
SESSION_TIMEOUT, CHALLENGE_TIMEOUT, PRELOGIN_TIMEOUT = 120, 20, 3
KEEPALIVE_INTERVAL = 30
LOGIN_RETRY = 5

CLOSED, OPENING, CHALLENGED, AUTH, WAIT_AUTH = "closed", "opening", "challenge", "auth", "wait"


class Usage(Exception):
    pass


class Options:
    def __init__(self):
        self.plug = "/tmp/vde.ctl"
        self.remote_user = self.remote_host = None
        self.remote_port = cc.PORT
        self.port = cc.PORT
        self.preshared = None
        self.encrypt = True
        self.keepalive = False
        self.daemon = False
        self.verbose = 0


def parse(argv: list[str]) -> Options:
    res = getopt_long_only(list(argv), SHORTOPTS, LONGOPTS)
    for line in res.errors:
        sys.stderr.write(line + "\n")
    o = Options()
    for key, val in res.opts:
        if key == "s":
            o.plug = val
        elif key == "v":
            o.verbose = 1 + (len(val) - len(val.lstrip("v")) if val else 0)
        elif key == "x":
            o.encrypt = False
        elif key == "c":
            if val.count("@") > 1 or val.count(":") > 1 or (
                    "@" in val and ":" in val and val.index("@") > val.index(":")):
                raise Usage
            user, _, rest = val.rpartition("@")
            host, sep, port = rest.partition(":")
            o.remote_user = user or None if "@" in val else None
            o.remote_host = host
            o.remote_port = atoi(port) & 0xFFFF if sep else cc.PORT
        elif key == "p":
            o.port = atoi(val) & 0xFFFF
        elif key == "P":
            o.preshared = val
            sys.stderr.write("Using pre-shared key %s\n" % val)
        elif key == "k":
            o.keepalive = True
        elif key == "d":
            o.daemon = True
        else:
            raise Usage
    if res.operands:
        raise Usage
    if o.keepalive and o.remote_host is None:
        sys.stderr.write("\nkeepalive option is valid in client mode only.\n\n")
        raise Usage
    if o.preshared and not o.encrypt:
        sys.stderr.write("\nWarning: Not using pre-shared key mode, encryption disabled.\n\n")
        o.preshared = None
    return o


class Cab:
    """What client and server share: the UDP socket, the log, the counter."""

    def __init__(self, o: Options, loop: Loop):
        self.o, self.loop = o, loop
        self.counter = 1
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("0.0.0.0", o.port))
        self.sock.setblocking(False)

    def log(self, level: int, msg: str) -> None:
        if self.o.verbose >= level:
            sys.stderr.write("vde_cryptcab: %s\n" % msg)

    def send(self, addr, data: bytes) -> None:
        try:
            self.sock.sendto(data, addr)
        except OSError as e:
            self.log(1, "sendto %s:%d: %s" % (addr[0], addr[1], e.strerror))
        self.log(4, "UDP Sent %dB datagram." % len(data))

    def send_frame(self, addr, frame: bytes, cipher) -> None:
        self.send(addr, cc.encode_data(frame, self.counter, cipher))
        self.counter += 1

    def datagrams(self):
        for _ in range(64):
            try:
                yield self.sock.recvfrom(cc.MAXPKT)
            except (BlockingIOError, InterruptedError):
                return

    def open_plug(self):
        try:
            return open_plug(self.o.plug, DESCR, loop=self.loop)
        except ConnectError as e:
            sys.stderr.write("libvdeplug: %s\n" % os.strerror(e.errno))
            raise SystemExit(1)

    def watch_plug(self, plug, on_frame) -> None:
        def readable(now: float) -> None:
            for _ in range(64):
                try:
                    frame = plug.recv(cc.MAXPKT)
                except (BlockingIOError, TimeoutError):
                    return
                except OSError:
                    self.loop.forget(plug)
                    return
                if len(frame) >= 14:
                    on_frame(frame, now)
        self.loop.add_reader(plug, readable)


def _read_key(path: str) -> tuple[bytes, bytes]:
    with open(path, "rb") as f:
        return cc.split_key_file(f.read(cc.KEY_SIZE + cc.IV_SIZE))


# -- server --------------------------------------------------------------------
class Peer:
    def __init__(self, addr, now):
        self.addr, self.state = addr, CLOSED
        self.expire = now + PRELOGIN_TIMEOUT
        self.cipher = None
        self.key_id = None
        self.challenge = b""
        self.plug = None
        self.counter = 0


class Server(Cab):
    def __init__(self, o, loop):
        super().__init__(o, loop)
        self.peers: dict = {}
        loop.add_reader(self.sock, self._udp)
        loop.call_every(1.0, self._expire)

    def _udp(self, now: float) -> None:
        for data, addr in self.datagrams():
            if not data:
                continue
            p = self.peers.get(addr)
            if p is None:
                p = self.peers[addr] = Peer(addr, now)
            self._handle(p, data, now)

    def _handle(self, p: Peer, data: bytes, now: float) -> None:
        kind = data[0]
        if p.state == AUTH and kind == cc.DATA:
            self.log(4, "Data pkt received (%d Bytes)" % len(data))
            try:
                frame, counter = cc.decode_data(data, p.cipher)
            except cc.CryptError as e:
                self.log(2, "Dropped a datagram from %s: %s" % (p.addr[0], e))
                return
            if counter is not None:
                if counter <= p.counter:
                    self.log(2, "Dropped a replayed datagram from %s" % p.addr[0])
                    return
                p.counter = counter
            p.expire = now + SESSION_TIMEOUT
            try:
                p.plug.send(frame)
            except OSError:
                pass
        elif p.state == AUTH and kind == cc.KEEPALIVE:
            self.log(4, "Keepalive received from %s" % p.addr[0])
            p.expire = now + SESSION_TIMEOUT
        elif p.state in (AUTH, CLOSED) and kind == cc.LOGIN:
            self.log(4, "Login pkt received.")
            p.state, p.counter = OPENING, 0
            self._login(p, cc.login_id(data), now)
        elif p.state == CHALLENGED and kind == cc.RESPONSE:
            self.log(4, "Response pkt received.")
            try:
                answer = p.cipher.decrypt(data[1:]) if p.cipher else data[1:]
            except cc.CryptError:
                answer = b""
            if answer[:cc.CHALLENGE_SIZE] == p.challenge:
                self._auth_ok(p, now)
            else:
                self._deny(p, now)
        else:
            self.log(4, "Unknown/undesired pkt received. (state: %s code: 0x%X )" % (p.state, kind))
            if p.state != AUTH:
                self._deny(p, now)
            else:
                self._auth_ok(p, now)

    def _key_path(self, key_id: str) -> str:
        return self.o.preshared or "/tmp/.%s.key" % key_id

    def _login(self, p: Peer, key_id: str, now: float) -> None:
        if "/" in key_id:                              # an id names a file in /tmp only
            self._deny(p, now)
            return
        try:
            key, iv = _read_key(self._key_path(key_id))
        except (OSError, ValueError) as e:
            sys.stderr.write("blowfish.key open error: %s\n" % getattr(e, "strerror", e))
            self._deny(p, now)
            return
        p.cipher = cc.Cipher(key, iv) if self.o.encrypt else None
        p.key_id = key_id
        self.log(2, "Sending challenge... ")
        p.challenge = os.urandom(cc.CHALLENGE_SIZE)
        self.send(p.addr, bytes((cc.CHALLENGE,)) + p.challenge)
        p.state, p.expire = CHALLENGED, now + CHALLENGE_TIMEOUT
        self.log(2, "OK.\n")

    def _auth_ok(self, p: Peer, now: float) -> None:
        self.send(p.addr, bytes((cc.AUTH_OK,)))
        p.state, p.expire = AUTH, now + SESSION_TIMEOUT
        if p.plug is None:
            p.plug = self.open_plug()
            addr = p.addr
            self.watch_plug(p.plug, lambda frame, now: self._from_plug(addr, frame))
            self.log(3, "Socket to local switch created: fd=%d" % p.plug.fileno())

    def _from_plug(self, addr, frame: bytes) -> None:
        p = self.peers.get(addr)
        if p is not None and p.state == AUTH:
            self.send_frame(addr, frame, p.cipher)

    def _deny(self, p: Peer, now: float) -> None:
        self.send(p.addr, bytes((cc.DENY,)) + cc.DENY_TEXT)
        p.state, p.expire = CLOSED, now + PRELOGIN_TIMEOUT

    def _drop(self, p: Peer) -> None:
        if p.plug is not None:
            self.loop.forget(p.plug)
            p.plug.close()
            p.plug = None
        if p.state == AUTH and self.o.encrypt and not self.o.preshared and p.key_id:
            name = "/tmp/.%s.key" % p.key_id
            try:
                os.unlink(name)
                self.log(2, "Successfully removed key file %s" % name)
            except OSError:
                self.log(2, "Could not remove key file %s" % name)

    def _expire(self, now: float) -> None:
        for addr, p in list(self.peers.items()):
            if now > p.expire:
                self.log(1, "Client %s : expired." % addr[0])
                self._drop(p)
                del self.peers[addr]

    def close(self) -> None:
        for p in self.peers.values():
            self._drop(p)


# -- client --------------------------------------------------------------------
class Client(Cab):
    def __init__(self, o, loop):
        super().__init__(o, loop)
        self.state = CLOSED
        self.key_file = None
        self.last_login = None
        self.last_out = loop.clock()
        self.counter_in = 0
        try:
            infos = socket.getaddrinfo(o.remote_host, o.remote_port, socket.AF_INET,
                                       socket.SOCK_DGRAM)
        except (socket.gaierror, UnicodeError):
            sys.stderr.write("%s not found.\n" % o.remote_host)
            raise SystemExit(2)
        self.server = infos[0][4]
        self._new_key()
        self.plug = self.open_plug()
        self.watch_plug(self.plug, self._from_plug)
        loop.add_reader(self.sock, self._udp)
        loop.call_every(1.0, self._tick)
        self.state = OPENING
        self._try_login(loop.clock())

    def _new_key(self) -> None:
        """A key and IV (random, or the pre-shared file's), saved as
        /tmp/vde_XXXXXX.key, and sent with scp unless pre-shared."""
        o = self.o
        try:
            if o.preshared:
                self.log(2, "Reading pre-shared Blowfish key...")
                key, iv = _read_key(o.preshared)
            else:
                self.log(2, "Generating Blowfish key...")
                key, iv = os.urandom(cc.KEY_SIZE), os.urandom(cc.IV_SIZE)
        except (OSError, ValueError) as e:
            sys.stderr.write("Error Creating key.\n: %s\nCouldn't create the secret key.\n"
                             % getattr(e, "strerror", e))
            raise SystemExit(255)
        self._remove_key_file()
        fd, path = tempfile.mkstemp(prefix="vde_", suffix=".key", dir="/tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(key + iv)
        self.key_file = path
        self.key_id = os.path.basename(path)[:-4][:cc.ID_SIZE]
        self.cipher = cc.Cipher(key, iv) if o.encrypt else None
        if not o.preshared:
            self.log(2, "Sending key over ssh channel:")
            dest = "%s%s:/tmp/.%s.key" % (o.remote_user + "@" if o.remote_user else "",
                                          o.remote_host, self.key_id)
            extra = os.environ.get("SCP_EXTRA_OPTIONS")
            argv = ["scp"] + ([extra] if extra else []) + [path, dest]
            rc = subprocess.call(argv, stdout=sys.stderr.fileno())
            if rc != 0:
                sys.stderr.write("Couldn't transfer the secret key.\n")
                raise SystemExit(253)
            self.log(2, "Key successfully transferred using a secure channel.")
        self.log(2, "Done.")

    def _remove_key_file(self) -> None:
        if self.key_file is not None:
            try:
                os.unlink(self.key_file)
            except OSError:
                pass
            self.key_file = None

    def _try_login(self, now: float) -> None:
        if self.last_login is not None and now - self.last_login < LOGIN_RETRY:
            self.log(4, "Attempt to login to  %s (udp port %d): please wait, login in "
                        "progress..." % (self.o.remote_host, self.o.remote_port))
            return
        self.log(2, "Logging in to %s (udp port %d)" % (self.o.remote_host, self.o.remote_port))
        self.send(self.server, cc.login(self.key_id))
        self.last_login = now

    def _from_plug(self, frame: bytes, now: float) -> None:
        if self.state == AUTH:
            self.log(4, "VDE pkt received (%d Bytes)" % len(frame))
            self.send_frame(self.server, frame, self.cipher)
            self.last_out = now
        else:
            self._try_login(now)

    def _tick(self, now: float) -> None:
        if self.state == AUTH:
            if self.o.keepalive and now - self.last_out >= KEEPALIVE_INTERVAL:
                self.log(4, "Sending keepalive")
                self.send(self.server, bytes((cc.KEEPALIVE,)))
                self.last_out = now
        elif self.state == OPENING:
            self._try_login(now)

    def _udp(self, now: float) -> None:
        for data, addr in self.datagrams():
            if addr[0] != self.server[0]:
                self.log(1, "Warning: received packet from unknown address %s, dropping"
                         % addr[0])
                continue
            if data:
                self._handle(data, now)

    def _handle(self, data: bytes, now: float) -> None:
        kind = data[0]
        if self.state == OPENING and kind == cc.CHALLENGE:
            self.log(2, "Received Challenge packet, replying:")
            answer = data[1:]
            if self.cipher is not None:
                answer = self.cipher.encrypt(answer)
            self.send(self.server, bytes((cc.RESPONSE,)) + answer)
            self.state = WAIT_AUTH
        elif self.state == WAIT_AUTH and kind == cc.AUTH_OK:
            self.state, self.counter_in = AUTH, 0
            self.log(2, "Successfully authenticated.")
        elif self.state == AUTH and kind == cc.DATA:
            self.log(4, "Data pkt received (%d Bytes)" % len(data))
            try:
                frame, counter = cc.decode_data(data, self.cipher)
            except cc.CryptError as e:
                self.log(2, "Dropped a datagram: %s" % e)
                return
            if counter is not None:
                if counter <= self.counter_in:
                    self.log(2, "Dropped a replayed datagram")
                    return
                self.counter_in = counter
            try:
                self.plug.send(frame)
            except OSError:
                pass
        elif kind == cc.DENY and self.state in (OPENING, WAIT_AUTH, AUTH):
            self.log(2, "Received access denied from server, sending identification.")
            self._new_key()
            self.state, self.last_login = OPENING, None
            self._try_login(now)
        else:
            self.log(4, "Unknown/undesired pkt received. (state: %s code: 0x%X )"
                     % (self.state, kind))

    def close(self) -> None:
        self._remove_key_file()
        self.loop.forget(self.plug)
        self.plug.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    prog = argv[0] if argv else "vde_cryptcab"
    try:
        o = parse(argv)
    except Usage:
        sys.stderr.write("Usage: %s [-s socketname] [-c [remoteuser@]remotehost[:remoteport]] "
                         "[-p localport] [-P pre-shared/key/path] [-d] [-x] [-v]\n" % prog)
        return 1
    def log(level: int, msg: str) -> None:
        if o.verbose >= level:
            sys.stderr.write("vde_cryptcab: %s\n" % msg)
    log(1, "Verbosity: %d" % o.verbose)
    if not o.encrypt:
        log(1, "Encryption Disabled.")
    elif o.preshared:
        log(1, "Using pre-shared key %s" % o.preshared)
    else:
        log(1, "Using ssh key exchange for authentication")
    if o.preshared and not os.access(o.preshared, os.R_OK):
        why = os.strerror(errno.ENOENT if not os.path.exists(o.preshared) else errno.EACCES)
        if o.remote_host is None:
            sys.stderr.write("Error accessing pre-shared key %s\naccess: %s\n" % (o.preshared, why))
        else:
            sys.stderr.write("vde_cryptcab: Error accessing pre-shared key %s: %s\n\n"
                             % (o.preshared, why))
        return 1
    if o.daemon:
        daemonize()
    loop = Loop()
    cab = None
    try:
        try:
            cab = (Server if o.remote_host is None else Client)(o, loop)
        except OSError as e:
            if e.errno == errno.EADDRINUSE or isinstance(e, PermissionError):
                sys.stderr.write("bind socket: %s\n" % e.strerror)
                return 3
            raise
        caught = []

        def stop(signum: int) -> None:
            caught.append(signum)
            loop.stop()
        for num in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(num, stop)
        loop.run()
        if caught:
            cab.log(1, "Caught signal, exiting.")
        return 0
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    finally:
        if cab is not None:
            cab.close()
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
