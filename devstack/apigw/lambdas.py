"""Running a Chalice handler the way Lambda runs it, with the event pieces API Gateway sends.

Handlers run on a thread pool, each call with a Lambda-like context; calls that need no store get a
small pool of their own, so they never wait behind handlers stuck on a slow store. Ids and timestamps
are shaped like API Gateway's, and repeated headers or query keys get both of its views.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from chalice.app import Chalice
from chalice.local import LambdaContext

from devstack.apigw.chalice_compat import make_current_request_thread_local

Event = dict[str, Any]
Handler = Callable[[Event, Any], Any]


def aws_id() -> str:
    """An id shaped like API Gateway's connection / request / message ids (e.g. ``L0SM9cOFvHcCIhw=``)."""
    return base64.b64encode(secrets.token_bytes(11)).decode("ascii")


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_ms(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def request_time(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def single_and_multi(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """API Gateway's two views of repeated keys: last value wins, and every value in order."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value
        multi.setdefault(key, []).append(value)
    return single, multi


def lambda_context(function_name: str) -> LambdaContext:
    return LambdaContext(function_name=function_name, memory_size=1024, max_runtime_ms=29_000)


class Invoker:
    """The app's handlers and the thread pools they run on.

    ``executor`` runs every handler that may touch the store (``executor_workers`` threads unless the
    caller passes its own pool, which it then shuts down itself); ``fast_executor`` runs the store-free
    calls. ``after_invoke`` is called after every ``$default`` and REST invocation (the local stream
    pump reads then).
    """

    def __init__(
        self,
        app: Chalice,
        *,
        executor: Executor | None = None,
        executor_workers: int = 32,
        after_invoke: Callable[[], None] | None = None,
    ) -> None:
        make_current_request_thread_local(app)
        self.app = app
        self._own_executor = executor is None
        self.executor: Executor = executor or ThreadPoolExecutor(max_workers=executor_workers, thread_name_prefix="lambda")
        # Calls that need no store get their own threads (on AWS each invocation has its own).
        self.fast_executor: Executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lambda-fast")
        self.after_invoke: Callable[[], None] = after_invoke or (lambda: None)

    def handler(self, name: str) -> Handler | None:
        handler: Handler | None = self.app.handler_map.get(name)
        return handler

    async def invoke(self, name: str, handler: Handler, event: Event, executor: Executor | None = None) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor or self.executor, handler, event, lambda_context(name))

    def shutdown(self, wait: bool = True) -> None:
        if self._own_executor:
            self.executor.shutdown(wait=wait, cancel_futures=True)
        self.fast_executor.shutdown(wait=wait, cancel_futures=True)
