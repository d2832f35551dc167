"""Coaching analytics: what is counted, on which day and for whom (docs/product.md W13).

Every countable fact becomes a :class:`Slot`: one source event's contribution to daily buckets,
under a key that names the fact (a coach message's id, a workitem's first supervisor join, the
current reaction to a message). The store keeps one record per slot key, and a slot replaces the
record only if it *wins* against it by its rule:

* ``ONCE``: the first one applied wins, later ones are the same fact delivered again;
* ``FIRST``: the lowest ``order`` wins (a workitem's first supervisor join: a join replayed late
  still moves the count to the day of the earlier join);
* ``LATEST``: the highest ``order`` wins (a message's current reaction).

When a slot wins, the buckets change by its contribution minus the contribution of the slot it
replaces (:func:`delta`). Because the winner of a key is a choice that does not depend on the order
the slots arrive in, applying any sequence of slots, with any of them repeated and in any order,
ends in the buckets :func:`direct` computes from the set of slots. That is the exactly-once
promise, and ``tests/unit/test_analytics_rules.py`` checks it on generated histories.

Buckets are per UTC day and per dimension (:class:`Dim`). Counters are integers; the claim time is
a histogram of whole seconds from 0 to 3,600 (longer counts as 3,600), so buckets of several days
merge by addition and the lower median stays exact (:func:`lower_median`).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from .errors import Invalid
from .timeline import EntryKind, TimelineEntry

MAX_DAYS = 366
HISTOGRAM_CAP_SECONDS = 3600

# Counter name in storage -> metric name (short names keep the bucket items small; the wire's names
# are the entry layer's, entrypoints/wire.py).
COUNTERS: dict[str, str] = {
    "mw": "monitored_workitems",
    "cm": "coach_messages",
    "hp": "helpful",
    "nh": "not_helpful",
    "fw": "forwarded",
    "ar": "assist_requested",
    "ac": "assist_claimed",
    "ae": "assist_escalated",
    "lr": "alerts_raised",
    "la": "alerts_acked",
}
# Histogram name in storage (one counter per whole second, ``<prefix><seconds>``) -> p50 metric.
HISTOGRAMS: dict[str, str] = {"k": "claim_seconds_p50", "lk": "ack_seconds_p50"}
# The metrics in report order: coaching, assistance, attention alerts (docs/product.md W13).
METRICS: tuple[str, ...] = (
    "monitored_workitems",
    "coach_messages",
    "helpful",
    "not_helpful",
    "forwarded",
    "assist_requested",
    "assist_claimed",
    "assist_escalated",
    "claim_seconds_p50",
    "alerts_raised",
    "alerts_acked",
    "ack_seconds_p50",
)
assert set(METRICS) == {*COUNTERS.values(), *HISTOGRAMS.values()}


class Dim(str, enum.Enum):
    """What a bucket is kept per. ``TENANT`` (key ``""``) serves the day grouping and an admin's
    totals; ``AGENT_TEMPLATE`` (key ``<agent>/<template>``) a supervisor's template grouping."""

    TENANT = "d"
    AGENT = "a"
    SUPERVISOR = "s"
    TEMPLATE = "t"
    AGENT_TEMPLATE = "at"


class Rule(str, enum.Enum):
    ONCE = "once"
    FIRST = "first"
    LATEST = "latest"


class GroupBy(str, enum.Enum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    TEMPLATE = "template"
    DAY = "day"


@dataclass(frozen=True, order=True)
class Cell:
    """One bucket: a dimension's key on one UTC day (``YYYY-MM-DD``)."""

    dim: Dim
    key: str
    day: str


Vector = Mapping[str, int]


@dataclass(frozen=True)
class Slot:
    """One fact's contribution to the buckets, under the key that names the fact."""

    key: str
    rule: Rule
    order: int
    cells: tuple[tuple[Cell, Vector], ...]

    def encode(self) -> str:
        """The contribution as stored with the slot's record (so a later winner can take it back)."""
        return json.dumps(
            [[c.dim.value, c.key, c.day, dict(v)] for c, v in self.cells], separators=(",", ":"), ensure_ascii=False
        )

    @staticmethod
    def decode(key: str, rule: Rule, order: int, text: str) -> Slot:
        raw = json.loads(text)
        return Slot(key, rule, order, tuple((Cell(Dim(d), k, day), dict(v)) for d, k, day, v in raw))


def wins(new: Slot, old: Slot | None) -> bool:
    """Whether ``new`` replaces the stored ``old`` (None: nothing stored under the key yet)."""
    if old is None:
        return True
    if new.rule is Rule.FIRST:
        return new.order < old.order
    if new.rule is Rule.LATEST:
        return new.order > old.order
    return False


def delta(new: Slot, old: Slot | None) -> dict[Cell, dict[str, int]]:
    """What the buckets change by when ``new`` replaces ``old``: net per cell, zeros left out."""
    out: dict[Cell, dict[str, int]] = {}
    for sign, slot in ((1, new), (-1, old)):
        if slot is None:
            continue
        for cell, vector in slot.cells:
            target = out.setdefault(cell, {})
            for name, n in vector.items():
                target[name] = target.get(name, 0) + sign * n
    return {cell: {k: v for k, v in vec.items() if v} for cell, vec in out.items() if any(vec.values())}


def add_into(buckets: dict[Cell, dict[str, int]], change: Mapping[Cell, Mapping[str, int]]) -> None:
    for cell, vector in change.items():
        target = buckets.setdefault(cell, {})
        for name, n in vector.items():
            target[name] = target.get(name, 0) + n
            if not target[name]:
                del target[name]
        if not target:
            del buckets[cell]


class Ledger:
    """Slots applied one by one, as the store applies them (the in-memory store, and the reference
    the tests hold the DynamoDB store to)."""

    def __init__(self) -> None:
        self.slots: dict[str, Slot] = {}
        self.buckets: dict[Cell, dict[str, int]] = {}

    def apply(self, slot: Slot) -> bool:
        old = self.slots.get(slot.key)
        if not wins(slot, old):
            return False
        self.slots[slot.key] = slot
        add_into(self.buckets, delta(slot, old))
        return True

    def read(self, reads: Iterable[Read]) -> list[tuple[Cell, dict[str, int]]]:
        """What the store answers for ``reads`` (:func:`stored_answer` over the day buckets)."""
        return [pair for r in reads for pair in stored_answer(r, self.buckets.items())]


def direct(slots: Iterable[Slot]) -> dict[Cell, dict[str, int]]:
    """The buckets computed at once from every slot: the winner of each key, summed."""
    winners: dict[str, Slot] = {}
    for s in slots:
        if wins(s, winners.get(s.key)):
            winners[s.key] = s
    buckets: dict[Cell, dict[str, int]] = {}
    for s in winners.values():
        add_into(buckets, delta(s, None))
    return buckets


# --- days and seconds ---------------------------------------------------------------------------


def _moment(at: str) -> datetime:
    """An ISO-8601 time with an offset (or ``Z``; none is read as UTC)."""
    moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def day_of(at: str) -> str:
    """The UTC day (``YYYY-MM-DD``) of an ISO-8601 time."""
    return _moment(at).astimezone(UTC).date().isoformat()


def epoch_seconds(at: str) -> float:
    return _moment(at).timestamp()


def whole_seconds(start: str, end: str) -> int:
    """Whole seconds from ``start`` to ``end`` (rounded down, never negative), capped at 3,600."""
    return max(0, min(HISTOGRAM_CAP_SECONDS, math.floor(epoch_seconds(end) - epoch_seconds(start))))


def lower_median(histogram: Mapping[int, int]) -> int | None:
    """The lower median of the samples a histogram counts (None when it counts none): the value at
    rank ceil(n / 2) in ascending order."""
    n = sum(c for c in histogram.values() if c > 0)
    if n == 0:
        return None
    rank = (n + 1) // 2
    seen = 0
    for value in sorted(histogram):
        seen += max(0, histogram[value])
        if seen >= rank:
            return value
    raise AssertionError("unreachable: the ranks add up to n")


# --- facts from the coaching timeline --------------------------------------------------------


def _per_dims(day: str, vector: Vector, agent: str | None, supervisor: str | None) -> tuple[tuple[Cell, Vector], ...]:
    cells = [(Cell(Dim.TENANT, "", day), vector)]
    if agent:
        cells.append((Cell(Dim.AGENT, agent, day), vector))
    if supervisor:
        cells.append((Cell(Dim.SUPERVISOR, supervisor, day), vector))
    return tuple(cells)


def entry_slots(workitem_id: str, agent_id: str, entry: TimelineEntry) -> list[Slot]:
    """The slots of one timeline entry, ``agent_id`` being the workitem's agent when it was written
    (joins and coach messages name it in ``agentId``; entries written before they did use ``agent_id``).

    Assistance entries are not counted here: the assistance records are (:func:`assist_slots`),
    whether or not the request named a workitem."""
    day = day_of(entry.at)
    kind = entry.kind
    agent_id = str(entry.extra.get("agentId") or agent_id)  # joins and coach messages name it themselves
    if kind is EntryKind.SUPERVISOR_JOINED:
        one = {"mw": 1}
        sup = entry.author_id
        # distinct workitems: the first join counts, per tenant, per agent and per supervisor
        return [
            Slot(f"mw|d|{workitem_id}", Rule.FIRST, entry.seq, ((Cell(Dim.TENANT, "", day), one),)),
            Slot(f"mw|a|{agent_id}|{workitem_id}", Rule.FIRST, entry.seq, ((Cell(Dim.AGENT, agent_id, day), one),)),
            Slot(f"mw|s|{sup}|{workitem_id}", Rule.FIRST, entry.seq, ((Cell(Dim.SUPERVISOR, sup, day), one),)),
        ]
    if kind is EntryKind.COACH_MESSAGE and entry.author_role.value == "supervisor" and entry.message_id:
        cells = _per_dims(day, {"cm": 1}, agent_id, entry.author_id)
        return [Slot(f"cm|{workitem_id}|{entry.message_id}", Rule.ONCE, 0, cells)]
    if kind is EntryKind.REACTION and entry.message_id:
        coach = str(entry.extra.get("supervisorId") or "")
        name = {"thumbs_up": "hp", "thumbs_down": "nh"}.get(entry.reaction or "")
        # cleared: a slot that takes the earlier reaction back and adds nothing
        cells = _per_dims(day, {name: 1}, entry.author_id, coach or None) if name else ()
        return [Slot(f"re|{workitem_id}|{entry.message_id}", Rule.LATEST, entry.seq, cells)]
    if kind is EntryKind.AGENT_MESSAGE and entry.forwarded_from and entry.message_id:
        coach = str(entry.extra.get("supervisorId") or "")
        cells = _per_dims(day, {"fw": 1}, entry.author_id, coach or None)
        return [Slot(f"fw|{workitem_id}|{entry.message_id}", Rule.ONCE, 0, cells)]
    return []


# --- facts from the assistance records ---------------------------------------------------------


@dataclass(frozen=True)
class AssistFacts:
    """What the analytics need of one assistance request (from its record or its events)."""

    assist_id: str
    agent_id: str
    template_id: str
    created_at: str
    to_supervisors: bool  # a hand raised to supervisors (a question to a fellow agent is not counted)
    escalation_seconds: int
    escalated: bool = False
    claimed_by: str | None = None
    claimed_at: str | None = None


def _assist_cells(day: str, vector: Vector, f: AssistFacts, supervisor: str | None) -> tuple[tuple[Cell, Vector], ...]:
    return (
        *_per_dims(day, vector, f.agent_id, supervisor),
        (Cell(Dim.TEMPLATE, f.template_id, day), vector),
        (Cell(Dim.AGENT_TEMPLATE, f"{f.agent_id}/{f.template_id}", day), vector),
    )


def first_escalation_at(f: AssistFacts) -> str:
    """When the first escalation step fell due: the request's time rounded up to a second, plus the
    tenant's escalation delay (the step's day is this one's, whenever the sweep took it)."""
    due = math.ceil(epoch_seconds(f.created_at)) + max(1, f.escalation_seconds)
    return datetime.fromtimestamp(due, UTC).isoformat()


def requested_slots(f: AssistFacts) -> list[Slot]:
    if not f.to_supervisors:
        return []
    return [Slot(f"ar|{f.assist_id}", Rule.ONCE, 0, _assist_cells(day_of(f.created_at), {"ar": 1}, f, None))]


def escalated_slots(f: AssistFacts) -> list[Slot]:
    if not f.to_supervisors or not f.escalated:
        return []
    day = day_of(first_escalation_at(f))
    return [Slot(f"ae|{f.assist_id}", Rule.ONCE, 0, _assist_cells(day, {"ae": 1}, f, None))]


def claimed_slots(f: AssistFacts) -> list[Slot]:
    if not f.to_supervisors or not f.claimed_by or not f.claimed_at:
        return []
    seconds = whole_seconds(f.created_at, f.claimed_at)
    vector = {"ac": 1, f"k{seconds}": 1}
    return [Slot(f"ac|{f.assist_id}", Rule.ONCE, 0, _assist_cells(day_of(f.claimed_at), vector, f, f.claimed_by))]


def assist_slots(f: AssistFacts) -> list[Slot]:
    """Every slot of a request as its record stands (the rebuild's view)."""
    return [*requested_slots(f), *escalated_slots(f), *claimed_slots(f)]


# --- facts from the attention alerts -----------------------------------------------------------


def alert_raised_slots(alert_id: str, agent_id: str, raised_at: str) -> list[Slot]:
    """An attention alert raised on a workitem of ``agent_id``: counted on the day it was raised, for
    the tenant and the agent (stored in the raise's own transaction, so once)."""
    return [Slot(f"lr|{alert_id}", Rule.ONCE, 0, _per_dims(day_of(raised_at), {"lr": 1}, agent_id, None))]


def alert_acked_slots(alert_id: str, agent_id: str, raised_at: str, acked_by: str, acked_at: str) -> list[Slot]:
    """The first ack of an alert: counted on the day of the ack, for the tenant, the agent and the
    supervisor who acked, with its whole seconds from raise to ack (capped at 3,600)."""
    vector = {"la": 1, f"lk{whole_seconds(raised_at, acked_at)}": 1}
    return [Slot(f"la|{alert_id}", Rule.ONCE, 0, _per_dims(day_of(acked_at), vector, agent_id, acked_by))]


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    start: date
    end: date
    group_by: GroupBy

    @property
    def days(self) -> list[str]:
        return [(self.start + timedelta(days=i)).isoformat() for i in range((self.end - self.start).days + 1)]

    @property
    def months(self) -> list[str]:
        return list(dict.fromkeys(d[:7] for d in self.days))


def parse_query(start: str | None, end: str | None, group_by: str | None) -> Query:
    """``from``, ``to`` (UTC days, both included, at most 366 of them) and ``groupBy``: every
    mistake is :class:`Invalid` naming the parameter."""
    days = []
    for name, raw in (("from", start), ("to", end)):
        if raw is None or raw == "":
            raise Invalid(f"{name} is required (YYYY-MM-DD)")
        digits = raw[:4] + raw[5:7] + raw[8:]
        if len(raw) != 10 or raw[4] + raw[7] != "--" or not (digits.isascii() and digits.isdigit()):
            raise Invalid(f"{name} must be a date YYYY-MM-DD")
        try:
            days.append(date.fromisoformat(raw))
        except ValueError:
            raise Invalid(f"{name} must be a date YYYY-MM-DD") from None
    if group_by is None or group_by == "":
        raise Invalid("groupBy is required (agent, supervisor, template or day)")
    try:
        grouping = GroupBy(group_by)
    except ValueError:
        raise Invalid("groupBy must be agent, supervisor, template or day") from None
    first, last = days
    if first > last:
        raise Invalid("from must not be after to")
    if (last - first).days + 1 > MAX_DAYS:
        raise Invalid(f"the range may cover at most {MAX_DAYS} days")
    return Query(first, last, grouping)


@dataclass
class Totals:
    """Counters and histograms summed over buckets."""

    counters: dict[str, int] = field(default_factory=dict)
    histograms: dict[str, dict[int, int]] = field(default_factory=dict)

    def add(self, vector: Mapping[str, int]) -> None:
        for name, n in vector.items():
            if name in COUNTERS:
                self.counters[name] = self.counters.get(name, 0) + n
                continue
            prefix = name.rstrip("0123456789")
            if prefix in HISTOGRAMS and name[len(prefix) :]:
                h = self.histograms.setdefault(prefix, {})
                sec = int(name[len(prefix) :])
                h[sec] = h.get(sec, 0) + n

    @property
    def empty(self) -> bool:
        """Nothing counted (what a month roll-up minus its days left out nets to for a key with no
        fact in the range)."""
        return not any(self.counters.values()) and not any(n for h in self.histograms.values() for n in h.values())

    def metrics(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {wire: self.counters.get(name, 0) for name, wire in COUNTERS.items()}
        for prefix, wire in HISTOGRAMS.items():
            out[wire] = lower_median(self.histograms.get(prefix, {}))
        return {m: out[m] for m in METRICS}


@dataclass(frozen=True)
class Scope:
    """Whose numbers a caller sees: the whole tenant (admins), or some agents and one supervisor."""

    tenant_wide: bool
    agents: frozenset[str] = frozenset()
    supervisor: str | None = None


@dataclass(frozen=True)
class Report:
    query: Query
    rows: list[tuple[str, dict[str, int | None]]]
    totals: dict[str, int | None]


def _sum(cells: Iterable[tuple[Cell, Vector]], key_of: Callable[[Cell], str | None]) -> dict[str, Totals]:
    out: dict[str, Totals] = {}
    for cell, vector in cells:
        key = key_of(cell)
        if key is None:
            continue
        out.setdefault(key, Totals()).add(vector)
    return out


_ADMIN_ROWS = {GroupBy.AGENT: Dim.AGENT, GroupBy.SUPERVISOR: Dim.SUPERVISOR, GroupBy.TEMPLATE: Dim.TEMPLATE}

# A supervisor's report reads their agents' own partitions (one Query per user per calendar year of the
# range) up to this many Queries; a larger team reads the tenant's partitions like an admin, filtered.
MAX_OWNER_READS = 24


@dataclass(frozen=True)
class Read:
    """One Query of the buckets, with the sign its counters are added with.

    * ``owner`` None: the tenant's partition of ``dim``: its day buckets from ``first`` to ``last``
      (days of one month), or its month roll-ups from ``first`` to ``last`` (months of one year);
    * ``owner`` a user id: that user's own partition, days ``first`` to ``last`` of one year: an
      agent's ``AGENT`` and ``AGENT_TEMPLATE`` buckets, a supervisor's ``SUPERVISOR`` buckets."""

    dim: Dim | None
    first: str
    last: str
    sign: int = 1
    owner: str | None = None

    @property
    def months(self) -> bool:
        return len(self.first) == 7


def owner_of(cell: Cell) -> str | None:
    """The user whose own partition also keeps this bucket (a supervisor's report reads those)."""
    if cell.dim in (Dim.AGENT, Dim.SUPERVISOR):
        return cell.key
    if cell.dim is Dim.AGENT_TEMPLATE:
        return cell.key.partition("/")[0]
    return None


def stored_answer(read: Read, day_buckets: Iterable[tuple[Cell, Vector]]) -> list[tuple[Cell, dict[str, int]]]:
    """What a store keeping ``day_buckets`` answers for ``read``: day buckets as they are, month
    roll-ups as the sums of their days (cells whose ``day`` is ``YYYY-MM``), times the read's sign."""
    out: dict[Cell, dict[str, int]] = {}
    for cell, vector in day_buckets:
        if read.owner is not None:
            if owner_of(cell) != read.owner or not read.first <= cell.day <= read.last:
                continue
            target = out.setdefault(cell, {})
        elif cell.dim is not read.dim:
            continue
        elif read.months:
            if not read.first <= cell.day[:7] <= read.last:
                continue
            target = out.setdefault(Cell(cell.dim, cell.key, cell.day[:7]), {})
        else:
            if not read.first <= cell.day <= read.last:
                continue
            target = out.setdefault(cell, {})
        for name, n in vector.items():
            target[name] = target.get(name, 0) + read.sign * n
    return sorted(out.items())


def _month_days(month: date) -> tuple[date, date]:
    nxt = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return month.replace(day=1), nxt - timedelta(days=1)


def _day_read(dim: Dim, first: date, last: date, sign: int) -> Read:
    return Read(dim, first.isoformat(), last.isoformat(), sign)


def rollup_reads(dim: Dim, start: date, end: date) -> list[Read]:
    """The tenant's ``dim`` partitions over ``start`` to ``end``, in as few items as the month
    roll-ups allow: whole months as roll-ups (one Query per calendar year), and a partial month as
    its days, or, when that reads fewer items, as its roll-up minus the days left out (every counter
    and histogram is a sum, so the difference is exact). At most 4 Queries, whatever the range:
    two years of roll-ups and one read at each end, or one month's roll-up and the days on both sides."""
    reads: list[Read] = []
    rolled: list[date] = []
    month = start.replace(day=1)
    while month <= end:
        first, last = _month_days(month)
        a, b = max(first, start), min(last, end)
        inside = (b - a).days + 1
        if inside <= (last - first).days + 1 - inside + 1:  # no more days than the roll-up and the rest
            reads.append(_day_read(dim, a, b, 1))
        else:
            rolled.append(month)
            if a > first:
                reads.append(_day_read(dim, first, a - timedelta(days=1), -1))
            if b < last:
                reads.append(_day_read(dim, b + timedelta(days=1), last, -1))
        month = last + timedelta(days=1)
    for year in sorted({m.year for m in rolled}):
        months = [m for m in rolled if m.year == year]
        reads.append(Read(dim, months[0].isoformat()[:7], months[-1].isoformat()[:7], 1))
    return reads


def day_reads(dim: Dim, start: date, end: date) -> list[Read]:
    """Every day bucket of the tenant's ``dim`` partitions from ``start`` to ``end`` (1 Query a month)."""
    reads = []
    month = start.replace(day=1)
    while month <= end:
        first, last = _month_days(month)
        reads.append(_day_read(dim, max(first, start), min(last, end), 1))
        month = last + timedelta(days=1)
    return reads


def _years(start: date, end: date) -> list[tuple[date, date]]:
    return [(max(start, date(y, 1, 1)), min(end, date(y, 12, 31))) for y in range(start.year, end.year + 1)]


def plan(query: Query, scope: Scope) -> list[Read]:
    """The Queries a report costs (docs/data-model.md, "Coaching analytics").

    An admin: the day grouping reads the tenant's days (1 Query a month); the others their dimension's
    and the tenant's partitions through the month roll-ups (:func:`rollup_reads`). A supervisor: each
    of their agents' own partitions (and their own, grouped by supervisor), one Query per user per
    calendar year of the range, unless that is more than :data:`MAX_OWNER_READS` Queries: then the
    tenant's partitions, as an admin's report reads them, filtered to the team."""
    g, start, end = query.group_by, query.start, query.end
    if scope.tenant_wide:
        if g is GroupBy.DAY:
            return day_reads(Dim.TENANT, start, end)
        return rollup_reads(_ADMIN_ROWS[g], start, end) + rollup_reads(Dim.TENANT, start, end)
    owners = sorted(scope.agents | ({scope.supervisor} if g is GroupBy.SUPERVISOR and scope.supervisor else set()))
    years = _years(start, end)
    if len(owners) * len(years) <= MAX_OWNER_READS:
        return [Read(None, a.isoformat(), b.isoformat(), 1, owner) for owner in owners for a, b in years]
    if g is GroupBy.DAY:
        return day_reads(Dim.AGENT, start, end)
    rows = {GroupBy.SUPERVISOR: Dim.SUPERVISOR, GroupBy.TEMPLATE: Dim.AGENT_TEMPLATE}.get(g, Dim.AGENT)
    return [r for dim in dict.fromkeys([rows, Dim.AGENT]) for r in rollup_reads(dim, start, end)]


def report(query: Query, scope: Scope, buckets: Iterable[tuple[Cell, Vector]]) -> Report:
    """Rows of the grouping and the totals of the caller's scope, from what the store answered for
    :func:`plan` (day buckets and month roll-ups, some with negative signs: only their sums count).

    Admins: rows and totals from the tenant's buckets. A supervisor: rows of their agents (agent,
    day, template) or of themselves (supervisor); totals sum their agents' buckets. A row whose
    numbers are all zero is left out (a day row never: every day of the range has one)."""
    cells = list(buckets)
    g = query.group_by

    def mine(c: Cell) -> bool:
        return scope.tenant_wide or c.key in scope.agents

    if scope.tenant_wide:
        row_dim = _ADMIN_ROWS.get(g, Dim.TENANT)
        total_cells = [(c, v) for c, v in cells if c.dim is Dim.TENANT]
    else:
        row_dim = {GroupBy.SUPERVISOR: Dim.SUPERVISOR, GroupBy.TEMPLATE: Dim.AGENT_TEMPLATE}.get(g, Dim.AGENT)
        total_cells = [(c, v) for c, v in cells if c.dim is Dim.AGENT and c.key in scope.agents]

    def row_key(c: Cell) -> str | None:
        if c.dim is not row_dim:
            return None
        if g is GroupBy.DAY:
            return c.day if mine(c) else None
        if row_dim is Dim.SUPERVISOR:
            return c.key if scope.tenant_wide or c.key == scope.supervisor else None
        if row_dim is Dim.AGENT_TEMPLATE:
            agent, _, template = c.key.partition("/")
            return template if agent in scope.agents else None
        return c.key if mine(c) else None

    grouped = {k: t for k, t in _sum(cells, row_key).items() if not t.empty}
    if g is GroupBy.DAY:
        for d in query.days:
            grouped.setdefault(d, Totals())
    total = Totals()
    for _, v in total_cells:
        total.add(v)
    rows = [(k, grouped[k].metrics()) for k in sorted(grouped)]
    return Report(query, rows, total.metrics())


# --- CSV -------------------------------------------------------------------------------------

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """One CSV cell: ``None`` empty, numbers as they are, text quoted as needed and, when it starts
    like a spreadsheet formula (``=``, ``+``, ``-``, ``@``, tab, carriage return), prefixed with
    ``'`` so a spreadsheet shows it as text instead of running it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if text.startswith(_FORMULA_STARTS):
        text = "'" + text
    if any(ch in text for ch in ',"\r\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text


def render_csv(header: Sequence[str], lines: Iterable[Sequence[object]]) -> str:
    """A header line then one line per row, each cell through :func:`csv_cell`, CRLF line ends (RFC 4180)."""
    out = [",".join(csv_cell(h) for h in header)]
    out += [",".join(csv_cell(v) for v in line) for line in lines]
    return "\r\n".join(out) + "\r\n"
