"""The management console's line format (vde_switch 2.3.2).

A session opens with :data:`BANNER` then :data:`PROMPT`.  A command that
prints data answers ``0000 DATA END WITH '.'`` + lines + ``.``; every
command ends with a status line, ``1000 Success`` or ``1EEE <strerror>``
where EEE is the errno, and the prompt again.  ``logout``/``shutdown``
answer :data:`END_OF_SESSION` with no newline and no prompt.
"""

from __future__ import annotations

import os

VERSION = "2.3.2"
BANNER = ("VDE switch V.%s\n(C) Virtual Square Team (coord. R. Davoli) "
          "2005,2006,2007 - GPLv2\n" % VERSION)
PROMPT = "\nvde$ "
DATA_START = "0000 DATA END WITH '.'\n"
DATA_END = ".\n"
END_OF_SESSION = "9999 END OF SESSION"
LINE_MAX = 128                           # one read of at most this many bytes = one command


def status_line(rc: int) -> str:
    """``1000 Success`` or ``1EEE <strerror>`` with a newline."""
    if rc == 0:
        return "1000 Success\n"
    return "1%03d %s\n" % (rc, os.strerror(rc))


def response(lines: list[str] | None, rc: int, text: str = "") -> str:
    """Body of one answer: ``text`` as is (``load``'s transcript), the data
    block if ``lines`` is not None, then the status line."""
    body = text
    if lines is not None:
        body += DATA_START + "".join(line + "\n" for line in lines) + DATA_END
    return body + status_line(rc)


def debug_line(tag: int, category: str, message: str) -> str:
    """An asynchronous debug notification: ``3TTT category message``."""
    return "3%03o %s %s\n" % (tag, category, message)


def script_lines(data: bytes, size: int = LINE_MAX):
    """Split a script as ``fgets`` into a ``size``-byte buffer reads it:
    at each newline, and every ``size - 1`` bytes of a longer line.
    One trailing newline is removed unless the line is only a newline."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start, start + size - 1)
        end = start + size - 1 if end < 0 else end + 1
        chunk = data[start:end]
        if len(chunk) > 1 and chunk.endswith(b"\n"):
            chunk = chunk[:-1]
        yield chunk
        start = end


def split_command(raw: str) -> str:
    """What the switch takes from one read: one trailing newline stripped,
    leading blanks and tabs skipped; a carriage return is kept."""
    if raw.endswith("\n"):
        raw = raw[:-1]
    return raw.lstrip(" \t")
