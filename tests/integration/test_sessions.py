"""Sessions never outlive their tokens (`W6.1`-`W6.3`, `W6.6`): expiry on every frame, auth.refresh, revocation,
the 24 h ceiling."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from tests.support.world import JWT_SECRET, Client, World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).


def token(sub: str = "agent-1", role: str = "agent", tid: str = "t1", **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"sub": sub, "tid": tid, "role": role, "iat": now, "exp": now + 600}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, JWT_SECRET, algorithm="HS256")


def connected(world: World, raw: str) -> Client:
    status, client = world.connect_token(raw)
    assert status == 200 and client is not None
    return client


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) + 25 * 3600},  # more than 24 h ahead
        {"exp": 10**13},  # the year 30000
        {"exp": str(int(time.time()) + 600)},  # a numeric string
        {"iat": str(int(time.time()))},
    ],
)
def test_refused_tokens_at_connect_and_on_rest(world: World, claims: dict[str, Any]) -> None:
    raw = token(**claims)
    assert world.connect_token(raw) == (401, None)
    assert world.rest("GET", "/me/settings", raw)[0] == 401


def test_frames_after_exp_are_unauthorized_and_the_connection_is_closed(world: World) -> None:
    client = connected(world, token(exp=int(time.time()) + 60))
    client.ok("ping")
    world.clock.advance(60 + 25)  # inside the leeway
    client.ok("ping")
    world.clock.advance(10)
    error = client.fails("ping", "unauthorized")
    assert "expired" in error["message"]
    assert world.pusher.closed == [client.connection_id]


def test_refresh_extends_the_connection(world: World) -> None:
    client = connected(world, token(exp=int(time.time()) + 60))
    later = int(time.time()) + 3600
    assert client.ok("auth.refresh", token=token(exp=later)) == {"exp": later}
    world.clock.advance(600)
    client.ok("ping")
    world.clock.advance(3000 + 60)
    client.fails("ping", "unauthorized")
    assert world.pusher.closed == [client.connection_id]


def test_refresh_for_someone_else_or_invalid(world: World) -> None:
    client = connected(world, token())
    client.fails("auth.refresh", "forbidden", token=token(sub="agent-2"))
    client.fails("auth.refresh", "forbidden", token=token(role="supervisor"))
    client.fails("auth.refresh", "forbidden", token=token(tid="t2"))
    client.fails("auth.refresh", "unauthorized", token="not-a-token")
    client.fails("auth.refresh", "unauthorized", token=token(exp=int(time.time()) - 120))
    forged = jwt.encode(
        {"sub": "agent-1", "tid": "t1", "role": "agent", "exp": int(time.time()) + 60}, "wrong-secret-0123456789abcdef0123456789"
    )
    client.fails("auth.refresh", "unauthorized", token=forged)
    client.ok("ping")  # a refused refresh leaves the session as it was
    assert world.pusher.closed == []


def test_customer_refresh_needs_the_same_workitem(world: World) -> None:
    world.team()
    world.assign("wi-1")
    world.assign("wi-2")
    client = connected(world, token(sub="cust-1", role="customer", wid="wi-1"))
    client.fails("auth.refresh", "forbidden", token=token(sub="cust-1", role="customer", wid="wi-2"))
    client.ok("auth.refresh", token=token(sub="cust-1", role="customer", wid="wi-1"))


def test_revoke_closes_connections_and_refuses_older_tokens(world: World) -> None:
    world.team()
    old = token(sub="sup-1", role="supervisor")
    no_iat = token(sub="sup-1", role="supervisor", iat=None)
    first, second = connected(world, old), connected(world, no_iat)
    bystander = connected(world, token(sub="sup-2", role="supervisor"))

    status, body = world.rest("POST", "/admin/users/sup-1/revoke", world.token("admin-1", "admin"))
    assert (status, body) == (204, None)
    assert sorted(world.pusher.closed) == sorted([first.connection_id, second.connection_id])

    for raw in (old, no_iat):
        assert world.rest("GET", "/me/settings", raw)[0] == 401
        assert world.connect_token(raw) == (401, None)
    bystander.fails("auth.refresh", "forbidden", token=old)
    # Were a revoked connection still open (its close failed), it could not be extended with an old token.
    world.pusher.gone.discard(first.connection_id)
    first.fails("auth.refresh", "unauthorized", token=old)

    fresh = token(sub="sup-1", role="supervisor", iat=int(time.time()) + 1)
    assert world.rest("GET", "/me/settings", fresh)[0] == 200
    connected(world, fresh).ok("agents.list")


def test_revoke_is_for_admins_of_the_tenant(world: World) -> None:
    world.team()
    assert world.rest("POST", "/admin/users/sup-2/revoke", world.token("sup-1", "supervisor"))[0] == 403
    status, body = world.rest("POST", "/admin/users/sup-2/revoke", world.token("admin-9", "admin", tid="t2"))
    assert (status, body["error"]["code"]) == (404, "not_found")  # no such user in t2
    assert world.rest("GET", "/me/settings", token(sub="sup-2", role="supervisor"))[0] == 200
    assert world.rest("POST", "/admin/users/bad%23id/revoke", world.token("admin-1", "admin"))[0] == 400


def test_revoking_a_user_the_tenant_has_never_seen_is_404_and_writes_nothing(world: World) -> None:
    """A mistyped id is noticed instead of answered 204; a user known only from a connection (an admin
    who is not a directory user) can be revoked."""
    world.team()
    admin = world.token("admin-1", "admin")
    status, body = world.rest("POST", "/admin/users/ghost/revoke", admin)
    assert (status, body["error"]["code"]) == (404, "not_found"), body
    assert world.rest("PUT", "/admin/users/ghost", admin, {"name": "Ghost", "role": "agent"})[0] == 200
    assert world.rest("GET", "/me/settings", token(sub="ghost", role="agent"))[0] == 200  # no revocation was stamped
    outsider = token(sub="admin-7", role="admin")  # an admin who is not a directory user
    connected(world, outsider)
    assert world.rest("POST", "/admin/users/admin-7/revoke", admin)[0] == 204
    assert world.rest("GET", "/me/settings", outsider)[0] == 401


@pytest.mark.moto
def test_the_expiry_check_is_free_until_exp_and_one_read_after(world: World) -> None:
    from tests.support.ddbcount import count_dynamodb

    client = connected(world, token(exp=int(time.time()) + 60))
    with count_dynamodb() as log:
        client.ok("ping")
    assert log.total == 0
    later = int(time.time()) + 3600
    with count_dynamodb() as log:
        client.ok("auth.refresh", token=token(exp=later))
    assert log.by_operation() == {"GetItem": 1, "PutItem": 1}  # revocation, the connection's new end
    world.clock.advance(120)
    with count_dynamodb() as log:
        client.ok("ping")
    assert log.by_operation() == {"GetItem": 1}  # past the token's own exp: the refreshed end


def test_a_failed_session_lookup_refuses_the_frame_but_keeps_the_socket(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    client = connected(world, token(exp=int(time.time()) + 60))
    world.clock.advance(120)

    def broken(connection_id: str) -> int | None:
        raise RuntimeError("the connections table is unreachable")

    monkeypatch.setattr(world.services.directory.registry, "expiry", broken)
    error = client.fails("ping", "internal")
    assert "unreachable" not in error["message"]
    assert world.pusher.closed == []
