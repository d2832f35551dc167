"""Fixtures of the fault tier (helpers in ``tests/faults/support.py``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest

from tests.faults.support import METRICS, REPORT, FaultStack, start_stack, stop_stack


@pytest.fixture(scope="module")
def stack() -> Iterator[FaultStack]:
    running = start_stack()
    try:
        yield running
    finally:
        stop_stack(running)


@pytest.fixture
def fresh_stack() -> Iterator[FaultStack]:
    """A stack of its own, for tests that end it."""
    running = start_stack()
    try:
        yield running
    finally:
        stop_stack(running)


@pytest.fixture(scope="session", autouse=True)
def fault_report(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print what each fault cost at the end of the run, and keep it in .test-reports/faults.json."""
    yield
    if not METRICS:
        return
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(METRICS, indent=2, sort_keys=True))
    lines = ["", "---------- faults: what each fault cost ----------"]
    lines += [f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()) for name, figures in METRICS.items()]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        print("\n".join(lines), flush=True)
