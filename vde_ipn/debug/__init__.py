"""Packet debugging: scapy sockets on VDE/IPN networks, filters, sniff and inject.

An optional extra (``pip install vde-ipn[scapy]``): only this package
imports scapy, and nothing outside it imports this package except
:mod:`vde_ipn.scapy` and the ``sniff``/``inject`` commands.
"""
