"""The ``$connect`` authorizer's context carries the caller to every frame: what
``authorizer_context`` writes, ``principal_from_context`` reads back, field for field, also after
API Gateway has turned every value into a string."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.identity import Principal, Role
from chalicelib.entrypoints.identity import authorizer_context, principal_from_context

pytestmark = pytest.mark.unit

PRINCIPALS = [
    Principal("t1", "sup-1", Role.SUPERVISOR, name="Sam", expires_at=1_900_000_000, issued_at=1_899_999_000),
    Principal("t1", "cust-1", Role.CUSTOMER, workitem_id="wi-1"),
    Principal("t2", "user+tag@example.com", Role.ADMIN, expires_at=1_900_000_000, issued_at=0, federated=True),
    Principal("t1", "agent-1", Role.AGENT),
]


def _fields(p: Principal) -> tuple[Any, ...]:
    return (p.tenant_id, p.user_id, p.role, p.workitem_id, p.name, p.expires_at, p.issued_at, p.federated)


@pytest.mark.parametrize("principal", PRINCIPALS, ids=lambda p: p.user_id)
def test_the_context_round_trips_every_field(principal: Principal) -> None:
    context = authorizer_context(principal)
    as_strings = {k: str(v) for k, v in context.items()}  # what API Gateway hands the $default handler
    for carried in (context, as_strings):
        back = principal_from_context(carried)
        assert back is not None and _fields(back) == _fields(principal)


def test_no_context_is_no_principal() -> None:
    assert principal_from_context({}) is None


@pytest.mark.parametrize(
    "change",
    [{"userId": "a b"}, {"role": "root"}, {"role": "customer", "workitemId": ""}, {"tenantId": "t#1"}],
)
def test_a_context_naming_no_valid_caller_is_unauthorized(change: dict[str, str]) -> None:
    context = {**authorizer_context(PRINCIPALS[0]), **change}
    with pytest.raises(Unauthorized):
        principal_from_context(context)
