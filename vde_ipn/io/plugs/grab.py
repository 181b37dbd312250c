"""Grab: an existing interface joined to a VDE network, as a bridge port.

Frames arriving on the interface go to the network, frames from the
network go out of it, the way ``brctl addif`` joins a NIC to a bridge
(and what vde_pcapplug does with libpcap).  Underneath is an AF_PACKET
socket bound to the interface:

* promiscuous mode comes from a ``PACKET_MR_PROMISC`` membership, which
  the kernel counts and drops when the socket closes, even if the
  process is killed: the interface's own promiscuous setting is never
  touched;
* frames the host itself sends out of the interface are not taken in
  (``PACKET_IGNORE_OUTGOING``, or filtered by packet type on older
  kernels): a bridge port only hears its wire;
* an interface that is down is brought up, and down again on release;
  link state is read and set through pyroute2, imported only here.

Limits: the kernel hands over what it received, so an interface with
receive offloads (GRO, VLAN tag stripping) can deliver frames larger
than the network's maximum (dropped and counted) or without their
802.1Q tag.  Turn the offloads off (``ethtool -K IF gro off rxvlan off``)
on such interfaces.
"""

from __future__ import annotations

import errno
import socket
import struct

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
IFF_UP = 0x1


class GrabError(OSError):
    """An interface could not be grabbed; the message says what to do."""


def _iproute():
    try:
        from pyroute2 import IPRoute
    except ImportError:
        raise GrabError(errno.ENOPKG, "grab needs the pyroute2 package (pip install "
                        "pyroute2, or vde-ipn[tap])") from None
    return IPRoute()


def _link(ipr, name: str):
    """The RTM_NEWLINK message of ``name``, or GrabError(ENODEV)."""
    found = ipr.link_lookup(ifname=name)
    if not found:
        raise GrabError(errno.ENODEV, "grab %s: no such interface" % name)
    return ipr.get_links(found[0])[0]


def link_state(name: str) -> dict:
    """``{"index", "up", "promiscuity"}`` of interface ``name``."""
    ipr = _iproute()
    try:
        link = _link(ipr, name)
        return {"index": link["index"], "up": bool(link["flags"] & IFF_UP),
                "promiscuity": link.get_attr("IFLA_PROMISCUITY")}
    finally:
        ipr.close()


def open_packet_socket(name: str, index: int, what: str) -> socket.socket:
    """A non-blocking AF_PACKET socket on interface ``name`` (its
    ``index``), promiscuous; :class:`GrabError` naming ``what`` (the
    scheme) when it cannot be had."""
    try:
        # protocol 0: nothing is queued until bind() picks the interface
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError:
        raise GrabError(errno.EPERM, "%s %s needs CAP_NET_RAW (run as root)"
                        % (what, name)) from None
    try:
        sock.bind((name, ETH_P_ALL))
        mreq = struct.pack("iHH8s", index, PACKET_MR_PROMISC, 0, b"")
        sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise GrabError(e.errno, "%s %s: %s" % (what, name, e.strerror)) from None
    return sock


class PacketDevice:
    """An interface through an AF_PACKET socket (``sock``): what grabbed
    and pcap interfaces share."""

    sock = None

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class GrabDevice(PacketDevice):
    """Interface ``name`` grabbed: ``send``/``recv``/``fileno``/``close``.

    ``recv``/``send`` never block (``BlockingIOError`` instead);
    ``recv`` returns only frames that arrived on the interface.
    :meth:`close` releases it: promiscuous membership dropped, link put
    back down if this grab brought it up.  Raises :class:`GrabError`
    (missing interface, missing capability, missing pyroute2).
    """

    module = "grab"

    def __init__(self, name: str):
        self.name = name
        self.sock = None
        self._brought_up = None          # the ifindex we set up, to set down again
        ipr = _iproute()
        try:
            link = _link(ipr, name)
            self.index = link["index"]
            if not link["flags"] & IFF_UP:   # first: binding to a down link fails later
                try:
                    ipr.link("set", index=self.index, state="up")
                except Exception as e:   # pyroute2's NetlinkError carries the errno
                    code = getattr(e, "code", errno.EPERM)
                    raise GrabError(code, "grab %s: bringing it up needs CAP_NET_ADMIN"
                                    % name if code == errno.EPERM else
                                    "grab %s: cannot bring it up: %s" % (name, e)) from None
                self._brought_up = self.index
        finally:
            ipr.close()
        try:
            self.sock = self._open_socket()
        except BaseException:
            self.close()
            raise

    def _open_socket(self) -> socket.socket:
        sock = open_packet_socket(self.name, self.index, "grab")
        try:
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            self.recv = sock.recv
        except OSError:                  # before Linux 4.20: filter by packet type
            self.recv = self._recv_incoming
        self.send = sock.send
        return sock

    def _recv_incoming(self, bufsize: int) -> bytes:
        while True:
            frame, addr = self.sock.recvfrom(bufsize)
            if addr[2] != PACKET_OUTGOING:
                return frame

    def close(self) -> None:
        """Release the interface (idempotent; errors of the restore are ignored)."""
        super().close()
        index, self._brought_up = self._brought_up, None
        if index is not None:
            try:
                ipr = _iproute()
                try:
                    ipr.link("set", index=index, state="down")
                finally:
                    ipr.close()
            except Exception:            # the interface may be gone by now
                pass

    def __repr__(self) -> str:
        return "GrabDevice(%r)" % self.name


def open_grab_plug(arg, **_):
    """``grab://IFACE``: a plug on a grabbed interface (see :class:`GrabDevice`)."""
    from ..._errors import ConnectError
    from .endpoints import Plug
    try:
        return Plug(GrabDevice(arg), None, scheme="grab")
    except OSError as e:
        raise ConnectError(e.errno or errno.EINVAL, e.strerror or str(e)) from None
