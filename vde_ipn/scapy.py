"""scapy on VDE networks: ``from vde_ipn.scapy import VDESocket``.

A thin re-export of :mod:`vde_ipn.debug.scapy_socket` (scapy is an
optional dependency: ``pip install vde-ipn[scapy]``).  ``srp``/``srp1``
here take ``socket=`` as scapy's ``sendp`` does; scapy's ``sendp(pkt,
socket=s)`` and ``sniff(opened_socket=s)`` work on a VDESocket as they are.
"""

from vde_ipn.debug.bpf import FilterError, compile_filter
from vde_ipn.debug.scapy_socket import VDESocket, srp, srp1

__all__ = ["VDESocket", "srp", "srp1", "FilterError", "compile_filter"]
