"""Coaching analytics (docs/product.md W13): counted as it happens, read per range and grouping.

Counting: the stream consumer's batches (:class:`ChangesCommitted`: joins, coach messages,
reactions, forwards) and the assistance events raised after their commits (requested, claimed,
escalated) become slots (``domain/analytics.py``), each applied exactly once by the store however
often it is delivered. A change whose slots could not be stored is handed back to the stream, which
delivers it again (the slots already stored are skipped). An assistance event's slots that could
not be stored are logged, not raised: the request or claim is committed and its caller must not
retry it; :meth:`AnalyticsService.rebuild` counts them from the records.

Reading (``GET /analytics/coaching``): the Queries of :func:`chalicelib.domain.analytics.plan` (month
roll-ups for whole months; a supervisor's agents' own partitions), plus one BatchGetItem per 100 named
users (docs/data-model.md).

Attention alerts (raised, acknowledged, time to acknowledge) are counted by the attention store in
the raise's and the ack's own writes (``services/attention.py``; W13.11): exactly once, no handler here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from chalicelib.domain import analytics as an
from chalicelib.domain.assistance import AssistanceRequest, AssistStatus, Stage
from chalicelib.domain.errors import Forbidden
from chalicelib.domain.identity import Principal, Role, user_key
from chalicelib.services.fanout import Committed
from chalicelib.services.messagebus import AssistClaimed, AssistEscalated, AssistRequested, ChangesCommitted
from chalicelib.services.ports import AnalyticsStore, RecipientLookup, RetainedHistory, Supervision, WorkitemStore

log = logging.getLogger(__name__)

NAMES_PER_LOOKUP = 100  # one BatchGetItem
REBUILD_PAGE = 500  # timeline entries per Query


def raised_to_supervisors(request: AssistanceRequest) -> bool:
    """A hand raised to supervisors (all of them, or one), not a question to a fellow agent: such a
    request escalates until claimed or exhausted, and only supervisors and admins claim."""
    return request.due_at is not None or request.status is AssistStatus.CLAIMED or request.stage > Stage.INITIAL


def assist_facts(request: AssistanceRequest, *, escalated: bool | None = None) -> an.AssistFacts:
    return an.AssistFacts(
        assist_id=request.assist_id,
        agent_id=request.agent_id,
        template_id=request.template_id,
        created_at=request.created_at,
        to_supervisors=raised_to_supervisors(request),
        escalation_seconds=request.escalation_seconds,
        escalated=request.stage > Stage.INITIAL if escalated is None else escalated,
        claimed_by=request.claimed_by,
        claimed_at=request.claimed_at,
    )


def requested_slots(request: AssistanceRequest) -> list[an.Slot]:
    """A new request's facts (a hand raised to supervisors), stored with the request when they can be."""
    return an.requested_slots(assist_facts(request, escalated=False))


def change_slots(c: Committed) -> list[an.Slot]:
    """The slots of one committed change: its entries, counted for the agent it had when they were
    written (a transfer's entries come before its new agent)."""
    return [s for e in c.note.entries for s in an.entry_slots(c.after.workitem_id, c.before.agent_id, e)]


class AnalyticsService:
    def __init__(self, store: AnalyticsStore, supervision: Supervision, recipients: RecipientLookup) -> None:
        self.store = store
        self._supervision = supervision
        self._recipients = recipients

    # --- counting ----------------------------------------------------------------------------

    def on_changes(self, event: ChangesCommitted) -> None:
        """A stream batch: every change's slots; a change that could not be stored is handed back."""
        for c in event.batch:
            try:
                for slot in change_slots(c):
                    self.store.apply(c.after.tenant_id, slot)
            except Exception:
                log.exception(
                    "analytics: could not count version %d of workitem %s; handed back to the stream",
                    c.after.version,
                    c.after.workitem_id,
                )
                event.handed_back.append(c)

    def on_assist_requested(self, event: AssistRequested) -> None:
        """Counted here only when the request could not be stored with its facts (``counted``)."""
        if not event.counted:
            self._count(event.request, requested_slots(event.request))

    def on_assist_claimed(self, event: AssistClaimed) -> None:
        self._count(event.request, an.claimed_slots(assist_facts(event.request)))

    def on_assist_escalated(self, event: AssistEscalated) -> None:
        self._count(event.request, an.escalated_slots(assist_facts(event.request, escalated=True)))

    def _count(self, request: AssistanceRequest, slots: Iterable[an.Slot]) -> None:
        try:
            for slot in slots:
                self.store.apply(request.tenant_id, slot)
        except Exception:
            log.exception(
                "analytics: could not count assistance request %s of tenant %s; "
                "scripts/rebuild_analytics.py --stack <stack> --tenant %s counts it (docs/operations.md)",
                request.assist_id,
                request.tenant_id,
                request.tenant_id,
            )

    # --- rebuilding ---------------------------------------------------------------------------

    def rebuild(self, tenant_id: str, history: RetainedHistory, timelines: WorkitemStore) -> dict[str, int]:
        """Count every fact the tenant still retains: each retained timeline (1 Query per 500 entries)
        and assistance request. Facts counted already are skipped (the store applies each once), so
        this fills what the incremental path missed (an assistance event whose write failed, tenants
        that existed before the analytics) and changes nothing else: days whose timelines expired
        keep their numbers. Returns how many workitems, requests and newly counted facts it saw."""
        summary = {"workitems": 0, "requests": 0, "counted": 0}
        for workitem_id, agent_id in history.workitems(tenant_id):
            summary["workitems"] += 1
            after = 0
            while True:
                entries, more = timelines.timeline(tenant_id, workitem_id, after=after, limit=REBUILD_PAGE, customer=False)
                for entry in entries:
                    for slot in an.entry_slots(workitem_id, agent_id, entry):
                        summary["counted"] += self.store.apply(tenant_id, slot)
                if not more or not entries:
                    break
                after = entries[-1].seq
        for request in history.requests(tenant_id):
            summary["requests"] += 1
            for slot in an.assist_slots(assist_facts(request)):
                summary["counted"] += self.store.apply(tenant_id, slot)
        log.info("analytics rebuild of tenant %s: %s", tenant_id, summary)
        return summary

    # --- reading -----------------------------------------------------------------------------

    def scope(self, caller: Principal) -> an.Scope:
        """Admins: the tenant. Supervisors: the agents of their teams and themselves (1 Query).
        Everybody else is refused."""
        if caller.role is Role.ADMIN:
            return an.Scope(tenant_wide=True)
        if caller.role is Role.SUPERVISOR:
            agents = self._supervision.agents_of(caller.tenant_id, caller.user_id)
            return an.Scope(tenant_wide=False, agents=frozenset(agents), supervisor=caller.user_id)
        raise Forbidden("only admins and supervisors may read coaching analytics")

    def coaching(self, caller: Principal, query: an.Query, scope: an.Scope | None = None) -> CoachingReport:
        """The report of ``query`` in the caller's scope (:meth:`scope`, unless given): rows (named when
        they are users) and totals."""
        scope = scope or self.scope(caller)
        report = an.report(query, scope, self.store.read(caller.tenant_id, an.plan(query, scope)))
        names: dict[str, str] = {}
        if query.group_by in (an.GroupBy.AGENT, an.GroupBy.SUPERVISOR) and report.rows:
            keys = [user_key(k) for k, _ in report.rows]
            for start in range(0, len(keys), NAMES_PER_LOOKUP):
                found = self._recipients.recipients(caller.tenant_id, keys[start : start + NAMES_PER_LOOKUP])
                names.update({r.user_id: r.name for r in found.values() if r.name})
        rows = [ReportRow(key, names.get(key), metrics) for key, metrics in report.rows]
        return CoachingReport(query.start.isoformat(), query.end.isoformat(), query.group_by.value, rows, report.totals)


@dataclass(frozen=True)
class ReportRow:
    """One row of a coaching report: a user id, template id or day, the user's name when the directory
    has one, and the metrics (``domain/analytics.py``'s names; the wire's are ``entrypoints/wire.py``'s)."""

    key: str
    name: str | None
    metrics: dict[str, int | None]


@dataclass(frozen=True)
class CoachingReport:
    start: str
    end: str
    group_by: str
    rows: list[ReportRow]
    totals: dict[str, int | None]
