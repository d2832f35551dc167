"""pyproject.toml's warning filters: a deprecation triggered by the project's own code fails the test it
happens in; one inside a third-party package is reported, and only ignored when named (module and message)."""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_a_deprecation_triggered_here_is_an_error() -> None:
    with pytest.raises(DeprecationWarning):
        warnings.warn("an old API", DeprecationWarning, stacklevel=1)


@pytest.mark.parametrize(
    "module", ["chalicelib.services.coaching", "devstack.gateway", "tests.support.world", "app", "bench.load"]
)
def test_a_deprecation_attributed_to_the_projects_modules_is_an_error(module: str) -> None:
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("an old API", DeprecationWarning, "x.py", 1, module=module)


def test_a_deprecation_inside_a_third_party_package_is_reported_not_raised() -> None:
    with pytest.warns(DeprecationWarning, match="their old API"):
        warnings.warn_explicit("their old API", DeprecationWarning, "auth.py", 1, module="botocore.auth")


def test_no_filter_ignores_deprecations_wholesale() -> None:
    filters = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["filterwarnings"]
    for entry in filters:
        action, message, category, module = ([*entry.split(":", 3), "", "", ""])[:4]
        if action == "ignore" and category.endswith("DeprecationWarning"):
            assert message and module, f"{entry!r}: ignore a deprecation by message and module only"
