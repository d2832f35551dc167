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
    TRANSCRIPT = "transcript"  # a final segment of a voice call's live transcript (staff only)


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


@dataclass(frozen=True)
class CustomerEntry:
    """What a customer sees of an entry: its own numbering (``customer_seq``) and nothing that would
    reveal coaching (no extras, no forwarding, no reactions)."""

    entry: TimelineEntry

    def __post_init__(self) -> None:
        if not self.entry.customer_visible or self.entry.customer_seq is None:
            raise ValueError("entry is not visible to customers")


def view(entry: TimelineEntry, role: Role) -> TimelineEntry | CustomerEntry | None:
    """The entry as ``role`` may see it (staff: all of it), or None when that role must not see it at all."""
    if role is Role.CUSTOMER:
        return CustomerEntry(entry) if entry.customer_visible else None
    return entry
