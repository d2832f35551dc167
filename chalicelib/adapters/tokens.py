"""JWT verification (docs/product.md W2, W9): the token is the authority for who the caller is.

Two kinds of token are accepted, told apart by the header's ``alg`` and never mixed:

* ``HS256`` tokens signed with the shared secret (the integration, the local stack, customers):
  checked with the standard library's ``hmac`` (:func:`decode_hs256`), so verifying them never
  imports PyJWT or the cryptography package it loads (about 50-170 ms on a cold start);
* ``RS256`` / ``ES256`` tokens of one configured OIDC issuer, verified by PyJWT with the issuer's
  public keys from its JWKS (:class:`IssuerKeys`). The key's type must match ``alg``; a symmetric key
  in the JWKS is never used, and the shared secret never verifies an issuer token.

Fetching the issuer's keys is bounded, because anyone can send a token naming a key we do not hold:
only a token whose header is plausible (an issuer algorithm, a printable ``kid``, no critical
extension) and whose unverified ``iss`` is our issuer may cause a fetch; a ``kid`` a fetch has just
shown to be unknown is remembered; fetches (discovery and JWKS together) have one total deadline,
connect to last byte, and a size cap; and no lock is held while fetching, so a token whose key is
cached never waits for one.

Nothing here is imported at ``import app`` beyond the standard library.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.identity import DIRECTORY_ROLES, Principal, Role, epoch_seconds
from chalicelib.domain.ids import ID_PATTERN

if TYPE_CHECKING:
    from jwt import PyJWK

log = logging.getLogger(__name__)

_REQUIRED = ["sub", "tid", "role", "exp"]
# A token may live at most this long from now: a stolen long-lived token would be a standing key.
MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600
# The issuer's algorithms and the JWK key type each needs.
ISSUER_ALGORITHMS = ("RS256", "ES256")
# Fetches from the issuer (the discovery document, then the JWKS): together they have this long, from
# connecting to the last byte, and there is at most one of each every REFETCH_INTERVAL_SECONDS,
# whatever its outcome, so a slow or broken identity provider costs one caller at most this long and
# every other one nothing.
FETCH_DEADLINE_SECONDS = 2.0
REFETCH_INTERVAL_SECONDS = 10.0
# How long a fetched key set is used before it is fetched again in the background (an unknown kid
# fetches sooner), and how long it may still be used while the issuer cannot be reached.
KEYS_LIFESPAN_SECONDS = 600.0
STALE_KEYS_SECONDS = 3600.0
# A kid that a fetch has just shown not to be the issuer's is refused without fetching for this long
# (at most this many of them are remembered).
UNKNOWN_KID_SECONDS = 300.0
MAX_UNKNOWN_KIDS = 1024
_MAX_DOCUMENT_BYTES = 256 * 1024
MAX_KEYS = 100  # keys read from one JWKS (parsing a key costs CPU)
# A plausible kid: printable ASCII, no spaces (RFC 7517 allows any string; issuers use ids, hashes, uuids).
_KID = re.compile(r"[!-~]{1,256}")


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
        fetch_deadline: float = FETCH_DEADLINE_SECONDS,
        keys_lifespan: float = KEYS_LIFESPAN_SECONDS,
    ) -> None:
        self._secret = secret
        self._leeway = leeway_seconds
        self._oidc = oidc
        self._keys = (
            IssuerKeys(oidc, refetch_interval=refetch_interval, deadline=fetch_deadline, lifespan=keys_lifespan) if oidc else None
        )

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
        key = self._keys.key_for(plausible_kid(token, self._oidc.issuer))
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


def plausible_kid(token: str, issuer: str) -> str:
    """The ``kid`` of an issuer token that may be looked up (and so may cause a fetch): the header names
    a printable ``kid`` and no critical extension, and the unverified payload names our issuer. Nothing
    here is trusted yet; it only keeps tokens that cannot be ours from costing a fetch."""
    header = unverified_header(token)
    kid = header.get("kid")
    if not isinstance(kid, str) or not _KID.fullmatch(kid):
        raise Unauthorized("the token's header names no valid key id (kid)")
    if "crit" in header:  # RFC 7515 section 4.1.11: an extension we do not understand
        raise Unauthorized("the token's header names a critical extension")
    claims = _json_object(_segment(token.split(".")[1]), "payload")
    if claims.get("iss") != issuer:
        raise Unauthorized("the token's issuer is not accepted")
    return kid


class IssuerKeys:
    """The issuer's signing keys by ``kid``: fetched on first use and kept for the life of the process
    (across invocations).

    * A cached key is returned at once, whatever else is going on: the lock guards only the swap of
      the key set, never a fetch. Past ``lifespan`` the set is fetched again in the background (so a
      key the issuer withdrew stops working), and used for up to :data:`STALE_KEYS_SECONDS` while the
      issuer cannot be reached.
    * An unknown ``kid`` fetches the set again, in the caller's thread; callers of unknown kids that
      arrive meanwhile wait for that same fetch. A ``kid`` the fetched set lacks is remembered for
      :data:`UNKNOWN_KID_SECONDS` and refused without a fetch.
    * At most one fetch of the discovery document and one of the JWKS per ``refetch_interval``,
      whatever their outcome; both together must finish within ``deadline`` seconds (:func:`fetch`).
    """

    def __init__(self, config: OidcConfig, *, refetch_interval: float, deadline: float, lifespan: float) -> None:
        self._config = config
        self._deadline = deadline
        self._lifespan = lifespan
        self.discovery_gate = FetchGate(refetch_interval)
        self.jwks_gate = FetchGate(refetch_interval)
        self._jwks_url = config.jwks_url
        self._lock = threading.Lock()  # guards the fields below; never held while fetching
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None  # time.monotonic() of the last good key set
        self._generation = 0  # good key sets so far
        self._unknown: OrderedDict[str, float] = OrderedDict()  # kid -> refused without a fetch until
        self._fetching: threading.Event | None = None  # set when the fetch under way ends

    def key_for(self, kid: str) -> PyJWK:
        now = time.monotonic()
        with self._lock:
            fresh_enough = self._fetched_at is not None and now - self._fetched_at < STALE_KEYS_SECONDS
            key = self._keys.get(kid) if fresh_enough else None
            old = self._fetched_at is not None and now - self._fetched_at >= self._lifespan
            until = self._unknown.get(kid)
            generation = self._generation
        if key is not None:
            if old:
                self._refresh(in_background=True)
            return key
        if until is not None and now < until:
            raise Unauthorized("the token's signing key is not one of the issuer's keys")
        self._refresh(in_background=False)
        with self._lock:
            key = self._keys.get(kid)
            if key is None and self._generation > generation:  # a good set came, and it lacks this kid
                self._unknown[kid] = time.monotonic() + UNKNOWN_KID_SECONDS
                self._unknown.move_to_end(kid)
                while len(self._unknown) > MAX_UNKNOWN_KIDS:
                    self._unknown.popitem(last=False)
        if key is None:
            raise Unauthorized("the token's signing key is not one of the issuer's keys")
        return key

    def _refresh(self, *, in_background: bool) -> None:
        """Fetch the key set (or join the fetch under way): in this thread, which then waits at most the
        deadline, or in a background thread nobody waits for."""
        with self._lock:
            running = self._fetching
            if running is None:
                if not self.jwks_gate.take():
                    return
                running = self._fetching = threading.Event()
                mine = True
            else:
                mine = False
        if not mine:
            if not in_background:
                running.wait(self._deadline + 1.0)
            return
        if in_background:
            threading.Thread(target=self._fetch_keys, args=(running,), name="issuer-keys", daemon=True).start()
        else:
            self._fetch_keys(running)

    def _fetch_keys(self, done: threading.Event) -> None:
        deadline = time.monotonic() + self._deadline
        try:
            keys = _signing_keys(fetch(self._discover(deadline), deadline))
        except Exception as exc:  # noqa: BLE001 - unreachable, slow, too large, garbage: the keys stay as they were
            log.warning("could not fetch the issuer's keys: %s", exc)
        else:
            with self._lock:
                self._keys, self._fetched_at = keys, time.monotonic()
                self._generation += 1
                for kid in keys:
                    self._unknown.pop(kid, None)
        finally:
            with self._lock:
                self._fetching = None
            done.set()

    def _discover(self, deadline: float) -> str:
        """The JWKS URL: configured, or the ``jwks_uri`` of the issuer's discovery document."""
        if self._jwks_url:
            return self._jwks_url
        if not self.discovery_gate.take():
            raise OSError("the issuer's discovery document was fetched moments ago")
        url = self._config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = json.loads(fetch(url, deadline))
        jwks_url = document.get("jwks_uri") if isinstance(document, dict) else None
        if not isinstance(jwks_url, str) or not jwks_url.startswith(("https://", "http://")):
            raise ValueError(f"{url} names no jwks_uri")
        self._jwks_url = jwks_url
        return jwks_url


def _signing_keys(raw: bytes) -> dict[str, PyJWK]:
    """The signing keys of a JWKS document by ``kid`` (keys without one, for encryption, or of a type
    PyJWT cannot use are left out); at most :data:`MAX_KEYS` keys are read."""
    from jwt import PyJWKSet

    document = json.loads(raw)
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ValueError("the document is not a key set")
    usable = PyJWKSet(keys[:MAX_KEYS])
    return {key.key_id: key for key in usable.keys if key.key_id and key.public_key_use in (None, "sig")}


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


def fetch(url: str, deadline: float) -> bytes:
    """GET ``url`` and return its body: a 200 only, no redirects, at most 256 KB, and everything (connect,
    TLS, headers, body) done before ``deadline`` (``time.monotonic()``). A socket timeout bounds one
    read, not the whole, so a timer shuts the socket down at the deadline: a server that trickles a byte
    now and then is cut off too. (Resolving the host name is not bounded here.)"""
    import http.client
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("only http(s) URLs are fetched")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("no time was left to fetch")
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=remaining)
    cut = threading.Event()

    def cut_off() -> None:
        cut.set()
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's: TLS state untouched

    timer = threading.Timer(remaining, cut_off)
    timer.daemon = True
    timer.start()
    try:
        connection.connect()
        if cut.is_set():  # the deadline passed while connecting (before there was a socket to shut)
            raise TimeoutError("the deadline passed")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("GET", target, headers={"Accept": "application/json", "Accept-Encoding": "identity"})
        response = connection.getresponse()
        if response.status != 200:
            raise ValueError(f"HTTP {response.status}")
        body = bytearray()
        while chunk := response.read1(64 * 1024):
            body += chunk
            if len(body) > _MAX_DOCUMENT_BYTES:
                raise ValueError("the document is too large")
    except (OSError, http.client.HTTPException) as exc:
        if cut.is_set():
            raise TimeoutError(f"no complete answer within the deadline ({url})") from exc
        raise
    finally:
        timer.cancel()
        connection.close()
    if cut.is_set():  # a body without a length ends at the shutdown: it is cut short, not complete
        raise TimeoutError(f"no complete answer within the deadline ({url})")
    return bytes(body)


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
