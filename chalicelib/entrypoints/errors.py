"""The one place an exception becomes the contract's error (REST bodies, WebSocket error frames, $connect).

:func:`contract_error` answers every exception the entry layer catches:

* a :class:`DomainError` is the client's error as it is (logged by nobody: it is an answer, not a fault);
* a failure of the store or of an AWS SDK call that means "not now" becomes ``unavailable`` or
  ``rate_limited`` with ``retryable: true`` (``adapters/storage_errors.py`` decides which), logged as a
  warning;
* anything else is logged once, with its traceback and the caller's context, and answered ``internal``
  with a fixed message: the client never sees a stack trace, a class name or a value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from chalicelib import metrics
from chalicelib.adapters.storage_errors import retryable_error
from chalicelib.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger(__name__)

# The client error for a failure that a retry may cure, or None for a real failure.
RetryableError = Callable[[BaseException], DomainError | None]

# The one wording of a failure of this service, on every channel (REST, frames, $connect).
NOTHING_APPLIED = "internal error; nothing was applied"


def is_fault(error: DomainError) -> bool:
    """Whether an answer is the service's failure (``internal``, ``unavailable``, ``rate_limited``: 5xx and
    429) rather than a refusal of the request itself: the ``ActionErrors`` metric counts these."""
    status = status_of(error)
    return status >= 500 or status == 429


def record(action: str, started: float, refusal: DomainError | None) -> None:
    """The metrics of one handled action or request: its count and latency, and its error if any."""
    metrics.ACTIONS.add(action=action)
    metrics.ACTION_LATENCY.record(metrics.milliseconds_since(started), action=action)
    if refusal is not None:
        (metrics.ACTION_ERRORS if is_fault(refusal) else metrics.ACTION_REFUSALS).add(action=action)


class Internal(DomainError):
    """A failure of this service, not of the request: a 500 with a fixed message."""

    code = "internal"


# The one table of an error's HTTP status (REST answers and $connect refusals; an error frame carries the
# code alone). A subclass answers as the nearest class listed (AlreadyClaimed as Conflict ...).
STATUS: dict[type[DomainError], int] = {
    DomainError: 400,
    Invalid: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    RateLimited: 429,
    Internal: 500,
    Unavailable: 503,
}


def status_of(error: DomainError) -> int:
    """The HTTP status ``error`` answers with (:data:`STATUS`)."""
    return next(STATUS[cls] for cls in type(error).__mro__ if cls in STATUS)


def contract_error(exc: BaseException, context: str, retryable: RetryableError | None = None) -> DomainError:
    """The contract's error for ``exc``, raised while handling ``context`` (what and for whom, for the log).

    ``retryable`` replaces the storage adapter's :func:`retryable_error` (unit tests of the router)."""
    if isinstance(exc, DomainError):
        return exc
    refusal = (retryable or retryable_error)(exc)
    if refusal is not None:
        log.warning("%s refused: %s (%s)", context, refusal.message, type(exc).__name__)
        return refusal
    log.error("%s failed", context, exc_info=exc)
    return Internal(NOTHING_APPLIED)


@contextmanager
def wire_names(names: Mapping[str, str]) -> Iterator[None]:
    """Refusals raised inside name the fields as the wire does: the domain names a field by its
    attribute (``negative_in_a_row``), the client sent it as ``names`` says (``negativeInARow``)."""
    try:
        yield
    except Invalid as exc:
        raise _renamed(exc, names) from None


def _renamed(exc: Invalid, names: Mapping[str, str]) -> Invalid:
    def rename(path: str) -> str:
        head, dot, rest = path.partition(".")
        return names.get(head, head) + dot + rest

    head, colon, rest = exc.message.partition(": ")
    message = rename(head) + colon + rest if colon and " " not in head else exc.message
    details = dict(exc.details)
    problems = details.get("problems")
    if isinstance(problems, list):
        details["problems"] = [
            {**p, "field": rename(p["field"])} if isinstance(p, dict) and isinstance(p.get("field"), str) else p for p in problems
        ]
    return type(exc)(message, **details)
