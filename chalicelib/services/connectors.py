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

import json
import logging
from typing import Protocol

from chalicelib import metrics
from chalicelib.domain import coaching as rules
from chalicelib.domain import connect
from chalicelib.domain.aws_events import BusEvent, Notification
from chalicelib.domain.coaching import EndedBy
from chalicelib.domain.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.inbound_sms import InboundText, inbound_text
from chalicelib.services.clock import iso, new_id
from chalicelib.services.commits import Workitems
from chalicelib.services.integrations import Integrations, event_id
from chalicelib.services.ports import (
    ClaimedElsewhere,
    DeliveryQueue,
    DuplicateEvent,
    Idempotency,
    Outgoing,
    SubscriptionStore,
)
from chalicelib.services.results import ConnectSettings
from chalicelib.services.webhooks import Assigned, Ended, InboundEvent, Transferred, WebhookService

log = logging.getLogger(__name__)

SMS_RECEIVED = "sms.received"


class ConnectorSettings(Protocol):
    """What the connectors read of the stack's settings."""

    @property
    def region(self) -> str: ...

    @property
    def account_id(self) -> str: ...

    @property
    def connect_instance_arns(self) -> tuple[str, ...]: ...


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


# --- Amazon Connect -----------------------------------------------------------------------------------

CONNECT_CUSTOMER_NAME = "Amazon Connect customer"


class AmazonConnect:
    """Amazon Connect contact events (EventBridge) turned into workitems (docs/product.md W14.7-W14.11).

    The tenant is the one that claimed the event's instance (``PUT /admin/connectors/amazon-connect``),
    and the instance must be one of the stack's ``ConnectInstanceArns`` in its own account and Region.
    Assignments, transfers and ends go through the inbound-webhook use cases (:class:`WebhookService`),
    so they push, count and stay idempotent exactly as a routing engine's events do. A DISCONNECTED
    ends the workitem only if no newer contact of the same initial contact has connected 5 s later:
    the check is a message on the connector queue, delayed 5 s, never a sleep in the function.
    """

    def __init__(
        self,
        settings: ConnectorSettings,
        store: SubscriptionStore,
        webhooks: WebhookService,
        queue: DeliveryQueue | None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.webhooks = webhooks
        self.queue = queue

    # --- admin ---------------------------------------------------------------------------------

    def put_settings(self, caller: Principal, instance_arn: str, agents: dict[str, str]) -> ConnectSettings:
        """Claim the instance for the caller's tenant with its agent map (1 GetItem + 1 TransactWriteItems)."""
        if caller.role is not Role.ADMIN:
            raise Forbidden("only admins may connect Amazon Connect")
        self._check_instance(instance_arn)
        previous = self.store.connect_instance(caller.tenant_id)
        try:
            self.store.set_connect(caller.tenant_id, instance_arn, agents, previous, self.webhooks.workitems.now())
        except ClaimedElsewhere:
            raise Conflict("this Amazon Connect instance belongs to another tenant") from None
        return ConnectSettings(instance_arn, dict(agents))

    def _check_instance(self, instance_arn: str) -> None:
        found = connect.instance(instance_arn)
        # Well formed, but not this deployment's to follow: a conflict with the stack's configuration.
        if found.region != self.settings.region or (self.settings.account_id and found.account != self.settings.account_id):
            raise Conflict("the Amazon Connect instance must be in this stack's account and Region")
        if instance_arn not in self.settings.connect_instance_arns:
            raise Conflict("the Amazon Connect instance is not one of this stack's ConnectInstanceArns (a stack parameter)")

    # --- events --------------------------------------------------------------------------------

    def on_event(self, event: BusEvent) -> str:
        """One EventBridge event: the outcome (``applied``, ``scheduled``, ``duplicate``, ``ignored``)."""
        if event.region != self.settings.region or (self.settings.account_id and event.account != self.settings.account_id):
            raise Invalid("the event is not from this stack's account and Region")
        contact = connect.contact_event(event)
        if contact is None:
            return "ignored"  # an event type the connector does not follow
        if contact.instance_arn not in self.settings.connect_instance_arns:
            raise Invalid("the event's instance is not one of this stack's ConnectInstanceArns")
        claim = self.store.connect_claim(contact.instance_arn)
        if claim is None:
            return _ignored("an instance no tenant connected", contact)
        tenant_id, agents = claim
        if not contact.conversation or contact.channel is None:
            return _ignored("not a chat or voice conversation", contact)
        at = iso(event.time)
        if contact.kind is connect.ContactEvent.CONNECTED_TO_AGENT:
            user_id = agents.get(contact.connect_user_id or "")
            if user_id is None:
                return _ignored("an agent the tenant did not map", contact)
            if not self.store.set_contact(contact.initial_contact_id, tenant_id, contact.contact_id, at):
                return "duplicate"  # an older contact's event, after a newer one connected
            return self._connected(tenant_id, contact, user_id, event.event_id)
        current = self.store.contact(contact.initial_contact_id)
        if current is not None and current[1] != contact.contact_id:
            return "duplicate"  # an earlier contact of a transfer: the newer one goes on
        if contact.kind is connect.ContactEvent.COMPLETED:
            return self._end(tenant_id, contact.workitem_id, contact.ended_by, f"connect:{event.event_id}")
        return self._schedule_end(tenant_id, contact)

    def on_end_check(self, body: str) -> str:
        """The delayed end check of a DISCONNECTED: ends the workitem unless a newer contact connected."""
        try:
            check = json.loads(body)
            tenant_id, initial, contact_id, by = check["tid"], check["initial"], check["contact"], EndedBy(check["by"])
        except (ValueError, KeyError, TypeError):
            log.error("dropping an unreadable Amazon Connect end check")
            return "invalid"
        current = self.store.contact(initial)
        if current is not None and current[1] != contact_id:
            return "duplicate"  # transferred: the newer contact goes on
        return self._end(tenant_id, connect.WORKITEM_PREFIX + initial, by, f"connect-end:{initial}:{contact_id}")

    def _connected(self, tenant_id: str, contact: connect.Contact, user_id: str, event_id: str) -> str:
        policy = self.webhooks.config.policy(tenant_id)
        existing = self.webhooks.workitems.store.get(tenant_id, contact.workitem_id)
        assert contact.channel is not None
        if existing is None:
            data: Assigned | Transferred = Assigned(
                contact.workitem_id, contact.channel.value, user_id, contact.workitem_id, CONNECT_CUSTOMER_NAME
            )
            kind = "workitem.assigned"
        elif existing.agent_id == user_id or existing.status is rules.Status.ENDED:
            return "duplicate"
        else:
            data, kind = Transferred(contact.workitem_id, user_id), "workitem.transferred"
        try:
            result = self.webhooks.apply(InboundEvent(f"connect:{event_id}", tenant_id, kind, data), policy)
        except Conflict as exc:  # the mapped user is not an agent of the tenant (any more)
            return _ignored(str(exc), contact)
        return "duplicate" if result["status"] == "duplicate" else "applied"

    def _end(self, tenant_id: str, workitem_id: str, by: EndedBy, event_id: str) -> str:
        try:
            result = self.webhooks.apply(
                InboundEvent(event_id, tenant_id, "workitem.ended", Ended(workitem_id, by.value)),
                self.webhooks.config.policy(tenant_id),
            )
        except NotFound:
            return "ignored"  # never assigned (an unmapped agent): nothing to end
        return "duplicate" if result["status"] == "duplicate" else "applied"

    def _schedule_end(self, tenant_id: str, contact: connect.Contact) -> str:
        if self.queue is None:
            raise Unavailable("no connector queue is configured (CONNECTOR_QUEUE_URL)")
        body = json.dumps(
            {
                "k": "connect-end",
                "tid": tenant_id,
                "initial": contact.initial_contact_id,
                "contact": contact.contact_id,
                "by": contact.ended_by.value,
            },
            separators=(",", ":"),
        )
        refused = self.queue.send([Outgoing(body, tenant_id, "connect", connect.END_GRACE_SECONDS)])
        if refused:
            raise Unavailable("the connector queue refused the end check")
        return "scheduled"


def _ignored(why: str, contact: connect.Contact) -> str:
    log.info(
        "Amazon Connect %s of contact %s ignored: %s",
        contact.kind.value,
        contact.contact_id,
        why,
        extra={"event": "connector_event", "source": "connect", "outcome": "ignored"},
    )
    return "ignored"
