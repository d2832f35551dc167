"""The live transcript's AWS payloads (docs/transcript.md), read strictly into the domain's records:
the media insights pipeline's Kinesis Data Stream sink records (in Lambda's Kinesis envelope) and
Amazon Chime's media pipeline events on EventBridge. Every refusal is :class:`Invalid` naming the field,
never echoing its value (a transcript may hold card numbers)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from chalicelib.domain.aws_events import BusEvent
from chalicelib.domain.errors import Invalid
from chalicelib.domain.ids import is_id
from chalicelib.domain.sentiment import Sentiment
from chalicelib.domain.transcript import (
    _ID,
    KVS_STREAM_ARN,
    MAX_OFFSET_MS,
    MAX_RECORD_BYTES,
    MAX_SEGMENT_CHARS,
    PIPELINE_ID,
    CallMetadata,
    Categories,
    MediaEvent,
    Origin,
    SinkRecord,
    Speaker,
    StreamStart,
    Utterance,
    pipeline_id_of,
)

_ROLES = {"AGENT": Speaker.AGENT, "CUSTOMER": Speaker.CUSTOMER}


def _json(raw: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(raw, Mapping):
        return raw
    if len(raw) > MAX_RECORD_BYTES:
        raise Invalid("the record is larger than 1 MiB")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise Invalid("the record is not JSON") from None
    if not isinstance(data, dict):
        raise Invalid("the record must be a JSON object")
    return data


def _metadata(value: object) -> Mapping[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise Invalid("metadata is not JSON") from None
    if not isinstance(value, Mapping):
        raise Invalid("metadata must be a JSON object")
    return value


def _own_id(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not is_id(value):
        raise Invalid(f"metadata.{key} is not a valid id")
    return str(value)


def origin(data: Mapping[str, Any]) -> Origin:
    pipeline_id = data.get("mediaInsightsPipelineId")
    if not isinstance(pipeline_id, str) or not PIPELINE_ID.match(pipeline_id):
        raise Invalid("mediaInsightsPipelineId must be a media pipeline id")
    metadata = _metadata(data.get("metadata"))
    tenant_id, workitem_id = _own_id(metadata, "tenantId"), _own_id(metadata, "workitemId")
    if bool(tenant_id) != bool(workitem_id):
        raise Invalid("metadata names a tenant without a workitem, or a workitem without a tenant")
    return Origin(pipeline_id, tenant_id, workitem_id)


def _offset(event: Mapping[str, Any], key: str) -> int | None:
    value = event.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_OFFSET_MS:
        raise Invalid(f"UtteranceEvent.{key} must be a number of milliseconds")
    return int(value)


def _utterance(where: Origin, event: Mapping[str, Any]) -> Utterance:
    utterance_id = event.get("UtteranceId")
    if not isinstance(utterance_id, str) or not _ID.match(utterance_id):
        raise Invalid("UtteranceEvent.UtteranceId is not a valid id")
    speaker = _ROLES.get(str(event.get("ParticipantRole")))
    if speaker is None:
        raise Invalid("UtteranceEvent.ParticipantRole must be AGENT or CUSTOMER")
    partial = event.get("IsPartial")
    if not isinstance(partial, bool):
        raise Invalid("UtteranceEvent.IsPartial must be true or false")
    text = event.get("Transcript")
    if not isinstance(text, str):
        raise Invalid("UtteranceEvent.Transcript must be a string")
    if len(text) > MAX_SEGMENT_CHARS:
        raise Invalid(f"UtteranceEvent.Transcript is longer than {MAX_SEGMENT_CHARS} characters")
    label = event.get("Sentiment")
    start, end = _offset(event, "BeginOffsetMillis"), _offset(event, "EndOffsetMillis")
    if start is not None and end is not None and end < start:
        raise Invalid("UtteranceEvent.EndOffsetMillis is before BeginOffsetMillis")
    return Utterance(
        origin=where,
        utterance_id=utterance_id,
        speaker=speaker,
        partial=partial,
        text=text.strip(),
        # Call Analytics labels complete segments only; a partial's label is not kept.
        sentiment=None if partial or not isinstance(label, str) else Sentiment.from_label(label),
        start_ms=start,
        end_ms=end,
    )


def sink_record(raw: bytes | str | Mapping[str, Any]) -> SinkRecord:
    """One record of the sink stream (its Kinesis ``Data``, decoded from base64), strictly."""
    data = _json(raw)
    where = origin(data)
    utterance, category = data.get("UtteranceEvent"), data.get("CategoryEvent")
    if utterance is not None and category is not None:
        raise Invalid("a record carries an UtteranceEvent or a CategoryEvent, never both")
    if utterance is not None:
        if not isinstance(utterance, Mapping):
            raise Invalid("UtteranceEvent must be a JSON object")
        return _utterance(where, utterance)
    if category is not None:
        if not isinstance(category, Mapping):
            raise Invalid("CategoryEvent must be a JSON object")
        matched = category.get("MatchedCategories")
        if not isinstance(matched, list) or not all(isinstance(m, str) and len(m) <= 200 for m in matched):
            raise Invalid("CategoryEvent.MatchedCategories must be a list of category names")
        return Categories(where, tuple(matched))
    if data.get("detail-type") == "CallAnalyticsMetadata":
        return CallMetadata(where)
    raise Invalid("the record is neither call metadata, an utterance nor a category")


def sink_body(
    origin_: Origin,
    utterance_id: str,
    speaker: Speaker,
    text: str,
    *,
    partial: bool,
    sentiment: str | None,
    start_ms: int,
    end_ms: int,
    at: str,
) -> dict[str, Any]:
    """The record the sink would carry for one utterance (the local stack builds it; its shape is the
    document's template, its metadata a JSON string as AWS's samples read it)."""
    event: dict[str, Any] = {
        "UtteranceId": utterance_id,
        "ParticipantRole": speaker.value.upper(),
        "IsPartial": partial,
        "BeginOffsetMillis": start_ms,
        "EndOffsetMillis": end_ms,
        "Transcript": text,
        "Items": [],
        "Entities": [],
        "IssuesDetected": [],
    }
    if sentiment is not None:
        event["Sentiment"] = sentiment.upper()
    return {
        "time": at,
        "service-type": "CallAnalytics",
        "detail-type": "TranscribeCallAnalytics",
        "mediaInsightsPipelineId": origin_.pipeline_id,
        "metadata": json.dumps({"tenantId": origin_.tenant_id, "workitemId": origin_.workitem_id}),
        "UtteranceEvent": event,
    }


# --- Lambda's Kinesis envelope --------------------------------------------------------------------------


def kinesis_records(event: object, stream_arn: str) -> list[tuple[str, bytes]]:
    """(sequence number, data) of each record of a Lambda event from ``stream_arn``; a record of
    another stream or malformed is (sequence, b"") when its sequence number is readable, else left out."""
    raw = event.get("Records") if isinstance(event, Mapping) else None
    found: list[tuple[str, bytes]] = []
    for record in raw if isinstance(raw, list) else []:
        found.append(kinesis_record(record, stream_arn))
    return found


def kinesis_record(record: object, stream_arn: str) -> tuple[str, bytes]:
    """One record's sequence number and data; :class:`Invalid` for another stream's or a malformed one."""
    if not isinstance(record, Mapping) or record.get("eventSource") != "aws:kinesis":
        raise Invalid("eventSource must be aws:kinesis")
    if not stream_arn or record.get("eventSourceARN") != stream_arn:
        raise Invalid("eventSourceARN is not this stack's transcript stream")
    kinesis = record.get("kinesis")
    if not isinstance(kinesis, Mapping):
        raise Invalid("kinesis must be a JSON object")
    sequence, data = kinesis.get("sequenceNumber"), kinesis.get("data")
    if not isinstance(sequence, str) or not sequence.isdigit() or not isinstance(data, str):
        raise Invalid("kinesis.sequenceNumber and kinesis.data are required")
    try:
        return sequence, base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid("kinesis.data is not base64") from None


def batch_response(failed_sequence: str | None) -> dict[str, Any]:
    """Lambda's partial batch response: the first record to hand over again, if any."""
    return {"batchItemFailures": [{"itemIdentifier": failed_sequence}] if failed_sequence else []}


# --- Amazon Chime's media pipeline events ----------------------------------------------------------------


def _text(detail: Mapping[str, Any], key: str) -> str:
    value = detail.get(key)
    return value[:2048] if isinstance(value, str) else ""


def media_event(event: BusEvent) -> MediaEvent | None:
    """A ``chime:MediaPipelineKinesisVideoStreamStart`` or a media insights pipeline's failure or stop, or
    None for any other event (ignored)."""
    detail = event.detail
    kind = _text(detail, "eventType")
    if event.detail_type == "Chime Media Pipeline State Change" and kind == "chime:MediaPipelineKinesisVideoStreamStart":
        pipeline_id = _text(detail, "mediaPipelineId")
        attendee_id = _text(detail, "attendeeId")
        start = StreamStart(_text(detail, "kinesisVideoStreamArn"), _text(detail, "startFragmentNumber"))
        if not PIPELINE_ID.match(pipeline_id) or not attendee_id or not KVS_STREAM_ARN.match(start.arn):
            raise Invalid("the stream start event has no pipeline, attendee or stream ARN")
        if not start.fragment.isdigit():
            raise Invalid("the stream start event has no fragment number")
        return MediaEvent(event.source, event.account, event.region, kind, pipeline_id, attendee_id, start)
    if event.detail_type == "Media Insights State Change" and kind in (
        "chime:MediaInsightsPermanentFailure",
        "chime:MediaInsightsStopped",
    ):
        pipeline_id = pipeline_id_of(_text(detail, "mediaInsightsPipelineArn"))
        if not pipeline_id:
            raise Invalid("mediaInsightsPipelineArn is not a media pipeline ARN")
        return MediaEvent(
            event.source, event.account, event.region, kind, pipeline_id, reason=_text(detail, "failureReason")[:200]
        )
    return None
