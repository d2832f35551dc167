"""Shared fixtures and the test tiers.

``world`` (a whole product, tests/support/world.py) comes in two backends: ``memory`` (the in-memory
stores of tests/support/fakes.py; the ``service`` tier, in ``make test-fast``) and ``moto`` (the
DynamoDB adapters on moto; the ``integration`` tier). A test that uses it runs on both, so the fakes
are held to the adapters' behaviour, unless it is marked ``moto`` (it counts DynamoDB requests,
reads the stream or injects SDK faults). ``ddblocal`` tests run on AWS's DynamoDB Local."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from botocore.session import Session as BotocoreSession

    from tests.support.world import World

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


# Property tests keep hypothesis's example counts but no per-example time limit: a deadline of 200 ms
# fails on two loaded cores (and under make mutate) without anything being wrong; speed is make bench's.
def _hypothesis_profile() -> None:
    from hypothesis import HealthCheck, settings

    settings.register_profile("project", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("project")


_hypothesis_profile()


BACKENDS = {
    "memory": pytest.param("memory", marks=pytest.mark.service, id="memory"),
    "moto": pytest.param("moto", marks=pytest.mark.integration, id="moto"),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses ``world`` (directly or through a fixture) runs on each backend it may."""
    if "world" in metafunc.fixturenames:
        names = ["moto"] if metafunc.definition.get_closest_marker("moto") else ["memory", "moto"]
        metafunc.parametrize("world", [BACKENDS[n] for n in names], indirect=True)


@pytest.fixture
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    """A fresh product: on in-memory stores, or on moto with the tables created inside ``mock_aws``
    for the whole test. Production settings, but for a test marked ``local_webhooks``."""
    from chalicelib import bootstrap
    from tests.support.fakes import MemoryStorage
    from tests.support.world import World, test_settings

    overrides = {"webhook_targets": "local"} if request.node.get_closest_marker("local_webhooks") else {}
    if request.param == "memory":
        settings = test_settings(**overrides)
        yield World(settings, MemoryStorage(settings))
        bootstrap.install(None)
        return
    from moto import mock_aws

    from chalicelib.adapters.dynamo import create_tables

    with mock_aws(), pytest.MonkeyPatch.context() as mp:
        # PynamoDB opens a botocore session per model connection, and each session loads DynamoDB's
        # service model from disk again (about 0.3 s per world, twice); one session serves them all.
        mp.setattr("pynamodb.connection.base.get_session", _botocore_session)
        settings = test_settings(**overrides)
        create_tables(settings, wait=False)
        yield World(settings)
        bootstrap.install(None)


@functools.cache
def _botocore_session() -> BotocoreSession:
    from botocore.session import get_session

    return get_session()


TIERS = ("unit", "service", "integration", "ddblocal", "e2e", "infra", "browser", "faults")
# ``slow`` marks a long run (request counts on big tenants, fuzzing): never in `make test-fast`'s tiers.
SLOW_TIERS = {"integration", "ddblocal"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test belongs to exactly one tier, or `make test` (which selects tiers by marker) would
    silently never run it, or run it twice."""
    wrong = []
    for item in items:
        marks = {m.name for m in item.iter_markers()}
        tiers = marks & set(TIERS)
        if len(tiers) != 1:
            wrong.append(f"{item.nodeid} ({', '.join(sorted(tiers)) or 'no tier'})")
        elif "slow" in marks and not tiers & SLOW_TIERS:
            wrong.append(f"{item.nodeid} (slow, in the inner loop's {', '.join(tiers)} tier)")
    if wrong:
        raise pytest.UsageError(
            f"tests need exactly one tier marker ({', '.join(TIERS)}), and slow ones a tier outside the inner loop "
            f"({', '.join(sorted(SLOW_TIERS))}); a test that uses `world` gets its tier from the backend (no "
            "`integration` mark of its own, or `moto` to run on moto only): " + "; ".join(wrong[:10])
        )
