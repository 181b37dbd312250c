"""``pcap://IFACE``: vdeplug4's libpcap plugin, on the grab machinery.

Like libvdeplug_pcap: the interface is opened promiscuous, whatever is
captured on it (received, and sent by others through it) goes to the
network, and frames from the network are injected on it.  Frames whose
source is the interface's own MAC address (the host's own traffic) are
not taken in, and what this plug injects is never captured back by it.
So several pcap plugs on one interface do not hear the host, and the
host does not receive what they inject.

Differences from ``grab://`` (a bridge port): pcap takes outgoing frames
too, filters by MAC instead of by direction, and never brings the
interface up: a down interface is an error, as it is for libpcap.
"""

from __future__ import annotations

import errno

from ..._errors import ConnectError
from .endpoints import Plug
from .grab import IFF_UP, GrabError, PacketDevice, _iproute, _link, open_packet_socket


class PcapDevice(PacketDevice):
    """Interface ``name`` opened as libvdeplug_pcap opens it."""

    module = "pcap"

    def __init__(self, name: str):
        self.name = name
        self.sock = None
        ipr = _iproute()
        try:
            link = _link(ipr, name)
        except GrabError as e:
            raise GrabError(e.errno, "pcap %s: no such interface" % name) from None
        finally:
            ipr.close()
        self.index = link["index"]
        if not link["flags"] & IFF_UP:
            raise GrabError(errno.ENETDOWN, "pcap %s: the interface is down "
                            "(pcap:// leaves it as it is; grab:// brings it up)" % name)
        self.hwaddr = bytes.fromhex((link.get_attr("IFLA_ADDRESS") or "").replace(":", ""))
        sock = open_packet_socket(name, self.index, "pcap")
        self.sock = sock
        self.send = sock.send

    def recv(self, bufsize: int) -> bytes:
        recv, own = self.sock.recv, self.hwaddr
        while True:                      # BlockingIOError ends the loop
            frame = recv(bufsize)
            if frame[6:12] != own:
                return frame


def open_pcap_plug(arg, **_) -> Plug:
    """``pcap://IFACE``: see the module docstring."""
    try:
        return Plug(PcapDevice(arg), None, scheme="pcap")
    except OSError as e:
        raise ConnectError(e.errno or errno.EINVAL, e.strerror or str(e)) from None
