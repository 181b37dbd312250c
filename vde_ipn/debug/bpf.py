"""Classic BPF: tcpdump-style filter expressions on frames in userspace.

:func:`compile_filter` has libpcap (through scapy's binding) turn an
expression such as ``icmp and host 10.0.0.2`` into the classic BPF
program tcpdump would run, for Ethernet frames; :func:`matches` runs
such a program on one frame, as the kernel's ``sk_run_filter`` would.
The interpreter works on any transport (VDE data sockets, IPN rings,
pcap files): nothing is attached to a socket.

A program is a tuple of ``(code, jt, jf, k)`` instructions.  Loads past
the end of the frame, division by zero and Linux's ancillary loads
(``k >= SKF_AD_OFF``, which libpcap emits only for live captures)
reject the frame, as in the kernel.
"""

from __future__ import annotations

from .._errors import UsageError

LINKTYPE_ETHERNET = 1
SNAPLEN = 262144
_MASK = 0xFFFFFFFF
_SIZES = {0x00: 4, 0x08: 2, 0x10: 1}     # BPF_W, BPF_H, BPF_B


class FilterError(UsageError):
    """A filter expression libpcap rejects, or no libpcap to compile it."""


def compile_filter(expression: str) -> tuple:
    """The BPF program of a tcpdump filter expression, for Ethernet frames.

    Raises:
        FilterError: a syntax error (libpcap's message), or libpcap (or
            scapy, whose binding is used) is not installed.
    """
    try:
        from scapy.arch.common import compile_filter as pcap_compile
    except ImportError as e:
        raise FilterError("filter expressions need scapy (pip install scapy): %s" % e) from e
    try:
        prog = pcap_compile(expression, linktype=LINKTYPE_ETHERNET)
    except ImportError as e:
        raise FilterError("filter expressions need libpcap (Debian: libpcap0.8): %s"
                          % e) from e
    except Exception as e:                # scapy raises its own exception types
        raise FilterError("bad filter %r: %s" % (expression, e)) from e
    return tuple((i.code, i.jt, i.jf, i.k) for i in prog.bf_insns[:prog.bf_len])


def _load(frame: bytes, offset: int, size: int):
    if offset < 0 or offset + size > len(frame):
        return None
    return int.from_bytes(frame[offset:offset + size], "big")


def matches(program: tuple, frame: bytes) -> bool:
    """True when ``program`` accepts ``frame`` (returns a non-zero length)."""
    return run(program, frame) != 0


def run(program: tuple, frame: bytes) -> int:   # noqa: C901  (one branch per class)
    """Run ``program`` on ``frame``; the number of bytes to keep (0: reject)."""
    a = x = pc = 0
    mem = [0] * 16
    n = len(program)
    while pc < n:
        code, jt, jf, k = program[pc]
        pc += 1
        cls = code & 0x07
        if cls == 0x00 or cls == 0x01:               # LD, LDX
            mode = code & 0xE0
            if mode == 0x00:                          # IMM
                v = k
            elif mode == 0x80:                        # LEN
                v = len(frame)
            elif mode == 0x60:                        # MEM
                v = mem[k & 15]
            elif mode == 0xA0:                        # MSH: 4 * (frame[k] & 0xf)
                v = _load(frame, k, 1)
                if v is None:
                    return 0
                v = (v & 0x0F) << 2
            else:                                     # ABS, IND
                off = k if mode == 0x20 else (x + k) & _MASK
                v = _load(frame, off, _SIZES[code & 0x18])
                if v is None:
                    return 0
            if cls == 0x00:
                a = v
            else:
                x = v
        elif cls == 0x02:                             # ST
            mem[k & 15] = a
        elif cls == 0x03:                             # STX
            mem[k & 15] = x
        elif cls == 0x04:                             # ALU
            op = code & 0xF0
            v = x if code & 0x08 else k
            if op == 0x00:
                a = (a + v) & _MASK
            elif op == 0x10:
                a = (a - v) & _MASK
            elif op == 0x20:
                a = (a * v) & _MASK
            elif op == 0x30:
                if v == 0:
                    return 0
                a //= v
            elif op == 0x90:
                if v == 0:
                    return 0
                a %= v
            elif op == 0x40:
                a |= v
            elif op == 0x50:
                a &= v
            elif op == 0xA0:
                a ^= v
            elif op == 0x60:
                a = (a << (v & 31)) & _MASK
            elif op == 0x70:
                a >>= v & 31
            elif op == 0x80:
                a = -a & _MASK
            else:
                return 0
        elif cls == 0x05:                             # JMP
            op = code & 0xF0
            if op == 0x00:
                pc += k
                continue
            v = x if code & 0x08 else k
            if op == 0x10:
                taken = a == v
            elif op == 0x20:
                taken = a > v
            elif op == 0x30:
                taken = a >= v
            elif op == 0x40:
                taken = bool(a & v)
            else:
                return 0
            pc += jt if taken else jf
        elif cls == 0x06:                             # RET
            src = code & 0x18
            return a if src == 0x10 else x if src == 0x08 else k
        else:                                         # MISC
            if code & 0xF8 == 0x80:
                a = x
            else:
                x = a
    return 0
