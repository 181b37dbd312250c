"""Imports point one way (cli -> io -> engine -> wire) and the core is sans-IO.

Every module of a layer is checked, however deep in subpackages it sits;
relative imports are resolved from the module's own package.
"""

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parents[2] / "vde_ipn"
RANK = {"wire": 0, "engine": 1, "io": 2, "cli": 3}
IO_MODULES = {"socket", "select", "selectors", "time", "threading", "subprocess", "asyncio"}


def package_of(path: pathlib.Path, pkg: pathlib.Path = PKG) -> list:
    """The dotted package a file belongs to, as a list: vde_ipn/io/ipn/x.py
    and vde_ipn/io/ipn/__init__.py are both in ['vde_ipn', 'io', 'ipn']."""
    rel = path.relative_to(pkg).parts[:-1]
    return [pkg.name] + list(rel)


def imports(path: pathlib.Path, pkg: pathlib.Path = PKG):
    """The absolute module names a file imports (relative ones resolved)."""
    tree = ast.parse(path.read_text())
    package = package_of(path, pkg)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.module or ""
                continue
            if node.level > len(package):
                yield "<beyond the top package: %s>" % ("." * node.level + (node.module or ""))
                continue
            base = package[:len(package) - (node.level - 1)]
            if node.module:
                yield ".".join(base + [node.module])
            else:                                   # from . import a, b
                for alias in node.names:
                    yield ".".join(base + [alias.name])


def violations(path: pathlib.Path, pkg: pathlib.Path = PKG) -> list:
    layer = path.relative_to(pkg).parts[0]
    found = []
    for name in imports(path, pkg):
        parts = name.split(".")
        if name.startswith("<"):
            found.append("%s: %s" % (path.name, name))
        elif parts[0] == pkg.name and len(parts) > 1 and parts[1] in RANK:
            if RANK[parts[1]] > RANK[layer]:
                found.append("%s imports %s" % (path.relative_to(pkg), name))
        if layer in ("wire", "engine") and parts[0] in IO_MODULES:
            found.append("%s imports %s" % (path.relative_to(pkg), name))
    return found


def layer_files(pkg: pathlib.Path = PKG):
    for layer in RANK:
        for f in sorted((pkg / layer).rglob("*.py")):
            yield layer, f


@pytest.mark.parametrize("layer,path", list(layer_files()),
                         ids=lambda v: str(v.relative_to(PKG)) if isinstance(v, pathlib.Path)
                         else v)
def test_imports_point_inward(layer, path):
    assert violations(path) == []


def test_every_layer_has_files():
    files = list(layer_files())
    assert {layer for layer, _ in files} == set(RANK)


def packages_without_init(pkg: pathlib.Path = PKG) -> list:
    """Folders of a layer holding modules but no ``__init__.py``: their
    modules would be checked here yet not importable as the package."""
    return sorted(str(d.relative_to(pkg)) for layer in RANK
                  for d in [pkg / layer, *(pkg / layer).rglob("*")]
                  if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py"))
                  and not (d / "__init__.py").exists())


def test_every_folder_of_a_layer_is_a_package():
    assert packages_without_init() == []
    # the product folders are there, and checked like the rest
    checked = {str(p.parent.relative_to(PKG)) for _, p in layer_files()}
    assert {"io/switch", "io/plugs", "io/ipn", "engine/switch", "engine/wirefilter",
            "engine/ipn", "engine/l3"} <= checked


# -- the check itself, on a made-up tree ----------------------------------------
def fake_tree(tmp_path, files):
    root = tmp_path / "vde_ipn"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_relative_imports_resolve_from_their_own_package(tmp_path):
    root = fake_tree(tmp_path, {
        "io/ipn/bridge.py": "from ...engine import bus\nfrom ..loop import Loop\n"
                            "from . import ctl\nfrom .ctl import accept\nimport socket\n",
        "io/ipn/__init__.py": "from .bridge import x\nfrom .. import loop\n",
        "io/loop.py": "from ..wire import stream\n",
    })
    assert list(imports(root / "io/ipn/bridge.py", root)) == [
        "vde_ipn.engine", "vde_ipn.io.loop", "vde_ipn.io.ipn.ctl", "vde_ipn.io.ipn.ctl",
        "socket"]
    assert list(imports(root / "io/ipn/__init__.py", root)) == [
        "vde_ipn.io.ipn.bridge", "vde_ipn.io.loop"]
    assert list(imports(root / "io/loop.py", root)) == ["vde_ipn.wire"]


def test_outward_imports_in_subpackages_are_found(tmp_path):
    root = fake_tree(tmp_path, {
        "io/ipn/deep/bad.py": "from ....cli import main\n",
        "engine/policies/leaky.py": "import socket\nfrom ...io.loop import Loop\n",
        "engine/policies/fine.py": "from ...wire import ethernet\nfrom . import leaky\n",
        "wire/x.py": "from . import y\n",
        "cli/top.py": "from ..io.ipn.deep import bad\n",
    })
    files = {str(p.relative_to(root)): layer for layer, p in layer_files(root)}
    assert files == {"io/ipn/deep/bad.py": "io", "engine/policies/leaky.py": "engine",
                     "engine/policies/fine.py": "engine", "wire/x.py": "wire",
                     "cli/top.py": "cli"}
    assert violations(root / "io/ipn/deep/bad.py", root) == [
        "io/ipn/deep/bad.py imports vde_ipn.cli"]
    assert violations(root / "engine/policies/leaky.py", root) == [
        "engine/policies/leaky.py imports socket",
        "engine/policies/leaky.py imports vde_ipn.io.loop"]
    assert violations(root / "engine/policies/fine.py", root) == []
    assert violations(root / "cli/top.py", root) == []


def test_a_folder_without_init_is_reported(tmp_path):
    root = fake_tree(tmp_path, {"io/__init__.py": "", "io/switch/server.py": "",
                                "engine/__init__.py": "", "engine/ipn/__init__.py": "",
                                "engine/ipn/protocols.py": "", "wire/__init__.py": "",
                                "cli/__init__.py": ""})
    assert packages_without_init(root) == ["io/switch"]


def test_an_import_above_the_package_is_reported(tmp_path):
    root = fake_tree(tmp_path, {"io/x.py": "from .... import nothing\n"})
    assert violations(root / "io/x.py", root) == ["x.py: <beyond the top package: ....>"]
