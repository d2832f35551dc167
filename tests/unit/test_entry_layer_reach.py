"""The entry layer reaches storage only through the use cases: no handler reads a repository or the
connection registry itself (the services own every DynamoDB request and its budget)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ENTRY_FILES = [*sorted((ROOT / "chalicelib" / "entrypoints").glob("*.py")), ROOT / "app.py"]
# Attributes that hold a port's adapter (a store, the directory table, the registry, the pusher).
STORAGE = {"store", "registry", "pusher", "_store", "_directory"}


def _chain(node: ast.Attribute) -> list[str]:
    names = [node.attr]
    value = node.value
    while isinstance(value, ast.Attribute):
        names.append(value.attr)
        value = value.value
    if isinstance(value, ast.Name):
        names.append(value.id)
    return names[::-1]


def test_entry_points_do_not_read_repositories_directly() -> None:
    reaches = []
    for path in ENTRY_FILES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                chain = _chain(node)
                # services.registry..., services.coaching.store..., services.directory.directory...
                if chain[0] == "services" and (STORAGE & set(chain[1:]) or chain[1:3] == ["directory", "directory"]):
                    reaches.append(f"{path.relative_to(ROOT)}:{node.lineno}: {'.'.join(chain)}")
    assert not reaches, reaches


def test_the_check_sees_a_direct_read() -> None:
    tree = ast.parse("services.coaching.store.get('t', 'w')\nservices.registry.get('c')")
    chains = [".".join(_chain(n)) for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Attribute)]
    assert "services.coaching.store" in chains and any(c.startswith("services.registry") for c in chains)
