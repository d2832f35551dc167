"""The caller's identity in the ``$connect`` authorizer's context, both ways.

API Gateway passes the context the authorizer returned with every later frame of the connection
(flat string, number or boolean values; it turns them into strings), so a frame needs no identity
lookup. :func:`authorizer_context` writes a :class:`Principal` into it and
:func:`principal_from_context` reads it back: one field per field, no detour through token claims.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.identity import Principal, Role, epoch_seconds
from chalicelib.domain.ids import is_id


def authorizer_context(principal: Principal) -> dict[str, str | int]:
    """The context the ``$connect`` authorizer returns for ``principal``."""
    return {
        "tenantId": principal.tenant_id,
        "userId": principal.user_id,
        "role": principal.role.value,
        "workitemId": principal.workitem_id or "",
        "name": principal.name or "",
        # The session's end and the token's issue time, checked on every frame (sessions.py).
        "exp": principal.expires_at if principal.expires_at is not None else "",
        "iat": principal.issued_at if principal.issued_at is not None else "",
        # A user of the OIDC issuer: $connect adds them to the directory on first sight (W9.3).
        "federated": "1" if principal.federated else "",
    }


def principal_from_context(context: dict[str, Any]) -> Principal | None:
    """The principal :func:`authorizer_context` wrote (None when the connection had no authorizer);
    :class:`Unauthorized` for a context that names no valid caller."""
    if not context.get("tenantId"):
        return None
    tenant_id, user_id = context.get("tenantId"), context.get("userId")
    if not is_id(tenant_id) or not is_id(user_id):
        raise Unauthorized("the connection's identity is malformed")
    try:
        role = Role(context.get("role"))
    except ValueError as exc:
        raise Unauthorized("the connection's role is not one of admin, supervisor, agent, customer") from exc
    workitem_id = context.get("workitemId") or None
    if role is Role.CUSTOMER and not is_id(workitem_id):
        raise Unauthorized("a customer connection must name its workitem")
    name = context.get("name")
    return Principal(
        tenant_id=str(tenant_id),
        user_id=str(user_id),
        role=role,
        workitem_id=str(workitem_id) if role is Role.CUSTOMER else None,
        name=name if isinstance(name, str) and name else None,
        expires_at=epoch_seconds(context.get("exp")),
        issued_at=epoch_seconds(context.get("iat")),
        federated=bool(context.get("federated")),
    )
