"""The console command table, run against a switch context without sockets."""

import errno
import json

from vde_ipn.engine.switch import commands  # noqa: F401
from vde_ipn.engine.bus import Network
from vde_ipn.engine.switch.console import execute, find, help_lines
from vde_ipn.testing import FakeClock


class Ctx:
    """The smallest context the handlers need (see engine/switch/commands/__init__)."""

    def __init__(self):
        self.net = Network(8)
        self.clock = FakeClock(100.0)
        self.pid, self.macaddr, self.dir, self.mode = 42, b"\x00\xff\x01\x02\x03\x04", "/d", 0o600
        self.mgmt, self.mgmtmode, self.priority = None, 0o600, 0x8000
        self.hash_settings = {"size": 128, "gcint": 2, "expire": 100, "minper": 3}
        self.closed = []

    hub = property(lambda self: self.net.policy.name == "hub")

    def set_hub(self, on):
        self.net.set_policy("hub" if on else "switch")

    def now(self):
        return self.clock()

    def uptime(self):
        return 7

    def set_hash(self, name, value):
        self.hash_settings[name] = value

    def epclose(self, port, ep):
        self.closed.append((port, ep))
        return self.net.detach(ep, port) or True

    user_name = group_name = staticmethod(str)
    lookup_user = lookup_group = staticmethod(lambda t: int(t) if t.isdigit() else None)


def test_prefix_lookup_follows_table_order():
    assert find("port/createauto").path == "port/createauto"
    assert find("port/create 3").path == "port/create"
    assert find("showinfoXYZ").path == "showinfo"
    assert find("helpport").path == "help"
    assert find("nothing") is None


def test_unknown_command_is_enosys_and_empty_lines_are_silent():
    ctx = Ctx()
    assert execute(ctx, "bogus").rc == errno.ENOSYS
    assert execute(ctx, "") is None and execute(ctx, "# note") is None


def test_plugin_add_knows_only_the_built_in_plugins():
    ctx = Ctx()
    ctx.plugins = {}
    assert execute(ctx, "plugin/add x").rc == errno.ENOENT
    assert execute(ctx, "plugin/add").rc == errno.EINVAL
    assert execute(ctx, "plugin/add dump.so").rc == errno.ENOENT      # as 2.3.2's dlopen
    added = []
    ctx.plugin_add = added.append
    assert execute(ctx, "plugin/add /usr/lib/vde2/plugins/iplog.so").rc == 0
    assert added == ["iplog"]


def test_help_layout():
    rows = help_lines("hash/s")
    assert rows[0] == "COMMAND PATH       SYNTAX          HELP"
    assert rows[2] == "hash/showinfo                      show hash info"
    assert all(r.startswith("hash/s") for r in rows[2:])


def test_data_commands_always_answer_a_block():
    res = execute(Ctx(), "port/print 99")
    assert res.lines == [] and res.rc == errno.EINVAL
    assert execute(Ctx(), "port/create 99").lines is None


def test_vlan_workflow_and_json():
    ctx = Ctx()
    ctx.net.attach(5, None, "a")
    assert execute(ctx, "vlan/create 10").rc == 0
    assert execute(ctx, "port/setvlan 1 10").rc == 0
    assert execute(ctx, "port/create 2").rc == 0
    assert execute(ctx, "vlan/addport 10 2").rc == 0
    data = json.loads(execute(ctx, "json/vlans").lines[0])
    assert {"vlan": 10, "untagged": [1], "tagged": [2]} in data
    assert execute(ctx, "vlan/remove 10").rc == errno.EADDRINUSE


def test_port_stats_show_drops_by_cause():
    ctx = Ctx()
    ctx.net.attach(5, None, "a")
    ctx.net.receive(1, b"\x01" * 5, 0)
    res = execute(ctx, "port/stats 1")
    assert res.lines == ["Port 0001 in 0/0 out 0/0 drops runt=1 oversize=0 vlan=0 "
                         "fstp=0 queue_full=0 send_error=0 framing=0 truncated=0"]
    port = json.loads(execute(ctx, "json/ports 1").lines[0])[0]
    assert port["counters"]["drops"]["runt"] == 1 and port["endpoints"][0]["description"] == "a"


def test_json_hash_lists_learned_macs():
    ctx = Ctx()
    ctx.net.attach(5, None)
    ctx.net.attach(6, None)
    ctx.net.receive(2, b"\xff" * 6 + b"\x02\0\0\0\0\x09" + b"\x88\xb5" + bytes(46), 99.0)
    rows = json.loads(execute(ctx, "json/hash").lines[0])
    assert rows == [{"mac": "02:00:00:00:00:09", "vlan": 0, "port": 2, "age": 1.0}]


def test_epclose_parses_its_arguments():
    ctx = Ctx()
    assert execute(ctx, "port/epclose x").rc == errno.EINVAL
    assert execute(ctx, "port/epclose 1 9").rc == 0 and ctx.closed == [(1, 9)]
