"""The local stand-in for a DynamoDB stream's Lambda event source mapping.

On AWS, the event source mapping polls the workitems table's stream and invokes the ``fanout``
function with batches of records, in order per shard. Here :class:`StreamTail` reads the stream of
the local store (DynamoDB Local or moto) through the DynamoDB Streams API, and :class:`StreamPump`
runs it on a thread: it reads as soon as the gateway says a handler has finished (so a change is
pushed a few milliseconds after its commit, not after a polling interval), and every
``idle_seconds`` otherwise, and hands the records to the function in lanes by partition key, as a
parallelization factor does. The tests use :class:`StreamTail` directly, synchronously.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError

log = logging.getLogger(__name__)

Record = dict[str, Any]
# Shard iterators expire after 15 minutes; re-list the shards well before (and to find new ones).
DESCRIBE_EVERY_SECONDS = 60.0
# The event source mapping's MaximumRetryAttempts (infra/merge-template.yaml).
RETRY_ATTEMPTS = 2


class StreamTail:
    """Every record of a stream from the moment it is opened, parents' shards before their children's."""

    def __init__(self, client: Any, stream_arn: str, *, start: str = "LATEST", reposition: bool = False) -> None:
        """``reposition``: take a fresh iterator after the last record read before every read. moto
        needs it: a transaction it rolls back replaces the table's stream shard with a copy taken
        before the transaction, and iterators it handed out keep reading the discarded shard."""
        self._client = client
        self._arn = stream_arn
        self._reposition = reposition
        self._iterators: dict[str, str | None] = {}  # shard id -> next iterator (None: shard finished)
        self._last_sequence: dict[str, str] = {}
        self._described = 0.0
        if reposition and start == "LATEST":
            self._describe(initial_type="TRIM_HORIZON")
            self.read()  # skip what is there already; from now on read after the last of it
        else:
            self._describe(initial_type=start)

    @classmethod
    def for_table(
        cls, dynamodb: Any, streams: Any, table_name: str, *, start: str = "LATEST", reposition: bool = False
    ) -> StreamTail:
        arn = dynamodb.describe_table(TableName=table_name)["Table"].get("LatestStreamArn")
        if not arn:
            raise RuntimeError(f"table {table_name} has no stream")
        return cls(streams, arn, start=start, reposition=reposition)

    def _shards(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamArn": self._arn}
        while True:
            description = self._client.describe_stream(**kwargs)["StreamDescription"]
            shards.extend(description.get("Shards", []))
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            kwargs["ExclusiveStartShardId"] = last

    def _describe(self, initial_type: str | None = None) -> None:
        self._described = time.monotonic()
        for shard in self._shards():
            shard_id = shard["ShardId"]
            if shard_id in self._iterators:
                continue
            # Shards that exist when the tail opens start where asked; later ones (children of a
            # closed shard, or new partitions) are read from their first record.
            kind = initial_type or "TRIM_HORIZON"
            self._iterators[shard_id] = self._client.get_shard_iterator(
                StreamArn=self._arn, ShardId=shard_id, ShardIteratorType=kind
            )["ShardIterator"]

    def _renew(self, shard_id: str) -> str:
        """A fresh iterator just after the last record read (iterators expire after 15 minutes)."""
        last = self._last_sequence.get(shard_id)
        kwargs: dict[str, Any] = {"StreamArn": self._arn, "ShardId": shard_id}
        if last:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=last)
        else:
            kwargs.update(ShardIteratorType="TRIM_HORIZON")
        iterator: str = self._client.get_shard_iterator(**kwargs)["ShardIterator"]
        return iterator

    def read(self) -> list[Record]:
        """Every record written since the last read, in stream order per shard."""
        if time.monotonic() - self._described > DESCRIBE_EVERY_SECONDS:
            self._describe()
        records: list[Record] = []
        finished = False
        for shard_id, stored in list(self._iterators.items()):
            if stored is None:
                continue
            got, following = self._read_shard(shard_id, self._renew(shard_id) if self._reposition else stored)
            records.extend(got)
            self._iterators[shard_id] = following
            finished = finished or following is None
        if finished:  # a closed shard: its children (if any) come next
            self._describe()
        return records

    def _read_shard(self, shard_id: str, iterator: str) -> tuple[list[Record], str | None]:
        """The shard's records from ``iterator`` on, and the iterator to go on from (None: closed)."""
        records: list[Record] = []
        renewed = False
        position: str | None = iterator
        while position is not None:
            try:
                page = self._client.get_records(ShardIterator=position, Limit=1000)
            except (self._client.exceptions.ExpiredIteratorException, self._client.exceptions.TrimmedDataAccessException):
                # Expired (15 minutes), or DynamoDB Local refusing an iterator it handed out while
                # a transaction was being written: start again after the last record read, once.
                if renewed:
                    raise
                renewed = True
                position = self._renew(shard_id)
                continue
            got = page.get("Records", [])
            records.extend(got)
            if got:
                self._last_sequence[shard_id] = got[-1]["dynamodb"]["SequenceNumber"]
            position = page.get("NextShardIterator")
            if not got:
                break
        return records, position


class StreamPump:
    """Feeds a stream to a handler like the event source mapping with a parallelization factor:
    records are split into ``lanes`` by partition key (one workitem always lands in the same lane),
    each lane hands its records to the handler in order, one batch at a time, and the lanes run side
    by side. The reader reads right after every nudge, and every ``idle_seconds`` otherwise."""

    def __init__(
        self,
        tail: StreamTail,
        handler: Callable[[dict[str, Any]], Any],
        *,
        idle_seconds: float = 0.25,
        lanes: int = 8,
        batch_size: int = 100,
    ) -> None:
        self._tail = tail
        self._handler = handler
        self._idle = idle_seconds
        self._batch_size = batch_size
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lanes: list[queue.SimpleQueue[Record | None]] = [queue.SimpleQueue() for _ in range(lanes)]
        self._threads = [threading.Thread(target=self._read, name="stream-reader", daemon=True)]
        self._threads += [
            threading.Thread(target=self._lane, args=(q,), name=f"stream-lane-{i}", daemon=True)
            for i, q in enumerate(self._lanes)
        ]

    def start(self) -> StreamPump:
        for thread in self._threads:
            thread.start()
        return self

    def nudge(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        self._wake.set()
        for lane in self._lanes:
            lane.put(None)
        for thread in self._threads:
            thread.join(timeout)

    def _lane_of(self, record: Record) -> queue.SimpleQueue[Record | None]:
        key = ((record.get("dynamodb") or {}).get("Keys") or {}).get("pk", {}).get("S", "")
        return self._lanes[zlib.crc32(key.encode()) % len(self._lanes)]

    def _read(self) -> None:
        last_failure = ""
        while not self._stop.is_set():
            self._wake.wait(self._idle)
            self._wake.clear()
            try:
                while not self._stop.is_set():
                    records = self._tail.read()
                    if not records:
                        break
                    for record in records:
                        self._lane_of(record).put(record)
                last_failure = ""
            except Exception as exc:  # the store may be going away; keep the log readable
                failure = type(exc).__name__
                if failure != last_failure:
                    if isinstance(exc, BotoCoreError):  # a timeout or a lost connection: no traceback
                        log.warning("reading the stream failed (%s); retrying", failure)
                    else:
                        log.exception("reading the stream failed; retrying")
                last_failure = failure
                self._stop.wait(0.5)

    def _lane(self, lane: queue.SimpleQueue[Record | None]) -> None:
        while True:
            first = lane.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._batch_size:
                try:
                    record = lane.get_nowait()
                except queue.Empty:
                    break
                if record is None:
                    self._deliver(batch)
                    return
                batch.append(record)
            self._deliver(batch)

    def _deliver(self, batch: list[Record]) -> None:
        """As the event source mapping does with ``ReportBatchItemFailures``: a partial batch
        response is retried from its first named record, twice (``MaximumRetryAttempts``); what
        still fails would go to the mapping's failure destination (here: an ERROR line)."""
        for attempt in range(1 + RETRY_ATTEMPTS):
            try:
                result = self._handler({"Records": batch})
            except Exception:  # the function failed the whole batch; on AWS it would be retried
                log.exception("the stream handler failed on a batch of %d records", len(batch))
                return
            failed = {str(f.get("itemIdentifier")) for f in (result or {}).get("batchItemFailures") or []}
            first = next((i for i, r in enumerate(batch) if (r.get("dynamodb") or {}).get("SequenceNumber") in failed), None)
            if first is None:
                return
            batch = batch[first:]
            if attempt < RETRY_ATTEMPTS:
                log.warning("the stream handler handed back %d records; retrying from the first of them", len(batch))
        log.error(
            "%d stream records failed %d times: on AWS their coordinates go to the failure destination",
            len(batch),
            1 + RETRY_ATTEMPTS,
        )
