"""The local stack pointed at an OIDC issuer served by the test on 127.0.0.1 (docs/product.md W9):
REST and WebSocket accept its tokens, a rotated key works without a restart, and a JWKS endpoint that
hangs or answers garbage makes ``$connect`` answer 401 quickly."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Stack, running_stack
from tests.e2e.wsclient import WsRefused
from tests.support.issuer import Issuer

pytestmark = pytest.mark.e2e

REFETCH_INTERVAL = 10  # the deployed limit: at most one JWKS fetch per 10 s


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    iss = Issuer()
    iss.add_key("RSA", "k1")
    yield iss
    iss.stop()


@pytest.fixture(scope="module")
def oidc_stack(request: pytest.FixtureRequest, issuer: Issuer) -> Iterator[Stack]:
    # The same variables a deployed stack reads; the JWKS URL comes from discovery.
    with running_stack(
        request,
        DEVSTACK_SEED="0",
        COACHING_OIDC_ISSUER=issuer.url,
        COACHING_OIDC_AUDIENCE="coaching",
        COACHING_OIDC_TENANT_CLAIM="custom:tid",
        COACHING_OIDC_ROLE_CLAIM="cognito:groups",
        COACHING_OIDC_JWKS_URL="",
    ) as running:
        yield running


def cognito(issuer: Issuer, kid: str, sub: str, groups: list[str], **claims: object) -> str:
    """A Cognito-style access token: no ``aud``, ``client_id``, ``custom:tid`` and ``cognito:groups``."""
    return issuer.token(
        kid,
        None,
        sub=sub,
        aud=None,
        tid=None,
        role=None,
        token_use="access",
        client_id="coaching",
        **{"custom:tid": "acme", "cognito:groups": groups},
        **claims,
    )


def test_rest_and_websocket_accept_the_issuers_tokens_and_rotated_keys(oidc_stack: Stack, issuer: Issuer) -> None:
    admin = cognito(issuer, "k1", "ida", ["staff", "admin"], name="Ida")
    status, body = oidc_stack.rest("GET", "/admin/policy", admin)
    assert status == 200, body
    sup_ws = oidc_stack.connect(cognito(issuer, "k1", "sam", ["supervisor"], name="Sam"))
    agent_ws = oidc_stack.connect(cognito(issuer, "k1", "ann", ["agent"], email="ann@example.com"))
    # Both joined the directory on connect: the admin builds a team of them straight away.
    status, body = oidc_stack.rest(
        "PUT", "/admin/teams/team-1", admin, {"name": "Team", "supervisors": ["sam"], "agents": ["ann"]}
    )
    assert status == 200, body
    agents = sup_ws.ok("agents.list")["agents"]
    assert [(a["userId"], a.get("name")) for a in agents] == [("ann", "ann@example.com")]
    assert agent_ws.ok("ping") is not None
    # HS256 tokens of the shared secret keep working beside the issuer.
    oidc_stack.connect(oidc_stack.token("bob", "agent", tid="acme")).close()

    # Rotation: the issuer publishes a new key and signs with it; no restart.
    issuer.add_key("RSA", "k2")
    deadline = time.monotonic() + REFETCH_INTERVAL + 5
    while True:
        try:
            rotated = oidc_stack.connect(cognito(issuer, "k2", "ann", ["agent"]))
            break
        except WsRefused as refused:  # the keys were fetched less than 10 s ago
            assert refused.status == 401
            assert time.monotonic() < deadline, "the rotated key was not fetched within the refetch interval"
            time.sleep(1)
    rotated.ok("ping")
    status, _ = oidc_stack.rest("GET", "/me/settings", cognito(issuer, "k2", "sam", ["supervisor"]))
    assert status == 200
    for ws in (rotated, sup_ws, agent_ws):
        ws.close()


@pytest.mark.parametrize("mode", ["hang", "garbage"])
def test_a_broken_jwks_endpoint_makes_connect_answer_401_quickly(oidc_stack: Stack, issuer: Issuer, mode: str) -> None:
    issuer.mode = mode
    try:
        time.sleep(REFETCH_INTERVAL + 0.5)  # let the stack's next fetch reach the broken endpoint
        fetched = issuer.jwks_requests
        for _ in range(2):
            started = time.monotonic()
            with pytest.raises(WsRefused) as refused:
                oidc_stack.connect(issuer_token_with_unknown_kid(issuer))
            assert refused.value.status == 401
            assert time.monotonic() - started < 4  # the 2 s fetch timeout; never a hang
        assert issuer.jwks_requests == fetched + 1  # the second connect did not wait for the endpoint again
        # Keys fetched before the endpoint broke still verify.
        oidc_stack.connect(cognito(issuer, "k1", "ann", ["agent"])).close()
    finally:
        issuer.mode = "ok"


def issuer_token_with_unknown_kid(issuer: Issuer) -> str:
    """Signed by a key the stack has not seen, so verifying it needs a fetch from the endpoint."""
    kid = issuer.add_key("RSA", publish=False)
    return cognito(issuer, kid, "ann", ["agent"])
