"""tests/support/model_validator.py: it refuses what botocore's own validation (and so Stubber) lets
through, reading max, pattern and enum from the real service models."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.support.model_validator import ModelViolation, check, enforce_model, violations

pytestmark = pytest.mark.unit

ACCOUNT = "111122223333"
CONFIG_ARN = f"arn:aws:chime:us-east-1:{ACCOUNT}:media-insights-pipeline-configuration/coaching"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/coaching-transcription"
STREAM_ARN = f"arn:aws:kinesisvideo:us-east-1:{ACCOUNT}:stream/ChimeMediaPipelines-pool-a1/1700000000000"
PIPELINE_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def _client() -> Any:
    return boto3.client("chime-sdk-media-pipelines", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _rule(n: int) -> dict[str, Any]:
    return {"Type": "KeywordMatch", "KeywordMatchConfiguration": {"RuleName": f"rule-{n}", "Keywords": ["refund"]}}


def _configuration(rules: int) -> dict[str, Any]:
    return {
        "MediaInsightsPipelineConfigurationName": "coaching",
        "ResourceAccessRoleArn": ROLE_ARN,
        "RealTimeAlertConfiguration": {"Rules": [_rule(n) for n in range(rules)]},
        "Elements": [{"Type": "KinesisDataStreamSink", "KinesisDataStreamSinkConfiguration": {"InsightsTarget": ROLE_ARN}}],
    }


def _pipeline(**source: Any) -> dict[str, Any]:
    stream = {"StreamArn": STREAM_ARN, "FragmentNumber": "91343852333181432392682062622220590765191907586"}
    stream |= source.pop("stream", {})
    runtime = {
        "Streams": [stream | {"StreamChannelDefinition": {"NumberOfChannels": 1}}],
        "MediaEncoding": "pcm",
        "MediaSampleRate": 48000,
    } | source
    return {"MediaInsightsPipelineConfigurationArn": CONFIG_ARN, "KinesisVideoStreamSourceRuntimeConfiguration": runtime}


def test_a_request_within_the_model_passes() -> None:
    client = _client()
    assert violations(client, "CreateMediaInsightsPipelineConfiguration", _configuration(3)) == []
    assert violations(client, "CreateMediaInsightsPipeline", _pipeline()) == []


def test_a_fourth_alert_rule_is_over_the_list_maximum_that_botocore_lets_through() -> None:
    client = _client()
    problems = violations(client, "CreateMediaInsightsPipelineConfiguration", _configuration(4))
    assert problems == [
        "CreateMediaInsightsPipelineConfiguration.RealTimeAlertConfiguration.Rules: length 4 is above the maximum 3"
    ]
    # botocore's own validation (what Stubber relies on) finds nothing wrong with it.
    with Stubber(client) as stubber:
        stubber.add_response("create_media_insights_pipeline_configuration", {}, _configuration(4))
        client.create_media_insights_pipeline_configuration(**_configuration(4))


def test_a_value_that_breaks_a_pattern_is_refused() -> None:
    problems = violations(_client(), "CreateMediaInsightsPipeline", _pipeline(stream={"FragmentNumber": "12a"}))
    assert problems == [
        "CreateMediaInsightsPipeline.KinesisVideoStreamSourceRuntimeConfiguration.Streams[0].FragmentNumber: "
        "does not match the pattern '^[0-9]+$'"
    ]


def test_a_stream_arn_without_its_creation_time_breaks_the_pattern() -> None:
    problems = violations(_client(), "CreateMediaInsightsPipeline", _pipeline(stream={"StreamArn": STREAM_ARN.rsplit("/", 1)[0]}))
    assert len(problems) == 1 and "StreamArn: does not match the pattern" in problems[0]


def test_patterns_are_not_anchored_unless_they_say_so() -> None:
    # RuleName's pattern is '^[0-9a-zA-Z._-]+' (no '$'): Smithy patterns match anywhere, so a name
    # that starts well passes, and one that starts with a space does not.
    ok, bad = _configuration(1), _configuration(1)
    bad["RealTimeAlertConfiguration"]["Rules"][0]["KeywordMatchConfiguration"]["RuleName"] = " rule"
    ok["RealTimeAlertConfiguration"]["Rules"][0]["KeywordMatchConfiguration"]["RuleName"] = "rule one"
    assert violations(_client(), "CreateMediaInsightsPipelineConfiguration", ok) == []
    assert violations(_client(), "CreateMediaInsightsPipelineConfiguration", bad) != []


def test_enum_min_max_number_string_map_key_and_unknown_members() -> None:
    request = _pipeline(MediaEncoding="aac", MediaSampleRate=96000, Unknown=1)
    request["ClientRequestToken"] = "x" * 65
    request["MediaInsightsRuntimeMetadata"] = {" ": "t1"}
    problems = violations(_client(), "CreateMediaInsightsPipeline", request)
    prefix = "CreateMediaInsightsPipeline.KinesisVideoStreamSourceRuntimeConfiguration"
    assert sorted(problems) == sorted(
        [
            f"{prefix}.MediaEncoding: 'aac' is not one of ['pcm']",
            f"{prefix}.MediaSampleRate: value 96000 is above the maximum 48000",
            f"{prefix}.Unknown: is not a member of KinesisVideoStreamSourceRuntimeConfiguration",
            "CreateMediaInsightsPipeline.ClientRequestToken: length 65 is above the maximum 64",
            "CreateMediaInsightsPipeline.MediaInsightsRuntimeMetadata key ' ': does not match the pattern '.*\\\\S.*'",
        ]
    )


def test_required_members_and_status_enum() -> None:
    problems = violations(_client(), "UpdateMediaInsightsPipelineStatus", {"UpdateStatus": "Stop"})
    assert problems == [
        "UpdateMediaInsightsPipelineStatus.Identifier: is required",
        "UpdateMediaInsightsPipelineStatus.UpdateStatus: 'Stop' is not one of ['Pause', 'Resume']",
    ]


def test_enforced_on_a_client_a_violation_raises_from_the_call_before_stubber_answers() -> None:
    client = enforce_model(_client())
    with Stubber(client) as stubber:
        stubber.add_response("update_media_insights_pipeline_status", {}, {"Identifier": PIPELINE_ID, "UpdateStatus": "Pause"})
        client.update_media_insights_pipeline_status(Identifier=PIPELINE_ID, UpdateStatus="Pause")
        with pytest.raises(ModelViolation) as refused:
            client.update_media_insights_pipeline_status(Identifier=PIPELINE_ID, UpdateStatus="Stop")
        assert refused.value.operation == "UpdateMediaInsightsPipelineStatus"
        stubber.assert_no_pending_responses()


def test_check_raises_with_every_problem() -> None:
    with pytest.raises(ModelViolation) as refused:
        check(_client(), "CreateMediaInsightsPipelineConfiguration", _configuration(5))
    assert refused.value.problems == [
        "CreateMediaInsightsPipelineConfiguration.RealTimeAlertConfiguration.Rules: length 5 is above the maximum 3"
    ]


def test_kinesis_model_too() -> None:
    client = boto3.client("kinesis", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    problems = violations(client, "PutRecord", {"StreamName": "!!!", "Data": b"x", "PartitionKey": "k" * 257})
    assert "PutRecord.PartitionKey: length 257 is above the maximum 256" in problems
    assert any(p.startswith("PutRecord.StreamName: does not match the pattern") for p in problems)
