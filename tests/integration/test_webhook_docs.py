"""The examples of docs/webhooks.md, run against the product: the inbound sender's signature is
accepted, the outbound receiver accepts real deliveries once and refuses tampered ones."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.receiver import receiver
from tests.support.world import WEBHOOK_SECRET, World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def example(title: str) -> dict[str, Any]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    code = next(b for b in blocks if b.startswith(f"# example: {title}\n"))
    namespace: dict[str, Any] = {}
    exec(compile(code, f"docs/webhooks.md ({title})", "exec"), namespace)  # our own documentation
    return namespace


def test_the_inbound_sender_example_is_accepted(world: World) -> None:
    signed_event = example("inbound sender")["signed_event"]
    world.team()
    body, headers = signed_event(
        WEBHOOK_SECRET,
        {
            "eventId": "doc-1",
            "tenantId": "t1",
            "type": "workitem.assigned",
            "data": {"workitemId": "wi-doc", "channel": "chat", "agentId": "agent-1", "customer": {"id": "c1", "name": "Casey"}},
        },
    )
    response = world.http.post("/webhooks/events", headers=headers, body=body)
    assert response.status_code == 200, response.body
    again = world.http.post("/webhooks/events", headers=headers, body=body)
    assert again.status_code == 200 and b"duplicate" in again.body


@pytest.mark.local_webhooks
def test_the_outbound_receiver_example_verifies_and_deduplicates(world: World) -> None:
    receive = example("outbound receiver")["receive"]
    world.team()
    world.assign("wi-1")
    with receiver() as hook:
        status, sub = world.rest(
            "PUT",
            "/admin/webhook-subscriptions/doc",
            world.token("admin-1", "admin"),
            {"url": hook.url, "events": ["*"], "enabled": True},
        )
        assert status == 201
        sup = world.connect("sup-1", "supervisor")
        sup.ok("monitor.start", workitemId="wi-1")
        world.deliver()
        delivery = hook.requests[0]
    assert receive(sub["secret"], delivery.body, delivery.headers) == 204
    assert receive(sub["secret"], delivery.body, delivery.headers) == 200  # the retry of the same id
    assert receive(sub["secret"], delivery.body.replace(b"sup-1", b"sup-9"), delivery.headers) == 400
    assert receive("whsec_" + "B" * 43 + "=", delivery.body, delivery.headers) == 400
