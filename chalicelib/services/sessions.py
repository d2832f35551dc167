"""Sessions (docs/product.md, `W6.1`-`W6.3`, `W6.6`): a connection never outlives its token, and an
admin can revoke a user at once.

The ``$connect`` authorizer puts the token's ``exp`` and ``iat`` into the context API Gateway passes
with every frame, so the expiry check of a frame costs nothing while the token is young. After it,
the frame is allowed only if ``auth.refresh`` stored a later end for the connection (1 GetItem on the
connections table, for frames past the token's own ``exp`` only). Revocation is a second stamped on
the user's recipient: tokens issued up to it are refused on REST (1 GetItem per request), at
``$connect`` (read back from the update that registers the connection, so it costs nothing) and by
``auth.refresh``; the user's open connections are closed when it is written.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.domain.errors import Forbidden, NotFound, Unauthorized
from chalicelib.domain.identity import Principal, Role, user_key
from chalicelib.services.clock import now_pair
from chalicelib.services.delivery import Notifier
from chalicelib.services.directory import require_admin
from chalicelib.services.ports import (
    Clock,
    Connection,
    ConnectionGone,
    ConnectionRegistry,
    Recipient,
    RecipientLookup,
    UserDirectory,
    Verifier,
)

log = logging.getLogger(__name__)

# How far past ``exp`` a token still counts (clock skew between issuer and server).
LEEWAY_SECONDS = 30


class SessionExpired(Unauthorized):
    """The connection's session has ended: the frame is refused and the connection closed."""


class SessionService:
    def __init__(
        self,
        tokens: Verifier,
        users: UserDirectory,
        recipients: RecipientLookup,
        presences: ConnectionGone,
        registry: ConnectionRegistry,
        notifier: Notifier,
        clock: Clock,
        leeway_seconds: int = LEEWAY_SECONDS,
    ) -> None:
        self.tokens = tokens
        self.users = users
        self.recipients = recipients
        self.presences = presences
        self.registry = registry
        self.notifier = notifier
        self.clock = clock
        self.leeway = leeway_seconds

    def _now(self) -> int:
        return now_pair(self.clock)[1] // 1000

    # --- every frame --------------------------------------------------------------------------

    def require_live(self, caller: Principal, connection: Connection) -> None:
        """Raise :class:`SessionExpired` once the connection's session is over. 0 requests before the
        token's own ``exp``; 1 GetItem (a refreshed end) after it."""
        if caller.expires_at is None:  # a connection opened before sessions carried their end
            return
        now = self._now()
        if now <= caller.expires_at + self.leeway:
            return
        refreshed = self.registry.expiry(connection.connection_id)
        if refreshed is None or now > refreshed + self.leeway:
            raise SessionExpired("the session has expired; reconnect with a new token")

    def end(self, connection: Connection) -> None:
        """Close a connection whose session is over (after its last reply was posted)."""
        try:
            self.notifier.close(connection.connection_id)
        except Exception:  # the refusal stands either way; every later frame is refused too
            log.warning("could not close expired connection %s", connection.connection_id, exc_info=True)

    # --- tokens -------------------------------------------------------------------------------

    def authenticate(self, token: str | None) -> Principal:
        """A REST caller: the token verified, then checked against the caller's directory record
        (1 GetItem for directory users): not revoked, and an admin token only while the directory
        does not give the user another role (supervisors are checked per agent by every action)."""
        principal = self.tokens.verify(token)
        recipient = self.require_not_revoked(principal)
        if principal.federated and (recipient is None or not recipient.in_directory):
            # An issuer's user seen for the first time joins the directory (docs/product.md W9.3).
            self.users.enroll(principal, now_pair(self.clock)[0])
        if (
            principal.role is Role.ADMIN
            and recipient is not None
            and recipient.in_directory
            and recipient.role not in (None, Role.ADMIN)
        ):
            raise Forbidden(f"you are no longer an admin (the directory says {recipient.role.value})")
        return principal

    def require_not_revoked(self, principal: Principal) -> Recipient | None:
        """The caller's directory record (1 GetItem), once it is clear the token was not revoked."""
        if principal.is_customer:  # customers are not directory users; their tokens are per workitem
            return None
        recipient = self.recipients.recipient(principal.tenant_id, user_key(principal.user_id))
        if recipient is not None and principal.revoked_by(recipient.revoked_at):
            raise Unauthorized("the token was revoked; sign in again")
        return recipient

    def refresh(self, caller: Principal, connection: Connection, token: str) -> dict[str, Any]:
        """``auth.refresh``: a new token of the same caller extends the connection (1 GetItem
        revocation + 1 PutItem of the connection's new end)."""
        principal = self.tokens.verify(token)
        if not caller.same_identity(principal):
            raise Forbidden("the token is for someone else; open a new connection for it")
        self.require_not_revoked(principal)
        self.registry.put(principal, connection)
        return {"exp": principal.expires_at}

    # --- revocation ---------------------------------------------------------------------------

    def revoke(self, caller: Principal, user_id: str) -> None:
        """``POST /admin/users/{id}/revoke``: 1 UpdateItem (stamps the second, returns the open
        connections), a DeleteConnection per connection, 1 UpdateItem forgetting them. A user the tenant
        has never seen (not in the directory, never connected) is ``not_found``: nothing is written."""
        require_admin(caller)
        recipient = self.users.revoke(caller.tenant_id, user_id, self._now())
        if recipient is None:
            raise NotFound(f"no user {user_id} in this tenant (not in the directory, never connected)")
        for connection in recipient.connections:
            try:
                self.notifier.close(connection.connection_id)
            except Exception:  # logged; the connection also fails its next auth.refresh
                log.warning("could not close connection %s of revoked user %s", connection.connection_id, user_id, exc_info=True)
        if recipient.connections:
            self.presences.forget(caller.tenant_id, recipient.key, recipient.connections, [])
