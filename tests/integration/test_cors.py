"""CORS on the REST API (docs/deploy.md, "Calling the API from another origin"): the console's origins get
Access-Control-Allow-Origin on every answer (errors and Chalice's own refusals included) and a preflight on
every path; any other origin gets nothing a browser would accept, and a stack without console origins
sends no CORS header at all."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from tests.support.world import World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).

CONSOLE = "https://d111111abcdef8.cloudfront.net"
DEVELOPER = "http://localhost:8000"


@pytest.fixture
def w(world: World) -> World:
    world.services.settings = msgspec.structs.replace(world.settings, console_origins=(CONSOLE, DEVELOPER))
    return world


def _call(w: World, method: str, path: str, origin: str | None, **headers: str) -> Any:
    if origin:
        headers["Origin"] = origin
    return getattr(w.http, method.lower())(path, headers=headers)


@pytest.mark.parametrize("origin", [CONSOLE, DEVELOPER])
def test_a_console_origin_gets_its_preflight(w: World, origin: str) -> None:
    response = _call(w, "OPTIONS", "/admin/users/sup-1", origin, **{"Access-Control-Request-Method": "PUT"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Access-Control-Allow-Methods"] == "OPTIONS, PUT"
    assert response.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert response.headers["Vary"] == "Origin"


def test_answers_and_errors_carry_the_origin(w: World) -> None:
    token = w.token("admin-1", "admin")
    ok = _call(w, "GET", "/admin/policy", CONSOLE, Authorization=f"Bearer {token}")
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == CONSOLE
    refused = _call(w, "GET", "/admin/policy", CONSOLE)  # no token: the console must read the 401's body
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == CONSOLE
    chalice_refusal = _call(w, "DELETE", "/admin/policy", CONSOLE, Authorization=f"Bearer {token}")
    assert chalice_refusal.status_code == 405 and chalice_refusal.headers["Access-Control-Allow-Origin"] == CONSOLE


@pytest.mark.parametrize("origin", ["https://evil.example", "https://d111111abcdef8.cloudfront.net.evil.example", "null", None])
def test_another_origin_gets_no_cors_header(w: World, origin: str | None) -> None:
    preflight = _call(w, "OPTIONS", "/admin/templates/tpl-1", origin)
    assert preflight.status_code == 204
    assert not {h for h in preflight.headers if h.lower().startswith("access-control-")}
    answer = _call(w, "GET", "/admin/policy", origin, Authorization=f"Bearer {w.token('admin-1', 'admin')}")
    assert answer.status_code == 200 and "Access-Control-Allow-Origin" not in answer.headers
    assert answer.headers["Vary"] == "Origin"  # a shared cache never serves one origin's answer to another


def test_a_preflight_to_a_path_that_is_not_an_id_is_refused(w: World) -> None:
    response = _call(w, "OPTIONS", "/admin/teams/tpl-1%23evil", CONSOLE)
    assert response.status_code == 400
    assert json.loads(response.body)["error"]["code"] == "invalid"
    assert response.headers["Access-Control-Allow-Origin"] == CONSOLE  # the console can read why


def test_without_console_origins_no_cors_header_at_all(world: World) -> None:
    answer = _call(world, "GET", "/health", CONSOLE)
    assert answer.status_code == 200
    assert "Access-Control-Allow-Origin" not in answer.headers and "Vary" not in answer.headers


def test_every_route_answers_options(world: World) -> None:
    from app import app

    for path, methods in app.routes.items():
        assert "OPTIONS" in methods, path
