"""Amazon Connect contact events, read strictly, and what they mean for a workitem (docs/product.md
W14.7-W14.11, docs/connectors.md).

EventBridge delivers "Amazon Connect Contact Event"s from the instance's account and Region: best
effort and unordered (the old contact's ``DISCONNECTED`` usually comes before the transferred
contact's ``CONNECTED_TO_AGENT``).

Events are read into :class:`Contact` at the edge (``entrypoints/aws_payloads.py``). A contact that was
never transferred has no initial contact id: its own id stands for it. The workitem of a contact is
``connect-<initial contact id>``, the same across transfers.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime

from .coaching import Channel, EndedBy, Workitem
from .errors import Invalid

SOURCE = "aws.connect"
DETAIL_TYPE = "Amazon Connect Contact Event"
WORKITEM_PREFIX = "connect-"
# A DISCONNECTED ends the workitem only if no newer contact of the same initial contact connects
# within this many seconds (a transfer's new contact connects just after the old one disconnects).
END_GRACE_SECONDS = 5
# An open Connect workitem asks Connect whether its contact is still connected this often (SQS's
# longest delay): a lost DISCONNECTED or COMPLETED ends it within this long.
RECONCILE_SECONDS = 900
INSTANCE_ARN_REGEX = r"^arn:aws[a-z-]*:connect:([a-z0-9-]+):([0-9]{12}):instance/([0-9a-fA-F-]{1,64})\Z"
INSTANCE_ARN = re.compile(INSTANCE_ARN_REGEX)


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


def ended_by(reason: object) -> EndedBy:
    """Connect's disconnect reason as who ended the workitem: the customer, the agent, or the system."""
    text = reason.upper() if isinstance(reason, str) else ""
    if text == "CUSTOMER_DISCONNECT":
        return EndedBy.CUSTOMER
    if text == "AGENT_DISCONNECT":
        return EndedBy.AGENT
    return EndedBy.SYSTEM


def is_connect_workitem(workitem: Workitem) -> bool:
    """A workitem the Amazon Connect connector made (its calls are Connect's, not Chime's)."""
    return workitem.workitem_id.startswith(WORKITEM_PREFIX)


# --- chat message streaming ------------------------------------------------------------------------
# Each item of a chat that Amazon Connect streams to the stack's SNS topic (StartContactStreaming) is a
# Connect Participant ``Item``. Messages of the customer and the agent become the workitem's messages;
# what else a chat carries is shown or skipped as :func:`chat_line` says (docs/connectors.md).

# Content types whose text is shown as it is (Connect's chat message types that are text).
TEXT_CONTENT_TYPES = frozenset({"text/plain", "text/markdown"})
# Amazon Connect's limit on a chat message (Participant Service SendMessage: 16,384 bytes).
MAX_CHAT_CONTENT_CHARS = 16384


class ChatRole(str, enum.Enum):
    AGENT = "AGENT"
    CUSTOMER = "CUSTOMER"
    SYSTEM = "SYSTEM"
    CUSTOM_BOT = "CUSTOM_BOT"
    SUPERVISOR = "SUPERVISOR"


@dataclass(frozen=True)
class ChatItem:
    """One streamed chat item, as the connector uses it."""

    item_id: str
    item_type: str  # MESSAGE, ATTACHMENT, EVENT, TYPING, PARTICIPANT_JOINED ...
    role: ChatRole | None  # None: a role Connect added after this was written
    content_type: str
    content: str
    initial_contact_id: str
    at: datetime  # AbsoluteTime: when Connect took the item
    attachment_names: tuple[str, ...] = ()

    @property
    def workitem_id(self) -> str:
        return WORKITEM_PREFIX + self.initial_contact_id


@dataclass(frozen=True)
class ChatLine:
    """What a chat item adds to the workitem: a message of the customer or of the agent."""

    sender: str  # "customer" or "agent"
    text: str


_SENDERS = {ChatRole.CUSTOMER: "customer", ChatRole.AGENT: "agent"}


def chat_line(item: ChatItem) -> ChatLine | None:
    """The message a chat item adds, or None for what is not shown: events (typing, joined, left,
    read receipts, transfers: the contact events say what matters), bots', the system's and Connect
    supervisors' lines (the conversation is the customer's and the agent's), and interactive messages
    (JSON templates, not text). An attachment is a line naming its file (its content stays in Amazon
    Connect: reading it needs a participant's token)."""
    sender = _SENDERS.get(item.role) if item.role is not None else None
    if sender is None:
        return None
    if item.item_type == "MESSAGE" and item.content_type in TEXT_CONTENT_TYPES and item.content.strip():
        return ChatLine(sender, item.content)
    if item.item_type == "ATTACHMENT" and item.attachment_names:
        return ChatLine(sender, "[attachment: " + ", ".join(item.attachment_names) + "]")
    return None


def instance_id(instance_arn: str) -> str:
    """The id at the end of an instance's ARN (what StartContactStreaming takes as InstanceId)."""
    return instance_arn.rsplit("/", 1)[-1]
