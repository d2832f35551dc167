"""The webhook delivery queue and the SMS queue on Amazon SQS, and the dead-letter queue they share.

Messages are sent from the ``fanout`` function (workitem events) and from handlers (assistance and
presence events, as one message each); the ``deliver_webhooks`` function receives them through
Lambda's SQS event sources. Every message names its tenant as ``MessageGroupId``: on a standard
queue that makes SQS a *fair queue*, which hands other tenants' messages out first while one
tenant's are piling up or taking long (docs/webhooks.md, "Fair delivery"). A failed delivery's
message is hidden for its backoff delay (visibility timeout) and comes back; after its last attempt
it moves to the dead-letter queue, from which an admin can replay it.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.lazy_client import lazy_client
from chalicelib.adapters.sdk_budget import SQS
from chalicelib.services.ports import Outgoing, QueueUnavailable

log = logging.getLogger(__name__)

SQS_BATCH = 10
MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds


class SqsDeliveryQueue:
    def __init__(self, queue_url: str, dlq_url: str, region: str, endpoint: str = "", client: Any = None) -> None:
        self._url = queue_url
        self._dlq = dlq_url
        self._client = lazy_client("sqs", region, SQS, client, endpoint)
        self._given = client is not None

    @property
    def client(self) -> Any:
        if not self._url and not self._given:
            raise RuntimeError("no delivery queue is configured (DELIVERY_QUEUE_URL, SMS_QUEUE_URL)")
        return self._client()

    def send(self, messages: list[Outgoing]) -> list[Outgoing]:
        """SendMessageBatch, 10 messages per request; returns the messages SQS refused."""
        return self._send(self._url, messages)

    def dead_letter(self, messages: list[Outgoing]) -> list[Outgoing]:
        return self._send(self._dlq, [Outgoing(m.body, m.group, m.kind) for m in messages])

    def _send(self, url: str, messages: list[Outgoing]) -> list[Outgoing]:
        refused: list[Outgoing] = []
        for start in range(0, len(messages), SQS_BATCH):
            chunk = messages[start : start + SQS_BATCH]
            entries: list[dict[str, Any]] = []
            for i, m in enumerate(chunk):
                entry: dict[str, Any] = {"Id": str(i), "MessageBody": m.body, "MessageGroupId": m.group}
                if m.delay > 0:
                    entry["DelaySeconds"] = min(MAX_DELAY_SECONDS, m.delay)
                entries.append(entry)
            try:
                out = self.client.send_message_batch(QueueUrl=url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                reason = (
                    exc.response.get("Error", {}).get("Code", "ClientError")
                    if isinstance(exc, ClientError)
                    else type(exc).__name__
                )
                raise QueueUnavailable(refused + messages[start:], reason) from exc
            for failed in out.get("Failed", []):
                refused.append(chunk[int(failed["Id"])])
                log.warning(
                    "SQS refused a %s message of tenant %s: %s",
                    chunk[int(failed["Id"])].kind,
                    chunk[int(failed["Id"])].group,
                    failed.get("Code"),
                )
        return refused

    def retry_later(self, receipt: str, seconds: int) -> None:
        self.client.change_message_visibility(QueueUrl=self._url, ReceiptHandle=receipt, VisibilityTimeout=seconds)

    def dead_letters(self, limit: int, hide_seconds: int) -> list[tuple[str, str]]:
        """Long polling (1 s) asks every SQS server, so a letter is not missed while the queue is small."""
        out = self.client.receive_message(
            QueueUrl=self._dlq, MaxNumberOfMessages=min(limit, SQS_BATCH), VisibilityTimeout=hide_seconds, WaitTimeSeconds=1
        )
        return [(m["ReceiptHandle"], m["Body"]) for m in out.get("Messages", [])]

    def delete_dead(self, receipts: list[str]) -> None:
        for start in range(0, len(receipts), SQS_BATCH):
            chunk = receipts[start : start + SQS_BATCH]
            self.client.delete_message_batch(
                QueueUrl=self._dlq, Entries=[{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)]
            )

    def release_dead(self, receipts: list[str]) -> None:
        """Letters a replay looked at but did not take: visible again at once."""
        for start in range(0, len(receipts), SQS_BATCH):
            chunk = receipts[start : start + SQS_BATCH]
            self.client.change_message_visibility_batch(
                QueueUrl=self._dlq,
                Entries=[{"Id": str(i), "ReceiptHandle": r, "VisibilityTimeout": 0} for i, r in enumerate(chunk)],
            )
