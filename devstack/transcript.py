"""The local stand-in for the media insights pipeline's sink (docs/transcript.md): ``POST
/_local/voice/{tenantId}/{workitemId}/transcript`` with ``{"speaker": "agent"|"customer", "text",
"partial"?: bool, "utteranceId"?}`` builds the record the Kinesis Data Stream sink would carry for that
utterance and hands it to the ``transcript_records`` function in the envelope Lambda gives it. 202 with
the function's batch response; 400 in the contract's error shape for a body that is not an utterance.
Local only, no token (as every ``/_local`` route): on AWS the sink is written by Amazon Chime.

A final utterance becomes a ``transcript`` line of the call (stored once by its utterance id); a
partial one is only pushed (``transcript.partial``). Omit ``utteranceId`` and each post is a new
utterance; repeat one to send a partial and then its final words.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chalice.app import Chalice
from chalice.local import LambdaContext

HANDLER = "transcript_records"
STREAM_ARN = "arn:aws:kinesis:us-east-1:000000000000:stream/local-coaching-transcripts"
PATH = re.compile(r"/_local/voice/([^/]{1,128})/([^/]{1,128})/transcript\Z")
MAX_TEXT_CHARS = 4000
_sequence = itertools.count(1)

PatternRoute = Callable[[bytes, tuple[str, ...]], tuple[int, Any]]


def _invalid(message: str) -> tuple[int, Any]:
    return 400, {"error": {"code": "invalid", "message": message}}


def kinesis_event(data: bytes) -> dict[str, Any]:
    """The Lambda event Kinesis hands a function for one record of the local sink stream."""
    sequence = f"{49590000000000000000 + next(_sequence)}"
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "local",
                    "sequenceNumber": sequence,
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": datetime.now(UTC).timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{sequence}",
                "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1",
                "eventSourceARN": STREAM_ARN,
            }
        ]
    }


def route(app: Chalice) -> tuple[re.Pattern[str], PatternRoute] | None:
    """The local transcript route, when the app has the transcript function."""
    handler = app.handler_map.get(HANDLER)
    if handler is None:
        return None

    def post(body: bytes, params: tuple[str, ...]) -> tuple[int, Any]:
        from chalicelib.domain.transcript import Origin, Speaker
        from chalicelib.entrypoints.transcript_payloads import sink_body

        tenant_id, workitem_id = params
        try:
            given = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return _invalid("the body is not JSON")
        if not isinstance(given, dict):
            return _invalid('the body must be {"speaker": "agent"|"customer", "text": ...}')
        text, speaker, partial = given.get("text"), given.get("speaker"), given.get("partial", False)
        utterance_id = given.get("utteranceId") or str(uuid.uuid4())
        if speaker not in ("agent", "customer"):
            return _invalid("speaker must be agent or customer")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
            return _invalid(f"text must be a string of 1 to {MAX_TEXT_CHARS} characters")
        if not isinstance(partial, bool) or not isinstance(utterance_id, str) or not 0 < len(utterance_id) <= 128:
            return _invalid("partial must be a boolean and utteranceId 1-128 characters")
        now = datetime.now(UTC)
        record = sink_body(
            Origin(str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}/{workitem_id}")), tenant_id, workitem_id),
            utterance_id,
            Speaker(speaker),
            text,
            partial=partial,
            sentiment=None if partial else "NEUTRAL",
            start_ms=0,
            end_ms=0,
            at=now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        )
        context = LambdaContext(function_name=HANDLER, memory_size=1024, max_runtime_ms=60_000)
        return 202, handler(kinesis_event(json.dumps(record).encode()), context)

    return PATH, post
