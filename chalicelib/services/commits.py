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

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from chalicelib.domain import coaching as rules
from chalicelib.domain.coaching import Change, Workitem
from chalicelib.domain.errors import DomainError, NotFound, RateLimited, Unavailable
from chalicelib.domain.identity import Role
from chalicelib.domain.timeline import EntryKind, TimelineEntry
from chalicelib.services.clock import now_pair
from chalicelib.services.fanout import FanoutService, concerned, encode_note, expected
from chalicelib.services.messagebus import CoachingEnded, Publisher, WorkitemCommitted
from chalicelib.services.ports import Clock, CounterDelta, Idempotency, Recipient, StaleWorkitem, WorkitemStore

log = logging.getLogger(__name__)

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


# Workitems whose recipients a function instance remembers (ExpectedRecipients): a few hundred bytes each.
EXPECTED_WORKITEMS = 4096
# Reads made beside a commit, for a change that concerns someone its workitem's read did not bring, and
# how long a committed change waits for such a read once its commit is done: one that takes longer (a
# store that stalls) is left to the stream, which posts to every connection, fast ones included.
_BESIDE_COMMIT = ThreadPoolExecutor(max_workers=4, thread_name_prefix="beside-commit")
BESIDE_COMMIT_WAIT_SECONDS = 1.0


class ExpectedRecipients:
    """Whom this function instance expects each workitem's next change to concern: the keys of the agent,
    monitors and customer it had when last read or written here (``fanout.expected``), for the last
    EXPECTED_WORKITEMS workitems. Only a guess of what to read beside the workitem: what a change
    concerns is decided on the workitem itself (``fanout.concerned``)."""

    def __init__(self, size: int = EXPECTED_WORKITEMS) -> None:
        self._size = size
        self._keys: OrderedDict[tuple[str, str], tuple[str, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, tenant_id: str, workitem_id: str) -> tuple[str, ...]:
        with self._lock:
            return self._keys.get((tenant_id, workitem_id), ())

    def saw(self, workitem: Workitem) -> None:
        key = (workitem.tenant_id, workitem.workitem_id)
        with self._lock:
            self._keys[key] = tuple(expected(workitem))
            self._keys.move_to_end(key)
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)


@dataclass(frozen=True)
class Reading:
    """A workitem read for a change that will be pushed, with the recipients read beside it (by key,
    those that exist) and the keys that read asked for."""

    workitem: Workitem
    message: TimelineEntry | None
    recipients: dict[str, Recipient]
    asked: frozenset[str]


class Workitems:
    """Reads a workitem, lets a rule decide, commits the change conditionally (retrying a lost race)
    and raises the events that follow from it on the bus (``bootstrap.EVENT_HANDLERS``)."""

    def __init__(self, store: WorkitemStore, clock: Clock, publish: Publisher, fanout: FanoutService) -> None:
        self.store = store
        self._clock = clock
        self._publish = publish
        self._fanout = fanout
        self._expected = ExpectedRecipients()

    def now(self) -> str:
        return now_pair(self._clock)[0]

    def load(self, tenant_id: str, workitem_id: str, missing: type[DomainError] = NotFound) -> Workitem:
        workitem = self.store.get(tenant_id, workitem_id)
        if workitem is None:
            raise missing(f"workitem {workitem_id} not found")
        self._expected.saw(workitem)
        return workitem

    def read(
        self,
        tenant_id: str,
        workitem_id: str,
        *,
        message_id: str | None = None,
        concerns: Iterable[str] = (),
        known: Mapping[str, Recipient] | None = None,
        after: Reading | None = None,
        missing: type[DomainError] = NotFound,
    ) -> Reading:
        """The workitem a pushed change is decided on, read in one request with the recipients this
        function instance expects the change to concern (:class:`ExpectedRecipients`), those the caller
        knows it will (``concerns``: a supervisor joining) unless it has them already (``known``: a
        transfer's target) and, when asked, a message index item: 1 BatchGetItem (1 GetItem when
        nothing is expected yet). ``after``: the reading of the attempt that lost a race just before;
        whom it asked for is not asked for again (so a retry costs a GetItem, as without fast delivery)."""
        known = {**(after.recipients if after else {}), **(known or {})}
        skip = set(known) | set(after.asked if after else ())
        keys = [k for k in dict.fromkeys([*self._expected.of(tenant_id, workitem_id), *concerns]) if k not in skip]
        got = self.store.read(tenant_id, workitem_id, message_id=message_id, recipients=keys)
        if got.workitem is None:
            raise missing(f"workitem {workitem_id} not found")
        self._expected.saw(got.workitem)
        return Reading(got.workitem, got.message, {**known, **got.recipients}, frozenset([*keys, *skip]))

    def create(
        self, workitem: Workitem, *, idempotency: Idempotency | None = None, counters: Iterable[CounterDelta] = ()
    ) -> None:
        """Store a new workitem with its fan-out note (outbound webhooks learn of it from the stream;
        its agent is told by the caller, which knows the workitem already)."""
        note = encode_note(Change(workitem, workitem), None)
        self.store.create(workitem, idempotency=idempotency, counters=counters, fanout=note)
        self._expected.saw(workitem)

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
        concerns: Iterable[str] = (),
        known: Mapping[str, Recipient] | None = None,
        missing: type[DomainError] = NotFound,
    ) -> Change:
        """Read, decide, commit conditionally; on a lost race read again and decide again
        (:func:`commit_with_retry`). A workitem that does not exist raises ``missing``.

        With ``push`` the commit carries the change's fan-out note, so the stream pushes its events (to
        everyone concerned but the connection ``exclude``, which gets the ack instead), and its timeline
        entries go at once to fast connections (:meth:`commit_pushed`); ``concerns`` and ``known`` name
        recipients the change will concern that its workitem may not name yet (:meth:`read`)."""

        last: list[Reading] = []  # the attempt before a lost race's reading

        def attempt() -> tuple[Change, dict[str, Recipient]]:
            reading = None
            if push:
                before = last[-1] if last else None
                reading = self.read(tenant_id, workitem_id, concerns=concerns, known=known, after=before, missing=missing)
                last[:] = [reading]
            change = decide(reading.workitem if reading else self.load(tenant_id, workitem_id, missing))
            if not change.changed:
                if idempotency is not None:
                    self.store.mark_event(idempotency)
                return change, {}
            extra = list(counters(change)) if counters else ()
            if reading is not None:
                return change, self.commit_pushed(change, exclude, reading, idempotency=idempotency, counters=extra)
            self.store.commit(change, idempotency=idempotency, counters=extra)
            self._expected.saw(change.after)
            return change, {}

        change, recipients = commit_with_retry(attempt)
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
        reading: Reading,
        *,
        idempotency: Idempotency | None = None,
        counters: Iterable[CounterDelta] = (),
    ) -> dict[str, Recipient]:
        """Commit ``change`` with its fan-out note and return whom its timeline entries go to at once:
        the recipients it concerns, as read beside its workitem. Someone that read did not ask for (this
        function instance had not seen the workitem yet, or the change brings someone new) is read
        beside the commit, in parallel (1 BatchGetItem; the caller's ack waits for the slower of the
        two, not for both in a row). Pass the result to :meth:`post_fast` once the commit loop is over."""
        keys = concerned(change) if change.entries else []
        missing = [k for k in keys if k not in reading.asked]
        found = dict(reading.recipients)
        pending = _BESIDE_COMMIT.submit(self._fanout.read_recipients, change.after.tenant_id, missing) if missing else None
        try:
            self.store.commit(change, idempotency=idempotency, counters=counters, fanout=encode_note(change, exclude))
        except BaseException:
            if pending is not None:
                pending.cancel()  # not committed: nothing to post, and the next attempt reads anew
            raise
        if pending is not None:
            found.update(_beside(pending))
        self._expected.saw(change.after)
        return {k: found[k] for k in keys if k in found}

    def post_fast(self, change: Change, recipients: dict[str, Recipient], exclude: str | None) -> None:
        """The committed change's timeline entries to the fast connections among ``recipients`` (W15)."""
        if recipients:
            self._fanout.post_fast(change, recipients, exclude)

    def record(
        self, tenant_id: str, workitem_id: str, kind: EntryKind, author_id: str, author_role: Role, **extra: Any
    ) -> Change:
        """Append an entry for another feature (voice modes, assistance)."""
        return self.mutate(tenant_id, workitem_id, lambda w: rules.record(w, kind, author_id, author_role, self.now(), **extra))


def _beside(pending: Future[dict[str, Recipient]]) -> dict[str, Recipient]:
    """What a read made beside a commit found; nothing when it failed or is still running
    BESIDE_COMMIT_WAIT_SECONDS after the commit (the stream still pushes the change to every
    connection, fast ones included)."""
    try:
        return pending.result(timeout=BESIDE_COMMIT_WAIT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - fast posts are best effort; the commit is what counts
        log.warning("could not read who to tell beside a commit (%s); the stream tells them", type(exc).__name__)
        return {}
