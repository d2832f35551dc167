"""adapters/lazy_client.py: a client is built once, on first use, even when threads ask at once."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from chalicelib.adapters import lazy_client as module
from chalicelib.adapters.sdk_budget import SQS

pytestmark = pytest.mark.unit


def test_the_client_is_built_once_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    built: list[tuple[str, dict[str, Any]]] = []
    gate = threading.Barrier(8)

    def client(service: str, **kwargs: Any) -> object:
        built.append((service, kwargs))
        return object()

    monkeypatch.setattr(boto3, "client", client)
    lazy = module.lazy_client("sqs", "eu-west-1", SQS, endpoint="http://127.0.0.1:9324")
    assert built == []  # nothing before the first call
    seen: list[object] = []

    def use() -> None:
        gate.wait()
        seen.append(lazy())

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and len({id(c) for c in seen}) == 1
    service, kwargs = built[0]
    assert service == "sqs" and kwargs["region_name"] == "eu-west-1" and kwargs["endpoint_url"] == "http://127.0.0.1:9324"
    config: Any = kwargs["config"]  # botocore's Config sets its options as attributes at run time
    assert (config.read_timeout, config.connect_timeout) == (SQS.read, SQS.connect)


def test_a_given_client_is_used_as_it_is() -> None:
    given = object()
    assert module.lazy_client("connect", "us-east-1", SQS, given)() is given
