"""Connectors in: conversations that arrive by themselves (docs/product.md W14, docs/connectors.md).

Two-way SMS: AWS End User Messaging SMS publishes each text a customer sends to a tenant's number
to the stack's SNS topic, and the ``sms_inbound`` function hands it here. The tenant is the one that
claimed the number texted (``PUT /admin/sms-settings``), never anything the payload says of itself.
The text joins the tenant's most recently active ``sms`` workitem of that customer as a
``customer_message``; with none, an outbound webhook ``sms.received`` tells the routing engine, which
may assign one. Each ``inboundMessageId`` is applied once: its idempotency key is written in the same
transaction as the message (or, for the webhook, before the event is queued).

Requests per inbound text: 1 GetItem (the number's claim), 1 Query (the customer's active SMS
workitem), then 1 GetItem + 1 TransactWriteItems (the message and its key), or 1 PutItem (the key)
and 1 SQS SendMessage (the webhook). What cannot be read is refused with a log line and a metric,
never retried: a malformed text stays malformed.
"""

from __future__ import annotations

import logging

from chalicelib import metrics
from chalicelib.domain import coaching as rules
from chalicelib.domain.aws_events import Notification
from chalicelib.domain.errors import Conflict, Invalid
from chalicelib.domain.inbound_sms import InboundText, inbound_text
from chalicelib.services.clock import iso, new_id
from chalicelib.services.commits import Workitems
from chalicelib.services.integrations import Integrations, event_id
from chalicelib.services.ports import DuplicateEvent, Idempotency, SubscriptionStore

log = logging.getLogger(__name__)

SMS_RECEIVED = "sms.received"


def _count(source: str, outcome: str) -> None:
    metrics.CONNECTOR_EVENTS.add(Source=source, Outcome=outcome)


class InboundSms:
    def __init__(self, workitems: Workitems, claims: SubscriptionStore, integrations: Integrations) -> None:
        self.workitems = workitems
        self.claims = claims
        self.integrations = integrations

    def on_notification(self, notification: Notification) -> str:
        """One SNS notification of the inbound topic: its message read strictly, then applied.
        Returns the outcome (``applied``, ``routed``, ``duplicate``, ``ignored``, ``invalid``)."""
        try:
            text = inbound_text(notification.message, notification.timestamp)
        except Invalid as exc:
            log.warning(
                "inbound SMS notification %s refused: %s",
                notification.message_id,
                exc,
                extra={"event": "connector_event", "source": "sms", "outcome": "invalid"},
            )
            _count("sms", "invalid")
            return "invalid"
        return self.receive(text)

    def receive(self, text: InboundText) -> str:
        tenant_id = self.claims.claimant("sms", text.destination)
        if tenant_id is None:
            log.warning(
                "inbound SMS %s to a number no tenant claimed: ignored",
                text.inbound_message_id,
                extra={"event": "connector_event", "source": "sms", "outcome": "ignored"},
            )
            _count("sms", "ignored")
            return "ignored"
        idem = Idempotency(tenant_id, f"sms:{text.inbound_message_id}", "sms.inbound")
        outcome = self._apply(tenant_id, text, idem)
        log.info(
            "inbound SMS %s for tenant %s: %s",
            text.inbound_message_id,
            tenant_id,
            outcome,
            extra={"event": "connector_event", "source": "sms", "outcome": outcome},
        )
        _count("sms", outcome)
        return outcome

    def _apply(self, tenant_id: str, text: InboundText, idem: Idempotency) -> str:
        at = iso(text.received_at)
        found = self.workitems.store.active_sms(tenant_id, text.origination)
        if found is not None:
            message_id = new_id("msg")
            try:
                self.workitems.mutate(
                    tenant_id,
                    found.workitem_id,
                    lambda w: _customer_text(w, text, message_id, at),
                    idempotency=idem,
                    push=True,
                    missing=Conflict,
                )
                return "applied"
            except DuplicateEvent:
                return "duplicate"
            except Invalid as exc:  # longer than a message may be
                log.warning("inbound SMS %s refused: %s", text.inbound_message_id, exc)
                return "invalid"
            except Conflict:
                pass  # ended since the index was read: the routing engine decides, as with none
        try:
            self.workitems.mark_event(idem)
        except DuplicateEvent:
            return "duplicate"
        self.integrations.emit(
            tenant_id,
            SMS_RECEIVED,
            {"from": text.origination, "to": text.destination, "text": text.body, "inboundMessageId": text.inbound_message_id},
            event_id=event_id(tenant_id, text.inbound_message_id, SMS_RECEIVED),
            timestamp=at,
        )
        return "routed"


def _customer_text(w: rules.Workitem, text: InboundText, message_id: str, at: str) -> rules.Change:
    """The text as the customer's message, if the workitem is still the customer's active SMS one."""
    if w.channel is not rules.Channel.SMS or w.customer_id != text.origination:
        raise Conflict("the workitem is not this customer's SMS conversation")
    return rules.integration_message(w, "customer", text.body, message_id, at)
