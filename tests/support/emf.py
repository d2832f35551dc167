"""Reading the Embedded Metric Format lines the product writes (chalicelib/metrics.py), as CloudWatch would.

:func:`parse` turns EMF lines into data points after checking each line against the EMF specification's
structure (what CloudWatch Logs would refuse to extract); :class:`Capture` installs a sink that keeps the
lines of one test.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from chalicelib import metrics

UNITS = {"Count", "Milliseconds", "Seconds", "Percent", "Bytes", "None"}


@dataclass(frozen=True)
class Point:
    """One metric value CloudWatch would store: namespace, name, unit, the dimensions of one dimension set."""

    namespace: str
    name: str
    unit: str
    dimensions: tuple[tuple[str, str], ...]
    value: float


def check(document: dict[str, Any]) -> None:
    """Raise AssertionError when ``document`` is not a valid EMF document."""
    meta = document.get("_aws")
    assert isinstance(meta, dict), "no _aws member"
    assert isinstance(meta.get("Timestamp"), int) and meta["Timestamp"] > 1_600_000_000_000, meta.get("Timestamp")
    directives = meta.get("CloudWatchMetrics")
    assert isinstance(directives, list) and directives, "no CloudWatchMetrics"
    for directive in directives:
        assert isinstance(directive.get("Namespace"), str) and 1 <= len(directive["Namespace"]) <= 255
        dimension_sets = directive.get("Dimensions")
        assert isinstance(dimension_sets, list)
        for dimension_set in dimension_sets:
            assert isinstance(dimension_set, list) and len(dimension_set) <= 30
            for name in dimension_set:
                value = document.get(name)
                assert isinstance(value, str) and 1 <= len(value) <= 1024, f"dimension {name} = {value!r}"
        members = directive.get("Metrics")
        assert isinstance(members, list) and 1 <= len(members) <= 100
        for member in members:
            assert member.get("Unit") in UNITS, member
            value = document.get(member["Name"])
            values = value if isinstance(value, list) else [value]
            assert 1 <= len(values) <= 100, f"{member['Name']}: {len(values)} values"
            assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values), (member, value)


def parse(lines: Iterable[str]) -> list[Point]:
    points: list[Point] = []
    for line in lines:
        document = json.loads(line)
        check(document)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dims = tuple((name, document[name]) for name in dimension_set)
                for member in directive["Metrics"]:
                    value = document[member["Name"]]
                    for v in value if isinstance(value, list) else [value]:
                        points.append(Point(directive["Namespace"], member["Name"], member["Unit"], dims, float(v)))
    return points


@dataclass
class Capture:
    """The EMF lines written while it is installed."""

    lines: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)

    def points(self, name: str | None = None, **dimensions: str) -> list[Point]:
        """The data points of ``name`` (all when None) whose dimension set is exactly Stack plus ``dimensions``."""
        metrics.flush()
        with self.lock:
            lines = list(self.lines)
        wanted = {"Stack", *dimensions}
        return [
            p
            for p in parse(lines)
            if (name is None or p.name == name)
            and {d for d, _ in p.dimensions} == wanted
            and all(dict(p.dimensions).get(k) == v for k, v in dimensions.items())
        ]

    def total(self, name: str, **dimensions: str) -> float:
        return sum(p.value for p in self.points(name, **dimensions))

    def samples(self, name: str, **dimensions: str) -> list[float]:
        return [p.value for p in self.points(name, **dimensions)]


@contextmanager
def capture() -> Iterator[Capture]:
    """Install a capturing sink (what was recorded before is dropped first); restore the default after."""
    metrics.set_sink(None)
    metrics.flush()
    captured = Capture()
    metrics.set_sink(captured.write)
    try:
        yield captured
    finally:
        metrics.flush()
        metrics.set_sink(None)
