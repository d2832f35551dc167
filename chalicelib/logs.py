"""Structured logs: one JSON object per line, for CloudWatch Logs and the local stack (docs/logs.md).

Every line carries the keys AWS Lambda Powertools' Logger emits (``timestamp``, ``level``, ``location``,
``message``, ``service``, ``cold_start``, ``function_name``, ``function_memory_size``, ``function_arn``,
``function_request_id``, ``xray_trace_id``, ``correlation_id``, ``exception``, ``exception_name``) plus who
and what the current call is about (``tenant_id``, ``user_id``, ``connection_id``, ``action``,
``workitem_id``) and any ``extra={...}`` fields of the call that logged. Standard library only: importing
this module costs nothing that ``import app`` does not load anyway.

The context of a call lives in a ``contextvars.ContextVar``:

* ``invocation(lambda_context, **fields)`` opens the scope of one invocation (app.py's middleware
  does, for every handler) and restores the previous state when it ends, so nothing leaks from one warm
  invocation into the next;
* ``bind(**fields)`` adds what the entry layer learns during the call (the caller's tenant, the action).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

SERVICE = "supervisor-coaching"

# The keys of the current call that ``bind`` and ``invocation`` accept, in the order they are written.
CALL_KEYS = ("tenant_id", "user_id", "connection_id", "action", "workitem_id")

_configured = False
_cold_start = True
_call: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar("coaching_log_call", default=None)

# Bearer tokens (JWTs) and outbound webhook signing secrets are replaced wherever they appear in a line,
# whatever logged them: a last line of defence, the code never logs them on purpose.
_SECRETS = re.compile(r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*|whsec_[\w+/=-]+")
REDACTED = "[redacted]"

# What every LogRecord has; any other attribute came from ``extra={...}`` and is written as a key.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def _lambda_fields(context: Any) -> dict[str, Any]:
    fields = {
        "function_name": getattr(context, "function_name", None),
        "function_memory_size": getattr(context, "memory_limit_in_mb", None),
        "function_arn": getattr(context, "invoked_function_arn", None) or None,
        "function_request_id": getattr(context, "aws_request_id", None),
    }
    return {k: v for k, v in fields.items() if v is not None}


@contextmanager
def invocation(lambda_context: Any = None, **fields: Any) -> Iterator[None]:
    """The scope of one invocation: its Lambda context (request id, function, cold start) and ``fields``
    are on every line logged inside it. Nested scopes add to the outer one; each restores what was there
    before when it ends (also when the call raises)."""
    global _cold_start  # noqa: PLW0603 - the first invocation of this process is its cold start
    scope = dict(_call.get() or {})
    if lambda_context is not None:
        scope.update(_lambda_fields(lambda_context), cold_start=_cold_start)
        _cold_start = False
    scope.update((k, v) for k, v in fields.items() if v is not None and v != "")
    token = _call.set(scope)
    try:
        yield
    finally:
        _call.reset(token)


def bind(**fields: Any) -> None:
    """Add ``fields`` (None and empty values are left out) to the current invocation's lines until it
    ends. Outside an invocation this does nothing, so nothing can outlive a call."""
    scope = _call.get()
    if scope is None:
        return
    _call.set({**scope, **{k: v for k, v in fields.items() if v is not None and v != ""}})


def current() -> dict[str, Any]:
    """The fields bound to the current invocation (empty outside one)."""
    return dict(_call.get() or {})


def gateway_fields(request_context: Mapping[str, Any] | None) -> dict[str, Any]:
    """The call's keys API Gateway puts in an event's ``requestContext``: its request id (as
    ``correlation_id``), the WebSocket connection, and the caller the ``$connect`` authorizer found."""
    ctx = request_context or {}
    auth = ctx.get("authorizer") or {}
    return {
        "correlation_id": ctx.get("requestId"),
        "connection_id": ctx.get("connectionId"),
        "tenant_id": auth.get("tenantId") if isinstance(auth, Mapping) else None,
        "user_id": auth.get("userId") if isinstance(auth, Mapping) else None,
    }


def _trace_id() -> str | None:
    """X-Ray's root trace id of the current invocation (Lambda sets ``_X_AMZN_TRACE_ID`` per invocation)."""
    from chalicelib.settings import trace_header  # the settings module is the environment's one reader

    header = trace_header()
    if not header:
        return None
    for part in header.split(";"):
        if part.startswith("Root="):
            return part[5:]
    return None


def _timestamp(record: logging.LogRecord) -> str:
    """ISO 8601 in UTC with milliseconds: ``2026-12-01T15:04:05.123Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (tracebacks are one ``exception`` string)."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": record.levelname,
            "location": f"{record.module}.{record.funcName}:{record.lineno}",
            "message": record.getMessage(),
            "logger": record.name,
            "service": SERVICE,
        }
        body.update(_call.get() or {})
        trace = _trace_id()
        if trace:
            body["xray_trace_id"] = trace
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                body[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            body["exception_name"] = record.exc_info[0].__name__
            body["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            body["exception"] = record.exc_text
        if record.stack_info:
            body["stack_trace"] = self.formatStack(record.stack_info)
        return _SECRETS.sub(REDACTED, json.dumps(body, ensure_ascii=False, default=str))


def configure(level: str | None = None) -> None:
    """Idempotent: the app's loggers (``chalicelib.*``) write JSON lines at ``level``, by default the
    settings' ``log_level`` (LOG_LEVEL, INFO when unset)."""
    global _configured  # noqa: PLW0603 - configure once per process
    if _configured:
        return
    _configured = True
    logger = logging.getLogger("chalicelib")
    if level is None:
        from chalicelib.settings import load  # imported here: importing the logs costs no import beyond the stdlib

        level = load().log_level
    logger.setLevel(level.upper())
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
