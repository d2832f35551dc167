"""Seeds the demo tenant through the product's own REST API, as an admin and a routing engine would.

Going through the public routes (not the tables) keeps the seed honest: what it creates is exactly
what a real tenant could create, and a broken admin route fails the local stack at start.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from devstack.tokens import mint, webhook_signature

TENANT = "demo"
USERS = (
    ("admin-1", "Ada Admin", "admin"),
    ("sup-1", "Sam Supervisor", "supervisor"),
    ("agent-1", "Alex Agent", "agent"),
    ("agent-2", "Blair Agent", "agent"),
)
TEAM = {"teamId": "team-1", "name": "Front line", "supervisors": ["sup-1"], "agents": ["agent-1", "agent-2"]}
TEMPLATES = (("tpl-1", "I need help with a refund"), ("tpl-2", "Customer is escalating"))
WORKITEMS = (
    {
        "workitemId": "wi-chat-1",
        "channel": "chat",
        "agentId": "agent-1",
        "customer": {"id": "cust-1", "name": "Casey Customer"},
        "subject": "Refund for order 1042",
    },
    {
        "workitemId": "wi-voice-1",
        "channel": "voice",
        "agentId": "agent-1",
        "customer": {"id": "cust-2", "name": "Drew Caller"},
        "subject": "Billing question",
    },
)
CUSTOMER = {"sub": "cust-1", "name": "Casey Customer", "wid": "wi-chat-1"}


class SeedError(RuntimeError):
    """A seed request was not answered with 2xx."""


@dataclass(frozen=True)
class SeedResult:
    """Ready-made tokens: one per directory user (by user id) and the chat customer's."""

    tokens: dict[str, str]
    customer_token: str


def seed(base_url: str, *, jwt_secret: str | None = None, webhook_secret: str | None = None) -> SeedResult:
    """Create the demo tenant on the stack at ``base_url``; secrets default to the process environment."""
    jwt_secret = jwt_secret or os.environ["COACHING_JWT_SECRET"]
    webhook_secret = webhook_secret or os.environ["COACHING_WEBHOOK_SECRET"]
    tokens = {user_id: mint(jwt_secret, sub=user_id, role=role, name=name) for user_id, name, role in USERS}
    admin = tokens["admin-1"]

    for user_id, name, role in USERS:
        _request(base_url, "PUT", f"/admin/users/{user_id}", {"name": name, "role": role}, token=admin)
    team = {k: v for k, v in TEAM.items() if k != "teamId"}
    _request(base_url, "PUT", f"/admin/teams/{TEAM['teamId']}", team, token=admin)
    for template_id, text in TEMPLATES:
        _request(base_url, "PUT", f"/admin/templates/{template_id}", {"text": text, "enabled": True}, token=admin)
    for workitem in WORKITEMS:
        event = {
            "eventId": f"seed-{workitem['workitemId']}",
            "tenantId": TENANT,
            "type": "workitem.assigned",
            "data": workitem,
        }
        raw = json.dumps(event).encode()
        _request(
            base_url,
            "POST",
            "/webhooks/events",
            raw,
            headers={"X-Coaching-Signature": webhook_signature(webhook_secret, raw)},
        )

    customer = mint(jwt_secret, sub=CUSTOMER["sub"], role="customer", name=CUSTOMER["name"], wid=CUSTOMER["wid"])
    return SeedResult(tokens=tokens, customer_token=customer)


def _request(
    base_url: str,
    method: str,
    path: str,
    body: dict[str, Any] | bytes,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    # The URL is the stack's own http://127.0.0.1 address, built by the caller.
    request = urllib.request.Request(base_url + path, data=data, method=method, headers=all_headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            payload = response.read()
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", "replace")[:500]
        raise SeedError(f"{method} {path} -> HTTP {error.code}: {detail}") from None
    return json.loads(payload) if payload else None
