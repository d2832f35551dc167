"""Generated coaching histories for the analytics tests, and the numbers computed directly from them.

A history is played through the real coaching rules (``domain/coaching.py``): supervisors join,
coach, leave; the agent reacts (and changes or clears reactions) and forwards; workitems are
transferred; days pass. Each rule's committed change is one :class:`Change` as the stream carries it
(the workitem before, its entries). Assistance requests and attention alerts are generated as their
records stand (an alert raised on a workitem of an agent, maybe acked by a supervisor).

:func:`expected` counts the metrics straight from the entries and records, the way docs/product.md
defines them, without the analytics module's slots, so the tests compare two independent computations.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from chalicelib.domain import analytics as an
from chalicelib.domain import coaching as rules
from chalicelib.domain.coaching import Channel, Reaction, Workitem
from chalicelib.domain.errors import DomainError
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.timeline import EntryKind, TimelineEntry

TENANT = "t1"
AGENTS = ("agent-1", "agent-2", "agent-3")
SUPERVISORS = ("sup-1", "sup-2")
TEMPLATES = ("tpl-1", "tpl-2")
START = datetime(2026, 3, 30, 22, 0, tzinfo=UTC)  # a month's end falls inside the generated ranges


@dataclass
class Change:
    """One committed change as the stream reads it back."""

    workitem_id: str
    agent_before: str
    version: int
    entries: list[TimelineEntry]


@dataclass(frozen=True)
class AlertFacts:
    alert_id: str
    agent_id: str
    raised_at: str
    acked_by: str | None = None
    acked_at: str | None = None

    def slots(self) -> list[an.Slot]:
        raised = an.alert_raised_slots(self.alert_id, self.agent_id, self.raised_at)
        if self.acked_by is None or self.acked_at is None:
            return raised
        return raised + an.alert_acked_slots(self.alert_id, self.agent_id, self.raised_at, self.acked_by, self.acked_at)


@dataclass
class History:
    changes: list[Change] = field(default_factory=list)
    assists: list[an.AssistFacts] = field(default_factory=list)
    alerts: list[AlertFacts] = field(default_factory=list)

    def timelines(self) -> dict[str, list[tuple[str, TimelineEntry]]]:
        out: dict[str, list[tuple[str, TimelineEntry]]] = defaultdict(list)
        for c in self.changes:
            out[c.workitem_id] += [(c.agent_before, e) for e in c.entries]
        return out


join = st.tuples(st.just("join"), st.sampled_from(SUPERVISORS))
coach = st.tuples(st.just("coach"), st.sampled_from(SUPERVISORS))
react = st.tuples(st.just("react"), st.integers(0, 5), st.sampled_from(["thumbs_up", "thumbs_down", None]))
op = st.one_of(
    join,
    coach,
    react,
    react,
    st.tuples(st.just("join"), st.sampled_from(SUPERVISORS)),
    st.tuples(st.just("leave"), st.sampled_from(SUPERVISORS)),
    st.tuples(st.just("coach"), st.sampled_from(SUPERVISORS)),
    st.tuples(st.just("react"), st.integers(0, 5), st.sampled_from(["thumbs_up", "thumbs_down", None])),
    st.tuples(st.just("forward"), st.integers(0, 5)),
    st.tuples(st.just("transfer"), st.sampled_from(AGENTS)),
    st.tuples(st.just("wait"), st.integers(1, 20 * 3600)),
)
# every workitem starts with a supervisor joining and coaching, so most histories count something
opening = st.tuples(join, coach, coach).map(list)
workitem_ops = st.tuples(
    st.sampled_from(AGENTS),
    st.integers(0, 3 * 24 * 3600),
    st.tuples(opening, st.lists(op, max_size=14)).map(lambda t: t[0] + t[1]),
)
assist = st.tuples(
    st.sampled_from(AGENTS),
    st.sampled_from(TEMPLATES),
    st.integers(0, 3 * 24 * 3600),  # raised this long after START
    st.booleans(),  # to supervisors (else to a fellow agent)
    st.booleans(),  # escalated
    st.one_of(st.none(), st.tuples(st.sampled_from(SUPERVISORS), st.integers(0, 5000))),  # claimed after
)
alert = st.tuples(
    st.sampled_from(AGENTS),
    st.integers(0, 3 * 24 * 3600),  # raised this long after START
    st.one_of(st.none(), st.tuples(st.sampled_from(SUPERVISORS), st.integers(0, 5000))),  # acked after
)
histories = st.tuples(st.lists(workitem_ops, min_size=1, max_size=5), st.lists(assist, max_size=6), st.lists(alert, max_size=5))


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build(spec: Any) -> History:
    workitems, assists, alerts = spec
    history = History()
    for n, (agent, offset, ops) in enumerate(workitems):
        _play(history, f"wi-{n}", agent, START + timedelta(seconds=offset), ops)
    for n, (agent, template, offset, to_sups, escalated, claim) in enumerate(assists):
        created = START + timedelta(seconds=offset, milliseconds=n * 7)
        history.assists.append(
            an.AssistFacts(
                assist_id=f"as-{n}",
                agent_id=agent,
                template_id=template,
                created_at=iso(created),
                to_supervisors=to_sups,
                escalation_seconds=60,
                escalated=escalated,
                claimed_by=claim[0] if claim else None,
                claimed_at=iso(created + timedelta(seconds=claim[1], milliseconds=3)) if claim else None,
            )
        )
    for n, (agent, offset, ack) in enumerate(alerts):
        raised = START + timedelta(seconds=offset, milliseconds=n * 11)
        acked_at = iso(raised + timedelta(seconds=ack[1], milliseconds=5)) if ack else None
        history.alerts.append(AlertFacts(f"al-{n}", agent, iso(raised), ack[0] if ack else None, acked_at))
    return history


def _play(history: History, workitem_id: str, agent: str, at: datetime, ops: list[Any]) -> None:
    w = Workitem(TENANT, workitem_id, Channel.CHAT, agent, "cust", "Casey", iso(at))
    coach_messages: list[TimelineEntry] = []
    n = 0
    for o in ops:
        at += timedelta(seconds=1)
        now = iso(at)
        me = Principal(TENANT, w.agent_id, Role.AGENT)
        try:
            if o[0] == "join":
                change = rules.start_monitoring(Principal(TENANT, o[1], Role.SUPERVISOR), w, True, now)
            elif o[0] == "leave":
                change = rules.stop_monitoring(Principal(TENANT, o[1], Role.SUPERVISOR), w, now, True)
            elif o[0] == "coach":
                n += 1
                change = rules.send_coach_message(Principal(TENANT, o[1], Role.SUPERVISOR), w, "tip", f"{workitem_id}-m{n}", now)
            elif o[0] == "react" and coach_messages:
                message = coach_messages[o[1] % len(coach_messages)]
                change = rules.react(me, w, message, Reaction(o[2]) if o[2] else None, now)
            elif o[0] == "forward" and coach_messages:
                n += 1
                change = rules.forward(me, w, coach_messages[o[1] % len(coach_messages)], f"{workitem_id}-f{n}", now)
            elif o[0] == "transfer":
                change = rules.transfer(w, o[1], "admin-1", Role.ADMIN, now)
            elif o[0] == "wait":
                at += timedelta(seconds=o[1])
                continue
            else:
                continue
        except DomainError:
            continue
        if not change.changed:
            continue
        coach_messages += [e for e in change.entries if e.kind is EntryKind.COACH_MESSAGE]
        history.changes.append(Change(workitem_id, change.before.agent_id, change.after.version, list(change.entries)))
        w = copy.deepcopy(change.after)


def slots_of(change: Change) -> list[an.Slot]:
    return [s for e in change.entries for s in an.entry_slots(change.workitem_id, change.agent_before, e)]


def all_slots(history: History) -> list[an.Slot]:
    return [
        *(s for c in history.changes for s in slots_of(c)),
        *(s for f in history.assists for s in an.assist_slots(f)),
        *(s for a in history.alerts for s in a.slots()),
    ]


# --- the numbers, counted straight from the entries and records -----------------------------


def _zero() -> dict[str, Any]:
    return {m: 0 for m in an.COUNTERS.values()} | {"_claims": [], "_acks": []}


def expected(history: History, query: an.Query) -> tuple[dict[str, dict[str, int | None]], dict[str, int | None]]:
    """Rows and totals of an admin's report, from the definitions (docs/product.md W13)."""
    days = set(query.days)
    g = query.group_by
    rows: dict[str, dict[str, Any]] = defaultdict(_zero)
    totals = _zero()

    def count(
        metric: str,
        day: str,
        agent: str | None,
        sup: str | None,
        template: str | None,
        sample: int | None = None,
        to: str = "_claims",
    ) -> None:
        if day not in days:
            return
        keys = {"agent": agent, "supervisor": sup, "template": template, "day": day}
        targets = [totals]
        key = keys[g.value]
        if key is not None:
            targets.append(rows[key])
        for t in targets:
            t[metric] += 1
            if sample is not None:
                t[to].append(sample)

    by_id = {}
    for workitem_id, entries in history.timelines().items():
        joins = [(a, e) for a, e in entries if e.kind is EntryKind.SUPERVISOR_JOINED]
        seen_sup: set[str] = set()
        seen_agent: set[str] = set()
        for i, (agent, e) in enumerate(joins):
            if i == 0 and an.day_of(e.at) in days:
                totals["monitored_workitems"] += 1
                if g is an.GroupBy.DAY:
                    rows[an.day_of(e.at)]["monitored_workitems"] += 1
            if g is an.GroupBy.SUPERVISOR and e.author_id not in seen_sup and an.day_of(e.at) in days:
                rows[e.author_id]["monitored_workitems"] += 1
            if g is an.GroupBy.AGENT and agent not in seen_agent and an.day_of(e.at) in days:
                rows[agent]["monitored_workitems"] += 1
            seen_sup.add(e.author_id)
            seen_agent.add(agent)
        current: dict[str, TimelineEntry] = {}
        for agent, e in entries:
            if e.kind is EntryKind.COACH_MESSAGE:
                by_id[e.message_id] = e
                count("coach_messages", an.day_of(e.at), agent, e.author_id, None)
            elif e.kind is EntryKind.REACTION:
                current[str(e.message_id)] = e
            elif e.kind is EntryKind.AGENT_MESSAGE and e.forwarded_from:
                count("forwarded", an.day_of(e.at), e.author_id, by_id[e.forwarded_from].author_id, None)
        for message_id, r in current.items():
            if r.reaction:
                metric = "helpful" if r.reaction == "thumbs_up" else "not_helpful"
                count(metric, an.day_of(r.at), r.author_id, by_id[message_id].author_id, None)
    for f in history.assists:
        if not f.to_supervisors:
            continue
        count("assist_requested", an.day_of(f.created_at), f.agent_id, None, f.template_id)
        if f.escalated:
            due = datetime.fromisoformat(f.created_at.replace("Z", "+00:00"))
            due = due.replace(microsecond=0) + timedelta(seconds=(1 if due.microsecond else 0) + f.escalation_seconds)
            count("assist_escalated", due.date().isoformat(), f.agent_id, None, f.template_id)
        if f.claimed_by and f.claimed_at:
            start = datetime.fromisoformat(f.created_at.replace("Z", "+00:00"))
            end = datetime.fromisoformat(f.claimed_at.replace("Z", "+00:00"))
            seconds = min(3600, int((end - start).total_seconds()))
            count("assist_claimed", an.day_of(f.claimed_at), f.agent_id, f.claimed_by, f.template_id, seconds)
    for a in history.alerts:
        count("alerts_raised", an.day_of(a.raised_at), a.agent_id, None, None)
        if a.acked_by and a.acked_at:
            start = datetime.fromisoformat(a.raised_at.replace("Z", "+00:00"))
            end = datetime.fromisoformat(a.acked_at.replace("Z", "+00:00"))
            seconds = min(3600, int((end - start).total_seconds()))
            count("alerts_acked", an.day_of(a.acked_at), a.agent_id, a.acked_by, None, seconds, to="_acks")
    if g is an.GroupBy.DAY:
        for d in query.days:
            rows.setdefault(d, _zero())

    def done(t: dict[str, Any]) -> dict[str, int | None]:
        claims = sorted(t.pop("_claims"))
        acks = sorted(t.pop("_acks"))
        return {
            **t,
            "claim_seconds_p50": claims[(len(claims) - 1) // 2] if claims else None,
            "ack_seconds_p50": acks[(len(acks) - 1) // 2] if acks else None,
        }

    return {k: done(v) for k, v in rows.items()}, done(totals)


def every_layout(store: Any, tenant: str, months: list[str]) -> dict[tuple[str, an.Cell], dict[str, int]]:
    """Everything a store keeps for these months, read every way the reports read it: each
    dimension's day buckets and month roll-ups, and each user's own days (counters that are zero
    left out, as a DynamoDB item keeps them after an ADD takes a count back)."""
    days = [an.Read(dim, f"{m}-01", f"{m}-31") for dim in an.Dim for m in months]
    years = sorted({m[:4] for m in months})
    rollups = [an.Read(dim, f"{y}-01", f"{y}-12") for dim in an.Dim for y in years]
    found: dict[tuple[str, an.Cell], dict[str, int]] = {}
    for kind, reads in (("day", days), ("month", rollups)):
        for cell, vector in store.read(tenant, reads):
            found[(kind, cell)] = vector
    owners = sorted({o for (_, c) in found if (o := an.owner_of(c)) is not None})
    own = [an.Read(None, f"{y}-01-01", f"{y}-12-31", 1, owner) for owner in owners for y in years]
    for cell, vector in store.read(tenant, own):
        found[("own", cell)] = vector
    cleaned = {where: {k: n for k, n in v.items() if n} for where, v in found.items()}
    return {where: v for where, v in cleaned.items() if v}
