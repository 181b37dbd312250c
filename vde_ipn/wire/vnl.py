"""VDE network locators (VNLs), parsed the way vdeplug4 4.0.1 parses them.

A VNL is ``SCHEME://ARGUMENT`` or, without ``://``, an argument of the
``vde`` scheme.  Inside an argument every piece of text obeys one set of
quoting rules (see :func:`unquote`), and splitting at ``[``, ``]`` and
``/`` only ever happens on *unquoted* characters, so each function below
splits and unquotes in a single pass, never one after the other.

Everything works on the UTF-8 bytes of the text (``surrogateescape``, as
for file names), exactly as the C library works on ``char``; results are
decoded back the same way, so ``%FF`` yields ``'\\udcff'`` which
``os.fsencode`` turns back into byte 0xFF.  Text stops at the first NUL,
whether written or produced by ``%00``, like a C string.

Pure: no filesystem, no environment (see ``vde_ipn.io.plugs.vnl_resolve``).
"""

from dataclasses import dataclass
from types import MappingProxyType
from typing import Dict, Iterable, List, Mapping, Optional, Tuple, Union

from vde_ipn._errors import VdeIpnError

__all__ = [
    "VnlError", "UnknownKeyError", "VdeAddress", "VDE_KEYS",
    "unquote", "split_scheme", "parse_vde", "parse_options",
    "parse_path_options", "parse_head_options", "split_nested",
]

Keys = Union[Mapping[str, str], Iterable[str]]

_QUOTE, _DQUOTE, _ESC, _PERCENT = 0x27, 0x22, 0x5C, 0x25
_HEX = b"0123456789abcdefABCDEF"
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
# Scanner states.
_CHAR, _IN_QUOTE, _IN_DQUOTE, _AFTER_ESC, _AFTER_PERC, _AFTER_PERC1 = range(6)


class VnlError(VdeIpnError, ValueError):
    """A VNL that vdeplug4 would refuse (``vde_open`` fails with EINVAL)."""


class UnknownKeyError(VnlError):
    """An option tag that matches no known key; ``.key`` is the tag."""

    def __init__(self, key: str):
        super().__init__("unknown key: %s" % key)
        self.key = key


@dataclass(frozen=True)
class VdeAddress:
    """The ``vde`` scheme argument ``PATH[PARAMS]``, decoded.

    ``path``: the switch directory, unquoted but otherwise as written
    (not made absolute; ``""`` means the default switch directories).
    ``port``: ``None`` = any free port, ``0`` = the management port
    (REQ_NEW_PORT0), ``N`` = port N (always < 2**24, see :func:`parse_vde`).
    ``portgroup``: a non-numeric port group name, else ``None``.
    ``group``: group name or number for the data socket (may be ``""``).
    ``mode``: data socket mode as a C ``mode_t`` (``None`` = default 0700).
    """

    __slots__ = ("path", "port", "portgroup", "group", "mode")
    path: str
    port: Optional[int]
    portgroup: Optional[str]
    group: Optional[str]
    mode: Optional[int]


# Tag -> result key of the ``vde`` scheme.  Order matters for prefixes:
# ``p`` selects ``port`` (which shares its slot with ``portgroup``).
VDE_KEYS = MappingProxyType({"port": "portgroup", "portgroup": "portgroup",
                             "group": "group", "mode": "mode"})


def _encode(text: str) -> bytes:
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise VnlError("VNL is not encodable: %s" % exc) from None
    return data.split(b"\0", 1)[0]


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _scan(data: bytes, start: int, delims: bytes) -> Tuple[bytes, Optional[int]]:
    """Unquote ``data[start:]`` up to the first unquoted delimiter.

    Returns the unquoted token (cut at NUL) and the index just past the
    delimiter, or ``None`` when the end of ``data`` was reached.
    """
    out = bytearray()
    state = _CHAR
    for i in range(start, len(data)):
        c = data[i]
        if state == _IN_QUOTE or state == _IN_DQUOTE:
            if c == (_QUOTE if state == _IN_QUOTE else _DQUOTE):
                state = _CHAR
            else:
                out.append(c)
        elif state == _AFTER_ESC:
            out.append(c)
            state = _CHAR
        elif c == _QUOTE:
            state = _IN_QUOTE
        elif c == _DQUOTE:
            state = _IN_DQUOTE
        elif c == _ESC:
            state = _AFTER_ESC
        elif c == _PERCENT:
            out.append(c)
            state = _AFTER_PERC
        elif c in delims:
            return bytes(out).split(b"\0", 1)[0], i + 1
        else:
            out.append(c)
            if state == _AFTER_PERC:
                state = _AFTER_PERC1
            elif state == _AFTER_PERC1:
                # "%XY" just completed: replace by one byte if XY is hex.
                if out[-2] in _HEX and out[-1] in _HEX:
                    out[-3:] = bytes([int(out[-2:].decode("ascii"), 16)])
                state = _CHAR
    return bytes(out).split(b"\0", 1)[0], None


def _split(data: bytes, start: Optional[int], delims: bytes) -> List[bytes]:
    """All unquoted tokens of ``data[start:]`` separated by ``delims``."""
    tokens = []
    while start is not None:
        token, start = _scan(data, start, delims)
        tokens.append(token)
    return tokens


def _first_delim(data: bytes, start: int, delim: bytes) -> Optional[int]:
    """Index of the first unquoted ``delim`` in ``data[start:]``, or None."""
    _, pos = _scan(data, start, delim)
    return None if pos is None else pos - 1


def _last_delim(data: bytes, start: int, delim: bytes) -> Optional[int]:
    """Index of the last unquoted ``delim`` in ``data[start:]``, or None."""
    last = None
    pos: Optional[int] = start
    while pos is not None:
        _, pos = _scan(data, pos, delim)
        if pos is not None:
            last = pos - 1
    return last


def _key_table(keys: Keys) -> List[Tuple[bytes, str]]:
    if isinstance(keys, Mapping):
        return [(_encode(tag), dest) for tag, dest in keys.items()]
    return [(_encode(tag), tag) for tag in keys]


def _apply(items: List[bytes], table: List[Tuple[bytes, str]],
           untagged: Optional[str], result: Dict[str, str]) -> None:
    """Store each ``TAG[=VALUE]`` item into ``result`` (later items win)."""
    for item in items:
        eq = item.find(b"=")
        tag = item if eq < 0 else item[:eq]
        if not tag:
            continue
        for name, dest in table:
            if name.startswith(tag):
                result[dest] = "" if eq < 0 else _decode(item[eq + 1:])
                break
        else:
            if eq < 0 and untagged is not None:
                result[untagged] = _decode(item)
            else:
                raise UnknownKeyError(_decode(tag))


def unquote(s: str) -> str:
    """Decode a whole VNL with vdeplug4's quoting rules.

    ``'...'`` and ``"..."`` quote everything up to the matching quote (no
    escapes inside; an unterminated quote runs to the end); outside quotes
    ``\\c`` is a literal ``c`` and ``%XY`` (two hex digits) is byte 0xXY.
    A ``%`` not followed by two hex digits stays literal, and ``%`` inside
    quotes or after ``\\`` is never decoded.  Decoded bytes are never
    re-interpreted.  The result stops at the first NUL.
    """
    return _decode(_scan(_encode(s), 0, b"")[0])


def split_scheme(vnl: str) -> Tuple[str, str]:
    """``"mod://rest"`` -> ``("mod", "rest")``, split at the first ``://``
    of the raw text (quoting plays no role here); without ``://`` the whole
    string is the argument of ``"vde"``.  ``"://x"`` gives ``("", "x")``.
    """
    mod, sep, rest = vnl.partition("://")
    return (mod, rest) if sep else ("vde", vnl)


def parse_options(items: str, keys: Keys, *,
                  untagged: Optional[str] = None) -> Dict[str, str]:
    """Parse a raw ``ITEM/ITEM/...`` option list into ``{key: value}``.

    ``keys`` is an ordered iterable of tag names, or a mapping from tag
    name to result key.  An item ``TAG=VALUE`` (or bare ``TAG``, value
    ``""``) matches the *first* key that ``TAG`` is a prefix of.  Items are
    unquoted one by one; empty tags (``""``, ``=x``) are skipped; when a
    key is repeated the last item wins.  A bare item matching no key goes
    to ``untagged`` if given; any other unmatched tag raises
    :class:`UnknownKeyError`.
    """
    result: Dict[str, str] = {}
    _apply(_split(_encode(items), 0, b"/"), _key_table(keys), untagged, result)
    return result


def parse_path_options(arg: str, keys: Keys, *, untagged: Optional[str] = None
                       ) -> Tuple[str, Dict[str, str]]:
    """Split ``PATH[ITEM/ITEM/...]`` (``vde://``, ``hub://``, ``switch://``).

    PATH (unquoted) ends at the first unquoted ``[``; the options end at the
    last unquoted ``]`` after it (text after that is ignored; a missing
    ``]`` means "to the end").  Options are parsed as by
    :func:`parse_options`.  Returns ``(path, options)``.
    """
    data = _encode(arg)
    path, rest = _scan(data, 0, b"[")
    result: Dict[str, str] = {}
    if rest is not None:
        end = _last_delim(data, rest, b"]")
        params = data[rest:] if end is None else data[rest:end]
        _apply(_split(params, 0, b"/"), _key_table(keys), untagged, result)
    return _decode(path), result


def parse_head_options(arg: str, keys: Keys) -> Tuple[str, Dict[str, str]]:
    """Split ``HEAD/ITEM/ITEM/...`` (``vxvde://``, ``vxlan://``).

    HEAD (unquoted, often an address, may be empty) ends at the first
    unquoted ``/``; the remaining items are parsed as by
    :func:`parse_options` with no untagged key.  Returns ``(head, options)``.
    """
    tokens = _split(_encode(arg), 0, b"/")
    result: Dict[str, str] = {}
    _apply(tokens[1:], _key_table(keys), None, result)
    return _decode(tokens[0]), result


def split_nested(arg: str) -> Tuple[str, Optional[str]]:
    """Split ``HEAD{NESTED}`` (``vlan://``, ``agno://``, ``tee://``).

    HEAD ends at the first ``{`` outside quotes; NESTED runs to the last
    ``}`` outside quotes after it (or to the end).  Both are returned raw
    (still quoted: NESTED is a VNL of its own, HEAD is parsed by the
    scheme).  No ``{`` at all: ``(arg, None)``, which vdeplug4 opens as
    the default switch.
    """
    data = _encode(arg)
    brace = _first_delim(data, 0, b"{")
    if brace is None:
        return _decode(data), None
    end = _last_delim(data, brace + 1, b"}")
    nested = data[brace + 1:] if end is None else data[brace + 1:end]
    return _decode(data[:brace]), _decode(nested)


def _strtol(text: str, base: int) -> int:
    """C ``strtol(text, NULL, base)`` for base <= 10, clamped to a long."""
    s = text.lstrip(" \t\n\v\f\r")
    sign = -1 if s[:1] == "-" else 1
    if s[:1] in ("-", "+"):
        s = s[1:]
    digits = 0
    for ch in s:
        if not ("0" <= ch <= "9" and int(ch) < base):
            break
        digits = digits * base + int(ch)
    return max(_LONG_MIN, min(_LONG_MAX, sign * digits))


def _wire_port(text: str) -> Optional[int]:
    """The port a request carries for an all-digit port string.

    vdeplug4 keeps the number in a C ``int`` (0 and negatives mean the
    management port) and sends ``port << 8`` in a 32-bit field, so only the
    low 24 bits reach the switch; 0 there means "any port".
    """
    value = _strtol(text, 10) & 0xFFFFFFFF
    if value == 0 or value >= 1 << 31:
        return 0
    return (value & 0xFFFFFF) or None


def parse_vde(arg: str) -> VdeAddress:
    """Parse the argument of the ``vde`` scheme: ``PATH[PARAMS]``.

    PARAMS items: ``port=``, ``portgroup=``, ``group=``, ``mode=`` (tags by
    prefix: ``p``/``po`` = port, ``g`` = group, ``m`` = mode) or a bare
    value.  ``port``, ``portgroup`` and a bare value are one setting (the
    last one wins); a bare item that prefixes a tag is that tag with an
    empty value (``[p]`` = any port, ``[g]`` = group ``""``).  An all-digit
    value is a port number (``[0]`` = management port, ``[007]`` = 7; huge
    numbers wrap as in the C library, see :func:`_wire_port`), any other
    non-empty value a port group; an empty one means any port.  ``mode``
    is octal as C ``strtol(v, NULL, 8)`` (``"9"`` -> 0).  Raises
    :class:`UnknownKeyError` for an unknown tag.
    """
    path, opts = parse_path_options(arg, VDE_KEYS, untagged="portgroup")
    pg = opts.get("portgroup") or None
    port: Optional[int] = None
    if pg is not None and pg.isascii() and pg.isdigit():
        port, pg = _wire_port(pg), None
    mode = opts.get("mode")
    return VdeAddress(
        path=path, port=port, portgroup=pg, group=opts.get("group"),
        mode=None if mode is None else _strtol(mode, 8) & 0xFFFFFFFF)
