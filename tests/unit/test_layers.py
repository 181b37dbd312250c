"""Imports point one way (cli -> io -> engine -> wire) and the core is sans-IO."""

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parents[2] / "vde_ipn"
RANK = {"wire": 0, "engine": 1, "io": 2, "cli": 3}
IO_MODULES = {"socket", "select", "selectors", "time", "threading", "subprocess", "asyncio"}


def imports(path: pathlib.Path):
    """(absolute module names, relative 'vde_ipn.x' targets) imported by a file."""
    tree = ast.parse(path.read_text())
    package = list(path.relative_to(PKG).parts[:-1])       # e.g. ["io", "ipn"]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.module or ""
            else:
                base = ["vde_ipn"] + package[:len(package) - (node.level - 1)]
                yield ".".join(base + ([node.module] if node.module else []))


def layer_files():
    for layer in RANK:
        for f in sorted((PKG / layer).rglob("*.py")):      # subpackages too
            yield layer, f


@pytest.mark.parametrize("layer,path", list(layer_files()), ids=lambda v: str(v)[-30:])
def test_imports_point_inward(layer, path):
    for name in imports(path):
        parts = name.split(".")
        if parts[0] == "vde_ipn" and len(parts) > 1 and parts[1] in RANK:
            assert RANK[parts[1]] <= RANK[layer], "%s imports %s" % (path.name, name)
        if layer in ("wire", "engine"):
            assert parts[0] not in IO_MODULES, "%s/%s imports %s" % (layer, path.name, name)


def test_the_check_sees_imports():
    """The import walker must find what a module really imports."""
    found = set(imports(PKG / "io" / "switch.py"))
    assert "socket" in found and "vde_ipn.engine.bus" in found
