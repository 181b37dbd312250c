"""Catch what a program writes to syslog, without touching the machine's.

The program runs in a private mount namespace whose ``/dev`` is a
directory of links to the real device nodes plus ``log``, a datagram
socket of the test's: C ``syslog()`` and Python's ``syslog`` write there.
Needs root (``unshare -m``).
"""

from __future__ import annotations

import os
import re
import socket

SCRIPT = r'''
d=$1; shift
mkdir -p "$d/realdev" "$d/newdev"
mount --rbind /dev "$d/realdev" || exit 97
for e in "$d"/realdev/* "$d"/realdev/.[!.]*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    ln -s "$e" "$d/newdev/${e##*/}"
done
ln -s "$d/log" "$d/newdev/log"
mount --bind "$d/newdev" /dev || exit 98
exec "$@"
'''


class SyslogCapture:
    def __init__(self, directory: str):
        self.dir = directory
        self.path = os.path.join(directory, "log")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.lines: list[str] = []

    def wrap(self, argv: list) -> list:
        """``argv`` run with this capture as its /dev/log."""
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", SCRIPT,
                "sh", self.dir] + list(argv)

    def messages(self) -> list[str]:
        """Every message so far as ``TAG: TEXT`` (priority and date removed)."""
        while True:
            try:
                raw = self.sock.recv(65536)
            except BlockingIOError:
                break
            text = raw.decode("utf-8", "replace").rstrip("\n\0")
            self.lines.append(re.sub(r"^<\d+>\w{3} [ \d]\d \d\d:\d\d:\d\d ", "", text))
        return list(self.lines)

    def close(self) -> None:
        self.sock.close()
