"""Pages of the list actions (chalicelib.services.paging): by count and by size, cursors bound to their list."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import Invalid, TooLarge
from chalicelib.services.paging import PAGE_BYTES, decode_cursor, encode_cursor, page, scope_of

pytestmark = pytest.mark.unit

SCOPE = scope_of("workitems.list", "t1", "sup-1", "agent-1")


def items(n: int, size: int = 10) -> list[dict[str, Any]]:
    return [{"id": f"i-{i:04d}", "pad": "x" * size} for i in range(n)]


def everything(rows: list[dict[str, Any]], limit: int) -> tuple[list[str], int]:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        got, cursor = page(rows, lambda r: (r["id"],), lambda r: r, SCOPE, limit, cursor)
        pages += 1
        seen += [r["id"] for r, _ in got]
        if cursor is None:
            return seen, pages


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 60), limit=st.integers(1, 20), size=st.sampled_from([1, 1000, 30_000]))
def test_following_cursors_yields_every_item_once_in_order(n: int, limit: int, size: int) -> None:
    rows = items(n, size)
    seen, _ = everything(list(reversed(rows)), limit)
    assert seen == [r["id"] for r in rows]


def test_a_page_is_cut_by_size_before_the_limit() -> None:
    rows = items(10, PAGE_BYTES // 4)
    got, cursor = page(rows, lambda r: (r["id"],), lambda r: r, SCOPE, 500, None)
    assert 1 <= len(got) < 4 and cursor is not None


def test_an_item_too_large_for_any_page_is_too_large() -> None:
    with pytest.raises(TooLarge):
        page(items(1, PAGE_BYTES + 1), lambda r: (r["id"],), lambda r: r, SCOPE, 10, None)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "x",
        "!!!!",
        "é",
        "A" * 5000,
        encode_cursor("0" * 16, ["i-0001"]),
        encode_cursor(scope_of("agent.watch", "t1", "sup-1", "agent-1"), ["i-0001"]),
        encode_cursor(scope_of("workitems.list", "t2", "sup-1", "agent-1"), ["i-0001"]),
        encode_cursor(SCOPE, []),
    ],
)
def test_cursors_of_other_lists_or_not_cursors_at_all_are_invalid(cursor: str) -> None:
    with pytest.raises(Invalid):
        decode_cursor(cursor, SCOPE)


def test_a_cursor_round_trips() -> None:
    assert decode_cursor(encode_cursor(SCOPE, ["2026-01-01", "wi-1"]), SCOPE) == ("2026-01-01", "wi-1")
