"""The console's security headers in a real browser (W10.5): its Content-Security-Policy holds in every
role's screen, a page on another origin cannot frame it, and a token given in the address never
reaches a Referer (nor stays in the address)."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect

from tests.browser.conftest import DESKTOP, LIVE, TIMEOUT_MS, OpenAs
from tests.e2e.conftest import Stack
from tests.e2e.tenant import Tenant

pytestmark = pytest.mark.browser


@contextlib.contextmanager
def attacker_site(html: bytes) -> Iterator[str]:
    """A page on another origin (another port of 127.0.0.1: a public origin could not frame a loopback
    one at all, which would prove nothing)."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            parsed[words[0].lower()] = words[1:]
    return parsed


def _roles(tenant: Tenant) -> dict[str, str]:
    tenant.teams(("team-1", ("sup1",), ("agent1",)))
    wid = tenant.assign("wi-h", "chat", "agent1")
    return {
        "supervisor": tenant.token("sup1", "supervisor"),
        "agent": tenant.token("agent1", "agent"),
        "customer": tenant.token(f"cust-{wid}", "customer", wid=wid),
        "admin": tenant.token("admin-1", "admin"),
    }


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    fresh = browser.new_context(viewport=DESKTOP)
    fresh.set_default_timeout(TIMEOUT_MS)
    try:
        yield fresh
    finally:
        fresh.close()


def test_every_console_file_carries_the_security_headers(context: BrowserContext, stack: Stack) -> None:
    page = context.new_page()
    answer = page.goto(f"{stack.base_url}/")
    assert answer is not None
    expect(page.locator("[data-testid=demo-user]").first).to_be_visible()
    seen = {"/": answer.all_headers()}
    for path in ("/assets/main.js", "/assets/app.css", "/config.json", "/console/demo-users"):
        seen[path] = context.request.get(stack.base_url + path).headers
    for path, headers in seen.items():
        assert headers.get("x-content-type-options") == "nosniff", (path, headers)
        assert headers.get("referrer-policy") == "no-referrer", (path, headers)
    document = seen["/"]
    assert document.get("x-frame-options") == "DENY"
    policy = _directives(document["content-security-policy"])
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert policy["default-src"] == ["'none'"] and policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    # The REST API (this origin) and the WebSocket stay reachable.
    assert "'self'" in policy["connect-src"] and f"ws://{stack.base_url.removeprefix('http://')}" in policy["connect-src"]


# Records the policy's violations in the page (an init script runs outside the page's policy).
RECORD_VIOLATIONS = (
    "window.__violations = [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.__violations.push(e.effectiveDirective + ' ' + e.blockedURI));"
)
INJECT_INLINE_SCRIPT = (
    "() => { const s = document.createElement('script'); s.textContent = 'window.injected = true';"
    " document.head.appendChild(s); }"
)


def test_a_page_on_another_origin_cannot_frame_the_console(context: BrowserContext, stack: Stack, tenant: Tenant) -> None:
    """Clickjacking: an attacker's page frames the signed-in console; the browser refuses to render it."""
    token = _roles(tenant)["supervisor"]
    served: list[str] = []
    html = (
        "<!doctype html><title>win a prize</title>"
        f'<iframe id="victim" name="victim" src="{stack.base_url}/?token={token}"></iframe>'
        f'<iframe id="control" name="control" src="{stack.base_url}/health"></iframe>'
    ).encode()
    page = context.new_page()
    page.on("request", lambda r: served.append(r.url))
    with attacker_site(html) as attacker:  # another origin (another port), on the same machine
        page.goto(attacker)
        # The control: the same page frames another answer of the stack (no frame-ancestors) without trouble.
        expect(page.frame_locator("#control").locator("body")).to_contain_text('"status"')
    assert f"{stack.base_url}/?token={token}" in served  # the browser did ask for the console
    frames = {f.name: f for f in page.frames}
    assert frames["control"].url == f"{stack.base_url}/health"
    assert not frames["victim"].url.startswith(stack.base_url), frames["victim"].url  # an error page in its place
    assert page.frame_locator("#victim").locator("#app").count() == 0
    assert page.frame_locator("#victim").locator("[data-testid=connection-status]").count() == 0


def test_every_role_signs_in_by_address_under_the_policy_with_no_token_in_a_referer(
    context: BrowserContext, stack: Stack, tenant: Tenant
) -> None:
    """`/?token=` (every role) and `/#token=` sign in and the screen goes live with no violation of the
    policy; no request of the page carries the token in a Referer, and the address no longer shows it;
    then a script injected into the page (what a stored XSS would do) is refused."""
    context.add_init_script(RECORD_VIOLATIONS)
    tokens = _roles(tenant)
    visits = [*(("query", role, token) for role, token in tokens.items()), ("fragment", "agent", tokens["agent"])]
    for where, role, token in visits:
        requests: list[Request] = []

        def record(request: Request, into: list[Request] = requests) -> None:  # Playwright wants a function
            into.append(request)

        page = context.new_page()
        page.on("request", record)
        page.goto(f"{stack.base_url}/{'?' if where == 'query' else '#'}token={token}")
        if role == "admin":
            expect(page.locator("main")).to_contain_text("Users")
        else:
            expect(page.get_by_test_id("connection-status")).to_have_text(LIVE)
        assert page.evaluate("() => window.__violations") == [], role
        assert token not in page.url, (role, page.url)
        assert len(requests) >= 4  # the page, its script and style, config.json (and the API)
        for request in requests:
            referer = request.all_headers().get("referer", "")
            assert token not in referer and not re.search(r"token=", referer), (role, request.url, referer)
            if request.url != f"{stack.base_url}/?token={token}":
                assert token not in request.url or "/ws" in request.url, (role, request.url)
        page.evaluate(INJECT_INLINE_SCRIPT)
        page.wait_for_function("() => window.__violations.length > 0")
        assert page.evaluate("() => window.injected") is None, role
        assert page.evaluate("() => window.__violations") == ["script-src-elem inline"], role
        page.close()


def test_a_token_in_the_address_wins_over_the_tabs_stored_one(open_as: OpenAs, tenant: Tenant, stack: Stack) -> None:
    tokens = _roles(tenant)
    page: Page = open_as(tokens["supervisor"])
    page.goto(f"{stack.base_url}/#token={tokens['agent']}")
    page.reload()
    expect(page.locator(".role")).to_have_text("Agent")
