"""Attention (docs/product.md W11, docs/attention.md): the tenant's rules, the alerts they raise, and
the supervisor's queue.

Rules are evaluated off the request path: :meth:`AttentionService.on_changes` is a handler of the
workitems stream's consumer (``ChangesCommitted``, see ``bootstrap.event_handlers``), so
``coach.send``, ``message.send`` and the inbound webhooks keep their request counts. An alert's id is a
function of what raised it (``domain.attention.alert_id``) and raising is conditional on that id never
having been raised, so a batch handed over again raises nothing twice; clearing is conditional on
the alert still being active.

Who is told: ``attention.raised`` / ``attention.cleared`` go to every connected supervisor of the
workitem's agent (one Query of the agent's supervision edges, one BatchGetItem of their connections),
``attention.acked`` to the same supervisors but the one who acked (who gets the ack). Agents and
customers are never told. The same three go to the tenant's webhook subscriptions.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from chalicelib.domain import analytics as an
from chalicelib.domain.attention import (
    MAX_OPEN_ALERTS,
    TIMER_KINDS,
    WRITTEN_CHANNELS,
    Alert,
    ClearReason,
    QueueItem,
    Rule,
    RuleKind,
    can_add_rule,
    due_in,
    keyword_reason,
    last_transcript_line,
    negative_run,
    queue,
    raise_alert,
    seconds_between,
    speaker,
    timer_reason,
    waiting_since,
)
from chalicelib.domain.coaching import Status
from chalicelib.domain.errors import Conflict, Forbidden, NotFound
from chalicelib.domain.identity import Principal, Role, user_key
from chalicelib.domain.sentiment import DEFAULT_LANGUAGE, Sentiment
from chalicelib.domain.timeline import EntryKind, TimelineEntry
from chalicelib.domain.transcript import CallTranscript, TranscriptState
from chalicelib.services import push_events as ev
from chalicelib.services.clock import iso
from chalicelib.services.delivery import Notifier
from chalicelib.services.directory import require_admin
from chalicelib.services.fanout import Committed
from chalicelib.services.messagebus import ChangesCommitted
from chalicelib.services.paging import DEFAULT_LIMIT, page, scope_of
from chalicelib.services.ports import (
    AttentionStore,
    Clock,
    Created,
    DeliveryQueue,
    Outgoing,
    QueueMessage,
    RecipientLookup,
    SentimentAnalyzer,
    Supervision,
    TenantConfig,
    WorkitemStore,
)
from chalicelib.services.results import AlertNote, AttentionPage, RuleList, RuleNote, SentimentNote

log = logging.getLogger(__name__)

# A rule change made through another function instance reaches this one's evaluations within this long
# (this instance's own changes at once).
RULES_CACHE_SECONDS = 10
# SQS delays a message at most 15 minutes; a longer threshold is armed again when the message fires.
MAX_TIMER_DELAY = 900
# The field that marks a timer's body: the delivery function takes timers from their own queue, and
# tells them from deliveries by it.
TIMER_MARK = "attention_timer"


def is_timer(message: QueueMessage) -> bool:
    """Whether a queue message is an attention timer (its body starts with the mark: no JSON parsing)."""
    return message.body.startswith('{"' + TIMER_MARK + '"')


Emit = Callable[[str, str, Any], None]  # Integrations.emit: the data is a record, rendered there


class AttentionService:
    def __init__(
        self,
        store: AttentionStore,
        workitems: WorkitemStore,
        supervision: Supervision,
        recipients: RecipientLookup,
        notifier: Notifier,
        clock: Clock,
        emit: Emit,
        sentiment: SentimentAnalyzer | None = None,
        timers: DeliveryQueue | None = None,
        cache_seconds: int = RULES_CACHE_SECONDS,
        config: TenantConfig | None = None,
    ) -> None:
        self.store = store
        self.workitems = workitems
        self.supervision = supervision
        self.recipients = recipients
        self.notifier = notifier
        self.clock = clock
        self.emit = emit
        self.sentiment = sentiment
        self.timers = timers
        self.cache_seconds = cache_seconds
        self.config = config
        self._rules: dict[str, tuple[float, list[Rule]]] = {}
        self._languages: dict[str, tuple[float, str]] = {}

    def _now(self) -> str:
        return iso(self.clock.now())

    # --- rules (admins) -------------------------------------------------------------------------------

    def put_rule(self, caller: Principal, rule: Rule) -> RuleNote | Created:
        """1 Query + 1 PutItem. A new rule is :class:`Created` (201); at most 50 a tenant. Disabling a
        rule clears its alerts (``rule_deleted``); any other edit keeps them."""
        require_admin(caller)
        existing = {r.rule_id: r for r in self.store.rules(caller.tenant_id)}
        can_add_rule(existing, rule.rule_id)
        self.store.put_rule(caller.tenant_id, rule, self._now())
        self._rules.pop(caller.tenant_id, None)
        before = existing.get(rule.rule_id)
        if before is not None and before.enabled and not rule.enabled:
            self._clear_rule(caller.tenant_id, rule.rule_id)
        saved = RuleNote(rule)
        return saved if before is not None else Created(saved)

    def list_rules(self, caller: Principal) -> RuleList:
        """1 Query."""
        require_admin(caller)
        return RuleList(sorted(self.store.rules(caller.tenant_id), key=lambda r: r.rule_id))

    def delete_rule(self, caller: Principal, rule_id: str) -> None:
        """1 DeleteItem, then the rule's active alerts are cleared (``rule_deleted``)."""
        require_admin(caller)
        if not self.store.delete_rule(caller.tenant_id, rule_id):
            raise NotFound(f"attention rule {rule_id} not found")
        self._rules.pop(caller.tenant_id, None)
        self._clear_rule(caller.tenant_id, rule_id)

    def _clear_rule(self, tenant_id: str, rule_id: str) -> None:
        """1 Query of the tenant's alerts, then per alert of the rule 1 TransactWriteItems and its pushes."""
        for alert in self.store.alerts(tenant_id):
            if alert.rule_id == rule_id:
                self._clear(alert, ClearReason.RULE_DELETED)

    def rules_of(self, tenant_id: str) -> list[Rule]:
        """The tenant's enabled rules: 1 Query, at most once per ``cache_seconds`` (10 by default)."""
        now = self.clock.now().timestamp()
        hit = self._rules.get(tenant_id)
        if hit is None or hit[0] <= now:
            hit = (now + self.cache_seconds, [r for r in self.store.rules(tenant_id) if r.enabled])
            self._rules[tenant_id] = hit
        return hit[1]

    def language_of(self, tenant_id: str) -> str:
        """The language the tenant's customers write in (its policy's ``sentimentLanguage``): 1 GetItem,
        at most once per ``cache_seconds``, and only for tenants whose messages are analysed."""
        if self.config is None:
            return DEFAULT_LANGUAGE
        now = self.clock.now().timestamp()
        hit = self._languages.get(tenant_id)
        if hit is None or hit[0] <= now:
            hit = (now + self.cache_seconds, self.config.policy(tenant_id).sentiment_language)
            self._languages[tenant_id] = hit
        return hit[1]

    # --- evaluation (the stream consumer) -------------------------------------------------------------

    def on_changes(self, event: ChangesCommitted) -> None:
        """Evaluate each committed change of the batch; a change that could not be evaluated (the store
        not answering) is handed back, so the stream hands it over again."""
        labels = self._analyze(event.batch)
        for committed in event.batch:
            try:
                self.evaluate(committed, labels)
            except Exception:
                log.exception(
                    "could not evaluate attention rules on version %d of workitem %s",
                    committed.after.version,
                    committed.after.workitem_id,
                )
                event.handed_back.append(committed)

    def _analyze(self, batch: Iterable[Committed]) -> dict[tuple[str, str, int], Sentiment]:
        """The sentiment of every customer message of the batch: one call of the analyzer per tenant
        (Comprehend: 1 BatchDetectSentiment per 25 messages). An analyzer that fails leaves the batch
        without labels (logged): its messages raise no sentiment alert, nothing else is held up."""
        if self.sentiment is None:
            return {}
        by_tenant: dict[str, list[tuple[str, TimelineEntry]]] = {}
        for c in batch:
            wanted = any(e.kind is EntryKind.CUSTOMER_MESSAGE for e in c.note.entries)
            if not wanted or not any(r.kind is RuleKind.SENTIMENT for r in self.rules_of(c.after.tenant_id)):
                continue  # only tenants with a sentiment rule pay for the analysis (docs/attention.md)
            for e in c.note.entries:
                if e.kind is EntryKind.CUSTOMER_MESSAGE and e.text:
                    by_tenant.setdefault(c.after.tenant_id, []).append((c.after.workitem_id, e))
        labels: dict[tuple[str, str, int], Sentiment] = {}
        for tenant_id, found in by_tenant.items():
            try:
                answers = self.sentiment.analyze([e.text or "" for _, e in found], self.language_of(tenant_id))
            except Exception:
                log.exception("could not analyse the sentiment of %d messages of tenant %s", len(found), tenant_id)
                continue
            for (workitem_id, e), label in zip(found, answers, strict=True):
                if label is not None:
                    labels[(tenant_id, workitem_id, e.seq)] = label
        return labels

    def _keep_sentiment(self, committed: Committed, labels: dict[tuple[str, str, int], Sentiment]) -> list[TimelineEntry]:
        """Write each labelled customer message's sentiment on its entry (1 UpdateItem each) and push
        ``entry.sentiment`` to the staff of the workitem (its agent and monitors: 1 BatchGetItem)."""
        w = committed.after
        mine = [
            (e, labels[(w.tenant_id, w.workitem_id, e.seq)])
            for e in committed.note.entries
            if (w.tenant_id, w.workitem_id, e.seq) in labels
        ]
        kept = [(e, label) for e, label in mine if self.store.set_sentiment(w.tenant_id, w.workitem_id, e.seq, label)]
        if kept:
            staff = [user_key(u) for u in dict.fromkeys([w.agent_id, *w.monitors])]
            found = self.recipients.recipients(w.tenant_id, staff)
            box = self.notifier.outbox(w.tenant_id)
            for e, label in kept:
                for key in staff:
                    box.to_recipient(found.get(key), ev.ENTRY_SENTIMENT, SentimentNote(w.workitem_id, e.seq, label.value))
            self.notifier.flush(box)
        return [e for e, _ in kept]

    def _negative_runs(self, committed: Committed, rules: list[Rule], labels: dict[tuple[str, str, int], Sentiment]) -> None:
        """For each sentiment rule: 1 Query of the workitem's latest entries (with their kept labels). A
        customer's transcript line comes with its sentiment (Transcribe Call Analytics'), a customer
        message gets it from the analyzer (``labels``)."""
        w = committed.after
        runs = [r for r in rules if r.kind is RuleKind.SENTIMENT]
        newest = [
            e
            for e in committed.note.entries
            if (w.tenant_id, w.workitem_id, e.seq) in labels
            or (e.kind is EntryKind.TRANSCRIPT and speaker(e) == "customer" and e.extra.get("sentiment"))
        ]
        if not runs or not newest:
            return
        longest = max(r.negative_in_a_row or 1 for r in runs)
        entries, _ = self.workitems.latest(w.tenant_id, w.workitem_id, 4 * longest + 10)
        last = newest[-1]
        customer = [e for e in entries if speaker(e) == "customer" and e.seq <= last.seq]
        seen: list[Sentiment | None] = []
        for e in customer:
            label = labels.get((w.tenant_id, w.workitem_id, e.seq)) or Sentiment.from_label(str(e.extra.get("sentiment", "")))
            seen.append(label)
        for rule in runs:
            reason = negative_run(rule, seen)
            if reason is not None:
                self._raise(raise_alert(w.tenant_id, rule, w.workitem_id, w.agent_id, f"s{last.seq}", reason, last.at))

    def evaluate(self, committed: Committed, labels: dict[tuple[str, str, int], Sentiment] | None = None) -> None:
        """Raise what the change's entries trigger; clear what it resolved or ended. The tenant's rules
        are read (cached, :meth:`rules_of`) for any change with entries, so the first change after the
        cache expires pays the Query whatever its kind, and no action's own cost depends on the order."""
        before, w = committed.before, committed.after
        ended = before.status is Status.ACTIVE and w.status is Status.ENDED
        if w.version == 0 and not committed.note.entries:  # a new workitem: its handle-time timers start
            for rule in self.rules_of(w.tenant_id):
                if rule.kind is RuleKind.HANDLE_TIME:
                    self._arm(w.tenant_id, w.workitem_id, rule, "h", w.created_at)
            return
        if not committed.note.entries and not ended:
            return
        labels = labels or {}
        self._keep_sentiment(committed, labels)
        rules = self.rules_of(w.tenant_id)
        if ended:  # a tenant without enabled rules has no active alert (disabling or deleting clears them)
            if rules:
                self._clear_workitem(w.tenant_id, w.workitem_id, ClearReason.ENDED)
            return
        messages = [e for e in committed.note.entries if speaker(e) is not None]
        if not rules or not messages:
            return
        self._negative_runs(committed, rules, labels)
        keywords = [(r, r.matcher()) for r in rules if r.kind is RuleKind.KEYWORD]
        for entry in messages:
            for rule, phrases in keywords:
                reason = keyword_reason(rule, entry, phrases)
                if reason is not None:
                    self._raise(raise_alert(w.tenant_id, rule, w.workitem_id, w.agent_id, f"e{entry.seq}", reason, entry.at))
        waiting = [r for r in rules if r.kind is RuleKind.CUSTOMER_WAITING]
        if waiting and w.channel.value in WRITTEN_CHANNELS:
            for entry in messages:
                if speaker(entry) == "customer":
                    for rule in waiting:
                        self._arm(w.tenant_id, w.workitem_id, rule, f"w{entry.seq}", entry.at)
        if waiting and any(speaker(e) == "agent" for e in messages):
            self._clear_workitem(w.tenant_id, w.workitem_id, ClearReason.RESOLVED, kinds={RuleKind.CUSTOMER_WAITING})
        silences = [r for r in rules if r.kind is RuleKind.SILENCE]
        line = last_transcript_line(messages)
        if silences and line is not None:  # someone spoke: the silence timers start again from this line
            for rule in silences:
                self._arm(w.tenant_id, w.workitem_id, rule, f"t{line.seq}", line.at)
            # A silence alert can be open only if the timeline was quiet that long before this line.
            quiet = seconds_between(committed.before.last_activity_at, line.at)
            if quiet >= min(r.seconds or 0 for r in silences):
                self._clear_workitem(w.tenant_id, w.workitem_id, ClearReason.RESOLVED, kinds={RuleKind.SILENCE})

    # --- timers (customer_waiting, handle_time) --------------------------------------------------------

    def _arm(self, tenant_id: str, workitem_id: str, rule: Rule, trigger: str, since: str) -> None:
        """One delayed queue message that fires when ``rule``'s threshold, counted from ``since``,
        passes (at most 900 s ahead: a longer wait is re-armed when the message fires)."""
        if self.timers is None or rule.seconds is None:
            return
        left = due_in(rule, since, iso(self.clock.now()))
        body = json.dumps({TIMER_MARK: 1, "t": tenant_id, "w": workitem_id, "r": rule.rule_id, "k": trigger, "since": since})
        refused = self.timers.send([Outgoing(body, tenant_id, "timer", max(0, min(MAX_TIMER_DELAY, math.ceil(left))))])
        if refused:
            log.error("the timer queue refused the %s timer of workitem %s", rule.kind.value, workitem_id)

    def on_timers(self, messages: Sequence[QueueMessage]) -> list[str]:
        """The timer queue (Lambda's SQS event source): each fired timer checks its condition again and
        raises its alert if it still holds, or is armed again when its threshold is further than the
        longest delay. Answers the ids of the timers that could not be checked: they come back."""
        failures: list[str] = []
        for message in messages:
            try:
                self._fire(json.loads(message.body or "{}"))
            except Exception:
                log.exception("could not check attention timer %s", message.message_id)
                failures.append(message.message_id)
        return failures

    def _fire(self, timer: dict[str, Any]) -> None:
        """1 GetItem of the workitem; for a waiting customer, 1 Query of its latest entries."""
        tenant_id, workitem_id, rule_id, trigger, since = (str(timer.get(k, "")) for k in ("t", "w", "r", "k", "since"))
        rule = next((r for r in self.rules_of(tenant_id) if r.rule_id == rule_id and r.kind in TIMER_KINDS), None)
        if rule is None or rule.seconds is None:
            return  # deleted or disabled meanwhile
        now = iso(self.clock.now())
        if due_in(rule, since, now) > 0:
            self._arm(tenant_id, workitem_id, rule, trigger, since)
            return
        w = self.workitems.get(tenant_id, workitem_id)
        if w is None or w.status is not Status.ACTIVE:
            return
        if rule.kind is RuleKind.CUSTOMER_WAITING:
            entries, _ = self.workitems.latest(tenant_id, workitem_id, 50)
            first = waiting_since(entries)
            if first is None or f"w{first.seq}" != trigger:
                return  # answered meanwhile, or an earlier message's timer speaks for this wait
        elif rule.kind is RuleKind.SILENCE:
            transcript = CallTranscript.load((w.voice or {}).get("transcript"))
            if transcript is None or transcript.state is not TranscriptState.RUNNING:
                return  # paused, stopped or never started: silence counts only while the transcript runs
            entries, _ = self.workitems.latest(tenant_id, workitem_id, 50)
            line = last_transcript_line(entries)
            if line is None or f"t{line.seq}" != trigger:
                return  # someone spoke since: that line's timer speaks for this silence
        elif rule.kind is not RuleKind.HANDLE_TIME:
            return
        self._raise(raise_alert(tenant_id, rule, workitem_id, w.agent_id, trigger, timer_reason(rule), now))

    def _raise(self, alert: Alert) -> bool:
        """1 TransactWriteItems (the alert and its analytics fact, W13.11); when the alert is new, its
        pushes and webhook."""
        counted = an.alert_raised_slots(alert.alert_id, alert.agent_id, alert.raised_at)
        outcome = self.store.raise_alert(alert, MAX_OPEN_ALERTS, counted)
        if outcome == "full":
            log.warning(
                "tenant %s has %d active alerts: alert of rule %s not raised", alert.tenant_id, MAX_OPEN_ALERTS, alert.rule_id
            )
        if outcome != "raised":
            return False
        log.info("attention alert %s raised on workitem %s by rule %s", alert.alert_id, alert.workitem_id, alert.rule_id)
        self._tell(alert, ev.ATTENTION_RAISED)
        return True

    def _clear_workitem(self, tenant_id: str, workitem_id: str, reason: ClearReason, kinds: set[RuleKind] | None = None) -> None:
        """1 Query of the workitem's slots; per active alert 1 GetItem and 1 TransactWriteItems."""
        for alert_id in self.store.active_of(tenant_id, workitem_id):
            alert = self.store.alert(tenant_id, alert_id)
            if alert is not None and alert.active and (kinds is None or alert.kind in kinds):
                self._clear(alert, reason)

    def _clear(self, alert: Alert, reason: ClearReason) -> None:
        cleared = alert.clear(reason, self._now())
        if self.store.clear(cleared):
            self._tell(cleared, ev.ATTENTION_CLEARED)

    def _tell(self, alert: Alert, name: str, exclude: str | None = None, skip: str | None = None) -> None:
        """Push ``name`` to the agent's connected supervisors (but ``skip``), and queue its webhook."""
        supervisors = [s for s in self.supervision.supervisors_of(alert.tenant_id, alert.agent_id) if s != skip]
        if supervisors:
            found = self.recipients.recipients(alert.tenant_id, [user_key(s) for s in supervisors])
            box = self.notifier.outbox(alert.tenant_id, exclude)
            for s in supervisors:
                box.to_recipient(found.get(user_key(s)), name, AlertNote(alert))
            self.notifier.flush(box)
        self.emit(alert.tenant_id, name, AlertNote(alert))

    # --- supervisors ----------------------------------------------------------------------------------

    def list(self, caller: Principal, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> AttentionPage:
        """``attention.list``: 1 Query of the supervision GSI (the caller's agents), 1 Query of the
        tenant's active alerts (at most 500), 1 BatchGetItem per 100 of their workitems."""
        if caller.role is not Role.SUPERVISOR:
            raise Forbidden("only supervisors have an attention queue")
        agents = self.supervision.agents_of(caller.tenant_id, caller.user_id)
        items = queue(self.store.alerts(caller.tenant_id), agents) if agents else []
        workitems = self.workitems.get_many(caller.tenant_id, [i.workitem_id for i in items]) if items else {}
        live = [i for i in items if i.workitem_id in workitems and workitems[i.workitem_id].status is Status.ACTIVE]
        plain = self.notifier.wire.plain

        def key(item: QueueItem) -> tuple[str, ...]:
            return (f"{100000 - item.score:06d}", item.oldest, item.workitem_id)

        def wire(item: QueueItem) -> dict[str, Any]:
            return {"workitem": plain(workitems[item.workitem_id]), "score": item.score, "alerts": plain(list(item.alerts))}

        scope = scope_of("attention.list", caller.tenant_id, caller.user_id)
        pairs, next_cursor = page(live, key, wire, scope, limit, cursor)
        return AttentionPage([body for _, body in pairs], next_cursor)

    def ack(self, caller: Principal, alert_id: str, connection_id: str | None = None) -> AlertNote:
        """``attention.ack``: 1 GetItem, 1 Query (does the caller supervise the agent), 1 TransactWriteItems
        (the first ack wins, and only it is counted: W13.11); then the other supervisors' ``attention.acked``."""
        if caller.role is not Role.SUPERVISOR:
            raise Forbidden("only supervisors ack alerts")
        alert = self.store.alert(caller.tenant_id, alert_id)
        if alert is None:
            raise NotFound(f"alert {alert_id} not found")
        if not self.supervision.supervises(caller.tenant_id, caller.user_id, alert.agent_id):
            raise Forbidden("you do not supervise this alert's agent")
        acked = alert.ack(caller.user_id, self._now())
        counted = an.alert_acked_slots(alert.alert_id, alert.agent_id, alert.raised_at, caller.user_id, acked.acked_at or "")
        if not self.store.ack(acked, counted):
            raise Conflict(f"alert {alert_id} was acked or cleared meanwhile")
        self._tell(acked, ev.ATTENTION_ACKED, exclude=connection_id, skip=caller.user_id)
        return AlertNote(acked)
