"""Doorbells: the datagrams that make an IPN node's descriptor readable.

A node's ``fileno()`` is its doorbell socket.  The kernel decides what
``select``/``poll``/``epoll`` report on it, so the node keeps this rule:
a datagram is queued there only while a message (or an OOB message) is
waiting for the node.  Two things could break it, and both are handled
in the kernel, before a datagram is queued:

* a *late* doorbell: a sender saw the node's arm value, was delayed, and
  rang after the node had read everything and armed again.  Each arming
  picks a new random 32-bit value; a doorbell carries the value it
  answers, and the socket filter attached here (classic BPF) drops every
  4-byte datagram whose value is not a current one;
* anything else sent to the socket: dropped too, except 16-byte numnodes
  hints on a node that handles OOB messages.

The filter is replaced at every arming (one ``setsockopt``), which is
how a stale value stops being accepted.
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
    """A fresh arm value: 32 bits, never 0, never ``old``."""
    while True:
        a = _rng.getrandbits(32)
        if a and a != old:
            return a


def _program(values: tuple[int, int], hints: bool) -> bytes:
    a1, a2 = values
    a2 = a2 or a1                           # 0 stands for "no value": never accepted
    insns = [(_LDLEN, 0, 0, 0),             # 0
             (_JEQ, 0, 4, BELL.size),       # 1: a doorbell? else 6
             (_LDW, 0, 0, 0),               # 2
             (_JEQ, 1, 0, a1),              # 3: -> 5
             (_JEQ, 0, 2, a2),              # 4: -> 5 else 7
             (_RET, 0, 0, _ACCEPT),         # 5
             (_JEQ, 1, 0, HINT_LEN),        # 6: -> 8 else 7
             (_RET, 0, 0, 0),               # 7
             (_RET, 0, 0, _ACCEPT if hints else 0)]   # 8
    return b"".join(_INSN.pack(*i) for i in insns)


def set_filter(sock: socket.socket, values: tuple[int, int], hints: bool) -> None:
    """Accept doorbells carrying one of ``values`` (0: none), and hints if asked."""
    code = ctypes.create_string_buffer(_program(values, hints))
    prog = struct.pack("@HP", len(code.raw) // _INSN.size, ctypes.addressof(code))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, prog)


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
