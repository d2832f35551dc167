"""Custom CloudWatch metrics from the functions, as Embedded Metric Format (EMF) lines (docs/operations.md).

A function does not call CloudWatch: it writes one JSON line per group of metrics to its log, and
CloudWatch Logs turns each line into metric data points (``_aws.CloudWatchMetrics`` says which keys are
metrics and which are dimensions). Every metric is declared once below, with its unit and dimensions,
and recorded in one line wherever the thing happens::

    metrics.PUSHES.add()                                  # one frame posted
    metrics.WEBHOOK_DELIVERIES.add(outcome="delivered")   # a dimension value, as a keyword
    metrics.COMMIT_TO_POST.record(312.5, path="stream")   # one sample (milliseconds)

Adding a metric is one declaration here (``NEW = Counter("New", "what it counts")``) and one call; the
infra tests then want it on the dashboard or in docs/operations.md's metric table. A dimension's values
must come from a small fixed set (an action name, an outcome): never a tenant, user, connection or
workitem id, which would make a metric per customer (``Metric`` refuses such dimension names).

Values are kept in memory and written when the invocation ends (``app.py``'s middleware opens
:func:`invocation` around every handler): one line per set of dimension values, however many calls
recorded them. Samples (``record``) are written as they are (CloudWatch computes p50/p99 from them);
counts are summed. The buffer is process-wide, not per thread, so what the ``fanout`` function's worker
threads record is written too; a post still in flight when its invocation ends is counted with the next
one. Standard library only, and nothing but the clock runs at import: ``import app`` pays nothing
(tests/unit/test_import_footprint.py; the choice against aws-embedded-metrics and Powertools is in
docs/operations.md).

Where the lines go: standard output inside Lambda (``AWS_LAMBDA_FUNCTION_NAME`` is set), nowhere
otherwise, unless :func:`set_sink` names a writer (the local stack's ``DEVSTACK_METRICS_FILE``, tests).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

NAMESPACE = "SupervisorCoaching"
# Every metric carries the stack's name (COACHING_STACK; "local" for the local stack), so two stacks in
# one account and Region never mix their figures.
STACK_DIMENSION = "Stack"
COUNT = "Count"
MILLISECONDS = "Milliseconds"

# EMF's limits: values of one metric in one line, metrics in one directive.
MAX_VALUES = 100
MAX_METRICS = 100
# Dimension names that would make a metric per customer or per call.
PER_CUSTOMER = ("tenant", "user", "connection", "workitem", "request", "agent", "customer", "subscription")

Sink = Callable[[str], None]


class Metric:
    """One metric: its name, unit and dimensions (besides ``Stack``). ``rollup`` also writes it under
    ``Stack`` alone, so an alarm or a graph can take the total without naming every dimension value."""

    def __init__(self, name: str, unit: str, description: str, dimensions: tuple[str, ...] = (), *, rollup: bool = False):
        for dimension in dimensions:
            if any(word in dimension.lower() for word in PER_CUSTOMER):
                raise ValueError(f"{name}: {dimension} would be a dimension per customer or call")
        if name in CATALOGUE:
            raise ValueError(f"metric {name} is declared twice")
        self.name = name
        self.unit = unit
        self.description = description
        self.dimensions = dimensions
        self.rollup = rollup
        CATALOGUE[name] = self

    def _put(self, value: float, values: dict[str, str]) -> None:
        given = {k.lower(): str(v) for k, v in values.items()}
        wanted = {d.lower() for d in self.dimensions}
        if set(given) != wanted:
            raise ValueError(f"{self.name} takes the dimensions {self.dimensions}, got {sorted(values)}")
        key = (self.name, tuple((d, given[d.lower()]) for d in self.dimensions))
        with _lock:
            _pending.setdefault(key, []).append(value)


class Counter(Metric):
    """How many times something happened in an invocation (summed into one value per line)."""

    def __init__(self, name: str, description: str, dimensions: tuple[str, ...] = (), *, rollup: bool = False):
        super().__init__(name, COUNT, description, dimensions, rollup=rollup)

    def add(self, count: float = 1, **dimensions: str) -> None:
        if count:
            self._put(count, dimensions)


class Timing(Metric):
    """Durations in milliseconds, every sample written (for percentiles)."""

    def __init__(self, name: str, description: str, dimensions: tuple[str, ...] = (), *, rollup: bool = False):
        super().__init__(name, MILLISECONDS, description, dimensions, rollup=rollup)

    def record(self, milliseconds: float, **dimensions: str) -> None:
        self._put(round(max(0.0, milliseconds), 1), dimensions)


CATALOGUE: dict[str, Metric] = {}

_lock = threading.Lock()
_pending: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}
_sink: Sink | None = None
_sink_chosen = False

# --- the catalogue: every metric the product writes ----------------------------------------------------

ACTIONS = Counter("Actions", "WebSocket actions and REST requests handled", ("Action",), rollup=True)
ACTION_LATENCY = Timing("ActionLatency", "time to handle one action or request, reply included", ("Action",), rollup=True)
ACTION_ERRORS = Counter(
    "ActionErrors", "actions answered internal, unavailable or rate_limited (the service's fault)", ("Action",), rollup=True
)
ACTION_REFUSALS = Counter("ActionRefusals", "actions refused for the request's own fault (4xx codes)", ("Action",), rollup=True)
CONNECTS = Counter("Connects", "$connect authorizations by outcome: accepted, refused (bad token), failed", ("Outcome",))
COMMIT_TO_POST = Timing(
    "CommitToPostDelay",
    "from a change's commit to its events handed to @connections: by the stream's fanout (Path=stream) or, "
    "for fast connections, by the handler that committed it (Path=fast)",
    ("Path",),
)
PUSHES = Counter("Pushes", "frames posted to WebSocket connections")
GONE_CONNECTIONS = Counter("GoneConnections", "posts answered 410 Gone (the client left; its record is forgotten)")
PUSH_FAILURES = Counter("PushFailures", "frames not posted: timed out, throttled, refused, or skipped behind a slow receiver")
WEBHOOK_DELIVERIES = Counter(
    "WebhookDeliveries",
    "outbound webhook deliveries by outcome: delivered, failed (retried later), dropped, parked (circuit open), "
    "waiting (the tenant's slow lane is full), dead_lettered (the last attempt failed)",
    ("Outcome",),
)
WEBHOOK_ENQUEUE_FAILURES = Counter(
    "WebhookEnqueueFailures", "deliveries a queue kept refusing (kept in the dead-letter queue, or handed back to the stream)"
)
WEBHOOK_CIRCUITS_OPENED = Counter(
    "WebhookCircuitsOpened", "subscriptions whose circuit opened: 3 failed attempts in a row, or a failed probe"
)
ESCALATIONS = Counter("Escalations", "assistance requests escalated by the scheduled sweep")
ESCALATION_FAILURES = Counter("EscalationFailures", "escalation steps that failed (they stay due for the next sweep)")
CONNECTOR_EVENTS = Counter(
    "ConnectorEvents",
    "what the connectors made of what AWS sent, by source (sms, connect, connect_chat) and outcome: applied, "
    "duplicate, routed (a webhook for the routing engine), ignored (unknown number, instance or agent), invalid",
    ("Source", "Outcome"),
)
# The attention feature (rules that raise alerts to supervisors) records here; nothing does yet.
ALERTS_RAISED = Counter("AlertsRaised", "attention alerts raised, by rule kind", ("Kind",))
TRANSCRIPT_RECORDS = Counter(
    "TranscriptRecords",
    "what the transcript function made of the sink's records: applied, duplicate, partial, ignored (metadata, "
    "categories), ended, unknown (no workitem), invalid, failed (handed over again)",
    ("Outcome",),
)
TRANSCRIPT_FAILURES = Counter(
    "TranscriptFailures",
    "calls whose transcript stopped or never started: pipeline failed (Media Insights State Change), "
    "stopped by itself, or could not be started",
    ("Reason",),
    rollup=True,
)


# --- writing -------------------------------------------------------------------------------------------


def set_sink(sink: Sink | None) -> None:
    """Where EMF lines go from now on (None: nowhere). Inside Lambda the default is standard output."""
    global _sink, _sink_chosen
    with _lock:
        _sink, _sink_chosen = sink, True


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _current_sink() -> Sink | None:
    global _sink, _sink_chosen
    if not _sink_chosen:
        from chalicelib.settings import in_lambda  # the environment's one reader; imported on first use

        _sink, _sink_chosen = (_stdout if in_lambda() else None), True
    return _sink


def stack_name() -> str:
    from chalicelib import settings  # the environment's one reader; imported on first use

    return settings.stack_name()


def documents(pending: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]], now_ms: int) -> list[dict[str, Any]]:
    """The EMF documents for ``pending`` (metric and dimension values -> values): one per set of
    dimension values, each metric's values in chunks of at most 100."""
    stack = stack_name()
    by_dimensions: dict[tuple[tuple[str, str], ...], dict[str, list[float]]] = {}
    for (name, dims), values in pending.items():
        metric = CATALOGUE[name]
        folded = [sum(values)] if metric.unit == COUNT else values
        by_dimensions.setdefault(dims, {}).setdefault(name, []).extend(folded)
    out: list[dict[str, Any]] = []
    for dims, metrics in sorted(by_dimensions.items()):
        names = sorted(metrics)
        chunks = max((len(metrics[n]) + MAX_VALUES - 1) // MAX_VALUES for n in names)
        for chunk in range(chunks):
            present = [n for n in names if metrics[n][chunk * MAX_VALUES : (chunk + 1) * MAX_VALUES]]
            for start in range(0, len(present), MAX_METRICS):
                group = present[start : start + MAX_METRICS]
                dimension_set = [STACK_DIMENSION, *(d for d, _ in dims)]
                directives: dict[bool, list[str]] = {}
                for name in group:
                    directives.setdefault(bool(dims) and CATALOGUE[name].rollup, []).append(name)
                body: dict[str, Any] = {
                    "_aws": {
                        "Timestamp": now_ms,
                        "CloudWatchMetrics": [
                            {
                                "Namespace": NAMESPACE,
                                "Dimensions": [dimension_set, [STACK_DIMENSION]] if rollup else [dimension_set],
                                "Metrics": [{"Name": n, "Unit": CATALOGUE[n].unit} for n in members],
                            }
                            for rollup, members in sorted(directives.items())
                        ],
                    },
                    STACK_DIMENSION: stack,
                    **dict(dims),
                }
                for name in group:
                    values = metrics[name][chunk * MAX_VALUES : (chunk + 1) * MAX_VALUES]
                    body[name] = values[0] if len(values) == 1 else values
                out.append(body)
    return out


def flush() -> int:
    """Write what was recorded since the last flush; returns how many lines were written."""
    with _lock:
        pending = dict(_pending)
        _pending.clear()
    sink = _current_sink()
    if not pending or sink is None:
        return 0
    lines = documents(pending, int(time.time() * 1000))
    for body in lines:
        sink(json.dumps(body, separators=(",", ":")))
    return len(lines)


@contextmanager
def invocation() -> Iterator[None]:
    """The scope of one invocation: what it recorded is written when it ends (also when it raises)."""
    try:
        yield
    finally:
        flush()


def milliseconds_since(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.perf_counter()`` reading)."""
    return (time.perf_counter() - started) * 1000
