"""The local API Gateway (devstack.gateway) against a toy Chalice app: events, limits, @connections, REST.

The toy app answers through the gateway's own ``@connections`` endpoint with boto3, exactly as the
product does in Lambda, so these tests also prove boto3's ``apigatewaymanagementapi`` client works
against the gateway (paths, id encoding, error codes).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from chalice.app import Chalice, Response
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from devstack.apigw.frames import FrameGuard as _FrameGuard
from devstack.gateway import Gateway, GatewayThread

pytestmark = pytest.mark.integration

# -- the toy app -------------------------------------------------------------------------------------

toy = Chalice(app_name="toy-gateway")
toy.experimental_feature_flags.update(["WEBSOCKETS"])

_lock = threading.Lock()
CONNECTS: list[dict[str, Any]] = []
MESSAGES: list[dict[str, Any]] = []
DISCONNECTS: list[dict[str, Any]] = []
AUTHORIZER_EVENTS: list[dict[str, Any]] = []
_management: dict[str, Any] = {}
_release = threading.Event()


def _client() -> Any:
    return _management["client"]


def _post(connection_id: str, payload: dict[str, Any]) -> None:
    _client().post_to_connection(ConnectionId=connection_id, Data=json.dumps(payload).encode())


@toy.lambda_function(name="ws_authorizer")
def ws_authorizer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with _lock:
        AUTHORIZER_EVENTS.append(event)
    token = (event.get("queryStringParameters") or {}).get("token")
    if token == "crash":
        raise RuntimeError("boom")
    if token not in ("good", "deny", "reject-connect"):
        raise Exception("Unauthorized")  # the exact exception API Gateway expects
    effect = "Deny" if token == "deny" else "Allow"
    return {
        "principalId": "user-1",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}],
        },
        "context": {"role": "agent", "tid": "demo", "count": 3, "flag": True, "token": token},
    }


@toy.on_ws_connect()
def ws_connect(event: Any) -> Any:
    raw = event.to_dict()
    with _lock:
        CONNECTS.append(raw)
    if raw["requestContext"]["authorizer"].get("token") == "reject-connect":
        return Response(body=json.dumps({"message": "nope"}), status_code=429)
    return None


@toy.on_ws_message()
def ws_message(event: Any) -> Any:
    raw = event.to_dict()
    with _lock:
        MESSAGES.append(raw)
    me = event.connection_id
    if raw["isBase64Encoded"]:
        _post(me, {"binary": event.body})
        return None
    try:
        frame = json.loads(event.body)
    except ValueError:
        _post(me, {"size": len(event.body)})
        return None
    action = frame.get("action")
    if action == "echo":
        _post(me, {"echo": frame.get("text"), "connectionId": me})
    elif action == "slow":
        time.sleep(frame.get("seconds", 1.5))
        _post(me, {"slowDone": frame.get("tag")})
    elif action == "held":  # busy until the test releases it
        assert _release.wait(30), "never released"
        _post(me, {"slowDone": frame.get("tag")})
    elif action == "event":
        _post(me, {"event": raw})
    elif action == "post_to":
        try:
            _post(frame["target"], {"from": me})
            _post(me, {"posted": "ok"})
        except _client().exceptions.GoneException:
            _post(me, {"posted": "gone"})
    elif action == "info":
        info = _client().get_connection(ConnectionId=me)
        _post(me, {"info": {"sourceIp": info["Identity"]["SourceIp"], "connectedAt": str(info["ConnectedAt"])}})
    elif action == "kill":
        _client().delete_connection(ConnectionId=me)
    elif action == "crash":
        raise RuntimeError("handler exploded")
    return {"statusCode": 200, "body": "route response the gateway must ignore"}


@toy.on_ws_disconnect()
def ws_disconnect(event: Any) -> None:
    with _lock:
        DISCONNECTS.append(event.to_dict())


@toy.route("/hello")
def hello() -> dict[str, Any]:
    request = toy.current_request
    assert request is not None
    return {"hello": "world", "query": request.query_params}


@toy.route("/items/{item_id}", methods=["PUT"])
def put_item(item_id: str) -> Response:
    request = toy.current_request
    assert request is not None
    return Response(
        body={"id": item_id, "body": request.json_body},
        status_code=201,
        headers={"X-Item": item_id},
    )


@toy.route("/whoami/{n}")
def whoami(n: str) -> dict[str, Any]:
    time.sleep(0.05)  # overlap with the other requests: current_request must stay per thread
    request = toy.current_request
    assert request is not None and request.uri_params is not None
    return {"n": request.uri_params["n"], "param": n}


# -- fixtures ----------------------------------------------------------------------------------------

_counter = itertools.count()


def _tricky_id() -> str:
    """Connection ids with every character botocore percent-encodes in a path label."""
    return f"Ab+/{next(_counter)}x=="


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayThread]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = GatewayThread(Gateway(toy, executor_workers=16, connection_id_factory=_tricky_id)).start()
    _management["client"] = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=server.base_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=BotoConfig(retries={"max_attempts": 1}),
    )
    try:
        yield server
    finally:
        server.stop()


def _open(gateway: GatewayThread, token: str = "good", **kwargs: Any) -> ClientConnection:
    """A connection the test closes itself, or drops (``legacy=True``: websockets' explicit opt-in to
    ``connect()`` returning the connection rather than only serving as a context manager)."""
    return connect(f"{gateway.ws_url}?token={token}", open_timeout=5, compression=None, legacy=True, **kwargs)


def _recv(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return frame


def _send(ws: ClientConnection, **frame: Any) -> None:
    ws.send(json.dumps(frame))


def _connection_id(ws: ClientConnection) -> str:
    _send(ws, action="echo", text="who")
    return str(_recv(ws)["connectionId"])


def _wait_for(predicate: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def _sentinel_disconnect(gateway: GatewayThread) -> None:
    """A positive marker for "nothing more came": a connection opened and closed after the action under
    test, whose own $disconnect the test waits for; a $disconnect the action caused would have come first."""
    sentinel = _open(gateway)
    sentinel_id = _connection_id(sentinel)
    sentinel.close()
    _wait_for(lambda: _disconnects_of(sentinel_id))


def _disconnects_of(connection_id: str) -> list[dict[str, Any]]:
    with _lock:
        return [e for e in DISCONNECTS if e["requestContext"]["connectionId"] == connection_id]


def _http(
    gateway: GatewayThread, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(gateway.base_url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


# -- handshake ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("token", "status"), [("bad", 401), ("", 401), ("deny", 403), ("crash", 500)])
def test_authorizer_refusals_answer_http_status_without_upgrade(gateway: GatewayThread, token: str, status: int) -> None:
    with _lock:
        before = len(CONNECTS)
    with pytest.raises(InvalidStatus) as refused:
        _open(gateway, token=token)
    assert refused.value.response.status_code == status
    with _lock:
        assert len(CONNECTS) == before, "$connect must not run when the authorizer refuses"


def test_missing_token_is_401(gateway: GatewayThread) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(gateway.ws_url, open_timeout=5, legacy=True)
    assert refused.value.response.status_code == 401


def test_connect_handler_status_is_the_http_answer(gateway: GatewayThread) -> None:
    with pytest.raises(InvalidStatus) as refused:
        _open(gateway, token="reject-connect")
    assert refused.value.response.status_code == 429
    with _lock:
        rejected_id = CONNECTS[-1]["requestContext"]["connectionId"]
    _sentinel_disconnect(gateway)
    assert _disconnects_of(rejected_id) == [], "a refused connection never existed: no $disconnect"


def test_connect_passes_every_query_string_parameter(gateway: GatewayThread) -> None:
    """``?delivery=fast`` (fast delivery) reaches the authorizer and ``$connect`` as on API Gateway."""
    with _open(gateway, token="good&delivery=fast&delivery=fast") as ws:
        _send(ws, action="event")
        connection_id = _recv(ws)["event"]["requestContext"]["connectionId"]
    with _lock:
        auth_event = next(e for e in AUTHORIZER_EVENTS if e["requestContext"]["connectionId"] == connection_id)
        connect_event = next(e for e in CONNECTS if e["requestContext"]["connectionId"] == connection_id)
    for event in (auth_event, connect_event):
        assert event["queryStringParameters"] == {"token": "good", "delivery": "fast"}
        assert event["multiValueQueryStringParameters"] == {"token": ["good"], "delivery": ["fast", "fast"]}


def test_plain_get_on_ws_path_is_not_an_upgrade(gateway: GatewayThread) -> None:
    status, _, _ = _http(gateway, "GET", "/ws?token=good")
    assert status == 426


# -- events ------------------------------------------------------------------------------------------


def test_echo_through_connections_api(gateway: GatewayThread) -> None:
    with _open(gateway) as ws:
        _send(ws, action="echo", text="hi")
        frame = _recv(ws)
        assert frame["echo"] == "hi"
        assert "+" in frame["connectionId"] and "/" in frame["connectionId"] and "=" in frame["connectionId"]


def test_event_shapes_match_api_gateway(gateway: GatewayThread) -> None:
    with _open(gateway, token="good", additional_headers={"X-Test": "1"}) as ws:
        _send(ws, action="event")
        message_event = _recv(ws)["event"]
    connection_id = message_event["requestContext"]["connectionId"]
    with _lock:
        auth_event = next(e for e in AUTHORIZER_EVENTS if e["requestContext"]["connectionId"] == connection_id)
        connect_event = next(e for e in CONNECTS if e["requestContext"]["connectionId"] == connection_id)

    assert auth_event["type"] == "REQUEST"
    assert auth_event["methodArn"] == "arn:aws:execute-api:local:000000000000:local/local/$connect"
    assert auth_event["queryStringParameters"] == {"token": "good"}
    assert auth_event["headers"]["X-Test"] == "1"
    assert auth_event["requestContext"]["routeKey"] == "$connect"
    assert "authorizer" not in auth_event["requestContext"]

    expected_authorizer = {
        "role": "agent",
        "tid": "demo",
        "count": "3",
        "flag": "true",
        "token": "good",
        "principalId": "user-1",
    }
    ctx = connect_event["requestContext"]
    assert ctx["routeKey"] == "$connect" and ctx["eventType"] == "CONNECT"
    assert ctx["apiId"] == "local" and ctx["stage"] == "local"
    assert ctx["domainName"] == f"127.0.0.1:{gateway.port}"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert isinstance(ctx["connectedAt"], int) and isinstance(ctx["requestTimeEpoch"], int)
    assert ctx["authorizer"] == expected_authorizer
    assert connect_event["queryStringParameters"] == {"token": "good"}
    assert connect_event["multiValueHeaders"]["X-Test"] == ["1"]
    assert connect_event["isBase64Encoded"] is False

    mctx = message_event["requestContext"]
    assert mctx["routeKey"] == "$default" and mctx["eventType"] == "MESSAGE"
    assert mctx["messageId"] and mctx["requestId"] != ctx["requestId"]
    assert mctx["connectedAt"] == ctx["connectedAt"]
    assert mctx["authorizer"] == expected_authorizer
    assert json.loads(message_event["body"]) == {"action": "event"}
    assert message_event["isBase64Encoded"] is False

    _wait_for(lambda: _disconnects_of(connection_id))
    dctx = _disconnects_of(connection_id)[0]["requestContext"]
    assert dctx["routeKey"] == "$disconnect" and dctx["eventType"] == "DISCONNECT"
    assert dctx["authorizer"] == expected_authorizer
    assert dctx["disconnectStatusCode"] == 1000


def test_binary_frame_arrives_base64_encoded(gateway: GatewayThread) -> None:
    with _open(gateway) as ws:
        ws.send(b"\x00\x01\xff")
        assert _recv(ws) == {"binary": "AAH/"}


def test_each_socket_gets_a_new_connection_id(gateway: GatewayThread) -> None:
    with _open(gateway) as a, _open(gateway) as b:
        assert _connection_id(a) != _connection_id(b)


def test_disconnect_is_called_exactly_once(gateway: GatewayThread) -> None:
    ws = _open(gateway)
    connection_id = _connection_id(ws)
    ws.close()
    _wait_for(lambda: _disconnects_of(connection_id))
    _sentinel_disconnect(gateway)
    assert len(_disconnects_of(connection_id)) == 1


def test_abrupt_client_drop_still_disconnects_once(gateway: GatewayThread) -> None:
    ws = _open(gateway)
    connection_id = _connection_id(ws)
    ws.socket.close()  # no close frame
    _wait_for(lambda: _disconnects_of(connection_id))
    _sentinel_disconnect(gateway)
    assert len(_disconnects_of(connection_id)) == 1


def test_handler_exception_is_not_sent_to_the_client(gateway: GatewayThread) -> None:
    with _open(gateway) as ws:
        _send(ws, action="crash")
        time.sleep(0.2)
        _send(ws, action="echo", text="still here")
        assert _recv(ws)["echo"] == "still here", "the failure must not produce a frame"


def test_shutdown_closes_sockets_with_1001_and_disconnects_them() -> None:
    server = GatewayThread(Gateway(toy)).start()
    previous = _management.get("client")
    _management["client"] = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=server.base_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    try:
        ws = _open(server)
        connection_id = _connection_id(ws)
    finally:
        started = time.monotonic()
        server.stop()
        _management["client"] = previous
    assert time.monotonic() - started < 5
    _assert_closed_with(ws, 1001)
    disconnects = _disconnects_of(connection_id)
    assert len(disconnects) == 1
    assert disconnects[0]["requestContext"]["disconnectStatusCode"] == 1001


# -- concurrency -------------------------------------------------------------------------------------


# A handler that is still busy holds up nothing else: the other frame's answer arrives while it is still
# running (it finishes only when the test releases it, after that answer), so no clock is involved.


def test_slow_handler_does_not_block_another_socket(gateway: GatewayThread) -> None:
    _release.clear()
    with _open(gateway) as slow, _open(gateway) as fast:
        try:
            _send(slow, action="held", tag="a")
            _wait_for(lambda: any(m.get("body") and '"held"' in m["body"] for m in list(MESSAGES)))
            _send(fast, action="echo", text="quick")
            assert _recv(fast)["echo"] == "quick"
        finally:
            _release.set()
        assert _recv(slow)["slowDone"] == "a"


def test_slow_handler_does_not_block_the_same_sockets_next_frame(gateway: GatewayThread) -> None:
    _release.clear()
    with _open(gateway) as ws:
        try:
            _send(ws, action="held", tag="first")
            _send(ws, action="echo", text="second")
            assert _recv(ws)["echo"] == "second"
        finally:
            _release.set()
        assert _recv(ws)["slowDone"] == "first"


# -- limits ------------------------------------------------------------------------------------------


def _assert_closed_with(ws: ClientConnection, code: int) -> None:
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code


def test_message_over_128kb_closes_with_1009(gateway: GatewayThread) -> None:
    ws = _open(gateway, max_size=None)
    connection_id = _connection_id(ws)
    ws.send("x" * (128 * 1024 + 1))
    _assert_closed_with(ws, 1009)
    _wait_for(lambda: _disconnects_of(connection_id))
    assert _disconnects_of(connection_id)[0]["requestContext"]["disconnectStatusCode"] == 1009


def test_fragmented_message_over_128kb_closes_with_1009(gateway: GatewayThread) -> None:
    ws = _open(gateway)
    # The gateway may close before the last fragment is written: then send() itself sees the close.
    with contextlib.suppress(ConnectionClosed):
        ws.send(["y" * (32 * 1024)] * 4 + ["y"])
    _assert_closed_with(ws, 1009)


def test_fragmented_message_of_exactly_128kb_is_delivered(gateway: GatewayThread) -> None:
    with _open(gateway) as ws:
        ws.send(["z" * (32 * 1024)] * 4)
        assert _recv(ws) == {"size": 128 * 1024}


def test_single_frame_over_32kb_closes_with_1009(gateway: GatewayThread) -> None:
    ws = _open(gateway)
    ws.send("f" * (32 * 1024 + 1))
    _assert_closed_with(ws, 1009)


def test_frame_of_exactly_32kb_is_delivered(gateway: GatewayThread) -> None:
    with _open(gateway) as ws:
        ws.send("g" * (32 * 1024))
        assert _recv(ws) == {"size": 32 * 1024}


# -- @connections ------------------------------------------------------------------------------------


def test_post_to_a_gone_connection_raises_gone_exception(gateway: GatewayThread) -> None:
    client = _client()
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId="L0SM9cOFvHcCIhw=", Data=b"{}")

    gone = _open(gateway)
    gone_id = _connection_id(gone)
    gone.close()
    _wait_for(lambda: _disconnects_of(gone_id))
    with _open(gateway) as ws:
        _send(ws, action="post_to", target=gone_id)
        assert _recv(ws) == {"posted": "gone"}
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=gone_id, Data=b"{}")


def test_post_between_two_sockets(gateway: GatewayThread) -> None:
    with _open(gateway) as a, _open(gateway) as b:
        b_id = _connection_id(b)
        a_id = _connection_id(a)
        _send(a, action="post_to", target=b_id)
        assert _recv(b) == {"from": a_id}
        assert _recv(a) == {"posted": "ok"}


def test_get_connection(gateway: GatewayThread) -> None:
    with _open(gateway) as ws:
        _send(ws, action="info")
        info = _recv(ws)["info"]
        assert info["sourceIp"] == "127.0.0.1"
        assert info["connectedAt"]


def test_delete_connection_closes_the_socket(gateway: GatewayThread) -> None:
    ws = _open(gateway)
    connection_id = _connection_id(ws)
    _client().delete_connection(ConnectionId=connection_id)
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=5)
    _wait_for(lambda: _disconnects_of(connection_id))
    with pytest.raises(_client().exceptions.GoneException):
        _client().delete_connection(ConnectionId=connection_id)


def test_oversized_post_is_payload_too_large(gateway: GatewayThread) -> None:
    with _open(gateway) as ws:
        connection_id = _connection_id(ws)
        with pytest.raises(_client().exceptions.PayloadTooLargeException):
            _client().post_to_connection(ConnectionId=connection_id, Data=b"x" * (128 * 1024 + 1))


def test_management_accepts_stage_prefixed_and_encoded_paths(gateway: GatewayThread) -> None:
    with _open(gateway) as ws:
        connection_id = _connection_id(ws)
        encoded = urllib.parse.quote(connection_id, safe="")
        status, _, _ = _http(gateway, "POST", f"/%40connections/{encoded}", body=b'{"raw": 1}')
        assert status == 200
        assert _recv(ws) == {"raw": 1}
        status, _, _ = _http(gateway, "POST", f"/local/@connections/{encoded}", body=b'{"raw": 2}')
        assert status == 200
        assert _recv(ws) == {"raw": 2}
    status, headers, body = _http(gateway, "POST", "/@connections/nope", body=b"{}")
    assert (status, json.loads(body), headers["x-amzn-ErrorType"]) == (410, {"message": "Gone"}, "GoneException")


# -- REST --------------------------------------------------------------------------------------------


def test_rest_passthrough(gateway: GatewayThread) -> None:
    status, headers, body = _http(gateway, "GET", "/hello?name=ada")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"hello": "world", "query": {"name": "ada"}}


def test_rest_body_status_headers_and_decoded_path(gateway: GatewayThread) -> None:
    status, headers, body = _http(gateway, "PUT", "/items/a%20b", body=b'{"x": 1}', headers={"Content-Type": "application/json"})
    assert status == 201
    assert headers["X-Item"] == "a b"
    assert json.loads(body) == {"id": "a b", "body": {"x": 1}}


def test_rest_unknown_route_and_wrong_method(gateway: GatewayThread) -> None:
    """No route is 404 in the product's error shape (as the stack's gateway responses say on AWS), and the
    Authorization header is never echoed (chalice's local router would)."""
    status, _, body = _http(gateway, "GET", "/nope", headers={"Authorization": "Bearer secret-token-value"})
    assert (status, json.loads(body)) == (404, {"error": {"code": "not_found", "message": "no such route"}})
    assert b"secret-token-value" not in body
    status, _, _ = _http(gateway, "POST", "/hello", body=b"{}")
    assert status == 405


@pytest.mark.parametrize("path", ["/items/a%23b", "/items/a%2523b", "/items/a%2Fb", "/items/a%3Fb"])
def test_rest_an_encoded_hash_never_cuts_the_path(gateway: GatewayThread, path: str) -> None:
    """``%23`` decoded to ``#`` would make the local router read a fragment and route to ``/items/a``."""
    status, _, body = _http(gateway, "PUT", path, body=b"{}", headers={"Content-Type": "application/json"})
    assert status == 201
    assert json.loads(body)["id"] not in ("a", "a#b")
    assert "%" in json.loads(body)["id"]


def test_rest_current_request_is_per_thread(gateway: GatewayThread) -> None:
    results: dict[int, Any] = {}

    def call(n: int) -> None:
        results[n] = json.loads(_http(gateway, "GET", f"/whoami/{n}")[2])

    threads = [threading.Thread(target=call, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[n] == {"n": str(n), "param": str(n)} for n in range(12))


# -- frame guard, byte by byte -----------------------------------------------------------------------


def _client_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        header = bytes([first, 0x80 | n])
    elif n < 65536:
        header = bytes([first, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([first, 0x80 | 127]) + n.to_bytes(8, "big")
    return header + b"\x00\x00\x00\x00" + payload  # zero mask: payload unchanged


class _Recorder:
    def __init__(self) -> None:
        self.data = b""

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.data += data
        return False, b""

    def feed_eof(self) -> None:
        pass


@pytest.mark.parametrize("chunk", [1, 3, 7, 4096])
def test_frame_guard_finds_the_oversized_frame_across_chunk_boundaries(chunk: int) -> None:

    allowed = (
        _client_frame(0x1, b"a" * 10)
        + _client_frame(0x9, b"ping")  # control frames are never counted
        + _client_frame(0x1, b"b" * 200, fin=False)
        + _client_frame(0x0, b"c" * 1000)
        + _client_frame(0x2, b"d" * 2000)
    )
    stream = allowed + _client_frame(0x1, b"e" * 2001) + _client_frame(0x1, b"never")
    inner, violations = _Recorder(), list[int]()
    guard = _FrameGuard(inner, 2000, violations.append)
    results = [guard.feed_data(stream[i : i + chunk]) for i in range(0, len(stream), chunk)]
    assert violations == [2001]
    assert inner.data == allowed, "every byte before the oversized frame reaches the parser, none after"
    assert results[-1] == (True, b"")


def test_frame_guard_reads_64_bit_lengths() -> None:

    inner, violations = _Recorder(), list[int]()
    guard = _FrameGuard(inner, 32 * 1024, violations.append)
    ok = _client_frame(0x1, b"x" * 70_000)
    assert _FrameGuard(_Recorder(), 80_000, violations.append).feed_data(ok) == (False, b"")
    assert guard.feed_data(ok) == (True, b"")
    assert violations == [70_000]
