"""ChimeMeetingProvider against real botocore clients with Stubber: exact request shapes, error mapping."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError
from botocore.stub import Stubber

from chalicelib.adapters.chime import ChimeMeetingProvider, meeting_arn
from chalicelib.domain.errors import Conflict, Invalid, NotFound, RateLimited, Unavailable
from chalicelib.domain.voice import Audio, Meeting
from tests.support.model_validator import enforce_model

pytestmark = pytest.mark.integration

MEETING_ID = "4b0b7c1e-2a3f-4d5e-8f90-123456789abc"
ATTENDEE_ID = "9f8e7d6c-5b4a-4321-9abc-def012345678"
PIPELINE_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
ACCOUNT = "111122223333"
ARN = f"arn:aws:chime:us-east-1:{ACCOUNT}:meeting/{MEETING_ID}"
SINK = "arn:aws:s3:::coaching-recordings"
TOKEN = "ZjhhZDYwZTQtYmQ1Ni00NTVlLWIzZjUtYjE1NmE5MTJiZmQ0OmZha2U"
AUDIO_ONLY_FEATURES = {"Video": {"MaxResolution": "None"}, "Content": {"MaxResolution": "None"}}


def _meetings_client() -> Any:
    return enforce_model(
        boto3.client("chime-sdk-meetings", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    )


def _pipelines_client() -> Any:
    return enforce_model(
        boto3.client("chime-sdk-media-pipelines", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    )


@pytest.fixture
def meetings() -> Iterator[Stubber]:
    with Stubber(_meetings_client()) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def pipelines() -> Iterator[Stubber]:
    with Stubber(_pipelines_client()) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def provider(meetings: Stubber, pipelines: Stubber) -> ChimeMeetingProvider:
    return ChimeMeetingProvider(
        "us-east-1",
        meetings_client=meetings.client,  # type: ignore[arg-type]
        pipelines_client=pipelines.client,  # type: ignore[arg-type]
    )


def _meeting_response(arn: str | None = ARN, region: str = "us-east-1") -> dict[str, Any]:
    meeting: dict[str, Any] = {
        "MeetingId": MEETING_ID,
        "ExternalMeetingId": "t1:w1:contact",
        "MediaRegion": region,
        "MediaPlacement": {"AudioHostUrl": "example.k.m2.ue1.app.chime.aws:3478"},
    }
    if arn is not None:
        meeting["MeetingArn"] = arn
    return {"Meeting": meeting}


# ----------------------------------------------------------------------------------------- laziness


def test_constructing_the_provider_creates_no_client() -> None:
    with mock.patch("boto3.client") as factory, mock.patch("boto3.session.Session") as session_cls:
        ChimeMeetingProvider("us-east-1")
    factory.assert_not_called()
    session_cls.assert_not_called()


def test_first_use_creates_each_client_once_and_reuses_it(meetings: Stubber) -> None:
    meetings.add_response("delete_meeting", {}, {"MeetingId": MEETING_ID})
    meetings.add_response("delete_meeting", {}, {"MeetingId": MEETING_ID})
    with mock.patch("boto3.client", return_value=meetings.client) as factory:
        provider = ChimeMeetingProvider("eu-west-2", api_region="us-east-1")
        provider.delete_meeting(MEETING_ID)
        provider.delete_meeting(MEETING_ID)
    factory.assert_called_once()
    args, kwargs = factory.call_args
    assert args == ("chime-sdk-meetings",)
    assert kwargs["region_name"] == "us-east-1"  # control plane, not the media region


def test_an_injected_session_builds_the_clients() -> None:
    session = mock.Mock()
    with mock.patch("boto3.client") as factory:
        provider = ChimeMeetingProvider("us-east-1", session=session)
        provider._pipelines_client()
    factory.assert_not_called()
    assert session.client.call_args.args == ("chime-sdk-media-pipelines",)


# ----------------------------------------------------------------------------------------- meetings


def test_create_meeting_sends_the_exact_request(meetings: Stubber, provider: ChimeMeetingProvider) -> None:
    meetings.add_response(
        "create_meeting",
        _meeting_response(),
        {
            "ClientRequestToken": "t1-w1-contact-1",
            "MediaRegion": "us-east-1",
            "ExternalMeetingId": "t1:w1:contact",
            "MeetingFeatures": AUDIO_ONLY_FEATURES,
        },
    )
    meeting = provider.create_meeting(client_request_token="t1-w1-contact-1", external_meeting_id="t1:w1:contact")
    assert meeting == Meeting(
        meeting_id=MEETING_ID,
        media_region="us-east-1",
        meeting_arn=ARN,
        media_placement={"AudioHostUrl": "example.k.m2.ue1.app.chime.aws:3478"},
    )


def test_create_meeting_without_audio_only_features(meetings: Stubber) -> None:
    meetings.add_response(
        "create_meeting",
        _meeting_response(),
        {"ClientRequestToken": "tok-1", "MediaRegion": "us-east-1", "ExternalMeetingId": "t1:w1:contact"},
    )
    provider = ChimeMeetingProvider("us-east-1", meetings_client=meetings.client, audio_only=False)  # type: ignore[arg-type]
    assert provider.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:contact").meeting_id


def test_meeting_arn_is_built_when_the_response_lacks_it(meetings: Stubber) -> None:
    meetings.add_response("create_meeting", _meeting_response(arn=None), None)
    provider = ChimeMeetingProvider(
        "us-east-1",
        meetings_client=meetings.client,  # type: ignore[arg-type]
        account_id=ACCOUNT,
    )
    meeting = provider.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:contact")
    assert meeting.meeting_arn == ARN


def test_meeting_arn_partitions() -> None:
    assert meeting_arn("us-gov-west-1", "1", "m").startswith("arn:aws-us-gov:chime:us-gov-west-1:1:")
    assert meeting_arn("cn-north-1", "1", "m").startswith("arn:aws-cn:")


def test_meeting_arn_stays_empty_without_response_field_or_account(meetings: Stubber, provider: ChimeMeetingProvider) -> None:
    meetings.add_response("create_meeting", _meeting_response(arn=None), None)
    meeting = provider.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:contact")
    assert meeting.meeting_arn == ""
    with pytest.raises(Invalid):
        provider.start_recording(meeting, SINK)


@pytest.mark.parametrize(
    ("token", "external_id"),
    [("a", "t1:w1"), ("bad token!", "t1:w1"), ("tok-1", "x"), ("tok-1", "x" * 65), ("tok-1", "AWS:tenant:w1")],
)
def test_create_meeting_refuses_what_chime_would_refuse_without_calling_it(
    meetings: Stubber, provider: ChimeMeetingProvider, token: str, external_id: str
) -> None:
    with pytest.raises(Invalid):
        provider.create_meeting(client_request_token=token, external_meeting_id=external_id)


def test_delete_meeting(meetings: Stubber, provider: ChimeMeetingProvider) -> None:
    meetings.add_response("delete_meeting", {}, {"MeetingId": MEETING_ID})
    provider.delete_meeting(MEETING_ID)


def test_delete_meeting_that_is_gone_succeeds(meetings: Stubber, provider: ChimeMeetingProvider) -> None:
    meetings.add_client_error(
        "delete_meeting", "NotFoundException", "meeting not found", 404, expected_params={"MeetingId": MEETING_ID}
    )
    provider.delete_meeting(MEETING_ID)


# ----------------------------------------------------------------------------------------- attendees


@pytest.mark.parametrize("audio", list(Audio))
def test_create_attendee_with_each_audio_capability(meetings: Stubber, provider: ChimeMeetingProvider, audio: Audio) -> None:
    capabilities = {"Audio": audio.value, "Video": "None", "Content": "None"}
    meetings.add_response(
        "create_attendee",
        {
            "Attendee": {
                "ExternalUserId": "t1:supervisor-1",
                "AttendeeId": ATTENDEE_ID,
                "JoinToken": TOKEN,
                "Capabilities": capabilities,
            }
        },
        {"MeetingId": MEETING_ID, "ExternalUserId": "t1:supervisor-1", "Capabilities": capabilities},
    )
    attendee = provider.create_attendee(MEETING_ID, "t1:supervisor-1", audio)
    assert (attendee.attendee_id, attendee.join_token, attendee.audio) == (ATTENDEE_ID, TOKEN, audio)


def test_create_attendee_reports_what_chime_granted(meetings: Stubber, provider: ChimeMeetingProvider) -> None:
    # ExternalUserId is an idempotency token: a repeat returns the existing attendee as it is.
    meetings.add_response(
        "create_attendee",
        {
            "Attendee": {
                "AttendeeId": ATTENDEE_ID,
                "JoinToken": TOKEN,
                "Capabilities": {"Audio": "Receive", "Video": "None", "Content": "None"},
            }
        },
        None,
    )
    assert provider.create_attendee(MEETING_ID, "t1:supervisor-1", Audio.SEND).audio is Audio.RECEIVE


def test_create_attendee_in_an_ended_meeting_is_not_found(meetings: Stubber, provider: ChimeMeetingProvider) -> None:
    meetings.add_client_error("create_attendee", "NotFoundException", "The meeting has ended", 404)
    with pytest.raises(NotFound):
        provider.create_attendee(MEETING_ID, "t1:agent-1", Audio.SEND_RECEIVE)


@pytest.mark.parametrize("audio", [Audio.SEND_RECEIVE, Audio.RECEIVE])
def test_update_attendee_audio(meetings: Stubber, provider: ChimeMeetingProvider, audio: Audio) -> None:
    capabilities = {"Audio": audio.value, "Video": "None", "Content": "None"}
    meetings.add_response(
        "update_attendee_capabilities",
        {"Attendee": {"AttendeeId": ATTENDEE_ID, "Capabilities": capabilities}},
        {"MeetingId": MEETING_ID, "AttendeeId": ATTENDEE_ID, "Capabilities": capabilities},
    )
    provider.update_attendee_audio(MEETING_ID, ATTENDEE_ID, audio)


def test_update_conflict_maps_to_conflict(meetings: Stubber, provider: ChimeMeetingProvider) -> None:
    meetings.add_client_error("update_attendee_capabilities", "ConflictException", "busy", 409)
    with pytest.raises(Conflict):
        provider.update_attendee_audio(MEETING_ID, ATTENDEE_ID, Audio.SEND_RECEIVE)


def test_delete_attendee(meetings: Stubber, provider: ChimeMeetingProvider) -> None:
    meetings.add_response("delete_attendee", {}, {"MeetingId": MEETING_ID, "AttendeeId": ATTENDEE_ID})
    provider.delete_attendee(MEETING_ID, ATTENDEE_ID)


def test_delete_attendee_that_is_gone_succeeds(meetings: Stubber, provider: ChimeMeetingProvider) -> None:
    meetings.add_client_error(
        "delete_attendee",
        "NotFoundException",
        "attendee not found",
        404,
        expected_params={"MeetingId": MEETING_ID, "AttendeeId": ATTENDEE_ID},
    )
    provider.delete_attendee(MEETING_ID, ATTENDEE_ID)


# ----------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ThrottlingException", 429, "unavailable"),
        ("ServiceUnavailableException", 503, "unavailable"),
        ("ServiceFailureException", 500, "unavailable"),
        ("LimitExceededException", 400, "rate_limited"),
    ],
)
def test_push_back_is_retryable(meetings: Stubber, provider: ChimeMeetingProvider, code: str, status: int, expected: str) -> None:
    """Throttling that outlasted the SDK's retries is `unavailable`; an account quota `rate_limited`."""
    meetings.add_client_error("create_attendee", code, "slow down, secret-ish detail", status)
    with pytest.raises((RateLimited, Unavailable)) as caught:
        provider.create_attendee(MEETING_ID, "t1:agent-1", Audio.SEND_RECEIVE)
    err = caught.value
    assert err.retryable and err.code == expected
    assert "secret-ish" not in err.message and TOKEN not in str(err.to_dict())


def test_throttled_delete_is_not_swallowed(meetings: Stubber, provider: ChimeMeetingProvider) -> None:
    meetings.add_client_error("delete_meeting", "ThrottlingException", "slow down", 429)
    with pytest.raises(Unavailable):
        provider.delete_meeting(MEETING_ID)


def test_bad_request_becomes_invalid(meetings: Stubber, provider: ChimeMeetingProvider) -> None:
    meetings.add_client_error("create_meeting", "BadRequestException", "MediaRegion is invalid", 400)
    with pytest.raises(Invalid) as caught:
        provider.create_meeting(client_request_token="tok-1", external_meeting_id="t1:w1:contact")
    assert "MediaRegion" not in caught.value.message


@pytest.mark.parametrize("code", ["ForbiddenException", "UnauthorizedException", "UnprocessableEntityException"])
def test_other_errors_are_re_raised(meetings: Stubber, provider: ChimeMeetingProvider, code: str) -> None:
    meetings.add_client_error("delete_attendee", code, "no", 403)
    with pytest.raises(ClientError) as caught:
        provider.delete_attendee(MEETING_ID, ATTENDEE_ID)
    assert caught.value.response["Error"]["Code"] == code


def test_parameter_validation_becomes_invalid_without_echoing_values() -> None:
    client = mock.Mock()
    client.update_attendee_capabilities.side_effect = ParamValidationError(
        report=f"Invalid type for parameter JoinToken, value: {TOKEN}"
    )
    provider = ChimeMeetingProvider("us-east-1", meetings_client=client)
    with pytest.raises(Invalid) as caught:
        provider.update_attendee_audio(MEETING_ID, ATTENDEE_ID, Audio.RECEIVE)
    assert TOKEN not in str(caught.value.to_dict())


# ----------------------------------------------------------------------------------------- recording

_CAPTURE_REQUEST = {
    "SourceType": "ChimeSdkMeeting",
    "SourceArn": ARN,
    "SinkType": "S3Bucket",
    "SinkArn": SINK,
    "ClientRequestToken": MEETING_ID,
    "ChimeSdkMeetingConfiguration": {
        "ArtifactsConfiguration": {
            "Audio": {"MuxType": "AudioOnly"},
            "Video": {"State": "Disabled"},
            "Content": {"State": "Disabled"},
        }
    },
}


def test_start_recording_creates_an_audio_only_capture_pipeline(pipelines: Stubber, provider: ChimeMeetingProvider) -> None:
    pipelines.add_response(
        "create_media_capture_pipeline",
        {
            "MediaCapturePipeline": {
                "MediaPipelineId": PIPELINE_ID,
                "MediaPipelineArn": f"arn:aws:chime:us-east-1:{ACCOUNT}:media-pipeline/{PIPELINE_ID}",
                "SourceType": "ChimeSdkMeeting",
                "SourceArn": ARN,
                "Status": "Initializing",
                "SinkType": "S3Bucket",
                "SinkArn": SINK,
            }
        },
        _CAPTURE_REQUEST,
    )
    meeting = Meeting(meeting_id=MEETING_ID, media_region="us-east-1", meeting_arn=ARN)
    assert provider.start_recording(meeting, SINK) == PIPELINE_ID


def test_start_recording_refuses_a_sink_that_is_not_an_arn(provider: ChimeMeetingProvider) -> None:
    meeting = Meeting(meeting_id=MEETING_ID, media_region="us-east-1", meeting_arn=ARN)
    with pytest.raises(Invalid):
        provider.start_recording(meeting, "coaching-recordings")


@pytest.mark.parametrize(
    ("code", "status"),
    [("ThrottledClientException", 429), ("ResourceLimitExceededException", 400), ("ServiceFailureException", 500)],
)
def test_pipeline_push_back_is_retryable(pipelines: Stubber, provider: ChimeMeetingProvider, code: str, status: int) -> None:
    pipelines.add_client_error("create_media_capture_pipeline", code, "slow down", status)
    meeting = Meeting(meeting_id=MEETING_ID, media_region="us-east-1", meeting_arn=ARN)
    with pytest.raises((RateLimited, Unavailable)) as caught:
        provider.start_recording(meeting, SINK)
    assert caught.value.retryable


def test_delete_pipeline(pipelines: Stubber, provider: ChimeMeetingProvider) -> None:
    pipelines.add_response("delete_media_capture_pipeline", {}, {"MediaPipelineId": PIPELINE_ID})
    provider.delete_pipeline(PIPELINE_ID)


def test_delete_pipeline_that_is_gone_succeeds(pipelines: Stubber, provider: ChimeMeetingProvider) -> None:
    pipelines.add_client_error(
        "delete_media_capture_pipeline",
        "NotFoundException",
        "no such pipeline",
        404,
        expected_params={"MediaPipelineId": PIPELINE_ID},
    )
    provider.delete_pipeline(PIPELINE_ID)
