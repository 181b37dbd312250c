"""Argument parsing the way the C console handlers do it."""

from __future__ import annotations

import re

_SCAN_INT = re.compile(r"\s*([+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*))")


def atoi(text: str) -> int:
    """C ``atoi``: leading blanks, optional sign, decimal digits; 0 when none."""
    m = re.match(r"[ \t\n\r\f\v]*([+-]?[0-9]+)", text)
    return int(m.group(1)) if m else 0


def scan_ints(text: str, count: int) -> list[int] | None:
    """``sscanf(text, "%i %i ...")`` with ``count`` conversions; None if short."""
    values, pos = [], 0
    for _ in range(count):
        m = _SCAN_INT.match(text, pos)
        if m is None:
            return None
        token = m.group(1)
        sign = -1 if token.startswith("-") else 1
        digits = token.lstrip("+-")
        if len(digits) > 1 and digits[0] == "0" and digits[1] not in "xX":
            value = int(digits, 8)
        else:
            value = int(digits, 0)
        values.append(sign * value)
        pos = m.end()
    return values
