"""Pushing committed workitem changes in the order they were committed, and what each recipient gets.

Two handlers that commit ``seq`` 85 and 86 of one workitem a few milliseconds apart cannot order
their own posts: the second one's can reach a receiver first. So a change is not pushed by the
handler that made it. The handler writes a *fan-out note* on the workitem item in the same
transaction (the entries it appended, the connection that gets the ack instead of the event, the
supervisors whose coaching it ended), and the consumer of the workitems table's stream pushes it.
DynamoDB Streams yields the changes of one item in the order they were written, and this consumer
works through one workitem's changes one after another, so every receiver gets a workitem's
entries in ``seq`` order. Changes of different workitems are pushed concurrently, and the changes
of one workitem that arrive in one batch share one lookup of their recipients (so a
backlog costs fewer requests per change, not more).

Fast delivery (docs/product.md W15) adds a second, unordered path for connections that asked for it
(``?delivery=fast``): the handler that commits a change reads the recipients it expects in the same
request as the workitem itself (``Workitems``, one BatchGetItem across both tables), and right after the
commit posts the change's timeline entries to their fast connections (:meth:`FanoutService.post_fast`),
in the same batch as its own ack. The stream's consumer is unchanged: it reads the recipients itself,
after the commit, and pushes every change to every connection: ordered ones get it exactly once and in
order (a connection opened while the handler was committing is among those it reads), fast ones get it
a second time (the backstop for a handler that died between its commit and its posts, or for a fast
connection the handler's earlier read could not see; the client drops the copy it already has by
``seq``).

A slow or throttled receiver never holds up a change: the pusher waits for a batch of posts at
most about a second and skips a connection whose post is stuck (``adapters/push.py``), so the next
change of the workitem, and the other receivers, go out on time (docs/faults.md). A store that does
not answer the recipients' lookup costs that change its pushes, not the batch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Any

import msgspec

from chalicelib import metrics
from chalicelib.domain import coaching as rules
from chalicelib.domain.coaching import Change, EndReason, Workitem
from chalicelib.domain.identity import Role, customer_key, user_key
from chalicelib.domain.timeline import EntryKind, TimelineEntry
from chalicelib.services import push_events as ev
from chalicelib.services.clock import epoch_ms, now_pair
from chalicelib.services.delivery import Notifier, Outbox
from chalicelib.services.ports import Clock, Recipient, RecipientLookup
from chalicelib.services.results import CoachingEndedNote, SupervisorNote, VoiceModeNote

log = logging.getLogger(__name__)

NOTE_VERSION = 1
MAX_PARALLEL_WORKITEMS = 8
# The two paths of CommitToPostDelay's Path dimension.
STREAM = "stream"
FAST = "fast"


class Note(msgspec.Struct, frozen=True):
    """What one committed change pushes, as written next to the workitem's new version."""

    entries: list[TimelineEntry]
    exclude: str | None
    ended_for: list[str]
    end_reason: EndReason | None


def encode_note(change: Change, exclude: str | None) -> str:
    return json.dumps(
        {
            "v": NOTE_VERSION,
            "x": exclude,
            "end": change.ended_for,
            "why": change.end_reason.value if change.end_reason else None,
            "e": [_entry(e) for e in change.entries],
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def decode_note(text: str, workitem_id: str) -> Note:
    raw = json.loads(text)
    if raw.get("v") != NOTE_VERSION:
        raise ValueError(f"unknown fan-out note version {raw.get('v')!r}")
    return Note(
        entries=[_parse_entry(e, workitem_id) for e in raw["e"]],
        exclude=raw.get("x"),
        ended_for=list(raw.get("end") or []),
        end_reason=EndReason(raw["why"]) if raw.get("why") else None,
    )


def _entry(e: TimelineEntry) -> dict[str, Any]:
    body: dict[str, Any] = {"s": e.seq, "k": e.kind.value, "at": e.at, "a": e.author_id, "r": e.author_role.value}
    optional = {
        "cs": e.customer_seq,
        "m": e.message_id,
        "t": e.text,
        "f": e.forwarded_from,
        "re": e.reaction,
        "x": e.extra or None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def _parse_entry(raw: dict[str, Any], workitem_id: str) -> TimelineEntry:
    return TimelineEntry(
        workitem_id=workitem_id,
        seq=int(raw["s"]),
        kind=EntryKind(raw["k"]),
        at=raw["at"],
        author_id=raw["a"],
        author_role=Role(raw["r"]),
        customer_seq=raw.get("cs"),
        message_id=raw.get("m"),
        text=raw.get("t"),
        forwarded_from=raw.get("f"),
        reaction=raw.get("re"),
        extra=dict(raw.get("x") or {}),
    )


class Committed(msgspec.Struct, frozen=True):
    """One committed change read back from the stream: the workitem before and after, and its note."""

    before: Workitem
    after: Workitem
    note: Note
    sequence: str = ""  # the stream record's sequence number (what a partial batch response names)

    @property
    def key(self) -> tuple[str, str]:
        return self.after.tenant_id, self.after.workitem_id

    def change(self) -> Change:
        return Change(self.before, self.after, list(self.note.entries), list(self.note.ended_for), self.note.end_reason)


def concerned(change: Change) -> list[str]:
    """Recipient keys of everyone who may need an event about this change."""
    w = change.after
    if w.version == 0 and not change.entries:
        return []  # a new workitem: its agent was told by the handler that created it
    before = change.before
    if not change.entries and (before.agent_id, before.status, set(before.monitors)) == (w.agent_id, w.status, set(w.monitors)):
        return []  # e.g. a voice room changed: nothing anyone is shown
    staff = [w.agent_id, change.before.agent_id, *change.before.monitors, *w.monitors]
    keys = [user_key(u) for u in dict.fromkeys(staff)]
    if any(e.customer_visible for e in change.entries) and w.channel in rules.WEB_CHANNELS:
        keys.append(customer_key(w.workitem_id))
    return keys


def expected(workitem: Workitem) -> list[str]:
    """Recipient keys the next change of ``workitem`` is likely to concern: its agent, its monitors,
    and its customer on a web channel (what :func:`concerned` names when nobody joins or leaves)."""
    keys = [user_key(u) for u in dict.fromkeys([workitem.agent_id, *workitem.monitors])]
    if workitem.channel in rules.WEB_CHANNELS:
        keys.append(customer_key(workitem.workitem_id))
    return keys


# ``render``'s ``activity`` for a change whose watchers hear of the batch's activity at its last change.
NO_ACTIVITY = Workitem("", "", rules.Channel.CHAT, "", "", "", "")


def supervisor_name(change: Change, recipients: dict[str, Recipient], supervisor_id: str) -> str:
    """A supervisor's name as the workitem recorded it when they joined, else the directory's, else their id."""
    known = change.after.monitor_names.get(supervisor_id) or change.before.monitor_names.get(supervisor_id)
    if known:
        return known
    found = recipients.get(user_key(supervisor_id))
    return (found.name if found is not None else None) or supervisor_id


def render(change: Change, recipients: dict[str, Recipient], box: Outbox, activity: Workitem | None = None) -> None:
    """Put into ``box`` the events that follow from a committed change, each in the view of the
    role of the recipient it goes to (``domain.timeline.view``). Watchers are told of a change of the
    workitem's activity alone since ``activity`` (default: since before the change; W18.1: a batch
    tells them once, at its last change, since before its first), or not at all when it is
    :data:`NO_ACTIVITY`."""
    w = change.after
    before = change.before
    agent = recipients.get(user_key(w.agent_id))
    customer = recipients.get(customer_key(w.workitem_id))
    monitors = [recipients.get(user_key(s)) for s in w.monitors]

    for entry in change.entries:
        kind = entry.kind
        if kind is EntryKind.SUPERVISOR_JOINED or kind is EntryKind.SUPERVISOR_LEFT:
            name = ev.COACHING_JOINED if kind is EntryKind.SUPERVISOR_JOINED else ev.COACHING_LEFT
            joined = partial(SupervisorNote, w.workitem_id, entry.author_id, supervisor_name(change, recipients, entry.author_id))
            for recipient in [agent, *monitors]:
                box.entry_to(recipient, name, entry, Role.SUPERVISOR, joined)
        elif kind is EntryKind.VOICE_MODE:
            supervisor_id = entry.author_id  # the supervisor whose mode changed
            who = supervisor_name(change, recipients, supervisor_id)
            # A silent monitor hears the call as a listener does: the event names it listen (W18.3).
            mode = str(entry.extra.get("mode"))
            note = partial(VoiceModeNote, w.workitem_id, supervisor_id, who, "listen" if mode == "monitor" else mode)
            for recipient in [agent, *monitors]:
                box.entry_to(recipient, ev.VOICE_MODE, entry, Role.SUPERVISOR, note)
        elif kind is EntryKind.COACH_MESSAGE:
            for recipient in [agent, *monitors]:
                box.entry_to(recipient, ev.COACH_MESSAGE, entry, Role.SUPERVISOR)
        elif kind is EntryKind.TRANSCRIPT:  # W12.2: the call's agent and its monitors, never the customer
            for recipient in [agent, *monitors]:
                box.entry_to(recipient, ev.TRANSCRIPT_SEGMENT, entry, Role.SUPERVISOR)
        elif kind is EntryKind.REACTION:
            for recipient in monitors:
                box.entry_to(recipient, ev.COACH_REACTION, entry, Role.SUPERVISOR)
        elif kind is EntryKind.COACHING_ENDED:
            for sup in change.ended_for:
                box.entry_to(
                    recipients.get(user_key(sup)),
                    ev.COACHING_ENDED,
                    entry,
                    Role.SUPERVISOR,
                    partial(CoachingEndedNote, w.workitem_id, entry.extra.get("reason")),
                )
        elif kind in (EntryKind.CUSTOMER_MESSAGE, EntryKind.AGENT_MESSAGE):
            name = ev.COACH_FORWARDED if entry.forwarded_from else ev.MESSAGE_RECEIVED
            for recipient in monitors:
                box.entry_to(recipient, name, entry, Role.SUPERVISOR)
            if kind is EntryKind.CUSTOMER_MESSAGE:
                box.entry_to(agent, ev.MESSAGE_RECEIVED, entry, Role.AGENT)
            elif customer is not None:
                box.entry_to(customer, ev.MESSAGE_RECEIVED, entry, Role.CUSTOMER)
    # B1: watching dashboards learn about every change of the agent's workitems.
    if before.agent_id != w.agent_id:
        box.to_watchers(recipients.get(user_key(before.agent_id)), ev.WORKITEM_UPDATED, {"workitem": w})
        new_agent = recipients.get(user_key(w.agent_id))
        box.to_recipient(new_agent, ev.WORKITEM_ASSIGNED, {"workitem": w})
        box.to_watchers(new_agent, ev.WORKITEM_ASSIGNED, {"workitem": w})
    elif before.status is not w.status:
        box.to_watchers(agent, ev.WORKITEM_ENDED, {"workitem": w})
    elif set(before.monitors) != set(w.monitors) or (
        activity is not NO_ACTIVITY and _activity(activity or before) != _activity(w)
    ):
        box.to_watchers(agent, ev.WORKITEM_UPDATED, {"workitem": w})


def _activity(w: Workitem) -> tuple[str, str | None, str, str]:
    """What a floor view shows of a workitem's conversation (W18.1)."""
    return w.last_activity_at, w.waiting_since, w.last_author, w.last_text


class FanoutService:
    """Pushes committed changes: one workitem's in order, different workitems side by side."""

    def __init__(
        self, recipients: RecipientLookup, notifier: Notifier, clock: Clock, max_parallel: int = MAX_PARALLEL_WORKITEMS
    ) -> None:
        self._recipients = recipients
        self._notifier = notifier
        self._clock = clock
        self._max_parallel = max_parallel

    def deliver(self, committed: Iterable[Committed]) -> int:
        """Push every change; returns how many were pushed. A failure of one is logged and skipped:
        the timeline holds the entries, and clients catch up with ``timeline.get``."""
        groups: dict[tuple[str, str], list[Committed]] = {}
        for c in committed:
            groups.setdefault(c.key, []).append(c)
        if not groups:
            return 0
        if len(groups) == 1:
            return self._in_order(next(iter(groups.values())))
        with ThreadPoolExecutor(max_workers=min(self._max_parallel, len(groups)), thread_name_prefix="fanout") as pool:
            return sum(pool.map(self._in_order, groups.values()))

    def read_recipients(self, tenant_id: str, keys: list[str]) -> dict[str, Recipient]:
        """1 BatchGetItem: the recipients ``keys`` names (those that exist)."""
        return self._recipients.recipients(tenant_id, keys)

    def post_fast(self, change: Change, recipients: dict[str, Recipient], exclude: str | None) -> None:
        """Right after the commit, from the handler that made it: the change's timeline entries to the
        fast connections among ``recipients`` (no request), in the batch of the caller's ack. Nothing
        else and nobody else: other events and ordered connections wait for the stream."""
        if not change.entries or not recipients:
            return
        box = self._notifier.outbox(change.after.tenant_id, exclude, fast_only=True)
        render(change, recipients, box, NO_ACTIVITY)  # watchers hear of it from the stream
        if box.frames:
            self._notifier.flush_with_reply(box, partial(self._record_delay, change, FAST))

    def push(
        self,
        change: Change,
        exclude: str | None = None,
        recipients: dict[str, Recipient] | None = None,
        activity: Workitem | None = None,
    ) -> None:
        """Push the events that follow from a committed change (1 BatchGetItem unless ``recipients``
        holds them already, then posts) to everyone concerned but the connection ``exclude``."""
        w = change.after
        if recipients is None:
            recipients = self._look_up(w.tenant_id, concerned(change))
        if not recipients:
            return
        box = self._notifier.outbox(w.tenant_id, exclude)
        render(change, recipients, box, activity)
        self._notifier.flush(box)

    def _in_order(self, committed: list[Committed]) -> int:
        """One workitem's changes, oldest first, with one lookup of everybody they concern."""
        ordered = sorted(committed, key=lambda c: c.after.version)
        changes = [c.change() for c in ordered]
        keys = list(dict.fromkeys(k for change in changes for k in concerned(change)))
        recipients = self._look_up(ordered[0].after.tenant_id, keys)
        pushed = 0
        last = len(ordered) - 1
        for i, (c, change) in enumerate(zip(ordered, changes, strict=True)):
            try:
                # Watchers hear of the workitem's activity once per batch, with its latest state.
                self.push(change, c.note.exclude, recipients, activity=changes[0].before if i == last else NO_ACTIVITY)
                pushed += 1
            except Exception:  # one bad change must not hold back the workitem's later ones
                log.exception("could not push version %d of workitem %s", c.after.version, c.after.workitem_id)
                continue
            self._record_delay(change, STREAM)
        return pushed

    def _record_delay(self, change: Change, path: str) -> None:
        """How late the change's events went out on ``path`` (the stream's ordered copy, or the fast
        post): from its newest entry's time (taken just before the commit) to now, when its posts have
        been handed over (CommitToPostDelay)."""
        if not change.entries:
            return
        try:
            committed_ms = epoch_ms(datetime.fromisoformat(change.entries[-1].at))
        except ValueError:  # not a time this service wrote: nothing to measure
            return
        metrics.COMMIT_TO_POST.record(now_pair(self._clock)[1] - committed_ms, path=path)

    def _look_up(self, tenant_id: str, keys: list[str]) -> dict[str, Recipient]:
        """1 BatchGetItem. Committed already: pushes are best effort, clients catch up with timeline.get."""
        if not keys:
            return {}
        try:
            return self._recipients.recipients(tenant_id, keys)
        except Exception as exc:  # noqa: BLE001 - best effort, typically the store not answering: one line
            log.warning("could not look up who to tell in tenant %s (%s); events not pushed", tenant_id, type(exc).__name__)
            return {}
