"""Failure paths through the real Lambda entry points (moto): gone connections, a store that pushes
back or does not answer, handler bugs, and commits that lose a race.

The promises under test: a client never loses an entry (the timeline replays what a dead connection
missed); an error frame means nothing was applied; throttling that outlasts the SDK's retries is
answered ``unavailable`` with ``retryable: true`` (``rate_limited`` only for a race that never clears);
a connection stays usable after any error; a lost race is retried silently.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from botocore.client import BaseClient

from chalicelib.entrypoints import wire
from chalicelib.services import commits
from tests.support.world import World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).

WID = "wi-1"


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def app_logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> pytest.LogCaptureFixture:
    """The product's log records (once app.py is imported, ``chalicelib`` logs stop at their own handler)."""
    monkeypatch.setattr(logging.getLogger("chalicelib"), "propagate", True)
    caplog.set_level(logging.INFO, logger="chalicelib")
    return caplog


def _chat(world: World) -> tuple[Any, Any, Any]:
    world.team()
    world.assign(WID)
    agent = world.connect("agent-1", "agent")
    sup = world.connect("sup-1", "supervisor")
    cust = world.connect(f"cust-{WID}", "customer", wid=WID)
    return agent, sup, cust


def _store(world: World) -> Any:
    return world.services.coaching.store


def _endpoint(world: World, key: str) -> Any:
    return world.services.directory.directory.recipient("t1", key)


def _timeline(world: World, wid: str = WID) -> list[dict[str, Any]]:
    entries, more = _store(world).timeline("t1", wid, after=0, limit=1000, customer=False)
    assert not more
    return [wire.entry(e) for e in entries]


def _snapshot(world: World) -> tuple[int, int, list[dict[str, Any]]]:
    w = _store(world).get("t1", WID)
    return w.version, w.seq, _timeline(world)


class StoreFault:
    """DynamoDB answers ``code`` to ``operation`` (``times`` times, or always) without a request being
    sent, on every botocore client of the process (every PynamoDB model has its own): the error is
    built exactly as botocore builds it from a service answer, the modelled exception carrying the
    parsed response, which PynamoDB then wraps as usual."""

    def __init__(
        self, operation: str, code: str, *, reasons: list[str] | None = None, status: int = 400, times: int | None = None
    ) -> None:
        self.operation = operation
        self.code = code
        self.reasons = reasons
        self.status = status
        self.remaining = times
        self.calls = 0
        self._patch = pytest.MonkeyPatch()

    def _answer(self) -> dict[str, Any] | None:
        if self.remaining is not None:
            if self.remaining <= 0:
                return None
            self.remaining -= 1
        self.calls += 1
        parsed: dict[str, Any] = {
            "Error": {"Code": self.code, "Message": f"injected {self.code}"},
            "ResponseMetadata": {"HTTPStatusCode": self.status, "HTTPHeaders": {}},
        }
        if self.reasons is not None:
            parsed["CancellationReasons"] = [{"Code": r, "Message": r} for r in self.reasons]
        return parsed

    def __enter__(self) -> StoreFault:
        original = BaseClient._make_api_call  # type: ignore[attr-defined]  # private in botocore-stubs
        fault = self

        def make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
            if client.meta.service_model.service_name == "dynamodb" and operation_name == fault.operation:
                parsed = fault._answer()
                if parsed is not None:
                    raise client.exceptions.from_code(fault.code)(parsed, operation_name)
            return original(client, operation_name, api_params)

        self._patch.setattr(BaseClient, "_make_api_call", make_api_call)
        return self

    def __exit__(self, *exc: object) -> None:
        self._patch.undo()


def _assert_retryable(reply: dict[str, Any], request_id_prefix: str, code: str = "unavailable") -> None:
    assert reply["type"] == "error", reply
    assert reply["requestId"].startswith(request_id_prefix)
    assert reply["error"]["code"] == code, reply
    assert reply["error"]["retryable"] is True, reply


# --- (a) gone connections ---------------------------------------------------------------------


def test_a_gone_agent_connection_is_forgotten_and_the_timeline_replays_what_it_missed(world: World) -> None:
    agent, sup, cust = _chat(world)
    sup.ok("monitor.start", workitemId=WID)
    cust.ok("message.send", workitemId=WID, text="first")
    last_seen = max(e["data"]["entry"]["seq"] for e in agent.events() if "entry" in e["data"])
    assert last_seen == 2

    attempts: list[str] = []
    record = world.pusher.post_many

    def post_many(frames: list[tuple[str, bytes]]) -> list[str]:
        attempts.extend(connection_id for connection_id, _ in frames)
        return record(frames)

    world.pusher.post_many = post_many  # type: ignore[method-assign]
    world.pusher.gone.add(agent.connection_id)  # the agent's network died without a $disconnect
    sup.ok("coach.send", workitemId=WID, text="tip one")
    assert _endpoint(world, "U#agent-1").connections == []  # forgotten on the first 410
    sup.ok("coach.send", workitemId=WID, text="tip two")
    cust.ok("message.send", workitemId=WID, text="second")
    assert attempts.count(agent.connection_id) == 1  # never pushed to again

    again = world.connect("agent-1", "agent")
    missed = again.ok("timeline.get", workitemId=WID, after=last_seen)
    assert not missed["hasMore"]
    assert [(e["seq"], e["kind"], e.get("text")) for e in missed["entries"]] == [
        (3, "coach_message", "tip one"),
        (4, "coach_message", "tip two"),
        (5, "customer_message", "second"),
    ]
    assert [c.connection_id for c in _endpoint(world, "U#agent-1").connections] == [again.connection_id]
    sup.ok("coach.send", workitemId=WID, text="tip three")
    assert [e["data"]["entry"]["seq"] for e in again.events("coach.message")] == [6]
    assert agent.events("coach.message") == []  # the dead connection really got nothing


def test_a_gone_customer_connection_is_forgotten_and_replayed_in_the_customer_numbering(world: World) -> None:
    agent, sup, cust = _chat(world)
    agent.ok("message.send", workitemId=WID, text="hello")
    last_seen = cust.events("message.received")[-1]["data"]["entry"]["seq"]
    world.pusher.gone.add(cust.connection_id)
    sup.ok("monitor.start", workitemId=WID)
    sup.ok("coach.send", workitemId=WID, text="be brief")
    agent.ok("message.send", workitemId=WID, text="one moment")
    assert _endpoint(world, f"C#{WID}").connections == []
    agent.ok("message.send", workitemId=WID, text="done")

    again = world.connect(f"cust-{WID}", "customer", wid=WID)
    missed = again.ok("timeline.get", workitemId=WID, after=last_seen)["entries"]
    assert [(e["seq"], e["text"]) for e in missed] == [(2, "one moment"), (3, "done")]
    assert all(e["kind"] == "agent_message" for e in missed)


def test_a_gone_watcher_is_forgotten(world: World) -> None:
    world.team()
    agent = world.connect("agent-1", "agent")
    sup = world.connect("sup-1", "supervisor")
    sup.ok("agent.watch", agentId="agent-1")
    assert [w.connection.connection_id for w in _endpoint(world, "U#agent-1").watchers] == [sup.connection_id]
    world.pusher.gone.add(sup.connection_id)
    world.assign(WID)  # pushes workitem.assigned to the agent and to the agent's watchers
    assert _endpoint(world, "U#agent-1").watchers == []
    assert [c.connection_id for c in _endpoint(world, "U#agent-1").connections] == [agent.connection_id]


def test_a_gone_connection_that_is_both_a_monitor_and_a_watcher_is_forgotten_everywhere(world: World) -> None:
    _, sup, _ = _chat(world)
    sup.ok("agent.watch", agentId="agent-1")
    sup.ok("monitor.start", workitemId=WID)
    world.pusher.gone.add(sup.connection_id)
    other = world.connect("sup-2", "supervisor")
    # One push reaches sup-1's dead connection twice: as a monitor (coaching.joined) and as a
    # watcher of agent-1 (workitem.updated). Both records must let go of it.
    other.ok("monitor.start", workitemId=WID)
    assert _endpoint(world, "U#sup-1").connections == []
    assert _endpoint(world, "U#agent-1").watchers == []


# --- (b) the store pushes back ---------------------------------------------------------------


THROTTLES: dict[str, dict[str, Any]] = {
    "provisioned-throughput": dict(operation="TransactWriteItems", code="ProvisionedThroughputExceededException"),
    "throttling": dict(operation="TransactWriteItems", code="ThrottlingException"),
    "request-limit": dict(operation="TransactWriteItems", code="RequestLimitExceeded"),
    "transaction-conflict": dict(operation="TransactWriteItems", code="TransactionConflictException"),
    "transaction-in-progress": dict(operation="TransactWriteItems", code="TransactionInProgressException"),
    "canceled-throttling": dict(
        operation="TransactWriteItems", code="TransactionCanceledException", reasons=["None", "ThrottlingError", "None"]
    ),
    "canceled-throughput": dict(
        operation="TransactWriteItems",
        code="TransactionCanceledException",
        reasons=["ProvisionedThroughputExceeded", "None", "None"],
    ),
    # A conflict cancellation is retried as a lost race; one that never clears ends up refused.
    "canceled-conflict-forever": dict(
        operation="TransactWriteItems", code="TransactionCanceledException", reasons=["TransactionConflict", "None", "None"]
    ),
    "internal-server-error": dict(operation="TransactWriteItems", code="InternalServerError", status=500),
    # The workitem's read (with its expected recipients: one BatchGetItem across both tables).
    "read-throttled": dict(operation="BatchGetItem", code="ProvisionedThroughputExceededException"),
}
# Lost races are retried by the commit loop; only one that never clears is refused, as contention.
RACES = {name: "rate_limited" for name in ("transaction-conflict", "transaction-in-progress", "canceled-conflict-forever")}


@pytest.mark.moto
def test_a_throttled_coach_message_is_refused_retryable_and_applies_nothing(world: World) -> None:
    agent, sup, cust = _chat(world)
    sup.ok("monitor.start", workitemId=WID)
    for name, fault in THROTTLES.items():
        sup.ok("coach.send", workitemId=WID, text=f"before {name}")
        before = _snapshot(world)
        agent_frames, cust_frames = len(agent.frames()), len(cust.frames())

        with StoreFault(**fault) as injected:
            reply = sup.request("coach.send", workitemId=WID, text=f"during {name}")
        assert injected.calls >= 1, name
        _assert_retryable(reply, sup.connection_id, RACES.get(name, "unavailable"))
        assert _snapshot(world) == before, name  # no entry, no message index, no version bump
        assert (len(agent.frames()), len(cust.frames())) == (agent_frames, cust_frames), name  # nothing pushed
        assert "Traceback" not in json.dumps(reply)

        # The same connection keeps working, and the retry lands right after the last entry.
        assert sup.ok("ping") == {}
        retried = sup.ok("coach.send", workitemId=WID, text=f"during {name}")["entry"]
        assert retried["seq"] == before[1] + 1, name
    texts = [e["text"] for e in _timeline(world) if e["kind"] == "coach_message"]
    assert texts == [t for name in THROTTLES for t in (f"before {name}", f"during {name}")]


@pytest.mark.moto
def test_a_throttled_transfer_moves_no_counter(world: World) -> None:
    agent, sup, _ = _chat(world)
    sup.ok("monitor.start", workitemId=WID)
    before = _snapshot(world)
    with StoreFault("TransactWriteItems", "TransactionCanceledException", reasons=["None", "None", "ThrottlingError", "None"]):
        _assert_retryable(agent.request("workitem.transfer", workitemId=WID, toAgentId="agent-2"), agent.connection_id)
    assert _snapshot(world) == before
    counts = {a["userId"]: a["workitemCount"] for a in sup.ok("agents.list")["agents"]}
    assert counts == {"agent-1": 1, "agent-2": 0}
    assert agent.ok("workitem.transfer", workitemId=WID, toAgentId="agent-2")["workitem"]["agentId"] == "agent-2"
    counts = {a["userId"]: a["workitemCount"] for a in sup.ok("agents.list")["agents"]}
    assert counts == {"agent-1": 0, "agent-2": 1}


@pytest.mark.moto
def test_throttled_reads_and_directory_writes_are_retryable(world: World) -> None:
    _, sup, _ = _chat(world)
    sup.ok("monitor.start", workitemId=WID)
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("UpdateItem", "presence.set", {"state": "not_ready"}),
        ("Query", "agents.list", {}),
        ("BatchGetItem", "agents.list", {}),
        ("GetItem", "timeline.get", {"workitemId": WID, "after": 0}),
        ("Query", "timeline.get", {"workitemId": WID, "after": 0}),
        ("Query", "workitems.list", {"agentId": "agent-1"}),
    ]
    for operation, action, fields in cases:
        with StoreFault(operation, "ProvisionedThroughputExceededException") as injected:
            _assert_retryable(sup.request(action, **fields), sup.connection_id)
        assert injected.calls == 1, (operation, action)
        assert sup.ok(action, **fields) is not None


@pytest.mark.moto
def test_a_throttled_webhook_answers_503_and_its_redelivery_applies_once(world: World) -> None:
    world.team()
    world.assign(WID)
    before = _snapshot(world)
    data = {"workitemId": WID, "from": "customer", "text": "via sms"}
    with StoreFault("TransactWriteItems", "ProvisionedThroughputExceededException"):
        status, body = world.webhook("workitem.message", data, event_id="evt-throttled")
    assert status == 503 and body["error"]["code"] == "unavailable" and body["error"]["retryable"] is True
    assert _snapshot(world) == before
    assert world.webhook("workitem.message", data, event_id="evt-throttled") == (200, {"status": "applied"})
    assert world.webhook("workitem.message", data, event_id="evt-throttled") == (200, {"status": "duplicate"})
    assert [e["text"] for e in _timeline(world)] == ["via sms"]


def test_a_push_failure_after_the_commit_is_not_reported_as_not_applied(world: World) -> None:
    """Recipients are looked up (BatchGetItem) after the commit. If that read is throttled, the
    change is already on the timeline: answering "rate_limited, retry" makes the client send the
    coach message twice. Either the action is acknowledged (pushes are best effort, clients catch
    up with timeline.get) or nothing may have been applied."""
    _, sup, _ = _chat(world)
    sup.ok("monitor.start", workitemId=WID)
    before = _snapshot(world)
    with StoreFault("BatchGetItem", "ProvisionedThroughputExceededException"):
        reply = sup.request("coach.send", workitemId=WID, text="exactly once")
    coached = [e for e in _timeline(world) if e["kind"] == "coach_message"]
    if reply["type"] == "ack":
        assert [e["messageId"] for e in coached] == [reply["data"]["entry"]["messageId"]]
    else:
        assert _snapshot(world) == before, f"the client was told {reply['error']} but the message was committed"


# --- (c) handler bugs ------------------------------------------------------------------------------


def test_an_unexpected_exception_is_answered_internal_without_details_and_logged(
    world: World, app_logs: Any, monkeypatch: Any
) -> None:
    _, sup, _ = _chat(world)
    sup.ok("monitor.start", workitemId=WID)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("secret-internal-detail")

    monkeypatch.setattr(_store(world), "timeline", broken)
    reply = sup.request("timeline.get", workitemId=WID, after=0)
    assert reply["type"] == "error" and reply["requestId"].startswith(sup.connection_id)
    assert reply["error"] == {"code": "internal", "message": "internal error; nothing was applied"}
    text = json.dumps(reply)
    for leak in ("Traceback", "KeyError", "secret-internal-detail", "chalicelib", ".py"):
        assert leak not in text

    errors = [r for r in app_logs.records if r.levelno >= logging.ERROR and r.name == "chalicelib.entrypoints.errors"]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "timeline.get" in message and sup.connection_id in message and "t1" in message
    assert errors[0].exc_info is not None and isinstance(errors[0].exc_info[1], KeyError)

    monkeypatch.undo()
    assert sup.ok("ping") == {}
    assert sup.ok("timeline.get", workitemId=WID, after=0)["entries"]


@pytest.mark.moto
def test_a_non_retryable_store_error_is_internal_and_applies_nothing(world: World, app_logs: Any) -> None:
    _, sup, _ = _chat(world)
    sup.ok("monitor.start", workitemId=WID)
    before = _snapshot(world)
    with StoreFault("TransactWriteItems", "ValidationException"):
        reply = sup.request("coach.send", workitemId=WID, text="hello")
    assert reply["error"]["code"] == "internal" and "retryable" not in reply["error"]
    assert "ValidationException" not in json.dumps(reply)
    assert _snapshot(world) == before
    assert any(r.levelno >= logging.ERROR and "coach.send" in r.getMessage() for r in app_logs.records)
    assert sup.ok("coach.send", workitemId=WID, text="hello")["entry"]["seq"] == before[1] + 1


def test_an_unexpected_exception_in_a_webhook_is_a_bare_500(world: World, app_logs: Any, monkeypatch: Any) -> None:
    world.team()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret-internal-detail")

    monkeypatch.setattr(_store(world), "create", broken)
    status, body = world.webhook(
        "workitem.assigned",
        {"workitemId": WID, "channel": "chat", "agentId": "agent-1", "customer": {"id": "c-1", "name": "Casey"}},
    )
    assert status == 500
    assert body == {"error": {"code": "internal", "message": "internal error; nothing was applied"}}
    assert any(r.levelno >= logging.ERROR and r.exc_info for r in app_logs.records)


# --- (d) lost races are retried --------------------------------------------------------------------


def _interleave(world: World, monkeypatch: Any, interloper: Callable[[int], None], losses: int) -> list[int]:
    """Before each of the first ``losses`` commits of the request under test, another client's
    request commits first. Returns the ``before.version`` of every commit attempt, in order."""
    store = _store(world)
    original = store.commit
    attempts: list[int] = []
    state = {"left": losses, "inside": False}

    def commit(change: Any, **kwargs: Any) -> Any:
        attempts.append(change.before.version)
        if state["left"] > 0 and not state["inside"]:
            state["left"] -= 1
            state["inside"] = True
            try:
                interloper(losses - state["left"])
            finally:
                state["inside"] = False
        return original(change, **kwargs)

    monkeypatch.setattr(store, "commit", commit)
    return attempts


def test_a_commit_that_loses_a_race_is_retried_transparently(world: World, monkeypatch: Any) -> None:
    agent, sup, cust = _chat(world)
    sup.ok("monitor.start", workitemId=WID)
    interleaved: list[dict[str, Any]] = []
    attempts = _interleave(
        world, monkeypatch, lambda n: interleaved.append(cust.ok("message.send", workitemId=WID, text=f"cust {n}")), losses=1
    )

    entry = sup.ok("coach.send", workitemId=WID, text="coach")["entry"]

    assert attempts == [1, 1, 2]  # the coach message lost once to the customer's message, then won
    assert interleaved[0]["entry"]["seq"] == 1  # the customer's own numbering
    timeline = _timeline(world)
    assert [(e["seq"], e["kind"]) for e in timeline] == [(1, "supervisor_joined"), (2, "customer_message"), (3, "coach_message")]
    assert entry["seq"] == 3 and timeline[2]["messageId"] == entry["messageId"]
    # The agent was told about both, in order, and the coach message once.
    assert [e["data"]["entry"]["seq"] for e in agent.events() if e["event"] != "coaching.joined"] == [2, 3]


def test_forward_retries_against_a_racing_customer_message(world: World, monkeypatch: Any) -> None:
    agent, sup, cust = _chat(world)
    sup.ok("monitor.start", workitemId=WID)
    coach = sup.ok("coach.send", workitemId=WID, text="say sorry")["entry"]
    attempts = _interleave(world, monkeypatch, lambda n: cust.ok("message.send", workitemId=WID, text=f"hurry {n}"), losses=2)

    forwarded = agent.ok("coach.forward", workitemId=WID, messageId=coach["messageId"])["entry"]

    assert attempts == [2, 2, 3, 3, 4]  # lost twice (each loss: its attempt, then the interloper's commit), then won
    assert forwarded["seq"] == 5 and forwarded["text"] == "say sorry"
    timeline = _timeline(world)
    assert [e["seq"] for e in timeline] == [1, 2, 3, 4, 5]
    customer_view = cust.ok("timeline.get", workitemId=WID, after=0)["entries"]
    assert [(e["seq"], e["text"]) for e in customer_view] == [(1, "hurry 1"), (2, "hurry 2"), (3, "say sorry")]


def test_a_commit_that_keeps_losing_is_refused_retryable_and_applies_nothing(world: World, monkeypatch: Any) -> None:
    _, sup, cust = _chat(world)
    sup.ok("monitor.start", workitemId=WID)
    attempts = _interleave(world, monkeypatch, lambda n: cust.ok("message.send", workitemId=WID, text=f"msg {n}"), losses=100)

    monkeypatch.setattr(commits, "MAX_COMMIT_ATTEMPTS", 6)
    _assert_retryable(sup.request("coach.send", workitemId=WID, text="never lands"), sup.connection_id, "rate_limited")

    assert len(attempts) == 6 * 2  # six attempts, each preceded by the interloper's own commit
    timeline = _timeline(world)
    assert [e["seq"] for e in timeline] == list(range(1, 8))
    assert [e["kind"] for e in timeline[1:]] == ["customer_message"] * 6
    monkeypatch.undo()
    assert sup.ok("coach.send", workitemId=WID, text="lands now")["entry"]["seq"] == 8


@pytest.mark.moto
def test_a_transaction_conflict_cancellation_is_retried_like_a_lost_race(world: World) -> None:
    agent, sup, _ = _chat(world)
    sup.ok("monitor.start", workitemId=WID)
    with StoreFault(
        "TransactWriteItems", "TransactionCanceledException", reasons=["TransactionConflict", "None", "None"], times=1
    ) as injected:
        entry = sup.ok("coach.send", workitemId=WID, text="after one conflict")["entry"]
    assert injected.calls == 1
    assert entry["seq"] == 2
    assert [(e["seq"], e["kind"]) for e in _timeline(world)] == [(1, "supervisor_joined"), (2, "coach_message")]
    assert [e["data"]["entry"]["messageId"] for e in agent.events("coach.message")] == [entry["messageId"]]


@pytest.mark.moto
def test_an_ack_whose_count_lost_a_race_is_tried_again_and_counted_once(world: World) -> None:
    """W13.11: the ack and its analytics fact are one transaction; one that another transaction beat
    to a bucket (``TransactionConflict``) is tried again, and the ack counts once."""
    world.team()
    world.admin("PUT", "/admin/attention-rules/kw", {"kind": "keyword", "phrases": ["refund"]})
    world.assign(WID)
    sup = world.connect("sup-1", "supervisor")
    world.connect(f"cust-{WID}", "customer", wid=WID).ok("message.send", workitemId=WID, text="refund")
    world.pump()
    alert_id = sup.events("attention.raised")[0]["data"]["alert"]["alertId"]
    with StoreFault(
        "TransactWriteItems", "TransactionCanceledException", reasons=["None", "None", "TransactionConflict"], times=1
    ) as injected:
        assert sup.ok("attention.ack", alertId=alert_id)["alert"]["state"] == "acked"
    assert injected.calls == 1
    day = world.clock.now().date().isoformat()
    status, body = world.rest(
        "GET", f"/analytics/coaching?from={day}&to={day}&groupBy=supervisor", world.token("admin-1", "admin")
    )
    assert status == 200
    assert [(r["key"], r["alertsAcked"]) for r in body["rows"]] == [("sup-1", 1)]
    assert (body["totals"]["alertsRaised"], body["totals"]["alertsAcked"]) == (1, 1)
