"""The live transcript's consumer (docs/product.md W12): sink records of the media insights pipeline,
in the shapes AWS's document gives them, through the ``transcript_records`` entry point, on the
in-memory stores and on moto."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from chalicelib.domain.transcript import Origin, PipelineOwner, Speaker
from chalicelib.entrypoints import events
from chalicelib.entrypoints.transcript_payloads import sink_body
from tests.support.world import TRANSCRIPT_STREAM_ARN, Client, World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).

WID = "wi-v"
PIPELINE = "0b9e5f7a-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
ORIGIN = Origin(PIPELINE, "t1", WID)
_sequence = iter(range(1, 10**6))


def utterance(
    uid: str,
    text: str,
    speaker: Speaker = Speaker.CUSTOMER,
    *,
    partial: bool = False,
    sentiment: str | None = "NEUTRAL",
    start: int = 0,
    origin: Origin = ORIGIN,
) -> dict[str, Any]:
    return sink_body(
        origin,
        uid,
        speaker,
        text,
        partial=partial,
        sentiment=None if partial else sentiment,
        start_ms=start,
        end_ms=start + 1500,
        at="2026-12-08T10:00:05.120Z",
    )


def kinesis(*bodies: dict[str, Any] | bytes, stream: str = TRANSCRIPT_STREAM_ARN) -> dict[str, Any]:
    """A Lambda event from the sink stream (Kinesis's record envelope, data in base64)."""
    records = []
    for body in bodies:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        sequence = f"4959{next(_sequence):020d}"
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": PIPELINE,
                    "sequenceNumber": sequence,
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": 1796724005.12,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{sequence}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::111122223333:role/transcript",
                "awsRegion": "us-east-1",
                "eventSourceARN": stream,
            }
        )
    return {"Records": records}


def deliver(w: World, *bodies: dict[str, Any] | bytes, stream: str = TRANSCRIPT_STREAM_ARN) -> dict[str, Any]:
    result = events.on_transcript_records(kinesis(*bodies, stream=stream))
    w.pump()
    return result


@pytest.fixture
def call(world: World) -> tuple[World, Client, Client, Client]:
    """A voice call of agent-1 monitored by sup-1; sup-2 (same team) connected but not monitoring."""
    world.team()
    world.assign(WID, channel="voice")
    agent, sup, other = (
        world.connect("agent-1", "agent"),
        world.connect("sup-1", "supervisor"),
        world.connect("sup-2", "supervisor"),
    )
    agent.ok("voice.join", workitemId=WID)
    sup.ok("monitor.start", workitemId=WID)
    return world, agent, sup, other


def transcript(client: Client) -> list[dict[str, Any]]:
    entries = client.ok("timeline.get", workitemId=WID, after=0)["entries"]
    return [e for e in entries if e["kind"] == "transcript"]


def test_a_final_utterance_is_stored_and_pushed_to_the_agent_and_monitors_only(call: Any) -> None:
    w, agent, sup, other = call
    assert deliver(w, utterance("u-1", "I want a refund.", sentiment="NEGATIVE", start=1200)) == {"batchItemFailures": []}
    [stored] = transcript(sup)
    assert {k: v for k, v in stored.items() if k not in ("seq", "at")} == {
        "workitemId": WID,
        "kind": "transcript",
        "authorId": f"cust-{WID}",
        "authorRole": "customer",
        "text": "I want a refund.",
        "speaker": "customer",
        "sentiment": "negative",
        "startMs": 1200,
        "endMs": 2700,
        "utteranceId": "u-1",
    }
    for client in (agent, sup):
        [pushed] = client.events("transcript.segment")
        assert pushed["data"] == {"entry": stored}
    assert not other.events("transcript.segment")
    # Staff only: the customer's view of the timeline has no transcript line.
    customer = w.connect(f"cust-{WID}", "customer", wid=WID)
    assert not [e for e in customer.ok("timeline.get", workitemId=WID, after=0)["entries"] if e["kind"] == "transcript"]


def test_partials_are_pushed_without_seq_and_never_stored(call: Any) -> None:
    w, agent, sup, _ = call
    deliver(
        w,
        utterance("u-1", "I want", partial=True),
        utterance("u-1", "I want a", partial=True),
        utterance("u-2", "Sure", Speaker.AGENT, partial=True),
    )
    for client in (agent, sup):
        assert [e["data"] for e in client.events("transcript.partial")] == [
            {"workitemId": WID, "utteranceId": "u-1", "speaker": "customer", "text": "I want a"},
            {"workitemId": WID, "utteranceId": "u-2", "speaker": "agent", "text": "Sure"},
        ]
    assert transcript(sup) == []
    # A partial that arrives with its final in one batch is not pushed: the final says it all.
    deliver(w, utterance("u-3", "Hello", partial=True), utterance("u-3", "Hello there."))
    assert [e["data"]["utteranceId"] for e in sup.events("transcript.partial")] == ["u-1", "u-2"]
    assert [e["text"] for e in transcript(sup)] == ["Hello there."]


def test_redelivered_and_repeated_utterances_are_stored_once(call: Any) -> None:
    w, agent, sup, _ = call
    batch = [
        utterance("u-1", "My card was charged twice.", start=0),
        utterance("u-2", "Let me check.", Speaker.AGENT, start=2000),
    ]
    deliver(w, *batch)
    deliver(w, *batch)  # Lambda hands the same batch over again
    deliver(w, batch[0])  # and the sink repeats one record
    assert [e["utteranceId"] for e in transcript(sup)] == ["u-1", "u-2"]
    assert len(agent.events("transcript.segment")) == 2


def test_out_of_order_records_are_stored_in_spoken_order_within_a_batch_and_once_across(call: Any) -> None:
    w, _, sup, _ = call
    deliver(
        w, utterance("u-3", "Third.", start=9000), utterance("u-1", "First.", start=100), utterance("u-2", "Second.", start=4000)
    )
    assert [e["text"] for e in transcript(sup)] == ["First.", "Second.", "Third."]
    # A late record of an earlier utterance: stored after the others, its offsets tell where it was said.
    deliver(w, utterance("u-0", "Hello?", start=0))
    lines = transcript(sup)
    assert [e["utteranceId"] for e in lines] == ["u-1", "u-2", "u-3", "u-0"]
    assert sorted(lines, key=lambda e: e["startMs"])[0]["text"] == "Hello?"


def test_metadata_and_category_records_are_read_and_ignored(call: Any) -> None:
    w, _, sup, _ = call
    metadata = {
        "time": "2026-12-08T10:00:00.000Z",
        "service-type": "CallAnalytics",
        "detail-type": "CallAnalyticsMetadata",
        "mediaInsightsPipelineId": PIPELINE,
        "metadata": json.dumps({"tenantId": "t1", "workitemId": WID}),
    }
    category = {
        "time": "2026-12-08T10:00:09.000Z",
        "service-type": "CallAnalytics",
        "detail-type": "TranscribeCallAnalyticsCategoryEvent",
        "mediaInsightsPipelineId": PIPELINE,
        "metadata": {"tenantId": "t1", "workitemId": WID},
        "CategoryEvent": {"MatchedCategories": ["refund"], "MatchedDetails": {"refund": {"TimestampRanges": []}}},
    }
    assert deliver(w, metadata, category, utterance("u-1", "Thanks.")) == {"batchItemFailures": []}
    assert [e["text"] for e in transcript(sup)] == ["Thanks."]


def test_unreadable_foreign_and_unknown_records_are_dropped_and_the_rest_applied(call: Any) -> None:
    w, _, sup, _ = call
    no_metadata = utterance("u-9", "Who am I?", origin=Origin("1b9e5f7a-1c2d-4e3f-8a9b-0c1d2e3f4a5b"))
    wrong_role = utterance("u-8", "x")
    wrong_role["UtteranceEvent"]["ParticipantRole"] = "SUPERVISOR"
    result = deliver(w, b"not json", wrong_role, no_metadata, utterance("u-1", "Kept."))
    assert result == {"batchItemFailures": []}
    # Another stream's records are not read at all.
    deliver(w, utterance("u-2", "Injected."), stream="arn:aws:kinesis:us-east-1:444455556666:stream/coaching-transcripts")
    assert [e["text"] for e in transcript(sup)] == ["Kept."]


def test_a_record_without_metadata_finds_its_workitem_through_the_stored_pipeline(call: Any) -> None:
    w, _, sup, _ = call
    other = "2b9e5f7a-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
    w.services.transcript.pipelines.remember(other, PipelineOwner("t1", WID, 1_765_000_000), 2_000_000_000)
    body = utterance("u-1", "Found.", origin=Origin(other))
    del body["metadata"]
    deliver(w, body)
    assert [e["text"] for e in transcript(sup)] == ["Found."]


def test_nothing_is_added_to_an_ended_or_a_non_voice_workitem(call: Any) -> None:
    w, _, sup, _ = call
    w.assign("wi-chat")
    deliver(w, utterance("u-1", "Chat?", origin=Origin(PIPELINE, "t1", "wi-chat")))
    assert not [e for e in sup.ok("timeline.get", workitemId="wi-chat", after=0)["entries"] if e["kind"] == "transcript"]
    status, _ = w.webhook("workitem.ended", {"workitemId": WID, "endedBy": "agent"})
    assert status == 200
    deliver(w, utterance("u-2", "Too late."))
    assert transcript(sup) == []


def test_a_keyword_rule_for_the_agent_raises_on_the_agents_transcript_line(call: Any) -> None:
    w, _, sup, _ = call
    w.admin("PUT", "/admin/attention-rules/promise", {"kind": "keyword", "phrases": ["guarantee"], "speakers": ["agent"]})
    deliver(w, utterance("u-1", "I guarantee it.", Speaker.CUSTOMER))
    assert not sup.events("attention.raised")
    deliver(w, utterance("u-2", "I guarantee a refund.", Speaker.AGENT, start=3000))
    [raised] = sup.events("attention.raised")
    assert raised["data"]["alert"]["ruleId"] == "promise" and '"guarantee"' in raised["data"]["alert"]["reason"]


def test_a_sentiment_rule_counts_the_customers_transcript_lines_by_their_call_analytics_sentiment(call: Any) -> None:
    """W11.8 on voice: a customer's transcript line carries Transcribe Call Analytics' sentiment; the
    agent's lines are not the customer's and do not break the run."""
    w, _, sup, _ = call
    w.admin("PUT", "/admin/attention-rules/upset", {"kind": "sentiment", "negativeInARow": 2, "severity": 3})
    deliver(w, utterance("u-1", "This is the third time I call.", sentiment="NEGATIVE"))
    deliver(w, utterance("u-2", "I understand, let me look.", Speaker.AGENT, sentiment="NEUTRAL", start=2000))
    assert not sup.events("attention.raised")
    deliver(w, utterance("u-3", "Nothing ever works with you.", sentiment="NEGATIVE", start=4000))
    [raised] = sup.events("attention.raised")
    assert (raised["data"]["alert"]["ruleId"], raised["data"]["alert"]["kind"]) == ("upset", "sentiment")
    deliver(w, utterance("u-4", "Thank you, that fixed it!", sentiment="POSITIVE", start=6000))
    assert len(sup.events("attention.raised")) == 1


def test_a_store_that_fails_hands_the_first_unapplied_record_back(call: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    w, _, sup, _ = call
    service = w.services.transcript
    real = service.workitems.mutate
    calls = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("store down")
        return real(*args, **kwargs)

    monkeypatch.setattr(service.workitems, "mutate", flaky)
    event = kinesis(
        utterance("u-1", "One.", start=0), utterance("u-2", "Two.", start=1000), utterance("u-3", "Three.", start=2000)
    )
    result = events.on_transcript_records(event)
    w.pump()
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["kinesis"]["sequenceNumber"]}]}
    # Lambda hands u-2 and what follows over again: u-3 is a duplicate then, u-2 is stored.
    monkeypatch.setattr(service.workitems, "mutate", real)
    assert events.on_transcript_records({"Records": event["Records"][1:]}) == {"batchItemFailures": []}
    w.pump()
    assert sorted(e["utteranceId"] for e in transcript(sup)) == ["u-1", "u-2", "u-3"]


def test_the_audit_export_holds_the_transcript_and_its_lines_expire_with_the_tenants_retention(call: Any) -> None:
    w, _, _, _ = call
    w.admin("PUT", "/admin/policy", {"recordCoaching": False, "escalationSeconds": 60, "retentionDays": 7})
    w.assign("wi-v2", channel="voice")  # retention is captured when the workitem is assigned
    deliver(w, utterance("u-1", "Kept for the audit.", origin=Origin(PIPELINE, "t1", "wi-v2")))
    exported = w.admin("GET", "/workitems/wi-v2/export")
    [line] = [e for e in exported["entries"] if e["kind"] == "transcript"]
    assert line["text"] == "Kept for the audit." and line["speaker"] == "customer"
    if w.backend == "dynamodb":
        from datetime import datetime, timedelta

        from chalicelib.adapters.dynamo import EntryItem
        from chalicelib.adapters.store_keys import entry_sk, workitem_pk

        item = EntryItem.get(workitem_pk("t1", "wi-v2"), entry_sk(line["seq"]))
        assert item.ttl is not None
        kept = item.ttl - datetime.fromisoformat(line["at"])  # TTL is in whole seconds
        assert timedelta(days=7) - timedelta(seconds=1) < kept <= timedelta(days=7)
