"""Fuzzing the product's inputs through the real entry points, on moto (docs/product.md Q3, Q12).

Random WebSocket frames from an agent, supervisors and a customer, random REST bodies and random
webhooks: nothing escapes, every frame gets exactly one ``ack`` or ``error``, no reply carries a stack
trace, and whatever is refused writes nothing (every table is compared before and after) and pushes
nothing to anybody.

One world per test function (``mock_aws`` is per test); the examples of a test share it, so the state
drifts as accepted frames change it, which is part of the point.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.entrypoints.ws import ACTIONS
from devstack.tokens import webhook_signature
from tests.support.ddbcount import count_dynamodb
from tests.support.world import WEBHOOK_SECRET, Client, World

pytestmark = [pytest.mark.integration, pytest.mark.moto, pytest.mark.slow]  # counts the DynamoDB writes each request attempts

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

CODES = {
    "invalid": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
}
REST_STATUSES = {200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415}
LEAKS = ("Traceback", 'File "', "botocore", "pynamodb", "msgspec", "pydantic", "Exception")
READ_OPERATIONS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable", "ListTables"}
T = TypeVar("T")

# --- the world every example of a test shares ---------------------------------------------------------


class Bench:
    """A tenant with two teams, four workitems (one per interesting channel), and five live connections."""

    def __init__(self, world: World) -> None:
        self.world = world
        world.team()
        world.team(team_id="team-2", supervisors=("sup-3",), agents=("agent-3",))
        for wid, channel in (("wi-1", "chat"), ("wi-s", "sms"), ("wi-v", "voice"), ("wi-e", "email")):
            world.assign(wid, channel=channel)
        world.admin("PUT", "/admin/templates/tp-1", {"text": "Need help", "enabled": True})
        self.clients: dict[str, Client] = {
            "agent": world.connect("agent-1", "agent"),
            "other-agent": world.connect("agent-2", "agent"),
            "supervisor": world.connect("sup-1", "supervisor"),
            "other-supervisor": world.connect("sup-3", "supervisor"),
            "customer": world.connect("cust-wi-1", "customer", wid="wi-1"),
        }
        self.clients["supervisor"].ok("monitor.start", workitemId="wi-1")
        tip = self.clients["supervisor"].ok("coach.send", workitemId="wi-1", text="offer a voucher")
        world.admin("PUT", "/admin/attention-rules/kw", {"kind": "keyword", "phrases": ["refund", "lawyer"]})
        self.clients["customer"].ok("message.send", workitemId="wi-1", text="a refund, or my lawyer")
        alerts = [e["data"]["alert"]["alertId"] for e in self.clients["supervisor"].events("attention.raised")]
        self.ids = [
            *alerts,
            "wi-1",
            "wi-s",
            "wi-v",
            "wi-e",
            "wi-none",
            "agent-1",
            "agent-2",
            "agent-3",
            "sup-1",
            "sup-2",
            "sup-3",
            "tp-1",
            "as-1",
            "cust-wi-1",
            tip["entry"]["messageId"],
        ]
        self.ddb = boto3.client("dynamodb", region_name=world.settings.region)
        self.tables = sorted(self.ddb.list_tables()["TableNames"])
        self.last = self.snapshot()

    def snapshot(self) -> dict[str, list[str]]:
        """Every item of every table. A Scan is fine here: tests only, never on a request path."""
        out: dict[str, list[str]] = {}
        for name in self.tables:
            items: list[str] = []
            kwargs: dict[str, Any] = {"TableName": name}
            while True:
                page = self.ddb.scan(**kwargs)
                items.extend(json.dumps(i, sort_keys=True) for i in page["Items"])
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            out[name] = sorted(items)
        return out

    def call(self, request: Callable[[], T]) -> tuple[T, list[str]]:
        """Run one request; also return the DynamoDB write operations it attempted."""
        with count_dynamodb() as log:
            result = request()
        return result, [op for op in log.calls if op not in READ_OPERATIONS]

    def refused_wrote_nothing(self, refused: bool, writes: list[str], what: Any) -> None:
        """Compare every table with the snapshot taken after the previous request.

        A request that attempted no write operation cannot have changed a table, so the (slow) Scan
        is only repeated after requests that did attempt one: the comparison stays exact."""
        if not writes:
            return
        now = self.snapshot()
        if refused:
            assert now == self.last, f"a refused request wrote to the tables ({writes}): {what!r}"
        self.last = now


def bench(world: World) -> Bench:
    existing = getattr(world, "_fuzz_bench", None)
    if existing is None:
        existing = Bench(world)
        world._fuzz_bench = existing  # type: ignore[attr-defined]
    return existing


# --- strategies -----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=10,
)
BAD_IDS = ["", " ", "a#b", "T#t2#W#wi-1", "wi-1 ", "x" * 200, "../wi-1", "é", "U#sup-1", "*", "wi-1\n"]
KEYWORDS = ["supervisors", "thumbs_up", "thumbs_down", "available", "not_ready", "offline", "hello", ""]
BIG = "x" * (33 * 1024)


def mostly(usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` four times in five, else ``other`` (``one_of`` alone does not keep such proportions)."""
    return st.sampled_from([True, True, True, True, False]).flatmap(lambda pick: usual if pick else other)


def hostile(ids: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(BAD_IDS),
        st.sampled_from(KEYWORDS),
        st.integers(min_value=-3, max_value=300),
        st.fixed_dictionaries({"userId": st.sampled_from(ids + BAD_IDS)}),
        json_values,
    )


def plausible(field: str, ids: list[str]) -> st.SearchStrategy[Any]:
    """A value of the right type for ``field`` (four times in five), or anything at all."""
    some_id = st.sampled_from(ids)
    right: st.SearchStrategy[Any] = {
        "text": st.text(min_size=1, max_size=40),
        "after": st.integers(min_value=0, max_value=12),
        "limit": st.integers(min_value=1, max_value=200),
        "state": st.sampled_from(["available", "not_ready"]),
        "reaction": st.sampled_from(["thumbs_up", "thumbs_down", None]),
        "clientMessageId": st.text(min_size=1, max_size=70),
        "to": st.just("supervisors") | st.fixed_dictionaries({"userId": some_id}),
    }.get(field, some_id)
    return mostly(right, hostile(ids))


def action_frames(ids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A frame naming a real action: all its fields, plausible or hostile, or any subset of them."""
    request_ids = st.text(max_size=20) | st.integers() | st.just("r" * 200)

    def for_action(name: str) -> st.SearchStrategy[dict[str, Any]]:
        fields = {f: plausible(f, ids) for f in ACTIONS[name].__struct_fields__ if f not in ("action", "requestId")}
        complete = st.fixed_dictionaries({"action": st.just(name), "requestId": st.text(max_size=20), **fields})
        partial = st.fixed_dictionaries(
            {"action": st.just(name)}, optional={**fields, "requestId": request_ids, "extra": json_values}
        )
        return mostly(complete, partial)

    return st.sampled_from(sorted(ACTIONS)).flatmap(for_action)


# Bytes that are not UTF-8: a stray byte, a lone continuation byte, an overlong "/", an encoded surrogate
# (CESU-8), a code point past U+10FFFF, a sequence cut short.
NOT_UTF8 = [b"\xff", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]
NOT_UTF8_REFUSAL = {"error": {"code": "invalid", "message": "the body is not valid UTF-8 text"}}


def _splice(parts: tuple[bytes, bytes, int]) -> bytes:
    """``bad`` put into ``raw`` after one of its quotes (so inside a string, usually), or at its end."""
    raw, bad, pick = parts
    spots = [i + 1 for i, byte in enumerate(raw) if byte == ord('"')] or [len(raw)]
    at = spots[pick % len(spots)]
    return raw[:at] + bad + raw[at:]


def not_utf8(valid: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """``valid`` bodies with bytes that are not UTF-8 spliced in: every route must answer 400 ``invalid``."""
    return st.tuples(valid, st.sampled_from(NOT_UTF8), st.integers(min_value=0, max_value=1000)).map(_splice)


def is_utf8(raw: Any) -> bool:
    if not isinstance(raw, bytes):
        return True
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def nested_json(depth: int, leaf: str = "1") -> str:
    return '{"a":' * (depth // 2) + "[" * (depth - depth // 2) + leaf + "]" * (depth - depth // 2) + "}" * (depth // 2)


# Inputs that broke the product before (deep nesting, huge numbers, lone surrogates), in frames.
edge_frames = st.one_of(
    st.integers(min_value=30, max_value=3000).map(nested_json),
    st.integers(min_value=1, max_value=5000).map(
        lambda n: '{"action":"timeline.get","requestId":"r","workitemId":"wi-1","after":' + "9" * n + "}"
    ),
    st.sampled_from(["\\ud800", "\\udfff", "a\\ud800b", "\\ud83d"]).map(
        lambda rid: '{"action":"ping","requestId":"' + rid + '"}'
    ),
    st.sampled_from(sorted(ACTIONS)).flatmap(
        lambda name: st.fixed_dictionaries(
            {
                "action": st.just(name),
                "requestId": st.text(max_size=8),
                "limit": st.one_of(st.integers(-5, 600), st.text(max_size=4), st.booleans(), st.floats()),
                "cursor": st.one_of(st.text(max_size=60), st.binary(max_size=40).map(lambda b: b.hex()), st.integers()),
                "after": st.one_of(st.integers(min_value=-(2**80), max_value=2**80), st.text(max_size=6)),
            }
        ).map(json.dumps)
    ),
)

raw_frames = st.one_of(
    edge_frames,
    json_values.map(json.dumps),
    st.dictionaries(st.sampled_from(["action", "requestId", "workitemId", "text"]), json_values).map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", errors="replace")),
    st.sampled_from(
        [
            BIG,
            json.dumps({"action": "coach.send", "workitemId": "wi-1", "text": BIG}),
            "",
            "{}",
            "[]",
            "null",
            '{"action": "ping"',
            '{"action": "ping", "requestId": "r"}',
        ]
    ),
)
roles = st.sampled_from(["agent", "other-agent", "supervisor", "other-supervisor", "customer"])


# --- WebSocket ----------------------------------------------------------------------------------------


def check_frame(b: Bench, role: str, body: str) -> dict[str, Any]:
    client = b.clients[role]
    posts = b.world.pusher.posts
    # send_raw raises unless exactly one ack/error came back on this connection
    reply, writes = b.call(lambda: client.send_raw(body))
    assert reply["type"] in ("ack", "error"), reply
    dumped = json.dumps(reply)
    for leak in LEAKS:
        assert leak not in dumped, (leak, reply)
    try:
        sent = _strict_json(body)
    except (ValueError, RecursionError):
        sent = None
    if isinstance(sent, dict) and isinstance(sent.get("requestId"), str) and len(sent["requestId"]) <= 128:
        if _depth(sent) <= 32 and _is_text(json.dumps(sent, ensure_ascii=False)):
            assert reply["requestId"] == sent["requestId"], reply
        else:  # a frame that is not valid text, or nested too deeply, is refused as a whole
            assert reply["type"] == "error" and reply["requestId"] in (None, sent["requestId"]), reply
    refused = reply["type"] == "error"
    if refused:
        error = reply["error"]
        assert error["code"] in CODES, reply  # never "internal": every bad input has a structured answer
        assert isinstance(error["message"], str) and error["message"], reply
        assert b.world.pusher.posts == posts + 1, "a refused frame pushed events"
    b.refused_wrote_nothing(refused, writes, (role, body[:300]))
    return reply


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _strict_json(text: str) -> Any:
    """Python's json module accepts NaN, Infinity and -Infinity; JSON (and the server) does not."""
    return json.loads(text, parse_constant=_refuse_constant)


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def well_formed(b: Bench) -> dict[str, dict[str, Any]]:
    """Fields that pass validation for every action, aimed at the bench's real objects."""
    tip = b.ids[-1]
    return {
        "ping": {},
        "auth.refresh": {"token": "not-a-token"},
        "presence.set": {"state": "not_ready"},
        "agents.list": {},
        "agent.watch": {"agentId": "agent-1"},
        "agent.unwatch": {"agentId": "agent-1"},
        "workitems.list": {"agentId": "agent-1"},
        "monitor.start": {"workitemId": "wi-s"},
        "monitor.stop": {"workitemId": "wi-s"},
        "coaching.end": {"workitemId": "wi-s"},
        "coach.send": {"workitemId": "wi-1", "text": "hi", "clientMessageId": "c-1"},
        "coach.react": {"workitemId": "wi-1", "messageId": tip, "reaction": "thumbs_up"},
        "coach.forward": {"workitemId": "wi-1", "messageId": tip},
        "message.send": {"workitemId": "wi-1", "text": "hi", "clientMessageId": "c-2"},
        "workitem.transfer": {"workitemId": "wi-e", "toAgentId": "agent-2"},
        "workitem.end": {"workitemId": "wi-e"},
        "consult.start": {"workitemId": "wi-s", "userId": "agent-2"},
        "timeline.get": {"workitemId": "wi-1", "after": 0},
        "assist.templates": {},
        "assist.recipients": {},
        "assist.request": {"templateId": "tp-1", "to": "supervisors", "workitemId": "wi-1"},
        "assist.claim": {"assistId": "as-1"},
        "assist.pending": {},
        "directory.send": {"toUserId": "sup-1", "text": "hi"},
        "directory.unread.get": {},
        "directory.read": {"withUserId": "agent-1"},
        "voice.join": {"workitemId": "wi-v"},
        "voice.monitor": {"workitemId": "wi-v"},
        "voice.whisper": {"workitemId": "wi-v"},
        "voice.barge": {"workitemId": "wi-v"},
        "voice.listen": {"workitemId": "wi-1"},
        "voice.pause_transcript": {"workitemId": "wi-v"},
        "voice.resume_transcript": {"workitemId": "wi-v"},
        "attention.list": {},
        "attention.ack": {"alertId": b.ids[0]},
    }


def test_every_action_from_every_role_answers_in_the_contract(world: World) -> None:
    """A deterministic sweep before the random ones: every action, well-formed, from every role."""
    b = bench(world)
    frames = well_formed(b)
    assert set(frames) == set(ACTIONS)
    for role in ("customer", "other-agent", "other-supervisor", "supervisor", "agent"):
        for action in sorted(frames):
            check_frame(b, role, json.dumps({"action": action, "requestId": f"{role}:{action}", **frames[action]}))


@settings(FUZZ, max_examples=25)  # each refused example scans every table
@given(
    delivery=st.one_of(st.sampled_from(["fast", "ordered", "FAST", "fast ", "", "fast,ordered"]), st.text(max_size=40)),
    role=st.sampled_from(["agent", "supervisor", "customer"]),
)
def test_connect_with_any_delivery_mode(world: World, delivery: str, role: str) -> None:
    """``$connect``'s ``delivery`` (W15.1): ``fast`` or ``ordered`` connects, anything else is 400 and
    writes nothing; never a 5xx."""
    b = bench(world)
    token = world.token("cust-wi-1" if role == "customer" else f"{role}-1" if role == "agent" else "sup-1", role, wid="wi-1")
    status, client = world.connect_token(token, delivery)
    if delivery in ("fast", "ordered"):
        assert status == 200 and client is not None
        client.disconnect()
        b.last = b.snapshot()  # a connection came and went: what it wrote is not this test's point
        return
    assert (status, client) == (400, None)
    assert b.snapshot() == b.last, "a refused connect wrote something"


@FUZZ
@given(data=st.data(), role=roles)
def test_action_frames_from_every_role(world: World, data: st.DataObject, role: str) -> None:
    b = bench(world)
    frame = data.draw(action_frames(b.ids), label="frame")
    check_frame(b, role, json.dumps(frame))


@FUZZ
@given(body=raw_frames, role=roles)
def test_random_json_text_and_bytes_from_every_role(world: World, body: str, role: str) -> None:
    reply = check_frame(bench(world), role, body)
    assert reply["type"] == "error" or json.loads(body).get("action") in ACTIONS


# --- REST ------------------------------------------------------------------------------------------------

REST_TOKENS = ["admin", "admin", "admin", "agent", "supervisor", "customer", "none", "garbage", "other-tenant-admin"]
REST_ROUTES = [
    "/admin/teams/x",
    "/admin/teams/a%23b",
    "/admin/policy",
    "/me/settings",
    "/admin/attention-rules/r-1",
    "/admin/attention-rules/r%23b",
    "/admin/sms-settings",
]


_PHRASES = st.text(max_size=12) | st.sampled_from(["refund", "REFÜND", "退款", "!!", "x" * 101])
ATTENTION_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "kind": st.sampled_from(["keyword", "sentiment", "customer_waiting", "silence", "handle_time", "mood"]),
    "enabled": st.booleans(),
    "severity": st.integers(0, 4),
    "phrases": st.lists(_PHRASES, max_size=4),
    "speakers": st.lists(st.sampled_from(["customer", "agent", "supervisor"]), max_size=3),
    "negativeInARow": st.integers(0, 11),
    "seconds": st.sampled_from([0, 4, 5, 9, 10, 59, 60, 600, 601, 3600, 3601, 86400, 86401]),
}
_KIND_FIELDS = {
    "keyword": ("phrases", "speakers"),
    "sentiment": ("negativeInARow",),
    "customer_waiting": ("seconds",),
    "silence": ("seconds",),
    "handle_time": ("seconds",),
}


def attention_rules(ids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A rule body of one kind with (mostly) its own fields, values near and past their bounds."""

    def of(kind: str) -> st.SearchStrategy[dict[str, Any]]:
        own = {name: mostly(ATTENTION_FIELDS[name], hostile(ids)) for name in _KIND_FIELDS[kind]}
        # Mostly the common fields, sometimes another kind's (refused); never one already given.
        optional = {name: value for name, value in ATTENTION_FIELDS.items() if name != "kind" and name not in own}
        return st.fixed_dictionaries({"kind": st.just(kind), **own}, optional=optional)

    return st.sampled_from(sorted(_KIND_FIELDS)).flatmap(of)


NUMBERS = ["+12065550100", "+12065550101", "0012065550100", "+0123", "+1206555010012345", "+1\u0662", "12065550100", ""]


def rest_bodies(route: str, ids: list[str]) -> st.SearchStrategy[Any]:
    """A body shaped for ``route`` (values mostly of the right type), or anything at all."""
    people = st.lists(st.sampled_from(ids), max_size=4)
    if route.startswith("/admin/teams/"):
        shaped: dict[str, st.SearchStrategy[Any]] = {
            "name": st.text(min_size=1, max_size=20),
            "supervisors": people,
            "agents": people,
        }
    elif route.startswith("/admin/attention-rules/"):
        return mostly(attention_rules(ids), st.fixed_dictionaries({}, optional=ATTENTION_FIELDS) | json_values)
    elif route == "/admin/policy":
        shaped = {
            "recordCoaching": st.booleans(),
            "escalationSeconds": st.integers(-10, 100_000),
            "retentionDays": st.integers(-10, 5000),
        }
    elif route == "/admin/sms-settings":
        shaped = {"originationIdentity": st.sampled_from([*NUMBERS, "pool-1", "a b"]), "phoneNumber": st.sampled_from(NUMBERS)}
    else:
        shaped = {"agentMessageNotification": st.booleans()}
    anything = {k: mostly(v, hostile(ids)) for k, v in shaped.items()}
    return mostly(
        st.fixed_dictionaries(anything),
        st.one_of(
            st.fixed_dictionaries({}, optional=anything),
            json_values,
            st.binary(max_size=100),
            not_utf8(st.fixed_dictionaries(anything).map(lambda d: json.dumps(d).encode())),
            st.text(max_size=100),
            st.just("x" * (129 * 1024)),
        ),
    )


def _rest_token(world: World, kind: str) -> str | None:
    if kind == "none":
        return None
    if kind == "garbage":
        return "not.a.jwt"
    if kind == "other-tenant-admin":
        return world.token("admin-1", "admin", tid="t2")
    return world.token(f"{kind}-1", kind, wid="wi-1" if kind == "customer" else None)


def check_rest(b: Bench, status: int, payload: Any, writes: list[str], what: Any) -> None:
    assert status in REST_STATUSES, (status, payload, what)
    refused = status >= 400
    if refused:
        assert isinstance(payload, dict) and set(payload) == {"error"}, (status, payload)
        error = payload["error"]
        assert set(error) >= {"code", "message"} and CODES.get(error["code"]) == status, (status, payload)
        assert isinstance(error["message"], str) and error["message"]
    elif status == 200:
        assert isinstance(payload, dict), payload
    dumped = json.dumps(payload)
    for leak in LEAKS:
        assert leak not in dumped, (leak, payload)
    b.refused_wrote_nothing(refused, writes, what)


@FUZZ
@given(data=st.data(), route=st.sampled_from(REST_ROUTES), who=st.sampled_from(REST_TOKENS))
def test_rest_bodies(world: World, data: st.DataObject, route: str, who: str) -> None:
    b = bench(world)
    body = data.draw(rest_bodies(route, b.ids), label="body")
    raw = json.dumps(body) if not isinstance(body, (bytes, str)) else body
    token = _rest_token(world, who)
    (status, payload), writes = b.call(lambda: world.rest("PUT", route, token, raw))
    check_rest(b, status, payload, writes, (route, who, raw[:300]))
    if not is_utf8(raw):  # before anything else, even authentication
        assert status == 400 and payload == NOT_UTF8_REFUSAL, payload
    elif who in ("none", "garbage"):
        assert status == 401 or (status == 413 and len(raw) > 128 * 1024), (status, payload)


# Every route, every method, odd path parameters (encoded '#', '/', '%' included), odd query strings,
# content types and bodies.
PATH_VALUES = [
    "agent-1",
    "wi-1",
    "tp-1",
    "team-1",
    "sup-1",
    "tpl-1%23evil",
    "a%2Fb",
    "a%25",
    "a%2523b",
    "%00",
    "..",
    "a%20b",
    "%C3%A9",
    "%F0%9F%98%80",
    "%ED%A0%80",
    "x" * 129,
    "a+b",
    "a@b:c.d_e-f",
    "-a",
    "%FF",
    "%",
]
QUERY_VALUES = [
    "0",
    "5",
    "200",
    "201",
    "-1",
    " 5",
    "+5",
    "1_0",
    "%D9%A5",
    "%EF%BC%95",
    "9" * 11,
    "9" * 1100,
    "9" * 5000,
    "",
    "5.0",
    "0x5",
    "true",
]


def rest_requests() -> st.SearchStrategy[tuple[str, str, dict[str, str], Any]]:
    from app import app

    routes = sorted((path, method) for path, methods in app.routes.items() for method in methods)

    def build(route: tuple[str, str]) -> st.SearchStrategy[tuple[str, str, dict[str, str], Any]]:
        path, method = route
        params = [p for p in path.split("/") if p.startswith("{")]
        values = st.lists(st.sampled_from(PATH_VALUES), min_size=len(params), max_size=len(params))
        query = st.dictionaries(st.sampled_from(["after", "limit", "cursor", "x"]), st.sampled_from(QUERY_VALUES), max_size=3)
        methods = st.sampled_from([method, method, method, "GET", "PUT", "POST", "DELETE", "PATCH"])
        content = st.sampled_from(
            ["application/json", "application/json", "application/json; charset=utf-8", "text/plain", "application/xml", ""]
        )
        bodies = st.one_of(
            json_values.map(json.dumps),
            st.just(nested_json(1000)),
            st.just(nested_json(40)),
            st.integers(1, 5000).map(lambda n: '{"x":' + "9" * n + "}"),
            st.binary(max_size=60),
            not_utf8(json_values.map(lambda v: json.dumps(v).encode())),
            st.none(),
        )

        def assemble(parts: tuple[list[str], dict[str, str], str, str, Any]) -> tuple[str, str, dict[str, str], Any]:
            vals, q, verb, ctype, body = parts
            url = path
            for name, value in zip(params, vals, strict=True):
                url = url.replace(name, value, 1)
            if q:
                url += "?" + "&".join(f"{k}={v}" for k, v in q.items())
            headers = {"Content-Type": ctype} if ctype else {}
            return verb, url, headers, body

        return st.tuples(values, query, methods, content, bodies).map(assemble)

    return st.sampled_from(routes).flatmap(build)


@FUZZ
@given(request=rest_requests(), who=st.sampled_from(REST_TOKENS))
def test_every_rest_route_method_and_parameter(world: World, request: tuple[str, str, dict[str, str], Any], who: str) -> None:
    b = bench(world)
    method, url, headers, body = request
    token = _rest_token(world, who)
    if token:
        headers = {**headers, "Authorization": f"Bearer {token}"}
    client = world.http

    def call() -> Any:
        response = getattr(client, method.lower())(url, headers=headers, body=body)
        world.pump()
        return response

    response, writes = b.call(call)
    payload = json.loads(response.body) if response.body else None
    if response.status_code == 403 and payload == {"message": "Missing Authentication Token"}:
        # No such route: API Gateway answers (the stack's gateway responses put it in the error shape).
        return
    check_rest(b, response.status_code, payload, writes, (method, url, who))
    if not is_utf8(body):  # on every route and method, before authentication
        assert response.status_code == 400 and payload == NOT_UTF8_REFUSAL, (method, url, payload)
    if any(v in url for v in ("%23", "%2F", "%25", "%00", "%20")) and response.status_code < 300:
        raise AssertionError(f"an id with an encoded #, /, %, NUL or space was accepted: {method} {url}")


# GET /analytics/coaching: its own parameters, with odd values; the answer is JSON or, for a valid
# format=csv, CSV text; never a write.
ANALYTICS_VALUES = [
    "2026-01-01",
    "2026-12-31",
    "2027-01-02",
    "2026-02-30",
    "2026-1-1",
    "%EF%BC%92026-01-01",
    "2026-01-01T00:00:00Z",
    "-2026-01-01",
    "9" * 5000,
    "",
    "agent",
    "supervisor",
    "template",
    "day",
    "csv",
    "json",
    "%3D1%2B1",
    "%00",
]


@FUZZ
@given(
    query=st.dictionaries(
        st.sampled_from(["from", "to", "groupBy", "format", "x"]), st.sampled_from(ANALYTICS_VALUES), max_size=5
    ),
    who=st.sampled_from(REST_TOKENS),
)
def test_analytics_queries(world: World, query: dict[str, str], who: str) -> None:
    b = bench(world)
    token = _rest_token(world, who)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = "/analytics/coaching?" + "&".join(f"{k}={v}" for k, v in query.items())

    def call() -> Any:
        return world.http.get(url, headers=headers)

    response, writes = b.call(call)
    csv_answer = response.status_code == 200 and query.get("format") == "csv"
    if csv_answer:
        text = response.body.decode()
        assert text.startswith("key,name,monitoredWorkitems,"), text[:200]
        payload: Any = {"csv": text}
    else:
        payload = json.loads(response.body) if response.body else None
    check_rest(b, response.status_code, payload, writes, ("GET", url, who))
    assert not writes, writes
    if response.status_code == 200:
        assert who in ("admin", "supervisor"), (who, url)


# --- webhooks --------------------------------------------------------------------------------------------


def webhook_bodies(ids: list[str]) -> st.SearchStrategy[bytes]:
    """An event shaped for its type (values mostly of the right type), or anything at all."""
    wids = st.sampled_from([*ids[:5], "wi-new", "wi-new-2"])
    agents = st.sampled_from(["agent-1", "agent-2", "agent-3", "ghost"])

    def loose(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return mostly(strategy, hostile(ids))

    shapes: dict[str, dict[str, st.SearchStrategy[Any]]] = {
        "workitem.assigned": {
            "workitemId": wids,
            "agentId": agents,
            "channel": st.sampled_from(["chat", "sms", "social", "voice", "email", "fax"]),
            "customer": st.fixed_dictionaries({"id": st.sampled_from(["c-1", "c 2"]), "name": st.text(max_size=10)}),
        },
        "workitem.message": {
            "workitemId": wids,
            "from": st.sampled_from(["customer", "agent", "supervisor"]),
            "text": st.text(max_size=20),
        },
        "workitem.transferred": {"workitemId": wids, "toAgentId": agents},
        "workitem.ended": {"workitemId": wids, "endedBy": st.sampled_from(["customer", "agent", "system", "alien"])},
    }

    def event(kind: str) -> st.SearchStrategy[dict[str, Any]]:
        data = st.fixed_dictionaries({k: loose(v) for k, v in shapes[kind].items()})
        return st.fixed_dictionaries(
            {
                "eventId": loose(st.text(alphabet="abcdef0123456789", min_size=1, max_size=8)),
                "tenantId": loose(st.sampled_from(["t1", "t1", "t1", "t2"])),
                "type": loose(st.just(kind)),
                "data": loose(data),
            }
        )

    shaped = st.sampled_from(sorted(shapes)).flatmap(event)
    return mostly(
        shaped.map(lambda e: json.dumps(e).encode()),
        st.one_of(
            st.fixed_dictionaries(
                {}, optional={"eventId": json_values, "tenantId": json_values, "type": json_values, "data": json_values}
            ).map(lambda e: json.dumps(e).encode()),
            json_values.map(lambda v: json.dumps(v).encode()),
            st.binary(max_size=200),
            not_utf8(shaped.map(lambda e: json.dumps(e).encode())),
            st.just(b"{" + b" " * (129 * 1024) + b"}"),
            st.integers(30, 5000).map(lambda n: nested_json(n).encode()),
            st.integers(1, 5000).map(
                lambda n: (
                    '{"eventId":"e","tenantId":"t1","type":"workitem.ended","data":'
                    '{"workitemId":' + "9" * n + ',"endedBy":"system"}}'
                ).encode()
            ),
            st.just(b'{"eventId":"\\ud800","tenantId":"t1","type":"workitem.ended","data":{}}'),
        ),
    )


SIGNATURES = ["valid", "valid", "valid", "valid", "missing", "wrong-secret", "stale", "future", "garbage", "no-v1", "empty-v1"]


def _signature(kind: str, raw: bytes) -> str | None:
    now = int(time.time())
    return {
        "valid": webhook_signature(WEBHOOK_SECRET, raw, now),
        "missing": None,
        "wrong-secret": webhook_signature("not-the-secret-" + "x" * 20, raw, now),
        "stale": webhook_signature(WEBHOOK_SECRET, raw, now - 301),
        # Well past the 300 s window: the server reads its clock a moment after this one (under load, a
        # second later), which must not bring the timestamp back inside the window.
        "future": webhook_signature(WEBHOOK_SECRET, raw, now + 310),
        "garbage": "garbage",
        "no-v1": f"t={now}",
        "empty-v1": f"t={now},v1=",
    }[kind]


@FUZZ
@given(data=st.data(), signature=st.sampled_from(SIGNATURES))
def test_webhook_bodies(world: World, data: st.DataObject, signature: str) -> None:
    b = bench(world)
    raw = data.draw(webhook_bodies(b.ids), label="body")
    headers = {"Content-Type": "application/json"}
    header = _signature(signature, raw)
    if header is not None:
        headers["X-Coaching-Signature"] = header
    response, writes = b.call(lambda: world.http.post("/webhooks/events", body=raw, headers=headers))
    payload = json.loads(response.body) if response.body else None
    check_rest(b, response.status_code, payload, writes, (signature, raw[:300]))
    if not is_utf8(raw):  # signed or not
        assert response.status_code == 400 and payload == NOT_UTF8_REFUSAL, (signature, payload)
    elif len(raw) > 128 * 1024:
        assert response.status_code == 413
    elif signature != "valid":
        assert response.status_code == 401, (signature, payload)
    else:
        assert response.status_code in (200, 400, 404, 409), payload


# --- what AWS hands the connectors (docs/connectors.md) -------------------------------------------------

# Fewer examples: each one is a single function call, and the strategies are narrow.
CONNECTOR_FUZZ = settings(FUZZ, max_examples=25)
SMS_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "originationNumber": st.sampled_from(["+14255550182", "cust-wi-s", *NUMBERS]),
    "destinationNumber": st.sampled_from(NUMBERS),
    "messageBody": st.text(max_size=40) | st.just("x" * 8001),
    "inboundMessageId": st.sampled_from(["m-1", "m-2", "", "a b", "x" * 300]) | st.uuids().map(str),
    "messageKeyword": st.sampled_from(["STOP", "HELP", ""]),
}


def sns_notifications() -> st.SearchStrategy[Any]:
    """A Lambda event from SNS: mostly an inbound text in its envelope, else anything."""
    from tests.integration.test_inbound_sms import sns_event

    anything = {k: mostly(v, json_values) for k, v in SMS_FIELDS.items()}
    message = mostly(
        st.fixed_dictionaries(anything).map(json.dumps), st.one_of(st.text(max_size=50), json_values.map(json.dumps))
    )
    return mostly(
        st.tuples(message, st.sampled_from(["2026-12-07T22:50:01.150Z", "yesterday", ""])).map(
            lambda m: sns_event(m[0], timestamp=m[1])
        ),
        st.one_of(json_values, st.fixed_dictionaries({"Records": json_values})),
    )


@CONNECTOR_FUZZ
@given(event=sns_notifications())
def test_inbound_sms_events(world: World, event: Any) -> None:
    """The SNS function never raises for what it is handed, answers one outcome per record, and what it
    does not apply writes nothing."""
    from chalicelib.entrypoints import events

    b = bench(world)
    world.admin("PUT", "/admin/sms-settings", {"originationIdentity": "+12065550100"})
    b.last = b.snapshot()
    result, writes = b.call(lambda: events.on_sms_inbound(event))
    world.pump()
    assert set(result["outcomes"]) <= {"applied", "duplicate", "routed", "ignored", "invalid"}, result
    b.refused_wrote_nothing(set(result["outcomes"]) <= {"ignored", "invalid", "duplicate"}, writes, event)


def connect_events() -> st.SearchStrategy[Any]:
    """An EventBridge event: mostly an Amazon Connect contact event with odd fields, else anything."""
    from tests.integration.test_amazon_connect import contact_event

    kinds = st.sampled_from(["CONNECTED_TO_AGENT", "DISCONNECTED", "COMPLETED", "QUEUED", "", "connected_to_agent"])
    contacts = st.sampled_from(["c-1", "c-2", "", "a#b", "x" * 300])
    shaped = st.builds(
        contact_event,
        kinds,
        contacts,
        initial=st.none() | contacts,
        channel=st.sampled_from(["CHAT", "Voice", "TASK", ""]),
        pascal=st.booleans(),
        time=st.sampled_from(["2026-12-07T22:50:00Z", "2026-12-07T22:49:00Z", "soon"]),
    )
    return mostly(shaped, st.one_of(json_values, shaped.map(lambda e: {**e, "detail": {"eventType": e["detail"]}})))


def _connect_the_tenant(world: World) -> None:
    """The stack follows the test instance, and tenant t1 connects it with agent-1 mapped."""
    from tests.integration.test_amazon_connect import ACCOUNT, CONNECT_USER, INSTANCE

    world.services.amazon_connect.settings = msgspec.structs.replace(
        world.settings, account_id=ACCOUNT, region="us-east-1", connect_instance_arns=(INSTANCE,)
    )
    world.admin("PUT", "/admin/connectors/amazon-connect", {"instanceArn": INSTANCE, "agents": {CONNECT_USER: "agent-1"}})


@CONNECTOR_FUZZ
@given(event=connect_events())
def test_amazon_connect_events(world: World, event: Any) -> None:
    """The contact event function never raises for what it is handed and answers one outcome; what it
    refuses or ignores writes nothing."""
    from chalicelib.entrypoints import events

    b = bench(world)
    _connect_the_tenant(world)
    b.last = b.snapshot()
    result, writes = b.call(
        lambda: events.on_connect_event(event) if isinstance(event, dict) else events.on_connect_event({"x": event})
    )
    world.pump()
    assert result["outcome"] in {"applied", "duplicate", "scheduled", "ignored", "invalid"}, result
    b.refused_wrote_nothing(result["outcome"] in {"ignored", "invalid"}, writes, event)


def connect_chat_items() -> st.SearchStrategy[Any]:
    """An SNS record of the chat topic: mostly a streamed chat item with odd fields, else anything."""
    from tests.integration.test_connect_chat import item, notification

    shaped = st.builds(
        item,
        st.sampled_from(["i-1", "i-2", "", "a b", "x" * 300]),
        role=st.sampled_from(["CUSTOMER", "AGENT", "SYSTEM", "CUSTOM_BOT", "SUPERVISOR", "customer", ""]),
        content=st.text(max_size=40) | st.sampled_from(["", " ", "x" * 16385]),
        kind=st.sampled_from(["MESSAGE", "EVENT", "ATTACHMENT", "TYPING", ""]),
        AbsoluteTime=st.sampled_from(["2026-12-07T22:50:05.656Z", "soon", 5]),
        InitialContactId=st.sampled_from(["33333333-abc5-46db-9ad5-d772559ab556", "other-chat", "../x", None]),
        Attachments=st.none() | st.lists(st.fixed_dictionaries({}, optional={"AttachmentName": json_values}), max_size=2),
    ).map(notification)
    return mostly(shaped, json_values.map(lambda v: {"EventSource": "aws:sns", "Sns": v}))


@CONNECTOR_FUZZ
@given(record=connect_chat_items())
def test_amazon_connect_chat_items(world: World, record: Any) -> None:
    """The chat items of a followed chat: never an exception, one outcome per record; what is refused,
    skipped or ignored writes nothing."""
    from chalicelib.entrypoints import events
    from tests.integration.test_amazon_connect import contact_event
    from tests.integration.test_connect_chat import CHAT

    b = bench(world)
    _connect_the_tenant(world)
    events.on_connect_event(contact_event("CONNECTED_TO_AGENT", CHAT))
    world.pump()
    b.last = b.snapshot()
    result, writes = b.call(lambda: events.on_connect_event({"Records": [record]}))
    world.pump()
    (outcome,) = result["outcomes"]
    assert outcome in {"applied", "duplicate", "skipped", "ignored", "invalid"}, result
    b.refused_wrote_nothing(outcome in {"skipped", "ignored", "invalid"}, writes, record)
