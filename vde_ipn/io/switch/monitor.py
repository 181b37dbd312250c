"""The monitor port and the switch's own capture (pcap), on the frame path.

Both watch frames through the network's single hook,
``Network.observer`` (see :mod:`vde_ipn.engine.bus`): while neither is
on, the hook is None and a frame costs one attribute check more.

* Monitor: copies of the chosen frames (see
  :mod:`vde_ipn.engine.switch.monitor`) go to every endpoint on the monitor
  port through a :class:`CopySender`, which never queues and never
  waits: a copy the receiver has no room for is dropped and counted
  (cause ``monitor`` on the monitor port), so a slow or stopped sniffer
  cannot slow forwarding between the other ports.  Copies leave in the
  same batches as forwarded frames; within one batch a copy may overtake
  a flooded frame to the same port.
* Capture: every accepted frame, as received, is appended to a pcap file
  through a 64 KiB buffer, flushed every second and when the capture
  stops.  A write error stops the capture and is logged.

:class:`MonitorIO` is a mixin of :class:`~vde_ipn.io.switch.server.SwitchServer`
and provides what ``monitor/*`` and ``dump/*`` need from the console
context (see :mod:`vde_ipn.engine.switch.commands.monitor`).
"""

from __future__ import annotations

import time

from ...engine.switch import commands as _commands  # noqa: F401  (2.3.2's table first)
from ...engine.bus import MONITOR, SEND_ERROR
from ...engine.switch.commands import monitor as _monitor_commands  # noqa: F401  (monitor/*, dump/*)
from ...engine.switch.monitor import MonitorSelection, parse_selection
from ...wire import pcap

DUMP_BUFFER = 1 << 16
DUMP_FLUSH_EVERY = 1.0
SKIP_WHEN_FULL = 64                      # copies dropped unseen once a monitor is full


class CopySender:
    """Sends copies to one endpoint; drops (and counts) what does not fit at once.

    Duck-types the ``send``/``flush`` protocol of
    :class:`~vde_ipn.io.switch.datasock.Sender` so a :class:`Batcher` can hold
    and flush it, but has no queue and never watches its socket (the
    endpoint's own Sender may be doing so).  Once the receiver is full,
    the next ``SKIP_WHEN_FULL`` copies are dropped without a system call.
    """

    __slots__ = ("sock", "port", "batcher", "pending", "full")

    def __init__(self, sock, port, batcher=None):
        self.sock = sock
        self.port = port                 # the monitor's engine Port, for drops
        self.batcher = batcher
        self.pending: list = []
        self.full = 0                    # copies still to drop unseen

    def send(self, frame: bytes) -> None:
        if self.full:
            self.full -= 1
            self.port.count_drop(MONITOR)
            return
        batcher = self.batcher
        if batcher is not None and batcher.holding:
            if not self.pending:
                batcher.held.append(self)
            self.pending.append(frame)
            return
        try:
            self.sock.send(frame)
        except BlockingIOError:
            self._now_full(1)
            return
        except OSError:
            self.port.count_drop(SEND_ERROR)
            return
        self.port.out_pkts += 1
        self.port.out_bytes += len(frame)

    def flush(self) -> None:
        frames, self.pending = self.pending, []
        vec = self.batcher.sender()
        send, fd, space = vec.send, self.sock.fileno(), vec.space
        i, total = 0, len(frames)
        sent = nbytes = 0                # out counts only copies that left
        while i < total:
            try:
                if len(frames[i]) > space:
                    try:
                        self.sock.send(frames[i])
                        n = 1
                    except BlockingIOError:
                        n = 0
                else:
                    n = send(fd, frames, i)
            except OSError:              # this copy is lost; the next ones may go
                self.port.count_drop(SEND_ERROR)
                i += 1
                continue
            if n == 0:                   # no room: the rest of this batch is lost
                self._now_full(total - i)
                break
            sent += n
            nbytes += sum(map(len, frames[i:i + n]))
            i += n
        self.port.out_pkts += sent
        self.port.out_bytes += nbytes

    def _now_full(self, lost: int) -> None:
        self.port.count_drop(MONITOR, lost)
        self.full = SKIP_WHEN_FULL


class PcapDump:
    """An open capture file; :meth:`observe` appends one frame."""

    def __init__(self, path: str, snaplen: int):
        self.path = path
        self.snaplen = snaplen
        self.frames = self.bytes = 0
        self.offset = time.time() - time.monotonic()   # loop time -> epoch
        self.file = open(path, "wb", buffering=DUMP_BUFFER)
        try:
            self.file.write(pcap.encode_file_header(snaplen))
            self.file.flush()
        except OSError:
            self.file.close()
            raise

    def observe(self, in_port: int, frame: bytes, outs: tuple, now: float) -> None:
        self.file.write(pcap.encode_record(now + self.offset, frame, self.snaplen))
        self.frames += 1
        self.bytes += len(frame)

    def statistics(self) -> dict:
        return {"path": self.path, "frames": self.frames, "bytes": self.bytes}


class MonitorIO:
    """Monitor port and capture of a switch server (a mixin).

    Needs ``net``, ``loop``, ``log``, ``endpoints`` (id -> endpoint with
    ``port``, ``data`` and ``sender``) and ``senders`` (the SenderTable).
    """

    monitor: MonitorSelection | None = None
    _dump: PcapDump | None = None
    _dump_timer = None
    _reserved: int | None = None         # a port we made non-allocatable
    _copies = 0

    # -- monitor ---------------------------------------------------------------
    def set_monitor(self, selection: MonitorSelection) -> None:
        """Copy what ``selection`` chooses to its port (replacing any monitor).

        The port is created if missing, and made non-allocatable so that
        clients asking for any port never land on it; a sniffer joins it
        by number (``vde://DIR[PORT]``).
        """
        self.monitor_off()
        net = self.net
        port = net.ports.get(selection.port)
        if port is None:
            port = net.create_port(selection.port)
            net.policy.config_changed()
            self._reserved = selection.port
        elif port.allocatable:
            port.allocatable = False
            self._reserved = selection.port
        self.monitor = selection
        self._copies = 0
        self._update_observer()

    def monitor_off(self) -> bool:
        """Stop copying; False when no monitor was set."""
        if self.monitor is None:
            return False
        port = self.net.ports.get(self._reserved) if self._reserved is not None else None
        if port is not None:
            port.allocatable = True
        self.monitor = None
        self._reserved = None
        self._update_observer()
        return True

    def monitor_statistics(self) -> dict:
        sel = self.monitor
        port = None if sel is None else self.net.ports.get(sel.port)
        return {"copies": self._copies,
                "dropped": 0 if port is None else port.drops.get(MONITOR, 0)}

    def _copy_senders(self, mon: int) -> tuple:
        """A CopySender ``send`` for every endpoint on the monitor port."""
        port = self.net.ports.get(mon)
        if port is None:
            return ()
        return tuple(CopySender(ep.data, port, ep.sender.batcher).send
                     for ep in self.endpoints.values() if ep.port == mon)

    def _monitor_observer(self, sel: MonitorSelection):
        mon, wants, ports = sel.port, sel.wants, self.net.ports
        everything = sel.ports is None and sel.vlans is None
        current = self.senders.get
        cache = [object(), ()]           # (SenderTable entry, copy senders)

        def observe(in_port: int, frame: bytes, outs: tuple, now: float) -> None:
            if everything:
                if in_port == mon or mon in outs:
                    return
                if outs and outs[0] > 0xFFFF and any(o & 0xFFFF == mon for o in outs):
                    return               # a VLAN rewrite key for the monitor port
            elif not wants(in_port, frame, outs, ports[in_port].vlan):
                return
            if current(mon) is not cache[0]:     # the monitor's endpoints changed
                cache[0], cache[1] = current(mon), self._copy_senders(mon)
            self._copies += 1
            for send in cache[1]:
                send(frame)
        return observe

    # -- capture ---------------------------------------------------------------
    def start_dump(self, path: str) -> None:
        """Write every accepted frame to ``path`` (pcap); raises OSError."""
        self.stop_dump()
        self._dump = PcapDump(path, self.net.max_frame)
        self._dump_timer = self.loop.call_every(DUMP_FLUSH_EVERY, self._flush_dump)
        self._update_observer()

    def stop_dump(self) -> bool:
        """Flush and close the capture; False when none was running."""
        dump = self._dump
        if dump is None:
            return False
        self._dump = None
        self.loop.cancel(self._dump_timer)
        self._dump_timer = None
        self._update_observer()
        try:
            dump.file.close()
        except OSError as e:
            self.log("dump %s: %s" % (dump.path, e.strerror or e))
        return True

    def dump_statistics(self) -> dict | None:
        return None if self._dump is None else self._dump.statistics()

    def _flush_dump(self, now: float) -> None:
        try:
            self._dump.file.flush()
        except OSError as e:
            self.log("dump %s: %s; capture stopped" % (self._dump.path, e.strerror or e))
            self.stop_dump()

    def _dump_observer(self, dump: PcapDump):
        write = dump.observe

        def observe(in_port: int, frame: bytes, outs: tuple, now: float) -> None:
            try:
                write(in_port, frame, outs, now)
            except OSError as e:         # disk full...: stop, never break forwarding
                self.log("dump %s: %s; capture stopped" % (dump.path, e.strerror or e))
                self.stop_dump()
        return observe

    # -- both --------------------------------------------------------------------
    def start_observing(self) -> None:
        """Apply the configuration's ``monitor`` and ``dump`` (at start)."""
        cfg = self.config
        if cfg.monitor:
            try:
                self.set_monitor(parse_selection(cfg.monitor, self.net.numports))
            except ValueError as e:
                self.log("monitor %s: %s" % (cfg.monitor, e))
        if cfg.dump:
            try:
                self.start_dump(cfg.dump)
            except OSError as e:
                self.log("dump %s: %s" % (cfg.dump, e.strerror or e))

    def stop_observing(self) -> None:
        """Stop the monitor and close the capture (at close)."""
        self.stop_dump()
        self.monitor_off()

    def _update_observer(self) -> None:
        parts = []
        if self.monitor is not None:
            parts.append(self._monitor_observer(self.monitor))
        if self._dump is not None:
            parts.append(self._dump_observer(self._dump))
        plugin_observers = getattr(self, "plugin_observers", None)
        if plugin_observers is not None:
            parts.extend(plugin_observers())
        if not parts:
            self.net.observer = None
        elif len(parts) == 1:
            self.net.observer = parts[0]
        elif len(parts) == 2:
            first, second = parts

            def both(in_port: int, frame: bytes, outs: tuple, now: float) -> None:
                first(in_port, frame, outs, now)
                second(in_port, frame, outs, now)
            self.net.observer = both
        else:
            def each(in_port: int, frame: bytes, outs: tuple, now: float) -> None:
                for part in parts:
                    part(in_port, frame, outs, now)
            self.net.observer = each
        flows = getattr(self, "flows", None)
        if flows is not None:
            flows.stale()                # observed frames must reach the observer
