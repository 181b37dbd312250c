"""The built-in 2.3.2 plugins' I/O: dump lines, pcap files, IP logging.

A mixin of :class:`~vde_ipn.io.switch.server.SwitchServer` (see
:mod:`vde_ipn.engine.switch.commands.plugins` for the commands).  Each loaded
plugin that watches traffic adds a frame observer; they run, in load
order, after the monitor port and the capture of io/switch/monitor.py.

- ``dump``: with ``dump/active 1``, every frame coming in on a port and
  every copy going out of one is a ``dump/packetin`` / ``dump/packetout``
  debug line (hex bytes) for the consoles that asked (``debug/add dump``).
- ``pdump``: with ``pdump/active 1``, the same frames (in, then each out)
  are appended to a pcap file (snaplen 96 in the header as 2.3.2 writes
  it, whole frames in the records), flushed after each frame unless
  ``pdump/buffered 1``.
- ``iplog``: source addresses in the ranges given are logged when new or
  moved (port, VLAN or MAC), to a file (``iplog/logfile PATH``, a
  ``Mon dd hh:mm:ss`` stamp in front) or to syslog (``iplog/logfile -``),
  and shown to ``debug/add iplog/newip`` consoles.
"""

from __future__ import annotations

import os
import pwd
import syslog
import time

from ...engine.switch.commands import plugins as specs
from ...engine.egress import PORT_MASK, rewrite
from ...engine.switch.iplog import IpLog, report
from ...wire import pcap

PDUMP_DEFAULT = "vde_dump.cap"
PDUMP_SNAPLEN = 96                       # what 2.3.2 writes in the file header
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
LOG_DISABLED, LOG_SYSLOG = -1, -2


def log_stamp(t: float) -> str:
    """``ctime()`` characters 4..19: ``Dec  6 05:04:31 ``."""
    tm = time.localtime(t)
    return "%s %2d %02d:%02d:%02d " % (_MONTHS[tm.tm_mon - 1], tm.tm_mday, tm.tm_hour,
                                       tm.tm_min, tm.tm_sec)


class _Pdump:
    def __init__(self):
        self.filename = PDUMP_DEFAULT
        self.file = None
        self.active = False
        self.buffered = False
        self.error = None                # a write failed: the dump stops

    def open(self) -> list[str]:
        """Open the file and write the header; error lines, empty if fine."""
        self.close()
        try:
            fd = os.open(self.filename, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except (OSError, ValueError) as e:      # ValueError: a NUL in the name
            why = getattr(e, "strerror", None) or os.strerror(22)
            return ["set_dumper() open(%s): %s" % (self.filename, why),
                    "ERROR: cannot dump to %s" % self.filename]
        self.file = os.fdopen(fd, "wb")
        self.file.write(pcap.encode_file_header(PDUMP_SNAPLEN))
        self.file.flush()
        return []

    def record(self, port: int, frame: bytes) -> None:
        if self.active and self.error is None:
            try:
                self.file.write(pcap.encode_record(time.time(), frame, len(frame)))
            except OSError as e:
                self.error = e

    def close(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass
            self.file = None


class _Iplog:
    def __init__(self):
        self.table = IpLog()
        self.fd = LOG_DISABLED           # a file descriptor, or LOG_DISABLED/LOG_SYSLOG
        self.path = None
        self.timer = None

    def close_file(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        self.fd, self.path = LOG_DISABLED, None


class PluginIO:
    """Needs ``net``, ``loop`` and ``log``; ``_update_observer`` (MonitorIO)
    calls :meth:`plugin_observers`."""

    plugins: dict = {}

    # -- plugin/add, plugin/del ------------------------------------------------
    def plugin_commands(self) -> list:
        return specs.commands(self)

    def plugin_add(self, name: str) -> None:
        if not self.plugins:
            self.plugins = {}
        state = None
        if name == "pdump":
            state = _Pdump()
        elif name == "iplog":
            state = _Iplog()
            state.timer = self.loop.call_every(state.table.gc_interval, self._iplog_collect)
            self.net.listeners.append(self._iplog_port_event)
            self.plugins[name] = state
            self._activate(name, True)
            return
        elif name == "dump":
            state = {"active": False}
        self.plugins[name] = state
        self._update_observer()

    def plugin_del(self, name: str) -> None:
        state = self.plugins.pop(name)
        if name == "pdump":
            state.close()
        elif name == "iplog":
            self.loop.cancel(state.timer)
            state.close_file()
            if self._iplog_port_event in self.net.listeners:
                self.net.listeners.remove(self._iplog_port_event)
        self._activate(name, False)

    def close_plugins(self) -> None:
        for name in list(self.plugins):
            self.plugin_del(name)

    def _activate(self, name: str, on: bool) -> None:
        """Order of the frame hooks: as 2.3.2 runs its event handlers, in
        the order they were added (iplog when loaded, dump and pdump when
        activated), all packet/in ones, then packet/out for each port."""
        order = self.__dict__.setdefault("_plugin_order", [])
        if name in order:
            order.remove(name)
        if on:
            order.append(name)
        self._update_observer()

    def plugin_observers(self) -> list:
        ins, outs = [], []
        for name in self.__dict__.get("_plugin_order", ()):
            state = self.plugins.get(name)
            if name == "dump":
                ins.append(self._dump_in)
                outs.append(self._dump_out)
            elif name == "pdump" and state.file is not None:
                ins.append(state.record)
                outs.append(state.record)
            elif name == "iplog":
                ins.append(self._iplog_hook(state))
        if not ins:
            return []
        pdump = self.plugins.get("pdump")
        if pdump is not None and pdump.file is None:
            pdump = None

        def observe(in_port, frame, keys, now) -> None:
            for f in ins:
                f(in_port, frame)
            if outs:
                for key in keys:
                    out, port = rewrite(key, frame), key & PORT_MASK
                    for f in outs:
                        f(port, out)
            if pdump is not None and pdump.active and (pdump.error or not pdump.buffered):
                self._pdump_flush(pdump)
        return [observe]

    # -- dump ------------------------------------------------------------------
    def dump_set_active(self, on: bool) -> None:
        self.plugins["dump"]["active"] = on
        self._activate("dump", on)

    def _dump_in(self, port, frame) -> None:
        if self.net.listeners:
            self.net.emit("dump/packetin", specs.dump_line(port, frame))

    def _dump_out(self, port, frame) -> None:
        if self.net.listeners:
            self.net.emit("dump/packetout", specs.dump_line(port, frame))

    # -- pdump -----------------------------------------------------------------
    def pdump_filename(self, arg: str):
        st = self.plugins["pdump"]
        path = arg.strip()
        if path:
            st.filename = path
            errors = st.open()
            self._update_observer()
            if errors:
                return errors, 22          # EINVAL
        return ["dumpfile=%s" % st.filename], 0

    def pdump_set_active(self, on: bool):
        st = self.plugins["pdump"]
        if on:
            if st.file is None:
                errors = st.open()
                if errors:
                    return errors, 22
            if st.active:
                return None, 17            # EEXIST, as eventadd() answers
            st.active = True
        else:
            st.active = False
            if st.file is not None:
                self._pdump_flush(st)
        self._activate("pdump", on)
        return None, 0

    def pdump_set_buffered(self, on: bool) -> None:
        st = self.plugins["pdump"]
        st.buffered = on
        self._update_observer()

    def _pdump_flush(self, st) -> None:
        try:
            if st.error is not None:
                raise st.error
            st.file.flush()
        except (OSError, ValueError, AttributeError) as e:   # disk full...: stop, keep forwarding
            self.log("pdump %s: %s; dump stopped" % (st.filename, getattr(e, "strerror", e)))
            st.active, st.error = False, None
            st.close()
            self._activate("pdump", False)

    # -- iplog -----------------------------------------------------------------
    @property
    def iplog(self) -> IpLog:
        return self.plugins["iplog"].table

    def iplog_destination(self) -> str:
        st = self.plugins["iplog"]
        if st.fd == LOG_DISABLED:
            return "log disabled"
        if st.fd == LOG_SYSLOG:
            return "log on syslog"
        return "log on file %s" % st.path

    def iplog_logfile(self, arg: str) -> int:
        st = self.plugins["iplog"]
        path = arg.strip()
        if not path:
            st.close_file()
            return 0
        if path == "-":
            st.close_file()
            st.fd = LOG_SYSLOG
            return 0
        try:
            fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        except (OSError, ValueError):          # ValueError: a NUL in the name
            return 2                       # ENOENT, whatever the cause (2.3.2)
        st.close_file()
        st.fd, st.path = fd, os.path.realpath(path)
        return 0

    def sighup(self) -> None:
        """SIGHUP: iplog closes and reopens its file (after a log rotation)."""
        st = self.plugins.get("iplog")
        if st is None or st.fd < 0:
            return
        try:
            os.write(st.fd, (log_stamp(time.time()) + "SIGHUP: closing file\n").encode())
        except OSError:
            pass
        os.close(st.fd)
        try:
            st.fd = os.open(st.path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        except OSError as e:
            self.log("iplog %s: %s" % (st.path, e.strerror))
            st.fd, st.path = LOG_DISABLED, None
            return
        try:
            os.write(st.fd, (log_stamp(time.time()) + "SIGHUP: opening file\n").encode())
        except OSError:
            pass

    def iplog_set_gc_interval(self, seconds: int) -> None:
        st = self.plugins["iplog"]
        st.table.gc_interval = seconds
        self.loop.cancel(st.timer)
        st.timer = self.loop.call_every(max(seconds, 1), self._iplog_collect)

    def port_user(self, port: int) -> int:
        p = self.net.ports.get(port)
        return -1 if p is None else p.curuser

    def port_user_name(self, port: int) -> str:
        uid = self.port_user(port)
        try:
            return pwd.getpwuid(uid).pw_name if uid >= 0 else "(none)"
        except KeyError:
            return "(none)"

    def _iplog_collect(self, now: float) -> None:
        st = self.plugins.get("iplog")
        if st is not None:
            st.table.collect(now)

    def _iplog_port_event(self, category: str, message: str) -> None:
        st = self.plugins.get("iplog")
        if category == "port/-" and st is not None:
            st.table.port_closed(int(message))

    def _iplog_hook(self, st: _Iplog):
        seen, clock = st.table.observe, self.loop.clock

        def observe(in_port, frame) -> None:
            e = seen(in_port, frame, clock())
            if e is None:
                return
            port = self.net.ports.get(in_port)
            descrs = [ep.description for ep in port.endpoints.values()
                      if ep.description is not None] if port else []
            msg = report(e, self.port_user_name(in_port), descrs)
            if st.fd >= 0:
                try:
                    os.write(st.fd, (log_stamp(time.time()) + msg + "\n").encode())
                except OSError as err:
                    self.log("iplog %s: %s" % (st.path, err.strerror))
            elif st.fd == LOG_SYSLOG:
                syslog.syslog(syslog.LOG_INFO, msg)
            self.net.emit("iplog/newip", msg)
        return observe
