"""The live transcript's pipelines tied to the call (docs/product.md W12.7, W12.8, W12.10;
docs/transcript.md): started once agent and customer are both in the contact room and both audio
streams have started, paused and resumed by the agent, reported unavailable when Chime says the
pipeline failed, deleted with the call, swept when left behind. The fake Chime SDK stands in for the
calls (their request shapes are checked against the service model in test_transcript_adapter.py)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from chalicelib.domain.transcript import CallTranscript, PipelineOwner, TranscriptState
from chalicelib.entrypoints import events
from tests.integration.test_voice import sma, sma_event
from tests.support.world import Client, World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).

WID = "wi-v"
ACCOUNT = "111122223333"
CONFIG_ARN = f"arn:aws:chime:us-east-1:{ACCOUNT}:media-insights-pipeline-configuration/coaching-transcripts"
POOL_ARN = f"arn:aws:chime:us-east-1:{ACCOUNT}:media-pipeline-kinesis-video-stream-pool/coaching-calls"


def kvs_arn(n: int) -> str:
    return f"arn:aws:kinesisvideo:us-east-1:{ACCOUNT}:stream/ChimeMediaPipelines-coaching-calls-{n}/176518000000{n}"


def transcribing(w: World) -> World:
    voice = w.services.voice
    voice.settings = msgspec.structs.replace(
        voice.settings, transcript_configuration_arn=CONFIG_ARN, transcript_pool_arn=POOL_ARN, account_id=ACCOUNT
    )
    return w


def state(w: World) -> CallTranscript | None:
    return CallTranscript.load(w.services.coaching.load("t1", WID).voice.get("transcript"))


def stream_start(pipeline_id: str, attendee_id: str, n: int, *, account: str = ACCOUNT) -> dict[str, Any]:
    """``Chime Media Pipeline State Change`` as the Chime SDK guide shows it (values ours)."""
    return {
        "version": "0",
        "id": f"5ee6265a-0a40-104e-d8fd-a3b4bdd7848{n}",
        "detail-type": "Chime Media Pipeline State Change",
        "source": "aws.chime",
        "account": account,
        "time": f"2026-12-08T10:00:0{n}Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventType": "chime:MediaPipelineKinesisVideoStreamStart",
            "timestamp": 1796724000000 + n,
            "meetingId": "1e6bf4f5-f4b5-4917-b8c9-bda45c340706",
            "externalMeetingId": "t1:wi-v:contact",
            "mediaPipelineId": pipeline_id,
            "mediaRegion": "us-east-1",
            "attendeeId": attendee_id,
            "externalUserId": "x",
            "kinesisVideoStreamArn": kvs_arn(n),
            "startFragmentNumber": f"9134385233318143239268206262222059076519190758{n}",
            "startTime": "2026-12-08T10:00:00Z",
        },
    }


def insights_event(pipeline_id: str, kind: str, *, account: str = ACCOUNT) -> dict[str, Any]:
    """``Media Insights State Change`` as the Chime SDK guide shows it (runtime metadata flattened in)."""
    return {
        "version": "0",
        "id": "6ee6265a-0a40-104e-d8fd-a3b4bdd78480",
        "detail-type": "Media Insights State Change",
        "source": "aws.chime",
        "account": account,
        "time": "2026-12-08T10:05:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "version": "0",
            "mediaInsightsPipelineArn": f"arn:aws:chime:us-east-1:{ACCOUNT}:media-pipeline/{pipeline_id}",
            "eventType": kind,
            "tenantId": "t1",
            "workitemId": WID,
            "failureReason": "Access denied when assuming resource access role",
        },
    }


def call(w: World, *, transcribe: bool = True) -> tuple[Client, Client]:
    """A voice call of agent-1 with the customer's phone leg in the contact room, sup-1 monitoring."""
    transcribing(w)
    w.team()
    w.admin(
        "PUT",
        "/admin/policy",
        {"recordCoaching": False, "escalationSeconds": 60, "retentionDays": 30, "transcribeCalls": transcribe},
    )
    w.assign(WID, channel="voice")
    agent, sup = w.connect("agent-1", "agent"), w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId=WID)
    sma(sma_event("NEW_INBOUND_CALL"))
    agent.ok("voice.join", workitemId=WID)
    return agent, sup


def both_streams(w: World) -> str:
    """The two stream start events (customer first); returns the insights pipeline's id."""
    t = state(w)
    assert t is not None
    v = w.services.coaching.load("t1", WID).voice
    agent_attendee, [caller] = v["contact"]["agentAttendeeId"], list(v["callers"].values())
    assert events.on_media_pipeline_event(stream_start(t.stream_pipeline_id, caller, 2)) == {"outcome": "applied"}
    assert "start_insights" not in w.meetings.calls  # the agent's audio has not started yet
    assert events.on_media_pipeline_event(stream_start(t.stream_pipeline_id, agent_attendee, 1)) == {"outcome": "applied"}
    t = state(w)
    assert t is not None and t.state is TranscriptState.RUNNING
    return t.insights_pipeline_id


def test_the_second_stream_start_starts_the_transcript_and_the_end_of_the_call_deletes_it(world: World) -> None:
    call(world)
    t = state(world)
    assert t is not None and t.state is TranscriptState.STARTING
    assert world.meetings.calls.count("start_streams") == 1
    insights = both_streams(world)
    request = world.meetings.insights[insights]
    assert (request.agent.arn, request.customer.arn) == (kvs_arn(1), kvs_arn(2))
    assert (request.tenant_id, request.workitem_id, request.configuration_arn) == ("t1", WID, CONFIG_ARN)
    # Both pipelines are remembered: the sink's records and Chime's events find the call.
    pipelines = world.services.voice.pipelines
    assert pipelines is not None
    for pipeline_id in (t.stream_pipeline_id, insights):
        owner = pipelines.owner(pipeline_id)
        assert owner is not None and (owner.tenant_id, owner.workitem_id) == ("t1", WID)
    # A repeated start event starts nothing more.
    v = world.services.coaching.load("t1", WID).voice
    events.on_media_pipeline_event(stream_start(t.stream_pipeline_id, v["contact"]["agentAttendeeId"], 1))
    assert world.meetings.calls.count("start_insights") == 1
    # The call ends: both pipelines go with the contact room.
    status, _ = world.webhook("workitem.ended", {"workitemId": WID, "endedBy": "customer"})
    assert status == 200
    assert {t.stream_pipeline_id, insights} <= world.meetings.deleted_pipelines
    assert world.meetings.live_resources() == 0


def test_the_agent_pauses_and_resumes_and_supervisors_are_told(world: World) -> None:
    agent, sup = call(world)
    insights = both_streams(world)
    assert agent.ok("voice.pause_transcript", workitemId=WID) == {"workitemId": WID, "state": "paused"}
    assert world.meetings.pipelines[insights].status == "Paused"
    assert agent.ok("voice.pause_transcript", workitemId=WID) == {"workitemId": WID, "state": "paused"}
    assert [e["data"] for e in sup.events("transcript.paused")] == [{"workitemId": WID, "state": "paused"}]
    assert world.meetings.calls.count("set_paused") == 1
    sup.fails("voice.pause_transcript", "forbidden", workitemId=WID)
    assert agent.ok("voice.resume_transcript", workitemId=WID) == {"workitemId": WID, "state": "running"}
    assert world.meetings.pipelines[insights].status == "InProgress"
    assert [e["data"] for e in sup.events("transcript.resumed")] == [{"workitemId": WID, "state": "running"}]
    assert not agent.events("transcript.paused")  # the agent has the ack


def test_pausing_without_a_running_transcript_is_a_conflict(world: World) -> None:
    agent, _ = call(world, transcribe=False)
    assert "start_streams" not in world.meetings.calls  # the tenant's policy is off
    assert state(world) is None
    agent.fails("voice.pause_transcript", "conflict", workitemId=WID)


def test_a_permanent_failure_marks_the_transcript_unavailable_for_agent_and_monitors(world: World) -> None:
    agent, sup = call(world)
    insights = both_streams(world)
    # Another account's event about the same pipeline is refused.
    refused = events.on_media_pipeline_event(
        insights_event(insights, "chime:MediaInsightsPermanentFailure", account="444455556666")
    )
    assert refused == {"outcome": "invalid"}
    assert not sup.events("transcript.unavailable")
    assert events.on_media_pipeline_event(insights_event(insights, "chime:MediaInsightsPermanentFailure")) == {
        "outcome": "applied"
    }
    expected = {"workitemId": WID, "state": "unavailable", "reason": "failed"}
    for client in (agent, sup):
        assert [e["data"] for e in client.events("transcript.unavailable")] == [expected]
    # Told once: a second event changes nothing.
    assert events.on_media_pipeline_event(insights_event(insights, "chime:MediaInsightsStopped")) == {"outcome": "ignored"}
    assert len(sup.events("transcript.unavailable")) == 1


def test_a_pipeline_stopped_after_the_call_ended_is_not_a_failure(world: World) -> None:
    _, sup = call(world)
    insights = both_streams(world)
    world.webhook("workitem.ended", {"workitemId": WID, "endedBy": "agent"})
    assert events.on_media_pipeline_event(insights_event(insights, "chime:MediaInsightsStopped")) == {"outcome": "ignored"}
    assert not sup.events("transcript.unavailable")


def test_the_sweep_deletes_pipelines_left_behind_and_spares_others(world: World) -> None:
    call(world)
    insights = both_streams(world)
    # A pipeline of an ended call whose clean-up failed, and a pipeline that is not this stack's.
    pipelines = world.services.voice.pipelines
    assert pipelines is not None
    meeting = world.services.coaching.load("t1", WID).voice["contact"]["meetingArn"]
    leftover = world.meetings.start_streams(meeting, POOL_ARN, "leftover-token")
    pipelines.remember(leftover, PipelineOwner("t1", "wi-gone", 1_700_000_000), 2_000_000_000)
    foreign = world.meetings.start_streams(meeting, POOL_ARN, "other-token")
    assert world.services.voice.sweep_transcripts() == 1
    assert leftover in world.meetings.deleted_pipelines
    assert foreign in world.meetings.pipelines and insights in world.meetings.pipelines


@pytest.mark.parametrize("account", ["444455556666"])
def test_stream_events_of_another_account_start_nothing(world: World, account: str) -> None:
    call(world)
    t = state(world)
    assert t is not None
    result = events.on_media_pipeline_event(stream_start(t.stream_pipeline_id, "a-1", 1, account=account))
    assert result == {"outcome": "invalid"}
    assert "start_insights" not in world.meetings.calls


def test_a_silence_rule_raises_when_nobody_speaks_while_the_transcript_runs_and_clears_when_someone_does(
    world: World,
) -> None:
    """W11.9: `silence` counts from the newest transcript line, only while the transcript runs (not
    paused); the next line resolves the alert."""
    from chalicelib.domain.transcript import Origin
    from tests.integration.test_transcript import deliver, utterance

    agent, sup = call(world)
    origin = Origin(both_streams(world), "t1", WID)
    world.admin("PUT", "/admin/attention-rules/quiet", {"kind": "silence", "seconds": 20, "severity": 2})
    deliver(world, utterance("u-1", "Let me check that for you.", origin=origin))
    world.deliver(after_seconds=10)
    deliver(world, utterance("u-2", "Still there?", origin=origin))  # spoke again: the clock starts over
    world.deliver(after_seconds=15)
    assert not sup.events("attention.raised")
    world.deliver(after_seconds=6)
    [raised] = [e["data"]["alert"] for e in sup.events("attention.raised")]
    assert (raised["ruleId"], raised["kind"], raised["reason"]) == ("quiet", "silence", "silence 20 s")
    assert not agent.events("attention.raised")
    deliver(world, utterance("u-3", "Sorry, I was looking it up.", origin=origin))
    [cleared] = [e["data"]["alert"] for e in sup.events("attention.cleared")]
    assert (cleared["alertId"], cleared["clearedReason"]) == (raised["alertId"], "resolved")
    # Paused (a card number being read): no silence counts.
    assert agent.ok("voice.pause_transcript", workitemId=WID)["state"] == "paused"
    world.deliver(after_seconds=60)
    assert len(sup.events("attention.raised")) == 1
