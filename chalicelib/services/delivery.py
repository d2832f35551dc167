"""Frames shared by the use cases, and the outbox and notifier that push them.

Every use case collects what it has to push in an :class:`Outbox` and flushes it once, after its
state change has committed: a refused or failed action pushes nothing. While a WebSocket frame is being
answered (:meth:`Notifier.replying`), an outbox flushed with :meth:`Notifier.flush_with_reply` goes out
in one batch with the caller's ack, so the sender's reply and the others' fast events leave together. Connections that answer
410 Gone are removed from their owner's record, and nothing is lost with them: the timeline holds
every entry and clients catch up with ``timeline.get``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import msgspec

from chalicelib import metrics
from chalicelib.domain.errors import TooLarge
from chalicelib.domain.identity import Role
from chalicelib.domain.timeline import TimelineEntry, view
from chalicelib.services.clock import now_pair
from chalicelib.services.ports import Clock, Connection, ConnectionGone, Pusher, Recipient, Renderer, Watcher
from chalicelib.services.push_events import EVENTS
from chalicelib.services.results import EntryNote

log = logging.getLogger(__name__)

# API Gateway refuses posts over 128 KB (PayloadTooLargeException): no frame larger than MAX_FRAME_BYTES
# is ever posted (Notifier is the one place frames are sent). Timeline pages aim at MAX_PUSH_BYTES.
MAX_FRAME_BYTES = 128 * 1024
MAX_PUSH_BYTES = 120 * 1024


def encode(frame: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """A frame as UTF-8 JSON, its records rendered by ``default`` (the wire's, ``Renderer.default``).
    Text that UTF-8 cannot carry (a lone surrogate) is sent as a JSON ``\\uXXXX`` escape instead of
    failing: every reply can be encoded."""
    try:
        return json.dumps(frame, separators=(",", ":"), ensure_ascii=False, default=default).encode()
    except UnicodeEncodeError:
        return json.dumps(frame, separators=(",", ":"), default=default).encode()


def _fit_newest[T](entries: list[T], size_of: Callable[[T], int], budget: int) -> tuple[list[T], bool]:
    """Keep the newest entries that fit in one push; True when older ones had to be left out."""
    size = 0
    kept: list[T] = []
    for entry in reversed(entries):
        size += size_of(entry) + 1
        if size > budget:
            kept.reverse()
            return kept, True
        kept.append(entry)
    kept.reverse()
    return kept, False


def _fit_oldest[T](entries: list[T], size_of: Callable[[T], int], budget: int) -> tuple[list[T], bool]:
    """Keep the oldest entries that fit (paging forward); True when some were cut."""
    size = 0
    for i, entry in enumerate(entries):
        size += size_of(entry) + 1
        if size > budget:
            return entries[:i], True
    return entries, False


class Outbox(msgspec.Struct):
    """Frames to push after a commit, with who owns each connection (for Gone clean-up)."""

    tenant_id: str
    at: str
    now_ms: int
    exclude: str | None = None  # the caller's own connection gets the ack instead
    wire: Renderer | None = None  # renders the events' records (None: their data is plain JSON already)
    # Fast delivery (docs/product.md W15): only timeline entries, only to connections opened with
    # ``?delivery=fast``; every other event and connection is left to the stream's ordered copy.
    fast_only: bool = False
    frames: list[tuple[str, bytes]] = msgspec.field(default_factory=list)
    owners: dict[str, list[tuple[str, Connection | None, Watcher | None]]] = msgspec.field(default_factory=dict)

    def _payload(self, name: str, data: Any) -> bytes:
        if name not in EVENTS:  # the registry is the contract's list: a new event is added there first
            raise ValueError(f"{name!r} is not an event of services/push_events.py")
        if self.wire is None:
            return encode({"type": "event", "event": name, "data": data, "at": self.at})
        return encode(self.wire.event(name, data, self.at), self.wire.default)

    def to_recipient(self, recipient: Recipient | None, name: str, data: Any, *, entry: bool = False) -> None:
        if recipient is None or (self.fast_only and not entry):
            return
        targets = [c for c in recipient.live(self.now_ms) if c.connection_id != self.exclude and (c.fast or not self.fast_only)]
        if not targets:
            return
        payload = self._payload(name, data)
        for connection in targets:
            self.frames.append((connection.connection_id, payload))
            self.owners.setdefault(connection.connection_id, []).append((recipient.key, connection, None))

    def to_watchers(self, recipient: Recipient | None, name: str, data: Any) -> None:
        if recipient is None or self.fast_only:
            return
        payload = self._payload(name, data)
        seen: set[str] = set()
        for w in recipient.watchers:
            cid = w.connection.connection_id
            if not w.connection.alive(self.now_ms) or cid in seen or cid == self.exclude:
                continue
            seen.add(cid)
            self.frames.append((cid, payload))
            self.owners.setdefault(cid, []).append((recipient.key, None, w))

    def entry_to(
        self,
        recipient: Recipient | None,
        name: str,
        entry: TimelineEntry,
        role: Role,
        note: Callable[[Any], Any] = EntryNote,
    ) -> None:
        """Push ``entry`` in the view of ``role``, in the event's ``note`` (a record of
        ``services/results.py``); nothing when that role must not see it."""
        seen = view(entry, role)
        if seen is not None:
            self.to_recipient(recipient, name, note(seen), entry=True)


# Outboxes waiting to go out with the reply to the frame being answered (Notifier.replying), with what
# to run once they are posted; None outside a reply.
_with_reply: ContextVar[list[tuple[Outbox, Callable[[], None] | None]] | None] = ContextVar("with_reply", default=None)


class Notifier:
    """Makes outboxes, flushes them through the pusher and forgets connections that are gone."""

    def __init__(self, pusher: Pusher, gone: ConnectionGone, clock: Clock, wire: Renderer) -> None:
        self._pusher = pusher
        self._gone = gone
        self._clock = clock
        self.wire = wire

    def outbox(self, tenant_id: str, exclude: str | None = None, *, fast_only: bool = False) -> Outbox:
        """An empty outbox stamped now: the one way a use case starts collecting its pushes."""
        at, now_ms = now_pair(self._clock)
        return Outbox(tenant_id, at, now_ms, exclude, self.wire, fast_only=fast_only)

    @contextmanager
    def replying(self) -> Iterator[None]:
        """While a frame is answered: what :meth:`flush_with_reply` is given waits for :meth:`send`
        (the reply), and goes out in the same batch of posts. Whatever the block leaves unsent (it
        raised before a reply) is flushed on the way out: nothing committed is kept back."""
        token = _with_reply.set([])
        try:
            yield
        finally:
            left = _with_reply.get() or []
            _with_reply.reset(token)
            if left:
                self._flush_all(left, [])

    def flush_with_reply(self, outbox: Outbox, posted: Callable[[], None] | None = None) -> None:
        """Flush ``outbox`` with the reply being prepared (:meth:`replying`), or now when there is
        none; ``posted`` runs once its frames have been handed to ``@connections``."""
        waiting = _with_reply.get()
        if waiting is None:
            self._flush_all([(outbox, posted)], [])
        elif outbox.frames:
            waiting.append((outbox, posted))

    def size(self, record: Any) -> int:
        """Bytes ``record`` takes in a frame."""
        return len(encode(record, self.wire.default))

    def fit_entries[T](self, entries: list[T], budget: int = MAX_PUSH_BYTES - 8 * 1024) -> tuple[list[T], bool]:
        """The newest entries that fit in one push; True when older ones had to be left out."""
        return _fit_newest(entries, self.size, budget)

    def fit_forward[T](self, entries: list[T], budget: int = MAX_PUSH_BYTES - 8 * 1024) -> tuple[list[T], bool]:
        """The oldest entries that fit (paging forward); True when some were cut."""
        return _fit_oldest(entries, self.size, budget)

    def _post(self, frames: list[tuple[str, bytes]]) -> list[str]:
        """The one place frames leave: a frame over MAX_FRAME_BYTES is never posted (API Gateway would
        drop it); it is logged as not sent (its content stays in the timeline for ``timeline.get``)."""
        fitting = [(cid, data) for cid, data in frames if len(data) <= MAX_FRAME_BYTES]
        if len(fitting) < len(frames):
            metrics.PUSH_FAILURES.add(len(frames) - len(fitting))
            log.error("not sent: %d frame(s) over %d bytes", len(frames) - len(fitting), MAX_FRAME_BYTES)
        return self._pusher.post_many(fitting) if fitting else []

    def flush(self, outbox: Outbox) -> None:
        self._flush_all([(outbox, None)], [])

    def _flush_all(self, boxes: list[tuple[Outbox, Callable[[], None] | None]], first: list[tuple[str, bytes]]) -> list[str]:
        """Post ``first`` (a reply) and every outbox's frames in one batch, then forget the connections
        found gone; returns the gone ones."""
        frames = first + [frame for box, _ in boxes for frame in box.frames]
        if not frames:
            return []
        gone = self._post(frames)
        for _, posted in boxes:
            if posted is not None:
                posted()
        if gone:
            for box, _ in boxes:
                self._forget(box, gone)
        return gone

    def _forget(self, outbox: Outbox, gone: list[str]) -> None:
        by_key: dict[str, tuple[list[Connection], list[Watcher]]] = {}
        for cid in dict.fromkeys(gone):
            for key, connection, watcher in outbox.owners.get(cid, []):
                connections, watchers = by_key.setdefault(key, ([], []))
                if connection is not None:
                    connections.append(connection)
                if watcher is not None:
                    watchers.append(watcher)
        for key, (connections, watchers) in by_key.items():
            try:
                self._gone.forget(outbox.tenant_id, key, connections, watchers)
            except Exception:  # clean-up is best effort: the next push retries it
                log.warning("could not forget gone connections of %s", key, exc_info=True)

    def send(self, connection_id: str, frame: dict[str, Any]) -> None:
        """A single frame to one connection (acks and errors). A reply too large to post is replaced by a
        ``too_large`` error for the same request: the caller always gets an answer."""
        data = encode(frame, self.wire.default)
        if len(data) > MAX_FRAME_BYTES:
            log.warning("reply of %d bytes replaced by too_large", len(data))
            refusal = TooLarge(f"the reply would exceed {MAX_FRAME_BYTES} bytes; ask for fewer items (limit)")
            data = encode(self.wire.refused(frame, refusal))
        waiting = _with_reply.get()
        boxes = list(waiting or [])
        if waiting:
            waiting.clear()
        self._flush_all(boxes, [(connection_id, data)])

    def close(self, connection_id: str) -> None:
        """Close one connection from the server side (an ended or revoked session)."""
        self._pusher.close(connection_id)
