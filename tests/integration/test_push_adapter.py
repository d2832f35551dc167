"""ApiGatewayPusher against a real boto3 ``apigatewaymanagementapi`` client, answers stubbed by botocore.

No network: the Stubber (or a ``before-call`` hook, for answers that depend on the connection id
when posts run in parallel) answers every PostToConnection.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from chalicelib.adapters.push import ApiGatewayPusher
from chalicelib.adapters.sdk_budget import PUSH
from tests.support import emf

pytestmark = pytest.mark.integration

ENDPOINT = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
REGION = "eu-west-1"


def _client() -> Any:
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def push_logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> pytest.LogCaptureFixture:
    """The product's log records (once app.py is imported, ``chalicelib`` logs stop at their own handler)."""
    monkeypatch.setattr(logging.getLogger("chalicelib"), "propagate", True)
    return caplog


def test_post_delivers_the_frame() -> None:
    client = _client()
    pusher = ApiGatewayPusher(ENDPOINT, REGION, client=client)
    with Stubber(client) as stub:
        stub.add_response("post_to_connection", {}, {"ConnectionId": "abc=", "Data": b'{"type":"event"}'})
        assert pusher.post("abc=", b'{"type":"event"}') is True
        stub.add_response("post_to_connection", {}, {"ConnectionId": "abc=", "Data": b"x"})
        assert pusher.post_many([("abc=", b"x")]) == []
        stub.assert_no_pending_responses()


def test_gone_connections_are_reported_gone() -> None:
    client = _client()
    pusher = ApiGatewayPusher(ENDPOINT, REGION, client=client)
    with Stubber(client) as stub:
        stub.add_client_error(
            "post_to_connection",
            service_error_code="GoneException",
            http_status_code=410,
            expected_params={"ConnectionId": "old=", "Data": b"x"},
        )
        assert pusher.post("old=", b"x") is False
        stub.add_client_error("post_to_connection", service_error_code="GoneException", http_status_code=410)
        assert pusher.post_many([("old=", b"x")]) == ["old="]
        # A bare 410, whatever the error code says, is gone too.
        stub.add_client_error("post_to_connection", service_error_code="Unknown", http_status_code=410)
        assert pusher.post_many([("old=", b"x")]) == ["old="]
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status"), [("LimitExceededException", 429), ("ForbiddenException", 403), ("InternalServerError", 500)]
)
def test_other_failures_are_logged_not_raised_and_not_gone(push_logs: pytest.LogCaptureFixture, code: str, status: int) -> None:
    client = _client()
    pusher = ApiGatewayPusher(ENDPOINT, REGION, client=client)
    with Stubber(client) as stub:
        stub.add_client_error("post_to_connection", service_error_code=code, service_message="slow down", http_status_code=status)
        assert pusher.post_many([("busy=", b"x")]) == []
        stub.assert_no_pending_responses()
        # post() alone raises: only post_many decides that one failure must not stop the others.
        stub.add_client_error("post_to_connection", service_error_code=code, http_status_code=status)
        with pytest.raises(ClientError):
            pusher.post("busy=", b"x")
    warnings = [r for r in push_logs.records if r.name == "chalicelib.adapters.push" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "busy=" in warnings[0].getMessage() and code in warnings[0].getMessage()


def test_posts_are_counted_sent_gone_or_failed() -> None:
    """The Pushes, GoneConnections and PushFailures metrics (docs/operations.md) count what each post became."""
    client = _client()
    outcomes: dict[str, tuple[int, str | None]] = {"gone=": (410, "GoneException"), "busy=": (429, "LimitExceededException")}
    ids = ["ok-1=", "gone=", "busy=", "ok-2="]
    client.meta.events.register("before-call.apigatewaymanagementapi.PostToConnection", _Answers(len(ids), outcomes))
    pusher = ApiGatewayPusher(ENDPOINT, REGION, client=client, max_workers=8)
    with emf.capture() as captured:
        assert pusher.post_many([(cid, b"x") for cid in ids]) == ["gone="]
        assert (captured.total("Pushes"), captured.total("GoneConnections"), captured.total("PushFailures")) == (2, 1, 1)


class _Answers:
    """A before-call hook answering PostToConnection per connection id, recording what was posted.

    All posts wait at a barrier, so they must be in flight at the same time: a fan-out that posted
    one after another would time out there and fail the test.
    """

    def __init__(self, parties: int, outcomes: dict[str, tuple[int, str | None]]) -> None:
        self.barrier = threading.Barrier(parties, timeout=10)
        self.outcomes = outcomes
        self.posted: dict[str, bytes] = {}
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        connection_id = urllib.parse.unquote(params["url_path"].rsplit("/", 1)[-1])
        with self.lock:
            self.posted[connection_id] = params["body"]
            self.threads.add(threading.current_thread().name)
        self.barrier.wait()
        status, code = self.outcomes.get(connection_id, (200, None))
        parsed: dict[str, Any] = {"ResponseMetadata": {"HTTPStatusCode": status}}
        if code:
            parsed["Error"] = {"Code": code, "Message": "stubbed"}
        return AWSResponse(f"{ENDPOINT}/@connections/{connection_id}", status, HTTPHeaders(), None), parsed


def test_post_many_fans_out_in_parallel_and_reports_only_the_gone(push_logs: pytest.LogCaptureFixture) -> None:
    client = _client()
    outcomes: dict[str, tuple[int, str | None]] = {
        "gone-1=": (410, "GoneException"),
        "busy=": (429, "LimitExceededException"),
        "gone-2=": (410, "GoneException"),
    }
    ids = ["ok-1=", "gone-1=", "busy=", "ok-2=", "gone-2=", "ok/3="]
    answers = _Answers(len(ids), outcomes)
    client.meta.events.register("before-call.apigatewaymanagementapi.PostToConnection", answers)
    pusher = ApiGatewayPusher(ENDPOINT, REGION, client=client, max_workers=8)

    gone = pusher.post_many([(cid, f"frame for {cid}".encode()) for cid in ids])

    assert sorted(gone) == ["gone-1=", "gone-2="]
    assert answers.posted == {cid: f"frame for {cid}".encode() for cid in ids}
    assert len(answers.threads) == len(ids) and all(t.startswith("push") for t in answers.threads)
    assert [r.getMessage() for r in push_logs.records if r.levelno == logging.WARNING] == [
        "push to busy= failed: LimitExceededException: stubbed"
    ]
    # The pool is kept for the next fan-out (a warm Lambda reuses it).
    answers.barrier = threading.Barrier(2, timeout=10)
    assert pusher.post_many([("ok-1=", b"again"), ("gone-2=", b"again")]) == ["gone-2="]


def test_one_connections_frames_go_out_in_order_while_connections_run_in_parallel() -> None:
    """A change can put several frames on one connection (two entries, or an entry and a list
    update); they must arrive in the order given, so they are posted one after another."""
    client = _client()
    posted: list[tuple[str, bytes, str]] = []
    lock = threading.Lock()
    both_started = threading.Barrier(2, timeout=10)  # the two connections are served at the same time
    first_of: set[str] = set()

    def answer(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        connection_id = urllib.parse.unquote(params["url_path"].rsplit("/", 1)[-1])
        with lock:
            is_first = connection_id not in first_of
            first_of.add(connection_id)
        if is_first:
            both_started.wait()
        with lock:
            posted.append((connection_id, params["body"], threading.current_thread().name))
        return AWSResponse(f"{ENDPOINT}/@connections/{connection_id}", 200, HTTPHeaders(), None), {
            "ResponseMetadata": {"HTTPStatusCode": 200}
        }

    client.meta.events.register("before-call.apigatewaymanagementapi.PostToConnection", answer)
    pusher = ApiGatewayPusher(ENDPOINT, REGION, client=client, max_workers=8)
    frames = [(cid, f"{cid} seq {n}".encode()) for n in range(1, 6) for cid in ("a=", "b=")]

    assert pusher.post_many(frames) == []

    for cid in ("a=", "b="):
        mine = [(body, thread) for c, body, thread in posted if c == cid]
        assert [body for body, _ in mine] == [f"{cid} seq {n}".encode() for n in range(1, 6)]
        assert len({thread for _, thread in mine}) == 1  # one worker per connection, in order


def test_a_gone_connection_is_not_posted_to_again_in_the_same_fan_out() -> None:
    client = _client()
    pusher = ApiGatewayPusher(ENDPOINT, REGION, client=client)
    with Stubber(client) as stub:
        stub.add_client_error(
            "post_to_connection",
            service_error_code="GoneException",
            http_status_code=410,
            expected_params={"ConnectionId": "old=", "Data": b"1"},
        )
        assert pusher.post_many([("old=", b"1"), ("old=", b"2")]) == ["old="]
        stub.assert_no_pending_responses()


def test_the_client_is_created_lazily_and_only_once() -> None:
    pusher = ApiGatewayPusher(ENDPOINT, REGION)
    assert pusher._client is None  # constructing the pusher makes no client (cold start stays lean)
    assert pusher.post_many([]) == []
    assert pusher._client is None
    client = pusher.client
    assert client is pusher.client
    assert client.meta.endpoint_url == ENDPOINT
    assert client.meta.region_name == REGION
    assert client.meta.service_model.service_name == "apigatewaymanagementapi"
    config: Any = client.meta.config  # botocore-stubs' Config declares no attributes
    assert (config.connect_timeout, config.read_timeout) == (PUSH.connect, PUSH.read)
    assert config.retries == {"mode": "standard", "total_max_attempts": PUSH.attempts}

    with Stubber(client) as stub:
        stub.add_response("post_to_connection", {}, {"ConnectionId": "abc=", "Data": b"hi"})
        assert pusher.post_many([("abc=", b"hi")]) == []
        stub.assert_no_pending_responses()


def test_without_an_endpoint_pushes_fail_loudly_in_the_log(push_logs: pytest.LogCaptureFixture) -> None:
    pusher = ApiGatewayPusher("", REGION)
    with pytest.raises(RuntimeError, match="no WebSocket management endpoint"):
        pusher.post("abc=", b"x")
    assert pusher.post_many([("abc=", b"x")]) == []  # never reported gone: the connection may be fine
    assert any("push to abc= failed: RuntimeError" in r.getMessage() for r in push_logs.records)
