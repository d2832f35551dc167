"""Count DynamoDB requests with botocore event hooks.

Every botocore client emits ``before-call.<service>.<Operation>`` once per API call (retries of that
call do not emit it again) and ``before-send.<service>.<Operation>`` once per HTTP attempt. PynamoDB
builds one botocore session per thread and its clients lazily, so :func:`install` wraps
``botocore.session.Session.create_client`` to register the two handlers on every client created
afterwards. Install it before the first DynamoDB client exists (before the first request).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import botocore.session

_lock = threading.Lock()
_active: list[RequestCount] = []
_installed = False


class RequestCount:
    """The DynamoDB calls made while the counter was active, by operation, and the HTTP attempts."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.attempts = 0

    @property
    def total(self) -> int:
        return len(self.calls)

    def by_operation(self) -> dict[str, int]:
        return dict(sorted(Counter(self.calls).items()))


def _before_call(model: Any = None, **_: Any) -> None:
    name = getattr(model, "name", "?")
    with _lock:
        for counter in _active:
            counter.calls.append(name)


def _before_send(**_: Any) -> None:
    with _lock:
        for counter in _active:
            counter.attempts += 1


def install() -> None:
    """Hook every botocore client created from now on (idempotent)."""
    global _installed  # noqa: PLW0603 - one patch per process
    if _installed:
        return
    original = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        if client.meta.service_model.service_name == "dynamodb":
            client.meta.events.register("before-call.dynamodb", _before_call, unique_id="bench-ddb-call")
            client.meta.events.register("before-send.dynamodb", _before_send, unique_id="bench-ddb-send")
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    _installed = True


@contextmanager
def counting() -> Iterator[RequestCount]:
    """Count the DynamoDB requests of the block (every thread of the process)."""
    install()
    counter = RequestCount()
    with _lock:
        _active.append(counter)
    try:
        yield counter
    finally:
        with _lock:
            _active.remove(counter)
