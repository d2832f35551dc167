"""Integrations out: signed outbound webhooks, and agent messages to SMS and social customers
(docs/product.md W8, docs/webhooks.md).

Nothing here runs on a handler's path. The ``fanout`` function, which reads the workitems table's
stream, turns each committed change into deliveries (:meth:`Integrations.publish`): one queue
message per subscription and event, with the tenant's subscriptions read at most once per batch
and cached for a short while, so a coaching action costs no DynamoDB request more. The
``deliver_webhooks`` function takes the messages off the queue (:meth:`Integrations.handle`): it
signs each delivery per the Standard Webhooks specification and posts it; a failure hides the
message for an exponentially growing delay and it comes back with the same ``webhook-id``; after
the queue's redrive count it rests in the dead-letter queue until an admin replays it.

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
import secrets
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from chalicelib import metrics
from chalicelib.domain import coaching as rules
from chalicelib.domain.coaching import Channel, Workitem
from chalicelib.domain.errors import Conflict, Forbidden, NotFound
from chalicelib.domain.identity import Principal, Role, user_key
from chalicelib.domain.timeline import EntryKind
from chalicelib.domain.webhooks import (
    MAX_SUBSCRIPTIONS,
    RETRY_BASE_SECONDS,
    ROTATION_OVERLAP_SECONDS,
    Subscription,
    check_events,
    check_url,
    retry_delay,
)
from chalicelib.services.clock import iso, new_id, now_pair
from chalicelib.services.delivery import Notifier, Outbox
from chalicelib.services.fanout import Committed
from chalicelib.services.ports import Clock, DeliveryQueue, Directory, Poster, SmsSender, SubscriptionStore

log = logging.getLogger(__name__)

SENT = "sent"
FAILED = "failed"
REPLAY_ROUNDS = 10


class ChannelFailed(Exception):
    """The channel provider refused a message or could not be reached (``reason`` is safe to log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Created(dict[str, Any]):
    """A REST result answered 201."""


class DeliveryRetry(Exception):
    """Raised by the delivery function when a message must come back later (after its backoff)."""


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
        directory: Directory,
        clock: Clock,
        *,
        allow_private: bool,
        cache_seconds: float = 30.0,
        retry_base: int = RETRY_BASE_SECONDS,
    ) -> None:
        self.store = store
        self.queue = queue
        self.poster = poster
        self.sms = sms
        self.notifier = notifier
        self.directory = directory
        self.clock = clock
        self.allow_private = allow_private
        self.retry_base = retry_base
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, list[Subscription]]] = {}
        self._lock = threading.Lock()

    # --- admin ---------------------------------------------------------------------------------

    def put_subscription(
        self, caller: Principal, subscription_id: str, url: str, events: list[str], enabled: bool
    ) -> dict[str, Any]:
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
    ) -> dict[str, Any]:
        """A new secret; the current one keeps signing beside it for ``keep_previous_seconds`` (0: never again)."""
        _require_admin(caller)
        existing = self.store.get(caller.tenant_id, subscription_id)
        if existing is None:
            raise NotFound(f"subscription {subscription_id} not found")
        sub = existing.rotated(new_secret(), int(self._epoch()), keep_previous_seconds)
        self.store.put(sub, self._now())
        self._forget(caller.tenant_id)
        return self._wire(sub, with_secret=True)

    def put_sms_settings(self, caller: Principal, origination_identity: str) -> dict[str, Any]:
        if caller.role is not Role.ADMIN:
            raise Forbidden("only admins may change SMS settings")
        self.store.set_sms_origination(caller.tenant_id, origination_identity, self._now())
        return {"originationIdentity": origination_identity}

    def get_sms_settings(self, caller: Principal) -> dict[str, Any]:
        if caller.role is not Role.ADMIN:
            raise Forbidden("only admins may read SMS settings")
        return {"originationIdentity": self.store.sms_origination(caller.tenant_id)}

    def replay(self, caller: Principal) -> dict[str, Any]:
        """Move this tenant's dead letters back onto the delivery queue (up to 100 per call)."""
        _require_admin(caller)
        replayed = 0
        for _ in range(REPLAY_ROUNDS):
            letters = self.queue.dead_letters(10)
            if not letters:
                break
            mine = [(r, b) for r, b in letters if _tenant_of(b) == caller.tenant_id]
            self.queue.requeue_dead(mine)
            self.queue.release_dead([r for r, b in letters if _tenant_of(b) != caller.tenant_id])
            replayed += len(mine)
            if not mine:
                break
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

    def publish(self, committed: Iterable[Committed]) -> int:
        """Queue the deliveries that committed workitem changes cause; returns how many. Never
        raises: a failure is logged (the fan-out of pushes must go on)."""
        bodies: list[str] = []
        for c in committed:
            try:
                bodies.extend(self._deliveries(c))
            except Exception:
                log.exception("could not queue the deliveries of version %d of workitem %s", c.after.version, c.after.workitem_id)
        if bodies:
            try:
                self.queue.send(bodies)
            except Exception:
                metrics.WEBHOOK_ENQUEUE_FAILURES.add(len(bodies))
                log.exception("could not queue %d webhook deliveries", len(bodies))
                return 0
        return len(bodies)

    def _deliveries(self, c: Committed) -> list[str]:
        w = c.after
        subs = [s for s in self.subscriptions(w.tenant_id) if s.enabled]
        ts = iso(self.clock.now())
        out: list[str] = []

        def post(kind: str, eid: str, data: dict[str, Any], status: dict[str, Any] | None = None) -> int:
            n = 0
            for s in subs:
                if s.wants(kind):
                    out.append(
                        _message("post", w.tenant_id, sub=s.subscription_id, id=eid, type=kind, ts=ts, data=data, st=status)
                    )
                    n += 1
            return n

        workitem = w.to_wire()
        if w.version == 0 and not c.note.entries:
            post("workitem.assigned", event_id(w.tenant_id, w.workitem_id, 0, "assigned"), {"workitem": workitem})
        for entry in c.note.entries:
            channel = outbound_channel(w) if entry.kind is EntryKind.AGENT_MESSAGE else None
            status = {"wid": w.workitem_id, "seq": entry.seq, "agent": w.agent_id} if channel else None
            eid = event_id(w.tenant_id, w.workitem_id, entry.seq, "timeline.entry")
            reached = post(
                "timeline.entry", eid, {"entry": entry.to_wire(), "workitem": workitem}, status if channel == "webhook" else None
            )
            if channel == "sms":
                out.append(
                    _message(
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
                )
            elif channel == "webhook" and not reached:
                self._record(
                    w.tenant_id, w.workitem_id, entry.seq, w.agent_id, FAILED, "no connector subscribed to timeline.entry"
                )
        before = c.before
        if before.agent_id != w.agent_id:
            post(
                "workitem.transferred",
                event_id(w.tenant_id, w.workitem_id, w.version, "transferred"),
                {"workitem": workitem, "fromAgentId": before.agent_id},
            )
        if before.status is not w.status and w.status is rules.Status.ENDED:
            post("workitem.ended", event_id(w.tenant_id, w.workitem_id, w.version, "ended"), {"workitem": workitem})
        return out

    def emit(self, tenant_id: str, kind: str, data: dict[str, Any]) -> None:
        """An event from a handler (assistance, presence): one queue message, expanded into
        deliveries by the delivery function; no DynamoDB request here. Never raises."""
        with self._lock:
            hit = self._cache.get(tenant_id)
        if hit is not None and hit[0] > time.monotonic() and not any(s.wants(kind) for s in hit[1]):
            return  # known: nobody wants it
        try:
            self.queue.send([_message("event", tenant_id, id=new_id("evt"), type=kind, ts=iso(self.clock.now()), data=data)])
        except Exception:
            metrics.WEBHOOK_ENQUEUE_FAILURES.add()
            log.exception("could not queue %s event of tenant %s", kind, tenant_id)

    # --- the delivery function -----------------------------------------------------------------

    def handle(self, records: list[dict[str, Any]]) -> dict[str, int]:
        """SQS records (Lambda's event source, or the local stack's queue). Raises
        :class:`DeliveryRetry` when a message must come back after its backoff delay."""
        done = retry = 0
        for record in records:
            receipt = str(record.get("receiptHandle", ""))
            attempt = int((record.get("attributes") or {}).get("ApproximateReceiveCount", "1"))
            try:
                message = json.loads(record.get("body") or "{}")
                kind = message.get("k")
            except ValueError:
                log.error("dropping an unreadable delivery message")
                continue
            if kind == "post":
                ok = self._post(message, attempt)
            elif kind == "event":
                ok = self._expand(message)
            elif kind == "sms":
                self._sms(message)
                ok = True
            else:
                log.error("dropping a delivery message of unknown kind %r", kind)
                ok = True
            if ok:
                done += 1
            else:
                retry += 1
                try:
                    self.queue.retry_later(receipt, retry_delay(attempt, self.retry_base))
                except Exception:  # it still comes back, after the queue's own visibility timeout
                    log.warning("could not set the backoff of a delivery message", exc_info=True)
        if retry:
            raise DeliveryRetry(f"{retry} deliveries will be retried")
        return {"delivered": done}

    def _expand(self, message: dict[str, Any]) -> bool:
        tenant = message["tid"]
        bodies = [
            _message(
                "post",
                tenant,
                sub=s.subscription_id,
                id=message["id"],
                type=message["type"],
                ts=message["ts"],
                data=message["data"],
                st=None,
            )
            for s in self.subscriptions(tenant)
            if s.wants(message["type"])
        ]
        if bodies:
            self.queue.send(bodies)
        return True

    def _post(self, message: dict[str, Any], attempt: int) -> bool:
        tenant, sub_id, kind = message["tid"], message["sub"], message["type"]
        status = message.get("st")
        sub = self.store.get(tenant, sub_id)
        if sub is None or not sub.wants(kind):
            metrics.WEBHOOK_DELIVERIES.add(outcome="dropped")
            log.info("delivery %s dropped: subscription %s no longer wants %s", message["id"], sub_id, kind)
            if status:
                self._record(tenant, status["wid"], status["seq"], status["agent"], FAILED, "subscription removed")
            return True
        body = json.dumps(
            {"type": kind, "timestamp": message["ts"], "data": message["data"]}, separators=(",", ":"), ensure_ascii=False
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
        code, detail = self.poster.post(sub.url, body.encode(), headers)
        ok = code is not None and 200 <= code < 300
        metrics.WEBHOOK_DELIVERIES.add(outcome="delivered" if ok else "failed")
        if ok:
            log.info("delivery %s (%s) to subscription %s: HTTP %s", message["id"], kind, sub_id, code)
        else:
            log.warning(
                "delivery %s (%s) to subscription %s failed on attempt %d: %s",
                message["id"],
                kind,
                sub_id,
                attempt,
                f"HTTP {code}" if code is not None else detail,
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
        return ok

    def _sms(self, message: dict[str, Any]) -> None:
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
                {"tenantId": tenant, "workitemId": message["wid"], "messageId": str(message.get("mid") or "")},
            )
        except ChannelFailed as exc:
            log.warning("SMS for message %s of workitem %s refused: %s", message.get("mid"), message["wid"], exc.reason)
            self._record(tenant, message["wid"], message["seq"], message["agent"], FAILED, exc.reason)
            return
        log.info("SMS for message %s of workitem %s accepted by the provider as %s", message.get("mid"), message["wid"], sent_id)
        self._record(tenant, message["wid"], message["seq"], message["agent"], SENT, "")

    def _record(self, tenant_id: str, workitem_id: str, seq: int, agent_id: str, status: str, reason: str) -> None:
        """Write the delivery status on the entry (1 UpdateItem) and push it to the agent (1 GetItem)."""
        entry = self.store.set_delivery(tenant_id, workitem_id, seq, status)
        if entry is None:
            return
        agent = self.directory.recipient(tenant_id, user_key(agent_id))
        at, now_ms = now_pair(self.clock)
        box = Outbox(tenant_id, at, now_ms)
        data: dict[str, Any] = {
            "workitemId": workitem_id,
            "messageId": entry.message_id,
            "seq": seq,
            "delivery": status,
            "entry": entry.to_wire(),
        }
        if reason:
            data["reason"] = reason
        box.to_recipient(agent, "message.delivery", data)
        self.notifier.flush(box)

    def _epoch(self) -> float:
        return self.clock.now().timestamp()

    def _wire(self, sub: Subscription, with_secret: bool = False) -> dict[str, Any]:
        """The subscription on the wire, with ``previousSecretUntil`` while a rotation's overlap lasts."""
        body = sub.to_wire(with_secret)
        until = sub.overlap_until(self._epoch())
        if until is not None:
            body["previousSecretUntil"] = iso(datetime.fromtimestamp(until, UTC))
        return body

    def _now(self) -> str:
        return now_pair(self.clock)[0]


def _message(kind: str, tenant_id: str, **fields: Any) -> str:
    return json.dumps({"k": kind, "tid": tenant_id, **fields}, separators=(",", ":"), ensure_ascii=False)


def _tenant_of(body: str) -> str | None:
    try:
        value = json.loads(body).get("tid")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
