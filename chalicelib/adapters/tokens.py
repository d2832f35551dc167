"""JWT verification (docs/product.md W2): the token is the authority for who the caller is.

PyJWT (with cryptography, when installed) is imported where a token is verified or minted, not with
this module: the ``$connect`` authorizer and REST requests verify tokens, while ``import app``, the
WebSocket frame and ``$disconnect`` handlers, the schedule, the stream and the SIP handler never do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.ids import ID_PATTERN

_REQUIRED = ["sub", "tid", "role", "exp"]
# A token may live at most this long from now: a stolen long-lived token would be a standing key.
MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600


class TokenVerifier:
    """Verifies HS256 bearer tokens with a secret fetched lazily (it may live in SSM)."""

    def __init__(self, secret: Callable[[], str], leeway_seconds: int = 30) -> None:
        self._secret = secret
        self._leeway = leeway_seconds

    def verify(self, token: str | None) -> Principal:
        if not token:
            raise Unauthorized("a bearer token is required")
        secret = self._secret()
        if not secret:
            raise Unauthorized("token verification is not configured")
        import jwt

        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],  # never "none", never whatever the header says
                options={"require": _REQUIRED},
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("the token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("the token is not valid") from exc
        for claim in ("exp", "iat"):
            value = claims.get(claim)
            # PyJWT accepts numeric strings ("1735689600"); the claims are JSON numbers (RFC 7519).
            if claim in claims and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise Unauthorized(f"the token's {claim} claim must be a JSON number")
        if claims["exp"] > time.time() + MAX_TOKEN_LIFETIME_SECONDS:
            raise Unauthorized("the token's exp lies more than 24 h ahead")
        return principal_from_claims(claims)


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
        expires_at=_seconds(claims.get("exp")),
        issued_at=_seconds(claims.get("iat")),
    )


def _seconds(value: Any) -> int | None:
    """An epoch-seconds claim: a number, or the string API Gateway makes of it in an authorizer context."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def mint(secret: str, *, sub: str, tid: str, role: str, name: str | None = None, wid: str | None = None,
         ttl_seconds: int = 3600) -> str:
    """Issue a token (local stack, tests, and integrations that hold the shared secret)."""
    import jwt

    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "tid": tid, "role": role, "iat": now, "exp": now + ttl_seconds}
    if name:
        claims["name"] = name
    if wid:
        claims["wid"] = wid
    return jwt.encode(claims, secret, algorithm="HS256")
