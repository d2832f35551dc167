"""Voice coaching (docs/product.md V1-V8, S15, B5): rooms, modes and the meeting records (the port is in services/ports.py).

Chime SDK meetings mix audio centrally, so a whisper cannot be routed inside one meeting: everyone
who can send is heard by everyone. Whisper therefore uses a second *coach room* per coaching session
(supervisor Send, agent Receive); the customer is never in it. See docs/voice.md.
"""

from __future__ import annotations

import copy
import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any

from .coaching import Change, Channel, Status, Workitem, record
from .connect import is_connect_workitem
from .errors import Conflict, Forbidden, Invalid
from .identity import Principal, Role
from .timeline import EntryKind
from .transcript import CallTranscript


class Audio(str, enum.Enum):
    """Attendee audio capability, spelled as the Chime SDK spells it."""

    SEND_RECEIVE = "SendReceive"
    SEND = "Send"
    RECEIVE = "Receive"
    NONE = "None"


class VoiceMode(str, enum.Enum):
    MONITOR = "monitor"  # listening in the contact room, heard by nobody
    WHISPER = "whisper"  # also speaking to the agent through the coach room
    BARGE = "barge"  # speaking to agent and customer in the contact room
    LISTEN = "listen"  # back to listening only (coach room closed)


@dataclass(frozen=True)
class Meeting:
    meeting_id: str
    media_region: str
    meeting_arn: str = ""
    # Chime's MediaPlacement (AudioHostUrl, SignalingUrl, ...): the client SDKs need it to join.
    media_placement: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Attendee:
    attendee_id: str
    join_token: str
    audio: Audio


@dataclass(frozen=True)
class Room:
    """What a client needs to join a meeting with the Chime SDK client libraries."""

    meeting_id: str
    attendee_id: str
    join_token: str
    media_region: str
    audio: Audio
    media_placement: dict[str, str] | None = field(default=None, hash=False)


_MAX_EXTERNAL_ID = 64
_MIN_EXTERNAL_ID = 2
_RESERVED_PREFIX = "aws:"  # Chime reserves external ids starting with it (compared case-insensitively)
_TOKEN_CHARS = 48  # hex digits of a client request token (Chime allows 2-64 of [-_a-zA-Z0-9])


def external_id(*parts: str) -> str:
    """Join ``parts`` into a Chime external id (2-64 chars), hashing the tail when too long.

    Never starts with Chime's reserved ``aws:`` prefix: such an id gets a leading ``~`` (a character
    our own ids never start with, so the result still names one tuple of parts only).
    """
    raw = ":".join(parts)
    if raw[: len(_RESERVED_PREFIX)].lower() == _RESERVED_PREFIX:
        raw = f"~{raw}"
    if len(raw) < _MIN_EXTERNAL_ID:
        raw = raw.ljust(_MIN_EXTERNAL_ID, "~")
    if len(raw) <= _MAX_EXTERNAL_ID:
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:16]
    return f"{raw[: _MAX_EXTERNAL_ID - 17]}~{digest}"


def client_request_token(*parts: str) -> str:
    """A Chime ``ClientRequestToken`` for ``parts``: hex SHA-256, so always within ``[-_a-zA-Z0-9]{2,64}``.

    Our ids may contain ``:``, ``.``, ``@`` and ``+``, which the token alphabet refuses, and may be
    longer than 64 characters together, so the parts are hashed rather than joined.
    """
    if not parts:
        raise ValueError("a client request token needs at least one part")
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:_TOKEN_CHARS]


# --- rooms and their ids ---------------------------------------------------------------------------


class RoomKind(str, enum.Enum):
    CONTACT = "contact"  # one per voice workitem: customer, agent, listening/barging supervisors
    COACH = "coach"  # one per coaching session while someone whispers: supervisors Send, agent Receive


def meeting_external_id(tenant_id: str, workitem_id: str, kind: RoomKind) -> str:
    """``ExternalMeetingId`` of a room: tenant and workitem, within Chime's 64 characters."""
    return external_id(tenant_id, workitem_id, kind.value)


def meeting_token(tenant_id: str, workitem_id: str, kind: RoomKind, generation: int) -> str:
    """``ClientRequestToken`` of one incarnation of a room.

    Two racing first actions compute the same token and so get the same meeting from CreateMeeting;
    once a room has been deleted or found ended, ``generation`` is bumped so the next CreateMeeting
    makes a fresh meeting (a reused token may return the dead one).
    """
    return client_request_token("meeting", tenant_id, workitem_id, kind.value, str(generation))


def staff_external_id(tenant_id: str, user_id: str) -> str:
    """``ExternalUserId`` of an agent or supervisor (Chime's idempotency key for attendees)."""
    return external_id(tenant_id, user_id)


def caller_external_id(call_id: str) -> str:
    """``ExternalUserId`` of a customer's phone leg: one attendee per SIP media application call."""
    return external_id("pstn", call_id)


# --- voice state of a workitem ----------------------------------------------------------------------
#
# Persisted in ``Workitem.voice`` (a DynamoDB map) with the workitem's version-conditional commit, so
# racing voice actions agree on one room. JSON-simple: strings, ints and nested maps only; empty
# values are left out. Join tokens are never stored: Chime's CreateAttendee is idempotent per
# ExternalUserId and hands the same attendee (and token) out again.
#
#   {"contact": {"meetingId", "mediaRegion", "meetingArn", "mediaPlacement"?, "agentId"?, "agentAttendeeId"?},
#    "contactGen": int,
#    "callers": {callId: attendeeId},
#    "coach": {"meetingId", "mediaRegion", "meetingArn", "mediaPlacement"?, "pipelineId"?,
#              "agentId"?, "agentAttendeeId"?},
#    "coachGen": int,
#    "supervisors": {supervisorId: {"mode", "contactAttendeeId"?, "coachAttendeeId"?}}}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str) and v}


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v not in ("", None, {}, [])}


@dataclass
class RoomState:
    """One live meeting of a workitem, and the agent's attendee in it."""

    meeting_id: str
    media_region: str
    meeting_arn: str = ""
    media_placement: dict[str, str] = field(default_factory=dict)
    agent_id: str = ""  # whose attendee agent_attendee_id is (the agent at the time it was added)
    agent_attendee_id: str = ""
    pipeline_id: str = ""  # media capture pipeline recording this room (coach room only)

    @classmethod
    def from_meeting(cls, meeting: Meeting) -> RoomState:
        return cls(meeting.meeting_id, meeting.media_region, meeting.meeting_arn, dict(meeting.media_placement))

    @classmethod
    def load(cls, raw: Any) -> RoomState | None:
        if not isinstance(raw, dict) or not _str(raw.get("meetingId")):
            return None
        return cls(
            meeting_id=_str(raw.get("meetingId")),
            media_region=_str(raw.get("mediaRegion")),
            meeting_arn=_str(raw.get("meetingArn")),
            media_placement=_str_map(raw.get("mediaPlacement")),
            agent_id=_str(raw.get("agentId")),
            agent_attendee_id=_str(raw.get("agentAttendeeId")),
            pipeline_id=_str(raw.get("pipelineId")),
        )

    def dump(self) -> dict[str, Any]:
        return _compact(
            {
                "meetingId": self.meeting_id,
                "mediaRegion": self.media_region,
                "meetingArn": self.meeting_arn,
                "mediaPlacement": dict(self.media_placement),
                "agentId": self.agent_id,
                "agentAttendeeId": self.agent_attendee_id,
                "pipelineId": self.pipeline_id,
            }
        )

    def meeting(self) -> Meeting:
        return Meeting(self.meeting_id, self.media_region, self.meeting_arn, dict(self.media_placement))

    def room(self, attendee: Attendee, audio: Audio) -> Room:
        """The wire room for ``attendee`` in this meeting, with the capability we gave it."""
        return Room(
            self.meeting_id,
            attendee.attendee_id,
            attendee.join_token,
            self.media_region,
            audio,
            dict(self.media_placement) or None,
        )


@dataclass
class SupervisorVoice:
    """A monitoring supervisor's voice mode and their attendees."""

    mode: VoiceMode
    contact_attendee_id: str = ""
    coach_attendee_id: str = ""

    @classmethod
    def load(cls, raw: Any) -> SupervisorVoice | None:
        if not isinstance(raw, dict):
            return None
        try:
            mode = VoiceMode(raw.get("mode"))
        except ValueError:
            mode = VoiceMode.MONITOR
        return cls(mode, _str(raw.get("contactAttendeeId")), _str(raw.get("coachAttendeeId")))

    def dump(self) -> dict[str, Any]:
        return _compact(
            {"mode": self.mode.value, "contactAttendeeId": self.contact_attendee_id, "coachAttendeeId": self.coach_attendee_id}
        )


@dataclass
class VoiceState:
    """Everything voice about one workitem (see the layout above)."""

    contact: RoomState | None = None
    contact_generation: int = 0
    callers: dict[str, str] = field(default_factory=dict)  # SMA call id -> attendee id
    coach: RoomState | None = None
    coach_generation: int = 0
    supervisors: dict[str, SupervisorVoice] = field(default_factory=dict)
    transcript: CallTranscript | None = None  # the call's live transcript (domain/transcript.py)

    @classmethod
    def load(cls, raw: dict[str, Any] | None) -> VoiceState:
        raw = raw or {}
        supervisors: dict[str, SupervisorVoice] = {}
        raw_sups = raw.get("supervisors")
        if isinstance(raw_sups, dict):
            for user_id, value in raw_sups.items():
                sup = SupervisorVoice.load(value)
                if sup is not None:
                    supervisors[str(user_id)] = sup
        return cls(
            contact=RoomState.load(raw.get("contact")),
            contact_generation=_int(raw.get("contactGen")),
            callers=_str_map(raw.get("callers")),
            coach=RoomState.load(raw.get("coach")),
            coach_generation=_int(raw.get("coachGen")),
            supervisors=supervisors,
            transcript=CallTranscript.load(raw.get("transcript")),
        )

    def dump(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "contact": self.contact.dump() if self.contact else None,
            "contactGen": self.contact_generation or None,
            "callers": dict(self.callers),
            "coach": self.coach.dump() if self.coach else None,
            "coachGen": self.coach_generation or None,
            "supervisors": {user_id: sup.dump() for user_id, sup in sorted(self.supervisors.items())},
            "transcript": self.transcript.dump() if self.transcript else None,
        }
        return _compact(body)

    def whisperers(self) -> list[str]:
        """Supervisors with an attendee in the coach room."""
        return sorted(u for u, s in self.supervisors.items() if s.coach_attendee_id)


@dataclass
class Cleanup:
    """Chime resources a committed change no longer references, deleted after the commit.

    Deleted in this order: pipelines, then meetings, then attendees of meetings that stay, so a
    recording never outlives its source and no attendee is deleted twice.
    """

    pipelines: list[str] = field(default_factory=list)
    media_pipelines: list[str] = field(default_factory=list)  # a call's transcript: stream and insights pipelines
    meetings: list[str] = field(default_factory=list)
    attendees: list[tuple[str, str]] = field(default_factory=list)  # (meeting id, attendee id)

    def attendee(self, meeting_id: str, attendee_id: str) -> None:
        if meeting_id and attendee_id:
            self.attendees.append((meeting_id, attendee_id))

    def remaining_attendees(self) -> list[tuple[str, str]]:
        gone = set(self.meetings)
        return list(dict.fromkeys(a for a in self.attendees if a[0] not in gone))

    def __bool__(self) -> bool:
        return bool(self.pipelines or self.media_pipelines or self.meetings or self.attendees)


# --- rules --------------------------------------------------------------------------------------------


def require_voice(workitem: Workitem) -> None:
    """Voice actions exist on voice workitems only (W4.29: else ``invalid``), and not on Amazon Connect's
    calls, which are not Chime calls (W14.10: ``conflict``)."""
    if workitem.channel is not Channel.VOICE:
        raise Invalid(f"voice actions are only available on voice workitems, not {workitem.channel.value}")
    if is_connect_workitem(workitem):
        raise Conflict("this call is on Amazon Connect: listen or barge with Amazon Connect's own monitor")


def require_live_call(workitem: Workitem) -> None:
    if workitem.status is not Status.ACTIVE:
        raise Conflict("the call has ended")


def check_agent_action(principal: Principal, workitem: Workitem) -> None:
    """``voice.join``: the workitem's agent, on a live voice workitem."""
    if principal.role is not Role.AGENT or principal.user_id != workitem.agent_id:
        raise Forbidden("only the workitem's agent may join its call")
    require_voice(workitem)
    require_live_call(workitem)


def check_supervisor_action(principal: Principal, workitem: Workitem, supervises_agent: bool) -> None:
    """``voice.monitor|whisper|barge|listen``: a supervisor of the agent who has started monitoring.

    Permission first (W2.6): not a supervisor, or not one of this agent's, is
    ``forbidden`` whatever the workitem's state; then ``invalid`` off voice; then ``conflict`` when the
    call has ended or the supervisor has not started monitoring (S5).
    """
    if principal.role is not Role.SUPERVISOR:
        raise Forbidden("only supervisors may listen, whisper or barge")
    monitoring = principal.user_id in workitem.monitors
    if not monitoring and not supervises_agent:
        raise Forbidden("you do not supervise this workitem's agent")
    require_voice(workitem)
    require_live_call(workitem)
    if not monitoring:
        raise Conflict("start monitoring the workitem first (monitor.start)")


def check_caller_join(workitem: Workitem) -> None:
    """A phone call may only join a live voice workitem."""
    if workitem.channel is not Channel.VOICE or is_connect_workitem(workitem):
        raise Conflict("the call's workitem is not a voice workitem of this stack's calls")
    require_live_call(workitem)


def drop_contact(state: VoiceState, cleanup: Cleanup) -> None:
    """The contact room goes (workitem ended, or found ended): everyone in it goes with it, and its
    transcript's pipelines (nothing left billing)."""
    if state.transcript is not None:
        cleanup.media_pipelines.extend(state.transcript.pipelines())
        state.transcript = None
    if state.contact is not None:
        cleanup.meetings.append(state.contact.meeting_id)
        state.contact = None
        state.contact_generation += 1
    state.callers = {}
    for sup in state.supervisors.values():
        sup.contact_attendee_id = ""


def drop_coach(state: VoiceState, cleanup: Cleanup) -> None:
    """The coach room goes with its recording; a later whisper makes a fresh one."""
    if state.coach is not None:
        if state.coach.pipeline_id:
            cleanup.pipelines.append(state.coach.pipeline_id)
        cleanup.meetings.append(state.coach.meeting_id)
        state.coach = None
        state.coach_generation += 1
    for sup in state.supervisors.values():
        sup.coach_attendee_id = ""


def leave_coach(state: VoiceState, supervisor_id: str, cleanup: Cleanup) -> bool:
    """Take a supervisor out of the coach room; close the room when nobody whispers any more.

    Returns True when the room was closed (the agent is then told ``voice.coach_room_closed``).
    """
    if state.coach is None:
        return False
    sup = state.supervisors.get(supervisor_id)
    if sup is not None and sup.coach_attendee_id:
        cleanup.attendee(state.coach.meeting_id, sup.coach_attendee_id)
        sup.coach_attendee_id = ""
    if state.whisperers():
        return False
    drop_coach(state, cleanup)
    return True


def drop_supervisor(state: VoiceState, supervisor_id: str, cleanup: Cleanup) -> bool:
    """A supervisor's coaching ended: delete their attendees (and the coach room if they were the
    last whisperer). Returns True when the coach room was closed."""
    closed = leave_coach(state, supervisor_id, cleanup)
    sup = state.supervisors.pop(supervisor_id, None)
    if sup is not None and sup.contact_attendee_id and state.contact is not None:
        cleanup.attendee(state.contact.meeting_id, sup.contact_attendee_id)
    return closed


def reconcile(workitem: Workitem, state: VoiceState, cleanup: Cleanup) -> str | None:
    """Bring the voice state in line with the workitem after coaching ended, a supervisor left, a
    transfer or the end of the workitem (V8: nothing is left billing).

    - only supervisors still monitoring keep attendees; the coach room closes with its last whisperer;
    - an agent who no longer owns the workitem loses their attendees (the contact room stays for the
      customer, who is still on the line after a transfer);
    - an ended workitem keeps no room at all.

    Returns the agent to tell ``voice.coach_room_closed`` when a coach room with their attendee closed.
    Idempotent: a second call on the result finds nothing to do.
    """
    coach_agent = state.coach.agent_id if state.coach and state.coach.agent_attendee_id else ""
    coach_closed = False
    if workitem.status is Status.ENDED:
        coach_closed = state.coach is not None
        drop_coach(state, cleanup)
        drop_contact(state, cleanup)
        state.supervisors = {}
    else:
        for supervisor_id in sorted(state.supervisors):
            if supervisor_id not in workitem.monitors:
                coach_closed = drop_supervisor(state, supervisor_id, cleanup) or coach_closed
        if state.coach is not None and state.coach.agent_id and state.coach.agent_id != workitem.agent_id:
            coach_closed = True
            drop_coach(state, cleanup)
        contact = state.contact
        if contact is not None and contact.agent_id and contact.agent_id != workitem.agent_id:
            cleanup.attendee(contact.meeting_id, contact.agent_attendee_id)
            contact.agent_id = contact.agent_attendee_id = ""
    return coach_agent if coach_closed and coach_agent else None


def voice_change(workitem: Workitem, state: VoiceState, now: str, mode: tuple[str, VoiceMode] | None = None) -> Change:
    """The committed form of a voice decision: the new state, plus a ``voice_mode`` entry when a
    supervisor's mode changed (B6 audit; customers never see it). Nothing changed: no commit."""
    voice = state.dump()
    if mode is None:
        if voice == workitem.voice:
            return Change(workitem, workitem)
        after = copy.deepcopy(workitem)
        after.version += 1
        after.voice = voice
        return Change(workitem, after)
    supervisor_id, new_mode = mode
    change = record(
        workitem, EntryKind.VOICE_MODE, supervisor_id, Role.SUPERVISOR, now, supervisorId=supervisor_id, mode=new_mode.value
    )
    change.after.voice = voice
    return change
