#!/usr/bin/env python3
"""Drop-in launcher: every tool in compat/ is a symlink to this file.

The tool to run is chosen by the name it was invoked under, so putting
compat/ first on PATH swaps the C tools for ours.  Only the standard
library is needed, so any python3 (3.9 or newer) can run the drop-ins,
including when a guest such as User-Mode Linux spawns them from PATH.
Optional packages (pyroute2, for grabbing interfaces) are also looked
for in the repository's ``.venv`` (``make setup`` fills it), after
everything else on sys.path, when its Python version is this one.
"""
import os
import sys

TOOLS = {
    "vde_switch": "vde_ipn.cli.switch",
    "vde_plug": "vde_ipn.cli.plug",
    "dpipe": "vde_ipn.cli.dpipe",
    "unixterm": "vde_ipn.cli.unixterm",
    "vdeterm": "vde_ipn.cli.vdeterm",
    "unixcmd": "vde_ipn.cli.unixcmd",
    "wirefilter": "vde_ipn.cli.wirefilter",
    "vde_plug2tap": "vde_ipn.cli.plug2tap",
    "vde_pcapplug": "vde_ipn.cli.pcapplug",
    "vde_tunctl": "vde_ipn.cli.tunctl",
    "kvde_switch": "vde_ipn.cli.kvde_switch",
    "slirpvde": "vde_ipn.cli.slirpvde",
    "vde_l3": "vde_ipn.cli.l3",
    "vde_cryptcab": "vde_ipn.cli.cryptcab",
    "vdens": "vde_ipn.cli.vdens",
    "vde_autolink": "vde_ipn.cli.autolink",
    "vde_over_ns": "vde_ipn.cli.over_ns",
    "vdeq": "vde_ipn.cli.vdeq",
}


def _links_to(path: str, name: str) -> bool:
    """Whether ``path`` is a symbolic link to a file called ``name``."""
    try:
        return os.path.basename(os.readlink(path)) == name
    except OSError:
        return False


def _main() -> int:
    here = os.path.dirname(os.path.realpath(__file__))
    repo = os.path.dirname(here)
    sys.path.insert(0, repo)
    venv_site = os.path.join(repo, ".venv", "lib", "python%d.%d" % sys.version_info[:2],
                             "site-packages")
    if os.path.isdir(venv_site):
        sys.path.append(venv_site)
    name = os.path.basename(sys.argv[0]).lstrip("-")
    module = TOOLS.get(name)
    if module is None and name.startswith("vde") and _links_to(sys.argv[0], "vdeq"):
        module = TOOLS["vdeq"]          # vdeq linked as vdeNAME runs NAME, as in vde2
    if module is None:
        sys.stderr.write("%s: not a vde-ipn drop-in (known: %s)\n"
                         % (name, ", ".join(sorted(TOOLS))))
        return 2
    import importlib
    return importlib.import_module(module).main(sys.argv)


if __name__ == "__main__":
    sys.exit(_main())
