"""The numnodes watch: telling a node that the members changed.

The kernel sent the numnodes OOB message when a member joined, left or
died.  Here a node that asked for numnodes messages keeps one daemon
thread that, every :data:`INTERVAL` seconds, looks at the shared ``gen``
word (moved by every membership change) and tells the node when it
moved (the node recounts the members itself and rings its own
doorbell); and that probes the other nodes' doorbell sockets (a dead
process's socket refuses connections), purging dead ones as a member
leaving would.  No datagram from another member is needed, so none is
accepted: nobody can forge a numnodes message or make the node readable
with one.  Nodes that did not ask for numnodes have no thread; they
notice deaths when they ring a dead receiver.
"""

from __future__ import annotations

import socket
import threading

INTERVAL = 0.25


class DeathWatch:
    """The watch of one node over its network (``comp``, a Companion)."""

    def __init__(self, comp, on_change):
        self._comp = comp
        self._on_change = on_change       # called (in the thread) when gen moved
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
        seen = None
        try:
            while True:
                try:
                    gen = comp.gen[0]
                    if gen != seen and self._on_change(self._stop):
                        seen = gen
                    if self._someone_died(probe):
                        if not self._stop.is_set() and comp.purge():
                            comp.bump()
                except (OSError, ValueError):
                    pass                         # the network went away meanwhile
                if self._stop.wait(INTERVAL):
                    return
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
