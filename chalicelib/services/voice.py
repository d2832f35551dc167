"""Voice coaching over the Chime SDK: contact room, silent monitor, whisper, barge (docs/product.md S14-S15, B5).

Every voice action follows one pattern (see docs/voice.md):

1. read the workitem and let the voice rules check the caller (``chalicelib.domain.voice``);
2. make the Chime calls the new state needs. They are all idempotent, so a decision that loses the
   version race can simply run again: ``CreateMeeting`` with a client request token derived from
   tenant, workitem, room and generation returns the same meeting to two racing first actions;
   ``CreateAttendee`` returns the same attendee for the same external user id; capability updates
   set an absolute value; a capture pipeline's token is its meeting id;
3. commit the new voice state (and a ``voice_mode`` timeline entry when a supervisor's mode changed)
   conditionally on the workitem's version;
4. only then delete what the committed state no longer references (pipelines, rooms, attendees) and
   tell the agent about a coach room that opened or closed.

Deletes come after the commit so that a racing action can never find a room it was promised already
gone. A failed delete is logged and never undoes a committed action. Teardown (coaching ended,
supervisor left, transfer, end of the workitem) reconciles the voice state with the workitem in the
same way; repeating it finds nothing left to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain import pstn
from chalicelib.domain import voice as rules
from chalicelib.domain.coaching import Change, Channel, Workitem
from chalicelib.domain.errors import DomainError, Invalid, NotFound
from chalicelib.domain.identity import Principal, Role, user_key
from chalicelib.domain.voice import (
    Attendee,
    Audio,
    Cleanup,
    Room,
    RoomKind,
    RoomState,
    SupervisorVoice,
    VoiceMode,
    VoiceState,
)
from chalicelib.services import push_events as ev
from chalicelib.services.commits import Workitems
from chalicelib.services.delivery import Notifier
from chalicelib.services.messagebus import CoachingEnded, SupervisorLeft, WorkitemCommitted
from chalicelib.services.ports import MeetingProvider, PipelineIndex, RecipientLookup, Supervision, TenantConfig, Transcription
from chalicelib.services.results import CoachRoomClosed, CoachRoomOpened, InContactRoom, VoiceJoined, Whispering
from chalicelib.services.results import TranscriptState as TranscriptNote
from chalicelib.services.voice_transcript import TranscriptLifecycle
from chalicelib.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class _Plan:
    """What one attempt of a voice decision found out, used once its commit has won."""

    result: Any = None  # what the action answers (services/results.py)
    call: tuple[str, str] | None = None  # a phone leg's meeting and join token
    cleanup: Cleanup = field(default_factory=Cleanup)
    coach_room_for: tuple[str, Room] | None = None  # agent to send voice.coach_room to
    coach_closed_for: str | None = None  # agent to send voice.coach_room_closed to
    # Chime calls that must wait for the commit and the clean-up (barge: after the coach room is gone).
    after_clean: list[Callable[[], None]] = field(default_factory=list)
    # The live transcript: (event name, record, to the agent too) pushed once committed (W12.7, W12.8).
    transcript_note: tuple[str, TranscriptNote, bool] | None = None


Act = Callable[[Workitem, VoiceState, _Plan], "tuple[str, VoiceMode] | None"]


class VoiceService(TranscriptLifecycle):
    def __init__(
        self,
        settings: Settings,
        workitems: Workitems,
        supervision: Supervision,
        recipients: RecipientLookup,
        notifier: Notifier,
        meetings: MeetingProvider,
        transcription: Transcription | None = None,
        pipelines: PipelineIndex | None = None,
        policies: TenantConfig | None = None,
    ) -> None:
        self.settings = settings
        self.workitems = workitems
        self.supervision = supervision
        self.recipients = recipients
        self.notifier = notifier
        self.meetings = meetings
        self.transcription = transcription
        self.pipelines = pipelines
        self.policies = policies

    # --- actions ---------------------------------------------------------------------------------

    def join(self, caller: Principal, workitem_id: str) -> Any:
        """The agent's own place in the contact room (audio SendReceive)."""

        def act(w: Workitem, state: VoiceState, plan: _Plan) -> None:
            rules.check_agent_action(caller, w)
            room, attendee = self._in_contact(
                w, state, rules.staff_external_id(w.tenant_id, w.agent_id), Audio.SEND_RECEIVE, plan
            )
            room.agent_id, room.agent_attendee_id = w.agent_id, attendee.attendee_id
            self._transcribe(w, state, plan)
            # A rejoining agent gets back into a whisper already on.
            plan.result = VoiceJoined(room.room(attendee, Audio.SEND_RECEIVE), self._agent_in_coach(w, state))

        return self._run(caller.tenant_id, workitem_id, act).result

    def monitor(self, caller: Principal, workitem_id: str, connection_id: str | None = None) -> Any:
        """Silent monitor: the supervisor hears agent and customer, nobody hears them."""
        return self._listen(caller, workitem_id, VoiceMode.MONITOR, connection_id)

    def listen(self, caller: Principal, workitem_id: str, connection_id: str | None = None) -> Any:
        """Back to listening only: out of the coach room, Receive in the contact room."""
        return self._listen(caller, workitem_id, VoiceMode.LISTEN, connection_id)

    def whisper(self, caller: Principal, workitem_id: str, connection_id: str | None = None) -> Any:
        """The supervisor speaks to the agent only, through the coach room (the customer is never in it)."""
        supervises = self._supervises(caller)

        def act(w: Workitem, state: VoiceState, plan: _Plan) -> tuple[str, VoiceMode] | None:
            rules.check_supervisor_action(caller, w, supervises(w))
            previous = state.supervisors.get(caller.user_id)
            staff_id = rules.staff_external_id(w.tenant_id, caller.user_id)
            # Keep hearing agent and customer through the contact room (never heard there).
            contact, contact_attendee = self._in_contact(w, state, staff_id, Audio.RECEIVE, plan)
            coach, coach_attendee, agent_attendee = self._in_coach(w, state, staff_id, plan)
            state.supervisors[caller.user_id] = SupervisorVoice(
                VoiceMode.WHISPER, contact_attendee.attendee_id, coach_attendee.attendee_id
            )
            plan.result = Whispering(coach.room(coach_attendee, Audio.SEND), contact.room(contact_attendee, Audio.RECEIVE))
            if agent_attendee is not None:
                plan.coach_room_for = (w.agent_id, coach.room(agent_attendee, Audio.RECEIVE))
            return _mode_change(caller.user_id, previous, VoiceMode.WHISPER)

        return self._run(caller.tenant_id, workitem_id, act, connection_id).result

    def barge(self, caller: Principal, workitem_id: str, connection_id: str | None = None) -> Any:
        """B5: the supervisor speaks to agent and customer (SendReceive in the contact room).

        Speaking in the contact room starts only once the coach room is gone (after the commit), or
        the agent would hear the supervisor twice."""
        return self._contact_mode(caller, workitem_id, VoiceMode.BARGE, Audio.SEND_RECEIVE, connection_id, defer=True)

    def _listen(self, caller: Principal, workitem_id: str, mode: VoiceMode, connection_id: str | None) -> Any:
        return self._contact_mode(caller, workitem_id, mode, Audio.RECEIVE, connection_id, defer=False)

    def _contact_mode(
        self, caller: Principal, workitem_id: str, mode: VoiceMode, audio: Audio, connection_id: str | None, *, defer: bool
    ) -> Any:
        """Leave the coach room (telling the agent) and take ``audio`` in the contact room."""
        supervises = self._supervises(caller)

        def act(w: Workitem, state: VoiceState, plan: _Plan) -> tuple[str, VoiceMode] | None:
            rules.check_supervisor_action(caller, w, supervises(w))
            previous = state.supervisors.get(caller.user_id)
            coach_agent = state.coach.agent_id if state.coach else ""
            if rules.leave_coach(state, caller.user_id, plan.cleanup) and coach_agent:
                plan.coach_closed_for = coach_agent
            contact, attendee = self._in_contact(
                w, state, rules.staff_external_id(w.tenant_id, caller.user_id), audio, plan, defer=defer
            )
            state.supervisors[caller.user_id] = SupervisorVoice(mode, attendee.attendee_id)
            plan.result = InContactRoom(contact.room(attendee, audio))
            return _mode_change(caller.user_id, previous, mode)

        return self._run(caller.tenant_id, workitem_id, act, connection_id).result

    # --- the customer's phone leg (SIP media application Lambda) ---------------------------------

    def on_sip_media_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Answer one SIP media application invocation. Never raises: a live call must get an answer."""
        try:
            invocation = pstn.parse_event(event)
        except Invalid:
            log.warning("ignoring an event that is not a SIP media application invocation")
            return pstn.empty_response()
        decision = pstn.decide(invocation)
        try:
            if decision.action is pstn.CallAction.JOIN_CONTACT_ROOM:
                return self._answer_call(decision)
            if decision.action is pstn.CallAction.CUSTOMER_LEFT and decision.routing is not None:
                self._caller_left(decision.routing, decision.call_id)
            return decision.default_response()
        except Exception:  # a call must be answered (hang up), never left hanging; logged below
            log.exception("SIP media application event %s failed", invocation.raw_event_type)
            if decision.action is pstn.CallAction.JOIN_CONTACT_ROOM:
                return pstn.hangup_response(decision.call_id, pstn.SIP_UNAVAILABLE)
            return pstn.empty_response()

    def _answer_call(self, decision: pstn.CallDecision) -> dict[str, Any]:
        routing = decision.routing
        call_id = decision.call_id
        if routing is None or not call_id:
            return pstn.hangup_response(call_id, pstn.SIP_UNAVAILABLE)

        def act(w: Workitem, state: VoiceState, plan: _Plan) -> None:
            rules.check_caller_join(w)
            room, attendee = self._in_contact(w, state, rules.caller_external_id(call_id), Audio.SEND_RECEIVE, plan)
            state.callers[call_id] = attendee.attendee_id
            plan.call = (room.meeting_id, attendee.join_token)
            self._transcribe(w, state, plan)

        try:
            plan = self._run(routing.tenant_id, routing.workitem_id, act)
        except DomainError as exc:
            # Unknown workitem, not a voice workitem, or already ended: hang up unanswered (not billed).
            log.info("hanging up a call for workitem %s: %s", routing.workitem_id, exc.code)
            return pstn.hangup_response(call_id, pstn.SIP_UNAVAILABLE)
        if plan.call is None:  # act() sets it whenever the commit went through
            return pstn.hangup_response(call_id, pstn.SIP_UNAVAILABLE)
        meeting_id, join_token = plan.call
        return pstn.join_meeting_response(
            call_id, join_token, meeting_id, transaction_attributes=routing.transaction_attributes()
        )

    def _caller_left(self, routing: pstn.CallRouting, call_id: str) -> None:
        """The phone leg hung up: its attendee goes. Ending coaching is the routing engine's
        ``workitem.ended`` (endedBy customer), which tears the rooms down (S14)."""

        def act(w: Workitem, state: VoiceState, plan: _Plan) -> None:
            attendee_id = state.callers.pop(call_id, "")
            if attendee_id and state.contact is not None:
                plan.cleanup.attendee(state.contact.meeting_id, attendee_id)

        try:
            self._run(routing.tenant_id, routing.workitem_id, act)
        except NotFound:
            log.info("hang-up for unknown workitem %s ignored", routing.workitem_id)

    # --- teardown --------------------------------------------------------------------------------

    # The handlers of the bus's events (bootstrap.EVENT_HANDLERS); reconcile never raises.

    def on_coaching_ended(self, event: CoachingEnded) -> None:
        change = event.change
        if change.after.channel is Channel.VOICE and change.after.voice:
            self.reconcile(change.after.tenant_id, change.after.workitem_id)

    def on_supervisor_left(self, event: SupervisorLeft) -> None:
        change = event.change
        if change.after.channel is Channel.VOICE and change.after.voice:
            self.reconcile(change.after.tenant_id, change.after.workitem_id)

    def on_committed(self, event: WorkitemCommitted) -> None:
        """A voice workitem ended or changed hands with nobody coaching (else on_coaching_ended runs)."""
        change = event.change
        before, after = change.before, change.after
        if after.channel is not Channel.VOICE or not after.voice or change.ended_for:
            return
        if before.status is not after.status or before.agent_id != after.agent_id:
            self.reconcile(after.tenant_id, after.workitem_id)

    def reconcile(self, tenant_id: str, workitem_id: str) -> None:
        """Delete every attendee, room and pipeline the workitem no longer needs (idempotent).

        Errors are logged, never raised: teardown runs after a committed transfer or end.
        """

        def act(w: Workitem, state: VoiceState, plan: _Plan) -> None:
            plan.coach_closed_for = rules.reconcile(w, state, plan.cleanup)

        try:
            self._run(tenant_id, workitem_id, act)
        except Exception:  # teardown follows a committed change and must not undo it; logged below
            log.exception("voice teardown failed for workitem %s", workitem_id)

    # --- the decide / commit / clean-up cycle ----------------------------------------------------

    def _run(self, tenant_id: str, workitem_id: str, act: Act, connection_id: str | None = None) -> _Plan:
        attempt: list[_Plan] = []

        def decide(w: Workitem) -> Change:
            plan = _Plan()
            attempt[:] = [plan]
            state = VoiceState.load(w.voice)
            mode = act(w, state, plan)
            return rules.voice_change(w, state, self._now(), mode)

        self.workitems.mutate(tenant_id, workitem_id, decide, push=True, exclude=connection_id)
        plan = attempt[0]
        self._clean(workitem_id, plan.cleanup)
        self._notify(tenant_id, workitem_id, plan, connection_id)
        for call in plan.after_clean:  # errors reach the caller, whose retry repeats the call
            call()
        return plan

    def _clean(self, workitem_id: str, cleanup: Cleanup) -> None:
        """Delete what the committed state dropped: pipelines, then rooms, then single attendees."""
        for pipeline_id in dict.fromkeys(cleanup.pipelines):
            self._try("delete_pipeline", workitem_id, self.meetings.delete_pipeline, pipeline_id)
        if self.transcription is not None:
            for pipeline_id in dict.fromkeys(cleanup.media_pipelines):
                self._try("delete_media_pipeline", workitem_id, self.transcription.delete_media_pipeline, pipeline_id)
        for meeting_id in dict.fromkeys(cleanup.meetings):
            self._try("delete_meeting", workitem_id, self.meetings.delete_meeting, meeting_id)
        for meeting_id, attendee_id in cleanup.remaining_attendees():
            self._try("delete_attendee", workitem_id, self.meetings.delete_attendee, meeting_id, attendee_id)

    @staticmethod
    def _try(operation: str, workitem_id: str, call: Callable[..., None], *args: str) -> None:
        try:
            call(*args)
        except Exception:  # logged, never raised: the state change it follows is committed
            log.exception("voice clean-up %s failed for workitem %s", operation, workitem_id)

    def _notify(self, tenant_id: str, workitem_id: str, plan: _Plan, connection_id: str | None) -> None:
        pushes: list[tuple[str, str, CoachRoomClosed | CoachRoomOpened]] = []
        if plan.coach_closed_for:
            pushes.append((plan.coach_closed_for, ev.VOICE_COACH_ROOM_CLOSED, CoachRoomClosed(workitem_id)))
        if plan.coach_room_for is not None:
            agent_id, room = plan.coach_room_for
            pushes.append((agent_id, ev.VOICE_COACH_ROOM, CoachRoomOpened(workitem_id, room)))
        if plan.transcript_note is not None:
            self._notify_transcript(tenant_id, workitem_id, plan.transcript_note, connection_id)
        if not pushes:
            return
        try:
            recipients = self.recipients.recipients(tenant_id, list({user_key(u) for u, _, _ in pushes}))
            box = self.notifier.outbox(tenant_id, connection_id)
            for user_id, name, data in pushes:
                box.to_recipient(recipients.get(user_key(user_id)), name, data)
            self.notifier.flush(box)
        except Exception:  # the change is committed; the agent's client also sees the room end in the SDK
            log.exception("could not push voice events for workitem %s", workitem_id)

    # --- rooms -----------------------------------------------------------------------------------

    def _ensure_room(self, w: Workitem, state: VoiceState, kind: RoomKind) -> tuple[RoomState, bool]:
        """The room of ``kind``, created (idempotently) if the state has none; True when created."""
        current = state.contact if kind is RoomKind.CONTACT else state.coach
        if current is not None:
            return current, False
        generation = state.contact_generation if kind is RoomKind.CONTACT else state.coach_generation
        meeting = self.meetings.create_meeting(
            client_request_token=rules.meeting_token(w.tenant_id, w.workitem_id, kind, generation),
            external_meeting_id=rules.meeting_external_id(w.tenant_id, w.workitem_id, kind),
        )
        room = RoomState.from_meeting(meeting)
        if kind is RoomKind.CONTACT:
            state.contact = room
        else:
            state.coach = room
        return room, True

    def _attendee(self, meeting_id: str, external_user_id: str, audio: Audio, defer_to: _Plan | None = None) -> Attendee:
        """The attendee for ``external_user_id`` (created or found again) with exactly ``audio``;
        with ``defer_to``, an existing attendee's capability changes only after the commit."""
        attendee = self.meetings.create_attendee(meeting_id, external_user_id, audio)
        if attendee.audio is not audio:
            if defer_to is None:
                self.meetings.update_attendee_audio(meeting_id, attendee.attendee_id, audio)
            else:
                defer_to.after_clean.append(lambda: self.meetings.update_attendee_audio(meeting_id, attendee.attendee_id, audio))
        return Attendee(attendee.attendee_id, attendee.join_token, audio)

    def _in_contact(
        self, w: Workitem, state: VoiceState, external_user_id: str, audio: Audio, plan: _Plan, *, defer: bool = False
    ) -> tuple[RoomState, Attendee]:
        """An attendee in the contact room; a room that ended under us is replaced by a new incarnation."""
        for retry in (False, True):
            room, _ = self._ensure_room(w, state, RoomKind.CONTACT)
            try:
                return room, self._attendee(room.meeting_id, external_user_id, audio, plan if defer else None)
            except NotFound:
                if retry:
                    raise
                log.info("contact room of workitem %s has ended; opening a new one", w.workitem_id)
                rules.drop_contact(state, plan.cleanup)
        raise AssertionError("unreachable")

    def _in_coach(
        self, w: Workitem, state: VoiceState, external_user_id: str, plan: _Plan
    ) -> tuple[RoomState, Attendee, Attendee | None]:
        """The supervisor's Send attendee in the coach room, opening the room (with the agent's
        Receive attendee and, by policy, a recording) when there is none. Returns the agent's
        attendee when it is new, so the agent can be told to join."""
        for retry in (False, True):
            room, created = self._ensure_room(w, state, RoomKind.COACH)
            try:
                agent: Attendee | None = None
                if created or room.agent_id != w.agent_id or not room.agent_attendee_id:
                    agent = self._attendee(room.meeting_id, rules.staff_external_id(w.tenant_id, w.agent_id), Audio.RECEIVE)
                    room.agent_id, room.agent_attendee_id = w.agent_id, agent.attendee_id
                self._record(w, room)
                return room, self._attendee(room.meeting_id, external_user_id, Audio.SEND), agent
            except NotFound:
                if retry:
                    raise
                log.info("coach room of workitem %s has ended; opening a new one", w.workitem_id)
                rules.drop_coach(state, plan.cleanup)
        raise AssertionError("unreachable")

    def _agent_in_coach(self, w: Workitem, state: VoiceState) -> Room | None:
        room = state.coach
        if room is None:
            return None
        try:
            attendee = self._attendee(room.meeting_id, rules.staff_external_id(w.tenant_id, w.agent_id), Audio.RECEIVE)
        except NotFound:
            return None  # ended by itself; the next whisper or listen replaces or closes it
        room.agent_id, room.agent_attendee_id = w.agent_id, attendee.attendee_id
        return room.room(attendee, Audio.RECEIVE)

    def _record(self, w: Workitem, room: RoomState) -> None:
        """Record the coach room when the tenant's policy (captured on the workitem) asks for it."""
        if not w.record_coaching or room.pipeline_id:
            return
        sink = self.settings.media_pipeline_sink_arn or self.settings.recordings_bucket_arn
        if not sink:
            log.warning("recordCoaching is on but no media pipeline sink is configured; not recording")
            return
        room.pipeline_id = self.meetings.start_recording(room.meeting(), sink)

    # --- helpers ---------------------------------------------------------------------------------

    def _supervises(self, caller: Principal) -> Callable[[Workitem], bool]:
        """Whether the caller supervises the workitem's agent, looked up once per agent and only
        when needed (a monitoring supervisor has already been checked by monitor.start)."""
        checked: dict[str, bool] = {}

        def supervises(w: Workitem) -> bool:
            if caller.role is not Role.SUPERVISOR:
                return False
            if caller.user_id in w.monitors:
                return True
            if w.agent_id not in checked:
                checked[w.agent_id] = self.supervision.supervises(caller.tenant_id, caller.user_id, w.agent_id)
            return checked[w.agent_id]

        return supervises

    def _now(self) -> str:
        return self.workitems.now()


def _mode_change(supervisor_id: str, previous: SupervisorVoice | None, mode: VoiceMode) -> tuple[str, VoiceMode] | None:
    """A ``voice_mode`` entry is due when the supervisor's mode actually changes."""
    if previous is not None and previous.mode is mode:
        return None
    return supervisor_id, mode
