"""An in-memory Chime SDK stand-in, so voice coaching works with no AWS account (B8).

Never packaged: the local stack and the tests pass it to ``bootstrap.build(meetings=...)`` and drive
the voice service against this fake instead of :class:`chalicelib.adapters.chime.ChimeMeetingProvider`.
It behaves like the Chime SDK where the service could notice the difference, and keeps everything it
did inspectable:

- ids are uuid4 strings and join tokens look like Chime's (unpadded base64 of ``attendeeId:secret``,
  about 135 characters, matching the ``[a-zA-Z0-9+/]+`` pattern Chime documents for join tokens);
- ``create_meeting`` is idempotent per client request token and ``create_attendee`` per external user
  id, as in Chime; a token whose meeting has since been deleted keeps pointing at that dead meeting
  (the service must use a fresh token for a new incarnation of a room);
- using a deleted meeting raises :class:`NotFound`, deleting anything twice succeeds;
- the same 2-64 character and reserved ``aws:`` rules apply to external ids as in Chime;
- ``fail_next`` injects a failure (e.g. :class:`RateLimited`) into the next call of an operation.

State is guarded by a lock because the local gateway runs handlers concurrently.
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field

from chalicelib.domain.errors import Invalid, NotFound
from chalicelib.domain.transcript import InsightsRequest
from chalicelib.domain.voice import Attendee, Audio, Meeting

_TOKEN = re.compile(r"[-_a-zA-Z0-9]{2,64}")


def _check_external_id(value: str, what: str) -> None:
    if not 2 <= len(value) <= 64:
        raise Invalid(f"{what} must be 2-64 characters")
    if value[:4].lower() == "aws:":
        raise Invalid(f"{what} must not start with 'aws:' (reserved by Chime)")


def _join_token(attendee_id: str) -> str:
    raw = f"{attendee_id}:{secrets.token_hex(32)}".encode()
    return base64.b64encode(raw).decode().rstrip("=")


@dataclass
class FakeMeeting:
    meeting_id: str
    external_meeting_id: str
    client_request_token: str
    media_region: str
    meeting_arn: str

    def to_meeting(self) -> Meeting:
        return Meeting(meeting_id=self.meeting_id, media_region=self.media_region, meeting_arn=self.meeting_arn)


@dataclass
class FakeAttendee:
    meeting_id: str
    attendee_id: str
    external_user_id: str
    join_token: str
    audio: Audio
    audio_history: list[Audio] = field(default_factory=list)

    def to_attendee(self) -> Attendee:
        return Attendee(attendee_id=self.attendee_id, join_token=self.join_token, audio=self.audio)


@dataclass
class FakePipeline:
    pipeline_id: str
    meeting_id: str
    source_arn: str
    sink_arn: str
    status: str = "InProgress"


class FakeMeetingProvider:
    """In-memory :class:`chalicelib.services.ports.MeetingProvider`.

    Inspect ``meetings`` / ``attendees`` / ``pipelines`` (live objects by id), ``deleted_meetings`` /
    ``deleted_attendees`` / ``deleted_pipelines`` (ids), and ``calls`` (operation names in order).
    """

    def __init__(self, media_region: str = "us-east-1", account_id: str = "111122223333") -> None:
        self.media_region = media_region
        self.account_id = account_id
        self.meetings: dict[str, FakeMeeting] = {}
        self.attendees: dict[str, FakeAttendee] = {}
        self.pipelines: dict[str, FakePipeline] = {}
        self.deleted_meetings: set[str] = set()
        self.deleted_attendees: set[str] = set()
        self.deleted_pipelines: set[str] = set()
        self.insights: dict[str, InsightsRequest] = {}
        self.calls: list[str] = []
        self._by_token: dict[str, FakeMeeting] = {}
        self._pipeline_by_token: dict[str, FakePipeline] = {}
        self._failures: dict[str, deque[Exception]] = defaultdict(deque)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------------------ test helpers

    def fail_next(self, operation: str, error: Exception) -> None:
        """Make the next call to ``operation`` (e.g. ``"create_attendee"``) raise ``error``."""
        with self._lock:
            self._failures[operation].append(error)

    def expire_meeting(self, meeting_id: str) -> None:
        """End a meeting the way Chime ends an empty one: it disappears without DeleteMeeting."""
        with self._lock:
            self._end_meeting(meeting_id)

    def attendees_in(self, meeting_id: str) -> list[FakeAttendee]:
        with self._lock:
            return [a for a in self.attendees.values() if a.meeting_id == meeting_id]

    def meeting_by_external_id(self, external_meeting_id: str) -> FakeMeeting | None:
        with self._lock:
            for m in self.meetings.values():
                if m.external_meeting_id == external_meeting_id:
                    return m
            return None

    def live_resources(self) -> int:
        """How many meetings, attendees and pipelines would still be billing."""
        with self._lock:
            running = sum(1 for p in self.pipelines.values() if p.status in ("InProgress", "Paused"))
            return len(self.meetings) + len(self.attendees) + running

    # ------------------------------------------------------------------------------ internals

    def _enter(self, operation: str) -> None:
        self.calls.append(operation)
        pending = self._failures.get(operation)
        if pending:
            raise pending.popleft()

    def _live_meeting(self, meeting_id: str) -> FakeMeeting:
        meeting = self.meetings.get(meeting_id)
        if meeting is None:
            raise NotFound("the meeting no longer exists", operation="fake")
        return meeting

    def _end_meeting(self, meeting_id: str) -> None:
        if self.meetings.pop(meeting_id, None) is None:
            return
        self.deleted_meetings.add(meeting_id)
        for attendee_id in [a.attendee_id for a in self.attendees.values() if a.meeting_id == meeting_id]:
            del self.attendees[attendee_id]
            self.deleted_attendees.add(attendee_id)
        for pipeline in self.pipelines.values():
            if pipeline.meeting_id == meeting_id:
                pipeline.status = "Stopped"  # a capture pipeline stops when its meeting ends

    # ------------------------------------------------------------------------------ the port

    def create_meeting(self, *, client_request_token: str, external_meeting_id: str) -> Meeting:
        with self._lock:
            self._enter("create_meeting")
            if not _TOKEN.fullmatch(client_request_token):
                raise Invalid("client request token must be 2-64 letters, digits, '-' or '_'")
            _check_external_id(external_meeting_id, "external meeting id")
            existing = self._by_token.get(client_request_token)
            if existing is not None:
                return existing.to_meeting()
            meeting_id = str(uuid.uuid4())
            meeting = FakeMeeting(
                meeting_id=meeting_id,
                external_meeting_id=external_meeting_id,
                client_request_token=client_request_token,
                media_region=self.media_region,
                meeting_arn=f"arn:aws:chime:{self.media_region}:{self.account_id}:meeting/{meeting_id}",
            )
            self.meetings[meeting_id] = meeting
            self._by_token[client_request_token] = meeting
            return meeting.to_meeting()

    def create_attendee(self, meeting_id: str, external_user_id: str, audio: Audio) -> Attendee:
        with self._lock:
            self._enter("create_attendee")
            _check_external_id(external_user_id, "external user id")
            self._live_meeting(meeting_id)
            for existing in self.attendees.values():
                if existing.meeting_id == meeting_id and existing.external_user_id == external_user_id:
                    return existing.to_attendee()
            attendee_id = str(uuid.uuid4())
            attendee = FakeAttendee(
                meeting_id=meeting_id,
                attendee_id=attendee_id,
                external_user_id=external_user_id,
                join_token=_join_token(attendee_id),
                audio=audio,
                audio_history=[audio],
            )
            self.attendees[attendee_id] = attendee
            return attendee.to_attendee()

    def update_attendee_audio(self, meeting_id: str, attendee_id: str, audio: Audio) -> None:
        with self._lock:
            self._enter("update_attendee_audio")
            self._live_meeting(meeting_id)
            attendee = self.attendees.get(attendee_id)
            if attendee is None or attendee.meeting_id != meeting_id:
                raise NotFound("the attendee no longer exists", operation="fake")
            attendee.audio = audio
            attendee.audio_history.append(audio)

    def delete_attendee(self, meeting_id: str, attendee_id: str) -> None:
        with self._lock:
            self._enter("delete_attendee")
            attendee = self.attendees.get(attendee_id)
            if attendee is None or attendee.meeting_id != meeting_id:
                return
            del self.attendees[attendee_id]
            self.deleted_attendees.add(attendee_id)

    def delete_meeting(self, meeting_id: str) -> None:
        with self._lock:
            self._enter("delete_meeting")
            self._end_meeting(meeting_id)

    def start_recording(self, meeting: Meeting, sink_arn: str, *, client_request_token: str | None = None) -> str:
        with self._lock:
            self._enter("start_recording")
            if not meeting.meeting_arn:
                raise Invalid("cannot record a meeting whose ARN is unknown")
            if not sink_arn.startswith("arn:"):
                raise Invalid("recording sink must be an S3 bucket ARN")
            self._live_meeting(meeting.meeting_id)
            token = client_request_token or meeting.meeting_id
            existing = self._pipeline_by_token.get(token)
            if existing is not None:
                return existing.pipeline_id
            pipeline = FakePipeline(
                pipeline_id=str(uuid.uuid4()),
                meeting_id=meeting.meeting_id,
                source_arn=meeting.meeting_arn,
                sink_arn=sink_arn,
            )
            self.pipelines[pipeline.pipeline_id] = pipeline
            self._pipeline_by_token[token] = pipeline
            return pipeline.pipeline_id

    def delete_pipeline(self, pipeline_id: str) -> None:
        with self._lock:
            self._enter("delete_pipeline")
            if self.pipelines.pop(pipeline_id, None) is not None:
                self.deleted_pipelines.add(pipeline_id)

    # ------------------------------------------------------------------------ live transcript

    def start_streams(self, meeting_arn: str, pool_arn: str, token: str) -> str:
        """A media stream pipeline (the meeting's attendees' audio into the Kinesis Video pool)."""
        with self._lock:
            self._enter("start_streams")
            if not _TOKEN.fullmatch(token):
                raise Invalid("client request token must be 2-64 letters, digits, '-' or '_'")
            meeting_id = meeting_arn.rsplit("/", 1)[-1]
            self._live_meeting(meeting_id)
            return self._media_pipeline(token, meeting_id, meeting_arn, pool_arn, "streams")

    def start_insights(self, request: InsightsRequest) -> str:
        """A media insights pipeline; ``insights[id]`` keeps the request it was started with."""
        with self._lock:
            self._enter("start_insights")
            if not _TOKEN.fullmatch(request.token):
                raise Invalid("client request token must be 2-64 letters, digits, '-' or '_'")
            pipeline_id = self._media_pipeline(request.token, "", request.agent.arn, request.configuration_arn, "insights")
            self.insights[pipeline_id] = request
            return pipeline_id

    def _media_pipeline(self, token: str, meeting_id: str, source: str, sink: str, kind: str) -> str:
        existing = self._pipeline_by_token.get(f"{kind}:{token}")
        if existing is not None:
            return existing.pipeline_id
        pipeline = FakePipeline(pipeline_id=str(uuid.uuid4()), meeting_id=meeting_id, source_arn=source, sink_arn=sink)
        self.pipelines[pipeline.pipeline_id] = pipeline
        self._pipeline_by_token[f"{kind}:{token}"] = pipeline
        return pipeline.pipeline_id

    def set_paused(self, pipeline_id: str, paused: bool) -> None:
        with self._lock:
            self._enter("set_paused")
            pipeline = self.pipelines.get(pipeline_id)
            if pipeline is None:
                raise NotFound("the media pipeline no longer exists", operation="fake")
            pipeline.status = "Paused" if paused else "InProgress"

    def delete_media_pipeline(self, pipeline_id: str) -> None:
        with self._lock:
            self._enter("delete_media_pipeline")
            if self.pipelines.pop(pipeline_id, None) is not None:
                self.deleted_pipelines.add(pipeline_id)

    def media_pipelines(self) -> list[str]:
        with self._lock:
            self._enter("media_pipelines")
            return list(self.pipelines)
