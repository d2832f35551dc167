"""Translate storage push-back (throttling, transaction conflicts) into a retryable client error."""

from __future__ import annotations

from botocore.exceptions import ClientError
from pynamodb.exceptions import PynamoDBException, TransactWriteError

from chalicelib.domain.errors import DomainError, RateLimited

RETRYABLE_CODES = frozenset({
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "TransactionInProgressException",
    "InternalServerError",
    "ServiceUnavailable",
    "LimitExceededException",
})
RETRYABLE_REASONS = frozenset({"ThrottlingError", "TransactionConflict", "ProvisionedThroughputExceeded"})


def translate(exc: Exception) -> DomainError | None:
    """A :class:`RateLimited` for errors a client should simply retry; None for real failures."""
    if isinstance(exc, TransactWriteError):
        reasons = {r.code for r in (exc.cancellation_reasons or []) if r}
        if reasons & RETRYABLE_REASONS or exc.cause_response_code in RETRYABLE_CODES:
            return RateLimited("the store is busy; retry the request")
        return None
    if isinstance(exc, PynamoDBException):
        if exc.cause_response_code in RETRYABLE_CODES:
            return RateLimited("the store is busy; retry the request")
        return None
    if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in RETRYABLE_CODES:
        return RateLimited("a downstream service is busy; retry the request")
    return None
