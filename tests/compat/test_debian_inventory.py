"""Nothing Debian's VDE packages install is forgotten.

Every command of Debian's vde2, vde-switch, vde-wirefilter, vdeplug and
vde2-cryptcab packages has a drop-in of ours in ``compat/`` (but vde2's
LD_PRELOAD library and its helper, used as they are), and every command,
plugin and library of those and of libvdeplug2, the libvdeplug-* plugin
packages and libvde0 is named in the README's table of Debian files.
"""

import os
import re
import subprocess

import pytest

from support import COMPAT, REPO

PACKAGES = ("vde2", "vde-switch", "vde-wirefilter", "vdeplug", "vde2-cryptcab", "libvdeplug2",
            "libvdeplug-vlan", "libvdeplug-agno", "libvdeplug-pcap", "libvdeplug-slirp",
            "libvde0")
USED_AS_THEY_ARE = {"vdetap"}          # libvdetap.so's helper, under /usr/lib/vde2


def files(package):
    r = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        pytest.fail("package %s is not installed (make setup installs it): %s"
                    % (package, r.stderr))
    return [line for line in r.stdout.splitlines() if os.path.isfile(line)
            and not os.path.islink(line)
            and not line.startswith(("/usr/share/", "/etc/"))]


def table():
    text = open(os.path.join(REPO, "README.md")).read()
    start = text.index("| Debian file (package) | ours |")
    return text[start:text.index("\n\n", start)]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_file_has_a_row(package):
    rows = table()
    missing = []
    for path in files(package):
        name = re.sub(r"\.so[0-9.]*$", ".so", os.path.basename(path))
        named = re.search(r"[`/]%s[`.]" % re.escape(name), rows)
        plugin = re.fullmatch(r"libvdeplug_(\w+)\.so", name)
        if not named and not (plugin and "`%s`" % plugin.group(1) in rows
                              and "/vdeplug/" in path):
            missing.append(path)
    assert not missing, "not in the README's table of Debian files: %s" % missing


@pytest.mark.parametrize("package", ["vde2", "vde-switch", "vde-wirefilter", "vdeplug",
                                     "vde2-cryptcab"])
def test_every_command_has_a_drop_in(package):
    commands = [p for p in files(package) if "/bin/" in p or "/sbin/" in p]
    assert commands
    missing = [p for p in commands if os.path.basename(p) not in USED_AS_THEY_ARE
               and not os.access(os.path.join(COMPAT, os.path.basename(p)), os.X_OK)]
    assert not missing, "no drop-in in compat/ for %s" % missing
