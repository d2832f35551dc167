"""Time and ids for the use cases: the system clock (the ``Clock`` port's production side), the
wire's timestamp format, and the random ids of messages, requests and consults.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from chalicelib.services.ports import Clock


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def new_id(prefix: str) -> str:
    """A random, URL-safe id with a readable prefix (``msg_``, ``as_`` ...)."""
    return f"{prefix}_{secrets.token_urlsafe(12).replace('-', 'x').replace('_', 'y')}"


def now_pair(clock: Clock) -> tuple[str, int]:
    moment = clock.now()
    return iso(moment), epoch_ms(moment)
