"""The WebSocket router (docs/product.md W4.1-W4.3) against stub services: one ack or error per frame, always."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import Conflict, DomainError, NotFound, RateLimited
from chalicelib.domain.identity import Principal, Role
from chalicelib.entrypoints.ws import ACTIONS, MAX_FRAME_BYTES, TABLE, Call, Router
from chalicelib.services.ports import Connection

pytestmark = pytest.mark.unit

AGENT = Principal("t1", "agent-1", Role.AGENT)
SUPERVISOR = Principal("t1", "sup-1", Role.SUPERVISOR)
CUSTOMER = Principal("t1", "cust-1", Role.CUSTOMER, workitem_id="wi-1")
CONN = Connection("conn-1=", 1_700_000_000_000)
CUSTOMER_ACTIONS = {"ping", "auth.refresh", "message.send", "timeline.get"}
SECRET_TEXT = "db password is hunter2 at /srv/app.py line 7"


class Boom(Exception):
    """What a broken dependency raises."""


class Stub:
    """Any method: records the call, then returns ``result`` or raises ``error``."""

    def __init__(self, calls: list[tuple[str, tuple[Any, ...]]], name: str) -> None:
        self._calls = calls
        self._name = name
        self.result: dict[str, Any] = {"ok": True}
        self.error: BaseException | None = None

    def __getattr__(self, method: str) -> Callable[..., dict[str, Any]]:
        if method.startswith("_"):
            raise AttributeError(method)

        def call(*args: Any) -> dict[str, Any]:
            self._calls.append((f"{self._name}.{method}", args))
            if self.error is not None:
                raise self.error
            return self.result

        return call


class FakeServices:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.coaching = Stub(self.calls, "coaching")
        self.directory = Stub(self.calls, "directory")
        self.assistance = Stub(self.calls, "assistance")
        self.voice = Stub(self.calls, "voice")
        self.sessions = Stub(self.calls, "sessions")
        self.attention = Stub(self.calls, "attention")

    def fail_with(self, error: BaseException) -> None:
        for stub in (self.coaching, self.directory, self.assistance, self.voice, self.sessions, self.attention):
            stub.error = error


def translate(exc: Exception) -> DomainError | None:
    return RateLimited("the store is busy; retry the request") if isinstance(exc, TimeoutError) else None


@pytest.fixture
def services() -> FakeServices:
    return FakeServices()


@pytest.fixture
def router(services: FakeServices) -> Router:
    return Router(services, translate)  # type: ignore[arg-type]


def send(router: Router, body: Any, caller: Principal | None = AGENT) -> dict[str, Any]:
    raw = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
    reply = router.reply(caller, CONN, raw)
    assert isinstance(reply, dict) and reply["type"] in ("ack", "error"), reply
    json.dumps(reply)  # always serialisable
    return reply


def error_of(reply: dict[str, Any], code: str) -> dict[str, Any]:
    assert reply["type"] == "error", reply
    assert reply["error"]["code"] == code, reply
    assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]
    return reply["error"]


# Valid fields for every action, so each one can be shown to reach its handler.
VALID: dict[str, dict[str, Any]] = {
    "ping": {},
    "auth.refresh": {"token": "a.b.c"},
    "presence.set": {"state": "not_ready"},
    "agents.list": {},
    "agent.watch": {"agentId": "agent-1"},
    "agent.unwatch": {"agentId": "agent-1"},
    "workitems.list": {"agentId": "agent-1"},
    "monitor.start": {"workitemId": "wi-1"},
    "monitor.stop": {"workitemId": "wi-1"},
    "coaching.end": {"workitemId": "wi-1"},
    "coach.send": {"workitemId": "wi-1", "text": "hi"},
    "coach.react": {"workitemId": "wi-1", "messageId": "m-1", "reaction": None},
    "coach.forward": {"workitemId": "wi-1", "messageId": "m-1"},
    "message.send": {"workitemId": "wi-1", "text": "hi"},
    "workitem.transfer": {"workitemId": "wi-1", "toAgentId": "agent-2"},
    "workitem.end": {"workitemId": "wi-1"},
    "consult.start": {"workitemId": "wi-1", "userId": "sup-1"},
    "timeline.get": {"workitemId": "wi-1", "after": 0},
    "assist.templates": {},
    "assist.recipients": {},
    "assist.request": {"templateId": "tp-1", "to": "supervisors"},
    "assist.claim": {"assistId": "as-1"},
    "assist.pending": {},
    "directory.send": {"toUserId": "sup-1", "text": "hi"},
    "directory.unread.get": {},
    "directory.read": {"withUserId": "sup-1"},
    "voice.join": {"workitemId": "wi-1"},
    "voice.monitor": {"workitemId": "wi-1"},
    "voice.whisper": {"workitemId": "wi-1"},
    "voice.barge": {"workitemId": "wi-1"},
    "voice.listen": {"workitemId": "wi-1"},
    "voice.pause_transcript": {"workitemId": "wi-1"},
    "voice.resume_transcript": {"workitemId": "wi-1"},
    "attention.list": {},
    "attention.ack": {"alertId": "al-1"},
}


def test_every_action_has_valid_fields_here() -> None:
    assert set(VALID) == set(TABLE) == set(ACTIONS)


@pytest.mark.parametrize("action", sorted(VALID))
def test_every_action_reaches_its_handler_once_and_acks(router: Router, services: FakeServices, action: str) -> None:
    reply = send(router, {"action": action, "requestId": "r-1", **VALID[action]})
    assert reply == {"type": "ack", "requestId": "r-1", "data": {} if action == "ping" else {"ok": True}}
    assert len(services.calls) == (0 if action == "ping" else 1)


def test_the_handler_gets_caller_connection_and_the_validated_frame(router: Router, services: FakeServices) -> None:
    send(router, {"action": "coach.send", "requestId": "r-9", "workitemId": "wi-1", "text": "hi", "extra": [1, 2]})
    ((name, args),) = services.calls
    assert name == "coaching.coach_send" and args == (AGENT, "wi-1", "hi", "conn-1=", None)


def test_assist_request_to_one_user(router: Router, services: FakeServices) -> None:
    send(router, {"action": "assist.request", "templateId": "tp-1", "to": {"userId": "sup-2"}, "workitemId": "wi-1"})
    ((name, args),) = services.calls
    assert name == "assistance.request" and args == (AGENT, "tp-1", "wi-1", "sup-2", "conn-1=")


# --- malformed frames ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    ["not json", "{", "{'action': 'ping'}", "", None, b"\xff\xfe\x00", b"\x80", '{"action": "ping"} trailing', "NaN-ish", "\x00"],
)
def test_non_json(router: Router, services: FakeServices, body: Any) -> None:
    error_of(send(router, body), "invalid")
    assert services.calls == []


@pytest.mark.parametrize("body", ["[]", '[{"action": "ping"}]', '"ping"', "42", "null", "true", "1.5e9"])
def test_json_that_is_not_an_object(router: Router, body: str) -> None:
    reply = send(router, body)
    error_of(reply, "invalid")
    assert reply["requestId"] is None


@pytest.mark.parametrize(
    "frame",
    [
        {},
        {"requestId": "r"},
        {"action": None, "requestId": "r"},
        {"action": "", "requestId": "r"},
        {"action": 5, "requestId": "r"},
        {"action": ["ping"], "requestId": "r"},
        {"Action": "ping", "requestId": "r"},
    ],
)
def test_missing_action(router: Router, frame: dict[str, Any]) -> None:
    reply = send(router, frame)
    error_of(reply, "invalid")
    assert reply["requestId"] == "r" if "requestId" in frame else reply["requestId"] is None


@pytest.mark.parametrize("name", ["nope", "PING", "coach.Send", "$default", "__class__", "ping ", "x" * 5000])
def test_unknown_action(router: Router, services: FakeServices, name: str) -> None:
    reply = send(router, {"action": name, "requestId": "r-2"})
    err = error_of(reply, "invalid")
    assert reply["requestId"] == "r-2" and len(err["message"]) < 200
    assert services.calls == []


def test_unknown_action_is_invalid_even_for_customers(router: Router) -> None:
    error_of(send(router, {"action": "nope"}, CUSTOMER), "invalid")


def test_unregistered_connection(router: Router, services: FakeServices) -> None:
    error_of(send(router, {"action": "ping", "requestId": "r"}, caller=None), "invalid")
    assert services.calls == []


# --- size ----------------------------------------------------------------------------------------


def _frame_of_size(size: int, char: str = "a") -> str:
    head = json.dumps({"action": "coach.send", "workitemId": "wi-1", "text": ""})
    filler = (size - len(head.encode())) // len(char.encode())
    body = json.dumps({"action": "coach.send", "workitemId": "wi-1", "text": char * filler}, ensure_ascii=False)
    return body


def test_oversize_frame_is_too_large(router: Router, services: FakeServices) -> None:
    body = _frame_of_size(MAX_FRAME_BYTES + 1)
    assert len(body.encode()) > MAX_FRAME_BYTES
    error_of(send(router, body), "too_large")
    error_of(send(router, body.encode()), "too_large")
    error_of(send(router, "x" * (MAX_FRAME_BYTES + 1)), "too_large")  # before any parsing
    assert services.calls == []


def test_an_oversize_frame_keeps_its_request_id(router: Router, services: FakeServices) -> None:
    pad = "x" * (MAX_FRAME_BYTES + 10)
    assert send(router, json.dumps({"action": "ping", "requestId": "big-1", "pad": pad}))["requestId"] == "big-1"
    assert send(router, json.dumps({"pad": pad, "requestId": "big-2"}).encode())["requestId"] == "big-2"
    for odd in (
        '{"requestId": 5, "pad": "' + pad + '"}',
        '{"requestId": "' + "r" * 129 + '", "p": "' + pad + '"}',
        '{"requestId": "r", "pad": "' + pad,
        "[" * 40_000,
    ):
        reply = send(router, odd)
        error_of(reply, "too_large")
        assert reply["requestId"] is None
    assert services.calls == []


def test_size_counts_bytes_not_characters(router: Router) -> None:
    body = _frame_of_size(MAX_FRAME_BYTES + 3, "€")  # 3 bytes each: fewer than 32 K characters
    assert len(body) < MAX_FRAME_BYTES < len(body.encode())
    error_of(send(router, body), "too_large")


def test_a_frame_of_exactly_the_limit_is_read(router: Router) -> None:
    body = json.dumps({"action": "ping", "requestId": "r", "pad": ""})
    body = body.replace('"pad": ""', '"pad": "' + "p" * (MAX_FRAME_BYTES - len(body.encode())) + '"')
    assert len(body.encode()) == MAX_FRAME_BYTES
    assert send(router, body)["type"] == "ack"


# --- field validation ----------------------------------------------------------------------------

BAD_FIELDS = [
    ("coach.send", {"workitemId": "wi-1", "text": 123}, "text"),
    ("coach.send", {"workitemId": "wi-1", "text": ""}, "text"),
    ("coach.send", {"workitemId": "wi-1", "text": "x" * 8001}, "text"),
    ("coach.send", {"workitemId": "wi-1"}, "text"),
    ("coach.send", {"workitemId": "wi#1", "text": "hi"}, "workitemId"),
    ("monitor.start", {"workitemId": "T#t2#W#wi-1"}, "workitemId"),
    ("monitor.start", {"workitemId": "wi 1"}, "workitemId"),
    ("monitor.start", {"workitemId": "wi-1\n"}, "workitemId"),
    ("monitor.start", {"workitemId": ["wi-1"]}, "workitemId"),
    ("monitor.start", {"workitemId": None}, "workitemId"),
    ("monitor.start", {}, "workitemId"),
    ("timeline.get", {"workitemId": "wi-1", "after": -1}, "after"),
    ("timeline.get", {"workitemId": "wi-1", "after": "zero"}, "after"),
    ("timeline.get", {"workitemId": "wi-1", "after": 0, "limit": 201}, "limit"),
    ("timeline.get", {"workitemId": "wi-1", "after": 0, "limit": 0}, "limit"),
    ("presence.set", {"state": "busy"}, "state"),
    ("presence.set", {"state": "offline"}, "state"),
    ("coach.react", {"workitemId": "wi-1", "messageId": "m-1", "reaction": "heart"}, "reaction"),
    ("coach.react", {"workitemId": "wi-1", "messageId": "m-1"}, "reaction"),
    ("assist.request", {"templateId": "tp-1", "to": "everyone"}, "to"),
    ("assist.request", {"templateId": "tp-1", "to": {"userId": "a", "admin": True}}, "to"),
    ("directory.send", {"toUserId": "sup-1", "text": "hi", "replyTo": 5}, "replyTo"),
    ("agent.watch", {"agentId": {"$ne": None}}, "agentId"),
    ("ping", {"requestId": "r" * 129}, "requestId"),
    ("ping", {"requestId": 17}, "requestId"),
]


@pytest.mark.parametrize(
    ("action", "fields", "field"), BAD_FIELDS, ids=[f"{a}-{f}-{i}" for i, (a, _, f) in enumerate(BAD_FIELDS)]
)
def test_invalid_fields_are_named(
    router: Router, services: FakeServices, action: str, fields: dict[str, Any], field: str
) -> None:
    frame = {"action": action, "requestId": "r-3", **fields}
    reply = send(router, frame)
    err = error_of(reply, "invalid")
    problems = err["details"]["problems"]
    assert any(p["field"] == field or p["field"].startswith(field + ".") for p in problems), problems
    assert all(set(p) == {"field", "problem"} for p in problems)
    assert field in err["message"]
    assert services.calls == []
    # the client's correlation id comes back whenever it is usable
    assert reply["requestId"] == (
        frame["requestId"] if isinstance(frame["requestId"], str) and len(frame["requestId"]) <= 128 else None
    )


def test_the_rejected_value_is_not_echoed(router: Router) -> None:
    err = error_of(send(router, {"action": "monitor.start", "workitemId": "<script>alert(1)</script>"}), "invalid")
    assert "<script>" not in json.dumps(err)


def test_a_reply_never_echoes_a_huge_request_id(router: Router) -> None:
    reply = send(router, {"action": "nope", "requestId": "r" * 5000})
    assert reply["requestId"] is None


def test_lone_surrogate_in_a_text_frame_is_invalid_not_internal(router: Router, services: FakeServices) -> None:
    """A str body that cannot be UTF-8 encoded is a malformed frame.

    BUG: Router.reply calls ``body.encode()`` which raises UnicodeEncodeError for a lone surrogate;
    that lands in the catch-all and is answered ``internal`` (and logged as a crash) instead of ``invalid``.
    """
    reply = send(router, '{"action": "ping", "requestId": "r", "x": "\ud800"}')
    error_of(reply, "invalid")
    assert services.calls == []


# --- who may call what ---------------------------------------------------------------------------


@pytest.mark.parametrize("action", sorted(set(TABLE) - CUSTOMER_ACTIONS))
def test_customers_may_not_call_staff_actions(router: Router, services: FakeServices, action: str) -> None:
    reply = send(router, {"action": action, "requestId": "r-4", **VALID[action]}, CUSTOMER)
    error_of(reply, "forbidden")
    assert reply["requestId"] == "r-4" and services.calls == []
    # forbidden comes before validation: a customer learns nothing about the staff actions' schemas
    error_of(send(router, {"action": action}, CUSTOMER), "forbidden")
    assert services.calls == []


@pytest.mark.parametrize("action", sorted(CUSTOMER_ACTIONS))
def test_customers_may_call_their_actions(router: Router, action: str) -> None:
    assert send(router, {"action": action, "requestId": "r", **VALID[action]}, CUSTOMER)["type"] == "ack"


def test_customer_actions_table_matches_the_contract() -> None:
    assert {name for name, a in TABLE.items() if a.customers} == CUSTOMER_ACTIONS


# --- failures in the handler ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "error", [Conflict("nobody is monitoring this workitem"), NotFound("workitem wi-9 not found"), RateLimited("slow down")]
)
def test_domain_errors_become_their_code(router: Router, services: FakeServices, error: DomainError) -> None:
    services.fail_with(error)
    reply = send(router, {"action": "coach.send", "requestId": "r-5", "workitemId": "wi-1", "text": "hi"})
    assert reply == {"type": "error", "requestId": "r-5", "error": error.to_dict()}
    assert len(services.calls) == 1


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> pytest.LogCaptureFixture:
    # chalicelib.logs.configure() (run when app.py is imported) stops propagation to the root logger.
    monkeypatch.setattr(logging.getLogger("chalicelib"), "propagate", True)
    caplog.set_level(logging.INFO, logger="chalicelib")
    return caplog


@pytest.mark.parametrize(
    "exc",
    [
        Boom(SECRET_TEXT),
        KeyError(SECRET_TEXT),
        ZeroDivisionError(SECRET_TEXT),
        AttributeError(SECRET_TEXT),
        NotImplementedError(SECRET_TEXT),
    ],
)
def test_unexpected_exception_is_internal_without_details(
    router: Router, services: FakeServices, logs: pytest.LogCaptureFixture, exc: Exception
) -> None:
    services.fail_with(exc)
    reply = send(router, {"action": "monitor.start", "requestId": "r-6", "workitemId": "wi-1"}, SUPERVISOR)
    err = error_of(reply, "internal")
    assert reply["requestId"] == "r-6" and set(err) == {"code", "message"}
    dumped = json.dumps(reply)
    for leak in ("hunter2", "Traceback", 'File "', type(exc).__name__, "/srv", ".py"):
        assert leak not in dumped, leak
    # ... but the operator gets everything, with context.
    (record,) = [r for r in logs.records if r.levelno >= logging.ERROR]
    assert record.name == "chalicelib.entrypoints.errors" and record.exc_info is not None and record.exc_info[1] is exc
    message = record.getMessage()
    assert "monitor.start" in message and "r-6" in message and "conn-1=" in message and "t1" in message


def test_translated_exception_is_retryable(router: Router, services: FakeServices, logs: pytest.LogCaptureFixture) -> None:
    services.fail_with(TimeoutError(SECRET_TEXT))
    reply = send(router, {"action": "coach.send", "requestId": "r-7", "workitemId": "wi-1", "text": "hi"})
    err = error_of(reply, "rate_limited")
    assert err["retryable"] is True and reply["requestId"] == "r-7"
    assert "hunter2" not in json.dumps(reply)
    assert not [r for r in logs.records if r.levelno >= logging.ERROR]
    assert [r for r in logs.records if r.levelno == logging.WARNING and "coach.send" in r.getMessage()]


def test_the_router_recovers_after_a_failure(router: Router, services: FakeServices) -> None:
    services.fail_with(Boom("x"))
    error_of(send(router, {"action": "agents.list", "requestId": "a"}, SUPERVISOR), "internal")
    services.fail_with(None)  # type: ignore[arg-type]
    assert send(router, {"action": "agents.list", "requestId": "b"}, SUPERVISOR) == {
        "type": "ack",
        "requestId": "b",
        "data": {"ok": True},
    }


# --- property: any input, one well-formed reply, nothing raised ------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(sorted({f for schema in ACTIONS.values() for f in schema.__struct_fields__} | {"x"}))
frames = st.builds(
    lambda action, fields, rid: {"action": action, **fields, **({"requestId": rid} if rid is not None else {})},
    st.sampled_from(sorted(TABLE)) | st.text(max_size=12),
    st.dictionaries(field_names, json_values, max_size=5),
    st.none() | st.text(max_size=10) | st.integers(),
)
bodies = st.one_of(
    frames.map(json.dumps),
    json_values.map(json.dumps),
    st.binary(max_size=200),
    st.text(max_size=200),
)


@settings(max_examples=300, deadline=None)
@given(
    body=bodies,
    caller=st.sampled_from([AGENT, SUPERVISOR, CUSTOMER, None]),
    failure=st.sampled_from([None, Boom("x"), TimeoutError("t"), Conflict("c")]),
)
def test_property_exactly_one_well_formed_reply(body: str | bytes, caller: Principal | None, failure: Exception | None) -> None:
    services = FakeServices()
    services.fail_with(failure)  # type: ignore[arg-type]
    router = Router(services, translate)  # type: ignore[arg-type]
    logger = logging.getLogger("chalicelib.entrypoints.errors")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # the Boom cases log a stack trace on purpose
    try:
        reply = router.reply(caller, CONN, body)
    finally:
        logger.setLevel(level)
    assert reply["type"] in ("ack", "error")
    assert set(reply) == ({"type", "requestId", "data"} if reply["type"] == "ack" else {"type", "requestId", "error"})
    assert reply["requestId"] is None or isinstance(reply["requestId"], str)
    assert len(services.calls) <= 1
    if reply["type"] == "error":
        assert reply["error"]["code"] in {"invalid", "forbidden", "too_large", "conflict", "rate_limited", "internal"}
        if reply["error"]["code"] == "internal":
            assert failure is not None and isinstance(failure, Boom) and services.calls
    else:
        assert caller is not None
        if caller.is_customer:
            assert json.loads(body)["action"] in CUSTOMER_ACTIONS
    assert "Traceback" not in json.dumps(reply)


def test_call_exposes_the_connection_id() -> None:
    assert Call(AGENT, CONN, None).connection_id == "conn-1="
