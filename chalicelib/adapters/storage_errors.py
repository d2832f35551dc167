"""Translate failures of the AWS SDK into the client errors of the contract.

Two kinds, kept apart so that an error says what really happened:

* ``unavailable`` (503, retryable): the store or a downstream service did not answer in time, the
  connection failed or was cut, or it kept throttling after the SDK's own retries. botocore raises
  these without an HTTP response (``ReadTimeoutError``, ``ConnectTimeoutError``,
  ``EndpointConnectionError``, ``ConnectionClosedError`` ...) or as a ``ClientError`` whose code is a
  throttling or server error; PynamoDB wraps either in its own exception with the botocore one as
  ``cause``. Nothing was applied (a transaction is all or nothing), so the same request may be sent
  again.
* ``rate_limited`` (429, retryable): a lost race between transactions (``TransactionConflict``) that
  the caller did not retry itself. The coaching commit loop retries these and never lets one out.

:func:`retryable_error` never raises: it is called on the error path of every handler, which must answer
(``chalicelib/entrypoints/errors.py``).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as SdkConnectionError
from pynamodb.exceptions import PynamoDBException, TransactWriteError

from chalicelib.domain.errors import DomainError, RateLimited, Unavailable

# Codes of answers that mean "not now": throttling and the service's own failures.
UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "LimitExceededException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
UNAVAILABLE_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"})
# A transaction cancelled because another one touched the same item at the same time: a race.
RACE_CODES = frozenset({"TransactionConflictException", "TransactionInProgressException"})
RACE_REASONS = frozenset({"TransactionConflict"})

STORE_UNAVAILABLE = "the store did not answer in time; nothing was applied, retry the request"
SERVICE_UNAVAILABLE = "a downstream service did not answer in time; retry the request"
RACE_LOST = "another change to the same data won the race; retry the request"


def retryable_error(exc: BaseException) -> DomainError | None:
    """The retryable client error (``unavailable`` or ``rate_limited``) for ``exc``, or None for a real
    failure (answered ``internal``)."""
    try:
        return _retryable_error(exc)
    except Exception:  # noqa: BLE001 - the error path must answer; an odd exception is just "internal"
        return None


def _retryable_error(exc: BaseException) -> DomainError | None:
    if isinstance(exc, PynamoDBException):
        cause = exc.cause
        if _no_response(cause):
            return Unavailable(STORE_UNAVAILABLE)
        if isinstance(exc, TransactWriteError):
            reasons = {r.code for r in (exc.cancellation_reasons or []) if r is not None}
            if reasons & UNAVAILABLE_REASONS:
                return Unavailable(STORE_UNAVAILABLE)
            if reasons & RACE_REASONS:
                return RateLimited(RACE_LOST)
        code = _code(cause)
        if code in UNAVAILABLE_CODES:
            return Unavailable(STORE_UNAVAILABLE)
        if code in RACE_CODES:
            return RateLimited(RACE_LOST)
        return None
    if _no_response(exc):
        return Unavailable(SERVICE_UNAVAILABLE)
    code = _code(exc)
    if code in UNAVAILABLE_CODES:
        return Unavailable(SERVICE_UNAVAILABLE)
    if code in RACE_CODES:
        return RateLimited(RACE_LOST)
    return None


def _no_response(exc: Any) -> bool:
    """A failure in reaching the service: timeouts, refused or reset connections, cut responses."""
    return isinstance(exc, SdkConnectionError | HTTPClientError | TimeoutError) or (
        isinstance(exc, BotoCoreError) and "timeout" in type(exc).__name__.lower()
    )


def _code(exc: Any) -> str | None:
    if not isinstance(exc, ClientError):
        return None
    response = exc.response or {}
    code = (response.get("Error") or {}).get("Code")
    return code if isinstance(code, str) else None


def response_code(exc: PynamoDBException) -> str | None:
    """The DynamoDB error code behind a PynamoDB exception, or None when the store never answered.

    (PynamoDB's own ``cause_response_code`` raises ``AttributeError`` for a timeout or a cut
    connection, whose botocore exception carries no response.)"""
    return _code(exc.cause)
