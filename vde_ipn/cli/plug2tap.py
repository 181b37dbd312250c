"""``vde_plug2tap``: drop-in for vde-2 2.3.2's vde_plug2tap (see _iface_plug)."""

from __future__ import annotations

import sys

from ._iface_plug import main as _main


def main(argv: list[str] | None = None) -> int:
    return _main(sys.argv if argv is None else argv, "tap")


if __name__ == "__main__":
    sys.exit(main())
