"""Who is calling: the verified claims of a token, independent of how they were verified."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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

    @property
    def is_customer(self) -> bool:
        return self.role is Role.CUSTOMER

    @property
    def endpoint_key(self) -> str:
        """Key of the record that holds this caller's live connections."""
        return customer_endpoint(self.workitem_id or "") if self.is_customer else user_endpoint(self.user_id)


def user_endpoint(user_id: str) -> str:
    return f"U#{user_id}"


def customer_endpoint(workitem_id: str) -> str:
    return f"C#{workitem_id}"
