"""The payloads AWS services hand the connector and queue functions, read into the product's records
(docs/connectors.md). Their field names are AWS's (camelCase here, PascalCase in the envelopes that
``domain/aws_events.py`` reads); this module alone knows them, as ``wire.py`` alone knows ours.

* An inbound text (AWS End User Messaging SMS, "Two-way SMS message format", the SNS notification's
  ``Message``): ``{"originationNumber", "destinationNumber", "messageKeyword", "messageBody",
  "inboundMessageId", "previousPublishedMessageId"}`` -> :class:`InboundText`.
* An Amazon Connect contact event's ``detail`` -> :class:`Contact`. AWS's own samples spell the same
  event's keys in camelCase (``agentInfo.agentArn``, ``eventType``) and PascalCase (``AgentInfo.AgentArn``,
  ``InstanceARN``) and its channel ``VOICE`` or ``Voice``: keys are read without regard to case.
* A streamed Amazon Connect chat item (the SNS message of StartContactStreaming's topic: a Connect
  Participant ``Item``, ``{"Id", "Type", "ContentType", "Content", "ParticipantRole", "DisplayName",
  "ContactId", "InitialContactId", "AbsoluteTime", "Attachments"?}``) -> :class:`ChatItem`.
* An SQS record of Lambda's event source -> :class:`QueueMessage`.

Fields beyond those read are ignored (AWS adds fields over time); a refusal is :class:`Invalid` naming
the field, never echoing its value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from chalicelib.domain.aws_events import BusEvent, any_case, aws_time, json_object, text_field, token_field
from chalicelib.domain.coaching import Channel, EndedBy
from chalicelib.domain.connect import (
    DETAIL_TYPE,
    INSTANCE_ARN,
    MAX_CHAT_CONTENT_CHARS,
    SOURCE,
    ChatItem,
    ChatRole,
    Contact,
    ContactEvent,
    ended_by,
    instance,
)
from chalicelib.domain.errors import Invalid
from chalicelib.domain.inbound_sms import MAX_INBOUND_TEXT_CHARS, InboundText, e164, visible
from chalicelib.services.ports import QueueMessage

# --- two-way SMS ---------------------------------------------------------------------------------


def inbound_text(message: str | Mapping[str, Any], received_at: datetime) -> InboundText:
    """The SNS message of an inbound text, strictly; :class:`Invalid` when it is not one.

    ``message`` is the notification's ``Message`` (a JSON string) or, from the local stack, the
    decoded object. A text with nothing visible in it is refused (as the product refuses empty
    messages), as is one longer than MAX_INBOUND_TEXT_CHARS."""
    data = json_object(message, "the message")
    numbers = []
    for key in ("originationNumber", "destinationNumber"):
        raw = text_field(data, key, key, max_chars=64)
        assert raw is not None
        normal = e164(raw)
        if normal is None:
            raise Invalid(f"{key} is not a phone number in E.164 form")
        numbers.append(normal)
    body = text_field(data, "messageBody", "messageBody", max_chars=MAX_INBOUND_TEXT_CHARS)
    assert body is not None
    if not visible(body):
        raise Invalid("messageBody has no visible characters")
    message_id = token_field(data, "inboundMessageId", "inboundMessageId")
    assert message_id is not None
    keyword = text_field(data, "messageKeyword", "messageKeyword", max_chars=256, required=False)
    return InboundText(
        origination=numbers[0],
        destination=numbers[1],
        body=body,
        inbound_message_id=message_id,
        received_at=received_at,
        keyword=keyword,
    )


# --- Amazon Connect ------------------------------------------------------------------------------

_CONTACT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,127}\Z")
_AGENT = re.compile(r"/agent/([A-Za-z0-9][A-Za-z0-9-]{0,127})\Z")
# Contacts a Connect supervisor's own monitoring creates, and the flow run after a disconnect: never a
# conversation of their own.
_NOT_CONVERSATIONS = frozenset({"MONITOR", "DISCONNECT"})
_CHANNELS = {"VOICE": Channel.VOICE, "CHAT": Channel.CHAT}


def _contact_id(detail: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = any_case(detail, name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not _CONTACT_ID.match(value):
        raise Invalid(f"detail.{name} must be a contact id")
    return value


def contact_event(event: BusEvent) -> Contact | None:
    """The contact event of an EventBridge event, or None for an event type the connector does not
    act on (INITIATED, QUEUED, CONTACT_DATA_UPDATED ...). :class:`Invalid` when it is not an Amazon
    Connect contact event or a field it needs is malformed.

    A contact that was never transferred has no ``initialContactId``: its own ``contactId`` stands for it."""
    if event.source != SOURCE or event.detail_type != DETAIL_TYPE:
        raise Invalid(f"only {SOURCE} {DETAIL_TYPE!r} events are accepted")
    detail = event.detail
    kind_text = any_case(detail, "eventType")
    if not isinstance(kind_text, str):
        raise Invalid("detail.eventType is required")
    try:
        kind = ContactEvent(kind_text.upper())
    except ValueError:
        return None
    arn = any_case(detail, "instanceArn")
    if arn is None:
        arn = next((r for r in event.resources if INSTANCE_ARN.match(r)), None)
    found = instance(arn)
    contact_id = _contact_id(detail, "contactId", required=True)
    assert contact_id is not None
    initial = _contact_id(detail, "initialContactId", required=False) or contact_id
    channel_text = any_case(detail, "channel")
    user: str | None = None
    if kind is ContactEvent.CONNECTED_TO_AGENT:
        info = any_case(detail, "agentInfo")
        agent_arn = any_case(info, "agentArn") if isinstance(info, Mapping) else None
        match = _AGENT.search(agent_arn) if isinstance(agent_arn, str) and len(agent_arn) <= 2048 else None
        if match is None:
            raise Invalid("detail.agentInfo.agentArn must be an Amazon Connect agent ARN")
        user = match.group(1)
    method = any_case(detail, "initiationMethod")
    return Contact(
        kind=kind,
        instance_arn=found.arn,
        contact_id=contact_id,
        initial_contact_id=initial,
        channel=_CHANNELS.get(channel_text.upper() if isinstance(channel_text, str) else ""),
        connect_user_id=user,
        ended_by=EndedBy.AGENT if kind is ContactEvent.COMPLETED else ended_by(any_case(detail, "disconnectReason")),
        conversation=not (isinstance(method, str) and method.upper() in _NOT_CONVERSATIONS),
    )


def chat_item(message: str | Mapping[str, Any], attributes: Mapping[str, str] | None = None) -> ChatItem:
    """A streamed chat item (the SNS notification's ``Message``, or the decoded object from the local
    stack), strictly. The initial contact comes from the item, else from the notification's
    ``InitialContactId`` attribute, else the item's own contact (a chat never transferred)."""
    data = json_object(message, "the chat item")
    item_id = token_field(data, "Id", "Id")
    item_type = text_field(data, "Type", "Type", max_chars=64)
    assert item_id is not None and item_type is not None
    content_type = text_field(data, "ContentType", "ContentType", max_chars=255, required=False) or ""
    content = text_field(data, "Content", "Content", max_chars=MAX_CHAT_CONTENT_CHARS, required=False) or ""
    role_text = text_field(data, "ParticipantRole", "ParticipantRole", max_chars=64, required=False)
    try:
        role = ChatRole(role_text) if role_text is not None else None
    except ValueError:
        role = None
    initial = data.get("InitialContactId") or (attributes or {}).get("InitialContactId") or data.get("ContactId")
    if not isinstance(initial, str) or not _CONTACT_ID.match(initial):
        raise Invalid("InitialContactId must be a contact id")
    at = aws_time(data.get("AbsoluteTime"), "AbsoluteTime")
    names: list[str] = []
    attachments = data.get("Attachments")
    if attachments is not None:
        if not isinstance(attachments, list) or len(attachments) > 10:
            raise Invalid("Attachments must be a list of at most 10 attachments")
        for attachment in attachments:
            if not isinstance(attachment, Mapping):
                raise Invalid("each attachment must be an object")
            name = text_field(attachment, "AttachmentName", "Attachments.AttachmentName", max_chars=256)
            assert name is not None
            names.append(name)
    return ChatItem(
        item_id=item_id,
        item_type=item_type,
        role=role,
        content_type=content_type,
        content=content,
        initial_contact_id=initial,
        at=at,
        attachment_names=tuple(names),
    )


# --- SQS -----------------------------------------------------------------------------------------


def queue_messages(records: Iterable[Mapping[str, Any]]) -> list[QueueMessage]:
    """Lambda's SQS records (``messageId``, ``receiptHandle``, ``body``, ``attributes``) as messages."""
    return [
        QueueMessage(
            message_id=str(record.get("messageId", "")),
            body=str(record.get("body") or ""),
            receipt=str(record.get("receiptHandle", "")),
            receives=_receives(record.get("attributes")),
        )
        for record in records
    ]


def _receives(attributes: object) -> int:
    value = attributes.get("ApproximateReceiveCount", "1") if isinstance(attributes, Mapping) else "1"
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return 1


def batch_failures(message_ids: Iterable[str]) -> dict[str, Any]:
    """A partial batch response: the messages that come back (Lambda's ``ReportBatchItemFailures``)."""
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in message_ids]}
