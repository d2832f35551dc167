"""Integrations out: signed outbound webhooks, and agent messages to SMS and social customers
(docs/product.md W8, docs/webhooks.md).

Nothing here runs on a handler's path. The ``fanout`` function, which reads the workitems table's
stream, turns each committed change into deliveries (:meth:`Integrations.publish`): one queue
message per subscription and event, with the tenant's subscriptions read at most once per batch
and cached for a short while, so a coaching action costs no DynamoDB request more. A message SQS
refuses is sent again within the invocation, and what is still refused is kept, with its payload,
in the dead-letter queue (never dropped, never a reason to push the batch to sockets again). The
``deliver_webhooks`` function takes the messages off the queues (:meth:`Integrations.handle`): it
signs each delivery per the Standard Webhooks specification and posts it; a failure hides the
message for an exponentially growing delay (a partial batch response, not a function error) and it
comes back with the same ``webhook-id``; after its last attempt it rests in the dead-letter queue
until an admin replays it.

Fair delivery (``domain.fairness``, docs/webhooks.md): every message names its tenant (the queue's
fair-queue group); a receiver not known to be fast is posted to only through its tenant's slow lane;
a subscription whose receiver failed three times in a row is not posted to while its circuit is
open; SMS have a queue of their own.

Agent messages on SMS workitems go out through the SMS port; on social workitems the
``timeline.entry`` delivery is what the channel provider's connector consumes. Either way the
outcome is written on the entry (``delivery: sent|failed``) and pushed to the agent.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from chalicelib import metrics
from chalicelib.domain import coaching as rules
from chalicelib.domain.coaching import Channel, Workitem
from chalicelib.domain.errors import Conflict, Forbidden, NotFound
from chalicelib.domain.fairness import SLOW_LANE_PLACES, SLOW_SECONDS, Gate, Health, after_attempt, gate
from chalicelib.domain.identity import Principal, Role, user_key
from chalicelib.domain.inbound_sms import is_e164
from chalicelib.domain.timeline import EntryKind
from chalicelib.domain.webhooks import (
    DELIVERY_TIMEOUT_SECONDS,
    MAX_ATTEMPTS,
    MAX_SUBSCRIPTIONS,
    RETRY_BASE_SECONDS,
    ROTATION_OVERLAP_SECONDS,
    Subscription,
    SubscriptionView,
    check_events,
    check_url,
    retry_delay,
)
from chalicelib.services import push_events as ev
from chalicelib.services.clock import epoch_ms, iso, new_id, now_pair
from chalicelib.services.delivery import Notifier
from chalicelib.services.fanout import Committed
from chalicelib.services.ports import (
    ChannelFailed,
    ClaimedElsewhere,
    Clock,
    Created,
    DeliveryQueue,
    Outgoing,
    Poster,
    QueueMessage,
    QueueUnavailable,
    RecipientLookup,
    SmsContext,
    SmsSender,
    SubscriptionStore,
)
from chalicelib.services.results import DeliveryNote, SmsSettings, TransferNote

log = logging.getLogger(__name__)

SENT = "sent"
FAILED = "failed"
# A replay looks at up to this many batches of 10 dead letters (or this long), and queues at most
# REPLAY_MAX of the caller's; other tenants' letters it looked at are hidden only while it runs.
REPLAY_SCAN_BATCHES = 50
REPLAY_SECONDS = 10.0
REPLAY_MAX = 100
REPLAY_HIDE_SECONDS = 60
# A message a queue refused is sent again after these pauses, within the invocation, before it is
# kept in the dead-letter queue instead.
ENQUEUE_PAUSES = (0.1, 0.5, 1.0)
# A slow-lane place (and a probe's claim) lasts one attempt and a margin: a holder that dies frees it.
LANE_LEASE_SECONDS = int(DELIVERY_TIMEOUT_SECONDS) + 5
# A delivery that keeps finding its tenant's lane full waits at most this long between looks (SQS's
# longest message delay).
MAX_LANE_WAIT_SECONDS = 900


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def event_id(*parts: object) -> str:
    """The same id for the same event, however often the stream hands its change over."""
    return "evt_" + hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]


def sign(secret: str, message_id: str, timestamp: datetime, body: str) -> str:
    from standardwebhooks.webhooks import Webhook

    return Webhook(secret).sign(message_id, timestamp, body)


def _require_admin(caller: Principal) -> None:
    if caller.role is not Role.ADMIN:
        raise Forbidden("only admins may manage webhook subscriptions")


def outbound_channel(workitem: Workitem) -> str | None:
    """How an agent message on ``workitem`` reaches its customer: 'sms', 'webhook' or None (the
    customer is on the web socket, or the channel has no text messages)."""
    if workitem.channel in rules.WEB_CHANNELS or workitem.channel not in rules.TEXT_COACHING_CHANNELS:
        return None
    return "sms" if workitem.channel is Channel.SMS else "webhook"


class Integrations:
    def __init__(
        self,
        store: SubscriptionStore,
        queue: DeliveryQueue,
        poster: Poster,
        sms: SmsSender,
        notifier: Notifier,
        directory: RecipientLookup,
        clock: Clock,
        *,
        allow_private: bool,
        sms_queue: DeliveryQueue | None = None,
        cache_seconds: float = 30.0,
        retry_base: int = RETRY_BASE_SECONDS,
        max_attempts: int = MAX_ATTEMPTS,
        lane_places: int = SLOW_LANE_PLACES,
        enqueue_pauses: Sequence[float] = ENQUEUE_PAUSES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.queue = queue
        self.sms_queue = sms_queue or queue
        self.poster = poster
        self.sms = sms
        self.notifier = notifier
        self.directory = directory
        self.clock = clock
        self.allow_private = allow_private
        self.retry_base = retry_base
        self.max_attempts = max_attempts
        self.lane_places = lane_places
        self._pauses = tuple(enqueue_pauses)
        self._sleep = sleep
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, list[Subscription]]] = {}
        self._lock = threading.Lock()

    # --- admin ---------------------------------------------------------------------------------

    def put_subscription(
        self, caller: Principal, subscription_id: str, url: str, events: list[str], enabled: bool
    ) -> SubscriptionView | Created:
        _require_admin(caller)
        check_url(url, self.allow_private)
        wanted = check_events(events)
        tenant = caller.tenant_id
        existing = self.store.get(tenant, subscription_id)
        if existing is None and len(self.store.list(tenant)) >= MAX_SUBSCRIPTIONS:
            raise Conflict(f"a tenant may have at most {MAX_SUBSCRIPTIONS} webhook subscriptions")
        if existing is None:
            sub = Subscription(tenant, subscription_id, url, wanted, enabled, new_secret())
        else:  # the secrets (and a rotation's overlap) stay as they are
            sub = dataclasses.replace(existing, url=url, events=wanted, enabled=enabled)
        self.store.put(sub, self._now())
        self._forget(tenant)
        if existing is None:
            return Created(self._wire(sub, with_secret=True))
        return self._wire(sub)

    def list_subscriptions(self, caller: Principal) -> dict[str, Any]:
        _require_admin(caller)
        return {"subscriptions": [self._wire(s) for s in self.store.list(caller.tenant_id)]}

    def delete_subscription(self, caller: Principal, subscription_id: str) -> None:
        _require_admin(caller)
        if not self.store.delete(caller.tenant_id, subscription_id):
            raise NotFound(f"subscription {subscription_id} not found")
        self._forget(caller.tenant_id)

    def rotate_secret(
        self, caller: Principal, subscription_id: str, keep_previous_seconds: int = ROTATION_OVERLAP_SECONDS
    ) -> SubscriptionView:
        """A new secret; the current one keeps signing beside it for ``keep_previous_seconds`` (0: never again)."""
        _require_admin(caller)
        existing = self.store.get(caller.tenant_id, subscription_id)
        if existing is None:
            raise NotFound(f"subscription {subscription_id} not found")
        sub = existing.rotated(new_secret(), int(self._epoch()), keep_previous_seconds)
        self.store.put(sub, self._now())
        self._forget(caller.tenant_id)
        return self._wire(sub, with_secret=True)

    def put_sms_settings(self, caller: Principal, origination_identity: str, phone_number: str | None = None) -> SmsSettings:
        """The identity agents' texts go out from, and the number customers text (``phone_number``,
        or the identity when it is an E.164 number), claimed for the tenant: another tenant's
        number is 409 and nothing is saved (1 GetItem + 1 TransactWriteItems)."""
        if caller.role is not Role.ADMIN:
            raise Forbidden("only admins may change SMS settings")
        number = phone_number if phone_number is not None else (origination_identity if is_e164(origination_identity) else None)
        _, previous = self.store.sms_settings(caller.tenant_id)
        try:
            self.store.set_sms_settings(caller.tenant_id, origination_identity, number, previous, self._now())
        except ClaimedElsewhere:
            raise Conflict(f"the phone number {number} belongs to another tenant") from None
        return SmsSettings(origination_identity, number)

    def get_sms_settings(self, caller: Principal) -> SmsSettings:
        if caller.role is not Role.ADMIN:
            raise Forbidden("only admins may read SMS settings")
        return SmsSettings(*self.store.sms_settings(caller.tenant_id))

    def replay(self, caller: Principal) -> dict[str, Any]:
        """Move this tenant's dead letters back onto their queues (up to REPLAY_MAX per call).

        The dead-letter queue is shared by every tenant: the call reads on past other tenants'
        letters (up to REPLAY_SCAN_BATCHES batches of 10, or REPLAY_SECONDS), keeping those hidden
        while it runs so that it reaches the ones behind, and makes them visible again before it
        answers."""
        _require_admin(caller)
        tenant = caller.tenant_id
        replayed = 0
        passed: list[str] = []
        deadline = time.monotonic() + REPLAY_SECONDS
        try:
            for _ in range(REPLAY_SCAN_BATCHES):
                letters = self.queue.dead_letters(10, REPLAY_HIDE_SECONDS)
                if not letters:
                    break
                mine = {r: _outgoing(_fresh(b)) for r, b in letters if _tenant_of(b) == tenant}
                passed += [r for r, _ in letters if r not in mine]
                if mine:
                    refused, _ = self._send_routed(list(mine.values()))
                    taken = [r for r, m in mine.items() if m not in refused]
                    passed += [r for r, m in mine.items() if m in refused]
                    self.queue.delete_dead(taken)
                    replayed += len(taken)
                if replayed >= REPLAY_MAX or time.monotonic() > deadline:
                    break
        finally:
            if passed:
                self.queue.release_dead(passed)
        return {"replayed": replayed}

    # --- from the workitems stream (fanout) and from handlers ----------------------------------

    def subscriptions(self, tenant_id: str) -> list[Subscription]:
        """The tenant's subscriptions: 1 Query, then cached for ``cache_seconds``."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(tenant_id)
            if hit is not None and hit[0] > now:
                return hit[1]
        subs = self.store.list(tenant_id)
        with self._lock:
            self._cache[tenant_id] = (now + self._cache_seconds, subs)
        return subs

    def _forget(self, tenant_id: str) -> None:
        with self._lock:
            self._cache.pop(tenant_id, None)

    def publish(self, committed: Iterable[Committed]) -> list[Committed]:
        """Queue the deliveries that committed workitem changes cause. Returns the changes some of
        whose deliveries could be neither queued nor kept in the dead-letter queue (the caller hands
        them back to the stream); a change this code cannot turn into deliveries is logged and skipped."""
        owned: list[tuple[Outgoing, Committed]] = []
        for c in committed:
            try:
                owned += [(m, c) for m in self._deliveries(c)]
            except Exception:
                log.exception("could not queue the deliveries of version %d of workitem %s", c.after.version, c.after.workitem_id)
        if not owned:
            return []
        lost = {id(m) for m in self._enqueue([m for m, _ in owned], self._pauses)}
        changes = {id(c): c for m, c in owned if id(m) in lost}
        return list(changes.values())

    def _enqueue(self, messages: list[Outgoing], pauses: Sequence[float]) -> list[Outgoing]:
        """Queue ``messages`` (SMS on their own queue). What a queue refuses is sent again after each
        of ``pauses``; what is still refused, or found unreachable, is kept in the dead-letter queue
        with its payload, from which a replay queues it again. Returns what could not be kept either."""
        pending, reachable = messages, True
        for pause in (None, *pauses):
            if pause is not None:
                self._sleep(pause)
            pending, reachable = self._send_routed(pending)
            if not pending or not reachable:
                break
        if not pending:
            return []
        metrics.WEBHOOK_ENQUEUE_FAILURES.add(len(pending))
        tenants = sorted({m.group for m in pending})
        log.error(
            "could not queue %d deliveries (tenants %s); keeping them in the dead-letter queue",
            len(pending),
            ", ".join(tenants[:5]),
            extra={"event": "webhook_enqueue_failed", "count": len(pending)},
        )
        try:
            left = self.queue.dead_letter(pending)
        except QueueUnavailable as exc:
            left = exc.unsent
        except Exception:
            log.exception("the dead-letter queue failed")
            left = pending
        if left:
            log.error(
                "could not keep %d deliveries in the dead-letter queue either",
                len(left),
                extra={"event": "webhook_enqueue_lost", "count": len(left)},
            )
        return left

    def _send_routed(self, messages: list[Outgoing]) -> tuple[list[Outgoing], bool]:
        """Send each message to its queue: (the refused ones, False when a queue could not be reached)."""
        refused: list[Outgoing] = []
        reachable = True
        for queue, batch in (
            (self.sms_queue, [m for m in messages if m.kind == "sms"]),
            (self.queue, [m for m in messages if m.kind != "sms"]),
        ):
            if not batch:
                continue
            try:
                refused += queue.send(batch)
            except QueueUnavailable as exc:
                log.warning("a delivery queue could not be reached (%s): %d messages not queued", exc.reason, len(exc.unsent))
                refused += exc.unsent
                reachable = False
            except Exception:  # a queue that broke otherwise (not configured, a bug): as unreachable
                log.exception("a delivery queue failed: %d messages not queued", len(batch))
                refused += batch
                reachable = False
        return refused, reachable

    def _deliveries(self, c: Committed) -> list[Outgoing]:
        w = c.after
        subs = [s for s in self.subscriptions(w.tenant_id) if s.enabled]
        ts = iso(self.clock.now())
        out: list[Outgoing] = []

        def post(kind: str, eid: str, data: dict[str, Any], status: dict[str, Any] | None = None) -> int:
            n = 0
            for s in subs:
                if s.wants(kind):
                    body = _message("post", w.tenant_id, sub=s.subscription_id, id=eid, type=kind, ts=ts, data=data, st=status)
                    out.append(Outgoing(body, w.tenant_id, "post"))
                    n += 1
            return n

        workitem = self.notifier.wire.plain(w)
        if w.version == 0 and not c.note.entries:
            post("workitem.assigned", event_id(w.tenant_id, w.workitem_id, 0, "assigned"), {"workitem": workitem})
        for entry in c.note.entries:
            channel = outbound_channel(w) if entry.kind is EntryKind.AGENT_MESSAGE else None
            status = {"wid": w.workitem_id, "seq": entry.seq, "agent": w.agent_id} if channel else None
            eid = event_id(w.tenant_id, w.workitem_id, entry.seq, "timeline.entry")
            reached = post(
                "timeline.entry",
                eid,
                {"entry": self.notifier.wire.plain(entry), "workitem": workitem},
                status if channel == "webhook" else None,
            )
            if channel == "sms":
                body = _message(
                    "sms",
                    w.tenant_id,
                    id=eid,
                    wid=w.workitem_id,
                    seq=entry.seq,
                    agent=w.agent_id,
                    to=w.customer_id,
                    text=entry.text or "",
                    mid=entry.message_id,
                )
                out.append(Outgoing(body, w.tenant_id, "sms"))
            elif channel == "webhook" and not reached:
                self._record(
                    w.tenant_id, w.workitem_id, entry.seq, w.agent_id, FAILED, "no connector subscribed to timeline.entry"
                )
        before = c.before
        if before.agent_id != w.agent_id:
            post(
                "workitem.transferred",
                event_id(w.tenant_id, w.workitem_id, w.version, "transferred"),
                self.notifier.wire.plain(TransferNote(w, before.agent_id)),
            )
        if before.status is not w.status and w.status is rules.Status.ENDED:
            post("workitem.ended", event_id(w.tenant_id, w.workitem_id, w.version, "ended"), {"workitem": workitem})
        return out

    def emit(self, tenant_id: str, kind: str, data: Any, *, event_id: str | None = None, timestamp: str | None = None) -> None:
        """An event from a handler (assistance, presence, connectors): one queue message, expanded into
        deliveries by the delivery function; no DynamoDB request here, and no second try on the
        handler's path (a refused message is kept in the dead-letter queue). Never raises. ``data`` is
        a record (rendered by the wire module) or data already rendered. An ``event_id`` given makes a
        repeated event carry the same ``webhook-id`` (receivers de-duplicate)."""
        with self._lock:
            hit = self._cache.get(tenant_id)
        if hit is not None and hit[0] > time.monotonic() and not any(s.wants(kind) for s in hit[1]):
            return  # known: nobody wants it
        body = _message(
            "event",
            tenant_id,
            id=event_id or new_id("evt"),
            type=kind,
            ts=timestamp or iso(self.clock.now()),
            data=self.notifier.wire.plain(data),
        )
        try:
            self._enqueue([Outgoing(body, tenant_id, "event")], ())
        except Exception:
            metrics.WEBHOOK_ENQUEUE_FAILURES.add()
            log.exception("could not queue %s event of tenant %s", kind, tenant_id)

    # --- the delivery function -----------------------------------------------------------------

    def handle(self, messages: Sequence[QueueMessage]) -> list[str]:
        """The queues' messages (Lambda's event sources, or the local stack's queues). Answers the ids
        of the messages that must come back after their backoff (which is set here); the others are
        done. Raises only on the unexpected (the store failing), which the queue retries after its
        visibility timeout."""
        return [m.message_id for m in messages if not self._handle_one(m)]

    def _handle_one(self, queued: QueueMessage) -> bool:
        """True when the message is done (deleted from its queue), False when it comes back later."""
        receipt = queued.receipt
        try:
            message = json.loads(queued.body or "{}")
            kind = message.get("k")
            attempt = int(message.get("n") or 0) + queued.receives
        except (ValueError, AttributeError, TypeError):
            log.error("dropping an unreadable delivery message")
            return True
        if kind == "post":
            return self._deliver(message, attempt, receipt)
        if kind == "event":
            return self._expand(message)
        if kind == "sms":
            self._sms(message)
            return True
        log.error("dropping a delivery message of unknown kind %r", kind)
        return True

    def _deliver(self, message: dict[str, Any], attempt: int, receipt: str) -> bool:
        outcome, wait = self._post(message, attempt)
        if outcome == _DONE:
            return True
        if outcome == _WAIT:  # the tenant's slow lane is full: not an attempt, back in a while
            # Until a place frees, and twice as long each time it finds the lane full again: a tenant's
            # backlog behind a full lane comes back ever more rarely instead of keeping the function busy.
            waits = int(message.get("w") or 0)
            delay = min(MAX_LANE_WAIT_SECONDS, wait * 2 ** min(waits, 10)) + secrets.randbelow(1 + min(wait, 30))
            copy = Outgoing(_message_with(message, n=attempt - 1, w=waits + 1), message["tid"], "post", delay)
            try:
                if not self.queue.send([copy]):
                    log.info(
                        "delivery %s waits %d s for a place in its tenant's slow lane",
                        message["id"],
                        delay,
                        extra=_outcome("waiting"),
                    )
                    return True
            except QueueUnavailable:
                pass  # it comes back as a failed attempt instead
        if attempt >= self.max_attempts:
            kept = Outgoing(_message_with(message, n=None, w=None), message["tid"], "post")
            try:
                if not self.queue.dead_letter([kept]):
                    log.warning(
                        "delivery %s to subscription %s moved to the dead-letter queue after %d attempts",
                        message["id"],
                        message["sub"],
                        attempt,
                        extra=_outcome("dead_lettered"),
                    )
                    return True
            except QueueUnavailable:
                pass  # the queue's own redrive moves it after its receive count
        delay = max(retry_delay(attempt, self.retry_base), wait)
        try:
            self.queue.retry_later(receipt, delay)
        except Exception:  # it still comes back, after the queue's own visibility timeout
            log.warning("could not set the backoff of a delivery message", exc_info=True)
        return False

    def _expand(self, message: dict[str, Any]) -> bool:
        tenant = message["tid"]
        messages = [
            Outgoing(
                _message(
                    "post",
                    tenant,
                    sub=s.subscription_id,
                    id=message["id"],
                    type=message["type"],
                    ts=message["ts"],
                    data=message["data"],
                    st=None,
                ),
                tenant,
                "post",
            )
            for s in self.subscriptions(tenant)
            if s.wants(message["type"])
        ]
        # What could be neither queued nor kept: the event comes back (its posts may repeat, with
        # the same webhook-id, which receivers de-duplicate on).
        return not messages or not self._enqueue(messages, self._pauses)

    def _post(self, message: dict[str, Any], attempt: int) -> tuple[str, int]:
        """Post one delivery if its receiver's health allows: (outcome, seconds to wait at least)."""
        tenant, sub_id, kind = message["tid"], message["sub"], message["type"]
        status = message.get("st")
        sub = self.store.get(tenant, sub_id)
        if sub is None or not sub.wants(kind):
            log.info(
                "delivery %s dropped: subscription %s no longer wants %s", message["id"], sub_id, kind, extra=_outcome("dropped")
            )
            if status:
                self._record(tenant, status["wid"], status["seq"], status["agent"], FAILED, "subscription removed")
            return _DONE, 0
        now = self._epoch()
        health = sub.health
        door = gate(health, now)
        if door is Gate.PROBE and not self.store.claim_probe(tenant, sub_id, health.open_until, int(now) + LANE_LEASE_SECONDS):
            door = Gate.PARK  # another delivery is probing the receiver
            health = health._replace(open_until=int(now) + LANE_LEASE_SECONDS)
        if door is Gate.PARK:
            wait = max(1, health.open_until - int(now)) + secrets.randbelow(5)
            log.info(
                "delivery %s to subscription %s not posted: its circuit is open for %d s after %d failed attempts",
                message["id"],
                sub_id,
                wait,
                health.failures,
                extra=_outcome("parked"),
            )
            if status and attempt == 1:
                self._record(
                    tenant,
                    status["wid"],
                    status["seq"],
                    status["agent"],
                    FAILED,
                    "the receiver is not answering (its circuit is open)",
                )
            return _FAILED, wait
        place: int | None = None
        holder = f"{message['id']}:{secrets.token_hex(4)}"
        if door is not Gate.POST:
            now_ms = epoch_ms(self.clock.now())
            place, frees_at = self.store.take_lane(tenant, holder, now_ms, self.lane_places, LANE_LEASE_SECONDS * 1000)
            if place is None:
                return _WAIT, max(1, math.ceil((frees_at - now_ms) / 1000))
        try:
            code, detail, seconds, health = self._attempt(sub, message, watched=door is Gate.POST)
        finally:
            if place is not None:
                self._leave_lane(tenant, holder, place)
        ok = code is not None and 200 <= code < 300
        changed = after_attempt(health, ok, seconds, self._epoch())
        if changed is not None:
            self._set_health(sub, changed)
            if changed.broken:
                metrics.WEBHOOK_CIRCUITS_OPENED.add()
                log.warning(
                    "subscription %s: circuit open for %d s after %d failed attempts in a row",
                    sub_id,
                    changed.open_until - int(self._epoch()),
                    changed.failures,
                    extra={"event": "webhook_circuit_opened"},
                )
        if ok:
            log.info(
                "delivery %s (%s) to subscription %s: HTTP %s in %.2f s",
                message["id"],
                kind,
                sub_id,
                code,
                seconds,
                extra=_outcome("delivered"),
            )
        else:
            log.warning(
                "delivery %s (%s) to subscription %s failed on attempt %d: %s",
                message["id"],
                kind,
                sub_id,
                attempt,
                f"HTTP {code}" if code is not None else detail,
                extra=_outcome("failed"),
            )
        if status and (ok or attempt == 1):
            self._record(
                tenant,
                status["wid"],
                status["seq"],
                status["agent"],
                SENT if ok else FAILED,
                "" if ok else (f"HTTP {code}" if code is not None else detail),
            )
        return (_DONE, 0) if ok else (_FAILED, 0)

    def _attempt(self, sub: Subscription, message: dict[str, Any], watched: bool) -> tuple[int | None, str, float, Health]:
        """Sign and post: (status, why not, seconds taken, the health the attempt began from). A
        ``watched`` post (to a receiver known to be fast) that is still running after SLOW_SECONDS
        marks the receiver slow at once, so the deliveries behind it go through the slow lane."""
        body = json.dumps(
            {"type": message["type"], "timestamp": message["ts"], "data": message["data"]},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        moment = self.clock.now()
        headers = {
            "content-type": "application/json",
            "user-agent": "supervisor-coaching-webhooks",
            "webhook-id": message["id"],
            "webhook-timestamp": str(int(moment.timestamp())),
            # Several signatures while a rotation overlaps: the receiver accepts any that verifies.
            "webhook-signature": " ".join(
                sign(secret, message["id"], moment, body) for secret in sub.signing_secrets(moment.timestamp())
            ),
        }
        health = sub.health
        slow = health._replace(fast=False)
        watchdog: threading.Timer | None = None
        if watched:
            watchdog = threading.Timer(SLOW_SECONDS, self._set_health, (sub, slow))
            watchdog.daemon = True
            watchdog.start()
        started = time.monotonic()
        try:
            code, detail = self.poster.post(sub.url, body.encode(), headers)
        finally:
            seconds = time.monotonic() - started
            if watchdog is not None:
                watchdog.cancel()
                watchdog.join()
        return code, detail, seconds, slow if watched and seconds > SLOW_SECONDS else health

    def _set_health(self, sub: Subscription, health: Health) -> None:
        """Health is advice for the next deliveries: a store that fails to write it fails no delivery
        (which would then be posted again)."""
        try:
            self.store.set_health(sub.tenant_id, sub.subscription_id, health)
        except Exception:
            log.warning("could not write the receiver health of subscription %s", sub.subscription_id, exc_info=True)

    def _leave_lane(self, tenant_id: str, holder: str, place: int) -> None:
        try:
            self.store.leave_lane(tenant_id, holder, place)
        except Exception:  # the place frees itself when its lease runs out
            log.warning("could not leave slow-lane place %d of tenant %s", place, tenant_id, exc_info=True)

    def _sms(self, message: dict[str, Any]) -> None:
        """Sent once, never retried after the provider has it: a failure before the send raises (the
        queue retries it: nothing was texted); one after it (writing the status) is only logged."""
        tenant = message["tid"]
        origination = self.store.sms_origination(tenant)
        if not origination:
            self._record(
                tenant,
                message["wid"],
                message["seq"],
                message["agent"],
                FAILED,
                "no SMS origination identity is configured for the tenant",
            )
            return
        try:
            sent_id = self.sms.send_text(
                origination,
                message["to"],
                message["text"],
                SmsContext(tenant, message["wid"], str(message.get("mid") or "")),
            )
        except ChannelFailed as exc:
            log.warning("SMS for message %s of workitem %s refused: %s", message.get("mid"), message["wid"], exc.reason)
            self._record(tenant, message["wid"], message["seq"], message["agent"], FAILED, exc.reason)
            return
        log.info("SMS for message %s of workitem %s accepted by the provider as %s", message.get("mid"), message["wid"], sent_id)
        try:
            self._record(tenant, message["wid"], message["seq"], message["agent"], SENT, "")
        except Exception:  # texted already: a retry would text the customer twice
            log.exception("SMS for message %s was sent but its status could not be written", message.get("mid"))

    def _record(self, tenant_id: str, workitem_id: str, seq: int, agent_id: str, status: str, reason: str) -> None:
        """Write the delivery status on the entry (1 UpdateItem) and push it to the agent (1 GetItem)."""
        entry = self.store.set_delivery(tenant_id, workitem_id, seq, status)
        if entry is None:
            return
        agent = self.directory.recipient(tenant_id, user_key(agent_id))
        box = self.notifier.outbox(tenant_id)
        box.to_recipient(agent, ev.MESSAGE_DELIVERY, DeliveryNote(workitem_id, entry.message_id, seq, status, entry, reason))
        self.notifier.flush(box)

    def _epoch(self) -> float:
        return self.clock.now().timestamp()

    def _wire(self, sub: Subscription, with_secret: bool = False) -> SubscriptionView:
        """The subscription as shown: until when the previous secret signs while a rotation's overlap
        lasts, and until when deliveries are paused while its circuit is open."""
        now = self._epoch()
        until = sub.overlap_until(now)
        paused = sub.health.open_until if sub.health.broken and sub.health.open_until > now else None
        return SubscriptionView(
            sub,
            with_secret,
            iso(datetime.fromtimestamp(until, UTC)) if until is not None else None,
            iso(datetime.fromtimestamp(paused, UTC)) if paused is not None else None,
        )

    def _now(self) -> str:
        return now_pair(self.clock)[0]


_DONE, _FAILED, _WAIT = "done", "failed", "wait"


def _outcome(outcome: str) -> dict[str, str]:
    """Count a delivery by its outcome (the ``WebhookDeliveries`` metric) and give its log line's keys
    (docs/logs.md)."""
    metrics.WEBHOOK_DELIVERIES.add(outcome=outcome)
    return {"event": "webhook_delivery", "outcome": outcome}


def _message(kind: str, tenant_id: str, **fields: Any) -> str:
    return json.dumps({"k": kind, "tid": tenant_id, **fields}, separators=(",", ":"), ensure_ascii=False)


def _message_with(message: dict[str, Any], n: int | None, w: int | None) -> str:
    """``message`` again, saying how many attempts were made before (``n``) and how often it waited
    for its tenant's slow lane (``w``); None: a fresh start."""
    fields = {k: v for k, v in message.items() if k not in ("n", "w")}
    if n:
        fields["n"] = n
    if w:
        fields["w"] = w
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


def _fresh(body: str) -> str:
    """A dead letter's body with its attempts and waits forgotten: a replay gets every attempt again."""
    try:
        message = json.loads(body)
    except ValueError:
        return body
    if not isinstance(message, dict) or not ("n" in message or "w" in message):
        return body
    return _message_with(message, None, None)


def _outgoing(body: str) -> Outgoing:
    try:
        message = json.loads(body)
    except ValueError:
        message = {}
    if not isinstance(message, dict):
        message = {}
    return Outgoing(body, str(message.get("tid") or "unknown"), str(message.get("k") or "post"))


def _tenant_of(body: str) -> str | None:
    try:
        value = json.loads(body).get("tid")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
