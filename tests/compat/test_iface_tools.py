"""vde_plug2tap, vde_pcapplug and vde_tunctl side by side with vde-2 2.3.2's.

Command-line answers must match byte for byte (the program name aside);
``vde_tunctl`` creates and deletes persistent taps, in a namespace made
here, with the same messages and results as the C tool.  (Debian's
vde_tunctl has no ``-g``; ours has, as vde-2's manual describes.)
"""

import os
import subprocess

import pytest

from ifaces import ifname, in_ns, link, namespaces  # noqa: F401
from support import COMPAT, require

C = {"vde_plug2tap": "/usr/bin/vde_plug2tap", "vde_pcapplug": "/usr/bin/vde_pcapplug",
     "vde_tunctl": "/usr/sbin/vde_tunctl"}


def run(tool, kind, args, ns=None):
    path = require(C[tool] if kind == "c" else os.path.join(COMPAT, tool))
    argv = [path] + list(args)
    res = subprocess.run(in_ns(ns, argv) if ns else argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=20)
    return (res.returncode, res.stdout.replace(path, "PROG"), res.stderr.replace(path, "PROG"))


@pytest.mark.parametrize("tool", ["vde_plug2tap", "vde_pcapplug"])
@pytest.mark.parametrize("args", [["-h"], ["--help"], ["-x"], ["--nope"], [], ["-s"],
                                  ["-s", "/nonexistent/sw", "a", "b"]])
def test_plug_tools_command_line(tool, args):
    assert run(tool, "ours", args) == run(tool, "c", args)


@pytest.mark.parametrize("args", [["-x"], ["extra"], ["-u", "nosuchuser"], ["-t"]])
def test_tunctl_command_line(args):
    assert run("vde_tunctl", "ours", args) == run("vde_tunctl", "c", args)


@pytest.mark.parametrize("args", [[], ["-b"], ["-u", "65534"], ["-u", "nobody"]])
def test_tunctl_creates_and_deletes_as_2_3_2(namespaces, args):  # noqa: F811
    ns = namespaces.new("tctl")
    seen = {}
    for kind in ("c", "ours"):
        name = ifname("tc" + kind[0])
        namespaces.owned_link(name, ns)
        created = run("vde_tunctl", kind, args + ["-t", name], ns)
        data = link(name, ns)["linkinfo"]["info_data"]
        deleted = run("vde_tunctl", kind, ["-d", name], ns)
        seen[kind] = (created[0], created[1].replace(name, "NAME"), created[2],
                      {k: data.get(k) for k in ("type", "persist", "user", "group")},
                      deleted[0], deleted[1].replace(name, "NAME"), link(name, ns))
    assert seen["ours"] == seen["c"]
    assert seen["c"][3]["persist"] is True and seen["c"][-1] is None
