"""The product's error family, mapped to REST statuses and WebSocket error frames in one place."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal the client should see: a stable ``code`` plus a human ``message``."""

    code = "invalid"
    status = 400
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
    status = 400


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409


class TooLarge(DomainError):
    code = "too_large"
    status = 413


class RateLimited(DomainError):
    """The store or a downstream service pushed back; the same request may be retried."""

    code = "rate_limited"
    status = 429
    retryable = True


class Unavailable(DomainError):
    """The store or a downstream service did not answer in time (timeout, lost connection,
    throttling that outlasted the SDK's retries). Nothing was applied; the request may be retried."""

    code = "unavailable"
    status = 503
    retryable = True
