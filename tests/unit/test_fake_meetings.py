"""FakeMeetingProvider behaves like the Chime SDK where the voice service could tell the difference."""

from __future__ import annotations

import base64
import re
import threading
import uuid

import pytest

from chalicelib.domain.errors import Invalid, NotFound, RateLimited
from chalicelib.domain.voice import Audio
from chalicelib.services.ports import MeetingProvider
from devstack.fake_meetings import FakeMeetingProvider

pytestmark = pytest.mark.unit

SINK = "arn:aws:s3:::coaching-recordings"


@pytest.fixture
def fake() -> FakeMeetingProvider:
    return FakeMeetingProvider(media_region="eu-west-2", account_id="123456789012")


def test_is_a_meeting_provider(fake: FakeMeetingProvider) -> None:
    provider: MeetingProvider = fake
    assert provider is fake


def test_create_meeting_returns_realistic_ids(fake: FakeMeetingProvider) -> None:
    meeting = fake.create_meeting(client_request_token="t1-w1-contact", external_meeting_id="t1:w1:contact")
    assert uuid.UUID(meeting.meeting_id).version == 4
    assert meeting.media_region == "eu-west-2"
    assert meeting.meeting_arn == f"arn:aws:chime:eu-west-2:123456789012:meeting/{meeting.meeting_id}"
    assert fake.meeting_by_external_id("t1:w1:contact") is fake.meetings[meeting.meeting_id]


def test_create_meeting_is_idempotent_per_token(fake: FakeMeetingProvider) -> None:
    first = fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:contact")
    again = fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:contact")
    other = fake.create_meeting(client_request_token="tok-2", external_meeting_id="t1:w1:coach")
    assert first == again and other.meeting_id != first.meeting_id
    assert len(fake.meetings) == 2


def test_a_token_reused_after_deletion_points_at_the_dead_meeting(fake: FakeMeetingProvider) -> None:
    first = fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:coach")
    fake.delete_meeting(first.meeting_id)
    again = fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:coach")
    assert again.meeting_id == first.meeting_id
    with pytest.raises(NotFound):
        fake.create_attendee(again.meeting_id, "t1:sup-1", Audio.SEND)


@pytest.mark.parametrize(
    ("token", "external_id"),
    [("x", "t1:w1"), ("bad token", "t1:w1"), ("tok-1", "t"), ("tok-1", "t" * 65), ("tok-1", "aws:t1:w1")],
)
def test_create_meeting_applies_chime_rules(fake: FakeMeetingProvider, token: str, external_id: str) -> None:
    with pytest.raises(Invalid):
        fake.create_meeting(client_request_token=token, external_meeting_id=external_id)


def test_join_tokens_look_like_chime_tokens(fake: FakeMeetingProvider) -> None:
    meeting = fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:contact")
    attendee = fake.create_attendee(meeting.meeting_id, "t1:agent-1", Audio.SEND_RECEIVE)
    other = fake.create_attendee(meeting.meeting_id, "t1:sup-1", Audio.RECEIVE)
    assert uuid.UUID(attendee.attendee_id).version == 4
    assert len(attendee.join_token) >= 100
    assert re.fullmatch(r"[A-Za-z0-9+/]+", attendee.join_token)
    padded = attendee.join_token + "=" * (-len(attendee.join_token) % 4)
    assert base64.b64decode(padded).decode().startswith(f"{attendee.attendee_id}:")
    assert attendee.join_token != other.join_token


def test_attendees_record_capabilities(fake: FakeMeetingProvider) -> None:
    meeting = fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:contact")
    agent = fake.create_attendee(meeting.meeting_id, "t1:agent-1", Audio.SEND_RECEIVE)
    sup = fake.create_attendee(meeting.meeting_id, "t1:sup-1", Audio.RECEIVE)
    assert agent.audio is Audio.SEND_RECEIVE and sup.audio is Audio.RECEIVE
    assert {a.external_user_id for a in fake.attendees_in(meeting.meeting_id)} == {"t1:agent-1", "t1:sup-1"}
    assert fake.attendees[sup.attendee_id].meeting_id == meeting.meeting_id


def test_create_attendee_is_idempotent_per_external_user(fake: FakeMeetingProvider) -> None:
    meeting = fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:contact")
    first = fake.create_attendee(meeting.meeting_id, "t1:sup-1", Audio.RECEIVE)
    again = fake.create_attendee(meeting.meeting_id, "t1:sup-1", Audio.SEND_RECEIVE)
    assert again == first  # capabilities change only through update_attendee_audio
    assert len(fake.attendees) == 1


def test_create_attendee_in_unknown_meeting_is_not_found(fake: FakeMeetingProvider) -> None:
    with pytest.raises(NotFound):
        fake.create_attendee(str(uuid.uuid4()), "t1:agent-1", Audio.SEND_RECEIVE)


def test_barge_then_listen_updates_audio(fake: FakeMeetingProvider) -> None:
    meeting = fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:contact")
    sup = fake.create_attendee(meeting.meeting_id, "t1:sup-1", Audio.RECEIVE)
    fake.update_attendee_audio(meeting.meeting_id, sup.attendee_id, Audio.SEND_RECEIVE)
    fake.update_attendee_audio(meeting.meeting_id, sup.attendee_id, Audio.RECEIVE)
    record = fake.attendees[sup.attendee_id]
    assert record.audio is Audio.RECEIVE
    assert record.audio_history == [Audio.RECEIVE, Audio.SEND_RECEIVE, Audio.RECEIVE]


def test_update_unknown_attendee_is_not_found(fake: FakeMeetingProvider) -> None:
    meeting = fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:contact")
    with pytest.raises(NotFound):
        fake.update_attendee_audio(meeting.meeting_id, str(uuid.uuid4()), Audio.SEND_RECEIVE)


def test_deletes_are_idempotent(fake: FakeMeetingProvider) -> None:
    meeting = fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:contact")
    sup = fake.create_attendee(meeting.meeting_id, "t1:sup-1", Audio.RECEIVE)
    fake.delete_attendee(meeting.meeting_id, sup.attendee_id)
    fake.delete_attendee(meeting.meeting_id, sup.attendee_id)
    assert fake.deleted_attendees == {sup.attendee_id} and not fake.attendees
    fake.delete_meeting(meeting.meeting_id)
    fake.delete_meeting(meeting.meeting_id)
    fake.delete_attendee(meeting.meeting_id, sup.attendee_id)
    fake.delete_pipeline(str(uuid.uuid4()))
    assert fake.deleted_meetings == {meeting.meeting_id} and not fake.meetings


def test_deleting_a_meeting_removes_its_attendees_and_stops_recording(fake: FakeMeetingProvider) -> None:
    meeting = fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:coach")
    sup = fake.create_attendee(meeting.meeting_id, "t1:sup-1", Audio.SEND)
    agent = fake.create_attendee(meeting.meeting_id, "t1:agent-1", Audio.RECEIVE)
    pipeline_id = fake.start_recording(meeting, SINK)
    fake.delete_meeting(meeting.meeting_id)
    assert fake.deleted_attendees == {sup.attendee_id, agent.attendee_id}
    assert fake.pipelines[pipeline_id].status == "Stopped"
    fake.delete_pipeline(pipeline_id)
    assert fake.live_resources() == 0 and fake.deleted_pipelines == {pipeline_id}


def test_expired_meeting_behaves_like_an_ended_one(fake: FakeMeetingProvider) -> None:
    meeting = fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:contact")
    fake.expire_meeting(meeting.meeting_id)
    assert "delete_meeting" not in fake.calls
    with pytest.raises(NotFound):
        fake.create_attendee(meeting.meeting_id, "t1:agent-1", Audio.SEND_RECEIVE)


def test_start_recording(fake: FakeMeetingProvider) -> None:
    meeting = fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:coach")
    pipeline_id = fake.start_recording(meeting, SINK)
    assert uuid.UUID(pipeline_id).version == 4
    assert fake.start_recording(meeting, SINK) == pipeline_id  # one capture pipeline per meeting
    record = fake.pipelines[pipeline_id]
    assert (record.meeting_id, record.source_arn, record.sink_arn) == (meeting.meeting_id, meeting.meeting_arn, SINK)


def test_start_recording_refuses_bad_input(fake: FakeMeetingProvider) -> None:
    meeting = fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:coach")
    with pytest.raises(Invalid):
        fake.start_recording(meeting, "coaching-recordings")
    with pytest.raises(Invalid):
        fake.start_recording(type(meeting)(meeting.meeting_id, meeting.media_region, ""), SINK)
    fake.delete_meeting(meeting.meeting_id)
    with pytest.raises(NotFound):
        fake.start_recording(meeting, SINK)


def test_fail_next_injects_one_failure(fake: FakeMeetingProvider) -> None:
    fake.fail_next("create_meeting", RateLimited("busy"))
    with pytest.raises(RateLimited):
        fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:contact")
    assert not fake.meetings
    fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:contact")
    assert fake.calls == ["create_meeting", "create_meeting"]


def test_concurrent_creates_with_one_token_make_one_meeting(fake: FakeMeetingProvider) -> None:
    results: list[str] = []
    barrier = threading.Barrier(16)

    def create() -> None:
        barrier.wait()
        meeting = fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:contact")
        results.append(meeting.meeting_id)

    threads = [threading.Thread(target=create) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(fake.meetings) == 1


def test_concurrent_attendees_all_land(fake: FakeMeetingProvider) -> None:
    meeting = fake.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:contact")
    threads = [
        threading.Thread(target=fake.create_attendee, args=(meeting.meeting_id, f"t1:sup-{i}", Audio.RECEIVE)) for i in range(32)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fake.attendees_in(meeting.meeting_id)) == 32
