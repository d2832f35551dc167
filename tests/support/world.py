"""A whole product on moto, DynamoDB Local or in-memory stores, driven through the real Lambda entry points.

WebSocket frames go through ``chalicelib.entrypoints.ws`` with API Gateway-shaped events (the same
ones the local stack and AWS send); pushes land in a :class:`RecordingPusher` instead of sockets.
After every invocation the world reads the workitems table's stream and hands the new records to
the ``fanout`` entry point, as the event source mapping does on AWS (synchronously here, so a test
sees a change's events as soon as its action returns). On the in-memory stores
(``tests/support/fakes.py``) it turns the changes the fake store committed with a fan-out note into
the stream records DynamoDB would write for them (the item as the adapter writes it, new and old
images) and hands those to the same entry point.

The world is the production configuration unless a test says otherwise: webhook targets are checked
as on AWS (``webhook_targets="public"``; a test that posts to a receiver on this machine asks for
``test_settings(webhook_targets="local")``), and an exception the authorizer raises other than its
"Unauthorized" is a failure of the test, not a refusal.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib import bootstrap
from chalicelib.entrypoints import events, ws
from chalicelib.entrypoints.wire import WIRE
from chalicelib.settings import Settings
from devstack.delivery import LocalDeliveryQueue, QueuePump, RecordingSms
from devstack.fake_meetings import FakeMeetingProvider
from devstack.sentiment import LexiconSentiment
from devstack.streams import StreamTail
from devstack.tokens import mint, webhook_signature
from tests.support import fakes
from tests.support.fakes import MemoryStorage

JWT_SECRET = "test-jwt-secret-0123456789abcdef"
# One lexicon analyzer for every world of the process (building it reads its lexicon: about 0.1 s).
SENTIMENT = LexiconSentiment()
WEBHOOK_SECRET = "test-webhook-secret-0123456789ab"
MAX_POSTED_BYTES = 128 * 1024


TRANSCRIPT_STREAM_ARN = "arn:aws:kinesis:us-east-1:111122223333:stream/coaching-transcripts"


def test_settings(**overrides: Any) -> Settings:
    base = dict(
        region="us-east-1",
        jwt_secret=JWT_SECRET,
        webhook_secret=WEBHOOK_SECRET,
        websocket_endpoint="http://127.0.0.1:1",
        default_escalation_seconds=60,
        webhook_targets="public",
        webhook_cache_seconds=3600,
        # Rules cached for the whole test: request counts must not depend on how long a test takes.
        attention_cache_seconds=3600,
        # The live transcript's sink stream: the transcript function reads records of this stream only.
        transcript_stream_arn=TRANSCRIPT_STREAM_ARN,
    )
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


def _stream_tail(settings: Settings) -> StreamTail:
    """The workitems table's stream, from now on (moto in process, or DynamoDB Local)."""
    import boto3

    endpoint = settings.dynamodb_endpoint or None
    dynamodb = boto3.client("dynamodb", region_name=settings.region, endpoint_url=endpoint)
    # moto answers the Streams API only on its regional host, not on the account-specific one
    # botocore picks from the stream's ARN.
    streams = boto3.client(
        "dynamodbstreams",
        region_name=settings.region,
        endpoint_url=endpoint or f"https://streams.dynamodb.{settings.region}.amazonaws.com",
    )
    return StreamTail.for_table(dynamodb, streams, settings.workitems_table, reposition=not endpoint)


@contextlib.contextmanager
def atomic_aws_calls() -> Iterator[None]:
    """Make every SDK call atomic. moto applies a TransactWriteItems as several steps without a
    lock, so threads can interleave inside one transaction (real DynamoDB never allows that); the
    handlers still interleave between calls, which is the race that matters."""
    from botocore.client import BaseClient

    lock = threading.Lock()
    # A private method of botocore's (not in its type stubs), hence getattr/setattr.
    original: Callable[[BaseClient, str, Any], Any] = getattr(BaseClient, "_make_api_call")

    def locked(self: BaseClient, operation: str, params: Any) -> Any:
        with lock:
            return original(self, operation, params)

    setattr(BaseClient, "_make_api_call", locked)
    try:
        yield
    finally:
        setattr(BaseClient, "_make_api_call", original)


def stream_record(committed: fakes.Committed) -> dict[str, Any]:
    """The record DynamoDB Streams (NEW_AND_OLD_IMAGES) holds for a commit of the fake store: the
    workitem item as the adapter writes it, with its fan-out note, and the item it replaced."""
    from chalicelib.adapters.workitem_store import _to_workitem_item

    def image(w: Any, note: str | None) -> dict[str, Any]:
        item = _to_workitem_item(w, w.retention_days)
        item.fanout = note
        data: dict[str, Any] = item.serialize()
        return data

    new = image(committed.after, committed.note)
    data: dict[str, Any] = {
        "Keys": {"pk": new["pk"], "sk": new["sk"]},
        "NewImage": new,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
        # What a record is handed back to the stream by (batchItemFailures): one per commit, as on AWS.
        "SequenceNumber": f"{committed.after.workitem_id}@{committed.after.version}",
    }
    if committed.before is not None:
        data["OldImage"] = image(committed.before, None)
    return {"eventName": "MODIFY" if committed.before is not None else "INSERT", "eventSource": "aws:dynamodb", "dynamodb": data}


class RecordingPusher:
    """Collects every frame posted to a connection; connections in ``gone`` answer 410."""

    def __init__(self) -> None:
        self.frames: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.gone: set[str] = set()
        self.lock = threading.Lock()
        self.posts = 0
        self.closed: list[str] = []

    def close(self, connection_id: str) -> None:
        """``DeleteConnection``: the socket is gone, later posts to it answer 410."""
        with self.lock:
            self.closed.append(connection_id)
            self.gone.add(connection_id)

    def post_many(self, frames: list[tuple[str, bytes]]) -> list[str]:
        gone = []
        with self.lock:
            for connection_id, data in frames:
                # API Gateway drops a post over 128 KB (PayloadTooLargeException): no test may see one posted.
                assert len(data) <= MAX_POSTED_BYTES, f"a frame of {len(data)} bytes was posted to {connection_id}"
                self.posts += 1
                if connection_id in self.gone:
                    gone.append(connection_id)
                    continue
                self.frames[connection_id].append(json.loads(data))
        return gone


class FakeClock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


_ids = itertools.count(1)


@dataclass
class Client:
    """One WebSocket connection of one principal."""

    world: World
    claims: dict[str, Any]
    connection_id: str
    connected_at: int
    seen: int = 0
    _rids: Any = field(default_factory=lambda: itertools.count(1))
    # The $connect authorizer's context (connected with a token); None: built from ``claims``.
    authorizer: dict[str, Any] | None = None

    def event(self, route: str, body: str | None = None) -> dict[str, Any]:
        ctx = {
            "routeKey": route,
            "eventType": {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE"),
            "connectionId": self.connection_id,
            "connectedAt": self.connected_at,
            "apiId": "test",
            "stage": "test",
            "domainName": "test.local",
            "requestId": f"r{next(_ids)}",
            "requestTimeEpoch": int(time.time() * 1000),
            "authorizer": self.authorizer
            or {
                "principalId": self.claims["sub"],
                "tenantId": self.claims["tid"],
                "userId": self.claims["sub"],
                "role": self.claims["role"],
                "workitemId": self.claims.get("wid", ""),
                "name": self.claims.get("name", ""),
            },
        }
        return {"requestContext": ctx, "body": body, "isBase64Encoded": False}

    def send_raw(self, body: str) -> dict[str, Any]:
        before = len(self.world.pusher.frames[self.connection_id])
        ws.message(self.event("$default", body))
        self.world.pump()
        replies = [f for f in self.world.pusher.frames[self.connection_id][before:] if f["type"] != "event"]
        assert len(replies) == 1, f"expected exactly one reply, got {replies}"
        return replies[0]

    def request(self, action: str, **fields: Any) -> dict[str, Any]:
        rid = f"{self.connection_id}-{next(self._rids)}"
        reply = self.send_raw(json.dumps({"action": action, "requestId": rid, **fields}))
        assert reply["requestId"] == rid
        return reply

    def ok(self, action: str, **fields: Any) -> dict[str, Any]:
        reply = self.request(action, **fields)
        assert reply["type"] == "ack", reply
        data: dict[str, Any] = reply["data"]
        return data

    def fails(self, action: str, code: str, **fields: Any) -> dict[str, Any]:
        reply = self.request(action, **fields)
        assert reply["type"] == "error" and reply["error"]["code"] == code, reply
        error: dict[str, Any] = reply["error"]
        return error

    def frames(self) -> list[dict[str, Any]]:
        return list(self.world.pusher.frames[self.connection_id])

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        return [f for f in self.frames() if f["type"] == "event" and (name is None or f["event"] == name)]

    def new_events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Events that arrived since the last call."""
        frames = self.frames()
        fresh = frames[self.seen :]
        self.seen = len(frames)
        return [f for f in fresh if f["type"] == "event" and (name is None or f["event"] == name)]

    def disconnect(self) -> None:
        ws.disconnect(self.event("$disconnect"))
        self.world.pump()


class World:
    """One product. ``storage``: the in-memory stores to build it on (None: the DynamoDB adapters,
    on moto or DynamoDB Local as ``settings`` say)."""

    def __init__(self, settings: Settings, storage: MemoryStorage | None = None) -> None:
        self.settings = settings
        self.storage = storage
        self.pusher = RecordingPusher()
        self.clock = FakeClock()
        self.meetings = FakeMeetingProvider(media_region=settings.media_region)
        # The webhook delivery queue: deliveries run when a test calls ``deliver()`` (``queue_time``
        # is the queue's clock, so a test can let a backoff delay pass).
        self.queue_time = 0.0
        self.queue = LocalDeliveryQueue(now=lambda: self.queue_time)
        self.sms_queue = LocalDeliveryQueue(now=lambda: self.queue_time, dead_to=self.queue)
        self.sms = RecordingSms()
        self.deliveries = QueuePump(self.queue, lambda event: events.deliver_webhooks(event["Records"]))
        # The attention timers' queue: timers fire when a test lets their delay pass (``deliver``).
        self.timer_queue = LocalDeliveryQueue(now=lambda: self.queue_time)
        self.timers = QueuePump(self.timer_queue, lambda event: events.deliver_webhooks(event["Records"]))
        self.texts = QueuePump(self.sms_queue, lambda event: events.deliver_webhooks(event["Records"]))
        # Amazon Connect's delayed end checks (the connector queue), run by the connect_events entry point.
        self.connector_queue = LocalDeliveryQueue(now=lambda: self.queue_time)
        self.connector_checks = QueuePump(self.connector_queue, events.on_connect_event)
        self.services = bootstrap.build(
            settings,
            wire=WIRE,
            pusher=self.pusher,
            clock=self.clock,
            meetings=self.meetings,
            queue=self.queue,
            sms=self.sms,
            storage=storage,
            sms_queue=self.sms_queue,
            sentiment=SENTIMENT,
            timers=self.timer_queue,
            connector_queue=self.connector_queue,
        )
        bootstrap.install(self.services)
        self.events_sent = 0
        # Stream records the fan-out handed back (a partial batch response): none, unless a test breaks the queues.
        self.handed_back: list[str] = []
        self._http: Any = None
        self._tail = _stream_tail(settings) if storage is None else None
        self._pump_lock = threading.RLock()
        self._held = 0

    @property
    def backend(self) -> str:
        return "memory" if self.storage is not None else "dynamodb"

    @contextlib.contextmanager
    def batched(self) -> Iterator[None]:
        """Hold the stream while the block runs, then hand everything it committed to the ``fanout``
        entry point in one batch, as the event source mapping does with a backlog (up to 100 records)."""
        with self._pump_lock:
            self._held += 1
        try:
            yield
        finally:
            with self._pump_lock:
                self._held -= 1
        self.pump()

    def pump(self) -> int:
        """Hand the stream's new records to the ``fanout`` entry point; returns how many it handed
        over. One reader at a time, like one event source mapping per shard."""
        with self._pump_lock:
            if self._held:
                return 0
            if self.storage is not None:
                return self._pump_memory()
            assert self._tail is not None
            records = self._tail.read()
            if records:
                self.handed_back += [f["itemIdentifier"] for f in events.fan_out({"Records": records})["batchItemFailures"]]
            return len(records)

    def take_records(self) -> list[dict[str, Any]]:
        """The stream's new records, handed to nobody (a test hands them over itself, again or reordered)."""
        with self._pump_lock:
            if self.storage is not None:
                return [stream_record(c) for c in self.storage.tables.take_stream()]
            assert self._tail is not None
            return list(self._tail.read())

    def _pump_memory(self) -> int:
        """The fake store's commits as stream records, through the ``fanout`` entry point."""
        assert self.storage is not None
        taken = self.storage.tables.take_stream()
        if not taken:
            return 0
        result = events.fan_out({"Records": [stream_record(c) for c in taken]})
        self.handed_back += [f["itemIdentifier"] for f in result["batchItemFailures"]]
        return len(taken)

    def deliver(self, after_seconds: float = 0.0) -> int:
        """Let ``after_seconds`` pass (on the queues' clock and the services'), then run every visible
        delivery and text; returns how many messages ran."""
        self.queue_time += after_seconds
        if after_seconds:
            self.clock.advance(after_seconds)
        ran = 0
        while True:
            done = self.timers.drain() + self.deliveries.drain() + self.texts.drain() + self.connector_checks.drain()
            if not done:
                return ran
            ran += done

    def deliver_for_a_day(self) -> None:
        """Run what is queued now and every retry of it, to the last attempt (a little over a day)."""
        from chalicelib.domain.webhooks import MAX_ATTEMPTS, RETRY_MAX_SECONDS

        self.deliver()
        for _ in range(MAX_ATTEMPTS):
            self.deliver(after_seconds=RETRY_MAX_SECONDS + 1)

    def token(self, sub: str, role: str, tid: str = "t1", **extra: Any) -> str:
        extra.setdefault("ttl_seconds", 3600)
        return mint(JWT_SECRET, sub=sub, tid=tid, role=role, **extra)

    def connect(
        self,
        sub: str,
        role: str,
        tid: str = "t1",
        name: str | None = None,
        wid: str | None = None,
        delivery: str | None = None,
    ) -> Client:
        """Connect with a token, through the ``$connect`` authorizer and handler (both must accept it);
        ``delivery`` is the query string's ``delivery`` (``fast``: timeline entries straight from the
        handler that committed them)."""
        status, client = self.connect_token(self.token(sub, role, tid, name=name, wid=wid), delivery)
        assert status == 200 and client is not None, status
        return client

    def connect_token(self, token: str, delivery: str | None = None) -> tuple[int, Client | None]:
        """Connect as API Gateway does: the ``$connect`` authorizer verifies ``token`` and its context
        comes with every later frame. Returns the status and the client (None when refused)."""
        try:
            auth = ws.authorize({"queryStringParameters": {"token": token}, "methodArn": "arn:test"})
        except Exception as exc:
            # Only the authorizer's "Unauthorized" is API Gateway's 401; anything else it raises is a crash
            # (API Gateway answers 500), which must fail the test rather than pass as a refusal.
            if type(exc) is not Exception or exc.args != ("Unauthorized",):
                raise
            return 401, None
        context = {**{k: str(v) for k, v in auth["context"].items()}, "principalId": auth["principalId"]}
        claims = {"sub": context["userId"], "tid": context["tenantId"], "role": context["role"]}
        client = Client(self, claims, f"c{next(_ids)}=", int(self.clock.now().timestamp() * 1000), authorizer=context)
        query = {"token": token, **({"delivery": delivery} if delivery is not None else {})}
        status = int(ws.connect({**client.event("$connect"), "queryStringParameters": query})["statusCode"])
        self.pump()
        return status, client if status == 200 else None

    # --- REST through the Chalice test client ---

    @property
    def http(self) -> Any:
        """One Chalice test client for the whole world (building one per request is slow)."""
        if self._http is None:
            from chalice.test import Client as ChaliceClient

            from app import app

            self._http = ChaliceClient(app).http
        return self._http

    def rest(self, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        raw = json.dumps(body) if body is not None and not isinstance(body, (bytes, str)) else body
        response = getattr(self.http, method.lower())(path, headers=headers, body=raw)
        self.pump()
        content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", "")
        if content_type.startswith("text/csv"):
            return response.status_code, response.body.decode()
        payload = json.loads(response.body) if response.body else None
        return response.status_code, payload

    def admin(self, method: str, path: str, body: Any = None, tid: str = "t1") -> Any:
        status, payload = self.rest(method, path, self.token("admin-1", "admin", tid), body)
        assert status < 300, (status, payload)
        return payload

    def webhook(
        self, type_: str, data: dict[str, Any], tid: str = "t1", event_id: str | None = None, secret: str = WEBHOOK_SECRET
    ) -> tuple[int, Any]:
        self.events_sent += 1
        body = json.dumps({"eventId": event_id or f"evt-{next(_ids)}", "tenantId": tid, "type": type_, "data": data}).encode()
        # Signed at the world's own time (deliver() lets it pass), as the intake checks it.
        signature = webhook_signature(secret, body, int(self.clock.now().timestamp()))
        response = self.http.post(
            "/webhooks/events", body=body, headers={"Content-Type": "application/json", "X-Coaching-Signature": signature}
        )
        self.pump()
        return response.status_code, json.loads(response.body) if response.body else None

    # --- scenario helpers ---

    def team(
        self,
        tid: str = "t1",
        team_id: str = "team-1",
        supervisors: tuple[str, ...] = ("sup-1", "sup-2"),
        agents: tuple[str, ...] = ("agent-1", "agent-2"),
    ) -> None:
        for s in supervisors:
            self.admin("PUT", f"/admin/users/{s}", {"name": s.title(), "role": "supervisor"}, tid)
        for a in agents:
            self.admin("PUT", f"/admin/users/{a}", {"name": a.title(), "role": "agent"}, tid)
        self.admin(
            "PUT", f"/admin/teams/{team_id}", {"name": team_id, "supervisors": list(supervisors), "agents": list(agents)}, tid
        )

    def assign(self, workitem_id: str, channel: str = "chat", agent_id: str = "agent-1", tid: str = "t1") -> None:
        status, body = self.webhook(
            "workitem.assigned",
            {
                "workitemId": workitem_id,
                "channel": channel,
                "agentId": agent_id,
                "customer": {"id": f"cust-{workitem_id}", "name": "Casey Customer"},
                "subject": "Refund",
            },
            tid,
        )
        assert status == 200, body
