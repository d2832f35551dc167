"""The one commit-with-retry loop, and :class:`Workitems`, the read-decide-commit cycle every use case
that changes a workitem goes through (coaching, voice, assistance, inbound webhooks).

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
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from chalicelib.domain import coaching as rules
from chalicelib.domain.coaching import Change, Workitem
from chalicelib.domain.errors import DomainError, NotFound, RateLimited, Unavailable
from chalicelib.domain.identity import Role
from chalicelib.domain.timeline import EntryKind
from chalicelib.services.clock import now_pair
from chalicelib.services.fanout import FanoutService, encode_note
from chalicelib.services.messagebus import CoachingEnded, Publisher, WorkitemCommitted
from chalicelib.services.ports import Clock, CounterDelta, Idempotency, Recipient, StaleWorkitem, WorkitemStore

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


class Workitems:
    """Reads a workitem, lets a rule decide, commits the change conditionally (retrying a lost race)
    and raises the events that follow from it on the bus (``bootstrap.EVENT_HANDLERS``)."""

    def __init__(self, store: WorkitemStore, clock: Clock, publish: Publisher, fanout: FanoutService) -> None:
        self.store = store
        self._clock = clock
        self._publish = publish
        self._fanout = fanout

    def now(self) -> str:
        return now_pair(self._clock)[0]

    def load(self, tenant_id: str, workitem_id: str, missing: type[DomainError] = NotFound) -> Workitem:
        workitem = self.store.get(tenant_id, workitem_id)
        if workitem is None:
            raise missing(f"workitem {workitem_id} not found")
        return workitem

    def create(
        self, workitem: Workitem, *, idempotency: Idempotency | None = None, counters: Iterable[CounterDelta] = ()
    ) -> None:
        """Store a new workitem with its fan-out note (outbound webhooks learn of it from the stream;
        its agent is told by the caller, which knows the workitem already)."""
        note = encode_note(Change(workitem, workitem), None)
        self.store.create(workitem, idempotency=idempotency, counters=counters, fanout=note)

    def mark_event(self, idempotency: Idempotency) -> None:
        self.store.mark_event(idempotency)

    def mutate(
        self,
        tenant_id: str,
        workitem_id: str,
        decide: Callable[[Workitem], Change],
        *,
        idempotency: Idempotency | None = None,
        counters: Callable[[Change], Iterable[CounterDelta]] | None = None,
        push: bool = False,
        exclude: str | None = None,
        missing: type[DomainError] = NotFound,
    ) -> Change:
        """Read, decide, commit conditionally; on a lost race read again and decide again
        (:func:`commit_with_retry`). A workitem that does not exist raises ``missing``.

        With ``push`` the commit carries the change's fan-out note, so its events are pushed (to
        everyone concerned but the connection ``exclude``, which gets the ack instead): its timeline
        entries at once to fast connections (:meth:`commit_pushed`), everything by the stream."""

        read: dict[str, Recipient] = {}  # the recipients an attempt read, for the next one after a lost race

        def attempt() -> tuple[Change, dict[str, Recipient] | None]:
            change = decide(self.load(tenant_id, workitem_id, missing))
            if not change.changed:
                if idempotency is not None:
                    self.store.mark_event(idempotency)
                return change, None
            extra = list(counters(change)) if counters else ()
            if push:
                return change, self.commit_pushed(change, exclude, idempotency=idempotency, counters=extra, known=read)
            self.store.commit(change, idempotency=idempotency, counters=extra)
            return change, None

        change, recipients = commit_with_retry(attempt)
        if recipients:
            self.post_fast(change, recipients, exclude)
        if change.changed:
            if change.ended_for:
                self._publish(CoachingEnded(change))
            self._publish(WorkitemCommitted(change))
        return change

    def commit_pushed(
        self,
        change: Change,
        exclude: str | None,
        *,
        idempotency: Idempotency | None = None,
        counters: Iterable[CounterDelta] = (),
        known: dict[str, Recipient] | None = None,
    ) -> dict[str, Recipient] | None:
        """Commit ``change`` with its fan-out note, holding the recipients read just before (1
        BatchGetItem; the stream reuses them rather than reading them again). ``known`` keeps what an
        attempt read for the next one: a retry after a lost race reads only when it concerns someone
        new (so a race still costs one GetItem and one TransactWriteItems). Returns the recipients for
        :meth:`post_fast` once the commit loop is over (None: not read, the stream reads them)."""
        recipients = self._fanout.recipients_for(change, known)
        if known is not None and recipients:
            known.update(recipients)
        self.store.commit(change, idempotency=idempotency, counters=counters, fanout=encode_note(change, exclude, recipients))
        return recipients

    def post_fast(self, change: Change, recipients: dict[str, Recipient], exclude: str | None) -> None:
        """The committed change's timeline entries to the fast connections among ``recipients`` (W15)."""
        self._fanout.post_fast(change, recipients, exclude)

    def record(
        self, tenant_id: str, workitem_id: str, kind: EntryKind, author_id: str, author_role: Role, **extra: Any
    ) -> Change:
        """Append an entry for another feature (voice modes, assistance)."""
        return self.mutate(tenant_id, workitem_id, lambda w: rules.record(w, kind, author_id, author_role, self.now(), **extra))
