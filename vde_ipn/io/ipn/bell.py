"""Doorbells: the datagrams that make an IPN node's descriptor readable.

A node's ``fileno()`` is its doorbell socket, and the kernel decides what
``select``/``poll``/``epoll`` report on it.  So that a readable socket
means a message (see :mod:`vde_ipn.io.ipn.datapath`), the socket carries
a classic BPF filter, checked by the kernel before anything is queued:

* a doorbell is 4 bytes, the node's secret (the high half of the arm
  word it publishes to senders in its cursor words); anything else of
  that size is dropped.  While a lossless send waits for room, the
  high half of the wait word it publishes to receivers in its ring (a
  secret of its own, new at each wait) passes too: receivers, who may
  lack w, learn nothing that lets them ring the node afterwards;
* a 16-byte numnodes hint passes only when asked for (nodes no longer
  ask: the numnodes watch of :mod:`.watch` tells them, so nobody can
  make a node readable with a forged one);
* a plug (:data:`PLUG_LEN` bytes starting with the secret) passes: a
  lossless sender that got EAGAIN sends one to each receiver in its way
  from its own doorbell socket, which stays unwritable until they have
  consumed it (see ``DataPath._plug``);
* every other datagram is dropped.

The filter is set when the socket is made and when OOB handling changes.
"""

from __future__ import annotations

import ctypes
import os
import random
import socket
import struct

SO_ATTACH_FILTER = 26
BELL = struct.Struct(">I")            # what BPF's ``ld [0]`` loads
HINT_LEN = 16                         # a numnodes hint (struct numnode_oob)
PLUG_LEN = 5000                       # a plug: over a quarter of PLUG_SNDBUF with overhead
PLUG_SNDBUF = 16384                   # the kernel doubles it: room for MAX_PLUGS plugs
MAX_PLUGS = 4
_INSN = struct.Struct("=HBBI")
_LDLEN, _LDW, _JEQ, _RET = 0x80, 0x20, 0x15, 0x06
_ACCEPT = 0x10000

_rng = random.Random(os.urandom(16))


def new_arm(old: int) -> int:
    """A fresh random 32-bit value, never 0, never ``old`` (node secrets)."""
    while True:
        a = _rng.getrandbits(32)
        if a and a != old:
            return a


def _program(secret: int, hints: bool, wait: int) -> list:
    return [(_LDLEN, 0, 0, 0),              # 0
            (_JEQ, 7, 0, HINT_LEN),         # 1: a hint -> 9
            (_JEQ, 1, 0, BELL.size),        # 2: a doorbell -> 4
            (_JEQ, 0, 4, PLUG_LEN),         # 3: a plug -> 4, else 8
            (_LDW, 0, 0, 0),                # 4
            (_JEQ, 1, 0, secret),           # 5: carries the secret -> 7
            (_JEQ, 0, 1, wait),             # 6: or the wait secret -> 7, else 8
            (_RET, 0, 0, _ACCEPT),          # 7
            (_RET, 0, 0, 0),                # 8
            (_RET, 0, 0, _ACCEPT if hints else 0)]   # 9


_PROGRAM_LEN = 10


class BellFilter:
    """The filter of one doorbell socket, rewritten in place at each arming."""

    __slots__ = ("sock", "code", "prog")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.code = ctypes.create_string_buffer(_INSN.size * _PROGRAM_LEN)
        self.prog = struct.pack("@HP", _PROGRAM_LEN, ctypes.addressof(self.code))

    def set(self, secret: int, hints: bool, wait: int = 0) -> None:
        """Accept doorbells and plugs carrying ``secret`` (or, while a lossless
        send waits, ``wait``), and hints if asked."""
        code = self.code
        for i, insn in enumerate(_program(secret, hints, wait or secret)):
            _INSN.pack_into(code, i * _INSN.size, *insn)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, self.prog)


def set_filter(sock: socket.socket, secret: int, hints: bool) -> None:
    """One-off :meth:`BellFilter.set` (tests, tools)."""
    BellFilter(sock).set(secret, hints)


def plug(sock: socket.socket, path: str, secret: int) -> bool:
    """Send a plug to the node at ``path``; False once the send buffer is full."""
    try:
        sock.sendto(BELL.pack(secret & 0xFFFFFFFF).ljust(PLUG_LEN, b"\0"),
                    socket.MSG_DONTWAIT, path)
    except BlockingIOError:
        return False
    except OSError:
        pass                              # gone: the writer purges it when it rings
    return True


def ring(sock: socket.socket, path: str, value: int) -> bool:
    """Ring the node at ``path`` for arm ``value``; False if it is gone."""
    try:
        sock.sendto(BELL.pack(value & 0xFFFFFFFF), socket.MSG_DONTWAIT, path)
    except BlockingIOError:
        pass                              # its queue is full: it is awake anyway
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:
        pass
    return True
