"""Key shapes and small helpers shared by the DynamoDB stores (workitems, directory, connections,
webhooks): one place for how a tenant's items are keyed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pynamodb.exceptions import TransactWriteError


def tenant_prefix(tenant_id: str) -> str:
    return f"T#{tenant_id}"


def workitem_pk(tenant_id: str, workitem_id: str) -> str:
    return f"{tenant_prefix(tenant_id)}#W#{workitem_id}"


def sms_customer_pk(tenant_id: str, number: str) -> str:
    """The active-SMS index's key of a customer's number (E.164)."""
    return f"{tenant_prefix(tenant_id)}#SMS#{number}"


def claim_pk(kind: str, key: str) -> str:
    """A claim's key (``ClaimItem``): ``CLAIM#SMS#+14255550100``, ``CLAIM#CONNECT#arn:...``."""
    return f"CLAIM#{kind}#{key}"


def recipient_pk(tenant_id: str, key: str) -> str:
    return f"{tenant_prefix(tenant_id)}#{key}"


def entry_sk(seq: int) -> str:
    return f"E#{seq:010d}"


def customer_sk(seq: int) -> str:
    return f"C#{seq:010d}"


def expiry(iso: str, days: int) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")) + timedelta(days=days)


def cancel_codes(exc: TransactWriteError) -> list[str | None]:
    return [r.code if r else None for r in (exc.cancellation_reasons or [])]
