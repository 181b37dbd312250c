"""The client side of VDE: open a network locator (VNL) and exchange frames.

:func:`open_plug` is what ``vde_open`` is to C programs: it resolves the
VNL as vdeplug4 does and returns a :class:`Plug` with ``send``, ``recv``,
``fileno`` (for poll/select) and ``close``.  Schemes:

* ``vde://PATH[PARAMS]`` and plain paths: a vde_switch client (ours or the
  C one); the reply is awaited with a timeout, so a switch that never
  answers (2.3.2 with no free port) gives a clear error, not a hang;
* ``null://``, ``seqpacket://FD``, ``ptp://PATH``: no switch involved
  (see :mod:`vde_ipn.io.plugs.endpoints`);
* ``hub://PATH`` and ``switch://PATH``: a network hosted in this process
  (needs the caller's event loop), reachable by other clients at PATH;
* ``tap://NAME`` and ``grab://IFACE``: the kernel's network stack
  (see :mod:`vde_ipn.io.plugs.tap` and :mod:`vde_ipn.io.plugs.grab`);
* ``multi://PATH`` and ``bonding://PATH``: vdeplug4's multilink nodes,
  hosted in this process like ``hub://`` (see :mod:`vde_ipn.engine.netnode`);
* ``cmd://COMMAND``: a command's stdin/stdout (:mod:`vde_ipn.io.plugs.cmd`);
* ``vlan://``, ``agno://`` and ``tee://`` around a nested ``{VNL}``
  (:mod:`vde_ipn.io.plugs.nested`); ``pcap://IFACE`` (:mod:`vde_ipn.io.plugs.pcap`);
  ``ipn://PATH``, a node of an IPN network (:mod:`vde_ipn.io.plugs.ipn`);
* ``slirp://[/OPTION...]``: a user-mode NAT router with DHCP and DNS,
  run by the caller's event loop (see :mod:`vde_ipn.io.plugs.slirp`);
* ``qemu-stream://PATH``, ``qemu-dgram://PATH`` and ``passt://``: QEMU's
  own netdevs and passt (see :mod:`vde_ipn.io.plugs.qemu`);
* any other scheme: vdeplug4's plugin for it, if the machine has one
  (:mod:`vde_ipn.io.plugs.cplugin`), else EPROTONOSUPPORT naming the scheme.
"""

from __future__ import annotations

import errno
import os
import socket

from ..._errors import ConnectError, RemoteProtocolError
from ...wire import vde_ctl
from ...wire.vnl import VnlError, parse_path_options, parse_vde
from . import nested
from .cmd import open_cmd_plug
from .cplugin import open_c_plugin
from .endpoints import Plug, group_id, open_null, open_ptp, open_seqpacket
from .grab import open_grab_plug
from .ipn import open_ipn_plug
from .pcap import open_pcap_plug
from .slirp import open_slirp_plug
from .tap import open_tap_plug
from .vnl_resolve import default_switch_dirs, resolve, vde_description

REPLY_TIMEOUT = 5.0
DATA_FALLBACK_DIRS = ("/var/run", "/var/tmp", "/tmp")
RECV_MAX = 9216 + 14 + 4


def open_plug(vnl: str | None, descr: str = "vdeplug:", *, port: int | None = None,
              group: str | None = None, mode: int | None = None,
              timeout: float = REPLY_TIMEOUT, loop=None) -> Plug:
    """Open ``vnl``; raise :class:`ConnectError` (with an errno) on failure.

    ``port``: None any, 0 management port, N port N; a ``[N]`` in the VNL wins.
    ``group``/``mode``: owner group and mode of our data socket.
    """
    scheme, arg = resolve(vnl)
    opener = SCHEMES.get(scheme)
    if opener is None:
        return open_c_plugin(scheme, "%s://%s" % (scheme, arg), descr=descr, port=port,
                             group=group, mode=mode)
    try:
        return opener(arg, descr=descr, port=port, group=group, mode=mode,
                      timeout=timeout, loop=loop)
    except VnlError as e:
        raise ConnectError(errno.EINVAL, str(e)) from e


# -- vde:// ------------------------------------------------------------------
def _open_vde(arg, *, descr, port, group, mode, timeout, loop) -> Plug:
    addr = parse_vde(arg)
    if addr.port is not None:
        port = addr.port
    group = addr.group if addr.group is not None else group
    mode = addr.mode if addr.mode is not None else mode
    ctl, switch_dir = _connect_ctl(addr.path, addr.portgroup, port)
    data = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    own = None
    try:
        own = _bind_data(data, switch_dir)
        mode = _own_socket_perms(own, ctl_path=os.path.join(switch_dir, "ctl"),
                                 group=group, mode=0o700 if mode is None else mode)
        request = vde_ctl.encode_request(own, port=port,
                                         description=vde_description(descr))
        ctl.settimeout(timeout)
        ctl.send(request)
        try:
            reply = _recv_reply(ctl)
        except socket.timeout:
            raise ConnectError(errno.ETIMEDOUT, "the switch did not answer within %gs "
                               "(no free port?)" % timeout) from None
        if not reply:
            raise ConnectError(errno.ECONNREFUSED, "the switch refused the connection "
                               "(no free port, port in use or access denied)")
        try:
            remote = vde_ctl.decode_reply(reply)
        except RemoteProtocolError as e:
            raise ConnectError(errno.EPROTO, str(e)) from e
        data.connect(remote)
        if isinstance(remote, str):
            try:
                os.chmod(remote, mode)
            except OSError:
                pass
        try:
            os.unlink(own)
        except OSError:
            pass
    except BaseException as e:
        data.close()
        ctl.close()
        if own is not None:
            try:
                os.unlink(own)
            except OSError:
                pass
        if isinstance(e, OSError):
            # e.g. the switch went away between its reply and our connect
            raise ConnectError(e.errno or errno.EIO, str(e)) from e
        raise
    ctl.settimeout(None)
    ctl.setblocking(False)
    data.setblocking(False)
    return Plug(data, ctl, scheme="vde")


def _recv_reply(ctl: socket.socket) -> bytes:
    buf = b""
    while len(buf) < vde_ctl.SOCKADDR_LEN:
        chunk = ctl.recv(vde_ctl.SOCKADDR_LEN - len(buf))
        if not chunk:
            return buf
        buf += chunk
    return buf


def _connect_ctl(path: str, portgroup: str | None, port: int | None):
    """Connect ``PATH/ctl`` (or ``PATH/GROUP``); return (sock, real dir)."""
    candidates = [path] if path else list(default_switch_dirs())
    last = None
    for cand in candidates:
        try:
            real = _realpath_strict(cand)
        except OSError as e:
            last = e
            continue
        if not os.path.isdir(real):
            last = OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            continue
        names = []
        if portgroup:
            names.append(portgroup)
        names.append("ctl")
        for name in names:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(os.path.join(real, name))
                return s, real
            except OSError as e:
                s.close()
                last = e
    err = last.errno if last is not None and last.errno else errno.ENOENT
    raise ConnectError(err, os.strerror(err))


def _realpath_strict(path: str) -> str:
    real = os.path.realpath(path)
    os.stat(real)
    return real


def _bind_data(data: socket.socket, switch_dir: str) -> str:
    pid = os.getpid()
    dirs = [switch_dir] + list(DATA_FALLBACK_DIRS)
    last = None
    for i, d in enumerate(dirs):
        seq = 0
        while True:
            path = ("%s/.%05d-%05d" if i == 0 else "%s/vde.%05d-%05d") % (d, pid, seq)
            try:
                data.bind(path)
                return path
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    seq += 1
                    continue
                last = e
                break
    raise ConnectError(last.errno, "cannot bind a data socket: %s" % last.strerror)


def _own_socket_perms(path: str, *, ctl_path: str, group, mode: int) -> int:
    """Let the switch's user reach our data socket; return the mode used."""
    if group is not None and group != "":
        os.chown(path, -1, group_id(group))
    elif mode & 0o077 == 0:
        st = os.stat(ctl_path)
        if st.st_uid not in (0, os.geteuid()):
            try:
                os.chown(path, -1, st.st_gid)
                mode |= 0o070
            except OSError:
                mode |= 0o077
    os.chmod(path, mode)
    return mode


# -- in-process networks ----------------------------------------------------
_HOST_PORT = 1                           # the opener's own port on the node
_NODE_KEYS = ("mode", "dirmode", "grp", "hashsize", "hashseed", "expiretime")


def _open_node(kind: str):
    def opener(arg, *, descr, loop, **_):
        from ..switch.server import SwitchConfig, SwitchServer
        if loop is None:
            raise ConnectError(errno.EINVAL, "%s:// needs an event loop" % kind)
        path, opts = parse_path_options(arg, _NODE_KEYS)
        if not path:
            import pwd
            path = "/tmp/vdenode_%s" % pwd.getpwuid(os.geteuid()).pw_name
        cfg = SwitchConfig(sock=path, hub=(kind != "switch"))
        try:
            if "mode" in opts:
                cfg.mode = int(opts["mode"], 8)
            if "dirmode" in opts:
                cfg.dirmode = int(opts["dirmode"], 8)
            if "expiretime" in opts:
                cfg.expire = float(opts["expiretime"])
        except ValueError as e:
            raise ConnectError(errno.EINVAL, "%s://%s: %s" % (kind, arg, e)) from e
        if "grp" in opts:
            cfg.gid = group_id(opts["grp"])
        server = SwitchServer(cfg, loop)
        try:
            server.start()
        except OSError as e:
            raise ConnectError(e.errno or errno.EADDRINUSE, "%s://%s: %s"
                               % (kind, path, e.strerror or e)) from e
        sock = server.attach_local(vde_description(descr), want=_HOST_PORT)
        if kind in ("multi", "bonding"):
            server.net.set_policy(kind, host=_HOST_PORT)
        sock.setblocking(False)
        return Plug(sock, None, scheme=kind, owner=server)
    return opener


SCHEMES = {
    "vde": _open_vde,
    "null": open_null,
    "seqpacket": open_seqpacket,
    "ptp": open_ptp,
    "hub": _open_node("hub"),
    "switch": _open_node("switch"),
    "multi": _open_node("multi"),
    "bonding": _open_node("bonding"),
    "cmd": open_cmd_plug,
    **__import__("vde_ipn.io.plugs.overlay", fromlist=["SCHEMES"]).SCHEMES,   # vxvde, vxlan, udp
    "tap": open_tap_plug,
    "grab": open_grab_plug,
    "pcap": open_pcap_plug,
    "ipn": open_ipn_plug,
    "slirp": open_slirp_plug,
    **__import__("vde_ipn.io.plugs.qemu", fromlist=["SCHEMES"]).SCHEMES,  # qemu-*, passt
}
SCHEMES.update(vlan=nested.open_vlan(open_plug), agno=nested.open_agno(open_plug),
               tee=nested.open_tee(open_plug))
