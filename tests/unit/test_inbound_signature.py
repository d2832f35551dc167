"""The inbound webhook signature (docs/product.md W5.2): ``t=<unix seconds>,v1=<hex HMAC-SHA256>``,
accepted within 300 s of now on either side, and not a second beyond. The window is written here as
the number the docs promise, not read from the code under test."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from chalicelib.domain.errors import Unauthorized
from chalicelib.services.webhooks import verify_signature

pytestmark = pytest.mark.unit

SECRET = "inbound-secret-0123456789abcdef"
BODY = b'{"eventId":"e-1","tenantId":"t1","type":"workitem.ended","data":{}}'
NOW = 1_800_000_000
WINDOW = 300  # seconds, docs/product.md W5.2


def signed(at: int, secret: str = SECRET, body: bytes = BODY) -> str:
    """The header a sender computes (independently of the code under test)."""
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


@pytest.mark.parametrize("offset", [0, -1, 1, -WINDOW, WINDOW])
def test_a_signature_within_the_window_either_side_of_now_is_accepted(offset: int) -> None:
    verify_signature(signed(NOW + offset), BODY, [SECRET], NOW)


@pytest.mark.parametrize("offset", [-(WINDOW + 1), WINDOW + 1, 3600, 86_400 * 365, -NOW])
def test_a_signature_dated_outside_the_window_past_or_future_is_refused(offset: int) -> None:
    """A future date is refused like a past one: a captured request signed ahead of time must not
    be replayable for as long as its sender chose."""
    with pytest.raises(Unauthorized, match="window"):
        verify_signature(signed(NOW + offset), BODY, [SECRET], NOW)


def test_the_window_is_checked_against_the_signed_timestamp_not_a_second_one() -> None:
    # A second t= cannot widen the window: the first one is the signed one.
    header = signed(NOW + WINDOW + 1) + f",t={NOW}"
    with pytest.raises(Unauthorized):
        verify_signature(header, BODY, [SECRET], NOW)


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (None, "missing"),
        ("", "missing"),
        ("v1=abc", "malformed"),
        (f"t=,v1={'0' * 64}", "malformed"),
        (f"t=-{NOW},v1={'0' * 64}", "malformed"),
        (f"t={NOW}.5,v1={'0' * 64}", "malformed"),
        (f"t=\u0661\u0662,v1={'0' * 64}", "malformed"),  # Arabic-Indic digits are digits, not ASCII
        (f"t=1{'0' * 12},v1={'0' * 64}", "malformed"),  # 13 digits
        (f"t={NOW},v1={'0' * 64}", "does not match"),
    ],
)
def test_malformed_missing_or_wrong_signatures_are_refused_with_their_reason(header: str | None, why: str) -> None:
    with pytest.raises(Unauthorized, match=why):
        verify_signature(header, BODY, [SECRET], NOW)


def test_the_signature_covers_the_timestamp_the_body_and_the_secret() -> None:
    header = signed(NOW)
    verify_signature(header, BODY, [SECRET], NOW)
    for body, secrets in [(BODY + b" ", [SECRET]), (BODY, ["another-secret-0123456789abcdef"]), (BODY, [""])]:
        with pytest.raises(Unauthorized, match="does not match"):
            verify_signature(header, body, secrets, NOW)
    moved = header.replace(f"t={NOW}", f"t={NOW + 1}")  # the same digest under another timestamp
    with pytest.raises(Unauthorized, match="does not match"):
        verify_signature(moved, BODY, [SECRET], NOW)


def test_any_listed_secret_and_any_v1_may_match() -> None:
    """A tenant's secret and the default are tried in turn; a sender may send several v1 values."""
    other = "another-secret-0123456789abcdef"
    verify_signature(signed(NOW), BODY, ["", other, SECRET], NOW)
    wrong = "0" * 64
    digest = signed(NOW).split("v1=")[1]
    verify_signature(f"t={NOW},v1={wrong}, v1={digest}", BODY, [SECRET], NOW)
    verify_signature(f" t={NOW} , v1={digest} ", BODY, [SECRET], NOW)


def test_a_twelve_digit_timestamp_is_read_not_refused_as_malformed() -> None:
    far = 999_999_999_999  # 12 digits: well formed, and far outside the window
    with pytest.raises(Unauthorized, match="window"):
        verify_signature(signed(far), BODY, [SECRET], NOW)


def test_non_ascii_in_a_v1_value_is_a_mismatch_not_a_crash() -> None:
    with pytest.raises(Unauthorized, match="does not match"):
        verify_signature(f"t={NOW},v1=\u00e9\u00e9", BODY, [SECRET], NOW)
