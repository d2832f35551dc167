"""The one commit-with-retry loop: workitem changes under optimistic concurrency.

Writers on one workitem are serialized by optimistic concurrency: each commit is conditional on the
version it read, and a loser reads again, decides again and retries after a jittered pause. With 10
writers in a closed loop each round has one winner, so a writer may lose several rounds in a row;
the budget below lets every one of them through (docs/performance.md, ``contention``). Only a race
lost MAX_COMMIT_ATTEMPTS times in a row is refused ``rate_limited``. A commit that runs out of
COMMIT_BUDGET_SECONDS first is ``unavailable``: the store could not take the change in time (a slow
store, or the backlog a stall leaves behind), which is not contention between callers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator

from chalicelib.domain.errors import DomainError, RateLimited, Unavailable
from chalicelib.services.ports import StaleWorkitem

MAX_COMMIT_ATTEMPTS = 100
COMMIT_BUDGET_SECONDS = 10.0
BACKOFF_CAP_SECONDS = 0.04


def commit_with_retry[T](attempt: Callable[[], T]) -> T:
    """Run ``attempt`` (read, decide, commit conditionally) until it does not raise
    :class:`StaleWorkitem`; every other error ends the loop at once."""
    budget = _CommitBudget()
    for n in budget:
        try:
            return attempt()
        except StaleWorkitem:
            budget.lost(n)
    raise budget.exhausted()


class _CommitBudget:
    """Attempts of one commit loop: at most MAX_COMMIT_ATTEMPTS, and none started after
    COMMIT_BUDGET_SECONDS, so the handler answers well within its function timeout."""

    def __init__(self) -> None:
        self._deadline = time.monotonic() + COMMIT_BUDGET_SECONDS
        self._out_of_time = False

    def __iter__(self) -> Iterator[int]:
        for attempt in range(MAX_COMMIT_ATTEMPTS):
            if attempt and time.monotonic() >= self._deadline:
                self._out_of_time = True
                return
            yield attempt

    def lost(self, attempt: int) -> None:
        """A short random pause after a lost race, so writers on one workitem spread out. It shrinks
        as a caller keeps losing, so those who have waited longest get the next turn first (the
        tail of the ack latency stays short; exponential backoff would favour newcomers)."""
        ceiling = BACKOFF_CAP_SECONDS / (1 + attempt)
        pause = random.uniform(0, ceiling)  # noqa: S311 - jitter, not security
        time.sleep(max(0.0, min(pause, self._deadline - time.monotonic())))

    def exhausted(self) -> DomainError:
        if self._out_of_time:
            return Unavailable("the store was too slow to commit this change in time; nothing was applied, retry")
        return RateLimited("the workitem kept changing under this request; nothing was applied, retry")
