"""Fair delivery rules (chalicelib/domain/fairness.py): which receivers go through the slow lane, when
a circuit opens, how long it stays open, and what a probe's answer does."""

from __future__ import annotations

import pytest

from chalicelib.domain.fairness import (
    BREAK_AFTER,
    BREAK_BASE_SECONDS,
    BREAK_MAX_SECONDS,
    SLOW_SECONDS,
    Gate,
    Health,
    after_attempt,
    break_seconds,
    gate,
)

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0


def test_only_a_receiver_known_to_be_fast_is_posted_to_outside_the_slow_lane() -> None:
    assert gate(Health(), NOW) is Gate.LANE  # new, or edited by an admin: not known yet
    assert gate(Health(fast=True), NOW) is Gate.POST
    assert gate(Health(fast=False, failures=BREAK_AFTER - 1), NOW) is Gate.LANE


def test_a_fast_answer_makes_a_receiver_fast_and_a_slow_one_or_a_failure_takes_it_back() -> None:
    assert after_attempt(Health(), ok=True, seconds=0.05, now=NOW) == Health(fast=True)
    assert after_attempt(Health(fast=True), ok=True, seconds=0.05, now=NOW) is None  # nothing to write
    assert after_attempt(Health(fast=True), ok=True, seconds=SLOW_SECONDS + 0.1, now=NOW) == Health()
    assert after_attempt(Health(fast=True), ok=False, seconds=0.05, now=NOW) == Health(failures=1)


def test_three_failures_in_a_row_open_the_circuit_and_nothing_is_posted_until_it_ends() -> None:
    health = Health()
    for _ in range(BREAK_AFTER - 1):
        changed = after_attempt(health, ok=False, seconds=10.0, now=NOW)
        assert changed is not None and not changed.broken
        health = changed
    opened = after_attempt(health, ok=False, seconds=10.0, now=NOW)
    assert opened == Health(failures=BREAK_AFTER, open_until=int(NOW) + BREAK_BASE_SECONDS) and opened.broken
    assert gate(opened, NOW) is Gate.PARK
    assert gate(opened, NOW + BREAK_BASE_SECONDS - 1) is Gate.PARK
    assert gate(opened, NOW + BREAK_BASE_SECONDS) is Gate.PROBE


def test_a_failed_probe_doubles_the_break_up_to_ten_minutes_and_a_good_one_closes_it() -> None:
    assert [break_seconds(BREAK_AFTER + n) for n in range(7)] == [30, 60, 120, 240, 480, 600, 600]
    assert break_seconds(10_000) == BREAK_MAX_SECONDS == 600
    broken = Health(failures=BREAK_AFTER, open_until=int(NOW))
    again = after_attempt(broken, ok=False, seconds=10.0, now=NOW)
    assert again == Health(failures=BREAK_AFTER + 1, open_until=int(NOW) + 60)
    assert after_attempt(broken, ok=True, seconds=0.1, now=NOW) == Health(fast=True)
    assert after_attempt(broken, ok=True, seconds=5.0, now=NOW) == Health()  # closed, but slow: the lane
