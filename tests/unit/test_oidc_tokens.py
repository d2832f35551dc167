"""Issuer tokens (docs/product.md W9): which RS256/ES256 tokens are accepted and which refused, with
keys generated here and a JWKS served on 127.0.0.1; key rotation, the refetch limit and a broken
identity provider."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from chalicelib.adapters.tokens import OidcConfig, TokenVerifier
from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.identity import Role
from devstack.tokens import mint
from tests.support.issuer import Issuer

pytestmark = pytest.mark.unit

SECRET = "shared-secret-for-hs256-tokens-0123456789"


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    iss = Issuer()
    iss.add_key("RSA", "rsa-1")
    iss.add_key("EC", "ec-1")
    iss.add_key("RSA", "unpublished", publish=False)
    yield iss
    iss.stop()


@pytest.fixture(scope="module")
def other() -> Iterator[Issuer]:
    iss = Issuer()
    iss.add_key("RSA", "rsa-1")  # same kid as the real issuer's key, another key
    yield iss
    iss.stop()


def verifier(issuer: Issuer, **config: Any) -> TokenVerifier:
    settings: dict[str, Any] = {"issuer": issuer.url, "audience": "coaching", "jwks_url": issuer.jwks_url}
    settings.update(config)
    return TokenVerifier(lambda: SECRET, oidc=OidcConfig(**settings), refetch_interval=0)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """An HMAC-SHA256 token signed by hand (PyJWT refuses to use a PEM key as an HMAC secret)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def public_pem(issuer: Issuer, kid: str) -> bytes:
    return (
        issuer.private[kid].public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def with_header(token: str, **header: Any) -> str:
    """``token`` with its header changed (the signature is kept)."""
    _, payload, signature = token.split(".")
    return f"{_b64(json.dumps(header).encode())}.{payload}.{signature}"


ACCEPTED: list[tuple[str, dict[str, Any], dict[str, Any], tuple[str, str, Role, str | None]]] = [
    ("RS256, aud a string", {"kid": "rsa-1"}, {}, ("t1", "u-1", Role.AGENT, None)),
    (
        "ES256, aud a list naming us",
        {"kid": "ec-1", "aud": ["other", "coaching"], "role": "supervisor"},
        {},
        ("t1", "u-1", Role.SUPERVISOR, None),
    ),
    (
        "name from the name claim",
        {"kid": "rsa-1", "name": "Ann", "email": "ann@example.com"},
        {},
        ("t1", "u-1", Role.AGENT, "Ann"),
    ),
    ("name from email", {"kid": "rsa-1", "email": "ann@example.com"}, {}, ("t1", "u-1", Role.AGENT, "ann@example.com")),
    (
        "Cognito access token: client_id, custom:tid, cognito:groups",
        {
            "kid": "rsa-1",
            "aud": None,
            "token_use": "access",
            "client_id": "coaching",
            "tid": None,
            "role": None,
            "custom:tid": "acme",
            "cognito:groups": ["billing", "supervisor", "admin"],
        },
        {"tenant_claim": "custom:tid", "role_claim": "cognito:groups"},
        ("acme", "u-1", Role.SUPERVISOR, None),
    ),
    (
        "list role claim: the first known role",
        {"kid": "ec-1", "roles": ["x", "admin", "agent"], "role": None},
        {"role_claim": "roles"},
        ("t1", "u-1", Role.ADMIN, None),
    ),
    ("nbf in the past", {"kid": "rsa-1", "nbf": int(time.time()) - 60}, {}, ("t1", "u-1", Role.AGENT, None)),
    ("JWKS URL from the discovery document", {"kid": "rsa-1"}, {"jwks_url": ""}, ("t1", "u-1", Role.AGENT, None)),
]


@pytest.mark.parametrize(("case", "claims", "config", "expected"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted(
    issuer: Issuer, case: str, claims: dict[str, Any], config: dict[str, Any], expected: tuple[str, str, Role, str | None]
) -> None:
    claims = dict(claims)
    kid = claims.pop("kid")
    principal = verifier(issuer, **config).verify(issuer.token(kid, **claims))
    assert (principal.tenant_id, principal.user_id, principal.role, principal.name) == expected
    assert principal.federated and principal.workitem_id is None
    assert principal.expires_at is not None and principal.issued_at is not None


def _refused_tokens(issuer: Issuer, other: Issuer) -> list[tuple[str, str, dict[str, Any]]]:
    now = int(time.time())
    pem = public_pem(issuer, "rsa-1")
    return [
        ("wrong iss", issuer.token("rsa-1", iss="https://evil.example.com"), {}),
        ("no iss", issuer.token("rsa-1", iss=None), {}),
        ("wrong aud", issuer.token("rsa-1", aud="someone-else"), {}),
        ("aud list without us", issuer.token("rsa-1", aud=["a", "b"]), {}),
        ("no aud, not an access token", issuer.token("rsa-1", aud=None, client_id="coaching"), {}),
        ("access token of another client", issuer.token("rsa-1", aud=None, token_use="access", client_id="x"), {}),
        ("expired", issuer.token("rsa-1", iat=now - 7200, exp=now - 3600), {}),
        ("no exp", issuer.token("rsa-1", exp=None), {}),
        ("exp more than 24 h ahead", issuer.token("rsa-1", exp=now + 25 * 3600), {}),
        ("exp a string", issuer.token("rsa-1", exp=str(now + 600)), {}),
        ("future nbf", issuer.token("rsa-1", nbf=now + 3600), {}),
        ("nbf a string", issuer.token("rsa-1", nbf=str(now - 60)), {}),
        ("no sub", issuer.token("rsa-1", sub=None), {}),
        ("unknown kid", issuer.token("unpublished"), {}),
        ("no kid", jwt.encode(issuer.claims(), issuer.private["rsa-1"], algorithm="RS256"), {}),
        ("key of another issuer (same kid)", other.token("rsa-1", iss=issuer.url), {}),
        (
            "HS256 signed with the issuer's public key (PEM)",
            hand_signed({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, issuer.claims(), pem),
            {},
        ),
        (
            "HS256 signed with the issuer's public JWK",
            hand_signed({"alg": "HS256", "kid": "rsa-1"}, issuer.claims(), json.dumps(issuer.jwk("rsa-1")).encode()),
            {},
        ),
        (
            "RS256 header, signed with the shared secret",
            hand_signed({"alg": "RS256", "kid": "rsa-1"}, issuer.claims(), SECRET.encode()),
            {},
        ),
        ("alg mismatch: ES256 header on an RSA key", with_header(issuer.token("rsa-1"), alg="ES256", kid="rsa-1"), {}),
        ("alg mismatch: RS256 header on an EC key", with_header(issuer.token("ec-1"), alg="RS256", kid="ec-1"), {}),
        ("RS384 is not accepted", issuer.token("rsa-1", alg="RS384"), {}),
        ("alg none", jwt.encode(issuer.claims(), None, algorithm="none", headers={"kid": "rsa-1"}), {}),  # type: ignore[arg-type]
        ("signature stripped", issuer.token("rsa-1").rsplit(".", 1)[0] + ".", {}),
        ("missing tenant claim", issuer.token("rsa-1", tid=None), {}),
        ("malformed tenant claim", issuer.token("rsa-1", tid="a#b"), {}),
        ("tenant under another claim", issuer.token("rsa-1", tid="t1"), {"tenant_claim": "custom:tid"}),
        ("missing role claim", issuer.token("rsa-1", role=None), {}),
        ("role claim naming no known role", issuer.token("rsa-1", role="superuser"), {}),
        (
            "list role claim naming no known role",
            issuer.token("rsa-1", None, role=None, **{"cognito:groups": ["billing"]}),
            {"role_claim": "cognito:groups"},
        ),
        ("an issuer never makes a customer", issuer.token("rsa-1", role="customer", wid="wi-1"), {}),
        ("no audience configured", issuer.token("rsa-1"), {"audience": ""}),
        ("garbage", "not.a.token", {}),
    ]


def test_refused(issuer: Issuer, other: Issuer) -> None:
    accepted = []
    for case, token, config in _refused_tokens(issuer, other):
        try:
            verifier(issuer, **config).verify(token)
        except Unauthorized:
            continue
        accepted.append(case)
    assert accepted == []


def test_the_table_refuses_for_the_reason_named(issuer: Issuer, other: Issuer) -> None:
    """Each refused token differs from an accepted one only in what the case names (so the table
    cannot pass because every token is broken)."""
    v = verifier(issuer)
    assert v.verify(issuer.token("rsa-1")).role is Role.AGENT
    assert verifier(other).verify(other.token("rsa-1")).federated
    with pytest.raises(Unauthorized, match="issuer"):
        v.verify(issuer.token("rsa-1", iss="https://evil.example.com"))
    with pytest.raises(Unauthorized, match="aud"):
        v.verify(issuer.token("rsa-1", aud="someone-else"))
    with pytest.raises(Unauthorized, match="expired"):
        v.verify(issuer.token("rsa-1", exp=int(time.time()) - 3600))
    with pytest.raises(Unauthorized, match="not valid yet"):
        v.verify(issuer.token("rsa-1", nbf=int(time.time()) + 3600))
    with pytest.raises(Unauthorized, match="signing key"):
        v.verify(issuer.token("unpublished"))
    with pytest.raises(Unauthorized, match="does not match"):
        v.verify(with_header(issuer.token("rsa-1"), alg="ES256", kid="rsa-1"))
    with pytest.raises(Unauthorized, match="role"):
        v.verify(issuer.token("rsa-1", role="superuser"))


def test_shared_secret_tokens_still_work_beside_the_issuer(issuer: Issuer) -> None:
    v = verifier(issuer)
    principal = v.verify(mint(SECRET, sub="cust-1", tid="t1", role="customer", wid="wi-1"))
    assert principal.role is Role.CUSTOMER and principal.workitem_id == "wi-1" and not principal.federated
    # The shared secret never verifies a token whose header claims the issuer's algorithm.
    forged = hand_signed({"alg": "RS256", "kid": "rsa-1"}, issuer.claims(), SECRET.encode())
    with pytest.raises(Unauthorized):
        v.verify(forged)


def test_issuer_tokens_are_refused_when_no_issuer_is_configured(issuer: Issuer) -> None:
    with pytest.raises(Unauthorized, match="not accepted"):
        TokenVerifier(lambda: SECRET).verify(issuer.token("rsa-1"))


# --- the key set ----------------------------------------------------------------------------------


@pytest.fixture
def fresh() -> Iterator[Issuer]:
    iss = Issuer()
    iss.add_key("RSA", "k1")
    yield iss
    iss.stop()


def test_keys_are_fetched_once_and_cached(fresh: Issuer) -> None:
    v = verifier(fresh)
    for _ in range(5):
        v.verify(fresh.token("k1"))
    assert fresh.jwks_requests == 1


class SteppedClock:
    """``time`` for the token adapter, with a monotonic clock the test moves on (the rest is the real module)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_rotated_key_is_fetched_on_unknown_kid_at_most_once_per_interval(fresh: Issuer, monkeypatch: pytest.MonkeyPatch) -> None:
    import chalicelib.adapters.tokens as tokens_module

    clock = SteppedClock()
    monkeypatch.setattr(tokens_module, "time", clock)
    # An interval no loaded machine can exhaust by itself; the test moves the clock past it.
    v = TokenVerifier(lambda: SECRET, oidc=OidcConfig(fresh.url, "coaching", fresh.jwks_url), refetch_interval=60.0)
    v.verify(fresh.token("k1"))
    fresh.add_key("RSA", "k2")  # rotation: a new key is published
    with pytest.raises(Unauthorized):  # fetched moments ago: not fetched again yet
        v.verify(fresh.token("k2"))
    with pytest.raises(Unauthorized):
        v.verify(fresh.token("k2"))
    assert fresh.jwks_requests == 1
    clock.offset += 61
    assert v.verify(fresh.token("k2")).federated  # no restart
    assert v.verify(fresh.token("k1")).federated
    assert fresh.jwks_requests == 2
    for _ in range(5):  # a stream of tokens naming an unknown kid right after a fetch: no fetch
        with pytest.raises(Unauthorized):
            v.verify(with_header(fresh.token("k1"), alg="RS256", kid="nobody"))
    assert fresh.jwks_requests == 2


@pytest.mark.parametrize("mode", ["hang", "garbage"])
def test_a_broken_jwks_endpoint_refuses_quickly(fresh: Issuer, mode: str) -> None:
    fresh.mode = mode
    v = TokenVerifier(lambda: SECRET, oidc=OidcConfig(fresh.url, "coaching", fresh.jwks_url), fetch_deadline=0.5)
    started = time.monotonic()
    with pytest.raises(Unauthorized):
        v.verify(fresh.token("k1"))
    # Refused after the 0.5 s fetch timeout, long before the endpoint would answer (it hangs for 60 s);
    # generous for a loaded machine (how quick it is belongs to make bench).
    assert time.monotonic() - started < 20
    with pytest.raises(Unauthorized):  # within the interval: refused without fetching again
        v.verify(fresh.token("k1"))
    assert fresh.jwks_requests == 1
    # HS256 tokens do not depend on the identity provider.
    assert v.verify(mint(SECRET, sub="a", tid="t1", role="agent")).role is Role.AGENT


def test_known_keys_outlive_a_broken_endpoint(fresh: Issuer) -> None:
    v = TokenVerifier(
        lambda: SECRET, oidc=OidcConfig(fresh.url, "coaching", fresh.jwks_url), refetch_interval=0, fetch_deadline=0.5
    )
    v.verify(fresh.token("k1"))
    fresh.mode = "garbage"
    with pytest.raises(Unauthorized):  # refetched: garbage, and the kid is still unknown
        v.verify(with_header(fresh.token("k1"), alg="RS256", kid="k9"))
    assert v.verify(fresh.token("k1")).federated


def test_discovery_then_keys_with_the_deployed_interval(fresh: Issuer) -> None:
    """The discovery document and the key set each get their own fetch slot (a first token needs both)."""
    v = TokenVerifier(lambda: SECRET, oidc=OidcConfig(fresh.url, "coaching"))
    assert v.verify(fresh.token("k1")).federated
    assert (fresh.discovery_requests, fresh.jwks_requests) == (1, 1)
    assert v.verify(fresh.token("k1")).federated
    assert (fresh.discovery_requests, fresh.jwks_requests) == (1, 1)


# --- bounded fetches: a total deadline, no lock held while fetching, plausible headers only ---------


def unknown_kid_token(issuer: Issuer, kid: str = "k9", **header: Any) -> str:
    """A token of the issuer's that names a key it never published (signed with k1)."""
    return with_header(issuer.token("k1"), alg="RS256", kid=kid, **header)


@pytest.mark.parametrize("mode", ["trickle", "trickle-headers"])
def test_a_trickling_jwks_is_cut_off_at_its_total_deadline(fresh: Issuer, mode: str) -> None:
    """One byte every 0.2 s keeps every socket read short; only a total deadline ends the fetch."""
    fresh.mode, fresh.trickle_seconds = mode, 0.2
    v = TokenVerifier(
        lambda: SECRET, oidc=OidcConfig(fresh.url, "coaching", fresh.jwks_url), refetch_interval=0, fetch_deadline=0.5
    )
    started = time.monotonic()
    with pytest.raises(Unauthorized, match="signing key"):
        v.verify(fresh.token("k1"))
    took = time.monotonic() - started
    # The whole key set would take minutes at this pace: the cut came from the deadline (plus scheduling).
    assert took < 0.5 + 2.0, took
    assert fresh.jwks_requests == 1 and fresh.jwks_answered == 0


def test_a_trickling_discovery_document_is_cut_off_at_the_same_deadline(fresh: Issuer) -> None:
    fresh.discovery_mode = "trickle"
    v = TokenVerifier(lambda: SECRET, oidc=OidcConfig(fresh.url, "coaching"), refetch_interval=0, fetch_deadline=0.5)
    started = time.monotonic()
    with pytest.raises(Unauthorized):
        v.verify(fresh.token("k1"))
    assert time.monotonic() - started < 0.5 + 2.0
    assert (fresh.discovery_requests, fresh.jwks_requests) == (1, 0)


def test_a_token_whose_key_is_cached_never_waits_for_a_fetch(fresh: Issuer) -> None:
    """While one caller's unknown kid holds a fetch from a trickling JWKS, callers whose key is cached go
    through: the fetch holds no lock they need (PyJWT's client held one for the whole fetch)."""
    v = TokenVerifier(
        lambda: SECRET, oidc=OidcConfig(fresh.url, "coaching", fresh.jwks_url), refetch_interval=0, fetch_deadline=30.0
    )
    assert v.verify(fresh.token("k1")).federated  # k1 cached
    fresh.mode, fresh.trickle_seconds = "trickle", 0.2
    outcome: list[BaseException] = []

    def unknown() -> None:
        try:
            v.verify(unknown_kid_token(fresh))
        except Unauthorized as exc:
            outcome.append(exc)

    stuck = threading.Thread(target=unknown, daemon=True)
    stuck.start()
    while fresh.jwks_requests < 2:  # the refetch has begun
        time.sleep(0.01)
    for _ in range(3):
        assert v.verify(fresh.token("k1")).federated
    assert stuck.is_alive() and not outcome  # the fetch is still trickling in
    fresh.stop()  # the trickle ends; the stuck caller is refused
    stuck.join(10)
    assert not stuck.is_alive() and len(outcome) == 1


def test_callers_of_one_unknown_kid_share_one_fetch(fresh: Issuer) -> None:
    v = TokenVerifier(lambda: SECRET, oidc=OidcConfig(fresh.url, "coaching", fresh.jwks_url), refetch_interval=0)
    v.verify(fresh.token("k1"))
    fresh.add_key("RSA", "k2")
    fresh.mode, fresh.trickle_seconds = "trickle", 0.0005  # slow enough for the callers to meet
    results: list[bool] = []
    callers = [threading.Thread(target=lambda: results.append(v.verify(fresh.token("k2")).federated)) for _ in range(4)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(30)
    assert results == [True] * 4
    assert fresh.jwks_requests <= 3  # 1 at first, then one shared by the callers (a latecomer may start another)


@pytest.mark.parametrize(
    ("case", "header", "claims"),
    [
        ("no kid", {"kid": None}, {}),
        ("empty kid", {"kid": ""}, {}),
        ("kid not a string", {"kid": 7}, {}),
        ("kid with a control character", {"kid": "k\n9"}, {}),
        ("kid with a space", {"kid": "k 9"}, {}),
        ("kid of 300 characters", {"kid": "k" * 300}, {}),
        ("a critical extension", {"kid": "k9", "crit": ["b64"], "b64": False}, {}),
        ("another issuer's token", {"kid": "k9"}, {"iss": "https://evil.example.com"}),
        ("no issuer", {"kid": "k9"}, {"iss": None}),
    ],
)
def test_only_a_plausible_token_of_our_issuer_may_cause_a_fetch(
    fresh: Issuer, case: str, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    """An unsigned token naming an unknown kid must not make the service fetch at will: the header and
    the issuer are checked before any refetch."""
    v = TokenVerifier(lambda: SECRET, oidc=OidcConfig(fresh.url, "coaching", fresh.jwks_url), refetch_interval=0)
    v.verify(fresh.token("k1"))
    token = fresh.token("k1", **claims)
    fields = {"alg": "RS256", **{k: val for k, val in header.items() if val is not None}}
    with pytest.raises(Unauthorized):
        v.verify(with_header(token, **fields))
    assert fresh.jwks_requests == 1, case
    with pytest.raises(Unauthorized):
        v.verify(unknown_kid_token(fresh, "k8"))
    assert fresh.jwks_requests == 2  # the plausible twin does fetch (the interval is 0 here)


def test_an_unknown_kid_is_remembered_and_fetches_once(fresh: Issuer) -> None:
    v = TokenVerifier(lambda: SECRET, oidc=OidcConfig(fresh.url, "coaching", fresh.jwks_url), refetch_interval=0)
    v.verify(fresh.token("k1"))
    for _ in range(5):
        with pytest.raises(Unauthorized):
            v.verify(unknown_kid_token(fresh, "nobody"))
    assert fresh.jwks_requests == 2  # fetched once for "nobody", then known to be nobody's
    fresh.add_key("RSA", "k2")
    assert v.verify(fresh.token("k2")).federated  # another kid still fetches
    assert fresh.jwks_requests == 3


def test_an_old_key_set_is_refreshed_behind_the_callers(fresh: Issuer) -> None:
    """Past its lifespan the key set is fetched again in the background: the caller is served from the
    cache at once, and a key the issuer withdrew stops working once the new set has arrived."""
    fresh.add_key("RSA", "k2")
    v = TokenVerifier(
        lambda: SECRET, oidc=OidcConfig(fresh.url, "coaching", fresh.jwks_url), refetch_interval=0, keys_lifespan=0.2
    )
    assert v.verify(fresh.token("k2")).federated
    fresh.published.remove("k2")
    fresh.mode, fresh.trickle_seconds = "trickle", 0.002
    time.sleep(0.3)
    assert v.verify(fresh.token("k2")).federated  # served from the cache while the refresh trickles in
    deadline = time.monotonic() + 20
    while fresh.jwks_requests < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    fresh.mode = "ok"
    refused = False
    while not refused and time.monotonic() < deadline:
        try:
            v.verify(fresh.token("k2"))
            time.sleep(0.05)
        except Unauthorized:
            refused = True
    assert refused
    assert v.verify(fresh.token("k1")).federated
