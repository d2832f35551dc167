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


def is_connect_workitem(workitem: Workitem) -> bool:
    """A workitem the Amazon Connect connector made (its calls are Connect's, not Chime's)."""
    return workitem.workitem_id.startswith(WORKITEM_PREFIX)
