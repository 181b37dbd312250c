"""vde_autolink's links, wires, job queue and console (sans-IO).

A *wire* is a command template naming ``$myport``, ``$mysock`` and
``$remotehost`` (``addwire TYPE CMD``).  A *link* (``addlink NAME HOSTS``)
owns a switch port reserved for it and tries, host after host, the wire
types given to it (``addtypelink``).  Once on (``linkonoff NAME 1``) a
link runs its current wire and, ``SCHED_CHECK`` seconds later, checks
that fast spanning tree made the port active (``fstp/+`` or a
``learning+forwarding`` status from the switch); if not, or when the
port goes inactive (``fstp/-``), the wire is killed and another try is
scheduled.  A wire that dies within ``CHANGEWIRETIME`` seconds of its
start makes the link move to the next wire type (then the next host); a
link that went round too fast sleeps ``SCHED_LONGTRY`` seconds.  These
are vde_autolink 2.3.2's rules and times.

The :class:`AutoLink` methods take ``now`` and call the effects object
(``spawn(link) -> pid``, ``kill(pid)``, ``port_create(n) -> bool``,
``port_remove(n)``, ``log(msg)``), which the I/O layer provides.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

CHANGEWIRETIME, SLEEPWIRETIME = 8, 30
SCHED_TRY, SCHED_LONGTRY, SCHED_CHECK = 60, 120, 30
MAXPORTS = 256
DISCARD, ACTIVE = 0, 1
VARS = ("$myport", "$mysock", "$remotehost")

HEADER = "\nVDE autolink V.2.3.2\n(C) L.Bigliardi 2007 - GPLv2\n"
PROMPT = "\nVDEal$ "
HELP = [
    "help:         print a summary of mgmt commands",
    "shutdown:     terminate",
    "runscript:    load a config file [args: PATH]",
    "showwires:    list inserted wires",
    "addwire:      add a type of wire, with variables [args: TYPE CMD]",
    "delwire:      delete a type of wire [args: TYPE]",
    "showlinks:    list inserted autolinks",
    "runninglinks: print running links",
    "addlink:      add an autolink [args: NAME REMOTEHOSTS]",
    "dellink:      delete an autolink [args: NAME]",
    "addtypelink:  add a type of wire to named link [args: NAME TYPE]",
    "deltypelink:  delete a type of wire from named link [args: NAME TYPE]",
    "linkonoff:    activate/deactivate autolink [args: NAME 1/0]",
    "jobsqueue:    print status of job queue",
]


@dataclass
class LinkWire:
    type: str
    cmd: str                             # variables filled in for one host
    tried: float = 0
    oldtried: float = 0


@dataclass
class Link:
    name: str
    hosts: list
    port: int
    wires: list = field(default_factory=list)        # per host: [LinkWire]
    enabled: bool = False
    state: int = DISCARD
    host: int = 0
    wire: LinkWire | None = None
    pid: int = -1


def _replace_first(text: str, old: str, new: str) -> str:
    return text.replace(old, new, 1)


def _split(arg: str):
    """(first word, rest) as vde_autolink cuts at the first space."""
    name, sep, rest = arg.partition(" ")
    return (name, rest) if sep and name and rest else (None, None)


class AutoLink:
    def __init__(self, sock: str, effects):
        self.sock = sock
        self.fx = effects
        self.wires: list = []            # (type, cmd)
        self.links: list[Link] = []
        self.jobs: list = []             # (time, action, link), by time

    # -- lookups ---------------------------------------------------------------
    def link(self, name: str) -> Link | None:
        return next((l for l in self.links if l.name == name), None)

    def link_by_port(self, port: int) -> Link | None:
        return next((l for l in self.links if l.port == port), None)

    def link_by_pid(self, pid: int) -> Link | None:
        return next((l for l in self.links if l.pid == pid), None)

    def wire(self, kind: str):
        return next((w for w in self.wires if w[0] == kind), None)

    # -- jobs ------------------------------------------------------------------
    def schedule(self, action: str, link: Link, gap: float, now: float) -> None:
        self.jobs = [j for j in self.jobs if j[2] is not link]
        when = now + gap
        i = 0
        while i < len(self.jobs) and self.jobs[i][0] <= when:
            i += 1
        self.jobs.insert(i, (when, action, link))

    def next_timeout(self, now: float) -> float | None:
        return None if not self.jobs else max(0.0, self.jobs[0][0] - now)

    def run_jobs(self, now: float) -> None:
        while self.jobs and now > self.jobs[0][0]:
            _when, action, link = self.jobs.pop(0)
            if link in self.links and link.enabled:
                (self.try_link if action == "try" else self.check_link)(link, now)

    # -- link life -------------------------------------------------------------
    def _connect(self, link: Link) -> None:
        self.fx.log("[%s] connecting wire: %s to %s" % (link.name, link.wire.type,
                                                        link.hosts[link.host]))
        link.pid = self.fx.spawn(link.wire.cmd.split())

    def try_link(self, link: Link, now: float) -> None:
        w = link.wire
        if w.tried > now - CHANGEWIRETIME:          # died too fast: next wire, next host
            same = link.wires[link.host]
            i = same.index(w)
            if i + 1 >= len(same):
                link.host = (link.host + 1) % len(link.hosts)
                link.wire = link.wires[link.host][0]
            else:
                link.wire = same[i + 1]
            self.fx.log("[%s] try next wire: %s (%s)" % (link.name, link.wire.type,
                                                        link.hosts[link.host]))
            if link.wire.oldtried > now - SLEEPWIRETIME:
                self.fx.log("[%s], go suspend" % link.name)
                self.schedule("try", link, SCHED_LONGTRY, now)
                return
        link.wire.oldtried, link.wire.tried = link.wire.tried, now
        self._connect(link)
        self.schedule("check", link, SCHED_CHECK, now)

    def check_link(self, link: Link, now: float) -> None:
        if link.state != ACTIVE:
            self.fx.log("[%s] check failed, scheduled new wire connection" % link.name)
            self._kill(link)
            self.schedule("try", link, SCHED_TRY, now)
        else:
            self.fx.log("[%s] check passed" % link.name)

    def _kill(self, link: Link) -> None:
        if link.pid != -1:
            self.fx.kill(link.pid)

    def wire_exited(self, pid: int) -> None:
        link = self.link_by_pid(pid)
        if link is not None:
            link.pid = -1

    # -- switch events -----------------------------------------------------------
    def fstp_event(self, event: str, data: str, now: float) -> None:
        """``fstp/+``, ``fstp/-`` or ``fstp/status`` with its text (``Port 0003 ...``)."""
        parts = data.split(" ", 1)
        digits = ""
        for c in (parts[1] if len(parts) > 1 else "").lstrip():
            if not c.isdigit():
                break
            digits += c
        link = self.link_by_port(int(digits or 0))
        if link is None or not link.enabled:
            return
        port = link.port
        if event == "fstp/status":
            self.fx.log("[%s] received %s for port %d" % (link.name, event, port))
            if "learning+forwarding" in data and link.state == DISCARD:
                self._activate(link)
            elif "discarding" in data and link.state == ACTIVE:
                link.state = DISCARD
                self.fx.log("[%s] state change, active -> discard" % link.name)
            return
        self.fx.log("[%s] received %s for port %d" % (link.name, event, port))
        if event == "fstp/+" and link.state == DISCARD:
            self._activate(link)
        elif event == "fstp/-" and link.state == ACTIVE:
            link.state = DISCARD
            self.fx.log("[%s] state change, active -> discard" % link.name)
            self._kill(link)
            self.fx.log("[%s] scheduled new wire connection" % link.name)
            self.schedule("try", link, SCHED_TRY, now)

    def _activate(self, link: Link) -> None:
        link.state = ACTIVE
        self.fx.log("[%s] state change, discard -> active" % link.name)

    # -- console -------------------------------------------------------------------
    def command(self, line: str, now: float, script_runner=None):
        """(text, rc) for one console line; rc None: nothing was run (no
        status line), as for an empty line or a comment."""
        line = line.lstrip(" \t")
        if not line or line.startswith("#"):
            return "", None
        for name in ("help", "shutdown", "showwires", "addwire", "delwire", "showlinks",
                     "runninglinks", "addlink", "dellink", "addtypelink", "deltypelink",
                     "linkonoff", "runscript", "jobsqueue"):
            if line.startswith(name):
                break
        else:
            return "1038 Function not implemented\n", errno.ENOSYS
        arg = line[len(name):].lstrip(" \t")
        if name == "runscript":
            lines, rc = script_runner(arg) if script_runner else ([], errno.ENOENT)
        elif name == "shutdown":
            return None, 0
        else:
            lines, rc = getattr(self, "_" + name)(arg, now)
        out = "0000 DATA END WITH '.'\n" + "".join(x + "\n" for x in lines) + ".\n"
        out += "1000 Success\n" if rc == 0 else "1%03d %s\n" % (rc, os.strerror(rc))
        return out, rc

    def _help(self, arg, now):
        return HELP, 0

    def _showwires(self, arg, now):
        if not self.wires:
            return ["no wire defined"], 0
        return ["TYPE = %s\nCMD = %s\n" % w for w in self.wires], 0

    def _addwire(self, arg, now):
        kind, cmd = _split(arg)
        if kind is None or self.wire(kind) or not all(v in cmd for v in VARS):
            return [], errno.EINVAL
        self.wires.append((kind, cmd))
        return [], 0

    def _delwire(self, arg, now):
        w = self.wire(arg)
        if w is None:
            return [], errno.EINVAL
        self.wires.remove(w)
        return [], 0

    def _showlinks(self, arg, now):
        if not self.links:
            return ["no autolink defined"], 0
        out = []
        for l in self.links:
            out.append("NAME = %s (PORT: %d%s)" % (l.name, l.port, " - ACTIVE" if l.enabled else ""))
            for i, host in enumerate(l.hosts):
                out.append("RHOST: %s" % host)
                if l.wires[i]:
                    out.append("WIRES:")
                out += ["%s: %s\n" % (w.type, w.cmd) for w in l.wires[i]]
            out.append("")
        return out, 0

    def _runninglinks(self, arg, now):
        out = []
        for l in self.links:
            if l.enabled and l.pid != -1 and l.state == ACTIVE and \
                    l.wire.tried < now - CHANGEWIRETIME:
                out += ["NAME = %s , RHOST = %s , WIRE = %s , PID: %d"
                        % (l.name, l.hosts[l.host], l.wire.type, l.pid), ""]
        return out, 0

    def _addlink(self, arg, now):
        name, hosts = _split(arg)
        if name is None or self.link(name):
            return [], errno.EINVAL
        hosts = hosts.split()
        if not hosts:
            return [], errno.EINVAL
        port = next((p for p in range(1, MAXPORTS + 1) if self.fx.port_create(p)), None)
        if port is None:
            return [], errno.ENXIO
        self.links.append(Link(name, hosts, port, [[] for _ in hosts]))
        return [], 0

    def _dellink(self, arg, now):
        link = self.link(arg)
        if link is None or link.enabled:
            return [], errno.EINVAL
        self.links.remove(link)
        self.fx.port_remove(link.port)
        return [], 0

    def _disabled_link(self, arg):
        """``(link, rest, 0)`` for ``NAME REST`` naming a disabled link,
        else ``(None, None, errno)``: EINVAL, or ENXIO for no such link."""
        name, rest = _split(arg)
        if name is None:
            return None, None, errno.EINVAL
        link = self.link(name)
        if link is None:
            return None, None, errno.ENXIO
        if link.enabled:
            return None, None, errno.EINVAL
        return link, rest, 0

    def _addtypelink(self, arg, now):
        link, kind, err = self._disabled_link(arg)
        if link is None:
            return [], err
        w = self.wire(kind)
        if w is None:
            return [], errno.ENXIO
        if any(x.type == kind for x in link.wires[0]):
            return [], errno.EINVAL
        for i, host in enumerate(link.hosts):
            cmd = _replace_first(w[1], "$myport", str(link.port))
            cmd = _replace_first(cmd, "$mysock", self.sock)
            cmd = _replace_first(cmd, "$remotehost", host)
            link.wires[i].append(LinkWire(kind, cmd))
        return [], 0

    def _deltypelink(self, arg, now):
        link, kind, err = self._disabled_link(arg)
        if link is None:
            return [], err
        if not link.wires[0]:
            return [], errno.EINVAL
        for wires in link.wires:
            for w in wires:
                if w.type == kind:
                    wires.remove(w)
                    return [], 0                 # 2.3.2 removes it from the first host only
        return [], errno.EINVAL

    def _linkonoff(self, arg, now):
        name, value = _split(arg)
        if name is None:
            return [], errno.EINVAL
        try:
            on = int(value.split()[0], 0)
        except (ValueError, IndexError):
            return [], errno.EINVAL
        link = self.link(name)
        if link is None:
            return [], errno.ENXIO
        if on:
            if not link.wires[0]:
                return [], errno.ENXIO
            if link.enabled:
                return [], 0
            link.enabled, link.state = True, DISCARD
            link.wire = link.wires[0][0]
            link.host = 0
            self.try_link(link, now)
        else:
            if not link.enabled:
                return [], 0
            link.enabled = False
            self._kill(link)
            link.wire = None
        return [], 0

    def _jobsqueue(self, arg, now):
        if not self.jobs:
            return ["jobs queue is empty"], 0
        return ["TIME: %d, ACTION: %s, LINK: %s" % (round(t - now), "try  " if a == "try" else
                                                     "check", l.name)
                for t, a, l in self.jobs] + [""], 0

    def shutdown(self) -> None:
        """Kill every wire, then give the ports back (a port still holding
        the wire's plug could not be removed)."""
        for link in self.links:
            if link.pid != -1:
                pid, link.pid = link.pid, -1
                self.fx.kill(pid)
                self.fx.wait(pid)
        for link in self.links:
            self.fx.port_remove(link.port)
