"""Workitems and the coaching state machine (docs/product.md S1-S14, B3).

Every rule that decides whether an action is allowed, and what it changes, lives here as a pure
function over a :class:`Workitem`. A rule returns a :class:`Change` (the workitem after the action
and the timeline entries it appends); the service layer commits it with a conditional write on the
workitem's ``version``, so a racing action re-reads and re-runs the rule on fresh state. That is what
makes "a coach message racing a transfer is either before ``coaching_ended`` or refused" hold.
"""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field
from typing import Any

from .errors import Conflict, Forbidden, Invalid
from .identity import Principal, Role
from .timeline import EntryKind, TimelineEntry


class Channel(str, enum.Enum):
    CHAT = "chat"
    SMS = "sms"
    SOCIAL = "social"
    VOICE = "voice"
    EMAIL = "email"


# S3: text coaching on digital messaging only; voice and email are visible but not coachable.
TEXT_COACHING_CHANNELS = frozenset({Channel.CHAT, Channel.SMS, Channel.SOCIAL})
# Channels whose customer talks to us over the customer WebSocket; the others go through an outbound adapter.
WEB_CHANNELS = frozenset({Channel.CHAT})


# How much of the latest message a workitem carries for list views (W18.1).
LAST_MESSAGE_CHARS = 160


class Status(str, enum.Enum):
    ACTIVE = "active"
    ENDED = "ended"


class EndReason(str, enum.Enum):
    AGENT = "agent"
    TRANSFERRED = "transferred"
    ENDED = "ended"
    CUSTOMER_HANGUP = "customer_hangup"
    PERMISSIONS = "permissions"  # the supervisor no longer supervises the agent (team or role change)


class EndedBy(str, enum.Enum):
    CUSTOMER = "customer"
    AGENT = "agent"
    SYSTEM = "system"


class Reaction(str, enum.Enum):
    THUMBS_UP = "thumbs_up"
    THUMBS_DOWN = "thumbs_down"


@dataclass
class Workitem:
    """A customer interaction handled by one agent, and who is coaching on it."""

    tenant_id: str
    workitem_id: str
    channel: Channel
    agent_id: str
    customer_id: str
    customer_name: str
    created_at: str
    subject: str = ""
    status: Status = Status.ACTIVE
    # supervisorId -> ISO time they started monitoring. Coaching is active while this is non-empty.
    monitors: dict[str, str] = field(default_factory=dict)
    seq: int = 0
    customer_seq: int = 0
    version: int = 0
    ended_at: str | None = None
    ended_by: EndedBy | None = None
    # Voice rooms and per-supervisor modes; opaque to the digital rules (see domain.voice).
    voice: dict[str, Any] = field(default_factory=dict)
    # Tenant policy captured when the workitem was assigned, so no request re-reads it.
    retention_days: int = 90
    record_coaching: bool = False
    # When its timeline last grew ("" until then): which of a customer's SMS workitems is the most
    # recently active, the one an inbound text joins (W14.2).
    active_at: str = ""
    # W18.1: since when the customer has waited for an answer (the first customer message after the
    # agent's last message; None while nobody waits), and the conversation's latest message, cut to
    # LAST_MESSAGE_CHARS, with who wrote it ("customer" or "agent"): what a floor view shows per row.
    waiting_since: str | None = None
    last_text: str = ""
    last_author: str = ""
    # supervisorId -> their directory name when they started monitoring (monitoredBy, supervisorName).
    monitor_names: dict[str, str] = field(default_factory=dict)

    @property
    def last_activity_at(self) -> str:
        """When the timeline last grew, or when the workitem was created."""
        return self.active_at or self.created_at

    @property
    def coaching_active(self) -> bool:
        return bool(self.monitors)

    @property
    def is_open(self) -> bool:
        """Listed for its agent: active, or ended while coaching goes on (S14)."""
        return self.status is Status.ACTIVE or self.coaching_active


@dataclass
class Change:
    """The outcome of one rule: the workitem after it, and what it appends to the timeline."""

    before: Workitem
    after: Workitem
    entries: list[TimelineEntry] = field(default_factory=list)
    # Supervisors whose coaching ended other than by their own monitor.stop, and why.
    ended_for: list[str] = field(default_factory=list)
    end_reason: EndReason | None = None

    @property
    def changed(self) -> bool:
        return self.after is not self.before

    @property
    def entry(self) -> TimelineEntry:
        return self.entries[-1]


class _Recorder:
    """Builds the next state of a workitem and numbers the entries appended to it."""

    def __init__(self, workitem: Workitem, now: str) -> None:
        self.before = workitem
        self.after = copy.deepcopy(workitem)
        self.after.version += 1
        self.now = now
        self.entries: list[TimelineEntry] = []

    def append(self, kind: EntryKind, author_id: str, author_role: Role, **fields: Any) -> TimelineEntry:
        self.after.seq += 1
        customer_seq = None
        if kind in (EntryKind.CUSTOMER_MESSAGE, EntryKind.AGENT_MESSAGE):
            self.after.customer_seq += 1
            customer_seq = self.after.customer_seq
        entry = TimelineEntry(
            workitem_id=self.after.workitem_id,
            seq=self.after.seq,
            kind=kind,
            at=self.now,
            author_id=author_id,
            author_role=author_role,
            customer_seq=customer_seq,
            **fields,
        )
        self.entries.append(entry)
        self.after.active_at = self.now
        if kind in (EntryKind.CUSTOMER_MESSAGE, EntryKind.AGENT_MESSAGE):
            self._conversation(kind, fields.get("text") or "")
        return entry

    def _conversation(self, kind: EntryKind, text: str) -> None:
        """W18.1: a customer message starts the wait unless one is running; an agent message answers it."""
        w = self.after
        if kind is EntryKind.CUSTOMER_MESSAGE:
            w.waiting_since = w.waiting_since or self.now
            w.last_author = "customer"
        else:
            w.waiting_since = None
            w.last_author = "agent"
        w.last_text = text[:LAST_MESSAGE_CHARS]

    def end_coaching(self, reason: EndReason, author_id: str, author_role: Role) -> list[str]:
        supervisors = sorted(self.after.monitors)
        if not supervisors:
            return []
        self.after.monitors = {}
        self.after.monitor_names = {}
        self.append(
            EntryKind.COACHING_ENDED,
            author_id,
            author_role,
            extra={"reason": reason.value, "supervisors": supervisors},
        )
        return supervisors

    def change(self, ended_for: list[str] | None = None, reason: EndReason | None = None) -> Change:
        return Change(self.before, self.after, self.entries, ended_for or [], reason if ended_for else None)


# --- permissions -------------------------------------------------------------------------------


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        allowed = " or ".join(r.value for r in roles)
        raise Forbidden(f"only a{'n' if allowed[0] in 'aeiou' else ''} {allowed} may do this")


def require_agent_of(principal: Principal, workitem: Workitem) -> None:
    if principal.role is not Role.AGENT or principal.user_id != workitem.agent_id:
        raise Forbidden("only the workitem's agent may do this")


def require_customer_of(principal: Principal, workitem: Workitem) -> None:
    if principal.role is not Role.CUSTOMER or principal.workitem_id != workitem.workitem_id:
        raise Forbidden("customers may only act on their own workitem")


def can_view(principal: Principal, workitem: Workitem, supervises_agent: bool) -> bool:
    """S1/S2/S4: the agent, supervisors of the agent's teams, admins, and the workitem's customer."""
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.CUSTOMER:
        return principal.workitem_id == workitem.workitem_id
    if principal.role is Role.AGENT:
        return principal.user_id == workitem.agent_id
    # A monitor's standing is kept in step with the directory: an admin's team or role change that
    # takes the agent away ends the monitoring before the admin's request returns.
    return supervises_agent or principal.user_id in workitem.monitors


def require_view(principal: Principal, workitem: Workitem, supervises_agent: bool) -> None:
    if not can_view(principal, workitem, supervises_agent):
        raise Forbidden("you may not see this workitem")


def require_text_coaching(workitem: Workitem) -> None:
    if workitem.channel not in TEXT_COACHING_CHANNELS:
        raise Forbidden(f"text coaching is not available on {workitem.channel.value} workitems")


def _validate_text(text: str) -> str:
    if not text.strip():
        raise Invalid("text must not be empty")
    return text


# --- monitoring (S5, S6, S12, B3) --------------------------------------------------------------


def start_monitoring(
    principal: Principal, workitem: Workitem, supervises_agent: bool, now: str, name: str | None = None
) -> Change:
    require_role(principal, Role.SUPERVISOR)
    if not supervises_agent:
        raise Forbidden("you do not supervise this workitem's agent")
    if principal.user_id in workitem.monitors:
        return Change(workitem, workitem)  # already monitoring: idempotent, nothing new on the timeline
    if not workitem.is_open:
        raise Conflict("the workitem has ended")
    rec = _Recorder(workitem, now)
    rec.after.monitors[principal.user_id] = now
    rec.after.monitor_names[principal.user_id] = name or principal.name or principal.user_id
    # agentId: whose workitem it was then (analytics count a transferred workitem's coaching for it)
    joined = {"supervisorId": principal.user_id, "agentId": workitem.agent_id}
    rec.append(EntryKind.SUPERVISOR_JOINED, principal.user_id, Role.SUPERVISOR, extra=joined)
    return rec.change()


def stop_monitoring(principal: Principal, workitem: Workitem, now: str, supervises_agent: bool = False) -> Change:
    require_role(principal, Role.SUPERVISOR)
    if principal.user_id not in workitem.monitors:
        if not supervises_agent:
            raise Forbidden("you do not supervise this workitem's agent")
        raise Conflict("you are not monitoring this workitem")
    rec = _Recorder(workitem, now)
    del rec.after.monitors[principal.user_id]
    rec.after.monitor_names.pop(principal.user_id, None)
    rec.append(EntryKind.SUPERVISOR_LEFT, principal.user_id, Role.SUPERVISOR, extra={"supervisorId": principal.user_id})
    return rec.change()


def revoke_monitoring(workitem: Workitem, supervisor_id: str, now: str) -> Change:
    """The supervisor stopped supervising the workitem's agent (an admin changed a team or their
    role): their monitoring ends with the usual entries, and they are told why."""
    if supervisor_id not in workitem.monitors:
        return Change(workitem, workitem)
    rec = _Recorder(workitem, now)
    del rec.after.monitors[supervisor_id]
    rec.after.monitor_names.pop(supervisor_id, None)
    reason = EndReason.PERMISSIONS.value
    rec.append(EntryKind.SUPERVISOR_LEFT, supervisor_id, Role.SUPERVISOR, extra={"supervisorId": supervisor_id, "reason": reason})
    rec.append(EntryKind.COACHING_ENDED, supervisor_id, Role.SUPERVISOR, extra={"reason": reason, "supervisors": [supervisor_id]})
    return rec.change([supervisor_id], EndReason.PERMISSIONS)


def end_coaching(principal: Principal, workitem: Workitem, now: str) -> Change:
    """The agent ends the coaching session for every monitoring supervisor (S12, S14)."""
    require_agent_of(principal, workitem)
    if not workitem.coaching_active:
        raise Conflict("no coaching session is active on this workitem")
    rec = _Recorder(workitem, now)
    ended = rec.end_coaching(EndReason.AGENT, principal.user_id, Role.AGENT)
    return rec.change(ended, EndReason.AGENT)


# --- messages (S7, S9, S10) --------------------------------------------------------------------


def send_coach_message(
    principal: Principal, workitem: Workitem, text: str, message_id: str, now: str, supervises_agent: bool = False
) -> Change:
    """S5, S7: the agent or a monitoring supervisor. Permission first (a supervisor of another team is
    forbidden whatever the state), then the channel (S3), then the state (somebody must monitor)."""
    is_agent = principal.role is Role.AGENT and principal.user_id == workitem.agent_id
    is_monitor = principal.role is Role.SUPERVISOR and principal.user_id in workitem.monitors
    if not is_agent and not is_monitor and not (principal.role is Role.SUPERVISOR and supervises_agent):
        raise Forbidden("only the workitem's agent or a monitoring supervisor may coach")
    require_text_coaching(workitem)
    if not workitem.coaching_active:
        raise Conflict("nobody is monitoring this workitem")
    if not is_agent and not is_monitor:
        raise Conflict("start monitoring the workitem before coaching on it")
    rec = _Recorder(workitem, now)
    extra = {} if is_agent else {"agentId": workitem.agent_id}  # whose workitem a supervisor coached on (analytics)
    rec.append(
        EntryKind.COACH_MESSAGE, principal.user_id, principal.role, message_id=message_id, text=_validate_text(text), extra=extra
    )
    return rec.change()


def react(principal: Principal, workitem: Workitem, message: TimelineEntry, reaction: Reaction | None, now: str) -> Change:
    require_agent_of(principal, workitem)
    if message.kind is not EntryKind.COACH_MESSAGE or message.author_role is not Role.SUPERVISOR:
        raise Invalid("only a supervisor's coach message can be reacted to")
    rec = _Recorder(workitem, now)
    rec.append(
        EntryKind.REACTION,
        principal.user_id,
        Role.AGENT,
        message_id=message.message_id,
        reaction=reaction.value if reaction else None,
        extra={"supervisorId": message.author_id},  # whose coaching the reaction judges (analytics)
    )
    return rec.change()


def forward(
    principal: Principal, workitem: Workitem, message: TimelineEntry, new_message_id: str, now: str, forwarded: bool = False
) -> Change:
    """S10: the supervisor's text goes to the customer at once, verbatim, linked to its source; once
    (W18.5: ``forwarded`` says it went already)."""
    require_agent_of(principal, workitem)
    if message.kind is not EntryKind.COACH_MESSAGE or message.author_role is not Role.SUPERVISOR:
        raise Invalid("only a supervisor's coach message can be forwarded")
    if forwarded:
        raise Conflict("this coach message has already been forwarded to the customer")
    if workitem.status is not Status.ACTIVE:
        raise Conflict("the customer has left this workitem")
    rec = _Recorder(workitem, now)
    rec.append(
        EntryKind.AGENT_MESSAGE,
        principal.user_id,
        Role.AGENT,
        message_id=new_message_id,
        text=message.text,
        forwarded_from=message.message_id,
        extra={"supervisorId": message.author_id},  # whose coaching went to the customer (analytics)
    )
    return rec.change()


def send_message(principal: Principal, workitem: Workitem, text: str, message_id: str, now: str) -> Change:
    """A message of the normal conversation, from the agent or the workitem's customer."""
    if principal.role is Role.CUSTOMER:
        require_customer_of(principal, workitem)
        kind = EntryKind.CUSTOMER_MESSAGE
        author_id = workitem.customer_id
    else:
        require_agent_of(principal, workitem)
        kind = EntryKind.AGENT_MESSAGE
        author_id = principal.user_id
    if workitem.status is not Status.ACTIVE:
        raise Conflict("the workitem has ended")
    rec = _Recorder(workitem, now)
    rec.append(kind, author_id, principal.role, message_id=message_id, text=_validate_text(text))
    return rec.change()


def integration_message(workitem: Workitem, sender: str, text: str, message_id: str, now: str) -> Change:
    """A message reported by a channel provider (webhook ``workitem.message``)."""
    if workitem.status is not Status.ACTIVE:
        raise Conflict("the workitem has ended")
    if sender == "customer":
        kind, author_id, role = EntryKind.CUSTOMER_MESSAGE, workitem.customer_id, Role.CUSTOMER
    else:
        kind, author_id, role = EntryKind.AGENT_MESSAGE, workitem.agent_id, Role.AGENT
    rec = _Recorder(workitem, now)
    rec.append(kind, author_id, role, message_id=message_id, text=_validate_text(text))
    return rec.change()


# --- transfer, end, consult (S11, S13, S14) -----------------------------------------------------


def transfer(workitem: Workitem, to_agent_id: str, actor_id: str, actor_role: Role, now: str) -> Change:
    if workitem.status is not Status.ACTIVE:
        raise Conflict("an ended workitem cannot be transferred")
    if to_agent_id == workitem.agent_id:
        raise Invalid("the workitem is already assigned to that agent")
    rec = _Recorder(workitem, now)
    ended = rec.end_coaching(EndReason.TRANSFERRED, actor_id, actor_role)
    rec.after.agent_id = to_agent_id
    return rec.change(ended, EndReason.TRANSFERRED)


def end_workitem(workitem: Workitem, ended_by: EndedBy, actor_id: str, actor_role: Role, now: str) -> Change:
    """The interaction ends. Agent and system ends stop coaching; a customer ending a digital
    interaction leaves coaching running until agent or supervisor ends it, but a customer hanging
    up a voice call ends it too (S13, S14)."""
    if workitem.status is Status.ENDED:
        raise Conflict("the workitem has already ended")
    rec = _Recorder(workitem, now)
    rec.after.status = Status.ENDED
    rec.after.waiting_since = None  # nobody waits on an ended conversation
    rec.after.ended_at = now
    rec.after.ended_by = ended_by
    ended: list[str] = []
    reason: EndReason | None = None
    if ended_by is not EndedBy.CUSTOMER:
        reason = EndReason.ENDED
    elif workitem.channel is Channel.VOICE:
        reason = EndReason.CUSTOMER_HANGUP
    if reason is not None:
        ended = rec.end_coaching(reason, actor_id, actor_role)
    return rec.change(ended, reason)


def check_consult(principal: Principal, workitem: Workitem, target_user_id: str) -> None:
    require_agent_of(principal, workitem)
    if target_user_id == principal.user_id:
        raise Invalid("an agent cannot consult themselves")
    if workitem.coaching_active:
        raise Conflict("consulting is not possible while a coaching session is active on this workitem")
    if workitem.status is not Status.ACTIVE:
        raise Conflict("the workitem has ended")


# --- entries recorded on behalf of other features (voice, assistance) ------------------------------


def record(workitem: Workitem, kind: EntryKind, author_id: str, author_role: Role, now: str, **extra: Any) -> Change:
    rec = _Recorder(workitem, now)
    rec.append(kind, author_id, author_role, extra=extra)
    return rec.change()


def record_text(
    workitem: Workitem, kind: EntryKind, author_id: str, author_role: Role, text: str, now: str, extra: dict[str, Any]
) -> Change:
    """Append an entry with a text of another feature's (a voice call's transcript line)."""
    rec = _Recorder(workitem, now)
    rec.append(kind, author_id, author_role, text=text, extra=extra)
    return rec.change()
