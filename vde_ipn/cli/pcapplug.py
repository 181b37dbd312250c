"""``vde_pcapplug``: drop-in for vde-2 2.3.2's vde_pcapplug (see _iface_plug).

The interface is grabbed with an AF_PACKET socket (:mod:`vde_ipn.io.plugs.grab`)
instead of libpcap; the command line and messages are the same.
"""

from __future__ import annotations

import sys

from ._iface_plug import main as _main


def main(argv: list[str] | None = None) -> int:
    return _main(sys.argv if argv is None else argv, "grab")


if __name__ == "__main__":
    sys.exit(main())
