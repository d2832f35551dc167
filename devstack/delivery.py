"""The local stand-in for the delivery queues (SQS), the dead-letter queue they share and the SQS
event sources that invoke the ``deliver_webhooks`` function; and an SMS sender that records what it
would send instead of texting anyone.

:class:`LocalDeliveryQueue` keeps SQS's semantics the delivery code relies on: a received message
is invisible until its handler finishes (deleted) or fails (visible again after the visibility
timeout the handler set, or ``visibility_seconds``), ``ApproximateReceiveCount`` counts receives,
a message sent with a delay is hidden that long, and after ``max_receives`` a message moves to the
dead-letter queue. Like a fair queue (SQS with a ``MessageGroupId`` per tenant), it hands out the
message of the tenant with the fewest messages in flight first.

:class:`QueuePump` runs the app's handler on it from worker threads, as Lambda's event source
mapping does, with partial batch responses (``batchItemFailures``). It is also the local stack's
own fairness: it never runs more than ``per_group`` messages of one tenant at once, so a tenant whose
receivers hang holds at most that many of its ``workers`` (docs/webhooks.md, "Fair delivery").
Tests call :meth:`QueuePump.drain` instead.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.adapters.sms import context_of
from chalicelib.services.ports import Outgoing, SmsContext

log = logging.getLogger(__name__)

DELIVERY_HANDLER = "deliver_webhooks"
WORKERS = 8
PER_TENANT = 2


class _Message:
    def __init__(self, message_id: str, body: str, group: str) -> None:
        self.message_id = message_id
        self.body = body
        self.group = group
        self.visible_at = 0.0
        self.receives = 0
        self.receipt = ""


class LocalDeliveryQueue:
    """``dead_to``: the queue whose dead-letter queue this one's letters go to (SQS lets two queues
    share one); None: its own."""

    def __init__(
        self,
        *,
        max_receives: int = 14,
        visibility_seconds: float = 30.0,
        now: Callable[[], float] = time.monotonic,
        dead_to: LocalDeliveryQueue | None = None,
    ) -> None:
        self._now = now
        self._max = max_receives
        self._visibility = visibility_seconds
        self._ids = itertools.count(1)
        self._messages: dict[str, _Message] = {}
        self._by_receipt: dict[str, _Message] = {}
        self._dead_owner = dead_to or self
        self.dead: deque[_Message] = deque()
        self._dead_hidden: dict[str, tuple[float, _Message]] = {}
        self._lock = threading.Condition()

    # the DeliveryQueue port (chalicelib.services.ports)

    def send(self, messages: list[Outgoing]) -> list[Outgoing]:
        with self._lock:
            for outgoing in messages:
                m = _Message(f"local-{next(self._ids)}", outgoing.body, outgoing.group)
                m.visible_at = self._now() + outgoing.delay if outgoing.delay > 0 else 0.0
                self._messages[m.message_id] = m
            self._lock.notify_all()
        return []

    def retry_later(self, receipt: str, seconds: int) -> None:
        with self._lock:
            m = self._by_receipt.get(receipt)
            if m is not None:
                m.visible_at = self._now() + seconds

    def dead_letter(self, messages: list[Outgoing]) -> list[Outgoing]:
        owner = self._dead_owner
        with owner._lock:
            owner.dead.extend(_Message(f"local-{next(self._ids)}", m.body, m.group) for m in messages)
        return []

    def dead_letters(self, limit: int, hide_seconds: int) -> list[tuple[str, str]]:
        with self._lock:
            now = self._now()
            for receipt, (until, m) in list(self._dead_hidden.items()):  # a reader that never came back
                if until <= now:
                    del self._dead_hidden[receipt]
                    self.dead.append(m)
            out: list[tuple[str, str]] = []
            while self.dead and len(out) < limit:
                m = self.dead.popleft()
                m.receipt = f"dlq-{next(self._ids)}"
                self._dead_hidden[m.receipt] = (now + hide_seconds, m)
                out.append((m.receipt, m.body))
            return out

    def delete_dead(self, receipts: list[str]) -> None:
        with self._lock:
            for receipt in receipts:
                self._dead_hidden.pop(receipt, None)

    def release_dead(self, receipts: list[str]) -> None:
        with self._lock:
            released = [self._dead_hidden.pop(r, (0.0, None))[1] for r in receipts]
            self.dead.extendleft(reversed([m for m in released if m is not None]))  # where they were

    # what the event source mapping does

    def receive(self, limit: int = 1, in_flight: Mapping[str, int] | None = None, per_group: int = 0) -> list[dict[str, Any]]:
        """Visible messages as SQS records, the least busy tenant's first (``in_flight``: messages per
        tenant being handled now; ``per_group``: skip tenants with that many); each becomes invisible
        for ``visibility_seconds``."""
        now = self._now()
        busy: Counter[str] = Counter(in_flight or {})
        out: list[dict[str, Any]] = []
        with self._lock:
            while len(out) < limit:
                chosen: _Message | None = None
                for m in list(self._messages.values()):
                    if m.visible_at > now:
                        continue
                    if m.receives >= self._max:
                        del self._messages[m.message_id]
                        self._dead_owner._bury(m)
                        continue
                    if per_group and busy[m.group] >= per_group:
                        continue
                    if chosen is None or busy[m.group] < busy[chosen.group]:
                        chosen = m
                        if not busy[m.group]:
                            break  # an idle tenant's oldest message: nothing goes before it
                if chosen is None:
                    break
                busy[chosen.group] += 1
                out.append(self._take(chosen, now))
        return out

    def _take(self, m: _Message, now: float) -> dict[str, Any]:
        m.receives += 1
        m.visible_at = now + self._visibility
        m.receipt = f"{m.message_id}#{m.receives}"
        self._by_receipt[m.receipt] = m
        return {
            "messageId": m.message_id,
            "receiptHandle": m.receipt,
            "body": m.body,
            "attributes": {"ApproximateReceiveCount": str(m.receives), "MessageGroupId": m.group},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:local:000000000000:deliveries",
        }

    def _bury(self, m: _Message) -> None:
        with self._lock:
            self.dead.append(m)
        log.warning("delivery message %s moved to the dead-letter queue after %d receives", m.message_id, m.receives)

    def delete(self, receipt: str) -> None:
        with self._lock:
            m = self._by_receipt.pop(receipt, None)
            if m is not None:
                self._messages.pop(m.message_id, None)

    def wait(self, seconds: float) -> None:
        with self._lock:
            self._lock.wait(seconds)

    def nudge(self) -> None:
        """Wake a waiting reader (a tenant's message finished: its next one may go)."""
        with self._lock:
            self._lock.notify_all()

    def pending(self) -> int:
        with self._lock:
            return len(self._messages)


class QueuePump:
    """Invokes ``handler({"Records": [record]})`` for each visible message, ``workers`` at a time and
    at most ``per_group`` of one tenant at once, so a tenant whose receivers hang holds up only its
    own deliveries. A record the handler names in ``batchItemFailures`` stays on the queue (its
    backoff was set by the handler); the others are deleted; a handler that raises leaves it too."""

    def __init__(
        self,
        queue: LocalDeliveryQueue,
        handler: Callable[[dict[str, Any]], Any],
        workers: int = WORKERS,
        per_group: int = PER_TENANT,
    ) -> None:
        self.queue = queue
        self._handler = handler
        self._workers = workers
        self._per_group = per_group
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._busy = threading.Semaphore(workers)
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()

    def invoke(self, record: dict[str, Any]) -> bool:
        try:
            result = self._handler({"Records": [record]})
        except Exception as exc:  # the queue's visibility timeout applies, as on AWS
            log.warning("the delivery function failed on message %s: %s", record["messageId"], exc)
            return False
        failed = {f.get("itemIdentifier") for f in (result or {}).get("batchItemFailures") or []}
        if record["messageId"] in failed:
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
            with self._lock:
                in_flight = dict(self._in_flight)
            records = self.queue.receive(limit=1, in_flight=in_flight, per_group=self._per_group)
            if not records:
                self._busy.release()
                self.queue.wait(0.2)
                continue
            record = records[0]
            group = record["attributes"]["MessageGroupId"]
            with self._lock:
                self._in_flight[group] += 1

            def run(r: dict[str, Any] = record, g: str = group) -> None:
                try:
                    self.invoke(r)
                finally:
                    with self._lock:
                        self._in_flight[g] -= 1
                        if self._in_flight[g] <= 0:
                            del self._in_flight[g]
                    self._busy.release()
                    self.queue.nudge()

            self._pool.submit(run)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


class DeliveryPumps:
    """The local stack's SQS event sources on the delivery function: webhook deliveries, and SMS on
    a queue of their own (so a text never waits behind a webhook post)."""

    def __init__(self, *pumps: QueuePump) -> None:
        self.pumps = pumps

    def stop(self) -> None:
        for pump in self.pumps:
            pump.stop()


class RecordingSms:
    """The local stack's SMS sender: records and logs what End User Messaging SMS would be asked to
    send (``GET /_local/outbound`` shows it); it texts nobody."""

    def __init__(self, keep: int = 500) -> None:
        self._lock = threading.Lock()
        self.recorded: deque[dict[str, Any]] = deque(maxlen=keep)

    def send_text(self, origination: str, destination: str, text: str, context: SmsContext) -> str:
        message_id = f"local-sms-{int(time.time() * 1000)}"
        with self._lock:
            self.recorded.append(
                {
                    "channel": "sms",
                    "messageId": message_id,
                    "from": origination,
                    "to": destination,
                    "text": text,
                    **context_of(context),
                }
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
