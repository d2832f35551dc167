"""Structured logs through app.py's handlers (docs/logs.md): each line names its invocation and its caller,
nothing carries over to the next invocation, and no token or secret is ever written."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import logs
from tests.support.receiver import receiver
from tests.support.world import JWT_SECRET, WEBHOOK_SECRET, World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).


class RawText(logging.Handler):
    """Everything a record holds before the JSON formatter (and its redaction) sees it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.parts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.parts.append(logging.Formatter().format(record) + repr(vars(record)))


class Lines:
    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.json = logging.StreamHandler(self.stream)
        self.json.setFormatter(logs.JsonFormatter())
        self.raw = RawText()

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def first(self, prefix: str) -> dict[str, Any]:
        found = [line for line in self.all() if line["message"].startswith(prefix)]
        assert found, [line["message"] for line in self.all()]
        return found[0]

    def text(self) -> str:
        return self.stream.getvalue() + "\n".join(self.raw.parts)


@pytest.fixture
def lines() -> Iterator[Lines]:
    """The product's lines at DEBUG, as written (JSON) and as logged (raw records)."""
    import app  # noqa: F401 - configures the product's logger, as every Lambda cold start does

    logger = logging.getLogger("chalicelib")
    level = logger.level
    captured = Lines()
    logger.addHandler(captured.json)
    logger.addHandler(captured.raw)
    logger.setLevel(logging.DEBUG)
    yield captured
    logger.setLevel(level)
    logger.removeHandler(captured.json)
    logger.removeHandler(captured.raw)


def invoke(name: str, event: dict[str, Any]) -> Any:
    """Run one of app.py's handlers as Lambda does (a fresh Lambda context, Chalice's middleware)."""
    from chalice.test import Client

    from app import app

    return Client(app).lambda_.invoke(name, event).payload


def broken(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the store exploded")


def test_a_frame_logs_its_invocation_its_caller_and_its_action_and_the_next_one_only_its_own(
    world: World, lines: Lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.team()
    world.assign("wi-1")
    sup = world.connect("sup-1", "supervisor")
    other = world.connect("sup-9", "supervisor", tid="t2")
    monkeypatch.setattr(world.services.coaching, "timeline", broken)
    monkeypatch.setattr(world.services.assistance, "templates", broken)

    event = sup.event("$default", json.dumps({"action": "timeline.get", "requestId": "r-1", "workitemId": "wi-1", "after": 0}))
    assert invoke("ws_message", event) == {"statusCode": 200}
    invoke("ws_message", other.event("$default", json.dumps({"action": "assist.templates", "requestId": "r-2"})))

    first = lines.first("action timeline.get (")
    assert first["level"] == "ERROR" and first["exception_name"] == "RuntimeError"
    assert first["function_name"] == "ws_message" and first["function_request_id"]
    assert first["correlation_id"] == event["requestContext"]["requestId"]
    assert (first["tenant_id"], first["user_id"], first["connection_id"]) == ("t1", "sup-1", sup.connection_id)
    assert (first["action"], first["workitem_id"]) == ("timeline.get", "wi-1")
    second = lines.first("action assist.templates (")
    assert (second["tenant_id"], second["user_id"], second["connection_id"]) == ("t2", "sup-9", other.connection_id)
    assert second["action"] == "assist.templates" and "workitem_id" not in second
    assert second["function_request_id"] != first["function_request_id"]
    assert logs.current() == {}


def test_a_rest_call_logs_the_caller_its_token_named(world: World, lines: Lines, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(world.services.directory, "get_policy", broken)
    status, body = world.rest("GET", "/admin/policy", world.token("admin-1", "admin", "t7"))
    assert status == 500 and body["error"]["code"] == "internal"
    line = lines.first("REST request ")
    assert (line["tenant_id"], line["user_id"]) == ("t7", "admin-1")
    assert line["function_request_id"] and "connection_id" not in line and "action" not in line
    assert logs.current() == {}


def test_the_inbound_webhook_logs_the_tenant_its_body_names(world: World, lines: Lines, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(world.services.webhooks, "handle", broken)
    status, _ = world.webhook("workitem.ended", {"workitemId": "wi-1", "endedBy": "system"}, tid="t3")
    assert status == 500
    line = lines.first("REST request ")
    assert line["tenant_id"] == "t3" and "user_id" not in line


def test_a_pure_lambda_function_has_its_own_context_and_no_earlier_caller(world: World, lines: Lines) -> None:
    garbled = {
        "eventName": "INSERT",
        "dynamodb": {"SequenceNumber": "garbled-1", "Keys": {"sk": {"S": "W"}}, "NewImage": {"fo": {"S": "?"}}},
    }
    invoke("ws_message", world.connect("sup-1", "supervisor").event("$default", "not json"))
    result = invoke("fanout", {"Records": [garbled]})
    assert result["batchItemFailures"] == []
    line = lines.first("skipping unreadable stream record")
    assert line["function_name"] == "fanout" and line["exception"]
    assert not {"tenant_id", "user_id", "connection_id", "action"} & set(line)


@pytest.mark.local_webhooks
def test_no_token_or_secret_is_ever_logged(world: World, lines: Lines) -> None:
    """A scenario that sets and uses every kind of secret, with refusals that log, at DEBUG."""
    own_secret = "tenant-own-webhook-secret-5f2c9a"
    world.team()
    world.admin("PUT", "/admin/webhook-secret", {"secret": own_secret})
    assert world.webhook("workitem.assigned", _assigned("wi-1"), secret=own_secret)[0] == 200
    assert world.webhook("workitem.assigned", _assigned("wi-2"), secret=WEBHOOK_SECRET)[0] == 401  # the old one
    tokens = [
        world.token("sup-1", "supervisor"),
        world.token("sup-1", "supervisor", ttl_seconds=-60),  # expired
        world.token("admin-1", "admin"),
        world.token("mallory", "admin", tid="t1")[:-4] + "AAAA",  # a bad signature
    ]
    assert world.connect_token(tokens[0])[0] == 200
    assert world.connect_token(tokens[1])[0] == 401
    assert world.connect_token(tokens[3])[0] == 401
    assert world.rest("GET", "/admin/policy", tokens[1])[0] == 401
    assert world.rest("GET", "/admin/policy", tokens[3])[0] == 401
    with receiver() as hook:
        hook.script.extend([500])
        status, created = world.rest(
            "PUT", "/admin/webhook-subscriptions/crm", tokens[2], {"url": hook.url, "events": ["timeline.entry"], "enabled": True}
        )
        assert status == 201
        rotated = world.admin("POST", "/admin/webhook-subscriptions/crm/rotate-secret")
        sup = world.connect("sup-1", "supervisor")
        sup.ok("monitor.start", workitemId="wi-1")
        sup.ok("coach.send", workitemId="wi-1", text="Offer the refund")
        world.deliver()
        world.deliver(after_seconds=60)
        assert hook.requests
    signing = [created["secret"], rotated["secret"]]
    assert all(s.startswith("whsec_") for s in signing)

    written = lines.text()
    assert len(lines.all()) >= 3 and "connection refused" in written  # the refusals above were logged
    for secret in [own_secret, WEBHOOK_SECRET, JWT_SECRET, *tokens, *signing, *(s.removeprefix("whsec_") for s in signing)]:
        assert secret not in written
    assert "whsec_" not in written


def _assigned(workitem_id: str) -> dict[str, Any]:
    return {"workitemId": workitem_id, "channel": "chat", "agentId": "agent-1", "customer": {"id": "c1", "name": "Casey"}}
