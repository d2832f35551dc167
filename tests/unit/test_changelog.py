"""The package and both API documents carry the version of the newest release in CHANGELOG.md, and the
changelog keeps an Unreleased section for the next one (Keep a Changelog)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def releases() -> list[str]:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    return re.findall(r"^## \[([^\]]+)\]", text, flags=re.M)


def test_the_changelog_opens_with_unreleased_then_releases_newest_first() -> None:
    found = releases()
    assert found[0] == "Unreleased" and len(found) > 1
    versions = [tuple(int(p) for p in v.split(".")) for v in found[1:]]
    assert versions == sorted(versions, reverse=True) and len(set(versions)) == len(versions)


def test_the_package_and_both_api_documents_carry_the_newest_release() -> None:
    newest = releases()[1]
    package = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    documents = {
        name: yaml.safe_load((ROOT / "docs" / name).read_text(encoding="utf-8"))["info"]["version"]
        for name in ("openapi.yaml", "asyncapi.yaml")
    }
    assert {"pyproject.toml": package, **documents} == dict.fromkeys(["pyproject.toml", *documents], newest)
