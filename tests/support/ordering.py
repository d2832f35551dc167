"""Client-side ordering of one workitem's timeline, as the console's protocol client does it
(``TimelineBuffer`` and ``catchUp`` in console/src/protocol.ts; docs/asyncapi.yaml, "Fast delivery"):
entries from events and acks are buffered by ``seq``, a ``seq`` already delivered is dropped, and a gap
that stays open is filled with ``timeline.get {after: <last delivered seq>}``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.support.world import Client


def _console_entry_events() -> frozenset[str]:
    """The events whose ``data.entry`` is a new timeline entry: the console's ``ENTRY_EVENTS``, read from
    console/src/protocol.ts so this client orders exactly what the console orders."""
    source = (Path(__file__).resolve().parents[2] / "console" / "src" / "protocol.ts").read_text(encoding="utf-8")
    found = re.search(r"ENTRY_EVENTS[^=]*=\s*new Set\(\[(.*?)\]\)", source, re.S)
    assert found, "ENTRY_EVENTS not found in console/src/protocol.ts"
    return frozenset(re.findall(r'"([^"]+)"', found.group(1)))


ENTRY_EVENTS = _console_entry_events()


class OrderedTimeline:
    """One client's view of one workitem: what it has delivered (in order, once) and what it holds."""

    def __init__(self, client: Client, workitem_id: str) -> None:
        self.client = client
        self.workitem_id = workitem_id
        self.last_seq = 0
        self.delivered: list[dict[str, Any]] = []
        self.held: dict[int, dict[str, Any]] = {}
        self.received = 0  # entries offered, copies included
        self._read = 0

    def offer(self, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            self.received += 1
            if entry["seq"] > self.last_seq:
                self.held.setdefault(entry["seq"], entry)
        while self.last_seq + 1 in self.held:
            entry = self.held.pop(self.last_seq + 1)
            self.last_seq = entry["seq"]
            self.delivered.append(entry)

    def receive(self) -> None:
        """Take the entries of every event that arrived since the last call, in arrival order."""
        frames = self.client.frames()[self._read :]
        self._read += len(frames)
        self.offer(
            [
                f["data"]["entry"]
                for f in frames
                if f["type"] == "event" and f["event"] in ENTRY_EVENTS and f["data"]["entry"]["workitemId"] == self.workitem_id
            ]
        )

    @property
    def missing(self) -> bool:
        """True while an entry after a gap is held back."""
        return bool(self.held)

    def fill_gap(self) -> None:
        """What the client does once a gap has stayed open for its wait: ask for what follows the last
        delivered entry (the reply is no event: receive skips it)."""
        self.receive()
        page = self.client.ok("timeline.get", workitemId=self.workitem_id, after=self.last_seq)
        self.offer(page["entries"])
        self.receive()
