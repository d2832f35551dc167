"""Outbound webhooks: subscriptions, the events they carry, and which targets may receive them
(docs/product.md W8, docs/webhooks.md).

Pure rules: no network, no storage. Resolving a host name is the adapter's job; it hands the
addresses back to :func:`check_address` (``domain/addresses.py``: the table of what an address
reaches), so a name that resolves to a forbidden address is refused at delivery time even when it
passed when the subscription was saved.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from .addresses import check_address
from .errors import Invalid
from .fairness import Health

EVENT_TYPES: tuple[str, ...] = (
    "timeline.entry",
    "workitem.assigned",
    "workitem.transferred",
    "workitem.ended",
    "assist.requested",
    "assist.claimed",
    "assist.escalated",
    "presence.changed",
    "attention.raised",
    "attention.acked",
    "attention.cleared",
    "sms.received",
)
ALL_EVENTS = "*"
MAX_SUBSCRIPTIONS = 20
MAX_URL_LENGTH = 2048
# Retries: the first within 30 s, doubling, never more than 6 h apart (SQS allows 12 h).
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 6 * 3600
DELIVERY_TIMEOUT_SECONDS = 10.0
# Attempts before a delivery rests in the dead-letter queue: attempts_for(24), a little over a day.
MAX_ATTEMPTS = 14
# After a rotation the previous secret keeps signing (beside the new one) this long by default, so that
# receivers can switch over without losing a delivery; 0 retires it at once (a leaked secret).
ROTATION_OVERLAP_SECONDS = 24 * 3600
MAX_ROTATION_OVERLAP_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Subscription:
    tenant_id: str
    subscription_id: str
    url: str
    events: tuple[str, ...]
    enabled: bool
    secret: str = field(repr=False)  # never in a log line
    # The secret a rotation replaced, still signing until ``previous_until`` (epoch seconds).
    previous_secret: str | None = field(default=None, repr=False)
    previous_until: int | None = None
    # How its receiver answered lately (domain.fairness): what the next delivery may do.
    health: Health = field(default_factory=Health)

    def wants(self, event_type: str) -> bool:
        return self.enabled and (ALL_EVENTS in self.events or event_type in self.events)

    def signing_secrets(self, now_epoch: float) -> tuple[str, ...]:
        """The secrets a delivery is signed with now: the current one, then the previous one while its
        overlap lasts (the receiver accepts a delivery when any signature verifies)."""
        if self.previous_secret and self.previous_until is not None and now_epoch < self.previous_until:
            return (self.secret, self.previous_secret)
        return (self.secret,)

    def rotated(self, secret: str, now_epoch: int, keep_previous_seconds: int) -> Subscription:
        """This subscription with a new secret; the current one keeps signing ``keep_previous_seconds``."""
        if not 0 <= keep_previous_seconds <= MAX_ROTATION_OVERLAP_SECONDS:
            raise Invalid(f"keepPreviousSeconds must be from 0 to {MAX_ROTATION_OVERLAP_SECONDS}")
        keep = keep_previous_seconds > 0
        return replace(
            self,
            secret=secret,
            previous_secret=self.secret if keep else None,
            previous_until=now_epoch + keep_previous_seconds if keep else None,
        )

    def overlap_until(self, now_epoch: float) -> int | None:
        """When the previous secret stops signing, while it still does (None otherwise)."""
        return self.previous_until if len(self.signing_secrets(now_epoch)) > 1 else None


@dataclass(frozen=True)
class SubscriptionView:
    """A subscription as an admin is shown it: its secret only when just made (create, rotation), until
    when the previous secret still signs while it does, and until when deliveries are paused while its
    circuit is open."""

    subscription: Subscription
    with_secret: bool = False
    previous_until: str | None = None
    paused_until: str | None = None


def check_events(events: list[str]) -> tuple[str, ...]:
    if not events:
        raise Invalid('events must name at least one event type, or be ["*"]')
    unknown = [e for e in events if e != ALL_EVENTS and e not in EVENT_TYPES]
    if unknown:
        raise Invalid(f"unknown event type(s) {', '.join(sorted(set(unknown)))}; known: {', '.join(EVENT_TYPES)} or *")
    if ALL_EVENTS in events and len(set(events)) > 1:
        raise Invalid('"*" stands alone: it already means every event type')
    return tuple(dict.fromkeys(events))


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line

    @property
    def authority(self) -> str:
        """The ``Host`` header: an IPv6 literal in brackets (RFC 9110 section 7.2), the port unless it is
        the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == (443 if self.scheme == "https" else 80) else f"{host}:{self.port}"


def check_url(url: str, allow_private: bool) -> Target:
    """The target of ``url`` if it may receive deliveries (``https`` only unless ``allow_private``,
    the local stack's setting); :class:`Invalid` otherwise. A literal address is checked here; a
    host name is checked again on every delivery, once resolved (:func:`check_address`)."""
    if len(url) > MAX_URL_LENGTH:
        raise Invalid(f"url may have at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Invalid("url is not a valid URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Invalid("url must be an https URL" if not allow_private else "url must be an http(s) URL")
    if scheme == "http" and not allow_private:
        raise Invalid("url must be an https URL")
    if parts.username is not None or parts.password is not None:
        raise Invalid("url must not carry credentials")
    if parts.fragment:
        raise Invalid("url must not have a fragment")
    host = (parts.hostname or "").rstrip(".")
    if not host or any(c.isspace() for c in url):
        raise Invalid("url must name a host")
    literal = _literal(host)
    if literal is not None:
        check_address(str(literal), allow_private)
    elif not allow_private and (host == "localhost" or host.endswith(".localhost")):
        raise Invalid("url must not point at this machine")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def retry_delay(attempt: int, base: int = RETRY_BASE_SECONDS) -> int:
    """Seconds before attempt ``attempt + 1`` (``attempt`` counts from 1): base, 2 base, 4 base ..."""
    exponent = max(0, min(attempt - 1, 30))
    return int(min(RETRY_MAX_SECONDS, base * math.pow(2, exponent)))


def attempts_for(hours: float, base: int = RETRY_BASE_SECONDS) -> int:
    """How many attempts keep retrying for at least ``hours`` (the dead-letter queue's redrive count)."""
    total, attempt = 0, 0
    while total < hours * 3600:
        attempt += 1
        total += retry_delay(attempt, base)
    return attempt + 1
