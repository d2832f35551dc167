"""What the use cases answer and push, as records: the entry layer's wire module
(``chalicelib/entrypoints/wire.py``) renders each one, so the names and the casing of the wire live
there. A page's items are already rendered (a page is cut by the size its items take on the wire).
"""

from __future__ import annotations

from typing import Any

import msgspec


class TimelinePage(msgspec.Struct, frozen=True):
    """``timeline.get``: entries in the caller's view, oldest first, and whether more follow."""

    entries: list[Any]
    has_more: bool


class MonitorStarted(msgspec.Struct, frozen=True):
    """``monitor.start``: the workitem and its latest entries (staff view)."""

    workitem: Any
    entries: list[Any]
    has_more: bool


class ConsultStarted(msgspec.Struct, frozen=True):
    consult_id: str


class ConsultRequest(msgspec.Struct, frozen=True):
    """``consult.requested``: who asks whom about which workitem."""

    consult_id: str
    workitem_id: str
    agent_id: str


class WorkitemPage(msgspec.Struct, frozen=True):
    workitems: list[Any]
    next_cursor: str | None


class AgentId(msgspec.Struct, frozen=True):
    """An agent of a page cut by id only (``agents.list``, before names are read)."""

    user_id: str


class AgentRow(msgspec.Struct, frozen=True):
    """One agent on a supervisor's board."""

    user_id: str
    name: str
    presence: str
    workitem_count: int


class AgentPage(msgspec.Struct, frozen=True):
    agents: list[Any]
    next_cursor: str | None


class UserSaved(msgspec.Struct, frozen=True):
    user_id: str
    name: str
    role: str


class PresenceState(msgspec.Struct, frozen=True):
    """A user's presence (``presence.changed``; a ``presence.set`` answer names the state only)."""

    user_id: str | None
    state: str


class NotificationSetting(msgspec.Struct, frozen=True):
    """Whether an agent's messages pop up for the user (``agentMessageNotification``)."""

    agent_messages: bool


class VoiceJoined(msgspec.Struct, frozen=True):
    """``voice.join``: the agent's place in the contact room, and in the coach room while a whisper is on."""

    contact_room: Any
    coach_room: Any | None = None


class Whispering(msgspec.Struct, frozen=True):
    """``voice.whisper``: the supervisor speaks in the coach room and keeps hearing the contact room."""

    coach_room: Any
    contact_room: Any


class InContactRoom(msgspec.Struct, frozen=True):
    """``voice.monitor``, ``voice.listen``, ``voice.barge``: the supervisor's place in the contact room."""

    contact_room: Any


class CoachRoomOpened(msgspec.Struct, frozen=True):
    """``voice.coach_room``: the agent is to join the coach room a supervisor whispers in."""

    workitem_id: str
    room: Any


class CoachRoomClosed(msgspec.Struct, frozen=True):
    """``voice.coach_room_closed``."""

    workitem_id: str


class AssistTemplates(msgspec.Struct, frozen=True):
    """``assist.templates``: the enabled templates, as (template id, text)."""

    templates: list[tuple[str, str]]


class Person(msgspec.Struct, frozen=True):
    user_id: str
    name: str


class RecipientsPage(msgspec.Struct, frozen=True):
    """``assist.recipients``: one page of supervisors and fellow agents (rendered), and the next cursor."""

    supervisors: list[Any]
    agents: list[Any]
    next_cursor: str | None


class AssistSent(msgspec.Struct, frozen=True):
    assist_id: str
    recipients: list[str]


class AssistId(msgspec.Struct, frozen=True):
    assist_id: str


class AssistNote(msgspec.Struct, frozen=True):
    """``assist.requested`` (and ``assist.claimed`` with the claimer, ``assist.escalated`` with the stage)."""

    request: Any  # domain.assistance.AssistanceRequest
    supervisor_id: str | None = None
    stage: str | None = None


class PendingRequest(msgspec.Struct, frozen=True):
    """One unclaimed request of ``assist.pending``: the request and its agent's name."""

    request: Any  # domain.assistance.AssistanceRequest
    agent_name: str


class PendingRequests(msgspec.Struct, frozen=True):
    requests: list[PendingRequest]


class DirectMessage(msgspec.Struct, frozen=True):
    """A directory message (``directory.send``), as stored and pushed (``directory.message``)."""

    message_id: str
    from_user_id: str
    text: str
    at: str
    reply_to: str | None = None
    assist_id: str | None = None


class MessageSent(msgspec.Struct, frozen=True):
    message_id: str


class Count(msgspec.Struct, frozen=True):
    """An unread count (``directory.unread``, ``directory.unread.get``, ``directory.read``)."""

    count: int


class ClaimNote(msgspec.Struct, frozen=True):
    """``assist.claimed`` as pushed: which request, and who claimed it (id and name)."""

    assist_id: str
    supervisor_id: str
    supervisor_name: str | None = None


class EntryNote(msgspec.Struct, frozen=True):
    """An event carrying one timeline entry, in the view of the role it goes to."""

    entry: Any


class SupervisorNote(msgspec.Struct, frozen=True):
    """``coaching.joined`` / ``coaching.left``: which supervisor (id and name), on which workitem, and the entry."""

    workitem_id: str
    supervisor_id: str
    supervisor_name: str
    entry: Any


class VoiceModeNote(msgspec.Struct, frozen=True):
    """``voice.mode``: a supervisor's voice mode changed (listen, whisper, barge)."""

    workitem_id: str
    supervisor_id: str
    supervisor_name: str
    mode: str
    entry: Any


class CoachingEndedNote(msgspec.Struct, frozen=True):
    """``coaching.ended``: on which workitem, why, and the entry."""

    workitem_id: str
    reason: Any
    entry: Any


class SmsSettings(msgspec.Struct, frozen=True):
    """The tenant's SMS origination identity and the number its customers text (None: not configured)."""

    origination_identity: str | None
    phone_number: str | None = None


class ConnectSettings(msgspec.Struct, frozen=True):
    """The tenant's Amazon Connect instance and its agents (Connect user id -> user id)."""

    instance_arn: str
    agents: dict[str, str]


class TransferNote(msgspec.Struct, frozen=True):
    """``workitem.transferred`` (a webhook): the workitem as it is now, and the agent it came from."""

    workitem: Any
    from_agent_id: str


class DeliveryNote(msgspec.Struct, frozen=True):
    """``message.delivery``: what became of an agent message on an SMS or social workitem."""

    workitem_id: str
    message_id: str | None
    seq: int
    delivery: str
    entry: Any
    reason: str = ""


class AlertNote(msgspec.Struct, frozen=True):
    """``attention.raised`` / ``attention.acked`` / ``attention.cleared`` and the ``attention.ack`` reply:
    ``{alert}`` (a ``domain.attention.Alert``)."""

    alert: Any


class RuleNote(msgspec.Struct, frozen=True):
    """``PUT /admin/attention-rules/{ruleId}``: ``{rule}`` (a ``domain.attention.Rule``)."""

    rule: Any


class RuleList(msgspec.Struct, frozen=True):
    """``GET /admin/attention-rules``: ``{rules}``, by rule id."""

    rules: list[Any]


class AttentionPage(msgspec.Struct, frozen=True):
    """``attention.list``: ``{workitem, score, alerts}`` items (rendered), highest score first."""

    items: list[Any]
    next_cursor: str | None


class SentimentNote(msgspec.Struct, frozen=True):
    """``entry.sentiment``: a customer message's sentiment, known after its entry was pushed (staff only)."""

    workitem_id: str
    seq: int
    sentiment: str


class TranscriptPartial(msgspec.Struct, frozen=True):
    """``transcript.partial``: words of an utterance not yet final (no ``seq``: never stored)."""

    workitem_id: str
    utterance_id: str
    speaker: str
    text: str


class TranscriptState(msgspec.Struct, frozen=True):
    """``transcript.paused`` / ``transcript.resumed`` / ``transcript.unavailable`` (``reason`` for the
    last only) and the pause/resume actions' reply."""

    workitem_id: str
    state: str
    reason: str | None = None


class SmsReceived(msgspec.Struct, frozen=True):
    """``sms.received`` (webhook): a customer's text no active workitem took, for the routing engine."""

    origination: str
    destination: str
    text: str
    inbound_message_id: str
