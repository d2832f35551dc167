"""``python -m bench.stack_trace``: ``python -m devstack`` with timing hooks, for ``bench.fanout --trace``.

Not used by ``make bench`` (whose figures come from the stack exactly as ``make run`` starts it).
It answers "where does a fan-out's time go": every AWS SDK call the stack's process makes (DynamoDB
requests, ``@connections`` posts) is timed from botocore's ``before-call`` to ``after-call`` event,
and every garbage-collector pause over 20 ms is recorded (the embedded moto store lives in this
process, so its collections stop the gateway and the handlers too). At exit the figures are written
as JSON to ``$BENCH_TRACE_OUT``; SIGUSR1 clears what was recorded so far (setup is left out).
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import signal
import sys
import threading
import time
from collections import defaultdict
from typing import Any

import botocore.session

_lock = threading.Lock()
_calls: dict[str, list[float]] = defaultdict(list)
_started: dict[tuple[int, str], float] = {}
_gc: list[tuple[int, float]] = []
_gc_start: list[float] = [0.0]


def _hook_clients() -> None:
    original = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        service = client.meta.service_model.service_id.hyphenize()

        def before(model: Any = None, **_: Any) -> None:
            _started[(threading.get_ident(), model.name)] = time.perf_counter()

        def after(model: Any = None, **_: Any) -> None:
            began = _started.pop((threading.get_ident(), model.name), None)
            if began is not None:
                with _lock:
                    _calls[f"{service}.{model.name}"].append(time.perf_counter() - began)

        client.meta.events.register(f"before-call.{service}", before)
        client.meta.events.register(f"after-call.{service}", after)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def _gc_callback(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_start[0] = time.perf_counter()
    else:
        pause = time.perf_counter() - _gc_start[0]
        if pause > 0.02:
            _gc.append((int(info.get("generation", -1)), pause))


def _dump() -> None:
    target = os.environ.get("BENCH_TRACE_OUT")
    if not target:
        return
    from bench.common import summary_ms

    with _lock:
        calls = {name: summary_ms(values) for name, values in sorted(_calls.items())}
    pauses = [p for _, p in _gc]
    full = [p for g, p in _gc if g == 2]
    with open(target, "w") as handle:
        json.dump(
            {
                "sdk_calls": calls,
                "gc_pauses_over_20ms": {
                    "count": len(pauses),
                    "total_s": round(sum(pauses), 2),
                    "max_s": round(max(pauses), 3) if pauses else 0,
                    "full_collections": len(full),
                    "full_collections_total_s": round(sum(full), 2),
                },
            },
            handle,
            indent=2,
        )


def _reset(*_: Any) -> None:
    """SIGUSR1: forget everything so far (bench.fanout sends it when the measured phase starts)."""
    with _lock:
        _calls.clear()
    _gc.clear()


def main() -> int:
    signal.signal(signal.SIGUSR1, _reset)
    _hook_clients()
    gc.callbacks.append(_gc_callback)
    atexit.register(_dump)
    from devstack.__main__ import main as devstack_main

    return devstack_main()


if __name__ == "__main__":
    sys.exit(main())
