"""What ``vde-ipn sniff`` and ``vde-ipn inject`` do with scapy (the CLI stays scapy-free).

Importing this module loads every scapy layer (``scapy.all``), so frames
are dissected as deeply as scapy can and expressions may name any layer.
"""

from __future__ import annotations

import time

import scapy.all as _scapy
from scapy.layers.l2 import Ether
from scapy.sendrecv import sniff

from .scapy_socket import srp


def capture(sock, on_frame, count: int = 0, timeout: float | None = None) -> None:
    """Call ``on_frame(pkt)`` for each frame ``sock`` receives, until ``count``
    frames (0: no limit), ``timeout`` seconds, or KeyboardInterrupt."""
    sniff(opened_socket=sock, prn=on_frame, store=False, count=count, timeout=timeout)


def describe(pkt, verbose: bool = False) -> str:
    """One line (time and scapy's summary), or every layer with ``verbose``."""
    if verbose:
        return pkt.show(dump=True)
    t = float(pkt.time)
    return "%s.%06d %s" % (time.strftime("%H:%M:%S", time.localtime(t)),
                           int(t % 1 * 1e6), pkt.summary())


def build(expression: str) -> list:
    """The packets of a scapy expression (evaluated with every scapy name).

    Raises:
        Exception: whatever evaluating the user's expression raises.
    """
    built = eval(expression, vars(_scapy).copy())   # the user's own expression
    if isinstance(built, (bytes, bytearray)):
        return [bytes(built)]
    return list(built)


def ask(frames: list, sock, timeout: float, interval: float = 0.0) -> list:
    """Send ``frames`` and wait ``timeout`` for answers (srp); the
    (sent summary, answer summary) pairs."""
    pkts = [Ether(f) if isinstance(f, bytes) else f for f in frames]
    ans, _unans = srp(pkts, sock, timeout=timeout, inter=interval)
    return [(sent.summary(), got.summary()) for sent, got in ans]
