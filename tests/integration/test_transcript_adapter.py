"""The live transcript's Chime SDK media pipeline calls (ChimeMeetingProvider) against the real
botocore client with Stubber, every request checked against the service model's max, min, pattern and
enum by tests/support/model_validator.py (Stubber alone checks required members and types)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.adapters.chime import ChimeMeetingProvider
from chalicelib.domain.errors import Invalid, RateLimited, Unavailable
from chalicelib.domain.transcript import InsightsRequest, StreamStart, insights_token
from tests.support.model_validator import ModelViolation, enforce_model

pytestmark = pytest.mark.integration

ACCOUNT = "111122223333"
MEETING_ARN = f"arn:aws:chime:us-east-1:{ACCOUNT}:meeting/4b0b7c1e-2a3f-4d5e-8f90-123456789abc"
POOL_ARN = f"arn:aws:chime:us-east-1:{ACCOUNT}:media-pipeline-kinesis-video-stream-pool/coaching-calls"
CONFIG_ARN = f"arn:aws:chime:us-east-1:{ACCOUNT}:media-insights-pipeline-configuration/coaching-transcripts"
AGENT_STREAM = f"arn:aws:kinesisvideo:us-east-1:{ACCOUNT}:stream/ChimeMediaPipelines-coaching-calls-a1/1765180000000"
CUSTOMER_STREAM = f"arn:aws:kinesisvideo:us-east-1:{ACCOUNT}:stream/ChimeMediaPipelines-coaching-calls-b2/1765180000001"
STREAM_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
INSIGHTS_ID = "1a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
TOKEN = insights_token("t1", "wi-v", STREAM_ID)


@pytest.fixture
def pipelines() -> Iterator[Stubber]:
    client = enforce_model(
        boto3.client("chime-sdk-media-pipelines", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    )
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def provider(pipelines: Stubber) -> ChimeMeetingProvider:
    return ChimeMeetingProvider("us-east-1", pipelines_client=pipelines.client)  # type: ignore[arg-type]


def request(**changes: Any) -> InsightsRequest:
    base: dict[str, Any] = {
        "configuration_arn": CONFIG_ARN,
        "agent": StreamStart(AGENT_STREAM, "91343852333181432392682062622220590765191907586"),
        "customer": StreamStart(CUSTOMER_STREAM, "91343852333181432392682062622220590765191907599"),
        "sample_rate": 48000,
        "tenant_id": "t1",
        "workitem_id": "wi-v",
        "token": TOKEN,
    }
    return InsightsRequest(**(base | changes))


def test_start_streams_asks_for_each_attendees_audio_in_the_pool(pipelines: Stubber, provider: ChimeMeetingProvider) -> None:
    pipelines.add_response(
        "create_media_stream_pipeline",
        {"MediaStreamPipeline": {"MediaPipelineId": STREAM_ID, "Status": "Initializing"}},
        {
            "Sources": [{"SourceType": "ChimeSdkMeeting", "SourceArn": MEETING_ARN}],
            "Sinks": [
                {
                    "SinkArn": POOL_ARN,
                    "SinkType": "KinesisVideoStreamPool",
                    "ReservedStreamCapacity": 2,
                    "MediaStreamType": "IndividualAudio",
                }
            ],
            "ClientRequestToken": TOKEN,
        },
    )
    assert provider.start_streams(MEETING_ARN, POOL_ARN, TOKEN) == STREAM_ID


def test_start_insights_sends_two_channels_pcm_and_the_runtime_metadata(
    pipelines: Stubber, provider: ChimeMeetingProvider
) -> None:
    r = request()
    pipelines.add_response(
        "create_media_insights_pipeline",
        {"MediaInsightsPipeline": {"MediaPipelineId": INSIGHTS_ID, "Status": "Initializing"}},
        {
            "MediaInsightsPipelineConfigurationArn": CONFIG_ARN,
            "KinesisVideoStreamSourceRuntimeConfiguration": {
                "Streams": [
                    {
                        "StreamArn": AGENT_STREAM,
                        "FragmentNumber": r.agent.fragment,
                        "StreamChannelDefinition": {
                            "NumberOfChannels": 1,
                            "ChannelDefinitions": [{"ChannelId": 0, "ParticipantRole": "AGENT"}],
                        },
                    },
                    {
                        "StreamArn": CUSTOMER_STREAM,
                        "FragmentNumber": r.customer.fragment,
                        "StreamChannelDefinition": {
                            "NumberOfChannels": 1,
                            "ChannelDefinitions": [{"ChannelId": 0, "ParticipantRole": "CUSTOMER"}],
                        },
                    },
                ],
                "MediaEncoding": "pcm",
                "MediaSampleRate": 48000,
            },
            "MediaInsightsRuntimeMetadata": {"tenantId": "t1", "workitemId": "wi-v"},
            "ClientRequestToken": TOKEN,
        },
    )
    assert provider.start_insights(r) == INSIGHTS_ID


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"agent": StreamStart(AGENT_STREAM.rsplit("/", 1)[0], "1")}, "StreamArn: does not match the pattern"),
        ({"customer": StreamStart(CUSTOMER_STREAM, "12ab")}, "FragmentNumber: does not match the pattern"),
        ({"sample_rate": 96000}, "MediaSampleRate: value 96000 is above the maximum 48000"),
        ({"configuration_arn": "arn:aws:chime:us-east-1:1:x y"}, "MediaInsightsPipelineConfigurationArn: does not match"),
    ],
)
def test_what_the_service_would_refuse_never_reaches_it(
    provider: ChimeMeetingProvider, changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ModelViolation) as refused:
        provider.start_insights(request(**changes))
    assert any(problem in p for p in refused.value.problems), refused.value.problems


def test_pause_and_resume(pipelines: Stubber, provider: ChimeMeetingProvider) -> None:
    pipelines.add_response("update_media_insights_pipeline_status", {}, {"Identifier": INSIGHTS_ID, "UpdateStatus": "Pause"})
    pipelines.add_response("update_media_insights_pipeline_status", {}, {"Identifier": INSIGHTS_ID, "UpdateStatus": "Resume"})
    provider.set_paused(INSIGHTS_ID, True)
    provider.set_paused(INSIGHTS_ID, False)


def test_delete_is_idempotent(pipelines: Stubber, provider: ChimeMeetingProvider) -> None:
    pipelines.add_response("delete_media_pipeline", {}, {"MediaPipelineId": INSIGHTS_ID})
    pipelines.add_client_error("delete_media_pipeline", "NotFoundException", http_status_code=404)
    provider.delete_media_pipeline(INSIGHTS_ID)
    provider.delete_media_pipeline(INSIGHTS_ID)


def test_listing_follows_every_page(pipelines: Stubber, provider: ChimeMeetingProvider) -> None:
    arn = f"arn:aws:chime:us-east-1:{ACCOUNT}:media-pipeline/"
    pipelines.add_response(
        "list_media_pipelines",
        {"MediaPipelines": [{"MediaPipelineId": STREAM_ID, "MediaPipelineArn": arn + STREAM_ID}], "NextToken": "next"},
        {"MaxResults": 100},
    )
    pipelines.add_response(
        "list_media_pipelines",
        {"MediaPipelines": [{"MediaPipelineId": INSIGHTS_ID, "MediaPipelineArn": arn + INSIGHTS_ID}]},
        {"MaxResults": 100, "NextToken": "next"},
    )
    assert provider.media_pipelines() == [STREAM_ID, INSIGHTS_ID]


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ResourceLimitExceededException", 400, RateLimited),  # 20 active insights pipelines by default
        ("ThrottledClientException", 429, Unavailable),
        ("BadRequestException", 400, Invalid),
    ],
)
def test_push_back_and_refusals_are_the_products_errors(
    pipelines: Stubber, provider: ChimeMeetingProvider, code: str, status: int, error: type[Exception]
) -> None:
    pipelines.add_client_error("create_media_insights_pipeline", code, http_status_code=status)
    with pytest.raises(error):
        provider.start_insights(request())
