"""Secrets read at runtime: a literal value (local stack only) or an SSM SecureString, cached."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient


class Secret:
    """A secret value, fetched on first use and refreshed every ``ttl_seconds`` (rotation)."""

    def __init__(
        self,
        value: str = "",
        parameter_name: str = "",
        region: str = "us-east-1",
        ttl_seconds: int = 300,
        client: SSMClient | None = None,
    ) -> None:
        self._value = value
        self._parameter = parameter_name
        self._region = region
        self._ttl = ttl_seconds
        self._client = client
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        if not self._parameter:
            return self._value
        with self._lock:
            if not self._value or time.monotonic() - self._fetched_at > self._ttl:
                self._value = self._fetch()
                self._fetched_at = time.monotonic()
            return self._value

    def _fetch(self) -> str:
        if self._client is None:
            import boto3

            from chalicelib.adapters.sdk_budget import SSM

            self._client = boto3.client("ssm", region_name=self._region, config=SSM.config())
        response: Any = self._client.get_parameter(Name=self._parameter, WithDecryption=True)
        return str(response["Parameter"]["Value"])

    def __repr__(self) -> str:  # never print the value
        return f"Secret(parameter={self._parameter!r})"
