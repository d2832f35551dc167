"""The product's error family: what was refused (a stable ``code``) and why (a ``message``).

How a refusal travels (an HTTP status, an error frame) is the entry layer's: ``entrypoints/errors.py``."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal the client should see: a stable ``code`` plus a human ``message``."""

    code = "invalid"
    retryable = False

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.retryable:
            body["retryable"] = True
        if self.details:
            body["details"] = self.details
        return body


class Invalid(DomainError):
    code = "invalid"


class Unauthorized(DomainError):
    code = "unauthorized"


class Forbidden(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class TooLarge(DomainError):
    code = "too_large"


class RateLimited(DomainError):
    """The store or a downstream service pushed back; the same request may be retried."""

    code = "rate_limited"
    retryable = True


class Unavailable(DomainError):
    """The store or a downstream service did not answer in time (timeout, lost connection,
    throttling that outlasted the SDK's retries). Nothing was applied; the request may be retried."""

    code = "unavailable"
    retryable = True
