"""wirefilter's management console commands (2.3.2), sans-IO.

:func:`run_command` takes one input line and a :class:`Channel` and
returns a :class:`Reply`: the text to write (data block, status line)
and whether the session ends (``logout``) or the program (``shutdown``).
A line is matched against the command table in 2.3.2's order and must
*start with* a command name (``bandwidth 1000`` and ``band 1000`` both
set the bandwidth); empty lines and ``#`` comments do nothing and print
nothing.  Unknown commands answer ``1038 Function not implemented``.
Markov mode (:mod:`vde_ipn.engine.wirefilter.markov`): ``markov-numnodes``,
``markov-setnode``, ``markov-name``, ``markov-time``, ``setedge``,
``showinfo n``, ``showedges [n]``, ``showcurrent`` and ``markov-debug``
(the session's debug level, kept by the io layer: :attr:`Reply.debug`).
Node changes caused by a command (``markov-numnodes`` and
``markov-time`` take a step at once) are returned in
:attr:`Reply.transitions` for the io layer to report to the sessions
whose debug level is above 0, before the command's own answer.

``load PATH`` reads a file through the ``read_file`` callable given by
the io layer and echoes each line after the prompt, as 2.3.2 does.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

from .channel import Channel, ValueError_
from ...wire.c_numbers import atoi

PROMPT = "\nVDEwf$ "
BANNER = "\nVDE wirefilter V.2.3.2\n(C) R.Davoli 2005,2006 - GPLv2\n"
LINE_MAX = 128

HELP = [
    "COMMAND      HELP",
    "------------ ------------",
    "help         print a summary of mgmt commands",
    "load         load a configuration file",
    "showinfo     show status and parameter values",
    "loss         set loss percentage",
    "lostburst    mean length of lost packet bursts",
    "delay        set delay ms",
    "dup          set dup packet percentage",
    "bandwidth    set channel bandwidth bytes/sec",
    "speed        set interface speed bytes/sec",
    "noise        set noise factor bits/Mbyte",
    "mtu          set channel MTU (bytes)",
    "chanbufsize  set channel buffer size (bytes)",
    "fifo         set channel fifoness",
    "shutdown     shut the channel down",
    "logout       log out from this mgmt session",
    "markov-numnodes n  markov mode: set number of states",
    "markov-setnode n   markov mode: set current state",
    "markov-name n,name markov mode: set state's name",
    "markov-time ms     markov mode: transition period",
    "setedge n1,n2,w    markov mode: set edge weight",
    "showinfo n         markov mode: show parameter values",
    "showedges n        markov mode: show edge weights",
    "showcurrent        markov mode: show current state",
    "markov-debug n     markov mode: set debug level",
]

# name -> (parameter or handler key, prints a data block)
TABLE = [
    ("help", "help", True), ("showinfo", "showinfo", True), ("load", "load", True),
    ("delay", "delay", False), ("loss", "loss", False), ("lostburst", "lostburst", False),
    ("dup", "dup", False), ("bandwidth", "band", False), ("band", "band", False),
    ("speed", "speed", False), ("chanbufsize", "chanbufsize", False),
    ("capacity", "chanbufsize", False), ("noise", "noise", False), ("mtu", "mtu", False),
    ("fifo", "fifo", False), ("markov-numnodes", "numnodes", False),
    ("markov-setnode", "setnode", False), ("markov-name", "name", False),
    ("markov-time", "time", False), ("setedge", "setedge", False),
    ("showedges", "showedges", True), ("showcurrent", "showcurrent", True),
    ("markov-debug", "debug", False), ("logout", "logout", False),
    ("shutdown", "shutdown", False),
]
_PARAMS = {"delay", "loss", "lostburst", "dup", "band", "speed", "chanbufsize", "noise", "mtu"}


@dataclass
class Reply:
    text: str = ""
    logout: bool = False
    shutdown: bool = False
    rc: Optional[int] = None
    debug: Optional[int] = None           # new debug level of the session
    transitions: List[Tuple[int, int]] = field(default_factory=list)


def _scan_float(s: str) -> Optional[float]:
    m = re.match(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf(?:inity)?|[-+]?nan)",
                 s, re.IGNORECASE)
    return float(m.group(1)) if m else None


def _name_arg(arg: str) -> Tuple[int, str]:
    """``markov-name``'s ``n,name``: the number, then the rest after the
    digits, blanks and one comma."""
    n = atoi(arg)
    rest = arg.lstrip(" \t")
    rest = rest[len(rest) - len(rest.lstrip("0123456789")):].lstrip(" \t")
    return n, rest[1:] if rest.startswith(",") else rest


def _edge_arg(arg: str) -> Optional[Tuple[int, int, float]]:
    m = re.match(r"\s*([-+]?\d+),\s*([-+]?\d+),(.*)$", arg)
    if not m:
        return None
    w = _scan_float(m.group(3))
    return int(m.group(1)), int(m.group(2)), 0.0 if w is None else w


def status(rc: int) -> str:
    return "1000 Success\n" if rc == 0 else "1%03d %s\n" % (rc, os.strerror(rc))


def run_command(line: str, ch: Channel, *, read_file: Callable[[str], bytes],
                title: str, interactive: bool = True, now: float = 0.0) -> Reply:
    """Run one console line (see the module doc).  ``title`` is the first
    line of ``showinfo`` (``WireFilter: bidirectional``).  With
    ``interactive`` false (an rc file) nothing is printed: ``rc`` says
    how the command went.  ``now`` (ms) restarts the Markov clock."""
    s = line.lstrip(" \t\n").rstrip(" \t\n")
    if not s or s.startswith("#"):
        return Reply()
    for name, key, block in TABLE:
        if s.startswith(name):
            break
    else:
        return Reply(status(errno.ENOSYS) if interactive else "", rc=errno.ENOSYS)
    arg = s[len(name):].lstrip(" \t")
    out: List[str] = []
    extra = ""
    rc = 0
    mk = ch.markov
    moved: List[Tuple[int, int]] = []
    debug = None
    if key in _PARAMS:
        try:
            ch.set(key, arg)
        except ValueError_:
            rc = errno.EINVAL
    elif key == "fifo":
        ch.fifo = atoi(arg) != 0
    elif key == "help":
        out = list(HELP)
    elif key in ("showinfo", "showedges"):
        node = atoi(arg) if arg else mk.current
        if not 0 <= node < mk.count:
            rc = errno.EINVAL
        elif key == "showinfo":
            out = [title] + ch.info_lines(node)
        else:
            out = mk.edge_lines(node)
    elif key == "showcurrent":
        out = [mk.current_line()]
    elif key == "numnodes":
        n = atoi(arg)
        if n > 0:
            moved = mk.resize(n, now)
        else:
            rc = errno.EINVAL
    elif key == "setnode":
        rc = 0 if mk.set_current(atoi(arg)) else errno.EINVAL
    elif key == "name":
        n, name = _name_arg(arg)
        rc = 0 if mk.set_name(n, name) else errno.EINVAL
    elif key == "time":
        ms = _scan_float(arg)
        if ms is not None and ms > 0:
            moved = mk.set_period(ms, now)
        else:
            rc = errno.EINVAL
    elif key == "setedge":
        edge = _edge_arg(arg)
        rc = 0 if edge and mk.set_edge(*edge) else errno.EINVAL
    elif key == "debug":
        debug = atoi(arg)
        if not interactive or debug < 0:
            rc, debug = errno.EINVAL, None
    elif key == "logout":
        return Reply(logout=True, rc=0)
    elif key == "shutdown":
        return Reply(shutdown=True, rc=0)
    elif key == "load":
        try:
            data = read_file(arg)
        except OSError as e:
            rc = e.errno or errno.ENOENT
        else:
            for raw in _fgets_lines(data):
                text = raw.decode("utf-8", "replace").rstrip(" \t\n")
                if interactive:
                    extra += "%s (%s) %s\n" % (PROMPT, arg, text)
                sub = run_command(text, ch, read_file=read_file, title=title,
                                  interactive=interactive, now=now)
                extra += sub.text
                moved += sub.transitions
                debug = sub.debug if sub.debug is not None else debug
    if not interactive:
        return Reply(rc=rc, transitions=moved)
    body = ""
    if block:
        body = "0000 DATA END WITH '.'\n" + extra + "".join(
            ln[:LINE_MAX - 1] + "\n" for ln in out) + ".\n"
    return Reply(body + status(rc), rc=rc, debug=debug, transitions=moved)


def _fgets_lines(data: bytes):
    start = 0
    while start < len(data):
        end = data.find(b"\n", start, start + LINE_MAX - 1)
        end = start + LINE_MAX - 1 if end < 0 else end + 1
        yield data[start:end]
        start = end
