"""An Ethernet node on an IPN network: resolves an address and pings it.

    eth_agent.py PATH MAC IP TARGET [COUNT]

Joins the IPN_VDESWITCH network at PATH (a kvde_switch directory or a
socket file) as MAC/IP, sends ARP requests for TARGET until one is
answered, then COUNT ICMP echo requests (each resent until answered),
answers ARP requests for IP meanwhile, and prints one JSON line:
``{"mac": "...", "replies": N, "port": P}``; at most 60 s in all, then
it prints what it has.  Only the standard library is needed, so any
user can run it with the system python.
"""

import json
import os
import select
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from packets import arp_reply_mac, arp_request, icmp_echo, is_echo_reply  # noqa: E402
from vde_ipn import ipn  # noqa: E402

RESEND = 0.5
LIMIT = 60.0


def arp_answer(f: bytes, my_mac: bytes, my_ip: str):
    """Our ARP reply if ``f`` asks for ``my_ip``, else None."""
    if len(f) < 42 or f[12:14] != b"\x08\x06" or f[20:22] != b"\x00\x01":
        return None
    if f[38:42] != socket.inet_aton(my_ip):
        return None
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, my_mac, socket.inet_aton(my_ip),
                       f[22:28], f[28:32])
    return f[22:28] + my_mac + b"\x08\x06" + body + b"\0" * 18


def main() -> int:
    path, mac_text, my_ip, target = sys.argv[1:5]
    count = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    my_mac = bytes.fromhex(mac_text.replace(":", ""))
    s = ipn.socket(ipn.IPN_VDESWITCH)
    s.connect(path)
    s.setblocking(False)
    deadline = time.monotonic() + LIMIT
    peer, replies, seq = None, 0, 1
    ident = os.getpid() & 0xFFFF
    next_send = 0.0
    while time.monotonic() < deadline and replies < count:
        now = time.monotonic()
        if now >= next_send:
            if peer is None:
                s.send(arp_request(my_mac, my_ip, target))
            else:
                s.send(icmp_echo(peer, my_mac, my_ip, target, ident, seq))
            next_send = now + RESEND
        select.select([s], [], [], max(0.0, min(next_send, deadline) - time.monotonic()))
        while True:
            try:
                f = s.recv(65536)
            except BlockingIOError:
                break
            answer = arp_answer(f, my_mac, my_ip)
            if answer is not None:
                s.send(answer)
            elif peer is None and arp_reply_mac(f, target) is not None:
                peer = arp_reply_mac(f, target)
                next_send = 0.0
            elif peer is not None and f[:6] == my_mac and is_echo_reply(f, ident, seq):
                replies += 1
                seq += 1
                next_send = 0.0
    print(json.dumps({"mac": peer.hex(":") if peer else None, "replies": replies,
                      "port": s.statistics()["port"]}))
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
