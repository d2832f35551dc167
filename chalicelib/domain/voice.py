"""Voice coaching (SPEC "Voice design", S15, B5): rooms, modes and the meeting-provider port.

Chime SDK meetings mix audio centrally, so a whisper cannot be routed inside one meeting: everyone
who can send is heard by everyone. Whisper therefore uses a second *coach room* per coaching session
(supervisor Send, agent Receive); the customer is never in it. See docs/voice.md.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol


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

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "meetingId": self.meeting_id,
            "attendeeId": self.attendee_id,
            "joinToken": self.join_token,
            "mediaRegion": self.media_region,
            "capabilities": {"audio": self.audio.value, "video": "None", "content": "None"},
        }
        if self.media_placement:
            body["mediaPlacement"] = dict(self.media_placement)
        return body


class MeetingProvider(Protocol):
    """The port the voice service drives; a boto3 Chime SDK adapter and a local fake implement it.

    Deleting something that is already gone is not an error (teardown is idempotent).
    """

    def create_meeting(self, *, client_request_token: str, external_meeting_id: str) -> Meeting: ...

    def create_attendee(self, meeting_id: str, external_user_id: str, audio: Audio) -> Attendee: ...

    def update_attendee_audio(self, meeting_id: str, attendee_id: str, audio: Audio) -> None: ...

    def delete_attendee(self, meeting_id: str, attendee_id: str) -> None: ...

    def delete_meeting(self, meeting_id: str) -> None: ...

    def start_recording(self, meeting: Meeting, sink_arn: str) -> str: ...

    def delete_pipeline(self, pipeline_id: str) -> None: ...


_MAX_EXTERNAL_ID = 64


def external_id(*parts: str) -> str:
    """Join ``parts`` into a Chime external id (2-64 chars), hashing the tail when too long."""
    raw = ":".join(parts)
    if len(raw) <= _MAX_EXTERNAL_ID:
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:16]
    return f"{raw[: _MAX_EXTERNAL_ID - 17]}~{digest}"
