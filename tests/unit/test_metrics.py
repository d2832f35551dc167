"""chalicelib.metrics: EMF lines CloudWatch accepts, counts summed and samples kept per invocation, the
stack's name on every metric, never a dimension per customer, and lines written even when the handler
raises or when a worker thread recorded them."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib import metrics
from tests.support import emf

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def captured() -> Iterator[emf.Capture]:
    with emf.capture() as c:
        yield c


def test_counts_are_summed_and_samples_kept_in_one_line_per_dimension_values(captured: emf.Capture) -> None:
    metrics.PUSHES.add()
    metrics.PUSHES.add(4)
    metrics.COMMIT_TO_POST.record(120.04, path="stream")
    metrics.COMMIT_TO_POST.record(480, path="stream")
    metrics.COMMIT_TO_POST.record(9, path="fast")
    metrics.WEBHOOK_DELIVERIES.add(outcome="delivered")
    metrics.WEBHOOK_DELIVERIES.add(outcome="failed")
    metrics.WEBHOOK_DELIVERIES.add(outcome="failed")
    assert metrics.flush() == 5  # no dimension, Path=stream, Path=fast, Outcome=delivered, Outcome=failed
    assert captured.total("Pushes") == 5
    assert sorted(captured.samples("CommitToPostDelay", Path="stream")) == [120.0, 480.0]
    assert captured.samples("CommitToPostDelay", Path="fast") == [9.0]
    assert captured.total("WebhookDeliveries", Outcome="failed") == 2
    assert captured.total("WebhookDeliveries", Outcome="delivered") == 1
    lines = [json.loads(line) for line in captured.lines]
    assert all(line["Stack"] == "local" for line in lines)
    assert {d["Namespace"] for line in lines for d in line["_aws"]["CloudWatchMetrics"]} == {"SupervisorCoaching"}


def test_nothing_recorded_writes_nothing(captured: emf.Capture) -> None:
    assert metrics.flush() == 0
    assert captured.lines == []


def test_a_rollup_metric_is_written_per_action_and_for_the_stack(captured: emf.Capture) -> None:
    metrics.ACTIONS.add(action="coach.send")
    metrics.ACTIONS.add(action="ping")
    metrics.ACTION_ERRORS.add(action="coach.send")
    assert captured.total("Actions", Action="coach.send") == 1
    assert captured.total("Actions") == 2  # Stack alone: what an alarm or a graph of the total reads
    assert captured.total("ActionErrors") == 1


def test_the_stack_dimension_is_the_stacks_name(captured: emf.Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COACHING_STACK", "coaching-prod")
    metrics.PUSHES.add()
    [point] = captured.points("Pushes")
    assert point.dimensions == (("Stack", "coaching-prod"),)


def test_more_than_a_hundred_samples_go_out_in_several_lines(captured: emf.Capture) -> None:
    for i in range(250):
        metrics.COMMIT_TO_POST.record(i, path="stream")
    metrics.PUSHES.add(7)
    assert metrics.flush() == 4
    assert len(captured.samples("CommitToPostDelay", Path="stream")) == 250
    assert captured.total("Pushes") == 7  # in the first line only, not repeated


def test_dimensions_must_be_the_declared_ones() -> None:
    with pytest.raises(ValueError, match="takes the dimensions"):
        metrics.WEBHOOK_DELIVERIES.add()
    with pytest.raises(ValueError, match="takes the dimensions"):
        metrics.PUSHES.add(outcome="sent")
    with pytest.raises(ValueError, match="takes the dimensions"):
        metrics.ACTIONS.add(action="ping", tenant="t1")


@pytest.mark.parametrize("dimension", ["TenantId", "UserId", "Connection", "WorkitemId", "AgentId"])
def test_a_dimension_per_customer_cannot_be_declared(dimension: str) -> None:
    with pytest.raises(ValueError, match="per customer"):
        metrics.Counter("PerCustomer", "must not exist", (dimension,))
    assert "PerCustomer" not in metrics.CATALOGUE


def test_a_metric_is_declared_once() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        metrics.Counter("Pushes", "again")


def test_no_declared_metric_has_a_dimension_per_customer() -> None:
    for metric in metrics.CATALOGUE.values():
        for dimension in metric.dimensions:
            assert not any(word in dimension.lower() for word in metrics.PER_CUSTOMER), (metric.name, dimension)


def test_the_invocation_writes_its_metrics_even_when_the_handler_raises(captured: emf.Capture) -> None:
    with pytest.raises(RuntimeError), metrics.invocation():
        metrics.ESCALATION_FAILURES.add()
        raise RuntimeError("the sweep failed")
    assert len(captured.lines) == 1  # written by the invocation's end, before anyone flushes again
    assert captured.total("EscalationFailures") == 1


def test_what_a_worker_thread_records_is_written_by_the_invocation(captured: emf.Capture) -> None:
    with metrics.invocation():
        worker = threading.Thread(target=metrics.PUSHES.add, args=(3,))
        worker.start()
        worker.join()
    assert len(captured.lines) == 1
    assert captured.total("Pushes") == 3


def test_durations_are_never_negative(captured: emf.Capture) -> None:
    metrics.COMMIT_TO_POST.record(-5, path="stream")  # a clock that stepped back
    assert captured.samples("CommitToPostDelay", Path="stream") == [0.0]


def test_inside_lambda_the_lines_go_to_standard_output() -> None:
    probe = "from chalicelib import metrics; metrics.PUSHES.add(2); metrics.ACTIONS.add(action='ping'); metrics.flush()"
    env = {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_NAME": "coaching-fanout", "COACHING_STACK": "s1"}
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    points = emf.parse(done.stdout.splitlines())
    assert {(p.name, p.dimensions, p.value) for p in points} == {
        ("Pushes", (("Stack", "s1"),), 2.0),
        ("Actions", (("Stack", "s1"), ("Action", "ping")), 1.0),
        ("Actions", (("Stack", "s1"),), 1.0),
    }
    outside = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True
    )
    assert outside.stdout == ""  # the local stack and the tests choose their own sink


def test_the_checker_refuses_what_cloudwatch_would_not_extract() -> None:
    good = {
        "_aws": {
            "Timestamp": 1_800_000_000_000,
            "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["Stack"]], "Metrics": [{"Name": "M", "Unit": "Count"}]}],
        },
        "Stack": "s",
        "M": 1,
    }
    emf.check(good)
    for broken in (
        {**good, "Stack": 3},  # a dimension value must be a string
        {**good, "M": "1"},  # a metric value must be a number
        {**good, "M": list(range(101))},  # at most 100 values
        {k: v for k, v in good.items() if k != "Stack"},  # a dimension without its value
    ):
        with pytest.raises(AssertionError):
            emf.check(broken)
