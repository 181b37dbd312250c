"""vde_over_ns's datagrams: Ethernet frames hidden in DNS queries and answers.

vde2 2.3.2's ``vde_over_ns`` (after nstx) carries a cable between a client
and a server that listens on UDP port 53.  Everything is a DNS message:

* client -> server: a query (id, flags ``0x0100``: recursion desired,
  one question, type TXT, class IN) whose name is the data, encoded with
  :func:`encode_text`, cut in labels of 63 characters, followed by the
  labels of the domain both ends were given;
* server -> client: the answer to one pending query (same id, flags
  ``0x8480``: response, authoritative, recursion available), the question
  echoed, then one TXT record (name pointer ``c0 0c``, TTL 0) whose
  character strings, concatenated, are the data in clear, followed by an
  empty string.

The data of either is one *fragment*: a 4-byte header then a piece of a
frame.  The header is the magic byte ``0xb4``, a byte with the fragment's
sequence number (low 4 bits), then a little-endian 16-bit word with the
frame's id (low 12 bits) and the flags (high 4 bits; 1 = last fragment).
A receiver joins the fragments of one id in sequence order once it has
seen the last; id 0 is never delivered.  The client keeps ten queries
pending at the server (fragments of no data, *polls*, when it has
nothing to send), so the server always has a query to answer.

How much a datagram holds is computed as the C tool does, so that its
messages stay within 512 bytes: :func:`query_room` and
:func:`answer_room` (both include the fragment header).

The fragments of one id join up to one bare Ethernet frame (the C tool
with ``-s``; its stdin/stdout mode never sends anything, see
:mod:`vde_ipn.cli.over_ns`).
"""

from __future__ import annotations

import base64
import struct

ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_1234567890"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
MAGIC = 0xB4
LAST = 0x1
HEADER_SIZE = 4
MAX_SEQ = 16                       # 4 bits of sequence number
ID_MASK = 0xFFF
DNS_MAX = 512
LABEL_MAX = 63
TXT_STRING_MAX = 255
TYPE_TXT, CLASS_IN = 16, 1
QUERY_FLAGS, ANSWER_FLAGS = 0x0100, 0x8480
PORT = 53
FILLER = bytes((MAGIC, 0, 0, 0))   # what the server answers a query it held too long


class NstxError(ValueError):
    """A datagram or a name that is not what vde_over_ns sends."""


# -- the text encoding of query names ----------------------------------------
_OURS = ALPHABET.encode("ascii")
_STD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_TO_OURS = bytes.maketrans(_STD, _OURS)
_TO_STD = bytes.maketrans(_OURS, _STD)


def encode_text(data: bytes) -> str:
    """``data`` as name characters: how many pad bytes, then 4 letters per 3
    bytes (6 bits each, most significant first, zero padding): base64 with
    another alphabet."""
    pad = -len(data) % 3
    body = base64.b64encode(data + bytes(pad)).translate(_TO_OURS)
    return ALPHABET[pad] + body.decode("ascii")


def decode_text(text: str) -> bytes:
    """Reverse :func:`encode_text`; characters after the last whole group of
    four are ignored, as the C decoder does."""
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise NstxError("non-ASCII character in a data name") from None
    if not raw:
        raise NstxError("empty data name")
    if raw.translate(None, _OURS):
        raise NstxError("character %r is not in the name alphabet"
                        % raw.translate(None, _OURS)[:1].decode("ascii"))
    pad = _INDEX[text[0]]
    groups = (len(raw) - 1) // 4 * 4
    out = base64.b64decode(raw[1:1 + groups].translate(_TO_STD))
    if pad > 2 or pad > len(out):
        raise NstxError("bad padding count %d" % pad)
    return out[:len(out) - pad]


# -- fragments ------------------------------------------------------------------
def pack_fragment(frag_id: int, seq: int, last: bool, data: bytes = b"") -> bytes:
    """A fragment: header then ``data``."""
    if not 0 <= seq < MAX_SEQ:
        raise NstxError("fragment sequence %d does not fit 4 bits" % seq)
    word = (frag_id & ID_MASK) | ((LAST if last else 0) << 12)
    return struct.pack("<BBH", MAGIC, seq, word) + data


def parse_fragment(fragment: bytes) -> tuple[int, int, bool, bytes]:
    """``(id, seq, last, data)``; the magic byte is not checked (nor does the
    C tool check it)."""
    if len(fragment) < HEADER_SIZE:
        raise NstxError("fragment of %d bytes, shorter than its header" % len(fragment))
    _magic, seqchan, word = struct.unpack_from("<BBH", fragment)
    return word & ID_MASK, seqchan & 0x0F, bool((word >> 12) & LAST), fragment[HEADER_SIZE:]


def split_frame(frame: bytes, frag_id: int, room: int) -> list[bytes]:
    """The fragments of ``frame`` when each may hold ``room`` bytes (header
    included).  A frame filling its last fragment exactly gets an empty
    last fragment after it (the C client sends none, and that frame is
    never delivered)."""
    piece = room - HEADER_SIZE
    if piece <= 0:
        raise NstxError("no room for data in a fragment of %d bytes" % room)
    chunks = [frame[i:i + piece] for i in range(0, len(frame), piece)]
    if not chunks or len(chunks[-1]) == piece:
        chunks.append(b"")
    if len(chunks) > MAX_SEQ:
        raise NstxError("a frame of %d bytes needs %d fragments, more than %d"
                        % (len(frame), len(chunks), MAX_SEQ))
    return [pack_fragment(frag_id, seq, seq == len(chunks) - 1, c)
            for seq, c in enumerate(chunks)]


class IdCounter:
    """Fragment ids: 12 bits, counting up and never 0 (a frame sent with id
    0 would never be delivered)."""

    __slots__ = ("value",)

    def __init__(self, start: int = 0):
        self.value = start & ID_MASK

    def next(self) -> int:
        self.value = (self.value + 1) & ID_MASK
        if self.value == 0:
            self.value = 1
        return self.value


class Reassembler:
    """Joins fragments into payloads; a frame missing a fragment for
    ``timeout`` seconds is forgotten (30 s, as in the C tool)."""

    def __init__(self, timeout: float = 30.0):
        self.timeout = timeout
        self._items: dict[int, list] = {}      # id -> [last seen, count or None, {seq: data}]
        self._next_scan = float("-inf")
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def feed(self, fragment: bytes, now: float) -> bytes | None:
        """Add one fragment; return the payload it completes, if any
        (possibly empty: the client's polls are empty payloads)."""
        if now >= self._next_scan:
            self.expire(now)
        frag_id, seq, last, data = parse_fragment(fragment)
        if frag_id == 0:
            return None
        item = self._items.get(frag_id)
        if item is None:
            item = self._items[frag_id] = [now, None, {}]
        item[0] = now
        if last:
            item[1] = seq + 1
        item[2].setdefault(seq, data)
        count, chunks = item[1], item[2]
        if count is not None and all(s in chunks for s in range(count)):
            del self._items[frag_id]
            return b"".join(chunks[s] for s in range(count))
        return None

    def expire(self, now: float) -> None:
        """Forget the frames that waited too long (looked for at most once
        a second from :meth:`feed`)."""
        self._next_scan = now + 1.0
        for frag_id in [k for k, v in self._items.items() if now - v[0] > self.timeout]:
            del self._items[frag_id]
            self.dropped += 1


# -- names ----------------------------------------------------------------------
def domain_labels(domain: str) -> bytes:
    """The domain as DNS labels (with the final empty label)."""
    raw = domain.encode("utf-8", "surrogateescape")
    parts = raw.split(b".")
    if parts and parts[-1] == b"":
        parts.pop()
    if not parts or any(not 0 < len(p) <= LABEL_MAX for p in parts):
        raise NstxError("%r is not a domain name (empty label or one longer than %d)"
                        % (domain, LABEL_MAX))
    out = b"".join(bytes((len(p),)) + p for p in parts) + b"\0"
    if len(out) > 255:
        raise NstxError("domain name %r is longer than 255 bytes" % domain)
    return out


def data_name(data: bytes, suffix: bytes) -> bytes:
    """The query name carrying ``data`` under ``suffix`` (labels)."""
    text = encode_text(data).encode("ascii")
    labels = b"".join(bytes((len(text[i:i + LABEL_MAX]),)) + text[i:i + LABEL_MAX]
                      for i in range(0, len(text), LABEL_MAX))
    return labels + suffix


def name_data(name: bytes, suffix: bytes) -> bytes | None:
    """The data of a query name, or None when it is not under ``suffix``."""
    if len(name) <= len(suffix) or not name.endswith(suffix):
        return None
    labels, pos, end = [], 0, len(name) - len(suffix)
    while pos < end:
        n = name[pos]
        labels.append(name[pos + 1:pos + 1 + n])
        pos += 1 + n
    if pos != end:
        return None                      # the suffix matched inside a label
    try:
        return decode_text(b"".join(labels).decode("ascii"))
    except (UnicodeDecodeError, NstxError):
        return None


def _c_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def query_room(domain: str) -> int:
    """Bytes of fragment (header included) one query holds, as the C client
    computes it from the length of the domain argument."""
    n = len(domain.encode("utf-8", "surrogateescape")) + 1
    room = _c_div(189 * (254 - n), 256) - 6
    return max(0, min(room, 183 - _c_div(189 * n, 256)))


def answer_room(qname: bytes) -> int:
    """Bytes of fragment (header included) the answer to a query named
    ``qname`` (labels) holds."""
    raw = DNS_MAX - (12 + len(qname) + 4)
    return max(0, min(raw - 14, 253))


# -- DNS messages ------------------------------------------------------------------
def build_query(dns_id: int, name: bytes) -> bytes:
    """A query for the TXT record of ``name`` (labels)."""
    return struct.pack(">HHHHHH", dns_id & 0xFFFF, QUERY_FLAGS, 1, 0, 0, 0) \
        + name + struct.pack(">HH", TYPE_TXT, CLASS_IN)


def txt_rdata(data: bytes) -> bytes:
    """``data`` as TXT character strings of at most 255 bytes, then an
    empty one (the C client reads up to it)."""
    out = bytearray()
    for i in range(0, len(data), TXT_STRING_MAX):
        chunk = data[i:i + TXT_STRING_MAX]
        out += bytes((len(chunk),)) + chunk
    return bytes(out) + b"\0"


def txt_data(rdata: bytes) -> bytes:
    """The character strings of a TXT record joined, up to an empty one."""
    out, pos = bytearray(), 0
    while pos < len(rdata):
        n = rdata[pos]
        if n == 0:
            break
        if pos + 1 + n > len(rdata):
            raise NstxError("TXT string runs past its record")
        out += rdata[pos + 1:pos + 1 + n]
        pos += 1 + n
    return bytes(out)


def build_answer(dns_id: int, qname: bytes, fragment: bytes) -> bytes:
    """The answer to query ``dns_id`` named ``qname``, carrying ``fragment``."""
    rdata = txt_rdata(fragment)
    return (struct.pack(">HHHHHH", dns_id & 0xFFFF, ANSWER_FLAGS, 1, 1, 0, 0)
            + qname + struct.pack(">HH", TYPE_TXT, CLASS_IN)
            + struct.pack(">HHHIH", 0xC00C, TYPE_TXT, CLASS_IN, 0, len(rdata)) + rdata)


def read_name(msg: bytes, pos: int) -> tuple[bytes, int]:
    """The name at ``pos`` as uncompressed labels, and where it ends in
    ``msg``; compression pointers are followed (at most 20)."""
    out, end, jumps = bytearray(), None, 0
    while True:
        if pos >= len(msg):
            raise NstxError("name runs past the message")
        n = msg[pos]
        if n & 0xC0 == 0xC0:
            if pos + 1 >= len(msg):
                raise NstxError("name pointer cut short")
            if end is None:
                end = pos + 2
            jumps += 1
            if jumps > 20:
                raise NstxError("name pointers loop")
            pos = ((n & 0x3F) << 8) | msg[pos + 1]
            continue
        if n & 0xC0:
            raise NstxError("label type %#x" % n)
        if n == 0:
            out.append(0)
            if len(out) > 255:
                raise NstxError("name longer than 255 bytes")
            return bytes(out), (pos + 1 if end is None else end)
        if pos + 1 + n > len(msg):
            raise NstxError("label runs past the message")
        out += msg[pos:pos + 1 + n]
        pos += 1 + n


def parse_query(msg: bytes) -> tuple[int, bytes]:
    """``(id, first question's name)`` of a query."""
    if len(msg) < 17:
        raise NstxError("message of %d bytes is too short" % len(msg))
    dns_id, flags, qdcount = struct.unpack_from(">HHH", msg)
    if flags & 0x8000:
        raise NstxError("a response, not a query")
    if qdcount < 1:
        raise NstxError("a query without a question")
    name, _ = read_name(msg, 12)
    return dns_id, name


def parse_answer(msg: bytes) -> tuple[int, list[bytes]]:
    """``(id, data of each TXT answer)`` of a response."""
    if len(msg) < 12:
        raise NstxError("message of %d bytes is too short" % len(msg))
    dns_id, flags, qdcount, ancount = struct.unpack_from(">HHHH", msg)
    if not flags & 0x8000:
        raise NstxError("a query, not a response")
    pos = 12
    for _ in range(qdcount):
        _, pos = read_name(msg, pos)
        pos += 4
    out = []
    for _ in range(ancount):
        _, pos = read_name(msg, pos)
        if pos + 10 > len(msg):
            raise NstxError("answer header cut short")
        rtype, _cls, _ttl, rdlen = struct.unpack_from(">HHIH", msg, pos)
        pos += 10
        if pos + rdlen > len(msg):
            raise NstxError("answer data cut short")
        if rtype == TYPE_TXT:
            out.append(txt_data(msg[pos:pos + rdlen]))
        pos += rdlen
    return dns_id, out
