"""Who is calling: the verified claims of a token, independent of how they were verified."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .errors import Conflict


class Role(str, enum.Enum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
    CUSTOMER = "customer"


DIRECTORY_ROLES = (Role.ADMIN, Role.SUPERVISOR, Role.AGENT)


@dataclass(frozen=True)
class Principal:
    """The caller. Customers are bound to one workitem and are never directory users."""

    tenant_id: str
    user_id: str
    role: Role
    workitem_id: str | None = None
    name: str | None = None
    # The token's ``exp`` and ``iat`` (epoch seconds): when the session ends, and when the token was
    # issued (revocation refuses tokens issued up to it). Not part of who the caller is.
    expires_at: int | None = field(default=None, compare=False)
    issued_at: int | None = field(default=None, compare=False)
    # Whether the token came from the OIDC issuer (docs/product.md W9): such users are added to the
    # directory the first time they are seen.
    federated: bool = field(default=False, compare=False)

    def same_identity(self, other: Principal) -> bool:
        """Whether ``other`` is the same caller (tenant, user, role and, for customers, workitem)."""
        return (self.tenant_id, self.user_id, self.role, self.workitem_id) == (
            other.tenant_id,
            other.user_id,
            other.role,
            other.workitem_id,
        )

    def revoked_by(self, revoked_at: int | None) -> bool:
        """A revocation at ``revoked_at`` (whole seconds) refuses tokens issued up to that second,
        and tokens that do not say when they were issued."""
        return revoked_at is not None and (self.issued_at is None or self.issued_at <= revoked_at)

    @property
    def is_customer(self) -> bool:
        return self.role is Role.CUSTOMER

    @property
    def recipient_key(self) -> str:
        """Key of the record that holds this caller's live connections."""
        return customer_key(self.workitem_id or "") if self.is_customer else user_key(self.user_id)


# How many of the tenant's directory admins (in id order) the last-admin rule needs to see.
ADMINS_TO_SEE = 2


def other_admin_to_keep(target: str, first_admins: list[str]) -> str | None:
    """Before ``target`` stops being a directory admin (docs/product.md W3.8): the other directory admin
    whose existence the change must be conditional on, given the tenant's first admins in id order (at
    most :data:`ADMINS_TO_SEE`). None when ``target`` is not among them (it is no admin, or at least
    two others are); :class:`Conflict` when ``target`` is the last one. Two admins demoting each other
    at once each depend on the other, so one of them is refused."""
    if target not in first_admins:
        return None
    others = [admin for admin in first_admins if admin != target]
    if not others:
        raise Conflict(
            f"{target} is the tenant's last admin in the directory: make another user an admin first "
            "(PUT /admin/users/{userId} with role admin)"
        )
    return others[0]


def user_key(user_id: str) -> str:
    return f"U#{user_id}"


def customer_key(workitem_id: str) -> str:
    return f"C#{workitem_id}"


def epoch_seconds(value: object) -> int | None:
    """An epoch-seconds claim: a number, or the string API Gateway makes of it in an authorizer
    context; None when absent or not a number."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        return int(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
