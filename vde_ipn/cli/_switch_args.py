"""vde_switch's command line, parsed as 2.3.2 parses it.

Options take effect (or fail) in argv order, as the C switch's
parse_args() loop applies them, so that getopt's diagnostics and the
switch's own messages come out interleaved in the same order.
"""

from __future__ import annotations

import grp
import re
import sys

from ..engine.switch.monitor import parse_selection
from ..io.switch.server import SwitchConfig
from ..wire.mgmt import VERSION
from ..wire.c_numbers import scan_int, scan_octal
from ._getopt import LongOpt, getopt_long_only
from ._logging import LOG_ERR, LOG_WARNING, Logger

# vde_switch 2.3.2's table: global options, then the datasock, consmgmt and
# tuntap modules.  The order shows in "ambiguous" messages.
LONGOPTS = (
    LongOpt("help", 0, "h"), LongOpt("hub", 0, "x"), LongOpt("fstp", 0, "F"),
    LongOpt("version", 0, "v"), LongOpt("numports", 1, "n"),
    LongOpt("hashsize", 1, "hashsize"), LongOpt("macaddr", 1, "macaddr"),
    LongOpt("priority", 1, "priority"),
    LongOpt("sock", 1, "s"), LongOpt("vdesock", 1, "s"), LongOpt("unix", 1, "s"),
    LongOpt("mod", 1, "m"), LongOpt("mode", 1, "m"), LongOpt("dirmode", 1, "dirmode"),
    LongOpt("group", 1, "g"),
    LongOpt("daemon", 0, "d"), LongOpt("pidfile", 1, "p"), LongOpt("rcfile", 1, "f"),
    LongOpt("mgmt", 1, "M"), LongOpt("mgmtmode", 1, "mgmtmode"),
    LongOpt("mgmtgroup", 1, "mgmtgroup"), LongOpt("debugclients", 1, "D"),
    LongOpt("tap", 1, "t"),
    LongOpt("ethmax", 1, "ethmax"),     # ours; no 2.3.2 option starts with "e"
    LongOpt("lossless", 0, "lossless"),  # ours; no 2.3.2 option starts with "l"
)
# short options as 2.3.2 derives them from the table (consecutive duplicates dropped)
SHORTOPTS = "hxFvn:s:m:g:dp:f:M:D:t:G:"
# the exact words meaning "no stdin console"; stand-ins that getopt sees as operands
NOSTDIN_WORDS = {"-nostdin": "\0-nostdin", "--nostdin": "\0--nostdin"}
# ours: -G IFACE, and --grab/-grab only as whole words ("--g", "-gr" stay --group)
GRAB_WORDS = ("-grab", "--grab")
# ours, whole words only (no 2.3.2 option starts with "du" or "mon", and
# "-du"/"--mon" keep 2.3.2's meaning): each becomes one stand-in operand
EXTENSION_WORDS = {"-dump": "dump", "--dump": "dump", "-monitor": "monitor",
                   "--monitor": "monitor",
                   # QEMU's -netdev stream/dgram clients (io/switch/qemu_sock.py); no
                   # 2.3.2 option starts with "q", whole words all the same
                   "-qemu-stream": "qemu_stream", "--qemu-stream": "qemu_stream",
                   "-qemu-dgram": "qemu_dgram", "--qemu-dgram": "qemu_dgram"}
# extension words kept on Options rather than on the switch's config
OPTION_WORDS = ("qemu_stream", "qemu_dgram")

USAGE = """\
Usage: vde_switch [OPTIONS]
Runs a VDE switch (vde-ipn drop-in).
(global opts)
  -h, --help                 Show this help and exit
  -v, --version              Show the version and exit
  -n  --numports N           Number of ports, port 0 included (default 32)
  -x, --hub                  Behave as a hub instead of a learning switch
  -F, --fstp                 Fast spanning tree (compatible with vde_switch -F)
      --macaddr MAC          Switch MAC address
      --priority N           FST priority
      --hashsize N           MAC table size shown by hash/showinfo
      --ethmax N             Largest frame accepted (default 9234: jumbo frames)
      --lossless             Never drop for a full receiver: pause its senders
      --nostdin              Do not use stdin as a console
(opts from datasock module)
  -s, --sock SOCK            Control directory (also --vdesock, --unix)
  -m, --mode MODE            Permissions of the control socket (octal)
      --dirmode MODE         Permissions of the control directory (octal)
  -g, --group GROUP          Group owner of the sockets
(opts from consmgmt module)
  -d, --daemon               Run in the background, log to syslog
  -p, --pidfile PIDFILE      Write the pid to PIDFILE
  -f, --rcfile FILE          Console commands to run at start
  -M, --mgmt SOCK            Management console UNIX socket
      --mgmtmode MODE        Permissions of the management socket (octal)
      --mgmtgroup GROUP      Group owner of the management socket
  -D, --debugclients N       Accepted, ignored (as in vde_switch 2.3.2)
(opts from tuntap module)
  -t, --tap TAP              Attach a TAP interface (created if missing)
(opts of vde-ipn)
  -G, --grab IFACE           Join an existing interface to the switch
      --monitor PORT[:PORTS[:VLANS]]  Copy traffic (of PORTS/VLANS) to PORT
      --dump FILE            Write every frame to FILE (pcap)
      --qemu-stream PATH     Unix stream socket for QEMU -netdev stream clients
      --qemu-dgram PATH      Unix datagram socket for QEMU -netdev dgram clients
                             (both get the mode and group of -m and -g)
"""

VERSION_TEXT = """\
VDE %s
vde-ipn drop-in vde_switch, on the IPN engine.
Free software under the GNU General Public License v2 or later.
""" % VERSION


class Options:
    """The parsed command line, before anything is created."""

    def __init__(self):
        self.config = SwitchConfig()
        self.hashsize = 128                # as given; rounded by hash_size()
        self.fstp = False
        self.daemon = False
        self.pidfile: str | None = None
        self.rcfile: str | None = None
        self.nostdin = False
        self.taps: list[str] = []
        self.grabs: list[str] = []
        self.qemu_stream: str | None = None
        self.qemu_dgram: str | None = None


def parse(argv: list[str], log: Logger) -> Options:
    """Parse argv as vde_switch 2.3.2 does; raise SystemExit where it exits."""
    words = [NOSTDIN_WORDS.get(w, w) for w in _extension_words(_grab_words(argv[1:]))]
    restore = {v: k for k, v in NOSTDIN_WORDS.items()}
    res = getopt_long_only([argv[0] if argv else "vde_switch"] + words, SHORTOPTS, LONGOPTS)
    errors = iter(res.errors)
    o = Options()
    for key, val in res.opts:
        if key in ("?", ":"):
            _err(next(errors, None))
        else:
            _apply(o, key, restore.get(val, val), log)
    operands = [w for w in res.operands if w not in restore]
    o.nostdin = len(operands) != len(res.operands)
    for w in [w for w in operands if w.startswith("\0")]:
        name, _, val = w[1:].partition("=")
        setattr(o if name in OPTION_WORDS else o.config, name, val)
        if name == "monitor":
            try:
                parse_selection(val, o.config.numports)
            except ValueError as e:
                log("Invalid monitor %s: %s" % (val, e), LOG_ERR)
                _usage()
    operands = [w for w in operands if not w.startswith("\0")]
    if operands:
        _usage()
    return o


def apply_shared(o, settings, key: str, val, usage: str, version_text: str) -> bool:
    """The options vde_switch and kvde_switch share, applied as both do;
    False for any other ``key``.  ``o`` takes daemon, pidfile and rcfile,
    ``settings`` (the switch's config, or kvde's options) mode, mgmt and
    mgmtmode; ``-h`` prints ``usage`` and exits 1, ``-v`` ``version_text``
    and exits 0."""
    if key == "h":
        _usage(usage)
    elif key == "v":
        sys.stdout.write(version_text)
        sys.stdout.flush()
        raise SystemExit(0)
    elif key == "m":
        settings.mode = _keep(scan_octal(val), settings.mode)
    elif key == "d":
        o.daemon = True
    elif key == "p":
        o.pidfile = val
    elif key == "f":
        o.rcfile = val
    elif key == "M":
        settings.mgmt = val
    elif key == "mgmtmode":
        settings.mgmtmode = _keep(scan_octal(val), settings.mgmtmode)
    else:
        return False
    return True


def _apply(o: Options, key: str, val, log: Logger) -> None:
    c = o.config
    if apply_shared(o, c, key, val, USAGE, VERSION_TEXT):
        return
    if key == "x":
        c.hub, o.fstp = True, False
    elif key == "F":
        o.fstp = o.fstp or not c.hub
    elif key == "n":
        c.numports = _keep(scan_int(val), c.numports)
    elif key == "hashsize":
        o.hashsize = _keep(scan_int(val), o.hashsize)
    elif key == "priority":
        n = scan_int(val)
        if n is not None:
            c.priority = n & 0xFFFF
    elif key == "macaddr":
        c.macaddr = scan_mac(val)
        if c.macaddr is None:
            log("Invalid MAC Addr %s" % val, LOG_ERR)
            _usage()
    elif key == "ethmax":
        n = scan_int(val)
        if n is None or n < 14:
            log("Invalid frame size %s" % val, LOG_ERR)
            _usage()
        c.max_frame = n
    elif key == "lossless":
        c.lossless = True
    elif key == "s":
        c.sock = val
    elif key == "dirmode":
        c.dirmode = _keep(scan_octal(val), c.dirmode)
    elif key == "g":
        c.gid = _group(val)
    elif key == "mgmtgroup":
        c.mgmt_gid = _group(val)
    elif key == "t":
        o.taps.append(val)
    elif key == "G":
        o.grabs.append(val)
    # "D" (--debugclients) is accepted and ignored, as in 2.3.2


# short options whose argument is the next word (the scanners skip it)
_TAKES_ARG = {"-" + c for c in "nsmgpfMDtG"}


def _scan_words(words: list[str], rewrite) -> list[str]:
    """Rewrite whole argv words before getopt sees them.

    ``rewrite(word, following)`` (``following``: the next word or None)
    returns None to keep ``word``, else ``(new words, whether following
    was taken too)``.  The word after a short option that takes an
    argument is left alone, and so is everything after ``--``.
    """
    out, i = [], 0
    while i < len(words):
        w = words[i]
        if w == "--":
            return out + words[i:]
        following = words[i + 1] if i + 1 < len(words) else None
        new = rewrite(w, following)
        if new is not None:
            out.extend(new[0])
            i += new[1]
        else:
            out.append(w)
            if w in _TAKES_ARG and following is not None:
                i += 1
                out.append(following)
        i += 1
    return out


def _grab_words(words: list[str]) -> list[str]:
    """``--grab X``, ``--grab=X`` (and single-dash forms) as ``-G X``.

    Whole words only, so that every prefix keeps its 2.3.2 meaning.
    """
    def grab(word, _following):
        name, eq, val = word.partition("=")
        if name not in GRAB_WORDS:
            return None
        return (["-G", val] if eq else ["-G"]), False
    return _scan_words(words, grab)


def _extension_words(words: list[str]) -> list[str]:
    """``--dump FILE``, ``--monitor=SPEC``... (and single-dash forms) as
    stand-in operands ``"\0dump=FILE"`` that getopt leaves alone.

    Whole words only; a final ``--dump`` without its argument is left for
    getopt to reject, as 2.3.2 does.
    """
    def extension(word, following):
        name, eq, val = word.partition("=")
        if name not in EXTENSION_WORDS or not (eq or following is not None):
            return None
        return ["\0%s=%s" % (EXTENSION_WORDS[name], val if eq else following)], not eq
    return _scan_words(words, extension)


def _keep(new, old):
    """``sscanf`` leaves its target alone when nothing matches."""
    return old if new is None else new


def _err(line) -> None:
    if line is not None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _usage(usage: str = USAGE) -> None:
    sys.stdout.write(usage)
    sys.stdout.flush()
    raise SystemExit(1)


def _group(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        sys.stderr.write("No such group '%s'\n" % name)
        raise SystemExit(1)


_HEX = re.compile(r"[ \t\n\v\f\r]*([+-]?)(?:0[xX](?=[0-9a-fA-F]))?([0-9a-fA-F]+)")


def scan_mac(text: str) -> bytes | None:
    """``sscanf("%x:%x:%x:%x:%x:%x")`` (``.`` separators when there is no
    ``:``), each value cut to a byte as 2.3.2 stores it; None unless all
    six values convert.  Text after the sixth value is ignored."""
    sep = ":" if ":" in text else "."
    out, pos = [], 0
    for i in range(6):
        if i:
            if not text.startswith(sep, pos):
                return None
            pos += 1
        m = _HEX.match(text, pos)
        if m is None:
            return None
        value = int(m.group(2), 16)
        out.append((-value if m.group(1) == "-" else value) & 0xFF)
        pos = m.end()
    return bytes(out)


def hash_size(n: int, log: Logger) -> int:
    """The MAC table size 2.3.2 uses for ``--hashsize n`` (a power of 2)."""
    size = 1
    while size < n:
        size <<= 1
    if n > 0 and size != n:
        log("Hash size must be a power of 2. %d rounded to %d" % (n, size), LOG_WARNING)
    return size
