"""vde_cryptcab's UDP datagrams, as vde2 2.3.2 (Debian's build) sends them.

Every datagram starts with one type byte:

========  =====  ===========================================================
LOGIN     0x41   client -> server: the key's id (16 bytes, NUL padded)
CHALLENGE 0x42   server -> client: 128 random bytes, in clear
RESPONSE  0x44   client -> server: the challenge, encrypted
AUTH_OK   0x48   server -> client: nothing else
DENY      0x4a   server -> client: ``Access Denied.`` and a NUL
KEEPALIVE 0x4f   client -> server (``-k``), nothing else
DATA      0x20   either way: an Ethernet frame, then an 8-byte little-endian
                 counter, then the CRC-32 (little-endian) of frame and
                 counter, all encrypted
========  =====  ===========================================================

Encryption is Blowfish in CBC mode with PKCS#7 padding, restarted for
each datagram with the session's 16-byte key and 8-byte IV; a key file
holds the key then the IV (24 bytes).  With ``-x`` nothing is encrypted
and DATA carries the bare frame.  The cipher comes from the
``cryptography`` package.
"""

from __future__ import annotations

import struct
import zlib

LOGIN, CHALLENGE, RESPONSE, AUTH_OK, DENY, KEEPALIVE, DATA = (
    0x41, 0x42, 0x44, 0x48, 0x4A, 0x4F, 0x20)
ID_SIZE = 16
CHALLENGE_SIZE = 128
KEY_SIZE, IV_SIZE = 16, 8
DENY_TEXT = b"Access Denied.\0"
PORT = 7667
MAXPKT = 2000
TRAILER = 12                             # counter and CRC after the frame


class CryptError(ValueError):
    """A datagram that does not decrypt or whose check fails."""


def _blowfish():
    try:
        from cryptography.hazmat.decrepit.ciphers.algorithms import Blowfish
    except ImportError:                  # cryptography before 43
        from cryptography.hazmat.primitives.ciphers.algorithms import Blowfish
    return Blowfish


class Cipher:
    """Blowfish-CBC with one key and IV, restarted for every datagram."""

    def __init__(self, key: bytes, iv: bytes):
        from cryptography.hazmat.primitives.ciphers import Cipher as _C, modes
        from cryptography.hazmat.primitives import padding
        if len(key) != KEY_SIZE or len(iv) != IV_SIZE:
            raise ValueError("a key is 16 bytes and an IV 8")
        self._cipher = _C(_blowfish()(key), modes.CBC(iv))
        self._padding = padding.PKCS7(64)

    def encrypt(self, data: bytes) -> bytes:
        p = self._padding.padder()
        e = self._cipher.encryptor()
        return e.update(p.update(data) + p.finalize()) + e.finalize()

    def decrypt(self, data: bytes) -> bytes:
        if not data or len(data) % 8:
            raise CryptError("not a whole number of blocks")
        d = self._cipher.decryptor()
        plain = d.update(data) + d.finalize()
        u = self._padding.unpadder()
        try:
            return u.update(plain) + u.finalize()
        except ValueError as e:
            raise CryptError("bad padding (wrong key?)") from e


def split_key_file(data: bytes) -> tuple[bytes, bytes]:
    """(key, IV) from the first 24 bytes of a key file."""
    if len(data) < KEY_SIZE + IV_SIZE:
        raise ValueError("a key file holds at least 24 bytes (key and IV)")
    return data[:KEY_SIZE], data[KEY_SIZE:KEY_SIZE + IV_SIZE]


def crc32_le(data: bytes) -> bytes:
    return struct.pack("<I", zlib.crc32(data) & 0xFFFFFFFF)


def login(key_id: str) -> bytes:
    raw = key_id.encode()[:ID_SIZE]
    return bytes((LOGIN,)) + raw + bytes(ID_SIZE - len(raw))


def login_id(datagram: bytes) -> str:
    """The id a LOGIN carries (up to the first NUL)."""
    return datagram[1:1 + ID_SIZE].split(b"\0", 1)[0].decode("ascii", "replace")


def encode_data(frame: bytes, counter: int, cipher: Cipher | None) -> bytes:
    if cipher is None:
        return bytes((DATA,)) + frame
    body = frame + struct.pack("<Q", counter)
    return bytes((DATA,)) + cipher.encrypt(body + crc32_le(body))


def decode_data(datagram: bytes, cipher: Cipher | None) -> tuple[bytes, int | None]:
    """(frame, counter) of a DATA datagram (counter None without encryption).

    Raises:
        CryptError: it does not decrypt, or its CRC is wrong.
    """
    if cipher is None:
        return datagram[1:], None
    plain = cipher.decrypt(datagram[1:])
    if len(plain) < TRAILER or crc32_le(plain[:-4]) != plain[-4:]:
        raise CryptError("bad CRC")
    return plain[:-TRAILER], struct.unpack_from("<Q", plain, len(plain) - TRAILER)[0]
