"""Amazon Connect contact events, read strictly, and what they mean for a workitem (docs/product.md
W14.7-W14.11, docs/connectors.md).

EventBridge delivers "Amazon Connect Contact Event"s from the instance's account and Region: best
effort and unordered (the old contact's ``DISCONNECTED`` usually comes before the transferred
contact's ``CONNECTED_TO_AGENT``). AWS's own samples spell the same event's keys in camelCase
(``agentInfo.agentArn``, ``eventType``) and PascalCase (``AgentInfo.AgentArn``, ``InstanceARN``) and
its channel ``VOICE`` or ``Voice``: keys are read without regard to case. Fields beyond those read
are ignored.

A contact that was never transferred has no ``initialContactId``: its own ``contactId`` stands for
it. The workitem of a contact is ``connect-<initialContactId>``, the same across transfers.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .aws_events import BusEvent, any_case
from .coaching import Channel, EndedBy, Workitem
from .errors import Invalid

SOURCE = "aws.connect"
DETAIL_TYPE = "Amazon Connect Contact Event"
WORKITEM_PREFIX = "connect-"
# A DISCONNECTED ends the workitem only if no newer contact of the same initial contact connects
# within this many seconds (a transfer's new contact connects just after the old one disconnects).
END_GRACE_SECONDS = 5
INSTANCE_ARN_REGEX = r"^arn:aws[a-z-]*:connect:([a-z0-9-]+):([0-9]{12}):instance/([0-9a-fA-F-]{1,64})\Z"
INSTANCE_ARN = re.compile(INSTANCE_ARN_REGEX)
_CONTACT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,127}\Z")
_AGENT = re.compile(r"/agent/([A-Za-z0-9][A-Za-z0-9-]{0,127})\Z")
# Contacts a Connect supervisor's own monitoring creates, and the flow run after a disconnect: never a
# conversation of their own.
_NOT_CONVERSATIONS = frozenset({"MONITOR", "DISCONNECT"})


class ContactEvent(str, enum.Enum):
    CONNECTED_TO_AGENT = "CONNECTED_TO_AGENT"
    DISCONNECTED = "DISCONNECTED"
    COMPLETED = "COMPLETED"


@dataclass(frozen=True)
class Instance:
    arn: str
    region: str
    account: str


def instance(arn: object) -> Instance:
    """An Amazon Connect instance's ARN: ``arn:aws:connect:<region>:<account>:instance/<id>``."""
    found = INSTANCE_ARN.match(arn) if isinstance(arn, str) else None
    if found is None:
        raise Invalid("instanceArn must be an Amazon Connect instance ARN (arn:aws:connect:<region>:<account>:instance/<id>)")
    return Instance(str(arn), found.group(1), found.group(2))


@dataclass(frozen=True)
class Contact:
    """What one contact event says, as the connector uses it."""

    kind: ContactEvent
    instance_arn: str
    contact_id: str
    initial_contact_id: str  # the contactId itself when the event names none
    channel: Channel | None  # None: a channel the connector does not follow (TASK, EMAIL)
    connect_user_id: str | None  # the agent's Connect user id (CONNECTED_TO_AGENT)
    ended_by: EndedBy  # from disconnectReason (DISCONNECTED); agent for COMPLETED
    conversation: bool  # False for a supervisor's monitoring contact or a disconnect flow

    @property
    def workitem_id(self) -> str:
        return WORKITEM_PREFIX + self.initial_contact_id


def _contact_id(detail: Mapping[str, Any], *names: str, required: bool) -> str | None:
    value = any_case(detail, *names)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not _CONTACT_ID.match(value):
        raise Invalid(f"detail.{names[0]} must be a contact id")
    return value


def ended_by(reason: object) -> EndedBy:
    """``disconnectReason`` as who ended the workitem: the customer, the agent, or the system."""
    text = reason.upper() if isinstance(reason, str) else ""
    if text == "CUSTOMER_DISCONNECT":
        return EndedBy.CUSTOMER
    if text == "AGENT_DISCONNECT":
        return EndedBy.AGENT
    return EndedBy.SYSTEM


def contact_event(event: BusEvent) -> Contact | None:
    """The contact event of an EventBridge event, or None for an event type the connector does not
    act on (INITIATED, QUEUED, CONTACT_DATA_UPDATED ...). :class:`Invalid` when it is not an Amazon
    Connect contact event or a field it needs is malformed."""
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
    channel = {"VOICE": Channel.VOICE, "CHAT": Channel.CHAT}.get(channel_text.upper() if isinstance(channel_text, str) else "")
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
        channel=channel,
        connect_user_id=user,
        ended_by=EndedBy.AGENT if kind is ContactEvent.COMPLETED else ended_by(any_case(detail, "disconnectReason")),
        conversation=not (isinstance(method, str) and method.upper() in _NOT_CONVERSATIONS),
    )


def is_connect_workitem(workitem: Workitem) -> bool:
    """A workitem the Amazon Connect connector made (its calls are Connect's, not Chime's)."""
    return workitem.workitem_id.startswith(WORKITEM_PREFIX)
