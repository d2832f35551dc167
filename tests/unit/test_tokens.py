"""Bearer token verification (docs/product.md W2) with PyJWT: only HS256 with our secret, only our claims."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.adapters.tokens import TokenVerifier, principal_from_claims
from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.identity import Principal, Role
from chalicelib.entrypoints.errors import status_of
from devstack.tokens import mint

pytestmark = pytest.mark.unit

SECRET = "unit-test-secret-" + "0123456789abcdef" * 4  # long enough for HS512 too (no key warnings)


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "agent-1", "tid": "t1", "role": "agent", "exp": int(time.time()) + 600}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def token(secret: str = SECRET, algorithm: str = "HS256", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), secret, algorithm=algorithm)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: dict[str, Any], signature: bytes | None = None, hmac_key: str | None = None) -> str:
    """A token assembled by hand (PyJWT refuses to produce the malicious ones)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if hmac_key is not None:
        signature = hmac.new(hmac_key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature or b'')}"


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(lambda: SECRET)


def refused(verifier: TokenVerifier, raw: str | None) -> str:
    with pytest.raises(Unauthorized) as info:
        verifier.verify(raw)
    assert info.value.code == "unauthorized" and status_of(info.value) == 401
    return info.value.message


# --- accepted ------------------------------------------------------------------------------------


def test_a_valid_token_names_the_caller(verifier: TokenVerifier) -> None:
    assert verifier.verify(token(name="Ann Agent")) == Principal("t1", "agent-1", Role.AGENT, None, "Ann Agent")


@pytest.mark.parametrize("role", ["admin", "supervisor", "agent"])
def test_every_staff_role(verifier: TokenVerifier, role: str) -> None:
    principal = verifier.verify(token(role=role, sub=f"{role}-1"))
    assert principal.role is Role(role) and principal.user_id == f"{role}-1" and principal.workitem_id is None


def test_a_customer_token_is_bound_to_its_workitem(verifier: TokenVerifier) -> None:
    principal = verifier.verify(token(role="customer", sub="cust-1", wid="wi-1"))
    assert principal.is_customer and principal.workitem_id == "wi-1"
    assert principal.recipient_key == "C#wi-1"


def test_staff_tokens_ignore_wid(verifier: TokenVerifier) -> None:
    assert verifier.verify(token(wid="wi-1")).workitem_id is None


def test_mint_round_trips(verifier: TokenVerifier) -> None:
    raw = mint(SECRET, sub="cust-9", tid="acme", role="customer", wid="wi-9", name="Casey", ttl_seconds=60)
    assert verifier.verify(raw) == Principal("acme", "cust-9", Role.CUSTOMER, "wi-9", "Casey")
    header = jwt.get_unverified_header(raw)
    assert header["alg"] == "HS256"
    assert jwt.decode(raw, SECRET, algorithms=["HS256"])["exp"] <= int(time.time()) + 60


def test_the_secret_is_fetched_lazily() -> None:
    calls: list[int] = []

    def secret() -> str:
        calls.append(1)
        return SECRET

    v = TokenVerifier(secret)
    assert calls == []
    v.verify(token())
    assert calls == [1]


def test_non_string_name_is_dropped(verifier: TokenVerifier) -> None:
    assert verifier.verify(token(name={"first": "Ann"})).name is None


def test_ids_with_the_allowed_punctuation(verifier: TokenVerifier) -> None:
    principal = verifier.verify(token(sub="ann@acme.com", tid="tenant_1:eu+x-y"))
    assert principal.user_id == "ann@acme.com" and principal.tenant_id == "tenant_1:eu+x-y"


# --- refused: signature and algorithm ------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, "", "abc", "a.b.c", "a.b", "....", "Bearer x"])
def test_missing_or_garbage(verifier: TokenVerifier, raw: str | None) -> None:
    refused(verifier, raw)


def test_alg_none_is_refused(verifier: TokenVerifier) -> None:
    for alg in ("none", "None", "NONE"):
        refused(verifier, handmade({"alg": alg, "typ": "JWT"}, claims()))
        refused(verifier, handmade({"alg": alg, "typ": "JWT"}, claims(), signature=b"x"))


def test_a_bad_signature_is_refused(verifier: TokenVerifier) -> None:
    refused(verifier, token(secret="another-secret-" + "0123456789abcdef" * 2))
    good = token()
    head, body, sig = good.split(".")
    refused(verifier, f"{head}.{body}.{sig[:-2]}AA")
    forged_body = _b64(json.dumps(claims(role="admin")).encode())
    refused(verifier, f"{head}.{forged_body}.{sig}")  # claims changed, signature kept


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithms_with_our_secret_are_refused(verifier: TokenVerifier, alg: str) -> None:
    refused(verifier, token(algorithm=alg))


def test_rs256_header_with_an_hmac_of_our_secret_is_refused(verifier: TokenVerifier) -> None:
    # Algorithm confusion: the header says RS256 but the signature is an HMAC keyed with the secret.
    refused(verifier, handmade({"alg": "RS256", "typ": "JWT"}, claims(), hmac_key=SECRET))
    # The same trick with the honest HS256 header is, of course, a valid token.
    assert verifier.verify(handmade({"alg": "HS256", "typ": "JWT"}, claims(), hmac_key=SECRET)).user_id == "agent-1"


def test_a_real_rs256_token_is_refused(verifier: TokenVerifier) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(verifier, jwt.encode(claims(role="admin"), key, algorithm="RS256"))


def test_no_secret_configured_refuses_everything() -> None:
    v = TokenVerifier(lambda: "")
    with pytest.raises(Unauthorized):
        v.verify(token())
    with pytest.raises(Unauthorized):
        v.verify(handmade({"alg": "HS256", "typ": "JWT"}, claims(), hmac_key=""))


# --- refused: claims -----------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["sub", "tid", "role", "exp"])
def test_each_required_claim(verifier: TokenVerifier, missing: str) -> None:
    payload = claims()
    del payload[missing]
    refused(verifier, jwt.encode(payload, SECRET, algorithm="HS256"))


def test_expired(verifier: TokenVerifier) -> None:
    message = refused(verifier, token(exp=int(time.time()) - 3600))
    assert "expired" in message


def test_leeway() -> None:
    now = int(time.time())
    lenient = TokenVerifier(lambda: SECRET, leeway_seconds=30)
    strict = TokenVerifier(lambda: SECRET, leeway_seconds=0)
    just_expired = token(exp=now - 10)
    assert lenient.verify(just_expired).user_id == "agent-1"
    refused(strict, just_expired)
    refused(lenient, token(exp=now - 120))
    assert TokenVerifier(lambda: SECRET).verify(token(exp=now - 5)).user_id == "agent-1"  # default leeway 30 s


def test_not_yet_valid(verifier: TokenVerifier) -> None:
    refused(verifier, token(nbf=int(time.time()) + 3600))


@pytest.mark.parametrize("exp", ["tomorrow", None, [1], {"a": 1}])
def test_malformed_exp(verifier: TokenVerifier, exp: Any) -> None:
    payload = claims()
    payload["exp"] = exp
    refused(verifier, jwt.encode(payload, SECRET, algorithm="HS256"))


@pytest.mark.parametrize("role", ["root", "Admin", "AGENT", "", None, 1, ["agent"], "customer "])
def test_bad_role(verifier: TokenVerifier, role: Any) -> None:
    payload = claims()
    payload["role"] = role
    refused(verifier, jwt.encode(payload, SECRET, algorithm="HS256"))


@pytest.mark.parametrize("wid", [None, "", 42, "wi#1", "wi 1", "../wi-1", ["wi-1"]])
def test_customer_needs_a_clean_wid(verifier: TokenVerifier, wid: Any) -> None:
    payload = claims(role="customer", sub="cust-1")
    if wid is not None:
        payload["wid"] = wid
    refused(verifier, jwt.encode(payload, SECRET, algorithm="HS256"))


# Ids become parts of DynamoDB keys joined with '#': anything outside the safe alphabet is refused.
BAD_IDS = [
    "a#b",
    "T#t2",
    "t1#U#admin-1",
    "a b",
    " agent-1",
    "agent-1 ",
    "",
    "-agent",
    ".hidden",
    "a/b",
    "a\tb",
    "é",
    "x" * 129,
    "agent-1\x00",
    "agent-1\r\n",
]


@pytest.mark.parametrize("claim", ["sub", "tid"])
@pytest.mark.parametrize("value", BAD_IDS, ids=repr)
def test_ids_outside_the_safe_alphabet_are_refused(verifier: TokenVerifier, claim: str, value: str) -> None:
    refused(verifier, token(**{claim: value}))


@pytest.mark.parametrize("claim", ["sub", "tid", "wid"])
def test_a_trailing_newline_is_not_a_clean_id(verifier: TokenVerifier, claim: str) -> None:
    """Python's ``$`` also matches just before a final newline, so ``^...$`` lets "agent-1\\n" through.

    BUG: ID_PATTERN in chalicelib/adapters/tokens.py ends with ``$``; it must end with ``\\Z`` (or be
    used with ``fullmatch``). The same pattern guards REST path ids (entrypoints.check_id).
    """
    overrides = {"role": "customer", "wid": "wi-1", claim: "x-1\n"}
    refused(verifier, token(**overrides))


@pytest.mark.parametrize("value", [None, 7, ["agent-1"], {"id": "a"}])
def test_non_string_ids(value: Any) -> None:
    for claim in ("sub", "tid"):
        c = claims()
        c[claim] = value
        with pytest.raises(Unauthorized):
            principal_from_claims(c)


def test_principal_from_claims_is_the_same_check_for_authorizer_context() -> None:
    assert principal_from_claims({"sub": "sup-1", "tid": "t1", "role": "supervisor", "wid": None, "name": None}) == Principal(
        "t1", "sup-1", Role.SUPERVISOR
    )
    with pytest.raises(Unauthorized):
        principal_from_claims({"sub": "cust-1", "tid": "t1", "role": "customer", "wid": None})
    with pytest.raises(Unauthorized):
        principal_from_claims({"sub": "u#1", "tid": "t1", "role": "agent"})


# --- session lifetime (issue 11) --------------------------------------------------------------------


def test_exp_more_than_a_day_ahead_is_refused(verifier: TokenVerifier) -> None:
    assert "24 h" in refused(verifier, token(exp=int(time.time()) + 24 * 3600 + 120))
    assert "24 h" in refused(verifier, token(exp=10**13))  # the year 30000


def test_exp_within_a_day_is_accepted_and_carried(verifier: TokenVerifier) -> None:
    exp = int(time.time()) + 24 * 3600 - 60
    principal = verifier.verify(token(exp=exp, iat=int(time.time())))
    assert principal.expires_at == exp
    assert principal.issued_at is not None and principal.issued_at <= time.time()


@pytest.mark.parametrize("claim", ["exp", "iat"])
def test_exp_and_iat_must_be_json_numbers(verifier: TokenVerifier, claim: str) -> None:
    value = str(int(time.time()) + (600 if claim == "exp" else 0))
    assert "number" in refused(verifier, token(**{claim: value}))
    refused(verifier, token(SECRET, "HS256", **{claim: True}))


def test_iat_is_optional(verifier: TokenVerifier) -> None:
    assert verifier.verify(token()).issued_at is None
