"""Pages of the list actions (``workitems.list``, ``agent.watch``, ``agents.list``, ``assist.recipients``).

A page holds at most ``limit`` items and at most :data:`PAGE_BYTES` of encoded items, so its reply
always fits in one WebSocket frame (API Gateway posts at most 128 KB), however long the items are.
Items are ordered by a key (a tuple of strings); ``nextCursor`` names the last key of the page, and
the next page starts strictly after it, so following cursors yields every item that exists throughout
exactly once (items added meanwhile appear once or not at all; none repeats).

A cursor is opaque to clients: URL-safe base64 of ``[scope, key]``, where ``scope`` is a digest of the
listing it came from (action, tenant, caller, subject). A cursor from another listing, tenant or caller,
or one that was altered or is not a cursor at all, is refused ``invalid``. The key only says where to
resume in the caller's own listing, which is built from the caller's permissions on every call: a
forged cursor can skip items, never show any the caller may not see.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from chalicelib.domain.coaching import Workitem
from chalicelib.domain.errors import Invalid, TooLarge
from chalicelib.services.results import WorkitemPage

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_CURSOR_CHARS = 4096  # a key may hold a 256-character name (assist.recipients)
# Items per page by size: with the envelope ({"type":"ack","requestId":<=128 chars,...}) a reply stays far
# below the 128 KB API Gateway posts.
PAGE_BYTES = 100 * 1024

_encoder = msgspec.json.Encoder()
_cursor_decoder = msgspec.json.Decoder(tuple[str, list[str]])


def scope_of(*parts: str) -> str:
    """The digest that binds a cursor to one listing (16 hex characters)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def encode_cursor(scope: str, key: Sequence[str]) -> str:
    return base64.urlsafe_b64encode(_encoder.encode([scope, list(key)])).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, scope: str) -> tuple[str, ...]:
    """The key a cursor resumes after; :class:`Invalid` for anything that is not a cursor of ``scope``."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS or not cursor.isascii():
            raise ValueError("not a cursor")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found, key = _cursor_decoder.decode(raw)
    except (ValueError, binascii.Error, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Invalid("cursor is not a cursor of this list; start again without one") from exc
    if found != scope or not key:
        raise Invalid("cursor is not a cursor of this list; start again without one")
    return tuple(key)


def page[T](
    items: Sequence[T],
    key: Callable[[T], tuple[str, ...]],
    wire: Callable[[T], dict[str, Any]],
    scope: str,
    limit: int,
    cursor: str | None,
) -> tuple[list[tuple[T, dict[str, Any]]], str | None]:
    """One page of ``items`` (ordered by ``key``) after ``cursor``: (item, wire form) pairs and the next
    cursor (None on the last page). :class:`TooLarge` only when one item alone cannot fit a page."""
    after = decode_cursor(cursor, scope) if cursor is not None else None
    ordered = sorted(items, key=key)
    if after is not None:
        ordered = [item for item in ordered if key(item) > after]
    out: list[tuple[T, dict[str, Any]]] = []
    size = 0
    for item in ordered:
        body = wire(item)
        size += len(_encoder.encode(body)) + 1
        if len(out) == limit or (size > PAGE_BYTES and out):
            return out, encode_cursor(scope, key(out[-1][0]))
        if size > PAGE_BYTES:
            raise TooLarge("an item of this list is too large for one reply")
        out.append((item, body))
    return out, None


def workitem_page(
    items: list[Workitem], scope: str, limit: int, cursor: str | None, render: Callable[[Workitem], dict[str, Any]]
) -> WorkitemPage:
    """One page of workitems, oldest first, each as ``render`` (the wire) shows it, and the next cursor
    (``workitems.list``, ``agent.watch``)."""
    rows, next_cursor = page(items, lambda w: (w.created_at, w.workitem_id), render, scope, limit, cursor)
    return WorkitemPage([body for _, body in rows], next_cursor)
