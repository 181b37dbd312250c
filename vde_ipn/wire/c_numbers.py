"""Numbers read from text the way the C tools read them: ``atoi``,
``strtol(text, NULL, 0)`` and ``sscanf`` with ``%i`` or ``%o``."""

from __future__ import annotations

import re

_INT = re.compile(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_OCT = re.compile(r"\s*([+-]?)([0-7]+)")
_DEC = re.compile(r"[ \t\n\r\f\v]*([+-]?[0-9]+)")


def atoi(text: str) -> int:
    """C ``atoi``: leading blanks, optional sign, decimal digits; 0 when none."""
    m = _DEC.match(text)
    return int(m.group(1)) if m else 0


def scan_int(text: str) -> int | None:
    """``sscanf(text, "%i")``: decimal, 0x hex or 0 octal prefix; None if no match."""
    m = _INT.match(text)
    if m is None:
        return None
    value = int(m.group(2), 0) if not re.fullmatch(r"0[0-7]+", m.group(2)) else int(m.group(2), 8)
    return -value if m.group(1) == "-" else value


def strtol(text: str) -> int:
    """C ``strtol(text, NULL, 0)``: as ``%i``, but 0 when there are no digits."""
    value = scan_int(text)
    return 0 if value is None else value


def scan_octal(text: str) -> int | None:
    """``sscanf(text, "%o")``; None if no match."""
    m = _OCT.match(text)
    if m is None:
        return None
    value = int(m.group(2), 8)
    return -value if m.group(1) == "-" else value
