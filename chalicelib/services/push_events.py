"""Every event the server pushes to WebSocket clients: the one registry of their names.

The use cases push only these (``delivery.Outbox`` refuses any other name), ``docs/asyncapi.yaml``
documents exactly these (``tests/unit/test_contract_docs.py``) and the web console's client lists
exactly these (``tests/unit/test_console_events.py`` reads ``console/src/protocol.ts``). A new event
is a new line here, in the document and in the console's list; names are never renamed.
"""

from __future__ import annotations

PRESENCE_CHANGED = "presence.changed"
WORKITEM_ASSIGNED = "workitem.assigned"
WORKITEM_UPDATED = "workitem.updated"
WORKITEM_ENDED = "workitem.ended"
COACHING_JOINED = "coaching.joined"
COACHING_LEFT = "coaching.left"
COACHING_ENDED = "coaching.ended"
COACH_MESSAGE = "coach.message"
COACH_REACTION = "coach.reaction"
COACH_FORWARDED = "coach.forwarded"
MESSAGE_RECEIVED = "message.received"
MESSAGE_DELIVERY = "message.delivery"
CONSULT_REQUESTED = "consult.requested"
ASSIST_REQUESTED = "assist.requested"
ASSIST_CLAIMED = "assist.claimed"
ASSIST_ESCALATED = "assist.escalated"
DIRECTORY_MESSAGE = "directory.message"
DIRECTORY_UNREAD = "directory.unread"
VOICE_COACH_ROOM = "voice.coach_room"
VOICE_COACH_ROOM_CLOSED = "voice.coach_room_closed"
ATTENTION_RAISED = "attention.raised"
ATTENTION_ACKED = "attention.acked"
ATTENTION_CLEARED = "attention.cleared"
ENTRY_SENTIMENT = "entry.sentiment"
TRANSCRIPT_SEGMENT = "transcript.segment"
TRANSCRIPT_PARTIAL = "transcript.partial"
TRANSCRIPT_PAUSED = "transcript.paused"
TRANSCRIPT_RESUMED = "transcript.resumed"
TRANSCRIPT_UNAVAILABLE = "transcript.unavailable"
VOICE_MODE = "voice.mode"

EVENTS: frozenset[str] = frozenset(
    {
        PRESENCE_CHANGED,
        WORKITEM_ASSIGNED,
        WORKITEM_UPDATED,
        WORKITEM_ENDED,
        COACHING_JOINED,
        COACHING_LEFT,
        COACHING_ENDED,
        COACH_MESSAGE,
        COACH_REACTION,
        COACH_FORWARDED,
        MESSAGE_RECEIVED,
        MESSAGE_DELIVERY,
        CONSULT_REQUESTED,
        ASSIST_REQUESTED,
        ASSIST_CLAIMED,
        ASSIST_ESCALATED,
        DIRECTORY_MESSAGE,
        DIRECTORY_UNREAD,
        VOICE_COACH_ROOM,
        VOICE_COACH_ROOM_CLOSED,
        ATTENTION_RAISED,
        ATTENTION_ACKED,
        ATTENTION_CLEARED,
        ENTRY_SENTIMENT,
        TRANSCRIPT_SEGMENT,
        TRANSCRIPT_PARTIAL,
        TRANSCRIPT_PAUSED,
        TRANSCRIPT_RESUMED,
        TRANSCRIPT_UNAVAILABLE,
        VOICE_MODE,
    }
)
