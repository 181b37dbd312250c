"""scapy on VDE networks: ``from vde_ipn.scapy import VDESocket``.

A thin re-export of :mod:`vde_ipn.debug.scapy_socket` (scapy is an
optional dependency: ``pip install vde-ipn[scapy]``).
"""

from vde_ipn.debug.bpf import FilterError, compile_filter
from vde_ipn.debug.scapy_socket import VDESocket

__all__ = ["VDESocket", "FilterError", "compile_filter"]
