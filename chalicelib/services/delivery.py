"""Frames shared by the use cases, and the outbox and notifier that push them.

Every use case collects what it has to push in an :class:`Outbox` and flushes it once, after its
state change has committed: a refused or failed action pushes nothing. Connections that answer
410 Gone are removed from their owner's record, and nothing is lost with them: the timeline holds
every entry and clients catch up with ``timeline.get``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import msgspec

from chalicelib import metrics
from chalicelib.domain.errors import TooLarge
from chalicelib.domain.identity import Role
from chalicelib.domain.timeline import TimelineEntry, view
from chalicelib.services.ports import Connection, Directory, Pusher, Recipient, Watcher

log = logging.getLogger(__name__)

# API Gateway refuses posts over 128 KB (PayloadTooLargeException): no frame larger than MAX_FRAME_BYTES
# is ever posted (Notifier is the one place frames are sent). Timeline pages aim at MAX_PUSH_BYTES.
MAX_FRAME_BYTES = 128 * 1024
MAX_PUSH_BYTES = 120 * 1024


def encode(frame: dict[str, Any]) -> bytes:
    """A frame as UTF-8 JSON. Text that UTF-8 cannot carry (a lone surrogate) is sent as a JSON
    ``\\uXXXX`` escape instead of failing: every reply can be encoded."""
    try:
        return json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(frame, separators=(",", ":")).encode()


def ack(request_id: str | None, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "ack", "requestId": request_id, "data": data}


def error(request_id: str | None, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": "error", "requestId": request_id, "error": body}


def event(name: str, data: dict[str, Any], at: str) -> dict[str, Any]:
    return {"type": "event", "event": name, "data": data, "at": at}


def fit_entries(entries: list[dict[str, Any]], budget: int = MAX_PUSH_BYTES - 8 * 1024) -> tuple[list[dict[str, Any]], bool]:
    """Keep the newest entries that fit in one push; True when older ones had to be left out."""
    size = 0
    kept: list[dict[str, Any]] = []
    for entry in reversed(entries):
        size += len(encode(entry)) + 1
        if size > budget:
            kept.reverse()
            return kept, True
        kept.append(entry)
    kept.reverse()
    return kept, False


def fit_forward(entries: list[dict[str, Any]], budget: int = MAX_PUSH_BYTES - 8 * 1024) -> tuple[list[dict[str, Any]], bool]:
    """Keep the oldest entries that fit (paging forward); True when some were cut."""
    size = 0
    for i, entry in enumerate(entries):
        size += len(encode(entry)) + 1
        if size > budget:
            return entries[:i], True
    return entries, False


class Outbox(msgspec.Struct):
    """Frames to push after a commit, with who owns each connection (for Gone clean-up)."""

    tenant_id: str
    at: str
    now_ms: int
    exclude: str | None = None  # the caller's own connection gets the ack instead
    frames: list[tuple[str, bytes]] = msgspec.field(default_factory=list)
    owners: dict[str, list[tuple[str, Connection | None, Watcher | None]]] = msgspec.field(default_factory=dict)

    def to_recipient(self, recipient: Recipient | None, name: str, data: dict[str, Any]) -> None:
        if recipient is None:
            return
        payload = encode(event(name, data, self.at))
        for connection in recipient.live(self.now_ms):
            if connection.connection_id == self.exclude:
                continue
            self.frames.append((connection.connection_id, payload))
            self.owners.setdefault(connection.connection_id, []).append((recipient.key, connection, None))

    def to_watchers(self, recipient: Recipient | None, name: str, data: dict[str, Any]) -> None:
        if recipient is None:
            return
        payload = encode(event(name, data, self.at))
        seen: set[str] = set()
        for w in recipient.watchers:
            cid = w.connection.connection_id
            if not w.connection.alive(self.now_ms) or cid in seen or cid == self.exclude:
                continue
            seen.add(cid)
            self.frames.append((cid, payload))
            self.owners.setdefault(cid, []).append((recipient.key, None, w))

    def entry_to(
        self, recipient: Recipient | None, name: str, entry: TimelineEntry, role: Role, extra: dict[str, Any] | None = None
    ) -> None:
        """Push ``entry`` in the view of ``role``; nothing when that role must not see it."""
        body = view(entry, role)
        if body is not None:
            self.to_recipient(recipient, name, {**(extra or {}), "entry": body})

    def to_connection(self, connection_id: str, frame: dict[str, Any]) -> None:
        self.frames.append((connection_id, encode(frame)))


class Notifier:
    """Flushes outboxes through the pusher and forgets connections that are gone."""

    def __init__(self, pusher: Pusher, directory: Directory) -> None:
        self._pusher = pusher
        self._directory = directory

    def _post(self, frames: list[tuple[str, bytes]]) -> list[str]:
        """The one place frames leave: a frame over MAX_FRAME_BYTES is never posted (API Gateway would
        drop it); it is logged as not sent (its content stays in the timeline for ``timeline.get``)."""
        fitting = [(cid, data) for cid, data in frames if len(data) <= MAX_FRAME_BYTES]
        if len(fitting) < len(frames):
            metrics.PUSH_FAILURES.add(len(frames) - len(fitting))
            log.error("not sent: %d frame(s) over %d bytes", len(frames) - len(fitting), MAX_FRAME_BYTES)
        return self._pusher.post_many(fitting) if fitting else []

    def flush(self, outbox: Outbox) -> None:
        if not outbox.frames:
            return
        gone = self._post(outbox.frames)
        if not gone:
            return
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
                self._directory.forget(outbox.tenant_id, key, connections, watchers)
            except Exception:  # clean-up is best effort: the next push retries it
                log.warning("could not forget gone connections of %s", key, exc_info=True)

    def send(self, connection_id: str, frame: dict[str, Any]) -> None:
        """A single frame to one connection (acks and errors). A reply too large to post is replaced by a
        ``too_large`` error with the same requestId: the caller always gets an answer."""
        data = encode(frame)
        if len(data) > MAX_FRAME_BYTES:
            log.warning("reply of %d bytes replaced by too_large", len(data))
            data = encode(
                error(
                    frame.get("requestId"),
                    TooLarge(f"the reply would exceed {MAX_FRAME_BYTES} bytes; ask for fewer items (limit)").to_dict(),
                )
            )
        self._post([(connection_id, data)])

    def close(self, connection_id: str) -> None:
        """Close one connection from the server side (an ended or revoked session)."""
        self._pusher.close(connection_id)
