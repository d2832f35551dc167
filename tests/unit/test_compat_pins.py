"""Each module that reaches into a library's internals says which release it was written for, and
fails loudly here on any other: an upgrade of PynamoDB, msgspec, aiohttp or Chalice starts by
reading that module (it says what to check) instead of by a gamble."""

from __future__ import annotations

import importlib
from importlib.metadata import version

import pytest

pytestmark = pytest.mark.unit

COMPAT_MODULES = {
    "chalicelib.adapters.pynamodb_compat": "pynamodb",
    "chalicelib.entrypoints.msgspec_compat": "msgspec",
    "devstack.apigw.aiohttp_compat": "aiohttp",
    "devstack.apigw.chalice_compat": "chalice",
}


@pytest.mark.parametrize(("module", "distribution"), COMPAT_MODULES.items())
def test_the_library_is_the_release_its_compatibility_module_was_written_for(module: str, distribution: str) -> None:
    written_for = importlib.import_module(module).WRITTEN_FOR
    installed = version(distribution)
    assert installed == written_for, (
        f"{distribution} {installed} is installed but {module} was written for {written_for}: "
        f"check the internals its docstring lists against {distribution} {installed}, then move WRITTEN_FOR"
    )


def test_each_pin_is_the_one_the_requirements_install() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pins = {}
    for name in ("requirements.txt", "requirements-package.txt", "requirements-dev.txt"):
        for line in (root / name).read_text(encoding="utf-8").splitlines():
            package, sep, pinned = line.partition("==")
            if sep:
                pins[package.strip().lower()] = pinned.split(";")[0].strip()
    for module, distribution in COMPAT_MODULES.items():
        assert pins.get(distribution) == importlib.import_module(module).WRITTEN_FOR, (module, pins.get(distribution))
