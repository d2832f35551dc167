"""The local stand-in for the webhook delivery queue (SQS), its dead-letter queue and the SQS event
source that invokes the ``deliver_webhooks`` function; and an SMS sender that records what it would
send instead of texting anyone.

:class:`LocalDeliveryQueue` keeps SQS's semantics the delivery code relies on: a received message
is invisible until its handler finishes (deleted) or fails (visible again after the visibility
timeout the handler set, or ``visibility_seconds``), ``ApproximateReceiveCount`` counts receives,
and after ``max_receives`` a message moves to the dead-letter queue. :class:`QueuePump` runs the
app's handler on it from worker threads, as Lambda's event source mapping does; tests call
:meth:`QueuePump.drain` instead.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

DELIVERY_HANDLER = "deliver_webhooks"


class _Message:
    def __init__(self, message_id: str, body: str) -> None:
        self.message_id = message_id
        self.body = body
        self.visible_at = 0.0
        self.receives = 0
        self.receipt = ""


class LocalDeliveryQueue:
    def __init__(
        self, *, max_receives: int = 14, visibility_seconds: float = 30.0, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._now = now
        self._max = max_receives
        self._visibility = visibility_seconds
        self._ids = itertools.count(1)
        self._messages: dict[str, _Message] = {}
        self._by_receipt: dict[str, _Message] = {}
        self.dead: deque[_Message] = deque()
        self._dead_hidden: dict[str, _Message] = {}
        self._lock = threading.Condition()

    # the DeliveryQueue port (chalicelib.services.ports)

    def send(self, bodies: list[str]) -> None:
        with self._lock:
            for body in bodies:
                m = _Message(f"local-{next(self._ids)}", body)
                self._messages[m.message_id] = m
            self._lock.notify_all()

    def retry_later(self, receipt: str, seconds: int) -> None:
        with self._lock:
            m = self._by_receipt.get(receipt)
            if m is not None:
                m.visible_at = self._now() + seconds

    def dead_letters(self, limit: int) -> list[tuple[str, str]]:
        with self._lock:
            out: list[tuple[str, str]] = []
            while self.dead and len(out) < limit:
                m = self.dead.popleft()
                m.receipt = f"dlq-{next(self._ids)}"
                self._dead_hidden[m.receipt] = m
                out.append((m.receipt, m.body))
            return out

    def requeue_dead(self, items: list[tuple[str, str]]) -> None:
        with self._lock:
            for receipt, _ in items:
                self._dead_hidden.pop(receipt, None)
        self.send([body for _, body in items])

    def release_dead(self, receipts: list[str]) -> None:
        with self._lock:
            for receipt in receipts:
                m = self._dead_hidden.pop(receipt, None)
                if m is not None:
                    self.dead.append(m)

    # what the event source mapping does

    def receive(self, limit: int = 1) -> list[dict[str, Any]]:
        """Visible messages as SQS records; each becomes invisible for ``visibility_seconds``."""
        now = self._now()
        out: list[dict[str, Any]] = []
        with self._lock:
            for m in list(self._messages.values()):
                if len(out) >= limit:
                    break
                if m.visible_at > now:
                    continue
                if m.receives >= self._max:
                    del self._messages[m.message_id]
                    self.dead.append(m)
                    log.warning("delivery message %s moved to the dead-letter queue after %d attempts", m.message_id, m.receives)
                    continue
                m.receives += 1
                m.visible_at = now + self._visibility
                m.receipt = f"{m.message_id}#{m.receives}"
                self._by_receipt[m.receipt] = m
                out.append(
                    {
                        "messageId": m.message_id,
                        "receiptHandle": m.receipt,
                        "body": m.body,
                        "attributes": {"ApproximateReceiveCount": str(m.receives)},
                        "eventSource": "aws:sqs",
                        "eventSourceARN": "arn:aws:sqs:local:000000000000:deliveries",
                    }
                )
        return out

    def delete(self, receipt: str) -> None:
        with self._lock:
            m = self._by_receipt.pop(receipt, None)
            if m is not None:
                self._messages.pop(m.message_id, None)

    def wait(self, seconds: float) -> None:
        with self._lock:
            self._lock.wait(seconds)

    def pending(self) -> int:
        with self._lock:
            return len(self._messages)


class QueuePump:
    """Invokes ``handler({"Records": [record]}, context)`` for each visible message, ``workers`` at a
    time, so one slow receiver holds up only its own deliveries."""

    def __init__(self, queue: LocalDeliveryQueue, handler: Callable[[dict[str, Any]], Any], workers: int = 4) -> None:
        self.queue = queue
        self._handler = handler
        self._workers = workers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._busy = threading.Semaphore(workers)

    def invoke(self, record: dict[str, Any]) -> bool:
        try:
            self._handler({"Records": [record]})
        except Exception as exc:  # the handler set the backoff (or the default visibility applies)
            log.info("delivery %s will be retried: %s", record["messageId"], exc)
            return False
        self.queue.delete(record["receiptHandle"])
        return True

    def drain(self, rounds: int = 50) -> int:
        """Synchronously handle every message visible now (and those they queue); returns how many ran."""
        ran = 0
        for _ in range(rounds):
            records = self.queue.receive(limit=100)
            if not records:
                break
            for record in records:
                self.invoke(record)
                ran += 1
        return ran

    def start(self) -> QueuePump:
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="deliver")
        self._thread = threading.Thread(target=self._run, name="delivery-queue", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self._pool is not None
        while not self._stop.is_set():
            if not self._busy.acquire(timeout=0.5):
                continue
            records = self.queue.receive(limit=1)
            if not records:
                self._busy.release()
                self.queue.wait(0.2)
                continue
            record = records[0]

            def run(r: dict[str, Any] = record) -> None:
                try:
                    self.invoke(r)
                finally:
                    self._busy.release()

            self._pool.submit(run)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


class RecordingSms:
    """The local stack's SMS sender: records and logs what End User Messaging SMS would be asked to
    send (``GET /_local/outbound`` shows it); it texts nobody."""

    def __init__(self, keep: int = 500) -> None:
        self._lock = threading.Lock()
        self.recorded: deque[dict[str, Any]] = deque(maxlen=keep)

    def send_text(self, origination: str, destination: str, text: str, context: dict[str, str]) -> str:
        message_id = f"local-sms-{int(time.time() * 1000)}"
        with self._lock:
            self.recorded.append(
                {"channel": "sms", "messageId": message_id, "from": origination, "to": destination, "text": text, **context}
            )
        # A warning, so it shows at every log level: nothing was texted.
        log.warning(
            "local stack: would send SMS %s from %s to %s (%d characters); see GET /_local/outbound",
            message_id,
            origination,
            destination,
            len(text),
        )
        return message_id

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.recorded)
