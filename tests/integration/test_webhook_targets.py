"""Outbound webhook targets in the production configuration (``webhook_targets`` as deployed, not the
local stack's "local"), through the real entry points: subscriptions over REST, deliveries queued by the
``fanout`` entry point and run by ``deliver_webhooks``. Names resolve to what each test says and every
connection attempt is recorded and refused (tests/support/network.py): nothing leaves the machine."""

from __future__ import annotations

import pytest

from tests.support.network import connections, resolving
from tests.support.world import World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).

HOST = "hooks.example.test"
PUBLIC = "93.184.216.34"


@pytest.fixture
def w(world: World) -> World:
    assert world.settings.webhook_targets != "local"  # the world is the production configuration
    world.team()
    world.assign("wi-1")
    status, body = world.rest(
        "PUT",
        "/admin/webhook-subscriptions/crm",
        world.token("admin-1", "admin"),
        {"url": f"https://{HOST}/in", "events": ["workitem.ended"], "enabled": True},
    )
    assert status == 201, body
    return world


@pytest.mark.parametrize("address", ["10.1.2.3", "127.0.0.1", "169.254.169.254"])
def test_a_name_resolving_to_a_private_loopback_or_link_local_address_is_never_connected_to(w: World, address: str) -> None:
    assert w.webhook("workitem.ended", {"workitemId": "wi-1", "endedBy": "system"})[0] == 200
    with resolving({HOST: [address]}), connections() as attempted:
        w.deliver()
        w.deliver(after_seconds=31)  # the retry checks the address again
    assert attempted == []
    assert w.queue.pending() == 1  # not delivered: waiting for its next retry


def test_the_same_subscription_resolving_to_a_public_address_is_attempted(w: World) -> None:
    """The control for the test above: the delivery path is live, so its silence is the filter's doing."""
    assert w.webhook("workitem.ended", {"workitemId": "wi-1", "endedBy": "system"})[0] == 200
    with resolving({HOST: [PUBLIC]}), connections() as attempted:
        w.deliver()
    assert attempted == [(PUBLIC, 443)]


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.test/in",
        "https://10.1.2.3/in",
        "https://127.0.0.1/in",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost/in",
    ],
)
def test_a_subscription_to_a_literal_private_address_or_plain_http_is_refused(world: World, url: str) -> None:
    status, body = world.rest(
        "PUT",
        "/admin/webhook-subscriptions/bad",
        world.token("admin-1", "admin"),
        {"url": url, "events": ["*"], "enabled": True},
    )
    assert status == 400 and body["error"]["code"] == "invalid", body
    assert world.admin("GET", "/admin/webhook-subscriptions")["subscriptions"] == []
