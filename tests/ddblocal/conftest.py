"""Fixtures of the ``ddblocal`` tier: the whole product on AWS's DynamoDB Local engine, no moto.

``scripts/ddblocal.sh run auto -- <cmd>`` (what ``make test-ddblocal`` uses) starts DynamoDB Local on
a free port and exports ``DDB_LOCAL_ENDPOINT``. Without it this tier fails with instructions: it
never skips, so a green run always means the storage code ran against the real engine.

Tables are created once per session under names with a random suffix (reruns against a long-lived
instance never clash) and dropped at the end; each test works in its own tenant, so tests never
see each other's data.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.world import World, test_settings

if TYPE_CHECKING:
    from pynamodb.models import Model

ENDPOINT_VARIABLE = "DDB_LOCAL_ENDPOINT"
HOW_TO_RUN = (
    "run this tier with `make test` (or `make test-ddblocal`), or by hand with "
    "`scripts/ddblocal.sh run auto -- python -m pytest -m ddblocal` "
    "(DynamoDB Local is installed by `make install` and needs Java 17+)"
)
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ddblocal",
    "AWS_SECRET_ACCESS_KEY": "ddblocal",
    "AWS_SESSION_TOKEN": "ddblocal",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def _endpoint() -> str:
    endpoint = os.environ.get(ENDPOINT_VARIABLE, "").strip()
    if not endpoint:
        pytest.fail(
            f"{ENDPOINT_VARIABLE} is not set, so there is no DynamoDB Local to test against: {HOW_TO_RUN}.", pytrace=False
        )
    return endpoint


def _check_answers(endpoint: str) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1}),
    )
    try:
        client.list_tables(Limit=1)
    except Exception as exc:
        pytest.fail(
            f"DynamoDB Local does not answer at {ENDPOINT_VARIABLE}={endpoint} ({type(exc).__name__}: {exc}); {HOW_TO_RUN}.",
            pytrace=False,
        )


def ddb_client(settings: Any) -> Any:
    """A plain boto3 DynamoDB client on the tier's endpoint (for checks the product never makes)."""
    import boto3

    return boto3.client("dynamodb", endpoint_url=settings.dynamodb_endpoint, region_name=settings.region)


@pytest.fixture(scope="session")
def ddb_settings() -> Iterator[Any]:
    """Settings pointing at DynamoDB Local, with this session's own tables (created once)."""
    from chalicelib.adapters.dynamo import create_tables, table_names

    endpoint = _endpoint()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in DUMMY_CREDENTIALS.items():
            mp.setenv(key, value)
        _check_answers(endpoint)
        prefix = f"ddbt-{uuid.uuid4().hex[:10]}"
        settings = test_settings(
            dynamodb_endpoint=endpoint,
            directory_table=f"{prefix}-directory",
            workitems_table=f"{prefix}-workitems",
            connections_table=f"{prefix}-connections",
            assistance_table=f"{prefix}-assistance",
            idempotency_table=f"{prefix}-idempotency",
        )
        # Creates the tables and enables TTL on each, once: DynamoDB Local, like AWS, refuses to
        # enable TTL twice, so this also proves create_tables skips tables that exist.
        create_tables(settings)
        yield settings
        client = ddb_client(settings)
        for name in table_names(settings).values():
            with contextlib.suppress(Exception):  # best effort: an in-memory instance is thrown away anyway
                client.delete_table(TableName=name)


class TenantWorld(World):
    """A :class:`World` whose helpers default to this test's own tenant instead of ``t1``."""

    def __init__(self, settings: Any, tenant_id: str) -> None:
        super().__init__(settings)
        self.tid = tenant_id

    def token(self, sub: str, role: str, tid: str | None = None, **extra: Any) -> str:
        return super().token(sub, role, tid or self.tid, **extra)

    def connect(
        self,
        sub: str,
        role: str,
        tid: str | None = None,
        name: str | None = None,
        wid: str | None = None,
        delivery: str | None = None,
    ) -> Any:
        return super().connect(sub, role, tid or self.tid, name, wid, delivery)

    def admin(self, method: str, path: str, body: Any = None, tid: str | None = None) -> Any:
        return super().admin(method, path, body, tid or self.tid)

    def webhook(  # type: ignore[override]  # World's later arguments pass through, by keyword only
        self, type_: str, data: dict[str, Any], tid: str | None = None, event_id: str | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        return super().webhook(type_, data, tid or self.tid, event_id, **kwargs)

    def team(self, tid: str | None = None, **kwargs: Any) -> None:  # type: ignore[override]  # likewise
        super().team(tid or self.tid, **kwargs)

    def assign(self, workitem_id: str, channel: str = "chat", agent_id: str = "agent-1", tid: str | None = None) -> None:
        super().assign(workitem_id, channel, agent_id, tid or self.tid)

    @property
    def store(self) -> Any:
        """The DynamoDB workitem store the services use."""
        return self.services.coaching.store

    @property
    def directory(self) -> Any:
        """The DynamoDB directory the services use."""
        return self.services.directory.directory


# PynamoDB gives every model class its own connection, botocore session and client, and building
# one costs ~0.1-0.3 s. configure() (run by every World) drops them; since this session's settings
# never change, each test gets back the ones earlier tests built, as a warm Lambda container would.
_warm_connections: dict[type, Any] = {}


def _models() -> list[type[Model]]:
    from chalicelib.adapters import dynamo

    return [m for models in dynamo._MODELS_BY_TABLE.values() for m in models]


@pytest.fixture
def ddb_world(ddb_settings: Any) -> Iterator[TenantWorld]:
    """The whole product on DynamoDB Local, through the real Lambda entry points, in a fresh tenant."""
    from chalicelib import bootstrap

    with pytest.MonkeyPatch.context() as mp:
        for key, value in DUMMY_CREDENTIALS.items():
            mp.setenv(key, value)
        world = TenantWorld(ddb_settings, f"t-{uuid.uuid4().hex[:12]}")
        for model in _models():
            if model in _warm_connections and model.Meta.host == ddb_settings.dynamodb_endpoint:
                model._connection = _warm_connections[model]
        try:
            yield world
        finally:
            for model in _models():
                if model._connection is not None:
                    _warm_connections[model] = model._connection
            bootstrap.install(None)
