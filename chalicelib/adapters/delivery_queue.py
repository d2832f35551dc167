"""The webhook delivery queue on Amazon SQS, and its dead-letter queue.

Messages are sent from the ``fanout`` function (workitem events) and from handlers (assistance and
presence events, as one message each); the ``deliver_webhooks`` function receives them through
Lambda's SQS event source. A failed delivery's message is hidden for its backoff delay (visibility
timeout) and comes back; after the queue's redrive count it moves to the dead-letter queue, from
which an admin can replay it.
"""

from __future__ import annotations

import threading
from typing import Any

from chalicelib.adapters.sdk_budget import SQS

SQS_BATCH = 10


class SqsDeliveryQueue:
    def __init__(self, queue_url: str, dlq_url: str, region: str, endpoint: str = "", client: Any = None) -> None:
        self._url = queue_url
        self._dlq = dlq_url
        self._region = region
        self._endpoint = endpoint
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    if not self._url:
                        raise RuntimeError("no webhook delivery queue is configured (DELIVERY_QUEUE_URL)")
                    import boto3

                    self._client = boto3.client(
                        "sqs", region_name=self._region, endpoint_url=self._endpoint or None, config=SQS.config()
                    )
        return self._client

    def send(self, bodies: list[str]) -> None:
        """SendMessageBatch, 10 messages per request; raises when any message was refused."""
        for start in range(0, len(bodies), SQS_BATCH):
            chunk = bodies[start : start + SQS_BATCH]
            out = self.client.send_message_batch(
                QueueUrl=self._url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(chunk)]
            )
            if out.get("Failed"):
                raise RuntimeError(f"SQS refused {len(out['Failed'])} webhook deliveries: {out['Failed'][0].get('Code')}")

    def retry_later(self, receipt: str, seconds: int) -> None:
        self.client.change_message_visibility(QueueUrl=self._url, ReceiptHandle=receipt, VisibilityTimeout=seconds)

    def dead_letters(self, limit: int) -> list[tuple[str, str]]:
        out = self.client.receive_message(
            QueueUrl=self._dlq, MaxNumberOfMessages=min(limit, SQS_BATCH), VisibilityTimeout=30, WaitTimeSeconds=0
        )
        return [(m["ReceiptHandle"], m["Body"]) for m in out.get("Messages", [])]

    def requeue_dead(self, items: list[tuple[str, str]]) -> None:
        """Back onto the delivery queue, then off the dead-letter queue (at least once)."""
        if not items:
            return
        self.send([body for _, body in items])
        self.client.delete_message_batch(
            QueueUrl=self._dlq, Entries=[{"Id": str(i), "ReceiptHandle": r} for i, (r, _) in enumerate(items)]
        )

    def release_dead(self, receipts: list[str]) -> None:
        """Other tenants' dead letters: visible again at once."""
        if receipts:
            self.client.change_message_visibility_batch(
                QueueUrl=self._dlq,
                Entries=[{"Id": str(i), "ReceiptHandle": r, "VisibilityTimeout": 0} for i, r in enumerate(receipts)],
            )
