"""The console on one origin and the API on another, as on AWS: CloudFront serves the console, the REST API
answers on its own execute-api domain (docs/deploy.md, "Calling the API from another origin").

A static server on its own port stands in for CloudFront and the console bucket: it serves the packaged
console (console/dist) and the config.json that ``scripts/publish_console.py`` writes from a stack's
outputs, here pointing at a local stack on another port. That stack admits the console's origin
(``CONSOLE_ORIGINS``, as the template sets it to the distribution's domain), so the browser's preflight and
reads succeed; a second static server on an origin the stack does not admit shows the browser refusing the
very same calls.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, DIST, TIMEOUT_MS
from tests.e2e.conftest import REPO_ROOT, Stack, running_stack
from tests.e2e.tenant import Tenant

pytestmark = pytest.mark.browser


def _publish_console() -> Any:
    spec = importlib.util.spec_from_file_location("scripts_publish_console", REPO_ROOT / "scripts" / "publish_console.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ConsoleSite(ThreadingHTTPServer):
    """console/dist and a config.json, on 127.0.0.1 and a port of its own (the console's origin)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Files)
        self.config: dict[str, Any] = {}
        self.requests: list[str] = []

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Files(BaseHTTPRequestHandler):
    server: ConsoleSite

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.server.requests.append(path)
        if path == "/config.json":
            body, kind = json.dumps(self.server.config).encode(), "application/json"
        else:
            target = (DIST / ("index.html" if path == "/" else path.lstrip("/"))).resolve()
            if not target.is_relative_to(DIST.resolve()) or not target.is_file():
                self.send_error(404)
                return
            body = target.read_bytes()
            kind = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}.get(
                target.suffix, "application/octet-stream"
            )
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(site: ConsoleSite) -> threading.Thread:
    thread = threading.Thread(target=site.serve_forever, name="console-site", daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def sites() -> Iterator[tuple[ConsoleSite, ConsoleSite]]:
    """The console's origin (admitted by the stack) and a stranger's (not admitted)."""
    console, stranger = ConsoleSite(), ConsoleSite()
    for site in (console, stranger):
        _serve(site)
    try:
        yield console, stranger
    finally:
        for site in (console, stranger):
            site.shutdown()
            site.server_close()


@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest, sites: tuple[ConsoleSite, ConsoleSite]) -> Iterator[Stack]:
    """A local stack on its own port that admits the console's origin, and both sites' config.json
    written by scripts/publish_console.py from what would be its outputs."""
    console, stranger = sites
    with running_stack(request, CONSOLE_ORIGINS=console.origin) as stack:
        for site in (console, stranger):
            outputs = {
                "RestApiUrl": stack.base_url + "/",
                "WebsocketUrl": stack.ws_url,
                "ConsoleUrl": site.origin + "/",
            }
            site.config = _publish_console().console_config(outputs, {})
            assert site.config["apiUrl"] == stack.base_url and site.origin not in site.config["apiUrl"]
        yield stack


@pytest.fixture
def cross_tenant(api: Stack) -> Iterator[Tenant]:
    fresh = Tenant(api)
    try:
        yield fresh
    finally:
        fresh.close()


def _open(browser: Browser, site: ConsoleSite, token: str) -> Page:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{site.origin}/?token={token}")
    return page


def test_the_admin_screen_reads_and_writes_the_api_on_another_origin(
    browser: Browser, sites: tuple[ConsoleSite, ConsoleSite], cross_tenant: Tenant
) -> None:
    console, _ = sites
    cross_tenant.template("tpl-1", "Customer is escalating")
    page = _open(browser, console, cross_tenant.admin_token)
    try:
        expect(page.locator("[data-testid=template-row]")).to_contain_text("Customer is escalating")  # GET
        page.get_by_label("Template id").fill("tpl-cors")
        page.get_by_label("Text", exact=True).fill("Written across origins")
        page.get_by_role("button", name="Add template").click()  # PUT with a JSON body: preflighted
        expect(page.locator("[data-testid=template-row]")).to_have_count(2)
        expect(page.get_by_role("alert")).to_have_count(0)
    finally:
        page.context.close()
    templates = cross_tenant.admin("GET", "/admin/templates")["templates"]
    assert {t["templateId"] for t in templates} == {"tpl-1", "tpl-cors"}
    assert "/index.html" in console.requests or "/" in console.requests  # the page did come from the console's origin


def test_the_supervisors_settings_are_saved_across_origins(
    browser: Browser, sites: tuple[ConsoleSite, ConsoleSite], cross_tenant: Tenant, api: Stack
) -> None:
    console, _ = sites
    cross_tenant.users(("sup-1", "supervisor"), ("agent-1", "agent"))
    cross_tenant.team("team-1", ("sup-1",), ("agent-1",))
    token = api.token("sup-1", "supervisor", tid=cross_tenant.tid)
    page = _open(browser, console, token)
    try:
        toggle = page.get_by_label("Agent message pop-ups")
        expect(toggle).to_be_enabled()  # once GET /me/settings answered
        expect(toggle).to_be_checked()
        with page.expect_response(lambda r: r.request.method == "PUT" and r.url.endswith("/me/settings")) as saved:
            toggle.click()
        assert saved.value.status == 200
        expect(toggle).not_to_be_checked()
        expect(page.get_by_role("alert")).to_have_count(0)
    finally:
        page.context.close()
    assert api.rest("GET", "/me/settings", token) == (200, {"agentMessageNotification": False})


def test_a_page_on_an_origin_the_api_does_not_admit_cannot_use_it(
    browser: Browser, sites: tuple[ConsoleSite, ConsoleSite], cross_tenant: Tenant
) -> None:
    _, stranger = sites
    page = _open(browser, stranger, cross_tenant.admin_token)
    try:
        expect(page.get_by_role("alert")).to_be_visible()  # the browser withheld the answer
        page.get_by_label("Template id").fill("tpl-stranger")
        page.get_by_label("Text", exact=True).fill("Must never be written")
        page.get_by_role("button", name="Add template").click()
        expect(page.locator("[data-testid=template-row]")).to_have_count(0)
    finally:
        page.context.close()
    # The preflight found no CORS header for this origin, so the browser never sent the PUT.
    assert cross_tenant.admin("GET", "/admin/templates")["templates"] == []
