"""The connections table behind the ``ConnectionRegistry`` port (``chalicelib.services.ports``):
connection id -> identity and session end.

Every method documents the DynamoDB requests it makes; docs/data-model.md sums them per action and
tests/integration/test_request_budget.py holds the code to those sums.
"""

from __future__ import annotations

import time
from datetime import datetime

from pynamodb.exceptions import DoesNotExist

from chalicelib.adapters.dynamo import (
    ConnectionItem,
)
from chalicelib.domain.identity import Principal, Role
from chalicelib.services.ports import (
    CONNECTION_LIFETIME_MS,
    Connection,
)


class DynamoConnectionRegistry:
    """Connection id → identity, for frames that arrive without the authorizer's context."""

    def put(self, principal: Principal, connection: Connection) -> None:
        """1 PutItem (expires with API Gateway's 2 h connection limit)."""
        ConnectionItem(
            connection.connection_id,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            role=principal.role.value,
            workitem_id=principal.workitem_id,
            name=principal.name,
            connected_at=connection.connected_at,
            exp=principal.expires_at,
            iat=principal.issued_at,
            ttl=datetime.fromtimestamp((connection.connected_at + CONNECTION_LIFETIME_MS) / 1000).astimezone(),
        ).save()

    def expiry(self, connection_id: str) -> int | None:
        """1 GetItem (strongly consistent: a refresh a moment ago counts)."""
        try:
            item = ConnectionItem.get(connection_id, consistent_read=True, attributes_to_get=["exp"])
        except DoesNotExist:
            return None
        return int(item.exp) if item.exp is not None else None

    def get(self, connection_id: str) -> Principal | None:
        """1 GetItem."""
        try:
            item = ConnectionItem.get(connection_id)
        except DoesNotExist:
            return None
        if item.connected_at + CONNECTION_LIFETIME_MS < time.time() * 1000:
            return None
        return Principal(
            item.tenant_id,
            item.user_id,
            Role(item.role),
            item.workitem_id,
            item.name,
            expires_at=int(item.exp) if item.exp is not None else None,
            issued_at=int(item.iat) if item.iat is not None else None,
        )

    def delete(self, connection_id: str) -> None:
        """1 DeleteItem."""
        ConnectionItem(connection_id).delete()
