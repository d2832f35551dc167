"""chalicelib.logs: one JSON object per line with the Lambda context and the call's keys, nothing leaking
from one invocation into the next, and no token or signing secret in any line."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib import logs

pytestmark = pytest.mark.unit


@dataclass
class FakeLambdaContext:
    aws_request_id: str = "5e4c7c1a-0000-4000-8000-000000000001"
    function_name: str = "supervisor-coaching-prod-ws_message"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:supervisor-coaching-prod-ws_message"


class Capture:
    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.logger = logging.getLogger("chalicelib.tests.logs")
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(logs.JsonFormatter())
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False

    def lines(self) -> list[dict[str, Any]]:
        text = self.stream.getvalue()
        assert text.endswith("\n")
        return [json.loads(line) for line in text.splitlines()]

    def close(self) -> None:
        self.logger.removeHandler(self.handler)


@pytest.fixture
def capture() -> Iterator[Capture]:
    c = Capture()
    yield c
    c.close()


def test_a_line_is_one_json_object_with_the_powertools_base_keys(capture: Capture) -> None:
    capture.logger.info("hello %s", "world")
    line = capture.lines()[0]
    assert line["message"] == "hello world"
    assert line["level"] == "INFO"
    assert line["service"] == logs.SERVICE
    assert line["logger"] == "chalicelib.tests.logs"
    assert re.fullmatch(r"test_logs\.test_a_line_is_one_json_object_with_the_powertools_base_keys:\d+", line["location"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["timestamp"])
    assert "tenant_id" not in line and "function_request_id" not in line


def test_the_invocation_scope_carries_the_lambda_context_and_the_cold_start(
    capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "_cold_start", True)
    context = FakeLambdaContext()
    with logs.invocation(context, connection_id="abc="):
        capture.logger.warning("first")
    with logs.invocation(FakeLambdaContext(aws_request_id="second-id")):
        capture.logger.warning("second")
    first, second = capture.lines()
    assert first["function_request_id"] == context.aws_request_id
    assert first["function_name"] == context.function_name
    assert first["function_memory_size"] == 512
    assert first["function_arn"] == context.invoked_function_arn
    assert first["connection_id"] == "abc="
    assert first["cold_start"] is True
    assert second["function_request_id"] == "second-id"
    assert second["cold_start"] is False
    assert "connection_id" not in second


def test_bound_keys_end_with_the_invocation_even_when_it_raises(capture: Capture) -> None:
    with pytest.raises(RuntimeError), logs.invocation(FakeLambdaContext()):
        logs.bind(tenant_id="t1", user_id="sup-1", action="coach.send", workitem_id="wi-1", connection_id=None)
        capture.logger.info("inside")
        raise RuntimeError("boom")
    capture.logger.info("after")
    inside, after = capture.lines()
    assert {k: inside[k] for k in logs.CALL_KEYS if k in inside} == {
        "tenant_id": "t1",
        "user_id": "sup-1",
        "action": "coach.send",
        "workitem_id": "wi-1",
    }
    assert logs.current() == {}
    assert not set(after) & {*logs.CALL_KEYS, "function_request_id", "cold_start"}


def test_bind_outside_an_invocation_does_nothing(capture: Capture) -> None:
    logs.bind(tenant_id="t1")
    capture.logger.info("outside")
    assert "tenant_id" not in capture.lines()[0]
    assert logs.current() == {}


def test_a_nested_scope_adds_to_the_outer_one_and_restores_it(capture: Capture) -> None:
    with logs.invocation(FakeLambdaContext(), tenant_id="t1"):
        with logs.invocation(action="message.send"):
            logs.bind(workitem_id="wi-9")
            capture.logger.info("inner")
        capture.logger.info("outer")
    inner, outer = capture.lines()
    assert (inner["tenant_id"], inner["action"], inner["workitem_id"]) == ("t1", "message.send", "wi-9")
    assert inner["function_request_id"] == outer["function_request_id"]
    assert outer["tenant_id"] == "t1" and "action" not in outer and "workitem_id" not in outer


def test_each_thread_starts_without_the_invocation_of_another(capture: Capture) -> None:
    seen: list[dict[str, Any]] = []
    with logs.invocation(FakeLambdaContext(), tenant_id="t1"):
        worker = threading.Thread(target=lambda: seen.append(logs.current()))
        worker.start()
        worker.join()
    assert seen == [{}]


def test_extra_fields_are_kept_and_anything_unserialisable_is_written_as_text(capture: Capture) -> None:
    capture.logger.info("delivered", extra={"subscription_id": "sub-1", "status": 204, "took": {1, 2}.__class__})
    line = capture.lines()[0]
    assert line["subscription_id"] == "sub-1" and line["status"] == 204
    assert line["took"] == "<class 'set'>"


def test_an_exception_is_one_field_of_one_line(capture: Capture) -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        capture.logger.exception("failed")
    text = capture.stream.getvalue()
    assert text.count("\n") == 1
    line = json.loads(text)
    assert line["level"] == "ERROR"
    assert line["exception_name"] == "ValueError"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert line["exception"].endswith("ValueError: bad\nvalue")


def test_the_xray_trace_id_is_the_root_of_the_invocations_trace_header(capture: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    capture.logger.info("traced")
    monkeypatch.delenv("_X_AMZN_TRACE_ID")
    capture.logger.info("untraced")
    traced, untraced = capture.lines()
    assert traced["xray_trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert "xray_trace_id" not in untraced


def test_tokens_and_signing_secrets_are_redacted_wherever_they_appear(capture: Capture) -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    secret = "whsec_" + "Q" * 40
    capture.logger.warning("refused %s", jwt, extra={"detail": f"key {secret}"})
    try:
        raise ValueError(f"bad token {jwt}")
    except ValueError:
        capture.logger.exception("with %s", secret)
    text = capture.stream.getvalue()
    assert jwt not in text and secret not in text and "whsec_" not in text
    assert text.count(logs.REDACTED) == 4  # the two messages, the extra field, the exception's text


def test_gateway_fields_name_the_request_the_connection_and_the_authorized_caller() -> None:
    ctx = {
        "requestId": "req-1",
        "connectionId": "abc=",
        "authorizer": {"tenantId": "t1", "userId": "sup-1", "role": "supervisor"},
    }
    assert logs.gateway_fields(ctx) == {"correlation_id": "req-1", "connection_id": "abc=", "tenant_id": "t1", "user_id": "sup-1"}
    assert logs.gateway_fields(None) == {"correlation_id": None, "connection_id": None, "tenant_id": None, "user_id": None}
