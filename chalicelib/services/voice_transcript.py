"""The live transcript's pipelines, tied to the call (docs/product.md W12.7, W12.8, W12.10; docs/transcript.md).

Part of the voice service (:class:`chalicelib.services.voice.VoiceService` inherits it), because the
pipelines live in the workitem's voice state and follow its decide / commit / clean-up cycle:

1. **Audio streams.** When the contact room has both the agent's attendee (``voice.join``) and a
   customer's phone leg (the SIP media application's join), and the stack and the tenant's policy
   transcribe calls, a media *stream* pipeline sends each attendee's audio to the Kinesis Video stream
   pool (``CreateMediaStreamPipeline``, idempotent by a token per contact room).
2. **Transcription.** Chime reports each stream's start on EventBridge (``Chime Media Pipeline State
   Change``, ``chime:MediaPipelineKinesisVideoStreamStart``: stream ARN and first fragment). The
   *second* of those events, the agent's or the customer's, whichever comes last, starts the media
   *insights* pipeline on both streams (``CreateMediaInsightsPipeline``, idempotent by a token per
   stream pipeline). A supervisor's stream (barge) is not transcribed.
3. **End.** The contact room going (the call ended) deletes both pipelines with it (``DeleteMediaPipeline``);
   a sweep deletes any pipeline this stack started that no live call references any more.

Failures reported by ``Media Insights State Change`` mark the transcript unavailable and tell the
agent and the monitoring supervisors. Every pipeline started is remembered (``PIPELINE#<id>``) before
the voice state that references it is committed, so events and the sweep find their workitem.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib import metrics
from chalicelib.domain import transcript as rules
from chalicelib.domain.coaching import Status, Workitem
from chalicelib.domain.errors import Conflict, DomainError, Invalid
from chalicelib.domain.identity import Principal, user_key
from chalicelib.domain.transcript import CallTranscript, MediaEvent, Speaker, StreamStart, TranscriptState, UnavailableReason
from chalicelib.domain.voice import VoiceState, check_agent_action, client_request_token
from chalicelib.services import push_events as ev
from chalicelib.services.results import TranscriptState as TranscriptNote

if TYPE_CHECKING:
    from chalicelib.services.commits import Workitems
    from chalicelib.services.delivery import Notifier
    from chalicelib.services.ports import PipelineIndex, RecipientLookup, TenantConfig, Transcription
    from chalicelib.settings import Settings

log = logging.getLogger(__name__)


class _Plan(Protocol):
    """What the voice service's decide / commit cycle keeps of one attempt (services/voice.py)."""

    result: Any
    transcript_note: tuple[str, TranscriptNote, bool] | None


# How long a pipeline's PIPELINE# item is kept: longer than a pipeline may run (8 hours).
INDEX_SECONDS = 24 * 3600
# The sweep leaves alone a pipeline remembered this recently: its voice state may not be committed yet.
SWEEP_GRACE_SECONDS = 120
STREAM_START = "chime:MediaPipelineKinesisVideoStreamStart"
INSIGHTS_FAILED = "chime:MediaInsightsPermanentFailure"
INSIGHTS_STOPPED = "chime:MediaInsightsStopped"


class TranscriptLifecycle:
    settings: Settings
    workitems: Workitems
    recipients: RecipientLookup
    notifier: Notifier
    transcription: Transcription | None
    pipelines: PipelineIndex | None
    policies: TenantConfig | None

    if TYPE_CHECKING:

        def _run(
            self,
            tenant_id: str,
            workitem_id: str,
            act: Callable[[Workitem, VoiceState, _Plan], Any],
            connection_id: str | None = None,
        ) -> _Plan: ...

    def transcribes(self) -> bool:
        """Whether this stack transcribes calls (its EnableTranscription condition held)."""
        s = self.settings
        return bool(
            self.transcription is not None
            and self.pipelines is not None
            and s.transcript_configuration_arn
            and s.transcript_pool_arn
        )

    # --- 1. the audio streams (voice.join and the phone leg's join) -------------------------------------

    def _transcribe(self, w: Workitem, state: VoiceState, plan: _Plan) -> None:
        """Start the call's audio streams once agent and customer are both in the contact room. A
        failure never fails the join: the transcript is then unavailable (logged, counted, pushed)."""
        room = state.contact
        if state.transcript is not None or room is None or not room.agent_attendee_id or not state.callers:
            return
        if not self.transcribes() or not room.meeting_arn:
            return
        assert self.transcription is not None and self.pipelines is not None and self.policies is not None
        if not self.policies.policy(w.tenant_id).transcribe_calls:
            return
        token = client_request_token("streams", w.tenant_id, w.workitem_id, room.meeting_id)
        try:
            stream_id = self.transcription.start_streams(room.meeting_arn, self.settings.transcript_pool_arn, token)
            self._remember(stream_id, w)
        except Exception:  # the call goes on without its transcript
            log.exception("could not start the audio streams of workitem %s", w.workitem_id)
            state.transcript = CallTranscript(TranscriptState.UNAVAILABLE, reason=UnavailableReason.NOT_STARTED.value)
            self._unavailable(w, plan, UnavailableReason.NOT_STARTED)
            return
        state.transcript = CallTranscript(TranscriptState.STARTING, stream_pipeline_id=stream_id)

    # --- 2. and 3. what Chime reports on EventBridge ----------------------------------------------------

    def on_media_event(self, event: MediaEvent) -> str:
        """Chime's event about a media pipeline (read by ``entrypoints/transcript_payloads.py``). Only the
        stack's own account and Region, about a pipeline this stack started, is acted on; returns what
        became of it (``applied``, ``ignored``)."""
        s = self.settings
        if event.source != "aws.chime" or event.account != s.account_id or event.region != s.region:
            raise Invalid("the event is not from Amazon Chime in this stack's account and Region")
        if not self.transcribes():
            return "ignored"
        assert self.pipelines is not None
        owner = self.pipelines.owner(event.pipeline_id)
        if owner is None:
            return "ignored"
        if event.kind == STREAM_START and event.start is not None:
            return self._stream_started(owner.tenant_id, owner.workitem_id, event.pipeline_id, event.attendee_id, event.start)
        if event.kind in (INSIGHTS_FAILED, INSIGHTS_STOPPED):
            reason = UnavailableReason.FAILED if event.kind == INSIGHTS_FAILED else UnavailableReason.STOPPED
            log.warning(
                "transcript pipeline of workitem %s: %s (%s)",
                owner.workitem_id,
                event.kind,
                event.reason or "no reason given",
                extra={"event": "transcript_failure", "reason": reason.value},
            )
            return self._lost(owner.tenant_id, owner.workitem_id, event.pipeline_id, reason)
        return "ignored"

    def _stream_started(self, tenant_id: str, workitem_id: str, stream_id: str, attendee_id: str, start: StreamStart) -> str:
        outcome = ["ignored"]

        def act(w: Workitem, state: VoiceState, plan: _Plan) -> None:
            t, room = state.transcript, state.contact
            if t is None or t.stream_pipeline_id != stream_id or room is None or w.status is not Status.ACTIVE:
                return
            if attendee_id == room.agent_attendee_id:
                role = Speaker.AGENT
            elif attendee_id in state.callers.values():
                role = Speaker.CUSTOMER
            else:
                return  # a supervisor's audio (barge) is not transcribed
            both = t.stream_started(attendee_id, role, start)
            outcome[0] = "applied"
            if both is None:
                return
            assert self.transcription is not None and self.pipelines is not None
            request = rules.InsightsRequest(
                configuration_arn=self.settings.transcript_configuration_arn,
                agent=both[0],
                customer=both[1],
                sample_rate=self.settings.transcript_sample_rate,
                tenant_id=w.tenant_id,
                workitem_id=w.workitem_id,
                token=rules.insights_token(w.tenant_id, w.workitem_id, stream_id),
            )
            try:
                insights_id = self.transcription.start_insights(request)
                self._remember(insights_id, w)
            except DomainError as exc:  # the quota (20 active pipelines by default), a refusal
                log.warning("could not start the transcript of workitem %s: %s", w.workitem_id, exc.code)
                t.unavailable(UnavailableReason.NOT_STARTED)
                self._unavailable(w, plan, UnavailableReason.NOT_STARTED)
                return
            t.insights_pipeline_id, t.state = insights_id, TranscriptState.RUNNING

        self._run(tenant_id, workitem_id, act)
        return outcome[0]

    def _lost(self, tenant_id: str, workitem_id: str, pipeline_id: str, reason: UnavailableReason) -> str:
        outcome = ["ignored"]

        def act(w: Workitem, state: VoiceState, plan: _Plan) -> None:
            t = state.transcript
            if t is None or t.insights_pipeline_id != pipeline_id or w.status is not Status.ACTIVE:
                return  # stopped by us (the call ended), or an older pipeline of the call
            if t.unavailable(reason):
                outcome[0] = "applied"
                self._unavailable(w, plan, reason)

        self._run(tenant_id, workitem_id, act)
        return outcome[0]

    def _remember(self, pipeline_id: str, w: Workitem) -> None:
        """1 PutItem, before the voice state that references the pipeline is committed."""
        assert self.pipelines is not None
        now = int(time.time())
        self.pipelines.remember(pipeline_id, rules.PipelineOwner(w.tenant_id, w.workitem_id, now), now + INDEX_SECONDS)

    def _unavailable(self, w: Workitem, plan: _Plan, reason: UnavailableReason) -> None:
        metrics.TRANSCRIPT_FAILURES.add(Reason=reason.value)
        plan.transcript_note = (
            ev.TRANSCRIPT_UNAVAILABLE,
            TranscriptNote(w.workitem_id, TranscriptState.UNAVAILABLE.value, reason.value),
            True,
        )

    # --- pause and resume (the agent, for card numbers) --------------------------------------------------

    def pause_transcript(self, caller: Principal, workitem_id: str, connection_id: str | None = None) -> TranscriptNote:
        return self._pause(caller, workitem_id, True, connection_id)

    def resume_transcript(self, caller: Principal, workitem_id: str, connection_id: str | None = None) -> TranscriptNote:
        return self._pause(caller, workitem_id, False, connection_id)

    def _pause(self, caller: Principal, workitem_id: str, paused: bool, connection_id: str | None) -> TranscriptNote:
        def act(w: Workitem, state: VoiceState, plan: _Plan) -> None:
            check_agent_action(caller, w)
            t = state.transcript
            if t is None or not t.insights_pipeline_id:
                raise Conflict("the call has no running transcript")
            changed = t.pause() if paused else t.resume()
            if changed:
                assert self.transcription is not None
                self.transcription.set_paused(t.insights_pipeline_id, paused)  # an absolute state: safe to repeat
                name = ev.TRANSCRIPT_PAUSED if paused else ev.TRANSCRIPT_RESUMED
                plan.transcript_note = (name, TranscriptNote(w.workitem_id, t.state.value), False)
            plan.result = TranscriptNote(w.workitem_id, t.state.value)

        result: TranscriptNote = self._run(caller.tenant_id, workitem_id, act, connection_id).result
        return result

    def _notify_transcript(
        self, tenant_id: str, workitem_id: str, note: tuple[str, TranscriptNote, bool], connection_id: str | None
    ) -> None:
        name, data, to_agent = note
        try:
            w = self.workitems.load(tenant_id, workitem_id)
            people = [*([w.agent_id] if to_agent else []), *w.monitors]
            keys = [user_key(u) for u in dict.fromkeys(people)]
            found = self.recipients.recipients(tenant_id, keys) if keys else {}
            box = self.notifier.outbox(tenant_id, connection_id)
            for key in keys:
                box.to_recipient(found.get(key), name, data)
            self.notifier.flush(box)
        except Exception:  # committed already; supervisors see the state in the voice state's next read
            log.exception("could not push %s for workitem %s", name, workitem_id)

    # --- the sweep ----------------------------------------------------------------------------------------

    def sweep_transcripts(self) -> int:
        """Delete the media pipelines this stack started that no active call references (a failed
        clean-up, a crash between start and commit): nothing is left billing. 1 ListMediaPipelines per
        100 pipelines, then 1 GetItem per pipeline (its owner) and 1 GetItem per owning workitem.
        Returns how many were deleted."""
        if not self.transcribes():
            return 0
        assert self.transcription is not None and self.pipelines is not None
        deleted = 0
        for pipeline_id in self.transcription.media_pipelines():
            owner = self.pipelines.owner(pipeline_id)
            if owner is None:
                continue  # not this stack's (a recording, another stack's call)
            w = self.workitems.store.get(owner.tenant_id, owner.workitem_id)
            t = CallTranscript.load((w.voice or {}).get("transcript")) if w is not None else None
            if w is not None and w.status is Status.ACTIVE and t is not None and pipeline_id in t.pipelines():
                continue
            if w is not None and w.status is Status.ACTIVE and owner.since + SWEEP_GRACE_SECONDS > time.time():
                continue  # just started: its voice state may not be committed yet
            try:
                self.transcription.delete_media_pipeline(pipeline_id)
            except Exception:
                log.exception("the sweep could not delete media pipeline %s", pipeline_id)
                continue
            log.warning("deleted media pipeline %s left behind by workitem %s", pipeline_id, owner.workitem_id)
            deleted += 1
        return deleted
