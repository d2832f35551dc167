"""The local stack's console site (devstack/console.py): static files at ``/``, the demo users and the
local token renewal, in front of a toy app's REST routes on the same port."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from chalice.app import Chalice

from devstack.console import ConsoleSite
from devstack.gateway import Gateway, GatewayThread
from devstack.seed import USERS
from devstack.tokens import mint

pytestmark = pytest.mark.integration

SECRET = "console-test-secret-0123456789abcdef"  # test-only value

toy = Chalice(app_name="toy-console")


@toy.route("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    dist = tmp_path_factory.mktemp("dist")
    (dist / "assets").mkdir()
    (dist / "index.html").write_text("<!doctype html><title>console</title>")
    (dist / "assets" / "main.js").write_text("console.log(1)")
    (dist.parent / "secret.txt").write_text("outside dist")
    site = ConsoleSite(SECRET, dist=dist)
    with GatewayThread(Gateway(toy, middlewares=[site.middleware])) as running:
        yield running


def _call(server: GatewayThread, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(server.base_url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_static_files_config_and_rest_share_the_port(server: GatewayThread) -> None:
    status, headers, body = _call(server, "GET", "/")
    assert status == 200 and b"<title>console</title>" in body and headers["Content-Type"].startswith("text/html")
    status, headers, body = _call(server, "GET", "/assets/main.js")
    assert status == 200 and "javascript" in headers["Content-Type"]
    status, _, body = _call(server, "GET", "/config.json")
    assert status == 200 and json.loads(body) == {"apiUrl": "", "wsUrl": "", "signIn": "local", "voice": "fake"}
    status, _, body = _call(server, "GET", "/health")  # REST still answered by the app
    assert status == 200 and json.loads(body) == {"status": "ok"}


@pytest.mark.parametrize("path", ["/assets/nope.js", "/assets/../../secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt"])
def test_missing_files_and_paths_outside_dist_are_not_found(server: GatewayThread, path: str) -> None:
    status, _, body = _call(server, "GET", path)
    assert status in (403, 404), (path, status)
    assert b"outside dist" not in body


def test_demo_users_carry_valid_tokens_for_the_demo_tenant(server: GatewayThread) -> None:
    status, _, body = _call(server, "GET", "/console/demo-users")
    users = json.loads(body)["users"]
    assert status == 200
    assert [u["userId"] for u in users][: len(USERS)] == [user_id for user_id, _, _ in USERS]
    for user in users:
        claims = jwt.decode(user["token"], SECRET, algorithms=["HS256"])
        assert (claims["sub"], claims["role"], claims["tid"]) == (user["userId"], user["role"], "demo")
    customer = users[-1]
    assert customer["role"] == "customer" and jwt.decode(customer["token"], SECRET, algorithms=["HS256"])["wid"]


def test_token_renewal_keeps_the_claims_and_the_lifetime(server: GatewayThread) -> None:
    old = mint(SECRET, sub="cust-9", role="customer", tid="t1", name="Casey", wid="wi-9", ttl_seconds=60, now=0)
    # Expired long ago: refused.
    status, _, body = _call(server, "POST", "/console/token", {"token": old})
    assert status == 401 and json.loads(body)["error"]["code"] == "unauthorized"
    current = mint(SECRET, sub="cust-9", role="customer", tid="t1", name="Casey", wid="wi-9", ttl_seconds=60)
    status, _, body = _call(server, "POST", "/console/token", {"token": current})
    assert status == 200
    claims = jwt.decode(json.loads(body)["token"], SECRET, algorithms=["HS256"])
    assert {k: claims[k] for k in ("sub", "role", "tid", "name", "wid")} == {
        "sub": "cust-9",
        "role": "customer",
        "tid": "t1",
        "name": "Casey",
        "wid": "wi-9",
    }
    assert claims["exp"] - claims["iat"] == 60


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "invalid"),
        ({"token": ""}, 400, "invalid"),
        ([], 400, "invalid"),
        ({"token": mint("another-secret-0123456789abcdefgh", sub="a", role="agent")}, 401, "unauthorized"),
        ({"token": "x" * 9000}, 413, "too_large"),
    ],
)
def test_token_renewal_refuses_bad_input_with_a_structured_error(
    server: GatewayThread, body: Any, status: int, code: str
) -> None:
    got, _, raw = _call(server, "POST", "/console/token", body)
    assert (got, json.loads(raw)["error"]["code"]) == (status, code)


def test_a_missing_build_says_how_to_make_it(tmp_path: Path) -> None:
    site = ConsoleSite(SECRET, dist=tmp_path / "absent")
    with GatewayThread(Gateway(toy, middlewares=[site.middleware])) as running:
        status, _, body = _call(running, "GET", "/")
    assert status == 503 and b"make console" in body


def test_the_policy_admits_the_apis_and_the_issuer_that_config_json_names() -> None:
    from devstack.console import content_security_policy

    config = {
        "apiUrl": "https://api.example.com/api",
        "wsUrl": "wss://ws.example.com/prod",
        "oidc": {"issuer": "https://login.example.com/t/v2.0", "tokenEndpoint": "https://tokens.example.com/token"},
    }
    policy = content_security_policy(config, "ws://127.0.0.1:8000", ["'sha256-x'"])
    connect = next(d for d in policy.split("; ") if d.startswith("connect-src")).split()[1:]
    assert connect == [
        "'self'",
        "ws://127.0.0.1:8000",
        "https://api.example.com",
        "wss://ws.example.com",
        "https://login.example.com",
        "https://tokens.example.com",
    ]
    assert "script-src 'self' 'sha256-x'" in policy and "frame-ancestors 'none'" in policy
