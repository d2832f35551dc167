"""Fixtures of the fault tier (helpers in ``tests/faults/support.py``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest

from tests.faults.support import (
    EMF_REPORT,
    METRICS,
    REPORT,
    STACKS,
    FaultStack,
    dashboard,
    metrics_marks,
    metrics_since,
    start_stack,
    stop_stack,
)


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


@pytest.fixture(autouse=True)
def what_the_dashboard_shows(request: pytest.FixtureRequest) -> Iterator[None]:
    """The metrics the stacks wrote during each test (docs/operations.md, "Reading the dashboard"):
    summed up in the fault report, the lines themselves in .test-reports/faults-emf.jsonl."""
    marks = metrics_marks()
    yield
    lines = metrics_since(marks)
    if not lines:
        return
    METRICS[f"metrics during {request.node.name}"] = dashboard(lines)
    EMF_REPORT.parent.mkdir(parents=True, exist_ok=True)
    with EMF_REPORT.open("a", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps({"test": request.node.name, "emf": json.loads(line)}) + "\n")


@pytest.fixture(scope="session", autouse=True)
def fault_report(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print what each fault cost at the end of the run, and keep it in .test-reports/faults.json."""
    EMF_REPORT.unlink(missing_ok=True)
    yield
    for running in STACKS:  # read by what_the_dashboard_shows after each test; not needed any more
        if running.metrics_file is not None:
            running.metrics_file.unlink(missing_ok=True)
    if not METRICS:
        return
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(METRICS, indent=2, sort_keys=True))
    lines = ["", "---------- faults: what each fault cost ----------"]
    lines += [f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()) for name, figures in METRICS.items()]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        print("\n".join(lines), flush=True)
