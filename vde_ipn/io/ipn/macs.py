"""MAC announcements: where a MAC lives, for members that never receive.

A switching policy learns a MAC's port from the frames a member
receives.  A member that only sends (``SHUT_RD``) receives nothing, yet
in the kernel its unicast reached the right port, since the network had
one table.  So each sender of such a network writes the source MACs it
sends from into its own file ``m/P.I`` (a few slots, refreshed at most
every :data:`REFRESH` seconds per MAC), and a sender whose unicast
would be flooded reads the other senders' files (at most every
:data:`RESCAN` seconds) before flooding.  The files are read with
``pread``, never mapped, so nothing another member does to its file can
hurt the reader.
"""

from __future__ import annotations

import os

from ...wire.ipn_layout import MAC_SLOT, MAC_SLOTS, decode_mac_slots, encode_mac_slot

REFRESH = 5.0
RESCAN = 0.2
_SIZE = MAC_SLOT.size * MAC_SLOTS


class Announcer:
    """This sender's announcement file."""

    def __init__(self, path: str, mode: int):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, mode)
            os.ftruncate(fd, _SIZE)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.path = path
        self.slots: dict[bytes, list] = {}        # mac -> [slot, last written]

    def sent_from(self, mac: bytes, now: float) -> None:
        e = self.slots.get(mac)
        if e is not None and now - e[1] < REFRESH:
            return
        if e is None:
            if len(self.slots) < MAC_SLOTS:
                e = [len(self.slots), now]
            else:                                  # full: the stalest slot goes
                old = min(self.slots, key=lambda m: self.slots[m][1])
                e = [self.slots.pop(old)[0], now]
            self.slots[mac] = e
        e[1] = now
        try:
            os.pwrite(self.fd, encode_mac_slot(mac, now), e[0] * MAC_SLOT.size)
        except OSError:
            pass

    def close(self) -> None:
        os.close(self.fd)
        try:
            os.unlink(self.path)
        except OSError:
            pass


def read_announcements(path: str) -> list[tuple[bytes, float]]:
    """(mac, last sent) announced in ``path``; [] if unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return []
    try:
        return decode_mac_slots(os.pread(fd, _SIZE, 0))
    except OSError:
        return []
    finally:
        os.close(fd)
