"""Live transcript of voice calls (docs/product.md W12): what the media insights pipeline's Kinesis Data
Stream sink says (read strictly by ``entrypoints/transcript_payloads.py``), and the rules that turn a
final utterance into a timeline entry of kind ``transcript`` and tie the pipelines to the call.

The Amazon Chime SDK media insights pipeline (Amazon Transcribe Call Analytics) writes one JSON
record per event to the sink stream (docs: "Call analytics processor and output destinations",
https://docs.aws.amazon.com/chime-sdk/latest/dg/call-analytics-processor-and-output-destinations.html):

* ``detail-type: CallAnalyticsMetadata``: once per pipeline, with ``metadata`` a JSON *string*;
* ``detail-type: TranscribeCallAnalytics`` with an ``UtteranceEvent`` (``UtteranceId``,
  ``ParticipantRole`` AGENT|CUSTOMER, ``IsPartial``, ``BeginOffsetMillis``, ``EndOffsetMillis``,
  ``Transcript``, ``Sentiment`` POSITIVE|NEGATIVE|MIXED|NEUTRAL, ``IssuesDetected``) or a
  ``CategoryEvent`` (``MatchedCategories``); never both. The document spells the category records'
  detail-type two ways, so records are told apart by the key they carry, not by the detail-type.

Every record names its ``mediaInsightsPipelineId``; ``metadata`` carries the
``MediaInsightsRuntimeMetadata`` given when the pipeline was created (``tenantId``, ``workitemId``),
as a JSON string in AWS's samples and as an object in one of the document's templates: both are
read. Fields beyond those read are ignored (AWS adds fields over time). Every refusal is
:class:`Invalid` naming the field, never echoing its value (a transcript may hold card numbers).
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from .coaching import Change, Channel, Status, Workitem, record_text
from .errors import Conflict, Invalid
from .identity import Role
from .sentiment import Sentiment
from .timeline import EntryKind

# The longest utterance we keep (Transcribe cuts segments at pauses; a minute of speech is far below).
MAX_SEGMENT_CHARS = 4000
# A Kinesis record is at most 1 MiB; the sink's records are a few KiB.
MAX_RECORD_BYTES = 1024 * 1024
MAX_ID_CHARS = 256
# Chime's media pipeline ids are GUIDs (botocore model: GuidString, 36 characters).
PIPELINE_ID = re.compile(r"[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}\Z")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,255}\Z")
# A Kinesis Video stream's ARN as CreateMediaInsightsPipeline takes it (botocore's model pattern, anchored).
KVS_STREAM_ARN = re.compile(r"arn:[a-z\d-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+\Z")
# An offset of at most a day (pipelines stop after 8 hours).
MAX_OFFSET_MS = 24 * 3600 * 1000


class Speaker(str, enum.Enum):
    AGENT = "agent"
    CUSTOMER = "customer"


@dataclass(frozen=True)
class Origin:
    """Which pipeline a record came from, and the tenant and workitem its runtime metadata names
    (empty when the record carries none: the stored pipeline -> workitem mapping then answers)."""

    pipeline_id: str
    tenant_id: str = ""
    workitem_id: str = ""


@dataclass(frozen=True)
class Utterance:
    origin: Origin
    utterance_id: str
    speaker: Speaker
    partial: bool
    text: str
    sentiment: Sentiment | None
    start_ms: int | None
    end_ms: int | None

    @property
    def event_id(self) -> str:
        """The idempotency key of its final segment: one entry per utterance of one pipeline."""
        return f"utterance:{self.origin.pipeline_id}:{self.utterance_id}"


@dataclass(frozen=True)
class Categories:
    origin: Origin
    matched: tuple[str, ...]


@dataclass(frozen=True)
class CallMetadata:
    origin: Origin


SinkRecord = Utterance | Categories | CallMetadata


# --- rules -------------------------------------------------------------------------------------------


def check_transcribable(w: Workitem) -> None:
    """Transcript lines belong to active voice workitems only."""
    if w.channel is not Channel.VOICE:
        raise Invalid("transcripts are for voice workitems only")
    if w.status is not Status.ACTIVE:
        raise Conflict("the workitem has ended")


def segment(w: Workitem, u: Utterance, now: str) -> Change:
    """A final utterance as a ``transcript`` entry (staff only: never in the customer's view).

    The entry's author is the speaker: the workitem's agent, or its customer. ``startMs``/``endMs``
    are the offsets from the start of the pipeline's audio, so a client orders the lines of one call
    by them whatever order they arrived in."""
    check_transcribable(w)
    if u.partial:
        raise Invalid("a partial utterance is never stored")
    if not u.text:
        raise Invalid("an empty utterance is not a transcript line")
    author, role = (w.agent_id, Role.AGENT) if u.speaker is Speaker.AGENT else (w.customer_id, Role.CUSTOMER)
    extra: dict[str, Any] = {"speaker": u.speaker.value, "utteranceId": u.utterance_id}
    if u.sentiment is not None:
        extra["sentiment"] = u.sentiment.value
    if u.start_ms is not None:
        extra["startMs"] = u.start_ms
    if u.end_ms is not None:
        extra["endMs"] = u.end_ms
    return record_text(w, EntryKind.TRANSCRIPT, author, role, u.text, now, extra)


# --- the pipelines of one call ------------------------------------------------------------------------
#
# Kept in the workitem's voice state (``voice.transcript``, see domain/voice.py):
#   {"state": "starting"|"running"|"paused"|"unavailable", "streamPipelineId", "insightsPipelineId"?,
#    "streams": {attendeeId: {"role": "agent"|"customer", "arn", "fragment"}}, "reason"?}


class TranscriptState(str, enum.Enum):
    STARTING = "starting"  # audio streams requested; the insights pipeline waits for both to start
    RUNNING = "running"
    PAUSED = "paused"
    UNAVAILABLE = "unavailable"


class UnavailableReason(str, enum.Enum):
    FAILED = "failed"  # chime:MediaInsightsPermanentFailure
    STOPPED = "stopped"  # chime:MediaInsightsStopped that nobody asked for (15 s without audio, 8 h cap)
    NOT_STARTED = "not_started"  # a pipeline could not be created


@dataclass(frozen=True)
class PipelineOwner:
    """The call a media pipeline was started for, and when (epoch seconds)."""

    tenant_id: str
    workitem_id: str
    since: int


@dataclass(frozen=True)
class StreamStart:
    """One participant's Kinesis Video stream, from ``chime:MediaPipelineKinesisVideoStreamStart``."""

    arn: str
    fragment: str


@dataclass(frozen=True)
class MediaEvent:
    """What Amazon Chime said on EventBridge about one of the stack's media pipelines: an audio stream
    started (``attendee_id``, ``start``), or a media insights pipeline failed or stopped (``reason``)."""

    source: str
    account: str
    region: str
    kind: str  # chime:MediaPipelineKinesisVideoStreamStart | chime:MediaInsightsPermanentFailure | ...Stopped
    pipeline_id: str
    attendee_id: str = ""
    start: StreamStart | None = None
    reason: str = ""


@dataclass(frozen=True)
class InsightsRequest:
    """What ``CreateMediaInsightsPipeline`` needs for one call."""

    configuration_arn: str
    agent: StreamStart
    customer: StreamStart
    sample_rate: int
    tenant_id: str
    workitem_id: str
    token: str


@dataclass
class CallTranscript:
    state: TranscriptState
    stream_pipeline_id: str = ""
    insights_pipeline_id: str = ""
    streams: dict[str, dict[str, str]] = field(default_factory=dict)
    reason: str = ""

    @classmethod
    def load(cls, raw: Any) -> CallTranscript | None:
        if not isinstance(raw, dict):
            return None
        try:
            state = TranscriptState(raw.get("state"))
        except ValueError:
            return None
        found = raw.get("streams")
        streams: dict[Any, Any] = found if isinstance(found, dict) else {}
        return cls(
            state=state,
            stream_pipeline_id=str(raw.get("streamPipelineId") or ""),
            insights_pipeline_id=str(raw.get("insightsPipelineId") or ""),
            streams={str(k): {kk: str(vv) for kk, vv in v.items()} for k, v in streams.items() if isinstance(v, dict)},
            reason=str(raw.get("reason") or ""),
        )

    def dump(self) -> dict[str, Any]:
        body = {
            "state": self.state.value,
            "streamPipelineId": self.stream_pipeline_id,
            "insightsPipelineId": self.insights_pipeline_id,
            "streams": {k: dict(v) for k, v in sorted(self.streams.items())},
            "reason": self.reason,
        }
        return {k: v for k, v in body.items() if v not in ("", {}, None)}

    def pipelines(self) -> list[str]:
        """Every pipeline of the call, the insights pipeline first (it reads the streams)."""
        return [p for p in (self.insights_pipeline_id, self.stream_pipeline_id) if p]

    def stream_started(self, attendee_id: str, role: Speaker, start: StreamStart) -> tuple[StreamStart, StreamStart] | None:
        """Keep a participant's stream; the agent's and the customer's streams once both have started
        and no insights pipeline runs yet (the moment to start one), else None."""
        self.streams[attendee_id] = {"role": role.value, "arn": start.arn, "fragment": start.fragment}
        if self.insights_pipeline_id or self.state is not TranscriptState.STARTING:
            return None
        found = {s["role"]: StreamStart(s["arn"], s["fragment"]) for s in self.streams.values()}
        agent, customer = found.get(Speaker.AGENT.value), found.get(Speaker.CUSTOMER.value)
        return (agent, customer) if agent and customer else None

    def pause(self) -> bool:
        """True when the running transcript is paused now; False when it is paused already."""
        if self.state is TranscriptState.PAUSED:
            return False
        if self.state is not TranscriptState.RUNNING:
            raise Conflict("the call has no running transcript")
        self.state = TranscriptState.PAUSED
        return True

    def resume(self) -> bool:
        if self.state is TranscriptState.RUNNING:
            return False
        if self.state is not TranscriptState.PAUSED:
            raise Conflict("the call's transcript is not paused")
        self.state = TranscriptState.RUNNING
        return True

    def unavailable(self, reason: UnavailableReason) -> bool:
        """Mark the transcript unavailable; False when it was already."""
        if self.state is TranscriptState.UNAVAILABLE:
            return False
        self.state, self.reason = TranscriptState.UNAVAILABLE, reason.value
        return True


def insights_token(tenant_id: str, workitem_id: str, stream_pipeline_id: str) -> str:
    """``ClientRequestToken`` of a call's insights pipeline: one per audio stream pipeline."""
    return hashlib.sha256("\x1f".join(("insights", tenant_id, workitem_id, stream_pipeline_id)).encode()).hexdigest()[:48]


def pipeline_id_of(arn: str) -> str:
    """A media pipeline's id from its ARN (``arn:aws:chime:<region>:<account>:media-pipeline/<id>``)."""
    tail = arn.rsplit("/", 1)[-1]
    return tail if PIPELINE_ID.match(tail) else ""
