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
from chalicelib.domain.aws_events import BusEvent
from chalicelib.domain.coaching import EndedBy
from chalicelib.domain.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.inbound_sms import InboundText
from chalicelib.services.clock import iso, new_id
from chalicelib.services.commits import Workitems
from chalicelib.services.integrations import Integrations, event_id
from chalicelib.services.ports import (
    ChannelFailed,
    ClaimedElsewhere,
    ConnectApi,
    DeliveryQueue,
    DuplicateEvent,
    Idempotency,
    Outgoing,
    SubscriptionStore,
    TenantConfig,
)
from chalicelib.services.results import ConnectSettings, SmsReceived
from chalicelib.services.webhooks import Assigned, Ended, InboundEvent, Transferred, WebhookService

log = logging.getLogger(__name__)

SMS_RECEIVED = "sms.received"
# The connector queue's reconcile check of an open Amazon Connect workitem (its end check is "connect-end").
CHECK = "connect-check"


class ConnectorSettings(Protocol):
    """What the connectors read of the stack's settings."""

    @property
    def region(self) -> str: ...

    @property
    def account_id(self) -> str: ...

    @property
    def connect_instance_arns(self) -> tuple[str, ...]: ...

    @property
    def connect_chat_topic_arn(self) -> str: ...


def _count(source: str, outcome: str) -> None:
    metrics.CONNECTOR_EVENTS.add(Source=source, Outcome=outcome)


class InboundSms:
    def __init__(self, workitems: Workitems, claims: SubscriptionStore, integrations: Integrations) -> None:
        self.workitems = workitems
        self.claims = claims
        self.integrations = integrations

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
            SmsReceived(text.origination, text.destination, text.body, text.inbound_message_id),
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
        workitems: Workitems,
        config: TenantConfig,
        queue: DeliveryQueue | None,
        api: ConnectApi | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.webhooks = webhooks
        self.workitems = workitems
        self.config = config
        self.queue = queue
        self.api = api

    # --- admin ---------------------------------------------------------------------------------

    def put_settings(self, caller: Principal, instance_arn: str, agents: dict[str, str]) -> ConnectSettings:
        """Claim the instance for the caller's tenant with its agent map (1 GetItem + 1 TransactWriteItems)."""
        if caller.role is not Role.ADMIN:
            raise Forbidden("only admins may connect Amazon Connect")
        self._check_instance(instance_arn)
        previous = self.store.connect_instance(caller.tenant_id)
        try:
            self.store.set_connect(caller.tenant_id, instance_arn, agents, previous, self.workitems.now())
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

    def on_event(self, event: BusEvent, contact: connect.Contact | None) -> str:
        """One EventBridge event and the contact event it holds (None: a type the connector does not
        follow): the outcome (``applied``, ``scheduled``, ``duplicate``, ``ignored``)."""
        if event.region != self.settings.region or (self.settings.account_id and event.account != self.settings.account_id):
            raise Invalid("the event is not from this stack's account and Region")
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
        """A delayed message of the connector queue: the end check of a DISCONNECTED (ends the workitem
        unless a newer contact connected), or the reconcile check of an open workitem."""
        try:
            check = json.loads(body)
            reconcile = check.get("k") == CHECK
            tenant_id, initial = str(check["tid"]), str(check["initial"])
            instance_arn = str(check["arn"]) if reconcile else ""
            contact_id, by = ("", EndedBy.SYSTEM) if reconcile else (check["contact"], EndedBy(check["by"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            log.error("dropping an unreadable Amazon Connect end check")
            return "invalid"
        if reconcile:
            return self._reconcile(tenant_id, instance_arn, initial)
        current = self.store.contact(initial)
        if current is not None and current[1] != contact_id:
            return "duplicate"  # transferred: the newer contact goes on
        return self._end(tenant_id, connect.WORKITEM_PREFIX + initial, by, f"connect-end:{initial}:{contact_id}")

    def _connected(self, tenant_id: str, contact: connect.Contact, user_id: str, event_id: str) -> str:
        policy = self.config.policy(tenant_id)
        existing = self.workitems.store.get(tenant_id, contact.workitem_id)
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
        if result["status"] == "duplicate":
            return "duplicate"
        if contact.channel is rules.Channel.CHAT:
            self._stream(contact)
        if kind == "workitem.assigned":  # one chain of checks per workitem: it follows transfers itself
            self._schedule_check(tenant_id, contact.instance_arn, contact.initial_contact_id)
        return "applied"

    def _stream(self, contact: connect.Contact) -> None:
        """Ask Connect to stream the chat's items to the stack's topic (1 StartContactStreaming, idempotent
        per chat: a transfer or a redelivered event asks again and gets the same stream). A refusal
        leaves the workitem without the chat's messages: logged and counted, the assignment stands."""
        topic = self.settings.connect_chat_topic_arn
        if self.api is None or not topic:
            return
        try:
            self.api.start_streaming(contact.instance_arn, contact.initial_contact_id, topic)
        except ChannelFailed as exc:
            log.warning(
                "Amazon Connect refused to stream chat %s: %s",
                contact.initial_contact_id,
                exc.reason,
                extra={"event": "connector_event", "source": "connect", "outcome": "stream_refused"},
            )
            _count("connect", "stream_refused")

    def on_chat_item(self, item: connect.ChatItem, instance: str | None) -> str:
        """One streamed chat item (``instance``: the notification's InstanceId, when it has one): a
        customer or agent message on the chat's workitem, once by the item's id. The tenant is the one
        whose contact it is (the contact events recorded it), never the item's word. Returns the
        outcome (``applied``, ``duplicate``, ``skipped``, ``ignored``, ``invalid``).

        Requests: 1 GetItem (the contact); for a message, 1 GetItem + 1 TransactWriteItems."""
        listed = {connect.instance_id(arn) for arn in self.settings.connect_instance_arns}
        if instance is not None and instance not in listed:
            raise Invalid("the chat item's instance is not one of this stack's ConnectInstanceArns")
        followed = self.store.contact(item.initial_contact_id)
        if followed is None:
            return "ignored"  # a chat no tenant follows (an unmapped agent, or not connected yet)
        line = connect.chat_line(item)
        if line is None:
            return "skipped"  # an event, a bot's or the system's line (docs/connectors.md)
        tenant_id = followed[0]
        idem = Idempotency(tenant_id, f"connect-chat:{item.item_id}", "connect.chat")
        message_id = new_id("msg")
        try:
            self.workitems.mutate(
                tenant_id,
                item.workitem_id,
                lambda w: rules.integration_message(w, line.sender, line.text, message_id, iso(item.at)),
                idempotency=idem,
                push=True,
                missing=Conflict,
            )
        except DuplicateEvent:
            return "duplicate"
        except Invalid as exc:
            log.warning("Amazon Connect chat item %s refused: %s", item.item_id, exc)
            return "invalid"
        except Conflict:
            return "ignored"  # the workitem ended (or was never assigned)
        return "applied"

    def _end(self, tenant_id: str, workitem_id: str, by: EndedBy, event_id: str) -> str:
        try:
            result = self.webhooks.apply(
                InboundEvent(event_id, tenant_id, "workitem.ended", Ended(workitem_id, by.value)),
                self.config.policy(tenant_id),
            )
        except NotFound:
            return "ignored"  # never assigned (an unmapped agent): nothing to end
        return "duplicate" if result["status"] == "duplicate" else "applied"

    def _schedule_check(self, tenant_id: str, instance_arn: str, initial_contact_id: str) -> None:
        """Ask again in 15 minutes whether the contact goes on (1 SQS SendMessage): a workitem whose
        DISCONNECTED and COMPLETED were both lost still ends. Without a queue or Connect's API, nothing."""
        if self.queue is None or self.api is None:
            return
        body = json.dumps(
            {"k": CHECK, "tid": tenant_id, "arn": instance_arn, "initial": initial_contact_id}, separators=(",", ":")
        )
        if self.queue.send([Outgoing(body, tenant_id, "connect", connect.RECONCILE_SECONDS)]):
            log.warning("the connector queue refused the reconcile check of contact %s", initial_contact_id)

    def _reconcile(self, tenant_id: str, instance_arn: str, initial_contact_id: str) -> str:
        """The reconcile check: 1 GetItem (the workitem); while it is open, 1 GetItem (the newest
        contact) and 1 DescribeContact, then the end (as ``workitem.ended``) or the next check."""
        workitem_id = connect.WORKITEM_PREFIX + initial_contact_id
        w = self.workitems.store.get(tenant_id, workitem_id)
        if w is None or w.status is not rules.Status.ACTIVE or self.api is None:
            return "ignored"  # ended as it should have been: nothing left to check
        current = self.store.contact(initial_contact_id)
        contact_id = current[1] if current is not None else initial_contact_id
        try:
            reason = self.api.disconnect_reason(instance_arn, contact_id)
        except ChannelFailed as exc:
            log.warning("could not describe Amazon Connect contact %s: %s", contact_id, exc.reason)
            reason = None  # asked again at the next check
        if reason is None:
            self._schedule_check(tenant_id, instance_arn, initial_contact_id)
            return "scheduled"
        log.warning(
            "Amazon Connect contact %s ended without its events reaching the stack: workitem %s ended",
            contact_id,
            workitem_id,
            extra={"event": "connector_event", "source": "connect", "outcome": "reconciled"},
        )
        return self._end(tenant_id, workitem_id, connect.ended_by(reason), f"connect-reconcile:{initial_contact_id}:{contact_id}")

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
