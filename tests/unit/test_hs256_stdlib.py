"""HS256 tokens are checked with the standard library (chalicelib/adapters/tokens.py), so verifying
them never loads PyJWT or cryptography. The check must agree with PyJWT's: this file compares both on
generated tokens (headers, claims of every JSON type, tampered signatures), and shows the HS256 path
imports neither library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.adapters.tokens import _REQUIRED, MAX_TOKEN_LIFETIME_SECONDS, TokenVerifier, principal_from_claims
from chalicelib.domain.errors import Unauthorized

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-secret-0123456789abcdef0123456789"
LEEWAY = 30


def reference(token: str) -> bool:
    """Whether PyJWT (HS256 only, the same required claims and leeway) plus the project's extra checks
    (JSON-number times, 24 h ceiling) accept ``token``: what the HS256 path did before it stopped
    importing PyJWT."""
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": _REQUIRED}, leeway=LEEWAY)
    except jwt.InvalidTokenError:
        return False
    for claim in ("exp", "iat", "nbf"):
        value = claims.get(claim)
        if claim in claims and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return False
    if claims["exp"] > time.time() + MAX_TOKEN_LIFETIME_SECONDS:
        return False
    try:
        principal_from_claims(claims)
    except Unauthorized:
        return False
    return True


def ours(token: str) -> bool:
    try:
        TokenVerifier(lambda: SECRET).verify(token)
    except Unauthorized:
        return False
    return True


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(header: dict[str, Any], claims: dict[str, Any], secret: str = SECRET) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest())}"


NOW = int(time.time())


class At(float):
    """A time given as seconds from when the token is signed (resolved by :func:`resolve`)."""


# Times well away from every boundary (leeway, 24 h), so the clock moving during the test changes nothing.
times = st.sampled_from([At(-7200), At(-100), At(600), At(3600.5), At(2 * 86400), At(10**12)])


def resolve(claims: dict[str, Any]) -> dict[str, Any]:
    now = int(time.time())
    return {k: (now + (int(v) if v.is_integer() else float(v)) if isinstance(v, At) else v) for k, v in claims.items()}


odd = st.one_of(
    st.none(), st.booleans(), st.text(max_size=5), st.just(str(NOW + 600)), st.lists(st.integers(), max_size=2), st.just({"a": 1})
)
VALID = {"sub": "agent-1", "tid": "t1", "role": "agent", "exp": At(600), "iat": At(-100)}
# A valid token's claims with at most two changed and at most one removed, so both outcomes are common.
claims_st = st.builds(
    lambda changed, removed: {k: v for k, v in {**VALID, **changed}.items() if k not in removed},
    st.dictionaries(
        st.sampled_from(["sub", "exp", "iat", "nbf", "aud", "jti", "name"]), st.one_of(times, odd, st.just("x")), max_size=2
    ),
    st.sets(st.sampled_from(["sub", "exp", "iat"]), max_size=1),
)
header_st = st.builds(
    lambda changed: {"alg": "HS256", "typ": "JWT", **changed},
    st.dictionaries(
        st.sampled_from(["alg", "typ", "kid", "crit"]),
        st.sampled_from(["HS256", "HS512", "none", "hs256", "RS256", "JWT", 1, ["exp"], "k1"]),
        max_size=1,
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=header_st, claims=claims_st, tamper=st.sampled_from(["none", "none", "none", "secret", "signature", "payload"]))
def test_the_stdlib_check_agrees_with_pyjwt(header: dict[str, Any], claims: dict[str, Any], tamper: str) -> None:
    claims = resolve(claims)
    token = sign(header, claims, "another-secret-0123456789abcdef0123" if tamper == "secret" else SECRET)
    if tamper == "signature":
        token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    elif tamper == "payload":
        head, _, sig = token.split(".")
        token = f"{head}.{_b64(json.dumps({**claims, 'role': 'admin', 'x': 1}).encode())}.{sig}"
    assert ours(token) == reference(token), (header, claims, tamper)


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "..",
        "a.b.c",
        "a.b",
        "a.b.c.d",
        "e30.e30.",
        "eyJhbGciOiJIUzI1NiJ9.e30.x",
        "eyJhbGciOiJIUzI1NiJ9..",
        sign({"alg": "HS256"}, {"sub": "a", "tid": "t1", "role": "agent", "exp": NOW + 60}).replace(".", ".+", 1),
    ],
)
def test_malformed_tokens_are_refused_by_both(token: str) -> None:
    assert not ours(token) and not reference(token)


def test_padding_is_refused_where_pyjwt_tolerates_it() -> None:
    """RFC 7515 segments are base64url without padding; PyJWT tolerates '=', the stdlib check does not."""
    good = sign({"alg": "HS256"}, {"sub": "a", "tid": "t1", "role": "agent", "exp": int(time.time()) + 600})
    assert ours(good) and reference(good)
    assert not ours(good + "=") and reference(good + "=")


def test_nan_and_infinity_are_not_json_numbers() -> None:
    for value in ("NaN", "Infinity", "-Infinity", "1e999"):
        payload = '{"sub": "a", "tid": "t1", "role": "agent", "exp": ' + value + "}"
        signing_input = f"{_b64(json.dumps({'alg': 'HS256'}).encode())}.{_b64(payload.encode())}"
        token = f"{signing_input}.{_b64(hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest())}"
        assert not ours(token), value


def test_verifying_an_hs256_token_loads_neither_pyjwt_nor_cryptography() -> None:
    token = sign({"alg": "HS256", "typ": "JWT"}, {"sub": "a", "tid": "t1", "role": "agent", "exp": int(time.time()) + 600})
    probe = (
        "import json, sys; import app; from chalicelib.adapters.tokens import TokenVerifier; "
        f"p = TokenVerifier(lambda: {SECRET!r}).verify({token!r}); assert p.user_id == 'a'; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'jwt', 'cryptography'})))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == []
