"""Fair delivery of outbound webhooks: what a receiver's recent answers allow (docs/webhooks.md
"Fair delivery", docs/product.md W8.7).

A subscription remembers how its receiver answered (:class:`Health`). A receiver known to be fast is
posted to at once. Any other one (new or edited, slow, failing, or being probed) is posted to only
through its tenant's *slow lane*, a few places per tenant, so a slow or dead receiver can hold no
more of the delivery function than those places. After :data:`BREAK_AFTER` failed attempts in a
row the subscription's circuit opens: nothing is posted to it until :attr:`Health.open_until`, then
one delivery probes; a failed probe opens it again for twice as long (up to
:data:`BREAK_MAX_SECONDS`), a 2xx closes it.

Pure rules: the delivery service stores the health, takes the lane places and posts.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

# An attempt answered 2xx within this many seconds marks its receiver fast; a longer one (or one
# still running after this long) marks it slow.
SLOW_SECONDS = 2.0
# Failed attempts in a row that open the circuit, and how long it stays open: 30 s, doubling with
# every failed probe, at most 10 minutes.
BREAK_AFTER = 3
BREAK_BASE_SECONDS = 30
BREAK_MAX_SECONDS = 600
# How many of a tenant's posts to receivers that are not known to be fast may run at once.
SLOW_LANE_PLACES = 4


class Health(NamedTuple):
    """What the last attempts to a subscription's receiver said (a NamedTuple: cheaper to define at
    import than a dataclass, and the app imports this module)."""

    fast: bool = False  # the last attempt was answered 2xx within SLOW_SECONDS
    failures: int = 0  # failed attempts in a row
    open_until: int = 0  # epoch seconds: with BREAK_AFTER failures, nothing is posted before then

    @property
    def broken(self) -> bool:
        return self.failures >= BREAK_AFTER


class Gate(enum.Enum):
    POST = "post"  # a fast receiver: post now
    LANE = "lane"  # post through the tenant's slow lane
    PROBE = "probe"  # the circuit's time is up: one delivery may claim the probe, through the lane
    PARK = "park"  # the circuit is open: do not post; wait until ``open_until``


def gate(health: Health, now: float) -> Gate:
    if health.broken:
        return Gate.PARK if now < health.open_until else Gate.PROBE
    return Gate.POST if health.fast else Gate.LANE


def break_seconds(failures: int) -> int:
    """How long the circuit stays open after ``failures`` failed attempts in a row (at least BREAK_AFTER)."""
    return int(min(BREAK_MAX_SECONDS, BREAK_BASE_SECONDS * 2 ** max(0, min(failures - BREAK_AFTER, 20))))


def after_attempt(health: Health, ok: bool, seconds: float, now: float) -> Health | None:
    """The health after an attempt that took ``seconds`` (``ok``: answered 2xx); None when unchanged."""
    if ok:
        new = Health(fast=seconds <= SLOW_SECONDS)
    else:
        failures = health.failures + 1
        new = Health(failures=failures, open_until=int(now) + break_seconds(failures) if failures >= BREAK_AFTER else 0)
    return None if new == health else new
