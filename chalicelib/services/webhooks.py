"""Inbound webhooks from routing engines and channel providers (docs/product.md W5).

The signature is checked before anything is written. Each event id is stored in the same
transaction as the event's effect, so a redelivered event is answered 200 and changes nothing,
and a 2xx answer always means the event has been applied.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Any

import msgspec

from chalicelib.domain import coaching as rules
from chalicelib.domain.coaching import Change, Channel, EndedBy, Workitem
from chalicelib.domain.errors import Conflict, Invalid, Unauthorized
from chalicelib.domain.identity import Role, user_key
from chalicelib.domain.inbound_sms import customer_id
from chalicelib.services import push_events as ev
from chalicelib.services.clock import new_id, now_pair
from chalicelib.services.coaching import end_counters, transfer_counters
from chalicelib.services.commits import Workitems
from chalicelib.services.delivery import Notifier
from chalicelib.services.ports import (
    AlreadyExists,
    Clock,
    CounterDelta,
    DuplicateEvent,
    Idempotency,
    Policy,
    RecipientLookup,
    TenantConfig,
)

log = logging.getLogger(__name__)

SIGNATURE_TOLERANCE_SECONDS = 300


def verify_signature(header: str | None, body: bytes, secrets: list[str], now: int) -> None:
    if not header:
        raise Unauthorized("missing X-Coaching-Signature header")
    parts: dict[str, list[str]] = {}
    for piece in header.split(","):
        key, _, value = piece.strip().partition("=")
        parts.setdefault(key, []).append(value)
    stamp = parts.get("t", [""])[0]
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):  # whole seconds, ASCII digits only
        raise Unauthorized("malformed X-Coaching-Signature header")
    timestamp = int(stamp)
    if abs(now - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        raise Unauthorized("signature timestamp is outside the allowed window")
    signed = f"{timestamp}.".encode() + body
    for secret in secrets:
        if not secret:
            continue
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode()
        # Compared as bytes: a header may carry any text, and compare_digest refuses non-ASCII str.
        if any(hmac.compare_digest(expected, candidate.encode("utf-8", "replace")) for candidate in parts.get("v1", [])):
            return
    raise Unauthorized("signature does not match")


class Assigned(msgspec.Struct, frozen=True):
    """``workitem.assigned``: a new workitem for an agent."""

    workitem_id: str
    channel: str
    agent_id: str
    customer_id: str
    customer_name: str
    subject: str | None = None


class InboundMessage(msgspec.Struct, frozen=True):
    """``workitem.message``: the customer or the agent wrote on a channel the provider carries."""

    workitem_id: str
    sender: str  # "customer" or "agent"
    text: str


class Transferred(msgspec.Struct, frozen=True):
    workitem_id: str
    to_agent_id: str


class Ended(msgspec.Struct, frozen=True):
    workitem_id: str
    ended_by: str  # "customer", "agent" or "system"


class InboundEvent(msgspec.Struct, frozen=True):
    """A validated inbound event (the entry layer reads it off the wire)."""

    event_id: str
    tenant_id: str
    type: str
    data: Assigned | InboundMessage | Transferred | Ended


class WebhookService:
    def __init__(
        self,
        workitems: Workitems,
        config: TenantConfig,
        recipients: RecipientLookup,
        notifier: Notifier,
        clock: Clock,
        default_secret: Callable[[], str],
    ) -> None:
        self.workitems = workitems
        self.config = config
        self.recipients = recipients
        self.notifier = notifier
        self.clock = clock
        self.default_secret = default_secret

    def handle(
        self, body: bytes, signature: str | None, tenant_id: str | None, validate: Callable[[], InboundEvent] | None
    ) -> dict[str, Any]:
        """Verify the signature (with the tenant's secret when it has one), then validate and apply.

        ``tenant_id`` is the tenant read from the body (None when it has none); ``validate`` returns
        the validated event (None when the body is not a JSON object). Nothing is validated or
        written before the signature holds.
        """
        policy = self.config.policy(tenant_id) if tenant_id else None
        secret = policy.webhook_secret if policy and policy.webhook_secret else self.default_secret()
        _, now_ms = now_pair(self.clock)
        verify_signature(signature, body, [secret], now_ms // 1000)
        if policy is None or validate is None:
            raise Invalid("body must be a JSON object with eventId, tenantId, type and data")
        return self.apply(validate(), policy)

    def apply(self, event: InboundEvent, policy: Policy) -> dict[str, Any]:
        tenant_id = event.tenant_id
        data = event.data
        idem = Idempotency(tenant_id, event.event_id, event.type)
        try:
            if isinstance(data, Assigned):
                self._assigned(tenant_id, data, idem, policy)
            elif isinstance(data, InboundMessage):
                self._message(tenant_id, data, idem)
            elif isinstance(data, Transferred):
                self._transferred(tenant_id, data, idem)
            else:
                self._ended(tenant_id, data, idem)
        except DuplicateEvent:
            return {"status": "duplicate"}
        return {"status": "applied"}

    def _assigned(self, tenant_id: str, data: Assigned, idem: Idempotency, policy: Policy) -> None:
        at, _ = now_pair(self.clock)
        workitem = Workitem(
            tenant_id=tenant_id,
            workitem_id=data.workitem_id,
            channel=Channel(data.channel),
            agent_id=data.agent_id,
            customer_id=customer_id(data.channel == Channel.SMS.value, data.customer_id),
            customer_name=data.customer_name,
            created_at=at,
            subject=data.subject or "",
            retention_days=policy.retention_days,
            record_coaching=policy.record_coaching,
        )
        try:
            self.workitems.create(workitem, idempotency=idem, counters=[CounterDelta(tenant_id, workitem.agent_id, 1)])
        except AlreadyExists as exc:
            existing = self.workitems.load(tenant_id, workitem.workitem_id)
            if existing.agent_id == workitem.agent_id and existing.channel is workitem.channel:
                self.workitems.mark_event(idem)
                return
            raise Conflict(f"workitem {workitem.workitem_id} is already assigned") from exc
        agent = self.recipients.recipient(tenant_id, user_key(workitem.agent_id))
        box = self.notifier.outbox(tenant_id)
        box.to_recipient(agent, ev.WORKITEM_ASSIGNED, {"workitem": workitem})
        box.to_watchers(agent, ev.WORKITEM_ASSIGNED, {"workitem": workitem})
        self.notifier.flush(box)

    def _message(self, tenant_id: str, data: InboundMessage, idem: Idempotency) -> None:
        message_id = new_id("msg")
        at = now_pair(self.clock)[0]
        self.workitems.mutate(
            tenant_id,
            data.workitem_id,
            lambda w: rules.integration_message(w, data.sender, data.text, message_id, at),
            idempotency=idem,
            push=True,
            missing=Conflict,  # it arrived before its workitem.assigned
        )

    def _transferred(self, tenant_id: str, data: Transferred, idem: Idempotency) -> None:
        """The target must be an agent of the tenant (1 GetItem), else 409 and nothing applied; a redelivered
        event (already with that agent) changes nothing."""
        at = now_pair(self.clock)[0]
        to_agent = data.to_agent_id
        target = self.recipients.recipient(tenant_id, user_key(to_agent))
        target_is_agent = target is not None and target.in_directory and target.role is Role.AGENT

        def decide(w: Workitem) -> Change:
            if w.agent_id == to_agent:
                return Change(w, w)
            if not target_is_agent:
                raise Conflict(f"{to_agent} is not an agent of this tenant")
            return rules.transfer(w, to_agent, "system", Role.ADMIN, at)

        self.workitems.mutate(
            tenant_id,
            data.workitem_id,
            decide,
            idempotency=idem,
            counters=transfer_counters,
            push=True,
            known={target.key: target} if target is not None else None,
        )

    def _ended(self, tenant_id: str, data: Ended, idem: Idempotency) -> None:
        at = now_pair(self.clock)[0]
        ended_by = EndedBy(data.ended_by)

        def decide(w: Workitem) -> Change:
            if w.status is rules.Status.ENDED:
                return Change(w, w)  # already ended: applying it again changes nothing
            author = w.customer_id if ended_by is EndedBy.CUSTOMER else (w.agent_id if ended_by is EndedBy.AGENT else "system")
            role = {EndedBy.CUSTOMER: Role.CUSTOMER, EndedBy.AGENT: Role.AGENT}.get(ended_by, Role.ADMIN)
            return rules.end_workitem(w, ended_by, author, role, at)

        self.workitems.mutate(tenant_id, data.workitem_id, decide, idempotency=idem, counters=end_counters, push=True)
