"""A listening unix stream socket that is never seen refusing."""

from __future__ import annotations

import os
import socket


def listen_unix(path: str, mode: int, backlog: int = 15) -> socket.socket:
    """A non-blocking unix stream socket listening at ``path`` with ``mode``.

    It is bound under a temporary name and renamed to ``path`` once it
    listens with its mode set, so a client that finds the file can connect.
    """
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = "%s.%d" % (path, os.getpid())
    try:
        s.bind(tmp)
        s.listen(backlog)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        s.close()
        raise
    s.setblocking(False)
    return s
