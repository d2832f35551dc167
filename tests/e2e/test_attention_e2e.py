"""Attention timers on the real local stack (docs/attention.md, W11.9): a `customer_waiting` rule's
timer is a delayed message on the stack's timer queue, fired by the delivery function, and the alert
reaches the agent's supervisor; the agent's answer resolves it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.e2e.tenant import Tenant

if TYPE_CHECKING:
    from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

WAIT_SECONDS = 10


@pytest.fixture
def tenant(stack: Stack) -> Iterator[Tenant]:
    t = Tenant(stack)
    t.teams(("team-1", ("sup-1",), ("agent-1",)))
    yield t
    t.close()


def test_a_waiting_customer_raises_after_the_threshold_and_the_answer_resolves_it(tenant: Tenant) -> None:
    tenant.admin("PUT", "/admin/attention-rules/wait", {"kind": "customer_waiting", "seconds": WAIT_SECONDS, "severity": 2})
    wid = tenant.assign("wi-waiting", "chat", "agent-1")
    sup = tenant.connect("sup-1", "supervisor")
    agent = tenant.connect("agent-1", "agent")
    customer = tenant.customer(wid)
    sent = time.monotonic()
    customer.ok("message.send", workitemId=wid, text="Hello? Is anyone there?")
    raised = sup.wait_event("attention.raised", timeout=WAIT_SECONDS + 30)["data"]["alert"]
    waited = time.monotonic() - sent
    assert (raised["workitemId"], raised["kind"], raised["reason"]) == (
        wid,
        "customer_waiting",
        f"customer waiting {WAIT_SECONDS} s",
    )
    assert waited >= WAIT_SECONDS - 1, f"raised after {waited:.1f} s, before the threshold"
    assert not agent.events("attention.raised") and not customer.events("attention.raised")
    agent.ok("message.send", workitemId=wid, text="Yes, sorry for the wait!")
    cleared = sup.wait_event("attention.cleared", timeout=15)["data"]["alert"]
    assert (cleared["alertId"], cleared["clearedReason"]) == (raised["alertId"], "resolved")
