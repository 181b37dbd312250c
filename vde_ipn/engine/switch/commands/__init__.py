"""vde_switch 2.3.2's console commands, registered in its ``help`` order.

The context ``ctx`` handed to every handler provides: ``net`` (the
:class:`~vde_ipn.engine.bus.Network`), ``pid``, ``macaddr`` (6 bytes),
``uptime()``, ``now()``, ``mgmt`` and ``mgmtmode``, ``dir`` and ``mode``,
``hub`` (bool) and ``set_hub(bool)``, ``hash_settings`` (a dict with
size, gcint, expire, minper) and ``set_hash(name, value)``,
``epclose(port, id) -> bool``, ``user_name(uid)``, ``group_name(gid)``,
``lookup_user(name)`` and ``lookup_group(name)`` (the id of that name, or None).
"""

from .. import console
from . import general, hash, fstp, port, vlan  # noqa: F401  (order = help order)

console.EXTENSIONS_START = len(console.TABLE)   # what follows is not in 2.3.2

from . import status  # noqa: F401,E402
