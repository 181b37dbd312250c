"""The frame format of vdeplug_agno's ``agno`` plugin (AES-128, layer 2).

An encrypted frame keeps the clear Ethernet addresses; what follows is
ciphertext::

    dst(6) src(6) type(2)          type: 0xa6de, or per ``ethtype=``
    header(16)                     AES-ECB of the clear header below
    payload(n, padded to 16)       AES-CBC, IV = the clear header

    clear header: original type(2) pad(1) 0(1) "agno"(4) time(4, BE) salt(4)

``pad`` is the number of zero bytes added to the payload (0-15); a
receiver drops a frame whose header does not decrypt to the ``agno``
tag or whose time is not within [now-2, now+1] seconds (a crude guard
against replay: both ends need synchronised clocks).

Pure codec: the caller passes the time and the salt.  Ciphers come from
the ``cryptography`` package (an optional dependency: ``vde-ipn[agno]``).
"""

from __future__ import annotations

import struct

from .ethernet import ETH_HLEN

__all__ = ["AGNO_TYPE", "AgnoError", "AgnoCipher", "key_from_text", "parse_ethtype"]

AGNO_TYPE = 0xA6DE
TAG = b"agno"
BLOCK = 16
ETHTYPE_COPY = 0                        # keep the clear frame's type
ETHTYPE_RAND = 0xFFFF                   # a random type per frame
_HEADER = struct.Struct("!2sBB4sI4s")
_NAMED = {"copy": ETHTYPE_COPY, "ipv4": 0x0800, "ipv6": 0x86DD, "rand": ETHTYPE_RAND}


class AgnoError(ValueError):
    """A key or option the plugin refuses (vde_open: EINVAL)."""


def key_from_text(text: bytes) -> bytes:
    """The 16-byte key in a key file, read as the C plugin reads it.

    The first 32 hex digits count, everything else is skipped; missing
    digits leave zero bytes.  Byte for byte like the C plugin, which
    reads an uppercase ``A`` as 1 (``a`` and ``B``-``F`` as expected):
    both ends of a cable must derive the same key from the same file.
    Fewer than two digits: :class:`AgnoError`.
    """
    key = bytearray(16)
    count = 0
    for c in text:
        if count == 32:
            break
        if not (0x30 <= c <= 0x39 or 0x41 <= c <= 0x46 or 0x61 <= c <= 0x66):
            continue
        val = c & 0xF
        if c > 0x41:
            val += 9
        if count & 1:
            key[count >> 1] |= val
        else:
            key[count >> 1] = val << 4
        count += 1
    if count < 2:
        raise AgnoError("the key file holds no key (32 hex digits expected)")
    return bytes(key)


def parse_ethtype(text: str) -> int:
    """The ``ethtype=`` option: ``copy``, ``ipv4``, ``ipv6``, ``rand`` or a
    number (0 or empty: 0xa6de; otherwise 0x600 <= type < 0xffff)."""
    if text in _NAMED:
        return _NAMED[text]
    import re
    m = re.match(r"\s*(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
    if m is None:
        if text.strip():
            raise AgnoError("ethtype=%s: not a number nor copy/ipv4/ipv6/rand" % text)
        return AGNO_TYPE
    digits = m.group(1)
    value = int(digits[2:], 16) if digits[:2] in ("0x", "0X") else \
        int(digits, 8) if digits.startswith("0") else int(digits)
    if value == 0:
        return AGNO_TYPE
    if 0x600 <= value < 0xFFFF:
        return value
    raise AgnoError("ethtype=%s: out of range (0x600-0xfffe)" % text)


class AgnoCipher:
    """Encrypt and decrypt frames with one 16-byte key."""

    def __init__(self, key: bytes, ethtype: int = AGNO_TYPE):
        try:
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        except ImportError:
            raise AgnoError("agno:// needs the cryptography package "
                            "(pip install cryptography, or vde-ipn[agno])") from None
        if len(key) != 16:
            raise AgnoError("an agno key is 16 bytes")
        self._aes = algorithms.AES(key)
        self._cipher, self._cbc = Cipher, modes.CBC
        ecb = Cipher(self._aes, modes.ECB())
        self._ecb_enc = ecb.encryptor()
        self._ecb_dec = ecb.decryptor()
        self.ethtype = ethtype

    def encrypt(self, frame, now: int, salt: bytes, rand_type: int = 0) -> bytes:
        """The encrypted form of ``frame`` (at least 14 bytes) sent at ``now``.

        ``rand_type`` is used as the outer type when ``ethtype`` is rand.
        """
        frame = bytes(frame)
        payload = frame[ETH_HLEN:]
        pad = -len(payload) % BLOCK
        clear = _HEADER.pack(frame[12:14], pad, 0, TAG, now & 0xFFFFFFFF, salt)
        outer = frame[12:14] if self.ethtype == ETHTYPE_COPY else \
            struct.pack("!H", rand_type if self.ethtype == ETHTYPE_RAND else self.ethtype)
        body = self._cipher(self._aes, self._cbc(clear)).encryptor().update(
            payload + b"\0" * pad) if payload else b""
        return frame[:12] + outer + self._ecb_enc.update(clear) + body

    def decrypt(self, frame, now: int):
        """The clear frame, or None when it is not ours (bad key, tag or time)."""
        frame = bytes(frame)
        if len(frame) < ETH_HLEN + BLOCK:
            return None
        clear = self._ecb_dec.update(frame[ETH_HLEN:ETH_HLEN + BLOCK])
        etype, pad, _unused, tag, sent, _salt = _HEADER.unpack(clear)
        if tag != TAG or (now - sent + 1) & ~3:
            return None
        size = len(frame) - BLOCK - (pad & 0xF) - ETH_HLEN      # clear payload bytes
        if size < 0:
            return None
        padded = size + (-size % BLOCK)
        body = frame[ETH_HLEN + BLOCK:ETH_HLEN + BLOCK + padded]
        if len(body) != padded:
            return None
        plain = self._cipher(self._aes, self._cbc(clear)).decryptor().update(body) \
            if padded else b""
        return frame[:12] + etype + plain[:size]
