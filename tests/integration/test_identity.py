"""Identity and isolation through the real entry points (docs/product.md W2): refused tokens write
nothing, tenants never see each other, and permission is checked before any workitem state."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import boto3
import jwt
import pytest

from chalicelib.entrypoints import ws
from tests.support.world import JWT_SECRET, World

pytestmark = pytest.mark.integration

NOW = int(time.time())


_clients: dict[str, Any] = {}


def snapshot() -> dict[str, list[str]]:
    """Every item of every table (a Scan: tests only, never on a request path)."""
    client = _clients.get("ddb") or _clients.setdefault("ddb", boto3.client("dynamodb", region_name="us-east-1"))
    out: dict[str, list[str]] = {}
    for name in client.list_tables()["TableNames"]:
        items: list[str] = []
        kwargs: dict[str, Any] = {"TableName": name}
        while True:
            page = client.scan(**kwargs)
            items.extend(json.dumps(i, sort_keys=True) for i in page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        out[name] = sorted(items)
    return out


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "agent-1", "tid": "t1", "role": "agent", "exp": NOW + 600}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def signed(secret: str = JWT_SECRET, algorithm: str = "HS256", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), secret, algorithm=algorithm)


def alg_none(**overrides: Any) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims(**overrides)).encode())}."


def hs512() -> str:
    """HS512 keyed with our own secret (built by hand: PyJWT warns about the short key)."""
    signing_input = f"{_b64(json.dumps({'alg': 'HS512', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims()).encode())}"
    mac = hmac.new(JWT_SECRET.encode(), signing_input.encode(), hashlib.sha512).digest()
    return f"{signing_input}.{_b64(mac)}"


BAD_TOKENS: dict[str, str | None] = {
    "missing": None,
    "empty": "",
    "garbage": "not-a-jwt",
    "expired": signed(exp=NOW - 3600),
    "wrong-secret": signed(secret="some-other-secret-" + "x" * 32),
    "alg-none": alg_none(),
    "alg-none-admin": alg_none(role="admin", sub="admin-1"),
    "hs512": hs512(),
    "no-tenant": signed(tid=None),
    "no-role": signed(role=None),
    "no-exp": signed(exp=None),
    "bad-role": signed(role="root"),
    "customer-without-wid": signed(role="customer", sub="cust-wi-1"),
    "key-injection": signed(tid="t1#U#admin-1"),
    "space-in-sub": signed(sub="agent 1"),
}


def connect_event(token: str | None, connection_id: str = "raw-conn-1=", *, query: bool = True) -> dict[str, Any]:
    """A $connect event as API Gateway sends it when no authorizer is attached (the fallback path)."""
    event: dict[str, Any] = {
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "connectionId": connection_id,
            "connectedAt": int(time.time() * 1000),
            "apiId": "test",
            "stage": "test",
            "domainName": "test.local",
            "requestId": "req-1",
        },
        "headers": {"Host": "test.local"},
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = {"token": token} if token is not None else {}
    return event


def message_event(connection_id: str, body: str) -> dict[str, Any]:
    return {
        "requestContext": {
            "routeKey": "$default",
            "eventType": "MESSAGE",
            "connectionId": connection_id,
            "connectedAt": int(time.time() * 1000),
            "requestId": "req-2",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def authorizer_event(token: str | None) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef/test/$connect",
        "queryStringParameters": {"token": token} if token is not None else {},
        "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "connectionId": "auth-conn="},
    }


@pytest.fixture(scope="module")
def w() -> Iterator[World]:
    """One product for the whole module (building one takes seconds): every test works on its own
    workitems and compares table snapshots around its refusals, so the tests stay independent."""
    from moto import mock_aws

    from chalicelib import bootstrap
    from chalicelib.adapters.dynamo import create_tables
    from tests.support.world import test_settings

    with mock_aws():
        settings = test_settings()
        create_tables(settings)
        world = World(settings)
        world.team()
        world.team(team_id="team-2", supervisors=("sup-3",), agents=("agent-3",))
        world.team(tid="t2")  # the same user ids, in another tenant
        world.assign("wi-1")
        yield world
        bootstrap.install(None)
        _clients.clear()


_wids = itertools.count(1)


def fresh(w: World) -> str:
    """A new chat workitem of agent-1 in t1, for one test alone."""
    wid = f"wi-id-{next(_wids)}"
    w.assign(wid)
    return wid


# --- $connect without an authorizer: the token in the query string ------------------------------------


def test_connect_with_a_bad_token_is_401_and_writes_nothing(w: World) -> None:
    before, posts = snapshot(), w.pusher.posts  # one snapshot around all of them: Scans are slow on moto
    for name, token in BAD_TOKENS.items():
        assert ws.connect(connect_event(token, f"bad-{name}=")) == {"statusCode": 401}, name
        assert w.services.directory.registry.get(f"bad-{name}=") is None, name
    assert ws.connect(connect_event(None, query=False)) == {"statusCode": 401}
    assert snapshot() == before
    assert w.pusher.posts == posts


def test_connect_with_a_good_token_registers_the_connection(w: World) -> None:
    token = w.token("agent-1", "agent")
    assert ws.connect(connect_event(token, "raw-ok=")) == {"statusCode": 200}
    principal = w.services.directory.registry.get("raw-ok=")
    assert principal is not None and (principal.tenant_id, principal.user_id) == ("t1", "agent-1")
    # Frames on that connection carry no authorizer context: the registry says who it is.
    ws.message(message_event("raw-ok=", json.dumps({"action": "ping", "requestId": "p"})))
    assert w.pusher.frames["raw-ok="][-1] == {"type": "ack", "requestId": "p", "data": {}}
    ws.message(
        message_event("raw-ok=", json.dumps({"action": "timeline.get", "requestId": "t", "workitemId": "wi-1", "after": 0}))
    )
    assert w.pusher.frames["raw-ok="][-1]["type"] == "ack"
    ws.disconnect(message_event("raw-ok=", ""))
    assert w.services.directory.registry.get("raw-ok=") is None


def test_a_frame_on_an_unknown_connection_is_refused_and_writes_nothing(w: World) -> None:
    before = snapshot()
    ws.message(message_event("never-connected=", json.dumps({"action": "ping", "requestId": "x"})))
    (reply,) = w.pusher.frames["never-connected="]
    assert reply["type"] == "error" and reply["error"]["code"] == "invalid" and reply["requestId"] == "x"
    assert snapshot() == before


@pytest.mark.parametrize(("tid", "wid"), [("t1", "wi-none"), ("t2", "wi-1")], ids=["unknown", "other-tenant"])
def test_a_customer_token_for_a_missing_workitem_is_403(w: World, tid: str, wid: str) -> None:
    before = snapshot()
    token = w.token("cust-x", "customer", tid=tid, wid=wid)
    assert ws.connect(connect_event(token, "raw-cust=")) == {"statusCode": 403}
    assert snapshot() == before
    # The same through the authorizer: it admits the token, $connect refuses the workitem.
    event = connect_event(None, "auth-cust=", query=False)
    event["requestContext"]["authorizer"] = ws.authorize(authorizer_event(token))["context"]
    assert ws.connect(event) == {"statusCode": 403}
    assert snapshot() == before


def test_a_customer_token_for_an_existing_workitem_connects(w: World) -> None:
    token = w.token("cust-wi-1", "customer", wid="wi-1")
    assert ws.connect(connect_event(token, "raw-cust-ok=")) == {"statusCode": 200}


def test_an_unexpected_failure_of_connect_or_disconnect_is_logged_once_not_raised(
    w: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """$connect answers 500 and $disconnect 200 (the socket is gone either way); each logs the failure once."""
    failure = RuntimeError("secret-internal-detail")

    def broken(*_: Any, **__: Any) -> None:
        raise failure

    services = w.services
    monkeypatch.setattr(services.directory, "connect", broken)
    monkeypatch.setattr(services.directory, "disconnect", broken)
    token = w.token("agent-1", "agent")
    with caplog.at_level(logging.INFO, "chalicelib.entrypoints.errors"):
        assert ws.connect(connect_event(token, "raw-broken=")) == {"statusCode": 500}
        event = connect_event(None, "auth-broken=", query=False)
        event["requestContext"]["authorizer"] = ws.authorize(authorizer_event(token))["context"]
        assert ws.disconnect(event) == {"statusCode": 200}
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.exc_info[1] if r.exc_info else None for r in errors] == [failure, failure]
    assert "raw-broken=" in errors[0].getMessage() and "auth-broken=" in errors[1].getMessage()


# --- the Lambda REQUEST authorizer ---------------------------------------------------------------


def test_authorizer_refuses_bad_tokens(w: World) -> None:
    before = snapshot()
    for name, token in BAD_TOKENS.items():
        with pytest.raises(Exception) as info:  # API Gateway needs exactly Exception("Unauthorized")
            ws.authorize(authorizer_event(token))
        assert type(info.value) is Exception and str(info.value) == "Unauthorized", name
        assert info.value.__cause__ is None and info.value.__suppress_context__, name  # no token detail leaks
    assert snapshot() == before


@pytest.mark.parametrize(("role", "wid"), [("agent", None), ("supervisor", None), ("admin", None), ("customer", "wi-1")])
def test_authorizer_allows_good_tokens_with_context(w: World, role: str, wid: str | None) -> None:
    before = snapshot()
    event = authorizer_event(w.token(f"{role}-9", role, wid=wid, name="Pat"))
    policy = ws.authorize(event)
    assert policy["principalId"] == f"t1/{role}-9"
    (statement,) = policy["policyDocument"]["Statement"]
    assert statement == {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}
    claims = jwt.decode(event["queryStringParameters"]["token"], options={"verify_signature": False})
    assert policy["context"] == {
        "tenantId": "t1",
        "userId": f"{role}-9",
        "role": role,
        "workitemId": wid or "",
        "name": "Pat",
        "exp": claims["exp"],
        "iat": claims["iat"],
        "federated": "",
    }
    # API Gateway only passes string, number and boolean context values.
    assert all(isinstance(v, (str, int, bool)) for v in policy["context"].values())
    assert snapshot() == before  # the authorizer never writes


def test_authorizer_context_round_trips_through_connect(w: World) -> None:
    context = ws.authorize(authorizer_event(w.token("agent-1", "agent")))["context"]
    event = connect_event(None, "ctx-conn=", query=False)
    event["requestContext"]["authorizer"] = context
    assert ws.connect(event) == {"statusCode": 200}
    body = json.dumps({"action": "workitems.list", "requestId": "l", "agentId": "agent-1"})
    msg = message_event("ctx-conn=", body)
    msg["requestContext"]["authorizer"] = context
    ws.message(msg)
    reply = w.pusher.frames["ctx-conn="][-1]
    assert reply["type"] == "ack" and "wi-1" in [x["workitemId"] for x in reply["data"]["workitems"]]


# --- tenants are isolated ------------------------------------------------------------------------------


def test_a_supervisor_of_another_tenant_sees_nothing(w: World) -> None:
    wid = fresh(w)
    w.connect("sup-1", "supervisor").ok("monitor.start", workitemId=wid)  # t1's sup-1 is monitoring
    foreign = w.connect("sup-1", "supervisor", tid="t2")  # same user id, tenant t2
    before = snapshot()
    foreign.fails("monitor.start", "not_found", workitemId=wid)
    foreign.fails("timeline.get", "not_found", workitemId=wid, after=0)
    foreign.fails("coach.send", "not_found", workitemId=wid, text="hello from t2")
    foreign.fails("monitor.stop", "not_found", workitemId=wid)
    assert foreign.ok("workitems.list", agentId="agent-1")["workitems"] == []
    foreign.fails("agent.watch", "forbidden", agentId="agent-3")
    assert snapshot() == before
    token = w.token("sup-1", "supervisor", tid="t2")
    assert w.rest("GET", f"/workitems/{wid}/timeline", token)[0] == 404
    assert w.rest("GET", f"/workitems/{wid}/export", token)[0] == 404
    assert w.rest("GET", "/agents/agent-1/workitems", token) == (200, {"workitems": []})


def test_an_agent_of_another_tenant_cannot_touch_the_workitem(w: World) -> None:
    foreign = w.connect("agent-1", "agent", tid="t2")  # same user id as wi-1's agent, tenant t2
    before = snapshot()
    foreign.fails("message.send", "not_found", workitemId="wi-1", text="hi")
    foreign.fails("workitem.end", "not_found", workitemId="wi-1")
    foreign.fails("workitem.transfer", "not_found", workitemId="wi-1", toAgentId="agent-2")
    foreign.fails("timeline.get", "not_found", workitemId="wi-1", after=0)
    assert snapshot() == before


def test_an_admin_of_another_tenant_cannot_read_the_workitem(w: World) -> None:
    token = w.token("admin-1", "admin", tid="t2")
    assert w.rest("GET", "/workitems/wi-1/export", token)[0] == 404
    assert w.rest("GET", "/workitems/wi-1/timeline", token)[0] == 404


# --- permission before state ----------------------------------------------------------------------------


@pytest.mark.parametrize("coaching", [False, True], ids=["idle", "coached"])
def test_a_supervisor_of_another_team_is_forbidden_whatever_the_state(w: World, coaching: bool) -> None:
    wid = fresh(w)
    if coaching:
        w.connect("sup-1", "supervisor").ok("monitor.start", workitemId=wid)
    outsider = w.connect("sup-3", "supervisor")
    before = snapshot()
    outsider.fails("monitor.start", "forbidden", workitemId=wid)
    outsider.fails("monitor.stop", "forbidden", workitemId=wid)
    outsider.fails("coach.send", "forbidden", workitemId=wid, text="psst")
    outsider.fails("timeline.get", "forbidden", workitemId=wid, after=0)
    outsider.fails("workitems.list", "forbidden", agentId="agent-1")
    outsider.fails("agent.watch", "forbidden", agentId="agent-1")
    assert snapshot() == before
    token = w.token("sup-3", "supervisor")
    assert w.rest("GET", f"/workitems/{wid}/export", token)[0] == 403
    assert w.rest("GET", "/agents/agent-1/workitems", token)[0] == 403


@pytest.mark.parametrize("coaching", [False, True], ids=["idle", "coached"])
def test_an_agent_cannot_act_on_another_agents_workitem(w: World, coaching: bool) -> None:
    wid = fresh(w)
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId=wid)
    tip = sup.ok("coach.send", workitemId=wid, text="tip")["entry"]["messageId"]
    if not coaching:
        sup.ok("monitor.stop", workitemId=wid)
    other = w.connect("agent-2", "agent")
    before = snapshot()
    for action, fields in [
        ("message.send", {"text": "hi"}),
        ("coach.send", {"text": "hi"}),
        ("coach.react", {"messageId": tip, "reaction": "thumbs_up"}),
        ("coach.react", {"messageId": "msg-none", "reaction": None}),
        ("coach.forward", {"messageId": tip}),
        ("coaching.end", {}),
        ("workitem.end", {}),
        ("workitem.transfer", {"toAgentId": "agent-2"}),
        ("workitem.transfer", {"toAgentId": "agent-1"}),
        ("consult.start", {"userId": "sup-1"}),
        ("monitor.start", {}),
        ("monitor.stop", {}),
        ("timeline.get", {"after": 0}),
    ]:
        other.fails(action, "forbidden", workitemId=wid, **fields)
    other.fails("workitems.list", "forbidden", agentId="agent-1")
    assert snapshot() == before
    assert w.rest("GET", f"/workitems/{wid}/timeline", w.token("agent-2", "agent"))[0] == 403


def test_an_agent_transferring_another_agents_workitem_to_an_unknown_agent_is_forbidden(w: World) -> None:
    """BUG: CoachingService.transfer looks the target agent up before checking the caller is the
    workitem's agent, so a stranger gets ``not_found`` (and learns which user ids exist) instead of
    ``forbidden``. The owner transferring to an unknown agent still gets ``not_found``."""
    other = w.connect("agent-2", "agent")
    before = snapshot()
    other.fails("workitem.transfer", "forbidden", workitemId="wi-1", toAgentId="ghost")
    assert snapshot() == before
    w.connect("agent-1", "agent").fails("workitem.transfer", "not_found", workitemId="wi-1", toAgentId="ghost")


def test_a_customer_is_bound_to_their_workitem(w: World) -> None:
    own, other = fresh(w), fresh(w)
    customer = w.connect(f"cust-{own}", "customer", wid=own)
    before = snapshot()
    customer.fails("message.send", "forbidden", workitemId=other, text="hi")
    customer.fails("timeline.get", "forbidden", workitemId=other, after=0)
    customer.fails("monitor.start", "forbidden", workitemId=own)
    customer.fails("coach.send", "forbidden", workitemId=own, text="hi")
    customer.fails("workitems.list", "forbidden", agentId="agent-1")
    assert snapshot() == before
    token = w.token(f"cust-{own}", "customer", wid=own)
    assert w.rest("GET", f"/workitems/{other}/timeline", token)[0] == 403
    assert w.rest("GET", f"/workitems/{own}/timeline", token)[0] == 200
    assert w.rest("GET", "/me/settings", token)[0] == 403


# --- REST authentication and admin routes ----------------------------------------------------------

ADMIN_ROUTES: list[tuple[str, str, Any]] = [
    ("PUT", "/admin/users/agent-9", {"name": "Nine", "role": "agent"}),
    ("PUT", "/admin/teams/team-9", {"name": "Nine", "supervisors": ["sup-1"], "agents": ["agent-1"]}),
    ("PUT", "/admin/templates/tp-9", {"text": "Help!", "enabled": True}),
    ("DELETE", "/admin/templates/tp-9", None),
    ("GET", "/admin/templates", None),
    ("PUT", "/admin/policy", {"recordCoaching": True, "escalationSeconds": 30, "retentionDays": 7}),
    ("GET", "/admin/policy", None),
    ("PUT", "/admin/webhook-secret", {"secret": "s" * 32}),
]
ALL_ROUTES = [
    *ADMIN_ROUTES,
    ("GET", "/me/settings", None),
    ("PUT", "/me/settings", {"agentMessageNotification": False}),
    ("GET", "/agents/agent-1/workitems", None),
    ("GET", "/workitems/wi-1/timeline", None),
    ("GET", "/workitems/wi-1/export", None),
]


def _error(status: int, body: Any, code: str) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert body["error"]["code"] == code and isinstance(body["error"]["message"], str), (status, body)


def test_rest_without_a_valid_token_is_401(w: World) -> None:
    before = snapshot()
    headers_tried = [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic YWRtaW46YWRtaW4=",
        "Bearer not-a-jwt",
        f"Bearer {alg_none(role='admin', sub='admin-1')}",
        f"Bearer {signed(exp=NOW - 3600, role='admin')}",
        f"Token {w.token('admin-1', 'admin')}",
    ]
    for (method, path, body), header in itertools.product(ALL_ROUTES, headers_tried):
        headers = {"Content-Type": "application/json"}
        if header is not None:
            headers["Authorization"] = header
        response = getattr(w.http, method.lower())(path, headers=headers, body=json.dumps(body) if body is not None else None)
        assert response.status_code == 401, (method, path, header, response.status_code, response.body)
        _error(401, json.loads(response.body), "unauthorized")
    assert snapshot() == before


def test_admin_routes_are_403_for_everyone_else(w: World) -> None:
    before = snapshot()
    for (method, path, body), role in itertools.product(ADMIN_ROUTES, ["agent", "supervisor", "customer"]):
        token = w.token(f"{role}-1", role, wid="wi-1" if role == "customer" else None)
        status, payload = w.rest(method, path, token, body)
        assert status == 403, (method, path, role, status, payload)
        _error(status, payload, "forbidden")
    assert snapshot() == before


def test_health_needs_no_token(w: World) -> None:
    assert w.rest("GET", "/health") == (200, {"status": "ok"})


def test_admin_writes_stay_in_their_tenant(w: World) -> None:
    wid = fresh(w)
    w.admin("PUT", "/admin/teams/team-1", {"name": "t2 team", "supervisors": ["sup-2"], "agents": ["agent-2"]}, tid="t2")
    try:
        w.connect("sup-1", "supervisor").ok("monitor.start", workitemId=wid)  # t1's team-1 is untouched
    finally:
        w.team(tid="t2")  # as the module set it up
