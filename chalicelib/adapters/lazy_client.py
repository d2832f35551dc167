"""A boto3 client built on first use, once per process.

Importing boto3 and building a client costs about 0.1 s, so a function that never calls a service
never pays for its client (``import app`` stays cheap: tests/unit/test_import_footprint.py). Building
a client is not thread-safe, and the local stack runs handlers in threads: the first callers wait for
one build. The infra tier finds which services the code calls by the name given here
(``lazy_client("sqs", ...)``), so name the service literally.
"""

from __future__ import annotations

import threading
from typing import Any

from chalicelib.adapters.sdk_budget import SdkBudget


class LazyClient:
    def __init__(self, service: str, region: str, budget: SdkBudget, client: Any = None, endpoint: str = "") -> None:
        self._service = service
        self._region = region
        self._budget = budget
        self._endpoint = endpoint
        self._client = client
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3

                    self._client = boto3.client(
                        self._service,  # type: ignore[call-overload]
                        region_name=self._region,
                        endpoint_url=self._endpoint or None,
                        config=self._budget.config(),
                    )
        return self._client


def lazy_client(service: str, region: str, budget: SdkBudget, client: Any = None, endpoint: str = "") -> LazyClient:
    """``client`` when given (tests), else ``service``'s client in ``region`` with ``budget``'s
    timeouts and retries, built the first time it is called."""
    return LazyClient(service, region, budget, client, endpoint)
