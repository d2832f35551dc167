"""Replay the batches Fanout failed on for good, from the workitems stream, while it still holds them.

    .venv/bin/python scripts/replay_stream_failures.py --stack supervisor-coaching-prod [--region eu-west-1] [--dry-run]

When Fanout fails a batch of the workitems table's stream after its retries, Lambda sends the batch's
coordinates to the stack's ``FanoutFailureQueue`` (the stream mapping's on-failure destination): the
stream's ARN, the shard, the first and last sequence numbers and when the first record arrived. Not
the records: they stay in the stream for 24 hours, then DynamoDB trims them. This script reads each
such message, reads the batch's records back from the stream, invokes ``Fanout`` with them exactly
as the event source mapping would, and deletes the message once Fanout took the whole batch. A
batch older than 24 hours cannot be read back any more: it is reported and left in the queue (its
coordinates say which workitems were affected; their timelines hold every entry, and clients fill
gaps with ``timeline.get``).

Replaying pushes the batch's events to the connected clients again (they ignore a ``seq`` they have)
and queues its webhook deliveries again (receivers de-duplicate on ``webhook-id``).

Needs sqs:ReceiveMessage and sqs:DeleteMessage on the queue, dynamodb:GetShardIterator and
dynamodb:GetRecords on the stream, lambda:InvokeFunction on Fanout and cloudformation:DescribeStackResources.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

STREAM_RETENTION = timedelta(hours=24)


@dataclass
class Summary:
    replayed: list[str] = field(default_factory=list)  # "shard:first-last"
    expired: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unreadable: int = 0


def stack_resources(cloudformation: Any, stack: str) -> tuple[str, str]:
    """(the failure queue's URL, the Fanout function's name) of ``stack``."""
    found = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
    }
    for needed in ("FanoutFailureQueue", "Fanout"):
        if not found.get(needed):
            raise SystemExit(f"the stack has no {needed}: is it deployed from this version's template?")
    return found["FanoutFailureQueue"], found["Fanout"]


def read_batch(streams: Any, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The records from ``startSequenceNumber`` to ``endSequenceNumber`` of the batch's shard."""
    iterator: str | None = streams.get_shard_iterator(
        StreamArn=info["streamArn"],
        ShardId=info["shardId"],
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=info["startSequenceNumber"],
    )["ShardIterator"]
    end = int(info["endSequenceNumber"])
    records: list[dict[str, Any]] = []
    while iterator:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        got = page.get("Records", [])
        for record in got:
            if int(record["dynamodb"]["SequenceNumber"]) > end:
                return records
            records.append(record)
        if not got or int(got[-1]["dynamodb"]["SequenceNumber"]) >= end:
            return records
        iterator = page.get("NextShardIterator")
    return records


def _event_json(value: Any) -> Any:
    """What the event source mapping puts where the Streams API gives Python objects."""
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | bytearray):
        import base64

        return base64.b64encode(value).decode()
    raise TypeError(f"cannot put {type(value).__name__} in an event")


def replay(
    sqs: Any,
    streams: Any,
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
    queue_url: str,
    *,
    now: datetime,
    dry_run: bool = False,
    limit: int = 1000,
    out: Callable[[str], None] = print,
) -> Summary:
    """Replay up to ``limit`` failure messages; ``invoke(event)`` runs Fanout and returns its answer."""
    summary = Summary()
    seen = 0
    while seen < limit:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=min(10, limit - seen), WaitTimeSeconds=1, VisibilityTimeout=300
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            seen += 1
            try:
                info = json.loads(message["Body"])["DDBStreamBatchInfo"]
                first = datetime.fromisoformat(info["approximateArrivalOfFirstRecord"].replace("Z", "+00:00"))
                batch = f"{info['shardId']}:{info['startSequenceNumber']}-{info['endSequenceNumber']}"
            except (ValueError, KeyError, TypeError, AttributeError):
                summary.unreadable += 1
                out(f"not a stream failure record, left in the queue: {message['Body'][:200]}")
                continue
            if now - first > STREAM_RETENTION:
                summary.expired.append(batch)
                out(f"{batch}: first record from {info['approximateArrivalOfFirstRecord']}, trimmed from the stream")
                continue
            records = read_batch(streams, info)
            if dry_run:
                out(f"{batch}: {len(records)} records would be replayed")
                summary.replayed.append(batch)
                continue
            answer = invoke({"Records": json.loads(json.dumps(records, default=_event_json))})
            if answer.get("FunctionError") or (answer.get("Payload") or {}).get("batchItemFailures"):
                summary.failed.append(batch)
                out(f"{batch}: Fanout failed again ({answer.get('FunctionError') or 'records handed back'}); left in the queue")
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            summary.replayed.append(batch)
            out(f"{batch}: {len(records)} records replayed")
    return summary


def lambda_invoker(client: Any, function: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        answer = client.invoke(FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(event).encode())
        payload = answer["Payload"].read()
        return {"FunctionError": answer.get("FunctionError", ""), "Payload": json.loads(payload) if payload else {}}

    return invoke


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stack", required=True, help="the stack's name")
    parser.add_argument("--region", default=None, help="the stack's Region (default: your AWS configuration's)")
    parser.add_argument("--dry-run", action="store_true", help="read and report, invoke and delete nothing")
    parser.add_argument("--limit", type=int, default=1000, help="failure messages to look at (default 1000)")
    args = parser.parse_args(argv)

    import boto3

    session = boto3.session.Session(region_name=args.region)
    queue_url, function = stack_resources(session.client("cloudformation"), args.stack)
    summary = replay(
        session.client("sqs"),
        session.client("dynamodbstreams"),
        lambda_invoker(session.client("lambda"), function),
        queue_url,
        now=datetime.now(UTC),
        dry_run=args.dry_run,
        limit=args.limit,
    )
    print(
        f"replayed {len(summary.replayed)}, trimmed from the stream {len(summary.expired)}, "
        f"failed again {len(summary.failed)}, unreadable {summary.unreadable}"
    )
    return 1 if summary.failed or summary.unreadable else 0


if __name__ == "__main__":
    sys.exit(main())
