"""The web console in a real browser: each role's screen against the real local stack (W10, Q15).

The selectors are the stable `data-testid` hooks of W10.3. Every test sets up its own tenant (users,
team, templates, workitems through the public REST routes and signed webhooks), then drives one browser
context per person.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import DESKTOP, LIVE, OpenAs, axe_violations, kinds_and_seqs, screenshot
from tests.e2e.tenant import Tenant

pytestmark = pytest.mark.browser

CUSTOMER_KINDS = {"customer_message", "agent_message"}


def _front_line(tenant: Tenant, *, template: bool = True) -> None:
    tenant.teams(("team-1", ("sup1",), ("agent1", "agent2")))
    if template:
        tenant.template("tpl-1", "I need help with a refund")


def _open_workitem(supervisor: Page, agent_id: str, workitem_id: str) -> None:
    supervisor.locator(f"[data-testid=agent-row][data-agent-id={agent_id}]").click()
    supervisor.locator(f"[data-testid=workitem-row][data-workitem-id={workitem_id}]").click()


def test_coached_chat_across_supervisor_agent_and_customer(tenant: Tenant, open_as: OpenAs) -> None:
    _front_line(tenant)
    wid = tenant.assign("wi-chat", "chat", "agent1")
    supervisor = open_as(tenant.token("sup1", "supervisor"))
    agent = open_as(tenant.token("agent1", "agent"))
    customer = open_as(tenant.token(f"cust-{wid}", "customer", wid=wid))

    # The board: the agent with presence and a workitem count.
    row = supervisor.locator("[data-testid=agent-row][data-agent-id=agent1]")
    expect(row).to_contain_text("Agent1")
    expect(row).to_contain_text("available")
    expect(row.locator(".count")).to_contain_text("1")

    customer.get_by_test_id("message-input").fill("Hello, my refund is late")
    customer.get_by_test_id("message-send").click()
    expect(agent.locator("main [data-testid=timeline-entry][data-kind=customer_message]")).to_contain_text("refund is late")

    _open_workitem(supervisor, "agent1", wid)
    supervisor.get_by_test_id("monitor-button").click()
    expect(supervisor.locator("[data-testid=timeline-entry][data-kind=customer_message]")).to_contain_text("refund is late")
    expect(agent.locator(".coaching-panel [data-testid=timeline-entry][data-kind=supervisor_joined]")).to_have_count(1)

    supervisor.get_by_test_id("coach-input").fill("Offer a 10% voucher")
    supervisor.get_by_test_id("coach-send").click()
    supervisor.get_by_test_id("coach-input").fill("Stay calm, never promise a date")
    supervisor.get_by_test_id("coach-send").click()
    coach = agent.locator(".coaching-panel [data-testid=timeline-entry][data-kind=coach_message]")
    expect(coach).to_have_count(2)
    expect(coach.nth(0)).to_contain_text("Offer a 10% voucher")

    # React and forward; the supervisor sees both on the coach message.
    coach.nth(0).get_by_test_id("react-up").click()
    coach.nth(0).get_by_test_id("forward-button").click()
    sup_coach = supervisor.locator("[data-testid=timeline-entry][data-kind=coach_message]").nth(0)
    expect(sup_coach).to_contain_text("Helpful")
    expect(sup_coach).to_contain_text("Forwarded to the customer")
    expect(customer.locator("[data-testid=timeline-entry][data-kind=agent_message]")).to_contain_text("Offer a 10% voucher")

    # The agent answers the customer and replies to the supervisor.
    agent.get_by_test_id("message-input").fill("I can offer you a voucher")
    agent.get_by_test_id("message-send").click()
    agent.locator(".coaching-panel").get_by_test_id("coach-input").fill("Thanks, done")
    agent.locator(".coaching-panel").get_by_test_id("coach-send").click()
    expect(supervisor.locator("[data-testid=timeline-entry][data-kind=coach_message]")).to_have_count(3)
    expect(customer.locator("[data-testid=timeline-entry]")).to_have_count(3)
    screenshot(supervisor, "supervisor")
    screenshot(agent, "agent")
    screenshot(customer, "customer")

    # The customer never sees coaching: only their own numbering of customer and agent messages.
    entries = kinds_and_seqs(customer)
    assert [seq for seq, _ in entries] == [1, 2, 3]
    assert {kind for _, kind in entries} <= CUSTOMER_KINDS
    text = customer.locator("body").inner_text()
    assert "never promise" not in text and "Thanks, done" not in text and "Sup1" not in text

    # Stop monitoring: the agent's panel shows it ended.
    supervisor.get_by_test_id("stop-button").click()
    expect(agent.locator(".coaching-panel [data-testid=timeline-entry][data-kind=supervisor_left]")).to_have_count(1)
    expect(supervisor.get_by_test_id("monitor-button")).to_be_visible()


def test_supervisor_monitors_several_workitems_at_once(tenant: Tenant, open_as: OpenAs) -> None:
    _front_line(tenant, template=False)
    first = tenant.assign("wi-a", "chat", "agent1")
    second = tenant.assign("wi-b", "sms", "agent2")
    supervisor = open_as(tenant.token("sup1", "supervisor"))
    for agent_id, wid in (("agent1", first), ("agent2", second)):
        _open_workitem(supervisor, agent_id, wid)
        supervisor.locator("section.tile").last.get_by_test_id("monitor-button").click()
    tiles = supervisor.locator("section.tile")
    expect(tiles).to_have_count(2)
    for index in range(2):
        expect(tiles.nth(index).get_by_test_id("coach-input")).to_be_visible()
    # The board is live: a new assignment shows up in the count and the list without a reload.
    count = supervisor.locator("[data-testid=agent-row][data-agent-id=agent2] .count")
    expect(count).to_contain_text("1")
    tenant.assign("wi-c", "email", "agent2")
    expect(count).to_contain_text("2")
    expect(supervisor.locator("[data-testid=workitem-row][data-workitem-id=wi-c]")).to_contain_text("email")
    tiles.nth(1).get_by_test_id("coach-input").fill("Only on the second one")
    tiles.nth(1).get_by_test_id("coach-send").click()
    expect(tiles.nth(1).locator("[data-testid=timeline-entry][data-kind=coach_message]")).to_have_count(1)
    expect(tiles.nth(0).locator("[data-testid=timeline-entry][data-kind=coach_message]")).to_have_count(0)

    # Closing a tile and opening it again shows each entry once.
    before = kinds_and_seqs(supervisor, "section.tile >> nth=1")
    tiles.nth(1).get_by_role("button", name="Close tile").click()
    expect(tiles).to_have_count(1)
    supervisor.locator(f"[data-testid=workitem-row][data-workitem-id={second}]").click()
    expect(tiles).to_have_count(2)
    expect(tiles.nth(1).locator("[data-testid=timeline-entry]")).to_have_count(len(before))
    assert kinds_and_seqs(supervisor, "section.tile >> nth=1") == before


def test_raise_hand_claimed_by_a_supervisor_names_them_to_the_agent(tenant: Tenant, open_as: OpenAs) -> None:
    _front_line(tenant)
    wid = tenant.assign("wi-help", "chat", "agent1")
    supervisor = open_as(tenant.token("sup1", "supervisor"))
    expect(supervisor.locator("[data-testid=agent-row][data-agent-id=agent1]")).to_be_visible()
    agent = open_as(tenant.token("agent1", "agent"))
    expect(agent.locator(f"[data-testid=workitem-row][data-workitem-id={wid}]")).to_be_visible()

    agent.get_by_test_id("assist-button").click()
    agent.locator("[data-testid=template-option][data-template-id=tpl-1]").click()
    agent.locator("[data-testid=recipient-option][data-recipient=supervisors]").click()
    expect(agent.get_by_test_id("assist-status")).to_contain_text("1 notified")

    popup = supervisor.get_by_test_id("assist-popup")
    expect(popup).to_contain_text("I need help with a refund")
    popup.get_by_test_id("claim-button").click()
    expect(agent.get_by_test_id("assist-status")).to_contain_text("Sup1")
    # Claiming opens the workitem for monitoring.
    expect(supervisor.get_by_test_id("stop-button")).to_be_visible()


def test_raise_hand_is_hidden_when_no_template_is_enabled(tenant: Tenant, open_as: OpenAs) -> None:
    _front_line(tenant, template=False)
    tenant.template("tpl-off", "Disabled one", enabled=False)
    tenant.assign("wi-quiet", "chat", "agent1")
    agent = open_as(tenant.token("agent1", "agent"))
    expect(agent.locator("[data-testid=workitem-row]")).to_have_count(1)
    expect(agent.get_by_test_id("assist-button")).to_have_count(0)


def test_reconnect_catches_up_without_duplicates_gaps_or_disorder(tenant: Tenant, open_as: OpenAs) -> None:
    _front_line(tenant, template=False)
    wid = tenant.assign("wi-drop", "chat", "agent1")
    customer = tenant.customer(wid)
    customer.ok("message.send", workitemId=wid, text="before the drop")
    agent = open_as(tenant.token("agent1", "agent"))
    conversation = "main.conversation"
    expect(agent.locator(f"{conversation} [data-testid=timeline-entry]")).to_have_count(1)

    agent.evaluate("() => window.coachingClient.simulateDrop(2500)")
    status = agent.get_by_test_id("connection-status")
    expect(status).not_to_have_text(LIVE)
    for n in range(5):
        customer.ok("message.send", workitemId=wid, text=f"while away {n}")
    expect(status).to_have_text(LIVE, timeout=15_000)
    customer.ok("message.send", workitemId=wid, text="after the drop")

    expect(agent.locator(f"{conversation} [data-testid=timeline-entry]")).to_have_count(7)
    entries = kinds_and_seqs(agent, conversation)
    assert [seq for seq, _ in entries] == list(range(1, 8))
    texts = agent.locator(f"{conversation} [data-testid=timeline-entry] .text").all_inner_texts()
    assert texts == ["before the drop", *[f"while away {n}" for n in range(5)], "after the drop"]


def test_token_is_renewed_before_it_expires_and_the_session_outlives_it(tenant: Tenant, open_as: OpenAs, stack) -> None:
    _front_line(tenant, template=False)
    wid = tenant.assign("wi-renew", "chat", "agent1")
    ttl = 16
    short = stack.token("agent1", "agent", tid=tenant.tid, exp_in=ttl)
    issued = time.time()
    agent = open_as(short)
    # Renewed at half the lifetime (a token this short) with auth.refresh on the open socket: no reconnect.
    agent.wait_for_function("() => window.coachingClient.lastRefresh !== ''", timeout=(ttl + 5) * 1000)
    assert agent.evaluate("() => window.coachingClient.lastRefresh") == "auth.refresh"
    assert agent.evaluate("() => window.coachingClient.token") != short
    time.sleep(max(0.0, issued + ttl + 2 - time.time()))  # the first token has expired now
    # The server now refuses every frame on a connection whose token has expired: this one was extended.
    expect(agent.get_by_test_id("connection-status")).to_have_text(LIVE)
    agent.get_by_test_id("message-input").fill("still here")
    agent.get_by_test_id("message-send").click()
    expect(agent.locator("main.conversation [data-testid=timeline-entry]")).to_contain_text("still here")
    expect(agent.locator(".error-bar")).to_have_count(0)
    assert wid


def test_an_amazon_connect_call_offers_no_chime_controls(tenant: Tenant, open_as: OpenAs) -> None:
    """W14.10: Connect's calls are Connect's: the agent and a monitoring supervisor get a note instead
    of Join / Listen / Whisper / Barge (which the server would refuse with conflict)."""
    from tests.e2e.test_connectors_e2e import DEMO_INSTANCE, contact_event

    _front_line(tenant, template=False)
    connect_user = str(uuid.uuid4())
    mapping = {"instanceArn": DEMO_INSTANCE, "agents": {connect_user: "agent1"}}
    status, _ = tenant.stack.rest("PUT", "/admin/connectors/amazon-connect", tenant.admin_token, mapping)
    if status == 409:  # another test's tenant holds the demo instance on this stack
        pytest.skip("the demo instance belongs to another tenant of this stack")
    contact = str(uuid.uuid4())
    event = contact_event("CONNECTED_TO_AGENT", contact, connect_user, channel="VOICE")
    assert tenant.stack.rest("POST", "/_local/events", None, event) == (202, {"outcome": "applied"})
    agent = open_as(tenant.token("agent1", "agent"))
    expect(agent.get_by_test_id("voice-connect-note")).to_be_visible()
    expect(agent.get_by_test_id("voice-join")).to_have_count(0)
    supervisor = open_as(tenant.token("sup1", "supervisor"))
    _open_workitem(supervisor, "agent1", f"connect-{contact}")
    supervisor.get_by_test_id("monitor-button").click()
    expect(supervisor.get_by_test_id("voice-connect-note")).to_be_visible()
    expect(supervisor.get_by_test_id("voice-listen")).to_have_count(0)


def test_a_voice_calls_transcript_lines_show_live_to_the_agent_and_the_supervisor(tenant: Tenant, open_as: OpenAs) -> None:
    """W12: a final line of the live transcript (the local stand-in for the media insights pipeline's
    sink) appears in the agent's conversation and the monitoring supervisor's timeline within 2 s."""
    _front_line(tenant, template=False)
    wid = tenant.assign("wi-said", "voice", "agent1")
    agent = open_as(tenant.token("agent1", "agent"))
    supervisor = open_as(tenant.token("sup1", "supervisor"))
    _open_workitem(supervisor, "agent1", wid)
    supervisor.get_by_test_id("monitor-button").click()
    expect(supervisor.get_by_test_id("voice-listen")).to_be_visible()
    line = {"speaker": "customer", "text": "My card was charged twice."}
    assert tenant.stack.rest("POST", f"/_local/voice/{tenant.tid}/{wid}/transcript", None, line)[0] == 202
    for page in (agent, supervisor):
        said = page.locator("[data-testid=timeline-entry][data-kind=transcript]")
        expect(said).to_contain_text("My card was charged twice.", timeout=2000)
        expect(said).to_contain_text("Transcript")


def test_voice_listen_whisper_barge_with_the_fake_provider(tenant: Tenant, open_as: OpenAs) -> None:
    _front_line(tenant, template=False)
    wid = tenant.assign("wi-call", "voice", "agent1")
    supervisor = open_as(tenant.token("sup1", "supervisor"))
    agent = open_as(tenant.token("agent1", "agent"))
    agent.get_by_test_id("voice-join").click()
    expect(agent.locator(".voice .room")).to_contain_text("In the call")

    _open_workitem(supervisor, "agent1", wid)
    supervisor.get_by_test_id("monitor-button").click()
    state = supervisor.get_by_test_id("voice-state")
    supervisor.get_by_test_id("voice-listen").click()
    expect(state).to_contain_text(re.compile(r"listen .* audio Receive"))
    supervisor.get_by_test_id("voice-whisper").click()
    expect(state).to_contain_text(re.compile(r"whisper .* audio Send"))
    expect(agent.get_by_test_id("coach-room")).to_be_visible()
    screenshot(supervisor, "supervisor-voice")
    supervisor.get_by_test_id("voice-barge").click()
    expect(state).to_contain_text(re.compile(r"barge .* audio SendReceive"))
    supervisor.get_by_test_id("voice-listen").click()
    expect(state).to_contain_text(re.compile(r"listen .* audio Receive"))
    expect(agent.get_by_test_id("coach-room")).to_have_count(0)
    expect(supervisor.get_by_test_id("voice-listen")).to_have_attribute("aria-pressed", "true")
    assert "coach-input" not in supervisor.content()  # no text coaching on a voice workitem


def test_every_role_main_screen_passes_axe_and_fits_a_narrow_window(tenant: Tenant, open_as: OpenAs, stack) -> None:
    _front_line(tenant)
    wid = tenant.assign("wi-axe", "chat", "agent1")
    tenant.customer(wid).ok("message.send", workitemId=wid, text="Hi there")
    supervisor = open_as(tenant.token("sup1", "supervisor"))
    _open_workitem(supervisor, "agent1", wid)
    supervisor.get_by_test_id("monitor-button").click()
    supervisor.get_by_test_id("coach-input").fill("Check the order first")
    supervisor.get_by_test_id("coach-send").click()
    agent = open_as(tenant.token("agent1", "agent"))
    expect(agent.locator(".coaching-panel [data-testid=timeline-entry][data-kind=coach_message]")).to_have_count(1)
    customer = open_as(tenant.token(f"cust-{wid}", "customer", wid=wid))
    expect(customer.locator("[data-testid=timeline-entry]")).to_have_count(1)
    admin = open_as(tenant.admin_token, wait_live=False)
    expect(admin.locator("[data-testid=template-row]")).to_have_count(1)
    picker = open_as("", wait_live=False)
    expect(picker.get_by_test_id("demo-user").first).to_be_visible()
    screenshot(admin, "admin")
    screenshot(picker, "sign-in")

    pages = {"supervisor": supervisor, "agent": agent, "customer": customer, "admin": admin, "sign-in": picker}
    found = {name: axe_violations(page) for name, page in pages.items()}
    assert found == {name: [] for name in pages}, found

    # Narrow window: one column, nothing wider than the viewport.
    for name, page in pages.items():
        page.set_viewport_size({"width": 390, "height": 800})
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (name, overflow)
    screenshot(supervisor, "supervisor-narrow")
    supervisor.set_viewport_size(DESKTOP)


def _tab_to(page: Page, target: Locator, limit: int = 30) -> None:
    """Press Tab until ``target`` has the focus (fails when it is not reachable by keyboard)."""
    target.wait_for()
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"{target} is not reachable with Tab")


def test_keyboard_only_supervisor_opens_and_monitors_a_workitem(tenant: Tenant, open_as: OpenAs) -> None:
    _front_line(tenant, template=False)
    wid = tenant.assign("wi-keys", "chat", "agent1")
    supervisor = open_as(tenant.token("sup1", "supervisor"))
    row = supervisor.locator("[data-testid=agent-row][data-agent-id=agent1]")
    expect(row).to_be_visible()
    _tab_to(supervisor, row)
    supervisor.keyboard.press("Enter")
    item = supervisor.locator(f"[data-testid=workitem-row][data-workitem-id={wid}]")
    _tab_to(supervisor, item)
    supervisor.keyboard.press("Enter")
    _tab_to(supervisor, supervisor.get_by_test_id("monitor-button"))
    supervisor.keyboard.press("Enter")
    _tab_to(supervisor, supervisor.get_by_test_id("coach-input"))
    supervisor.keyboard.type("Typed without a mouse")
    supervisor.keyboard.press("Enter")
    expect(supervisor.locator("[data-testid=timeline-entry][data-kind=coach_message]")).to_contain_text("Typed without a mouse")


def test_demo_user_picker_signs_in_and_sign_out_returns_to_it(open_as: OpenAs) -> None:
    page = open_as("", wait_live=False)
    page.locator("[data-testid=demo-user][data-user-id=sup-1]").click()
    expect(page.get_by_test_id("connection-status")).to_have_text(LIVE)
    expect(page.locator("[data-testid=agent-row][data-agent-id=agent-1]")).to_contain_text("Alex Agent")
    page.reload()  # the tab keeps its sign-in
    expect(page.locator("[data-testid=agent-row][data-agent-id=agent-1]")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("[data-testid=demo-user]")).to_have_count(5)


def test_a_token_that_expired_while_the_tab_was_closed_leads_to_sign_in_not_to_a_dead_socket(
    tenant: Tenant, open_as: OpenAs, stack
) -> None:
    _front_line(tenant, template=False)
    expired = stack.token("agent1", "agent", tid=tenant.tid, exp_in=-60)
    page = open_as(expired, wait_live=False)
    # The local token helper rightly refuses to renew an expired token: the sign-in screen says why.
    expect(page.get_by_role("alert")).to_contain_text("session has expired")
    expect(page.locator("[data-testid=demo-user]").first).to_be_visible()
    assert page.evaluate("() => window.coachingClient === undefined"), "a client was created with a dead token"
    assert page.evaluate("() => sessionStorage.getItem('coaching-console-token')") is None


def test_a_token_about_to_expire_is_renewed_before_the_socket_opens(tenant: Tenant, open_as: OpenAs, stack) -> None:
    _front_line(tenant, template=False)
    short = stack.token("agent1", "agent", tid=tenant.tid, exp_in=20)  # under the 30 s margin at load
    # A renewal within the same second would mint the very same token (same claims, same iat): let one pass.
    time.sleep(1.1)
    agent = open_as(short)
    used = agent.evaluate("() => window.coachingClient.token")
    assert used != short, "the socket was opened with the token that was about to expire"
    expiry = "(t) => JSON.parse(atob(t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).exp"
    assert agent.evaluate(expiry, used) > agent.evaluate(expiry, short)
    assert agent.evaluate("() => sessionStorage.getItem('coaching-console-token')") == used


def test_the_admin_screen_renews_its_token_without_a_socket(tenant: Tenant, open_as: OpenAs, stack) -> None:
    ttl = 6
    short = stack.token("admin-1", "admin", tid=tenant.tid, exp_in=ttl)
    issued = time.time()
    admin = open_as(short, wait_live=False)
    expect(admin.get_by_role("heading", name="Raise-hand templates")).to_be_visible()
    admin.wait_for_function("() => window.coachingClient.lastRefresh === 'adopted'", timeout=(ttl + 5) * 1000)
    time.sleep(max(0.0, issued + ttl + 2 - time.time()))  # the token the page opened with has expired now
    admin.get_by_label("Template id").fill("tpl-late")
    admin.get_by_label("Text", exact=True).fill("Asked after the first token expired")
    admin.get_by_role("button", name="Add template").click()
    expect(admin.locator("[data-testid=template-row]")).to_contain_text("Asked after the first token expired")
    expect(admin.get_by_role("alert")).to_have_count(0)
    assert admin.evaluate("() => window.coachingClient.state") != "live", "the admin's screen opened a socket"


def test_agent_transfers_one_workitem_and_ends_another(tenant: Tenant, open_as: OpenAs) -> None:
    _front_line(tenant, template=False)
    moving = tenant.assign("wi-move", "chat", "agent1")
    ending = tenant.assign("wi-end", "chat", "agent1")
    agent1 = open_as(tenant.token("agent1", "agent"))
    agent2 = open_as(tenant.token("agent2", "agent"))
    agent1.locator(f"[data-testid=workitem-row][data-workitem-id={moving}]").click()
    agent1.get_by_label("Transfer to").fill("agent2")
    agent1.get_by_test_id("transfer-button").click()
    expect(agent1.locator(f"[data-testid=workitem-row][data-workitem-id={moving}]")).to_have_count(0)
    expect(agent2.locator(f"[data-testid=workitem-row][data-workitem-id={moving}]")).to_be_visible()

    agent1.locator(f"[data-testid=workitem-row][data-workitem-id={ending}]").click()
    agent1.get_by_test_id("end-button").click()
    expect(agent1.locator(f"[data-testid=workitem-row][data-workitem-id={ending}]")).to_contain_text("ended")
    expect(agent1.get_by_test_id("message-input")).to_have_count(0)


def test_agent_consults_a_colleague_and_is_refused_while_coached(tenant: Tenant, open_as: OpenAs) -> None:
    _front_line(tenant, template=False)
    wid = tenant.assign("wi-consult", "chat", "agent1")
    agent1 = open_as(tenant.token("agent1", "agent"))
    agent2 = open_as(tenant.token("agent2", "agent"))
    agent1.locator(f"[data-testid=workitem-row][data-workitem-id={wid}]").click()
    agent1.get_by_label("Transfer to").fill("agent2")
    agent1.get_by_test_id("consult-button").click()
    expect(agent2.get_by_role("status").filter(has_text="asks to consult")).to_contain_text(f"Agent1 asks to consult on {wid}")
    expect(agent1.locator(".error-bar")).to_have_count(0)

    # While a supervisor coaches the workitem, consulting is refused with the reason (S11).
    supervisor = open_as(tenant.token("sup1", "supervisor"))
    _open_workitem(supervisor, "agent1", wid)
    supervisor.get_by_test_id("monitor-button").click()
    expect(agent1.locator(".coaching-panel [data-testid=timeline-entry][data-kind=supervisor_joined]")).to_have_count(1)
    agent1.get_by_test_id("consult-button").click()
    expect(agent1.locator(".error-bar")).to_contain_text("coaching")
    expect(agent2.get_by_role("status").filter(has_text="asks to consult")).to_have_count(1)


def test_directory_message_and_reply_between_supervisor_and_agent(tenant: Tenant, open_as: OpenAs) -> None:
    _front_line(tenant, template=False)
    supervisor = open_as(tenant.token("sup1", "supervisor"))
    agent = open_as(tenant.token("agent1", "agent"))
    supervisor.get_by_label("To", exact=True).select_option("agent1")
    supervisor.get_by_test_id("directory-input").fill("Team meeting at 3")
    supervisor.get_by_test_id("directory-send").click()
    expect(agent.get_by_test_id("directory-message")).to_contain_text("Team meeting at 3")
    agent.get_by_test_id("directory-input").fill("On my way")
    agent.get_by_test_id("directory-send").click()
    expect(supervisor.get_by_test_id("directory-message")).to_contain_text("On my way")


def test_agent_presence_shows_live_on_the_supervisor_board(tenant: Tenant, open_as: OpenAs) -> None:
    _front_line(tenant, template=False)
    supervisor = open_as(tenant.token("sup1", "supervisor"))
    row = supervisor.locator("[data-testid=agent-row][data-agent-id=agent1]")
    expect(row).to_contain_text("offline")
    agent = open_as(tenant.token("agent1", "agent"))
    expect(row).to_contain_text("available")
    agent.get_by_label("Presence").select_option("not_ready")
    expect(row).to_contain_text("not ready")
    agent.context.close()
    expect(row).to_contain_text("offline")


def test_insights_chart_and_csv_carry_the_apis_numbers(tenant: Tenant, open_as: OpenAs, stack) -> None:
    """W13: the insights screen (loaded on demand, with its chart library) for a supervisor: the trend
    chart is drawn, the tables and the CSV download hold the API's numbers, and axe finds nothing serious."""
    import csv
    import io
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    _front_line(tenant)
    wid = tenant.assign("wi-insights", "chat", "agent1")
    sup = tenant.connect("sup1", "supervisor")
    agent = tenant.connect("agent1", "agent")
    sup.ok("monitor.start", workitemId=wid)
    tip = sup.ok("coach.send", workitemId=wid, text="Offer the refund")["entry"]["messageId"]
    sup.ok("coach.send", workitemId=wid, text="=1+1")
    agent.ok("coach.react", workitemId=wid, messageId=tip, reaction="thumbs_up")
    today = datetime.now(UTC).date()
    query = f"from={(today - timedelta(days=29)).isoformat()}&to={today.isoformat()}"
    token = tenant.token("sup1", "supervisor")

    def by_agent() -> dict[str, Any]:
        status, body = stack.rest("GET", f"/analytics/coaching?{query}&groupBy=agent", token)
        assert status == 200, body
        return body

    deadline = time.monotonic() + 10  # the stream consumer counts within seconds (contract: 10 s)
    while by_agent()["totals"]["helpful"] != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    expected = by_agent()
    assert expected["totals"]["coachMessages"] == 2 and expected["totals"]["helpful"] == 1

    page = open_as(token)
    page.get_by_test_id("insights-link").click()
    expect(page.get_by_test_id("insights")).to_be_visible()
    expect(page.locator("[data-testid=insights-chart] canvas")).to_have_count(1)
    row = page.locator("[data-testid=insights-agents] tbody tr[data-key=agent1]")
    expect(row).to_contain_text("2")
    expect(page.locator("[data-testid=insights-totals] [data-metric=helpful] dd")).to_have_text("1")
    with page.expect_download() as download:
        page.get_by_test_id("insights-csv").click()
    lines = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert [line["key"] for line in lines] == [r["key"] for r in expected["rows"]]
    for line, api in zip(lines, expected["rows"], strict=True):
        assert {k: line[k] for k in api if k not in ("key", "name")} == {
            k: "" if v is None else str(v) for k, v in api.items() if k not in ("key", "name")
        }
    screenshot(page, "insights")
    assert axe_violations(page) == []


def test_the_attention_panel_ranks_live_alerts_and_takes_one(tenant: Tenant, open_as: OpenAs) -> None:
    """W11.10: a keyword alert appears on the supervisor's board at once, the higher score first; Take
    acks it and Monitor opens the workitem."""
    _front_line(tenant, template=False)
    tenant.admin("PUT", "/admin/attention-rules/kw", {"kind": "keyword", "phrases": ["refund"], "severity": 1})
    tenant.admin("PUT", "/admin/attention-rules/law", {"kind": "keyword", "phrases": ["lawyer"], "severity": 3})
    calm = tenant.assign("wi-calm", "chat", "agent1")
    angry = tenant.assign("wi-angry", "chat", "agent2")
    supervisor = open_as(tenant.token("sup1", "supervisor"))
    panel = supervisor.get_by_test_id("attention-panel")
    expect(panel).to_contain_text("Nothing needs you now")
    tenant.customer(calm).ok("message.send", workitemId=calm, text="Where is my refund?")
    expect(panel.locator(f"[data-testid=attention-item][data-workitem-id={calm}]")).to_be_visible()
    tenant.customer(angry).ok("message.send", workitemId=angry, text="My lawyer will call you")
    items = panel.get_by_test_id("attention-item")
    expect(items).to_have_count(2)
    expect(items.first).to_have_attribute("data-workitem-id", angry)  # severity 3 before severity 1
    alert_id = items.first.get_attribute("data-alert-id")
    assert alert_id and alert_id.startswith("al-")
    angry_item = panel.locator(f"[data-testid=attention-item][data-workitem-id={angry}]")
    angry_item.get_by_test_id("ack-button").click()
    expect(angry_item).to_contain_text("taken by")
    expect(items.first).to_have_attribute("data-workitem-id", calm)  # acked alerts score nothing
    angry_item.get_by_test_id("attention-monitor").click()
    expect(supervisor.get_by_test_id("stop-button")).to_be_visible()


def test_a_name_of_256_characters_stays_inside_its_agent_card(tenant: Tenant, open_as: OpenAs) -> None:
    """The longest name the API accepts, without a space to break at: the card, the board and the page
    keep their width (the name is cut with an ellipsis and shown whole on hover)."""
    _front_line(tenant, template=False)
    long_name = "W" * 256
    tenant.admin("PUT", "/admin/users/agent1", {"name": long_name, "role": "agent"})
    supervisor = open_as(tenant.token("sup1", "supervisor"))
    card = supervisor.locator("[data-testid=agent-row][data-agent-id=agent1]")
    expect(card).to_contain_text("WWWW")
    fits = """el => {
        const box = el.getBoundingClientRect(), board = el.closest('.sidebar').getBoundingClientRect();
        return {card: el.scrollWidth <= el.clientWidth + 1, inside: box.right <= board.right + 1,
                page: document.documentElement.scrollWidth <= window.innerWidth};
    }"""
    assert card.evaluate(fits) == {"card": True, "inside": True, "page": True}
    assert card.locator(".agent-name").get_attribute("title") == long_name
    agent = open_as(tenant.token("agent1", "agent"))  # the agent's own name in the top bar fits too
    assert agent.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_an_admin_creates_edits_disables_and_deletes_an_attention_rule(tenant: Tenant, open_as: OpenAs) -> None:
    admin = open_as(tenant.admin_token, wait_live=False)
    rules = admin.get_by_test_id("attention-rules")
    form = rules.get_by_test_id("rule-form")
    form.locator("input[name=ruleId]").fill("refunds")
    form.locator("textarea[name=phrases]").fill("refund, speak to a manager")
    form.locator("input[name=speaker-agent]").check()
    form.locator("select[name=severity]").select_option("3")
    form.get_by_role("button", name="Save rule").click()
    row = rules.locator("[data-testid=rule-row][data-rule-id=refunds]")
    expect(row).to_contain_text("speak to a manager")
    assert tenant.admin("GET", "/admin/attention-rules")["rules"] == [
        {
            "ruleId": "refunds",
            "kind": "keyword",
            "enabled": True,
            "severity": 3,
            "phrases": ["refund", "speak to a manager"],
            "speakers": ["customer", "agent"],
        }
    ]
    # Edit: the form takes the rule; another kind sends that kind's fields only.
    row.get_by_role("button", name="Edit").click()
    expect(form.locator("input[name=ruleId]")).to_have_value("refunds")
    form.locator("select[name=kind]").select_option("customer_waiting")
    form.locator("input[name=seconds]").fill("45")
    form.get_by_role("button", name="Save rule").click()
    expect(row).to_contain_text("45 s")
    row.get_by_role("checkbox").click()
    expect(row.get_by_role("checkbox")).not_to_be_checked()
    deadline = time.monotonic() + 10  # the click's PUT may still be on its way: wait for it to land
    while (rule := tenant.admin("GET", "/admin/attention-rules")["rules"][0])["enabled"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rule == {"ruleId": "refunds", "kind": "customer_waiting", "enabled": False, "severity": 3, "seconds": 45}
    # A rule the server refuses is shown, and nothing changes.
    form.locator("select[name=kind]").select_option("keyword")
    form.locator("textarea[name=phrases]").fill("!!!")
    form.get_by_role("button", name="Save rule").click()
    expect(admin.get_by_role("alert")).to_contain_text("phrases")
    assert tenant.admin("GET", "/admin/attention-rules")["rules"] == [rule]
    row.get_by_role("button", name="Delete").click()
    expect(rules.locator("[data-testid=rule-row]")).to_have_count(0)
    assert tenant.admin("GET", "/admin/attention-rules")["rules"] == []
