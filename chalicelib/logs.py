"""Structured, one-line JSON logs for CloudWatch (and the local stack), at the configured level."""

from __future__ import annotations

import json
import logging
import os

_configured = False


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body = {"level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False)


def configure() -> None:
    """Idempotent: the app's loggers write JSON lines at LOG_LEVEL (default INFO)."""
    global _configured  # noqa: PLW0603 - configure once per process
    if _configured:
        return
    _configured = True
    logger = logging.getLogger("chalicelib")
    logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
