"""A tenant keeps a directory admin (docs/product.md W3.8): the last one's role cannot be changed to a
non-admin role, by anyone, themselves included; with two, either may go, but never both, even at
once. (An admin need not be a directory user: the operator's token minted with the shared secret
always works, so this guards against the common accident, an issuer's only admin demoting
themselves and being refused from then on, not against the operator.)"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.domain.errors import Conflict
from chalicelib.domain.identity import Principal, Role
from chalicelib.entrypoints.wire import WIRE
from tests.support.ddbcount import count_dynamodb
from tests.support.world import World, atomic_aws_calls

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).

AGENT: dict[str, Any] = {"name": "Former Admin", "role": "agent"}


def put(world: World, caller: str, user: str, role: str) -> tuple[int, Any]:
    return world.rest("PUT", f"/admin/users/{user}", world.token(caller, "admin"), {"name": user.title(), "role": role})


def test_the_last_directory_admin_keeps_the_role(world: World) -> None:
    assert put(world, "boss", "boss", "admin")[0] == 200
    status, body = put(world, "other-admin", "boss", "agent")
    assert (status, body["error"]["code"]) == (409, "conflict"), body
    assert "last admin" in body["error"]["message"]
    assert world.rest("GET", "/admin/templates", world.token("boss", "admin"))[0] == 200  # still an admin
    assert put(world, "other-admin", "boss", "supervisor")[0] == 409
    assert put(world, "boss", "boss", "admin")[0] == 200  # renaming the last admin is fine


def test_no_admin_takes_away_their_own_role(world: World) -> None:
    """Not even one who is not a directory user (whose token a directory "agent" record would void),
    nor one of several directory admins: another admin may, though."""
    status, body = put(world, "minted", "minted", "agent")
    assert (status, body["error"]["code"]) == (409, "conflict"), body
    assert world.rest("GET", "/admin/templates", world.token("minted", "admin"))[0] == 200
    for user in ("ann", "bob"):
        assert put(world, "minted", user, "admin")[0] == 200
    assert put(world, "ann", "ann", "supervisor")[0] == 409
    assert put(world, "bob", "ann", "supervisor")[0] == 200


def test_nor_can_an_admin_who_is_not_a_directory_user_demote_the_last_one(world: World) -> None:
    assert put(world, "operator", "boss", "admin")[0] == 200
    status, body = put(world, "operator", "boss", "agent")
    assert (status, body["error"]["code"]) == (409, "conflict"), body


def test_with_two_admins_one_may_go_then_the_other_stays(world: World) -> None:
    for user in ("ann", "bob"):
        assert put(world, "operator", user, "admin")[0] == 200
    assert put(world, "ann", "bob", "agent")[0] == 200
    assert world.rest("GET", "/admin/templates", world.token("bob", "admin"))[0] == 403  # bob is an agent now
    assert put(world, "operator", "ann", "agent")[0] == 409
    assert put(world, "ann", "bob", "admin")[0] == 200  # promoted again: two admins
    assert put(world, "bob", "ann", "supervisor")[0] == 200


def test_users_who_were_never_admins_are_unaffected(world: World) -> None:
    assert put(world, "operator", "agent-7", "agent")[0] == 200  # no directory admin at all: nothing to keep
    assert put(world, "operator", "boss", "admin")[0] == 200
    assert put(world, "operator", "agent-7", "supervisor")[0] == 200


def test_two_admins_demoting_each_other_at_once_leave_one(world: World) -> None:
    for user in ("ann", "bob"):
        assert put(world, "operator", user, "admin")[0] == 200
    results: dict[str, int | str] = {}
    start = threading.Barrier(2)
    directory = bootstrap.services(WIRE).directory  # the use case itself, from two threads at once

    def demote(caller: str, target: str) -> None:
        start.wait()
        try:
            directory.put_user(Principal("t1", caller, Role.ADMIN), target, target.title(), "agent")
            results[target] = 200
        except Conflict:
            results[target] = 409
        except Exception as exc:  # reported with the outcome below
            results[target] = repr(exc)

    threads = [threading.Thread(target=demote, args=pair) for pair in (("ann", "bob"), ("bob", "ann"))]
    # moto applies a transaction in steps without a lock (real DynamoDB never interleaves two): each call
    # is made atomic, the use cases still interleave between calls. tests/ddblocal races it on AWS's engine.
    with atomic_aws_calls():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert sorted(results.values(), key=str) == [200, 409], results
    kept = [user for user, status in results.items() if status == 409]
    assert world.rest("GET", "/admin/templates", world.token(kept[0], "admin"))[0] == 200


@pytest.mark.moto
def test_the_rule_costs_one_small_query_and_a_demotion_one_transaction(world: World) -> None:
    """docs/data-model.md's budget for PUT /admin/users (the caller's own revocation check is the GetItem)."""
    for user in ("ann", "bob"):
        assert put(world, "operator", user, "admin")[0] == 200
    with count_dynamodb() as log:
        assert put(world, "operator", "agent-7", "agent")[0] == 200
    assert log.by_operation() == {"GetItem": 1, "Query": 2, "UpdateItem": 1, "DeleteItem": 1}  # admins, edges
    with count_dynamodb() as log:
        assert put(world, "operator", "bob", "agent")[0] == 200
    assert log.by_operation() == {"GetItem": 1, "Query": 2, "TransactWriteItems": 1}
    with count_dynamodb() as log:
        assert put(world, "operator", "bob", "admin")[0] == 200  # promotions read no admin list
    assert log.by_operation() == {"GetItem": 1, "Query": 1, "UpdateItem": 1, "PutItem": 1}
