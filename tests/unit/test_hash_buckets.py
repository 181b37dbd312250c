"""hash/print's bucket numbers: the values Debian's vde_switch 2.3.2 printed
for these stations in a table of 4096 (``--hashsize 4096``), and the same
numbers masked to smaller tables (tests/compat/test_hash_table.py compares
whole tables with the running C switch)."""

import pytest

from vde_ipn.engine.switch.commands.hash import bucket

PRINTED_BY_2_3_2 = [          # (MAC, VLAN, bucket of 4096)
    ("0e:00:00:00:00:00", 4000, 345), ("fe:ff:ff:ff:ff:fe", 4000, 618),
    ("00:16:3e:0a:0b:0c", 4000, 1036), ("0e:00:00:00:00:00", 0, 1731),
    ("02:00:00:00:00:01", 0, 1963), ("52:54:00:12:34:56", 4000, 2503),
    ("52:54:00:12:34:56", 0, 2635), ("fe:ff:ff:ff:ff:fe", 0, 2772),
    ("02:00:00:00:00:01", 4000, 3137), ("00:16:3e:0a:0b:0c", 0, 3345),
]


@pytest.mark.parametrize("mac,vlan,expected", PRINTED_BY_2_3_2)
def test_bucket_as_2_3_2(mac, vlan, expected):
    raw = bytes.fromhex(mac.replace(":", ""))
    assert bucket(raw, vlan, 4096) == expected
    for size in (1, 16, 128, 1024):               # the low bits of the same mix
        assert bucket(raw, vlan, size) == expected % size
