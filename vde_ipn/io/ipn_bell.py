"""Doorbells: the datagrams that make an IPN node's descriptor readable.

A node's ``fileno()`` is its doorbell socket, and the kernel decides what
``select``/``poll``/``epoll`` report on it.  So that a readable socket
means a message (see :mod:`vde_ipn.io.ipn_datapath`), the socket carries
a classic BPF filter, checked by the kernel before anything is queued:

* a doorbell is 4 bytes, the node's secret (the high half of the arm
  word it publishes to senders in its cursor file, or to receivers in its
  ring's wait word); anything else of that size is dropped;
* a 16-byte numnodes hint passes only on a node that handles OOB
  messages (and is recounted there, never trusted);
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


def _program(values: tuple[int, int], hints: bool) -> list:
    a1, a2 = values
    a2 = a2 or a1                           # 0 stands for "no value": never accepted
    return [(_LDLEN, 0, 0, 0),              # 0
            (_JEQ, 0, 4, BELL.size),        # 1: a doorbell? else 6
            (_LDW, 0, 0, 0),                # 2
            (_JEQ, 1, 0, a1),               # 3: -> 5
            (_JEQ, 0, 2, a2),               # 4: -> 5 else 7
            (_RET, 0, 0, _ACCEPT),          # 5
            (_JEQ, 1, 0, HINT_LEN),         # 6: -> 8 else 7
            (_RET, 0, 0, 0),                # 7
            (_RET, 0, 0, _ACCEPT if hints else 0)]   # 8


class BellFilter:
    """The filter of one doorbell socket, rewritten in place at each arming."""

    __slots__ = ("sock", "code", "prog")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.code = ctypes.create_string_buffer(_INSN.size * 9)
        self.prog = struct.pack("@HP", 9, ctypes.addressof(self.code))

    def set(self, values: tuple[int, int], hints: bool) -> None:
        """Accept doorbells carrying one of ``values`` (0: none), and hints if asked."""
        code = self.code
        for i, insn in enumerate(_program(values, hints)):
            _INSN.pack_into(code, i * _INSN.size, *insn)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, self.prog)


def set_filter(sock: socket.socket, values: tuple[int, int], hints: bool) -> None:
    """One-off :meth:`BellFilter.set` (tests, tools)."""
    BellFilter(sock).set(values, hints)


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
