"""The Amazon Chime SDK behind the voice port (:class:`chalicelib.services.ports.MeetingProvider`).

Voice coaching needs two kinds of rooms (contact room, coach room; see docs/voice.md) and, when a
tenant's policy asks for it, a recording of the coach room. This adapter is the only code that
speaks to the Chime SDK Meetings and Media Pipelines APIs. It keeps three promises to the service
layer:

- Nothing is created at import or construction time: the boto3 clients are built on first use, so
  importing ``app`` (and ``chalice package``) needs no AWS access and pays no client start-up cost.
- Teardown is idempotent: deleting an attendee, meeting or pipeline that is already gone succeeds.
- Failures arrive as the product's own errors: push-back from Chime (throttling, limits, outages) as
  :class:`RateLimited` (retryable), a request Chime refuses as :class:`Invalid`, a meeting that has
  ended as :class:`NotFound`. Anything else (permissions, bugs) is logged and re-raised untouched.
  Join tokens and external ids are never logged: Chime marks them sensitive.

API shapes are those of botocore's service models ``chime-sdk-meetings`` and
``chime-sdk-media-pipelines`` (2021-07-15).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from botocore.exceptions import ClientError, ParamValidationError

from chalicelib.adapters import sdk_budget
from chalicelib.domain.errors import Conflict, Invalid, NotFound, RateLimited, Unavailable
from chalicelib.domain.transcript import InsightsRequest
from chalicelib.domain.voice import Attendee, Audio, Meeting

if TYPE_CHECKING:
    from boto3.session import Session
    from mypy_boto3_chime_sdk_media_pipelines import ChimeSDKMediaPipelinesClient
    from mypy_boto3_chime_sdk_media_pipelines.type_defs import CreateMediaCapturePipelineRequestTypeDef
    from mypy_boto3_chime_sdk_meetings import ChimeSDKMeetingsClient
    from mypy_boto3_chime_sdk_meetings.literals import MediaCapabilitiesType
    from mypy_boto3_chime_sdk_meetings.type_defs import CreateMeetingRequestTypeDef

log = logging.getLogger(__name__)

# Error codes meaning "not now": the same request may succeed later. Meetings says
# ThrottlingException / LimitExceededException, Media Pipelines says ThrottledClientException /
# ResourceLimitExceededException; both say ServiceUnavailable / ServiceFailure.
# Throttling that outlasted the SDK's retries and the service's own failures: `unavailable`.
_UNAVAILABLE = frozenset(
    {"ThrottlingException", "ThrottledClientException", "ServiceUnavailableException", "ServiceFailureException"}
)
# A quota of the account (meetings, pipelines): `rate_limited` until one frees up.
_RETRYABLE = frozenset({"LimitExceededException", "ResourceLimitExceededException"})
_NOT_FOUND = "NotFoundException"

_CAPABILITY: dict[Audio, MediaCapabilitiesType] = {
    Audio.SEND_RECEIVE: "SendReceive",
    Audio.SEND: "Send",
    Audio.RECEIVE: "Receive",
    Audio.NONE: "None",
}

# ClientRequestToken: 2-64 of [-_a-zA-Z0-9]. ExternalMeetingId / ExternalUserId: 2-64 characters and
# never starting with the reserved "aws:" prefix (checked case-insensitively, as Chime compares ids).
_TOKEN = re.compile(r"[-_a-zA-Z0-9]{2,64}")


def _check_token(token: str) -> None:
    if not _TOKEN.fullmatch(token):
        raise Invalid("client request token must be 2-64 letters, digits, '-' or '_'")


def _check_external_id(value: str, what: str) -> None:
    if not 2 <= len(value) <= 64:
        raise Invalid(f"{what} must be 2-64 characters")
    if value[:4].lower() == "aws:":
        raise Invalid(f"{what} must not start with 'aws:' (reserved by Chime)")


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def meeting_arn(region: str, account_id: str, meeting_id: str) -> str:
    """The ARN of a Chime SDK meeting, for when a CreateMeeting response did not include it."""
    return f"arn:{_partition(region)}:chime:{region}:{account_id}:meeting/{meeting_id}"


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _request_id(exc: ClientError) -> str:
    return str(exc.response.get("ResponseMetadata", {}).get("RequestId", ""))


def _raise_translated(operation: str, exc: Exception) -> NoReturn:
    """Raise the product error for a failed Chime call, or re-raise ``exc`` when there is none."""
    if isinstance(exc, ParamValidationError):
        # botocore refused the request before sending it; its message may echo parameter values.
        raise Invalid(f"Chime SDK {operation} request has an invalid parameter") from exc
    if not isinstance(exc, ClientError):
        raise exc
    code = _error_code(exc)
    if code in _UNAVAILABLE:
        log.warning("chime %s unavailable: %s (request id %s)", operation, code, _request_id(exc))
        raise Unavailable(
            f"the voice service did not answer in time ({operation}); try again shortly", service="chime", operation=operation
        ) from exc
    if code in _RETRYABLE:
        log.warning("chime %s pushed back: %s (request id %s)", operation, code, _request_id(exc))
        raise RateLimited(
            f"the voice service is busy ({operation}); try again shortly", service="chime", operation=operation
        ) from exc
    if code == "BadRequestException":
        log.info("chime %s refused the request (request id %s)", operation, _request_id(exc))
        raise Invalid(f"the voice service refused the request ({operation})", operation=operation) from exc
    if code == _NOT_FOUND:
        raise NotFound(f"the meeting or attendee no longer exists ({operation})", operation=operation) from exc
    if code == "ConflictException":
        raise Conflict(f"the voice service reported a conflict ({operation})", operation=operation) from exc
    log.error("chime %s failed: %s (request id %s)", operation, code or type(exc).__name__, _request_id(exc))
    raise exc


class ChimeMeetingProvider:
    """:class:`MeetingProvider` on the Chime SDK Meetings and Media Pipelines APIs (boto3).

    ``media_region`` is where the meetings' media is hosted (close to the callers).
    ``api_region`` is the control-plane Region the API calls go to; the Chime SDK Meetings control
    plane exists in fewer Regions than media does, so it defaults to the session's Region rather than
    to ``media_region``. ``account_id`` is only used to build a meeting ARN when a CreateMeeting
    response lacks ``MeetingArn`` (current responses include it).
    """

    def __init__(
        self,
        media_region: str,
        *,
        meetings_client: ChimeSDKMeetingsClient | None = None,
        pipelines_client: ChimeSDKMediaPipelinesClient | None = None,
        session: Session | None = None,
        api_region: str | None = None,
        account_id: str = "",
        audio_only: bool = True,
    ) -> None:
        self.media_region = media_region
        self._meetings = meetings_client
        self._pipelines = pipelines_client
        self._session = session
        self._api_region = api_region
        self._account_id = account_id
        self._audio_only = audio_only
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------------- clients

    def _client(self, service: str) -> Any:
        import boto3

        config = sdk_budget.CHIME.config()
        factory = self._session.client if self._session is not None else boto3.client
        return factory(service, region_name=self._api_region, config=config)  # type: ignore[call-overload]

    def _meetings_client(self) -> ChimeSDKMeetingsClient:
        client = self._meetings
        if client is None:
            with self._lock:  # client creation is not thread-safe; the local stack runs handlers in threads
                if self._meetings is None:
                    self._meetings = self._client("chime-sdk-meetings")
                client = self._meetings
        assert client is not None
        return client

    def _pipelines_client(self) -> ChimeSDKMediaPipelinesClient:
        client = self._pipelines
        if client is None:
            with self._lock:
                if self._pipelines is None:
                    self._pipelines = self._client("chime-sdk-media-pipelines")
                client = self._pipelines
        assert client is not None
        return client

    # ----------------------------------------------------------------------------------- meetings

    def create_meeting(self, *, client_request_token: str, external_meeting_id: str) -> Meeting:
        """Create (or, for a repeated token, find again) a meeting hosted in ``media_region``."""
        _check_token(client_request_token)
        _check_external_id(external_meeting_id, "external meeting id")
        params: CreateMeetingRequestTypeDef = {
            "ClientRequestToken": client_request_token,
            "MediaRegion": self.media_region,
            "ExternalMeetingId": external_meeting_id,
        }
        if self._audio_only:
            # Rooms carry voice only; refusing video and screen share keeps them cheap and simple.
            params["MeetingFeatures"] = {"Video": {"MaxResolution": "None"}, "Content": {"MaxResolution": "None"}}
        try:
            response = self._meetings_client().create_meeting(**params)
        except (ClientError, ParamValidationError) as exc:
            _raise_translated("CreateMeeting", exc)
        meeting = response.get("Meeting", {})
        meeting_id = meeting.get("MeetingId", "")
        if not meeting_id:
            raise RuntimeError("CreateMeeting returned no MeetingId")
        region = meeting.get("MediaRegion") or self.media_region
        arn = meeting.get("MeetingArn", "")
        if not arn and self._account_id:
            arn = meeting_arn(self._api_region or region, self._account_id, meeting_id)
        # The Chime client SDKs need the media URLs to join, so they travel with the room.
        placement = {str(k): str(v) for k, v in (meeting.get("MediaPlacement") or {}).items() if v}
        return Meeting(meeting_id=meeting_id, media_region=region, meeting_arn=arn, media_placement=placement)

    def delete_meeting(self, meeting_id: str) -> None:
        """End the meeting for everyone; a meeting that has already ended is fine."""
        try:
            self._meetings_client().delete_meeting(MeetingId=meeting_id)
        except ClientError as exc:
            if _error_code(exc) == _NOT_FOUND:
                log.debug("chime DeleteMeeting: meeting already gone")
                return
            _raise_translated("DeleteMeeting", exc)
        except ParamValidationError as exc:
            _raise_translated("DeleteMeeting", exc)

    # ---------------------------------------------------------------------------------- attendees

    def create_attendee(self, meeting_id: str, external_user_id: str, audio: Audio) -> Attendee:
        """Add an audio-only attendee. Chime treats ``external_user_id`` as an idempotency token."""
        _check_external_id(external_user_id, "external user id")
        try:
            response = self._meetings_client().create_attendee(
                MeetingId=meeting_id,
                ExternalUserId=external_user_id,
                Capabilities={"Audio": _CAPABILITY[audio], "Video": "None", "Content": "None"},
            )
        except (ClientError, ParamValidationError) as exc:
            _raise_translated("CreateAttendee", exc)
        attendee = response.get("Attendee", {})
        attendee_id = attendee.get("AttendeeId", "")
        join_token = attendee.get("JoinToken", "")
        if not attendee_id or not join_token:
            raise RuntimeError("CreateAttendee returned no AttendeeId or JoinToken")
        granted = attendee.get("Capabilities", {}).get("Audio")
        return Attendee(attendee_id=attendee_id, join_token=join_token, audio=Audio(granted) if granted else audio)

    def update_attendee_audio(self, meeting_id: str, attendee_id: str, audio: Audio) -> None:
        """Change what an attendee may do with audio (barge, back to listening)."""
        try:
            self._meetings_client().update_attendee_capabilities(
                MeetingId=meeting_id,
                AttendeeId=attendee_id,
                Capabilities={"Audio": _CAPABILITY[audio], "Video": "None", "Content": "None"},
            )
        except (ClientError, ParamValidationError) as exc:
            _raise_translated("UpdateAttendeeCapabilities", exc)

    def delete_attendee(self, meeting_id: str, attendee_id: str) -> None:
        """Remove an attendee and revoke their join token; already gone is fine."""
        try:
            self._meetings_client().delete_attendee(MeetingId=meeting_id, AttendeeId=attendee_id)
        except ClientError as exc:
            if _error_code(exc) == _NOT_FOUND:
                log.debug("chime DeleteAttendee: attendee or meeting already gone")
                return
            _raise_translated("DeleteAttendee", exc)
        except ParamValidationError as exc:
            _raise_translated("DeleteAttendee", exc)

    # ---------------------------------------------------------------------------------- recording

    def start_recording(self, meeting: Meeting, sink_arn: str, *, client_request_token: str | None = None) -> str:
        """Start an audio-only media capture pipeline from ``meeting`` into S3; return its id.

        Chime allows one capture pipeline per meeting, so the meeting id is the natural idempotency
        token: a retried call returns the pipeline already started instead of failing.
        """
        if not meeting.meeting_arn:
            raise Invalid("cannot record a meeting whose ARN is unknown")
        if not sink_arn.startswith("arn:"):
            raise Invalid("recording sink must be an S3 bucket ARN")
        token = client_request_token or meeting.meeting_id
        _check_token(token)
        params: CreateMediaCapturePipelineRequestTypeDef = {
            "SourceType": "ChimeSdkMeeting",
            "SourceArn": meeting.meeting_arn,
            "SinkType": "S3Bucket",
            "SinkArn": sink_arn,
            "ClientRequestToken": token,
            "ChimeSdkMeetingConfiguration": {
                "ArtifactsConfiguration": {
                    "Audio": {"MuxType": "AudioOnly"},
                    "Video": {"State": "Disabled"},
                    "Content": {"State": "Disabled"},
                }
            },
        }
        try:
            response = self._pipelines_client().create_media_capture_pipeline(**params)
        except (ClientError, ParamValidationError) as exc:
            _raise_translated("CreateMediaCapturePipeline", exc)
        pipeline_id = response.get("MediaCapturePipeline", {}).get("MediaPipelineId", "")
        if not pipeline_id:
            raise RuntimeError("CreateMediaCapturePipeline returned no MediaPipelineId")
        return pipeline_id

    def delete_pipeline(self, pipeline_id: str) -> None:
        """Stop and delete a media capture pipeline; already gone is fine."""
        try:
            self._pipelines_client().delete_media_capture_pipeline(MediaPipelineId=pipeline_id)
        except ClientError as exc:
            if _error_code(exc) == _NOT_FOUND:
                log.debug("chime DeleteMediaCapturePipeline: pipeline already gone")
                return
            _raise_translated("DeleteMediaCapturePipeline", exc)
        except ParamValidationError as exc:
            _raise_translated("DeleteMediaCapturePipeline", exc)

    # ------------------------------------------------------------------------- live transcript

    def start_streams(self, meeting_arn: str, pool_arn: str, token: str) -> str:
        """A media stream pipeline: each attendee's audio (``IndividualAudio``) from the meeting into
        the Kinesis Video stream pool, two streams reserved (agent and customer). ``token`` makes a
        retried call return the same pipeline."""
        _check_token(token)
        try:
            response = self._pipelines_client().create_media_stream_pipeline(
                Sources=[{"SourceType": "ChimeSdkMeeting", "SourceArn": meeting_arn}],
                Sinks=[
                    {
                        "SinkArn": pool_arn,
                        "SinkType": "KinesisVideoStreamPool",
                        "ReservedStreamCapacity": 2,
                        "MediaStreamType": "IndividualAudio",
                    }
                ],
                ClientRequestToken=token,
            )
        except (ClientError, ParamValidationError) as exc:
            _raise_translated("CreateMediaStreamPipeline", exc)
        pipeline_id = response.get("MediaStreamPipeline", {}).get("MediaPipelineId", "")
        if not pipeline_id:
            raise RuntimeError("CreateMediaStreamPipeline returned no MediaPipelineId")
        return pipeline_id

    def start_insights(self, request: InsightsRequest) -> str:
        """A media insights pipeline on the agent's and the customer's Kinesis Video streams (one
        channel each, PCM), with the tenant and workitem as runtime metadata (every sink record and
        state change event carries them)."""
        _check_token(request.token)

        def stream(start: Any, role: Literal["AGENT", "CUSTOMER"]) -> Any:
            return {
                "StreamArn": start.arn,
                "FragmentNumber": start.fragment,
                "StreamChannelDefinition": {
                    "NumberOfChannels": 1,
                    "ChannelDefinitions": [{"ChannelId": 0, "ParticipantRole": role}],
                },
            }

        try:
            response = self._pipelines_client().create_media_insights_pipeline(
                MediaInsightsPipelineConfigurationArn=request.configuration_arn,
                KinesisVideoStreamSourceRuntimeConfiguration={
                    "Streams": [stream(request.agent, "AGENT"), stream(request.customer, "CUSTOMER")],
                    "MediaEncoding": "pcm",
                    "MediaSampleRate": request.sample_rate,
                },
                MediaInsightsRuntimeMetadata={"tenantId": request.tenant_id, "workitemId": request.workitem_id},
                ClientRequestToken=request.token,
            )
        except (ClientError, ParamValidationError) as exc:
            _raise_translated("CreateMediaInsightsPipeline", exc)
        pipeline_id = response.get("MediaInsightsPipeline", {}).get("MediaPipelineId", "")
        if not pipeline_id:
            raise RuntimeError("CreateMediaInsightsPipeline returned no MediaPipelineId")
        return pipeline_id

    def set_paused(self, pipeline_id: str, paused: bool) -> None:
        try:
            self._pipelines_client().update_media_insights_pipeline_status(
                Identifier=pipeline_id, UpdateStatus="Pause" if paused else "Resume"
            )
        except (ClientError, ParamValidationError) as exc:
            _raise_translated("UpdateMediaInsightsPipelineStatus", exc)

    def delete_media_pipeline(self, pipeline_id: str) -> None:
        """Stop and delete a media stream or insights pipeline; already gone is fine."""
        try:
            self._pipelines_client().delete_media_pipeline(MediaPipelineId=pipeline_id)
        except ClientError as exc:
            if _error_code(exc) == _NOT_FOUND:
                return
            _raise_translated("DeleteMediaPipeline", exc)
        except ParamValidationError as exc:
            _raise_translated("DeleteMediaPipeline", exc)

    def media_pipelines(self) -> list[str]:
        """Every media pipeline of the account in this Region (1 ListMediaPipelines per 100)."""
        found: list[str] = []
        token: str | None = None
        while True:
            try:
                page = self._pipelines_client().list_media_pipelines(MaxResults=100, **({"NextToken": token} if token else {}))
            except (ClientError, ParamValidationError) as exc:
                _raise_translated("ListMediaPipelines", exc)
            found += [p["MediaPipelineId"] for p in page.get("MediaPipelines", []) if p.get("MediaPipelineId")]
            token = page.get("NextToken")
            if not token:
                return found
