"""Monitor port and traffic capture: monitor/* and dump/* (not in vde_switch 2.3.2).

No 2.3.2 path is a prefix of these and none of these is a prefix of a
2.3.2 path, so every 2.3.2 command keeps its meaning.  (2.3.2's capture
plugin, which we do not ship, used ``dump/active`` and the like; these
are other names.)

The context provides, beyond the base contract: ``monitor`` (a
:class:`~vde_ipn.engine.switch.monitor.MonitorSelection` or None),
``set_monitor(selection)``, ``monitor_off()``, ``monitor_statistics()``
(a dict: copies, dropped), ``dump_statistics()`` (None, or a dict with
path, frames, bytes), ``start_dump(path)`` (raises OSError) and
``stop_dump() -> bool``.
"""

from __future__ import annotations

import errno

from ..console import command, menu
from ..monitor import parse_selection

OK = 0

menu("monitor", "MONITOR PORT")


@command("monitor/set", "N [PORTS VLANS]",
         "copy traffic (of PORTS/VLANS, default all) to PORT")
def _set(ctx, arg):
    try:
        selection = parse_selection(arg, ctx.net.numports)
    except ValueError:
        return None, errno.EINVAL
    ctx.set_monitor(selection)
    return None, OK


@command("monitor/off", "", "stop copying traffic to the monitor port")
def _off(ctx, arg):
    return None, OK if ctx.monitor_off() else errno.ENOENT


@command("monitor/showinfo", "", "monitor port, selection and counters", data=True)
def _showinfo(ctx, arg):
    sel = ctx.monitor
    stats = ctx.monitor_statistics()
    head = "Monitor off" if sel is None else "Monitor " + sel.describe()
    return [head, "copies %d dropped %d" % (stats["copies"], stats["dropped"])], OK


menu("dump", "TRAFFIC CAPTURE (PCAP)")


@command("dump/start", "FILE", "write every frame to FILE (pcap)")
def _start(ctx, arg):
    path = arg.strip()
    if not path or "\0" in path:             # no file can have a NUL in its name
        return None, errno.EINVAL
    if ctx.dump_statistics() is not None:
        return None, errno.EBUSY
    try:
        ctx.start_dump(path)
    except OSError as e:
        return None, e.errno or errno.EIO
    return None, OK


@command("dump/stop", "", "stop the capture and close its file")
def _stop(ctx, arg):
    return None, OK if ctx.stop_dump() else errno.ENOENT


@command("dump/showinfo", "", "capture file and counters", data=True)
def _dump_showinfo(ctx, arg):
    stats = ctx.dump_statistics()
    if stats is None:
        return ["Dump off"], OK
    return ["Dump %s frames %d bytes %d" % (stats["path"], stats["frames"], stats["bytes"])], OK
