"""Credentials for the local stack: HS256 bearer tokens and signed webhook headers.

The app verifies both with its own code; these only mint what a real identity provider and a real
routing engine would send (docs/product.md W2 and W5).
"""

from __future__ import annotations

import hashlib
import hmac
import time

import jwt

TWELVE_HOURS = 12 * 3600


def mint(
    secret: str,
    *,
    sub: str,
    role: str,
    tid: str = "demo",
    name: str | None = None,
    wid: str | None = None,
    ttl_seconds: int = TWELVE_HOURS,
    now: float | None = None,
) -> str:
    """A bearer token with the contract's claims (``wid`` only for customers)."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {"sub": sub, "tid": tid, "role": role, "iat": issued, "exp": issued + ttl_seconds}
    if name is not None:
        claims["name"] = name
    if wid is not None:
        claims["wid"] = wid
    return jwt.encode(claims, secret, algorithm="HS256")


def webhook_signature(secret: str, raw_body: bytes, t: int | None = None) -> str:
    """The ``X-Coaching-Signature`` value: ``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``."""
    stamp = int(time.time()) if t is None else t
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"
