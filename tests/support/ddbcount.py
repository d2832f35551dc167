"""Count the DynamoDB requests a piece of code makes (every API call through botocore)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.client import BaseClient


class RequestLog:
    def __init__(self) -> None:
        self.calls: list[str] = []

    @property
    def total(self) -> int:
        return len(self.calls)

    def by_operation(self) -> Counter[str]:
        return Counter(self.calls)


@contextmanager
def count_dynamodb() -> Iterator[RequestLog]:
    """Every DynamoDB operation made inside the block, in order (retries of one call count once)."""
    log = RequestLog()
    original = BaseClient._make_api_call  # type: ignore[attr-defined]  # private in botocore-stubs

    def counting(self: BaseClient, operation_name: str, api_params: Any) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            log.calls.append(operation_name)
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = counting  # type: ignore[attr-defined]
    try:
        yield log
    finally:
        BaseClient._make_api_call = original  # type: ignore[attr-defined]
