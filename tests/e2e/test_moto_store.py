"""The local stack's moto fallback (``DEVSTACK_STORE=moto``) keeps DynamoDB's promises under concurrent
handlers: a cancelled transaction leaves nothing behind, not even in the stream, and the stream pump's
reader gets every committed record exactly once while other requests write.

The store runs in a process of its own, as in ``python -m devstack`` (devstack/store.py patches moto's
backends for that process only, and the integration tier's in-process moto must stay as moto ships).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from devstack.streams import StreamTail
from tests.e2e.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e

WRITERS = 4
COMMITS_PER_WRITER = 12
SERVE = (
    "import sys; from devstack.store import EmbeddedStore; "
    "print(EmbeddedStore(kind='moto').start(), flush=True); sys.stdin.read()"
)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE], cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield url
    finally:
        proc.stdin.close()
        proc.wait(10)


def _client(service: str, url: str) -> Any:
    make: Any = boto3.client  # typed per literal service name; both names here are DynamoDB's
    return make(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="moto",
        aws_secret_access_key="moto",
        config=Config(max_pool_connections=WRITERS + 2, retries={"max_attempts": 1}),
    )


def test_concurrent_transactions_put_each_commit_once_in_the_stream_and_nothing_of_a_cancelled_one(endpoint: str) -> None:
    """Writers race on one item with the adapters' kind of transaction (an item conditional on its
    version, an entry that must not exist) led by a put of the attempt's own marker, so that a lost
    race is cancelled after a write moto has already applied. While they run, a reader tails the
    stream as the stack's pump does. Its oracle is the writers' own record of what committed."""
    table = f"race-{uuid.uuid4().hex[:8]}"
    ddb = _client("dynamodb", endpoint)
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    ddb.put_item(TableName=table, Item={"pk": {"S": "w"}, "sk": {"S": "W"}, "version": {"N": "0"}})
    tail = StreamTail.for_table(ddb, _client("dynamodbstreams", endpoint), table, start="TRIM_HORIZON", reposition=True)
    tail.read()  # the item's creation
    committed: list[str] = []  # the markers of the attempts that committed
    attempts: list[str] = []
    errors: list[BaseException] = []
    done = threading.Event()
    start = threading.Barrier(WRITERS + 1)

    def write(writer: int) -> None:
        client = _client("dynamodb", endpoint)
        start.wait()
        try:
            for commit in range(COMMITS_PER_WRITER):
                for attempt in range(1000):
                    marker = f"A#{writer}#{commit}#{attempt}"
                    attempts.append(marker)
                    got = client.get_item(TableName=table, Key={"pk": {"S": "w"}, "sk": {"S": "W"}}, ConsistentRead=True)
                    version = int(got["Item"]["version"]["N"])
                    try:
                        client.transact_write_items(TransactItems=_commit(table, marker, version))
                    except client.exceptions.TransactionCanceledException:
                        continue
                    committed.append(marker)
                    break
        except BaseException as exc:  # reported below
            errors.append(exc)

    records: list[dict[str, Any]] = []

    def read() -> None:
        start.wait()
        try:
            while not done.is_set():
                records.extend(tail.read())
        except BaseException as exc:  # reported below
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    reader = threading.Thread(target=read)
    for thread in [*writers, reader]:
        thread.start()
    for thread in writers:
        thread.join(120)
    done.set()
    reader.join(30)
    records.extend(tail.read())
    assert errors == []
    total = WRITERS * COMMITS_PER_WRITER
    assert len(committed) == total and len(attempts) > total  # some races were lost, and retried

    keys = [r["dynamodb"]["Keys"]["sk"]["S"] for r in records]
    markers = [k for k in keys if k.startswith("A#")]
    assert sorted(markers) == sorted(committed)  # each commit once, nothing of a cancelled attempt
    versions = [int(r["dynamodb"]["NewImage"]["version"]["N"]) for r in records if r["dynamodb"]["Keys"]["sk"]["S"] == "W"]
    assert versions == list(range(1, total + 1))  # every version once, in order
    entries = [k for k in keys if k.startswith("E#")]
    assert entries == [f"E#{v:04d}" for v in range(1, total + 1)]
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence == sorted(set(sequence))


def _commit(table: str, marker: str, version: int) -> list[dict[str, Any]]:
    return [
        {"Put": {"TableName": table, "Item": {"pk": {"S": "w"}, "sk": {"S": marker}}}},
        {
            "Put": {
                "TableName": table,
                "Item": {"pk": {"S": "w"}, "sk": {"S": "W"}, "version": {"N": str(version + 1)}},
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": {"N": str(version)}},
            }
        },
        {
            "Put": {
                "TableName": table,
                "Item": {"pk": {"S": "w"}, "sk": {"S": f"E#{version + 1:04d}"}},
                "ConditionExpression": "attribute_not_exists(sk)",
            }
        },
    ]
