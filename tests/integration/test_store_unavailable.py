"""Every AWS SDK failure class, injected at every adapter, gets exactly one reply: ``unavailable``.

The failures botocore raises once its retries are used up: a read or connect timeout, an endpoint it
cannot reach, a connection cut mid-answer (these carry no HTTP response at all) and throttling. They
are raised where the real client raises them (``BaseClient._make_api_call``), for one operation of
one service, so each adapter's own error path is exercised (PynamoDB wraps each operation in its own
exception type). ``rate_limited`` is kept for lost races; a store that does not answer is never
reported as contention, never as ``internal``, and ``$connect`` answers 503, not 500.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from chalicelib.adapters.chime import ChimeMeetingProvider
from chalicelib.adapters.push import ApiGatewayPusher
from chalicelib.adapters.secrets import Secret
from chalicelib.adapters.storage_errors import retryable_error
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.voice import Audio
from chalicelib.entrypoints import wire, ws
from chalicelib.services import commits
from chalicelib.services.ports import StaleWorkitem
from tests.support.world import World

pytestmark = [pytest.mark.integration, pytest.mark.moto]

WID = "wi-1"
URL = "http://store.invalid:8000/"


def _throttled(client: Any, operation: str) -> Exception:
    parsed = {
        "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
        "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {}, "MaxAttemptsReached": True},
    }
    error_class = client.exceptions.from_code("ThrottlingException")
    return error_class(parsed, operation)


FAILURES: dict[str, Callable[[Any, str], Exception]] = {
    "read-timeout": lambda c, op: ReadTimeoutError(endpoint_url=URL),
    "connect-timeout": lambda c, op: ConnectTimeoutError(endpoint_url=URL),
    "endpoint-connection": lambda c, op: EndpointConnectionError(endpoint_url=URL),
    "connection-closed": lambda c, op: ConnectionClosedError(endpoint_url=URL),
    "throttled-after-retries": _throttled,
}


class SdkFault:
    """The next ``times`` calls of ``operation`` on ``service`` raise the failure (all when None)."""

    def __init__(self, service: str, operation: str, failure: Callable[[Any, str], Exception], times: int | None = 1) -> None:
        self.service, self.operation, self.failure, self.remaining = service, operation, failure, times
        self.raised = 0
        self._patch = pytest.MonkeyPatch()
        self._lock = threading.Lock()

    def __enter__(self) -> SdkFault:
        original = BaseClient._make_api_call  # type: ignore[attr-defined]  # private in botocore-stubs
        fault = self

        def make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
            if client.meta.service_model.service_name == fault.service and operation_name == fault.operation:
                with fault._lock:
                    fire = fault.remaining is None or fault.remaining > 0
                    if fire:
                        fault.raised += 1
                        if fault.remaining is not None:
                            fault.remaining -= 1
                if fire:
                    raise fault.failure(client, operation_name)
            return original(client, operation_name, api_params)

        self._patch.setattr(BaseClient, "_make_api_call", make_api_call)
        return self

    def __exit__(self, *exc: object) -> None:
        self._patch.undo()


@pytest.fixture
def app_logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> pytest.LogCaptureFixture:
    monkeypatch.setattr(logging.getLogger("chalicelib"), "propagate", True)
    caplog.set_level(logging.INFO, logger="chalicelib")
    return caplog


def _chat(world: World) -> dict[str, Any]:
    world.team()
    world.assign(WID)
    agent = world.connect("agent-1", "agent")
    sup = world.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId=WID)
    coach = sup.ok("coach.send", workitemId=WID, text="first tip")["entry"]
    return {"agent": agent, "sup": sup, "coach": coach}


def _timeline(world: World) -> list[dict[str, Any]]:
    entries, _ = world.services.coaching.store.timeline("t1", WID, after=0, limit=200, customer=False)
    return [wire.entry(e) for e in entries]


# (adapter, DynamoDB operation, who, action, fields): each adapter's first call of that operation fails.
CASES: list[tuple[str, str, str, str, Callable[[dict[str, Any]], dict[str, Any]]]] = [
    # The workitem, read with the recipients this function instance expects (it has seen the workitem).
    ("workitems: read", "BatchGetItem", "sup", "coach.send", lambda c: {"workitemId": WID, "text": "tip"}),
    ("workitems: commit", "TransactWriteItems", "sup", "coach.send", lambda c: {"workitemId": WID, "text": "tip"}),
    (
        "workitems: message lookup",
        "BatchGetItem",
        "agent",
        "coach.react",
        lambda c: {"workitemId": WID, "messageId": c["coach"]["messageId"], "reaction": "thumbs_up"},
    ),
    (
        "workitems: commit with message",
        "TransactWriteItems",
        "agent",
        "coach.forward",
        lambda c: {"workitemId": WID, "messageId": c["coach"]["messageId"]},
    ),
    ("workitems: timeline", "Query", "sup", "timeline.get", lambda c: {"workitemId": WID, "after": 0}),
    ("directory: team query", "Query", "sup", "agents.list", lambda c: {}),
    ("directory: endpoints", "BatchGetItem", "sup", "agents.list", lambda c: {}),
    ("directory: presence", "UpdateItem", "sup", "presence.set", lambda c: {"state": "not_ready"}),
    ("directory: message", "PutItem", "agent", "directory.send", lambda c: {"toUserId": "sup-1", "text": "hi"}),
    ("directory: unread", "GetItem", "sup", "directory.unread.get", lambda c: {}),
    ("assistance: templates", "Query", "agent", "assist.templates", lambda c: {}),
    ("assistance: claim", "GetItem", "sup", "assist.claim", lambda c: {"assistId": "as_x"}),
]


@pytest.mark.parametrize("failure", FAILURES)
def test_every_store_failure_at_every_adapter_gets_exactly_one_unavailable_reply(
    world: World, failure: str, app_logs: Any
) -> None:
    clients = _chat(world)
    for adapter, operation, who, action, fields in CASES:
        client = clients[who]
        before = _timeline(world)
        with SdkFault("dynamodb", operation, FAILURES[failure]) as fault:
            reply = client.request(action, **fields(clients))  # asserts exactly one reply on the connection
        assert fault.raised == 1, (adapter, failure)
        assert reply["type"] == "error", (adapter, failure, reply)
        assert reply["error"]["code"] == "unavailable", (adapter, failure, reply)
        assert reply["error"]["retryable"] is True
        assert _timeline(world) == before, (adapter, failure)  # nothing applied
        assert client.ok("ping") == {}  # the connection stays usable
    assert not [r for r in app_logs.records if r.exc_info], "a store outage is not a traceback per request"


@pytest.mark.parametrize("failure", FAILURES)
def test_connect_during_a_store_outage_answers_503_and_disconnect_does_not_fail(world: World, failure: str) -> None:
    world.team()
    agent = world.connect("agent-1", "agent")
    with SdkFault("dynamodb", "UpdateItem", FAILURES[failure], times=None):
        pending = type(agent)(world, {"sub": "agent-2", "tid": "t1", "role": "agent"}, "new-conn=", 0)
        assert ws.connect(pending.event("$connect")) == {"statusCode": 503}
        assert ws.disconnect(agent.event("$disconnect")) == {"statusCode": 200}


@pytest.mark.parametrize("failure", FAILURES)
def test_rest_and_webhooks_during_a_store_outage_answer_503(world: World, failure: str) -> None:
    world.team()
    world.assign(WID)
    with SdkFault("dynamodb", "UpdateItem", FAILURES[failure]):
        status, body = world.rest(
            "PUT", "/admin/users/agent-9", world.token("admin-1", "admin"), {"name": "Nine", "role": "agent"}
        )
    assert status == 503 and body["error"]["code"] == "unavailable" and body["error"]["retryable"] is True
    with SdkFault("dynamodb", "TransactWriteItems", FAILURES[failure]):
        status, body = world.webhook(
            "workitem.message", {"workitemId": WID, "from": "customer", "text": "hi"}, event_id="evt-outage"
        )
    assert status == 503 and body["error"]["code"] == "unavailable"
    assert world.webhook("workitem.message", {"workitemId": WID, "from": "customer", "text": "hi"}, event_id="evt-outage") == (
        200,
        {"status": "applied"},
    )


# --- the other adapters: @connections, Chime, SSM --------------------------------------------------


@pytest.mark.parametrize("failure", FAILURES)
def test_a_push_that_fails_is_skipped_and_never_holds_up_the_others(failure: str) -> None:
    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url="https://abc.execute-api.eu-west-1.amazonaws.com/p",
        region_name="eu-west-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    delivered: list[tuple[str, bytes]] = []
    slow = threading.Event()

    def post_to_connection(ConnectionId: str, Data: bytes) -> dict[str, Any]:
        if ConnectionId == "bad=":
            slow.wait(30)  # a receiver that hangs (until the test ends)
            raise FAILURES[failure](client, "PostToConnection")
        delivered.append((ConnectionId, Data))
        return {}

    client.post_to_connection = post_to_connection  # type: ignore[method-assign,assignment]
    pusher = ApiGatewayPusher("https://abc", "eu-west-1", client=client)
    # Bounds far below the 30 s hang and far above the pusher's one-second budget: a loaded machine
    # passes, a pusher that waits for the stuck receiver does not (how fast it is belongs to make bench).
    try:
        started = time.monotonic()
        gone = pusher.post_many([("bad=", b"1"), ("ok=", b"1"), ("bad=", b"2"), ("ok=", b"2")])
        first_batch = time.monotonic() - started
        assert gone == []  # a slow or throttled connection is not reported gone
        assert delivered == [("ok=", b"1"), ("ok=", b"2")]
        assert first_batch < 10  # not held up by the slow receiver
        started = time.monotonic()
        assert pusher.post_many([("ok=", b"3"), ("bad=", b"3")]) == []
        assert time.monotonic() - started < 10  # the next change does not wait for the stuck lane
        assert delivered[-1] == ("ok=", b"3")
    finally:
        slow.set()


@pytest.mark.parametrize("failure", FAILURES)
def test_chime_and_ssm_failures_become_unavailable(failure: str) -> None:
    meetings = boto3.client("chime-sdk-meetings", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    provider = ChimeMeetingProvider("us-east-1", meetings_client=meetings)
    with SdkFault("chime-sdk-meetings", "CreateAttendee", FAILURES[failure]), pytest.raises(Exception) as caught:
        provider.create_attendee("11111111-1111-4111-8111-111111111111", "t1:agent-1", Audio.SEND_RECEIVE)
    err = caught.value if isinstance(caught.value, Unavailable) else retryable_error(caught.value)
    assert isinstance(err, Unavailable) and err.retryable, (failure, caught.value)

    ssm = boto3.client("ssm", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    secret = Secret(parameter_name="/coaching/jwt", client=ssm)
    with SdkFault("ssm", "GetParameter", FAILURES[failure]), pytest.raises(Exception) as caught:
        secret()
    assert isinstance(retryable_error(caught.value), Unavailable), failure


# --- the commit loop: contention vs a slow store -------------------------------------------------


def test_a_commit_loop_that_runs_out_of_time_because_the_store_is_slow_is_unavailable(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = _chat(world)
    store = world.services.coaching.store
    monkeypatch.setattr(commits, "COMMIT_BUDGET_SECONDS", 0.6)

    def slow_and_stale(change: Any, **_: Any) -> None:
        time.sleep(0.3)  # each round takes longer than a healthy store ever would
        raise StaleWorkitem(change.after.workitem_id)

    monkeypatch.setattr(store, "commit", slow_and_stale)
    reply = clients["sup"].request("coach.send", workitemId=WID, text="slow")
    assert reply["error"]["code"] == "unavailable", reply


def test_a_commit_loop_that_only_loses_races_is_contention(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    clients = _chat(world)
    monkeypatch.setattr(commits, "MAX_COMMIT_ATTEMPTS", 5)

    def stale(change: Any, **_: Any) -> None:
        raise StaleWorkitem(change.after.workitem_id)

    monkeypatch.setattr(world.services.coaching.store, "commit", stale)
    reply = clients["sup"].request("coach.send", workitemId=WID, text="never")
    assert reply["error"]["code"] == "rate_limited", reply
    assert json.dumps(reply).count("Traceback") == 0


def test_a_client_error_without_a_response_body_is_still_translated() -> None:
    """PynamoDB's ``cause_response_code`` raises for a cause without ``response``; retryable_error never does."""
    odd = ClientError({}, "GetItem")
    odd.response = None  # type: ignore[assignment]
    assert retryable_error(odd) is None
    assert isinstance(retryable_error(ReadTimeoutError(endpoint_url=URL)), Unavailable)
