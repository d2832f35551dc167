"""Timeline entries and the role-filtered views of them (docs/product.md S4, S7, S8, W4.5, W4.6)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from .identity import Role


class EntryKind(str, enum.Enum):
    CUSTOMER_MESSAGE = "customer_message"
    AGENT_MESSAGE = "agent_message"
    COACH_MESSAGE = "coach_message"
    SUPERVISOR_JOINED = "supervisor_joined"
    SUPERVISOR_LEFT = "supervisor_left"
    COACHING_ENDED = "coaching_ended"
    REACTION = "reaction"
    VOICE_MODE = "voice_mode"
    ASSIST_REQUESTED = "assist_requested"
    ASSIST_CLAIMED = "assist_claimed"


# The only kinds a customer ever sees (S8: silent monitoring).
CUSTOMER_VISIBLE = frozenset({EntryKind.CUSTOMER_MESSAGE, EntryKind.AGENT_MESSAGE})
MESSAGE_KINDS = frozenset({EntryKind.CUSTOMER_MESSAGE, EntryKind.AGENT_MESSAGE, EntryKind.COACH_MESSAGE})


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a workitem's timeline.

    ``seq`` numbers every entry of the workitem (1, 2, 3 ... with no gaps). ``customer_seq`` numbers
    only the entries a customer may see, so the customer's view is contiguous too and reveals nothing
    about coaching entries in between.
    """

    workitem_id: str
    seq: int
    kind: EntryKind
    at: str
    author_id: str
    author_role: Role
    customer_seq: int | None = None
    message_id: str | None = None
    text: str | None = None
    forwarded_from: str | None = None
    reaction: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def customer_visible(self) -> bool:
        return self.kind in CUSTOMER_VISIBLE

    def to_wire(self) -> dict[str, Any]:
        """The full (staff) view of the entry."""
        body: dict[str, Any] = {
            "workitemId": self.workitem_id,
            "seq": self.seq,
            "kind": self.kind.value,
            "at": self.at,
            "authorId": self.author_id,
            "authorRole": self.author_role.value,
        }
        if self.message_id is not None:
            body["messageId"] = self.message_id
        if self.text is not None:
            body["text"] = self.text
        if self.forwarded_from is not None:
            body["forwardedFrom"] = self.forwarded_from
        if self.kind is EntryKind.REACTION:
            body["reaction"] = self.reaction
        body.update(self.extra)
        return body

    def to_customer_wire(self) -> dict[str, Any]:
        """The customer's view: own numbering, and nothing that would reveal coaching."""
        if not self.customer_visible or self.customer_seq is None:
            raise ValueError("entry is not visible to customers")
        return {
            "workitemId": self.workitem_id,
            "seq": self.customer_seq,
            "kind": self.kind.value,
            "at": self.at,
            "authorId": self.author_id,
            "authorRole": self.author_role.value,
            "messageId": self.message_id,
            "text": self.text,
        }


def view(entry: TimelineEntry, role: Role) -> dict[str, Any] | None:
    """The entry as ``role`` may see it, or None when that role must not see it at all."""
    if role is Role.CUSTOMER:
        return entry.to_customer_wire() if entry.customer_visible else None
    return entry.to_wire()
