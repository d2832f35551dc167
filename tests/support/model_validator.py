"""Check request parameters against the constraints of botocore's service models.

botocore's own parameter validation (which also runs under ``Stubber``) checks required members,
types and ``min``; it never checks ``max``, ``pattern`` or ``enum``. The service does, so a request
that passes a Stubber test can still be refused on AWS (a fourth alert rule where the model allows
three, a pool name with a space, a ``MediaEncoding`` other than ``pcm``). This module reads those
constraints from the same model the client was built from and refuses what the service would.

Use it on a client (every call through it is checked before Stubber sees it)::

    client = boto3.client("chime-sdk-media-pipelines", ...)
    enforce_model(client)
    with Stubber(client) as stubber: ...

or check one request directly with :func:`violations`.

Patterns follow Smithy's ``@pattern`` rule: the expression is *not* implicitly anchored (a match
anywhere in the value is enough), so the service models spell ``^...$`` where they mean the whole
value. Lengths count characters (Smithy counts Unicode scalar values), lists and maps count
members, numbers compare their value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape


class ModelViolation(ValueError):
    """A request the service model says the service refuses; ``problems`` lists every reason."""

    def __init__(self, operation: str, problems: list[str]) -> None:
        super().__init__(f"{operation}: " + "; ".join(problems))
        self.operation = operation
        self.problems = problems


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    # The models' expressions are Java's; those in the models we use are also valid Python.
    return re.compile(pattern)


def _bounds(shape: Shape, size: float, what: str, path: str, problems: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        problems.append(f"{path}: {what} {size} is below the minimum {low}")
    if high is not None and size > high:
        problems.append(f"{path}: {what} {size} is above the maximum {high}")


def _check(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        if not isinstance(value, Mapping):
            problems.append(f"{path}: must be a structure")
            return
        for name in shape.required_members:
            if name not in value:
                problems.append(f"{path}.{name}: is required")
        for name, member_value in value.items():
            member = shape.members.get(name)
            if member is None:
                problems.append(f"{path}.{name}: is not a member of {shape.name}")
                continue
            _check(member, member_value, f"{path}.{name}", problems)
    elif isinstance(shape, ListShape):
        if not isinstance(value, list | tuple):
            problems.append(f"{path}: must be a list")
            return
        _bounds(shape, len(value), "length", path, problems)
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}[{index}]", problems)
    elif isinstance(shape, MapShape):
        if not isinstance(value, Mapping):
            problems.append(f"{path}: must be a map")
            return
        _bounds(shape, len(value), "size", path, problems)
        for key, item in value.items():
            _check(shape.key, key, f"{path} key {key!r}", problems)
            _check(shape.value, item, f"{path}[{key!r}]", problems)
    elif kind == "string":
        if not isinstance(value, str):
            return  # botocore's own validation reports the type
        _bounds(shape, len(value), "length", path, problems)
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            problems.append(f"{path}: {value!r} is not one of {sorted(enum)}")
        pattern = shape.metadata.get("pattern")
        if pattern is not None and not _compiled(pattern).search(value):
            problems.append(f"{path}: does not match the pattern {pattern!r}")
    elif kind in ("integer", "long", "float", "double"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            _bounds(shape, value, "value", path, problems)
    elif kind == "blob" and isinstance(value, bytes | bytearray | str):
        _bounds(shape, len(value), "length", path, problems)


def violations(client: Any, operation: str, params: Mapping[str, Any]) -> list[str]:
    """Every constraint of ``operation``'s input shape (in ``client``'s service model) that ``params``
    breaks: required members, unknown members, ``min``/``max`` lengths, sizes and values, ``pattern``
    and ``enum``. ``operation`` is the model's name (``CreateMediaInsightsPipeline``)."""
    model = client.meta.service_model.operation_model(operation)
    problems: list[str] = []
    if model.input_shape is not None:
        _check(model.input_shape, dict(params), operation, problems)
    return problems


def check(client: Any, operation: str, params: Mapping[str, Any]) -> None:
    """Raise :class:`ModelViolation` when ``params`` break a constraint of ``operation``'s model."""
    problems = violations(client, operation, params)
    if problems:
        raise ModelViolation(operation, problems)


def enforce_model(client: Any) -> Any:
    """Check every call made through ``client`` against its service model before it is sent (or
    answered by a ``Stubber``); a violation raises :class:`ModelViolation` from the call. Returns
    ``client``."""
    service = client.meta.service_model.service_id.hyphenize()

    def provide_params(params: dict[str, Any], model: Any, **_: Any) -> None:
        check(client, model.name, params)

    # provide-client-params is emitted before before-parameter-build, where Stubber compares the
    # expected parameters: a violation is reported as such, not as an unexpected call.
    client.meta.events.register(f"provide-client-params.{service}", provide_params)
    return client
