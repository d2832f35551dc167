"""JWT verification (docs/product.md W2, W9): the token is the authority for who the caller is.

Two kinds of token are accepted, told apart by the header's ``alg`` and never mixed:

* ``HS256`` tokens signed with the shared secret (the integration, the local stack, customers):
  checked with the standard library's ``hmac`` (:func:`decode_hs256`), so verifying them never
  imports PyJWT or the cryptography package it loads (about 50-170 ms on a cold start);
* ``RS256`` / ``ES256`` tokens of one configured OIDC issuer, verified by PyJWT with the issuer's
  public keys from its JWKS (``PyJWKClient``). The key's type must match ``alg``; a symmetric key in
  the JWKS is never used, and the shared secret never verifies an issuer token.

Nothing here is imported at ``import app`` beyond the standard library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import re
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.identity import DIRECTORY_ROLES, Principal, Role, epoch_seconds
from chalicelib.domain.ids import ID_PATTERN

if TYPE_CHECKING:
    from jwt import PyJWK, PyJWKClient

log = logging.getLogger(__name__)

_REQUIRED = ["sub", "tid", "role", "exp"]
# A token may live at most this long from now: a stolen long-lived token would be a standing key.
MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600
# The issuer's algorithms and the JWK key type each needs.
ISSUER_ALGORITHMS = ("RS256", "ES256")
# Fetches from the issuer (discovery document, JWKS): each may take this long, and there is at most
# one every REFETCH_INTERVAL_SECONDS, whatever its outcome, so a slow or broken identity provider
# costs one $connect a few seconds and every other one nothing.
FETCH_TIMEOUT_SECONDS = 2.0
REFETCH_INTERVAL_SECONDS = 10.0
# How long a fetched key set is used before it is fetched again (an unknown kid fetches sooner), and
# how long a key set may still be used while the issuer cannot be reached.
KEYS_LIFESPAN_SECONDS = 600.0
STALE_KEYS_SECONDS = 3600.0
_MAX_DOCUMENT_BYTES = 256 * 1024


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str = ""
    tenant_claim: str = "tid"
    role_claim: str = "role"


class TokenVerifier:
    """Verifies bearer tokens: HS256 with a secret fetched lazily (it may live in SSM), and, when an
    issuer is configured, its RS256/ES256 tokens."""

    def __init__(
        self,
        secret: Callable[[], str],
        leeway_seconds: int = 30,
        oidc: OidcConfig | None = None,
        *,
        refetch_interval: float = REFETCH_INTERVAL_SECONDS,
        fetch_timeout: float = FETCH_TIMEOUT_SECONDS,
    ) -> None:
        self._secret = secret
        self._leeway = leeway_seconds
        self._oidc = oidc
        self._keys = IssuerKeys(oidc, refetch_interval=refetch_interval, timeout=fetch_timeout) if oidc else None

    def verify(self, token: str | None) -> Principal:
        if not token:
            raise Unauthorized("a bearer token is required")
        alg = unverified_header(token).get("alg")
        if alg == "HS256":
            return self._verify_shared(token)
        if alg in ISSUER_ALGORITHMS:
            import jwt

            return self._verify_issuer(jwt, token, str(alg))
        raise Unauthorized("the token's algorithm is not accepted")

    def _verify_shared(self, token: str) -> Principal:
        secret = self._secret()
        if not secret:
            raise Unauthorized("token verification is not configured")
        claims = decode_hs256(token, secret, leeway=self._leeway)
        check_claims(claims, required=_REQUIRED, leeway=self._leeway)
        return principal_from_claims(claims)

    def _verify_issuer(self, jwt: Any, token: str, alg: str) -> Principal:
        if self._oidc is None or self._keys is None or not self._oidc.audience:
            raise Unauthorized("tokens of an identity provider are not accepted here")
        key = self._keys.key_for(token)
        # The key decides the algorithm: its type (and its own "alg", when the JWKS names one) must
        # give the header's. A symmetric ("oct") key never does.
        if key.algorithm_name != alg or key.public_key_use not in (None, "sig"):
            raise Unauthorized("the token's algorithm does not match the issuer's key")
        claims = self._decode(
            jwt, token, key.key, alg, options={"require": ["sub", "iss", "exp"], "verify_aud": False}, issuer=self._oidc.issuer
        )
        if not _audience_matches(claims, self._oidc.audience):
            raise Unauthorized("the token is not meant for this service (aud)")
        return principal_from_issuer_claims(claims, self._oidc)

    def _decode(
        self, jwt: Any, token: str, key: Any, alg: str, *, options: dict[str, Any], issuer: str | None = None
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],  # one algorithm, chosen above: never "none", never the other kind
                options=options,
                issuer=issuer,
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthorized("the token is not valid yet (nbf/iat)") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthorized("the token's issuer is not accepted") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("the token is not valid") from exc
        check_claims(claims, required=options["require"], leeway=self._leeway)
        return claims


# --- HS256 with the standard library ------------------------------------------------------------

_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


def _segment(text: str) -> bytes:
    """A base64url segment (no padding, no other characters), decoded."""
    if not _SEGMENT.fullmatch(text) or len(text) % 4 == 1:
        raise Unauthorized("the token is not valid")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise Unauthorized("the token is not valid") from exc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)  # no NaN / Infinity
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Unauthorized(f"the token's {what} is not valid JSON") from exc
    if not isinstance(value, dict):
        raise Unauthorized(f"the token's {what} is not a JSON object")
    return value


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS (three dot-separated segments), not yet trusted."""
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthorized("the token is not valid")
    return _json_object(_segment(parts[0]), "header")


def decode_hs256(token: str, secret: str, *, leeway: int) -> dict[str, Any]:
    """The claims of an HS256 token whose signature ``secret`` makes (constant-time compare). Only
    HS256: the header must say so and name no critical extension."""
    header_b64, payload_b64, signature_b64 = token.split(".") if token.count(".") == 2 else ("", "", "")
    header = unverified_header(token)
    if header.get("alg") != "HS256" or "crit" in header or ("kid" in header and not isinstance(header["kid"], str)):
        raise Unauthorized("the token is not valid")
    expected = hmac.new(secret.encode(), f"{header_b64}.{payload_b64}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _segment(signature_b64)):
        raise Unauthorized("the token is not valid")
    claims = _json_object(_segment(payload_b64), "payload")
    if claims.get("aud"):  # a token meant for some audience is not one of ours (as PyJWT refuses it)
        raise Unauthorized("the token is not valid")
    return claims


def check_claims(claims: dict[str, Any], *, required: list[str], leeway: int) -> None:
    """The checks every token gets, whoever signed it: required claims present; ``exp``, ``iat`` and
    ``nbf`` JSON numbers (RFC 7519); not expired, not before its time, ``exp`` at most 24 h ahead."""
    for claim in required:
        if claims.get(claim) is None:
            raise Unauthorized(f"the token lacks the {claim} claim")
    for claim in ("exp", "iat", "nbf"):
        value = claims.get(claim)
        if claim in claims and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise Unauthorized(f"the token's {claim} claim must be a JSON number")
    if "jti" in claims and not isinstance(claims["jti"], str):
        raise Unauthorized("the token is not valid")
    now = time.time()
    if claims["exp"] <= now - leeway:
        raise Unauthorized("the token has expired")
    for claim in ("iat", "nbf"):
        if claim in claims and claims[claim] > now + leeway:
            raise Unauthorized(f"the token is not valid yet ({claim})")
    if claims["exp"] > now + MAX_TOKEN_LIFETIME_SECONDS:
        raise Unauthorized("the token's exp lies more than 24 h ahead")


def _audience_matches(claims: dict[str, Any], audience: str) -> bool:
    """``aud`` names this service; a Cognito access token has no ``aud`` but its ``client_id``."""
    aud = claims.get("aud")
    if aud is not None:
        return aud == audience if isinstance(aud, str) else isinstance(aud, list) and audience in aud
    return claims.get("token_use") == "access" and claims.get("client_id") == audience


def principal_from_issuer_claims(claims: dict[str, Any], config: OidcConfig) -> Principal:
    """The caller of an issuer token: tenant and role from the configured claims. A list role claim
    (``cognito:groups``) gives its first known role; customers never come from an issuer."""
    raw_role = claims.get(config.role_claim)
    names = raw_role if isinstance(raw_role, list) else [raw_role]
    known = [Role(n) for n in names if isinstance(n, str) and n in {r.value for r in DIRECTORY_ROLES}]
    if not known:
        raise Unauthorized(f"the token's {config.role_claim} claim names none of admin, supervisor, agent")
    tid = claims.get(config.tenant_claim)
    if not isinstance(tid, str) or not ID_PATTERN.match(tid):
        raise Unauthorized(f"the token's {config.tenant_claim} claim is missing or malformed")
    name = claims.get("name") or claims.get("email")
    mapped = {
        "sub": claims.get("sub"),
        "tid": tid,
        "role": known[0].value,
        "exp": claims.get("exp"),
        "iat": claims.get("iat"),
        "name": name if isinstance(name, str) else None,
    }
    principal = principal_from_claims(mapped)
    return Principal(
        principal.tenant_id,
        principal.user_id,
        principal.role,
        name=principal.name,
        expires_at=principal.expires_at,
        issued_at=principal.issued_at,
        federated=True,
    )


class IssuerKeys:
    """The issuer's signing keys: fetched on first use, cached for the life of the process (across
    invocations), fetched again when a token names an unknown ``kid``. At most one fetch (discovery
    or JWKS, each counted on its own, successful or not) per ``refetch_interval``; each has a short
    timeout."""

    def __init__(self, config: OidcConfig, *, refetch_interval: float, timeout: float) -> None:
        self._config = config
        self._timeout = timeout
        self.discovery_gate = FetchGate(refetch_interval)
        self.jwks_gate = FetchGate(refetch_interval)
        self._jwks_url = config.jwks_url
        self._client: PyJWKClient | None = None

    @property
    def timeout(self) -> float:
        return self._timeout

    def key_for(self, token: str) -> PyJWK:
        import jwt

        try:
            return self._jwks_client().get_signing_key_from_jwt(token)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:  # no key, garbage, unreachable
            log.info("issuer key not available: %s", exc)
            raise Unauthorized("the token's signing key is not one of the issuer's keys") from exc

    def _jwks_client(self) -> PyJWKClient:
        client = self._client
        if client is None:  # two threads may both build one: harmless, the fetch gate is shared
            client = self._client = _keys_client(self._discover(), self)
        return client

    def _discover(self) -> str:
        """The JWKS URL: configured, or the ``jwks_uri`` of the issuer's discovery document."""
        if self._jwks_url:
            return self._jwks_url
        import jwt

        if not self.discovery_gate.take():
            raise jwt.PyJWKClientConnectionError("the issuer's discovery document was fetched moments ago")
        url = self._config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            document = json.loads(fetch(url, self._timeout))
        except (OSError, ValueError) as exc:
            raise jwt.PyJWKClientConnectionError(f"could not read {url}: {exc}") from exc
        jwks_url = document.get("jwks_uri") if isinstance(document, dict) else None
        if not isinstance(jwks_url, str) or not jwks_url.startswith(("https://", "http://")):
            raise jwt.PyJWKClientConnectionError(f"{url} names no jwks_uri")
        self._jwks_url = jwks_url
        return jwks_url


class FetchGate:
    """At most one fetch per ``interval`` seconds, whatever its outcome."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._last: float | None = None

    def take(self) -> bool:
        """Take the next fetch slot, if a fetch is allowed now."""
        with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last < self._interval:
                return False
            self._last = now
            return True


def fetch(url: str, timeout: float) -> bytes:
    """GET ``url`` with ``timeout`` per socket operation; no redirects, at most 256 KB."""
    if not url.startswith(("https://", "http://")):
        raise ValueError("only http(s) URLs are fetched")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
        body: bytes = response.read(_MAX_DOCUMENT_BYTES + 1)
    if len(body) > _MAX_DOCUMENT_BYTES:
        raise ValueError("the document is too large")
    return body


def _keys_client(url: str, gate: IssuerKeys) -> PyJWKClient:
    """PyJWT's JWKS client, its fetches rate-limited by ``gate``; the last good key set is used for
    a while when a fetch fails (an unknown kid is still refused)."""
    from jwt import PyJWKClient
    from jwt.exceptions import PyJWKClientConnectionError

    class Client(PyJWKClient):
        good: tuple[float, Any] | None = None

        def fetch_data(self) -> Any:
            if not gate.jwks_gate.take():
                return self._stale(PyJWKClientConnectionError("the issuer's keys were fetched moments ago"))
            try:
                data = super().fetch_data()
            except Exception as exc:  # noqa: BLE001 - garbage, timeouts and HTTP errors alike
                log.warning("could not fetch the issuer's keys from %s: %s", self.uri, exc)
                return self._stale(
                    exc
                    if isinstance(exc, PyJWKClientConnectionError)
                    else PyJWKClientConnectionError(f"the issuer's keys are not valid: {exc}")
                )
            self.good = (time.monotonic(), data)
            return data

        def _stale(self, exc: Exception) -> Any:
            if self.good is not None and time.monotonic() - self.good[0] < STALE_KEYS_SECONDS:
                return self.good[1]
            raise exc

    return Client(url, cache_jwk_set=True, lifespan=KEYS_LIFESPAN_SECONDS, timeout=gate.timeout, cooldown_duration=0)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    sub, tid, role_raw = claims.get("sub"), claims.get("tid"), claims.get("role")
    for label, value in (("sub", sub), ("tid", tid)):
        if not isinstance(value, str) or not ID_PATTERN.match(value):
            raise Unauthorized(f"the token's {label} claim is missing or malformed")
    try:
        role = Role(role_raw)
    except ValueError as exc:
        raise Unauthorized("the token's role claim is not one of admin, supervisor, agent, customer") from exc
    wid = claims.get("wid")
    if role is Role.CUSTOMER:
        if not isinstance(wid, str) or not ID_PATTERN.match(wid):
            raise Unauthorized("a customer token must name its workitem (wid)")
    else:
        wid = None
    name = claims.get("name")
    return Principal(
        tenant_id=str(tid),
        user_id=str(sub),
        role=role,
        workitem_id=wid,
        name=name if isinstance(name, str) else None,
        expires_at=epoch_seconds(claims.get("exp")),
        issued_at=epoch_seconds(claims.get("iat")),
    )
