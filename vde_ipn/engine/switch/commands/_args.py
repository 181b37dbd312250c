"""Argument parsing the way the C console handlers do it.

The C handlers read numbers into an ``int``; a number that does not fit
there (2.3.2 silently wraps it, ``4294967296`` becoming 0) raises
:class:`OutOfRange` instead, which the command table answers with
``EINVAL``, 2.3.2's status for a bad argument.
"""

from __future__ import annotations

import re

from ....wire.c_numbers import atoi as c_atoi
from ..console import OutOfRange

INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
ID_MAX = (1 << 32) - 2                   # largest uid/gid; (uid_t)-1 means none


def _fit(value: int, low: int = INT_MIN, high: int = INT_MAX) -> int:
    if not low <= value <= high:
        raise OutOfRange("%d is out of range %d..%d" % (value, low, high))
    return value


_SCAN_INT = re.compile(r"\s*([+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*))")


def atoi(text: str) -> int:
    """C ``atoi``: leading blanks, optional sign, decimal digits; 0 when none."""
    return _fit(c_atoi(text))


def parse_id(text: str) -> int | None:
    """A uid/gid written as a number: its leading digits, as 2.3.2 reads
    them (``12abc`` is 12); None unless ``text`` starts with a digit.

    Raises:
        OutOfRange: beyond the largest uid/gid.
    """
    m = re.match(r"[0-9]+", text)
    return _fit(int(m.group(0)), 0, ID_MAX) if m else None


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
        values.append(_fit(sign * value))
        pos = m.end()
    return values
