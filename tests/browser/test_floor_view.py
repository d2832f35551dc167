"""The supervisor's floor in Chromium (docs/product.md W18, docs/console.md): a floor of 15 agents, pending
requests across a reload, an honest connection state while offline, and voice modes shown live."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, LIVE, OpenAs, axe_violations, screenshot
from tests.e2e.tenant import Tenant

pytestmark = pytest.mark.browser

AGENTS = tuple(f"agent-{n}" for n in range(1, 16))


def _message(tenant: Tenant, wid: str, text: str, sender: str = "customer") -> None:
    status, body = tenant.webhook("workitem.message", {"workitemId": wid, "from": sender, "text": text})
    assert status == 200, (status, body)


def test_the_longest_waiting_customer_of_a_15_agent_floor_is_first_without_opening_anything(
    tenant: Tenant, open_as: OpenAs
) -> None:
    tenant.teams(("floor", ("sup1",), AGENTS))
    wids = [tenant.assign(f"wi-{n:02d}", "chat", AGENTS[n % 15]) for n in range(20)]
    # wi-03 wrote first and was answered; wi-07 wrote next and still waits; wi-12 waits since later.
    _message(tenant, "wi-03", "Where is my parcel?")
    time.sleep(0.05)
    _message(tenant, "wi-07", "URGENT: someone changed my password")
    _message(tenant, "wi-03", "Found it, it is on its way", sender="agent")
    time.sleep(0.05)
    _message(tenant, "wi-12", "Hello?")
    supervisor = open_as(tenant.token("sup1", "supervisor"))
    rows = supervisor.get_by_test_id("floor-row")
    expect(rows).to_have_count(20)
    expect(rows.first).to_have_attribute("data-workitem-id", "wi-07")
    first = rows.first
    expect(first).to_contain_text("URGENT: someone changed my password")
    expect(first.get_by_test_id("floor-wait")).to_have_text(re.compile(r"^\d+:\d\d$"))
    expect(rows.nth(1)).to_have_attribute("data-workitem-id", "wi-12")
    # Agents in their names' natural order: Agent-2 before Agent-10.
    order = supervisor.locator("[data-testid=agent-row]").evaluate_all("els => els.map(e => e.dataset.agentId)")
    assert order == list(AGENTS)
    # The first rows of the floor are in view at 1280x800, nothing below the fold to hunt for.
    box = first.bounding_box()
    assert box is not None and box["y"] + box["height"] <= DESKTOP["height"]
    assert supervisor.locator("[data-testid=workitem-row]").count() == 0  # no workitem opened

    screenshot(supervisor, "floor-1280")
    # Searching narrows the floor; one click monitors from the row.
    supervisor.get_by_label("Search").fill("password")
    expect(rows).to_have_count(1)
    supervisor.get_by_label("Search").fill("")
    first.get_by_test_id("floor-monitor").click()
    expect(supervisor.get_by_test_id("stop-button")).to_be_visible()
    expect(supervisor.get_by_test_id("monitored-by")).to_contain_text("you")
    _message(tenant, "wi-07", "Thanks, I am on it", sender="agent")
    expect(rows.first).not_to_have_attribute("data-workitem-id", "wi-07")  # answered: it leaves the top
    assert set(wids) >= {"wi-07", "wi-12"}

    assert axe_violations(supervisor) == []
    supervisor.set_viewport_size({"width": 390, "height": 844})
    expect(rows.first).to_be_visible()
    assert supervisor.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
    screenshot(supervisor, "floor-390")
    assert axe_violations(supervisor) == []


def test_a_pending_request_is_shown_again_after_a_reload_and_goes_when_claimed(tenant: Tenant, open_as: OpenAs) -> None:
    tenant.teams(("team-1", ("sup1", "sup2"), ("agent1",)))
    tenant.template("tpl-1", "I need help with a refund")
    wid = tenant.assign("wi-help", "chat", "agent1")
    supervisor = open_as(tenant.token("sup1", "supervisor"))
    sup2 = tenant.connect("sup2", "supervisor")
    agent = tenant.connect("agent1", "agent")
    assist_id = agent.ok("assist.request", templateId="tpl-1", workitemId=wid, to="supervisors")["assistId"]
    popup = supervisor.locator(f"[data-testid=assist-popup][data-assist-id={assist_id}]")
    expect(popup).to_contain_text("Casey Customer")
    expect(supervisor.get_by_test_id("floor-hand")).to_have_count(1)
    expect(supervisor).to_have_title(re.compile(r"^\(1\)"))

    supervisor.reload()
    expect(supervisor.get_by_test_id("connection-status")).to_have_text(LIVE)
    expect(popup).to_contain_text("I need help with a refund")
    expect(popup).to_contain_text("Casey Customer")
    sup2.ok("assist.claim", assistId=assist_id)
    expect(popup).to_have_count(0)  # claimed by someone else: the pop-up goes
    expect(supervisor.get_by_test_id("floor-hand")).to_have_count(0)


def test_offline_leaves_live_within_10_s_and_a_message_sent_meanwhile_lands_once(tenant: Tenant, open_as: OpenAs) -> None:
    tenant.teams(("team-1", ("sup1",), ("agent1",)))
    wid = tenant.assign("wi-net", "chat", "agent1")
    customer = tenant.customer(wid)
    agent = open_as(tenant.token("agent1", "agent"))
    agent.locator(f"[data-testid=workitem-row][data-workitem-id={wid}]").click()
    status = agent.get_by_test_id("connection-status")

    agent.context.set_offline(True)
    expect(status).not_to_have_text(LIVE, timeout=10_000)
    agent.get_by_test_id("message-input").fill("Sent while offline")
    agent.get_by_test_id("message-send").click()
    expect(agent.get_by_test_id("sending")).to_be_visible()  # not cleared and reported failed
    agent.wait_for_timeout(1_000)
    agent.context.set_offline(False)
    expect(status).to_have_text(LIVE, timeout=15_000)
    expect(agent.get_by_test_id("sending")).to_have_count(0, timeout=15_000)
    mine = agent.locator("main.conversation [data-testid=timeline-entry]", has_text="Sent while offline")
    expect(mine).to_have_count(1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not customer.events("message.received"):
        time.sleep(0.1)
    time.sleep(0.5)  # a duplicate would follow at once
    texts = [e["data"]["entry"]["text"] for e in customer.events("message.received")]
    assert texts == ["Sent while offline"]

    # A message on a workitem that is not open marks its row until the agent opens it.
    other = tenant.assign("wi-other", "chat", "agent1")
    _message(tenant, other, "Are you there?")
    row = agent.locator(f"[data-testid=workitem-row][data-workitem-id={other}]")
    expect(row.get_by_test_id("unread-mark")).to_have_text(re.compile(r"^1"))
    row.click()
    expect(row.get_by_test_id("unread-mark")).to_have_count(0)


def test_voice_modes_are_shown_live_to_the_agent_and_another_supervisor(tenant: Tenant, open_as: OpenAs) -> None:
    tenant.teams(("team-1", ("sup1", "sup2"), ("agent1",)))
    wid = tenant.assign("wi-call", "voice", "agent1")
    agent = open_as(tenant.token("agent1", "agent"))
    agent.locator(f"[data-testid=workitem-row][data-workitem-id={wid}]").click()
    watcher = open_as(tenant.token("sup2", "supervisor"))
    watcher.locator(f"[data-testid=floor-row][data-workitem-id={wid}]").get_by_test_id("floor-monitor").click()
    expect(watcher.get_by_test_id("stop-button")).to_be_visible()
    coach = tenant.connect("sup1", "supervisor")
    coach.ok("monitor.start", workitemId=wid)
    steps = {
        "voice.monitor": ("Sup1 is listening", "Sup1: listen"),
        "voice.whisper": ("Sup1 is whispering to you", "Sup1: whisper"),
        "voice.barge": ("Sup1 joined the call (barge)", "Sup1: barge"),
    }
    for action, (to_agent, to_watcher) in steps.items():
        coach.ok(action, workitemId=wid)
        expect(agent.get_by_test_id("voice-mode")).to_have_text(to_agent)
        expect(watcher.get_by_test_id("voice-mode")).to_have_text(to_watcher)
    expect(watcher.get_by_test_id("monitored-by")).to_contain_text("Sup1")
