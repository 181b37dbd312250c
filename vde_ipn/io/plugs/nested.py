"""Schemes wrapped around another VNL: ``vlan://``, ``agno://``, ``tee://``.

Each takes ``HEAD{VNL}``: the inner VNL is opened with ``open_plug``
(any scheme of ours, nested as deep as wanted; no ``{VNL}`` means the
default switch, as in vdeplug4) and every frame is rewritten on its way
in and out by a pure object (:mod:`vde_ipn.wire.vlan_view`,
:mod:`vde_ipn.wire.agno`) or copied to a file.

* ``vlan://[N][/OPT...]{VNL}`` or ``vlan://[N][OPT/...]{VNL}``: a VLAN
  view of VNL, as libvdeplug_vlan.  Options ``untag=M`` (``u``),
  ``tag=LIST`` (``t``), ``trunk`` (``x``), ``qinq`` (``q``, ``ad``).
  vdeplug4 reads options after ``/`` only (its manual's ``N[...]`` form
  loses the first option); both forms work here.
* ``agno://[KEYFILE][[ethtype=T]]{VNL}``: AES-encrypted frames,
  wire-compatible with libvdeplug_agno.  KEYFILE is absolute or ``~/``
  (default ``~/.vde_agno_key``, in the home of the effective user).
* ``tee://FILE[[snaplen=N]]{VNL}``: VNL unchanged, every frame in either
  direction also written to FILE in pcap format (tcpdump -r, Wireshark),
  one flushed record per frame.  Not in vdeplug4.
"""

from __future__ import annotations

import errno
import os
import pwd
import random
import time

from ..._errors import ConnectError
from ...wire import pcap
from ...wire.agno import AgnoCipher, AgnoError, key_from_text, parse_ethtype
from ...wire.c_numbers import strtol
from ...wire.vlan_view import VlanView, parse_tag_list
from ...wire.vnl import parse_head_options, parse_path_options, split_nested
from .endpoints import Plug

VLAN_KEYS = ("u", "untag", "t", "tag", "x", "trunk", "q", "qinq", "ad")
AGNO_KEYS = ("ethtype",)
TEE_KEYS = ("snaplen",)
DEFAULT_AGNO_KEYFILE = ".vde_agno_key"
AGNO_OVERHEAD = 32                       # header block + padding


class Wrapped:
    """The data object of a nested plug: ``inner`` seen through two rewrites.

    ``out(frame)`` and ``into(frame)`` return the frame to pass on, or
    None to drop it.
    """

    def __init__(self, inner: Plug, out, into, extra: int = 0, module: str = "nested"):
        self.inner = inner
        self._out, self._into = out, into
        self._extra = extra
        self.module = module
        self._send, self._recv = inner.send, inner.recv

    def fileno(self) -> int:
        return self.inner.fileno()

    def send(self, frame) -> int:
        rewritten = self._out(frame)
        if rewritten is not None:
            self._send(rewritten)
        return len(frame)

    def recv(self, bufsize: int) -> bytes:
        while True:                      # BlockingIOError from inner ends the loop
            frame = self._recv(bufsize + self._extra)
            if not frame:
                return frame
            rewritten = self._into(frame)
            if rewritten is not None:
                return rewritten

    def close(self) -> None:
        self.inner.close()


def _wrap(inner: Plug, out, into, scheme: str, extra: int = 0) -> Plug:
    return Plug(Wrapped(inner, out, into, extra, scheme), inner.ctl, scheme=scheme,
                hangup_on_empty=inner.hangup_on_empty)


def _open_inner(open_plug, nested, kw) -> Plug:
    return open_plug(nested or "", kw.get("descr", "vdeplug:"), port=kw.get("port"),
                     group=kw.get("group"), mode=kw.get("mode"),
                     timeout=kw.get("timeout", 5.0), loop=kw.get("loop"))


# -- vlan:// -----------------------------------------------------------------
def vlan_view(head: str) -> VlanView:
    """The :class:`VlanView` a ``vlan://`` head (``N/opt/...`` or ``N[opt/...]``) asks for."""
    if "[" in head:
        number, opts = parse_path_options(head, VLAN_KEYS)
    else:
        number, opts = parse_head_options(head, VLAN_KEYS)

    def pick(*names):
        for n in names:
            if n in opts:
                return opts[n]
        return None
    return VlanView(strtol(number),
                    tag2untag=strtol(pick("untag", "u") or ""),
                    tags=parse_tag_list(pick("tag", "t") or ""),
                    trunk=pick("trunk", "x") is not None,
                    qinq=pick("qinq", "q", "ad") is not None)


def open_vlan(open_plug):
    def opener(arg, **kw) -> Plug:
        head, nested = split_nested(arg)
        view = vlan_view(head)
        inner = _open_inner(open_plug, nested, kw)
        return _wrap(inner, view.to_net, view.from_net, "vlan", 4)
    return opener


# -- agno:// -----------------------------------------------------------------
def agno_keyfile(name: str) -> str:
    """Where the C plugin looks for KEYFILE (raises ConnectError as it fails)."""
    try:
        home = pwd.getpwuid(os.geteuid()).pw_dir
    except KeyError:
        raise ConnectError(errno.ENOENT, "agno: the effective user has no home") from None
    if not name:
        return os.path.join(home, DEFAULT_AGNO_KEYFILE)
    if name.startswith("~"):
        return home + "/" + name[1:]
    if name.startswith("/"):
        return name
    raise ConnectError(errno.EINVAL, "agno://%s: the key file must be absolute or ~/..."
                       % name)


def open_agno(open_plug):
    def opener(arg, **kw) -> Plug:
        head, nested = split_nested(arg)
        keyname, opts = parse_path_options(head, AGNO_KEYS)
        path = agno_keyfile(keyname)
        try:
            with open(path, "rb") as f:
                text = f.read(65536)
        except OSError:
            raise ConnectError(errno.ENOENT, "agno: cannot read key file %s" % path) from None
        try:
            cipher = AgnoCipher(key_from_text(text), parse_ethtype(opts.get("ethtype", "")))
        except AgnoError as e:
            raise ConnectError(errno.EINVAL, "agno: %s" % e) from None
        inner = _open_inner(open_plug, nested, kw)

        def out(frame):
            if len(frame) < 14:
                return None
            return cipher.encrypt(frame, int(time.time()), os.urandom(4),
                                  0x600 + random.randrange(0xF9FF))

        def into(frame):
            return cipher.decrypt(frame, int(time.time()))
        return _wrap(inner, out, into, "agno", AGNO_OVERHEAD)
    return opener


# -- tee:// ------------------------------------------------------------------
class PcapTee:
    """Frames appended to a pcap file as they pass (one flushed record each)."""

    def __init__(self, path: str, snaplen: int = pcap.DEFAULT_SNAPLEN):
        self.snaplen = snaplen
        self.file = open(path, "wb")
        self.file.write(pcap.encode_file_header(snaplen))
        self.file.flush()

    def __call__(self, frame):
        if self.file is not None:
            try:
                self.file.write(pcap.encode_record(time.time(), frame, self.snaplen))
                self.file.flush()
            except OSError:              # disk full: the cable keeps working
                pass
        return frame

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def open_tee(open_plug):
    def opener(arg, **kw) -> Plug:
        head, nested = split_nested(arg)
        path, opts = parse_path_options(head, TEE_KEYS)
        if not path:
            raise ConnectError(errno.EINVAL, "tee:// needs a file name: tee://FILE{VNL}")
        snaplen = strtol(opts.get("snaplen", "")) or pcap.DEFAULT_SNAPLEN
        if snaplen < 14:
            raise ConnectError(errno.EINVAL, "tee://: snaplen below 14")
        try:
            tee = PcapTee(path, snaplen)
        except OSError as e:
            raise ConnectError(e.errno or errno.EIO, "tee://%s: %s"
                               % (path, e.strerror or e)) from None
        try:
            inner = _open_inner(open_plug, nested, kw)
        except BaseException:
            tee.close()
            raise
        plug = _wrap(inner, tee, tee, "tee")
        inner_close = plug.data.close

        def close():
            inner_close()
            tee.close()
        plug.data.close = close
        return plug
    return opener
