"""Issuer tokens through the real entry points (docs/product.md W9): the `$connect` authorizer and
REST accept an OIDC issuer's tokens (JWKS served on 127.0.0.1 by the test), its users join the
directory on first sight (once, W9.3), refused tokens write nothing, and a broken JWKS endpoint makes
`$connect` answer 401 quickly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.domain.identity import Role, user_key
from tests.integration.test_identity import snapshot
from tests.support import world as world_support
from tests.support.ddbcount import count_dynamodb
from tests.support.issuer import Issuer
from tests.support.world import World

pytestmark = pytest.mark.integration


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    iss = Issuer()
    iss.add_key("RSA", "rsa-1")
    iss.add_key("EC", "ec-1")
    yield iss
    iss.stop()


@pytest.fixture
def oidc_world(issuer: Issuer) -> Iterator[World]:
    from moto import mock_aws

    from chalicelib.adapters.dynamo import create_tables

    with mock_aws():
        # No JWKS URL: it comes from the issuer's discovery document.
        settings = world_support.test_settings(oidc_issuer=issuer.url, oidc_audience="coaching")
        create_tables(settings, wait=False)
        yield World(settings)
        bootstrap.install(None)


def recipient(world: World, user_id: str, tid: str = "t1") -> Any:
    return world.services.directory.directory.recipient(tid, user_key(user_id))


def test_websocket_accepts_issuer_tokens_and_the_user_joins_the_directory_once(oidc_world: World, issuer: Issuer) -> None:
    token = issuer.token("rsa-1", sub="ann", role="agent", email="ann@example.com")
    with count_dynamodb() as first:
        status, client = oidc_world.connect_token(token)
    assert status == 200 and client is not None
    ann = recipient(oidc_world, "ann")
    assert (ann.in_directory, ann.role, ann.name) == (True, Role.AGENT, "ann@example.com")
    assert first.by_operation()["UpdateItem"] >= 2  # the connection, and joining the directory
    client.ok("ping")
    client.disconnect()
    # The admin renames her; later connects leave the directory as the admin set it, at no extra cost.
    oidc_world.admin("PUT", "/admin/users/ann", {"name": "Ann Agent", "role": "agent"})
    with count_dynamodb() as again:
        status, client = oidc_world.connect_token(issuer.token("ec-1", sub="ann", role="agent", name="Someone"))
    assert status == 200
    assert recipient(oidc_world, "ann").name == "Ann Agent"
    with count_dynamodb() as baseline:
        assert oidc_world.connect_token(oidc_world.token("bob", "agent"))[0] == 200  # an HS256 user
    assert again.total == baseline.total
    # Teams are managed in the product: the issuer's user can be put in one without PUT /admin/users.
    status, sup = oidc_world.connect_token(issuer.token("rsa-1", sub="sam", role="supervisor", name="Sam"))
    assert status == 200 and sup is not None
    oidc_world.admin("PUT", "/admin/teams/team-1", {"name": "Team", "supervisors": ["sam"], "agents": ["ann"]})
    assert [a["userId"] for a in sup.ok("agents.list")["agents"]] == ["ann"]


def test_rest_accepts_issuer_tokens_and_enrols_on_the_first_call_only(oidc_world: World, issuer: Issuer) -> None:
    token = issuer.token("ec-1", sub="ada", role=None, groups=["billing", "admin"], name="Ada")
    # The role claim is configurable; with the default ("role") this token names no role.
    status, body = oidc_world.rest("GET", "/admin/policy", token)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    token = issuer.token("ec-1", sub="ada", role="admin", name="Ada")
    with count_dynamodb() as first:
        status, _ = oidc_world.rest("GET", "/admin/policy", token)
    assert status == 200
    ada = recipient(oidc_world, "ada")
    assert (ada.in_directory, ada.role, ada.name) == (True, Role.ADMIN, "Ada")
    with count_dynamodb() as second:
        status, _ = oidc_world.rest("GET", "/admin/policy", token)
    assert status == 200
    assert first.by_operation()["UpdateItem"] == 1 and second.by_operation()["UpdateItem"] == 0
    assert second.total == first.total - 2  # no enrolment (UpdateItem + the admin index's PutItem)


def test_refused_issuer_tokens_write_nothing(oidc_world: World, issuer: Issuer) -> None:
    other = Issuer()
    other.add_key("RSA", "rsa-1")
    try:
        now = int(time.time())
        refused = {
            "wrong iss": issuer.token("rsa-1", iss="https://evil.example.com"),
            "wrong aud": issuer.token("rsa-1", aud="other"),
            "expired": issuer.token("rsa-1", exp=now - 3600),
            "future nbf": issuer.token("rsa-1", nbf=now + 3600),
            "another issuer's key": other.token("rsa-1", iss=issuer.url),
            "no role": issuer.token("rsa-1", role=None),
            "no tenant": issuer.token("rsa-1", tid=None),
        }
        before = snapshot()
        statuses = {case: oidc_world.connect_token(token)[0] for case, token in refused.items()}
        rest = {case: oidc_world.rest("GET", "/me/settings", token)[0] for case, token in refused.items()}
        assert set(statuses.values()) == {401} and set(rest.values()) == {401}, (statuses, rest)
        assert snapshot() == before
    finally:
        other.stop()


@pytest.mark.parametrize("mode", ["hang", "garbage", "trickle"])
def test_a_broken_jwks_endpoint_makes_connect_answer_401_quickly(oidc_world: World, issuer: Issuer, mode: str) -> None:
    issuer.mode = mode
    started = time.monotonic()
    assert oidc_world.connect_token(issuer.token("rsa-1"))[0] == 401
    assert time.monotonic() - started < 5  # the fetches' 2 s deadline in all (a trickle too), never a hang
    started = time.monotonic()
    assert oidc_world.connect_token(issuer.token("rsa-1"))[0] == 401
    assert time.monotonic() - started < 1  # within 10 s of a failed fetch: refused at once
    assert issuer.jwks_requests == 1
    assert oidc_world.connect_token(oidc_world.token("agent-1", "agent"))[0] == 200  # HS256 unaffected
