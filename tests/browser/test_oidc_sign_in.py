"""The console signing in at an OIDC issuer (W9, W10): the authorization code flow with PKCE in a real
browser against a local stack that trusts the issuer, then renewal by the refresh token grant.

The issuer is the test's own (tests/support/issuer.py): it signs the user in at once, checks the PKCE
verifier, and hands out short-lived id tokens so that renewal happens within the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, LIVE, TIMEOUT_MS
from tests.e2e.conftest import Stack, running_stack
from tests.support.issuer import Issuer

pytestmark = pytest.mark.browser

CLIENT_ID = "coaching-console"


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    iss = Issuer()
    iss.sign_in_kid = iss.add_key("RSA", "k1")
    yield iss
    iss.stop()


@pytest.fixture(scope="module")
def oidc_stack(request: pytest.FixtureRequest, issuer: Issuer) -> Iterator[Stack]:
    with running_stack(
        request,
        DEVSTACK_SEED="0",
        COACHING_OIDC_ISSUER=issuer.url,
        COACHING_OIDC_AUDIENCE=CLIENT_ID,  # the console bears the id token: its audience is the client id
        COACHING_CONSOLE_CLIENT_ID=CLIENT_ID,
        COACHING_OIDC_JWKS_URL="",
        COACHING_OIDC_TENANT_CLAIM="",
        COACHING_OIDC_ROLE_CLAIM="",
    ) as running:
        yield running


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_sign_in_with_pkce_then_the_refresh_grant_keeps_the_socket_past_the_first_token(
    page: Page, oidc_stack: Stack, issuer: Issuer
) -> None:
    issuer.sign_in_as = {"sub": "ann", "tid": "acme", "role": "agent", "name": "Ann Agent"}
    issuer.id_token_seconds = 8
    issuer.grants.clear()
    page.goto(oidc_stack.base_url + "/")
    page.get_by_test_id("oidc-sign-in").click()
    # To the issuer and back with a code; the console exchanges it (with the verifier) and connects.
    expect(page.get_by_test_id("connection-status")).to_have_text(LIVE)
    signed_in = time.time()
    expect(page.locator(".topbar .user")).to_have_text("Ann Agent")
    assert "code=" not in page.url and "state=" not in page.url, page.url
    assert issuer.grants[0] == "authorization_code"
    # An id token this short is renewed by the refresh token grant and extends the open socket.
    page.wait_for_function("() => window.coachingClient.lastRefresh === 'auth.refresh'", timeout=15_000)
    assert "refresh_token" in issuer.grants
    time.sleep(max(0.0, signed_in + issuer.id_token_seconds + 2 - time.time()))  # the first id token has expired
    assert page.evaluate("async () => (await window.coachingClient.request('ping')) !== undefined")
    expect(page.get_by_test_id("connection-status")).to_have_text(LIVE)


def test_a_refused_sign_in_is_shown_and_nothing_connects(page: Page, oidc_stack: Stack) -> None:
    page.goto(oidc_stack.base_url + "/?error=access_denied&error_description=not%20allowed&state=x")
    expect(page.get_by_role("alert")).to_contain_text("sign-in refused: access_denied (not allowed)")
    expect(page.get_by_test_id("oidc-sign-in")).to_be_visible()
    assert page.evaluate("() => window.coachingClient === undefined")
    assert "error=" not in page.url
