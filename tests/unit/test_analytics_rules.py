"""Coaching analytics rules (docs/product.md W13): days, the lower median, slots that apply exactly
once in any order, reports and CSV. Pure: no storage."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.domain import analytics as an
from chalicelib.domain.analytics import Cell, Dim, GroupBy, Rule, Slot
from chalicelib.domain.errors import Invalid
from tests.support import coaching_history as ch

pytestmark = pytest.mark.unit


def test_an_event_counts_on_its_utc_day() -> None:
    assert an.day_of("2026-03-31T23:59:59.999Z") == "2026-03-31"
    assert an.day_of("2026-04-01T01:30:00+02:00") == "2026-03-31"
    assert an.day_of("2026-04-01T00:00:00.000Z") == "2026-04-01"


def test_whole_seconds_round_down_and_cap_at_an_hour() -> None:
    assert an.whole_seconds("2026-01-01T00:00:00.900Z", "2026-01-01T00:00:01.899Z") == 0
    assert an.whole_seconds("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:59.999Z") == 59
    assert an.whole_seconds("2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z") == 3600
    assert an.whole_seconds("2026-01-01T00:00:00Z", "2026-01-01T05:00:00Z") == 3600
    assert an.whole_seconds("2026-01-01T00:00:05Z", "2026-01-01T00:00:00Z") == 0


@given(st.lists(st.integers(0, 3600), max_size=40))
def test_lower_median_of_a_histogram_is_the_lower_median_of_its_samples(samples: list[int]) -> None:
    histogram: dict[int, int] = {}
    for s in samples:
        histogram[s] = histogram.get(s, 0) + 1
    expected = sorted(samples)[(len(samples) - 1) // 2] if samples else None
    assert an.lower_median(histogram) == expected


def test_lower_median_of_an_even_count_is_the_lower_middle() -> None:
    assert an.lower_median({10: 1, 20: 1}) == 10
    assert an.lower_median({10: 1, 20: 1, 30: 1}) == 20
    assert an.lower_median({}) is None


@given(st.lists(st.lists(st.integers(0, 3600), max_size=10), max_size=6))
def test_daily_histograms_merge_into_the_median_of_all_days(days: list[list[int]]) -> None:
    total = an.Totals()
    for samples in days:
        for s in samples:
            total.add({f"k{s}": 1})
    every = sorted(s for d in days for s in d)
    assert total.metrics()["claim_seconds_p50"] == (every[(len(every) - 1) // 2] if every else None)


def _cell(day: str = "2026-01-01", key: str = "") -> Cell:
    return Cell(Dim.TENANT, key, day)


def test_a_once_slot_applies_once() -> None:
    ledger = an.Ledger()
    slot = Slot("cm|w|m1", Rule.ONCE, 0, ((_cell(), {"cm": 1}),))
    assert ledger.apply(slot)
    assert not ledger.apply(slot)
    assert ledger.buckets == {_cell(): {"cm": 1}}


def test_an_earlier_first_join_moves_the_count_to_its_day() -> None:
    ledger = an.Ledger()
    late = Slot("mw|d|w", Rule.FIRST, 7, ((_cell("2026-01-02"), {"mw": 1}),))
    early = Slot("mw|d|w", Rule.FIRST, 3, ((_cell("2026-01-01"), {"mw": 1}),))
    assert ledger.apply(late)
    assert ledger.apply(early)
    assert not ledger.apply(late)
    assert ledger.buckets == {_cell("2026-01-01"): {"mw": 1}}


def test_the_latest_reaction_replaces_the_earlier_one_and_a_cleared_one_counts_nothing() -> None:
    ledger = an.Ledger()
    up = Slot("re|w|m", Rule.LATEST, 4, ((_cell("2026-01-01"), {"hp": 1}),))
    down = Slot("re|w|m", Rule.LATEST, 6, ((_cell("2026-01-02"), {"nh": 1}),))
    cleared = Slot("re|w|m", Rule.LATEST, 9, ())
    ledger.apply(up)
    ledger.apply(down)
    assert ledger.buckets == {_cell("2026-01-02"): {"nh": 1}}
    assert not ledger.apply(up)
    ledger.apply(cleared)
    assert ledger.buckets == {}


def test_a_slot_survives_its_encoding() -> None:
    slot = Slot("ac|as-1", Rule.ONCE, 0, ((Cell(Dim.AGENT_TEMPLATE, "a/é", "2026-01-01"), {"ac": 1, "k37": 1}),))
    assert Slot.decode(slot.key, slot.rule, slot.order, slot.encode()) == slot


def test_delta_nets_out_the_same_cell() -> None:
    old = Slot("re|w|m", Rule.LATEST, 1, ((_cell(), {"hp": 1}), (_cell(key="x"), {"hp": 1})))
    new = Slot("re|w|m", Rule.LATEST, 2, ((_cell(), {"hp": 1}),))
    assert an.delta(new, old) == {_cell(key="x"): {"hp": -1}}


# --- exactly once on generated histories ---------------------------------------------------------


def _batches(history: ch.History, rnd: random.Random) -> list[list[ch.Change]]:
    """The changes in stream batches, then some batches handed over again and the order shuffled
    (the stream retries, bisects and replays)."""
    changes = list(history.changes)
    batches: list[list[ch.Change]] = []
    while changes:
        size = rnd.randint(1, 4)
        batches.append(changes[:size])
        changes = changes[size:]
    again = [b for b in batches if rnd.random() < 0.4]
    delivered = batches + again
    rnd.shuffle(delivered)
    return delivered


# A range of one to five days within the generated histories' (which cross a month's end).
ranges = st.tuples(st.integers(0, 4), st.integers(0, 4)).map(
    lambda t: tuple((ch.START.date() + timedelta(days=d)).isoformat() for d in (t[0], t[0] + t[1]))
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ch.histories, st.randoms(use_true_random=False), st.sampled_from(list(GroupBy)), ranges)
def test_incremental_aggregation_equals_the_numbers_counted_from_the_timelines(
    spec: Any, rnd: random.Random, group_by: GroupBy, days: tuple[str, str]
) -> None:
    history = ch.build(spec)
    ledger = an.Ledger()
    for batch in _batches(history, rnd):
        for change in batch:
            for slot in ch.slots_of(change):
                ledger.apply(slot)
    assist = [s for f in history.assists for s in an.assist_slots(f)] + [s for a in history.alerts for s in a.slots()]
    for slot in assist + rnd.sample(assist, len(assist) // 2):  # request-path events may be raised twice
        ledger.apply(slot)
    assert ledger.buckets == an.direct(ch.all_slots(history))
    query = an.parse_query(*days, group_by.value)
    scope = an.Scope(tenant_wide=True)
    got = an.report(query, scope, ledger.read(an.plan(query, scope)))
    rows, totals = ch.expected(history, query)
    assert dict(got.rows) == rows
    assert got.totals == totals


def test_a_supervisor_sees_their_agents_and_their_own_row() -> None:
    day = "2026-01-01"
    buckets = {
        Cell(Dim.AGENT, "a1", day): {"cm": 2},
        Cell(Dim.AGENT, "a2", day): {"cm": 5},
        Cell(Dim.SUPERVISOR, "s1", day): {"cm": 2},
        Cell(Dim.SUPERVISOR, "s2", day): {"cm": 5},
        Cell(Dim.AGENT_TEMPLATE, "a1/t", day): {"ar": 1},
        Cell(Dim.AGENT_TEMPLATE, "a2/t", day): {"ar": 4},
        Cell(Dim.TENANT, "", day): {"cm": 7},
    }
    scope = an.Scope(tenant_wide=False, agents=frozenset({"a1"}), supervisor="s1")
    ledger = an.Ledger()
    ledger.buckets = dict(buckets)

    def report(query: an.Query) -> an.Report:
        return an.report(query, scope, ledger.read(an.plan(query, scope)))

    for group_by, rows in {
        "agent": ["a1"],
        "supervisor": ["s1"],
        "template": ["t"],
        "day": [day],
    }.items():
        got = report(an.parse_query(day, day, group_by))
        assert [k for k, _ in got.rows] == rows
        assert got.totals["coach_messages"] == 2
    template = report(an.parse_query(day, day, "template"))
    assert template.rows[0][1]["assist_requested"] == 1


@pytest.mark.parametrize(
    ("start", "end", "group_by", "mentions"),
    [
        (None, "2026-01-01", "day", "from"),
        ("2026-01-01", "", "day", "to"),
        ("2026-1-01", "2026-01-01", "day", "from"),
        ("2026-02-30", "2026-03-01", "day", "from"),
        ("\uff12\uff10\uff12\uff16-01-01", "2026-01-01", "day", "from"),  # full-width digits
        ("2026-01-02", "2026-01-01", "day", "after"),
        ("2026-01-01", "2027-01-02", "day", "366"),
        ("2026-01-01", "2026-01-01", "team", "groupBy"),
        ("2026-01-01", "2026-01-01", None, "groupBy"),
    ],
)
def test_bad_queries_name_what_is_wrong(start: str | None, end: str | None, group_by: str | None, mentions: str) -> None:
    with pytest.raises(Invalid, match=mentions):
        an.parse_query(start, end, group_by)


def test_a_leap_year_range_of_366_days_is_allowed() -> None:
    q = an.parse_query("2028-01-01", "2028-12-31", "day")
    assert len(q.days) == 366
    assert q.months[0] == "2028-01" and q.months[-1] == "2028-12" and len(q.months) == 12


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        (12, "12"),
        ("Ann", "Ann"),
        ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ('a,"b"', '"a,""b"""'),
        ("=a,b", '"\'=a,b"'),
    ],
)
def test_csv_cells_are_escaped_against_formulas(value: object, cell: str) -> None:
    assert an.csv_cell(value) == cell


def test_csv_has_a_header_line_and_a_line_per_row() -> None:
    text = an.render_csv(["key", "name", "cm"], [["agent-1", "=cmd", 1], ["agent-2", None, None]])
    assert text.split("\r\n") == ["key,name,cm", "agent-1,'=cmd,1", "agent-2,,", ""]


# --- month roll-ups and users' own partitions ---------------------------------------------------

FIRST_DAY = date(2025, 11, 1)
_keys = {
    Dim.TENANT: [""],
    Dim.AGENT: ["a1", "a2", "a3"],
    Dim.SUPERVISOR: ["s1", "s2"],
    Dim.TEMPLATE: ["t1", "t2"],
    Dim.AGENT_TEMPLATE: ["a1/t1", "a2/t1", "a3/t2"],
}
_cells = st.sampled_from(list(Dim)).flatmap(
    lambda dim: st.builds(
        lambda key, day: Cell(dim, key, (FIRST_DAY + timedelta(days=day)).isoformat()),
        st.sampled_from(_keys[dim]),
        st.one_of(st.integers(0, 75), st.integers(0, 480)),  # dense around the first months' edges, and wide
    )
)
_vectors = st.dictionaries(st.sampled_from(["cm", "hp", "ar", "ac", "k0", "k42", "k3600"]), st.integers(1, 3), min_size=1)
_ranges = st.one_of(st.tuples(st.integers(0, 75), st.integers(0, 75)), st.tuples(st.integers(0, 480), st.integers(0, 365))).map(
    lambda t: (FIRST_DAY + timedelta(days=t[0]), FIRST_DAY + timedelta(days=t[0] + t[1]))
)
# A bucket of one key of each dimension on every day (a different count each day of a week), so that
# a read one day off changes the numbers wherever the range starts or ends.
DENSE = {
    Cell(dim, keys[0], (FIRST_DAY + timedelta(days=d)).isoformat()): {"cm": d % 7 + 1, f"k{d % 3}": 1}
    for dim, keys in _keys.items()
    for d in range(481)
}
_scopes = st.sampled_from(
    [
        an.Scope(tenant_wide=True),
        an.Scope(tenant_wide=False, agents=frozenset({"a1", "a3"}), supervisor="s1"),
        an.Scope(tenant_wide=False, agents=frozenset({"a2"}), supervisor="s2"),
    ]
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_cells, _vectors, max_size=60), _ranges, st.sampled_from(list(GroupBy)), _scopes, st.booleans())
def test_reports_through_the_roll_ups_equal_the_sums_of_their_days(
    buckets: dict[Cell, dict[str, int]], days: tuple[date, date], group_by: GroupBy, scope: an.Scope, large_team: bool
) -> None:
    """W13.10: whole months read as roll-ups, a partial month as its days or as its roll-up minus the days
    left out, a supervisor's agents from their own partitions (or, past MAX_OWNER_READS, from the
    tenant's): the report is the one the day buckets of the range give."""
    buckets = DENSE | buckets
    ledger = an.Ledger()
    ledger.buckets = buckets
    query = an.Query(days[0], days[1], group_by)
    wanted = an.report(query, scope, [(c, v) for c, v in buckets.items() if days[0].isoformat() <= c.day <= days[1].isoformat()])
    if large_team and not scope.tenant_wide:  # the tenant-partition path of a large team, with the same agents
        import unittest.mock

        with unittest.mock.patch.object(an, "MAX_OWNER_READS", 0):
            got = an.report(query, scope, ledger.read(an.plan(query, scope)))
    else:
        got = an.report(query, scope, ledger.read(an.plan(query, scope)))
    assert got == wanted


@given(_ranges, st.sampled_from([GroupBy.AGENT, GroupBy.SUPERVISOR, GroupBy.TEMPLATE]))
def test_an_admin_report_costs_at_most_eight_queries_whatever_the_range(days: tuple[date, date], group_by: GroupBy) -> None:
    reads = an.plan(an.Query(days[0], days[1], group_by), an.Scope(tenant_wide=True))
    assert len(reads) <= 8
    assert all(r.first[:4] == r.last[:4] and (r.months or r.first[:7] == r.last[:7]) for r in reads)  # one partition each


def test_ninety_days_read_mostly_month_roll_ups() -> None:
    """2026-09-02 to 2026-11-30 by agent: September's roll-up minus its first day, October and November
    as roll-ups: one Query of roll-ups and one of a day, for the agents and for the tenant."""
    query = an.parse_query("2026-09-02", "2026-11-30", "agent")
    assert an.plan(query, an.Scope(tenant_wide=True)) == [
        an.Read(Dim.AGENT, "2026-09-01", "2026-09-01", -1),
        an.Read(Dim.AGENT, "2026-09", "2026-11", 1),
        an.Read(Dim.TENANT, "2026-09-01", "2026-09-01", -1),
        an.Read(Dim.TENANT, "2026-09", "2026-11", 1),
    ]
    team = an.Scope(tenant_wide=False, agents=frozenset({"a1", "a2"}), supervisor="s1")
    assert an.plan(query, team) == [
        an.Read(None, "2026-09-02", "2026-11-30", 1, "a1"),
        an.Read(None, "2026-09-02", "2026-11-30", 1, "a2"),
    ]
