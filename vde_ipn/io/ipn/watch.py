"""Noticing dead members while nobody sends: the numnodes watch.

The kernel sent the numnodes OOB message when a member's process died.
Here nothing runs when a process is SIGKILLed, so a node that asked for
numnodes messages keeps one daemon thread that probes the other nodes'
doorbell sockets (a dead process's socket refuses connections) every
:data:`INTERVAL` seconds, and on a death purges the node and notifies,
as a member leaving would.  Nodes that did not ask for numnodes have no
thread; they notice deaths when they ring a dead receiver.
"""

from __future__ import annotations

import socket
import threading

INTERVAL = 0.25


class DeathWatch:
    """The watch of one node over its network (``comp``, a Companion)."""

    def __init__(self, comp):
        self._comp = comp
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ipn-numnodes-watch",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(5.0)

    def _run(self) -> None:
        comp = self._comp
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            while not self._stop.wait(INTERVAL):
                try:
                    if self._someone_died(probe):
                        with comp.locked():
                            if not self._stop.is_set() and comp.purge():
                                comp.bump()
                                comp.notify_numnodes(probe)
                except (OSError, ValueError):
                    pass                         # the network went away meanwhile
        finally:
            probe.close()

    def _someone_died(self, probe: socket.socket) -> bool:
        for _port, _flags, name in self._comp.nodes():
            try:
                probe.connect(self._comp.node_path(name))
            except ConnectionRefusedError:
                return True
            except OSError:
                pass
        return False
