"""Shared fixtures: every storage test runs on moto; ``ddblocal`` tests on AWS's DynamoDB Local."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for key, value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "LOG_LEVEL": "WARNING",
}.items():
    os.environ.setdefault(key, value)


@pytest.fixture
def world() -> Iterator[object]:
    """A fresh product on moto: tables created inside ``mock_aws`` for the whole test."""
    from moto import mock_aws

    from chalicelib import bootstrap
    from chalicelib.adapters.dynamo import create_tables
    from tests.support.world import World, test_settings

    with mock_aws():
        settings = test_settings()
        create_tables(settings, wait=False)
        yield World(settings)
        bootstrap.install(None)


TIERS = {"unit", "integration", "ddblocal", "e2e", "infra", "browser", "faults"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test belongs to exactly one tier, or `make test` (which selects tiers by marker) would
    silently never run it."""
    untiered = [item.nodeid for item in items if not TIERS & {m.name for m in item.iter_markers()}]
    if untiered:
        raise pytest.UsageError(
            "tests without a tier marker (unit, integration, ddblocal, e2e, infra, browser, faults): " + ", ".join(untiered[:10])
        )
