"""Attention: the tenant's rules, the alerts they raise, and the supervisor's ranked queue
(docs/product.md W11, docs/attention.md).

Pure rules: what a rule of each kind may hold, whether an entry or a moment triggers it, how an alert
moves between its states, and in which order a supervisor sees the workitems that need them. Where
rules and alerts are kept, and who is told, is the services' job.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from .errors import Conflict, Invalid
from .phrases import Phrase, first_match
from .sentiment import Sentiment
from .timeline import EntryKind, TimelineEntry


class RuleKind(str, enum.Enum):
    KEYWORD = "keyword"
    SENTIMENT = "sentiment"
    CUSTOMER_WAITING = "customer_waiting"
    SILENCE = "silence"
    HANDLE_TIME = "handle_time"


# Kinds decided by the passing of time rather than by an entry: a timer re-checks them when it fires.
TIMER_KINDS = frozenset({RuleKind.CUSTOMER_WAITING, RuleKind.SILENCE, RuleKind.HANDLE_TIME})
# Kinds decided by an entry as it is committed.
ENTRY_KINDS = frozenset({RuleKind.KEYWORD, RuleKind.SENTIMENT})

MAX_RULES = 50
SEVERITIES = (1, 2, 3)
MIN_PHRASES, MAX_PHRASES = 1, 100
MIN_PHRASE_CHARS, MAX_PHRASE_CHARS = 1, 100
SPEAKERS = ("customer", "agent")
DEFAULT_SPEAKERS = ("customer",)
MIN_NEGATIVE_IN_ROW, MAX_NEGATIVE_IN_ROW = 1, 10
# The seconds each timer kind may wait, inclusive.
SECONDS_BOUNDS: dict[RuleKind, tuple[int, int]] = {
    RuleKind.CUSTOMER_WAITING: (10, 3600),
    RuleKind.SILENCE: (5, 600),
    RuleKind.HANDLE_TIME: (60, 86400),
}
# A tenant never has more alerts open or acked than this: a rule that matches everything cannot flood
# the store or the supervisors, and listing a tenant's alerts stays one bounded read.
MAX_OPEN_ALERTS = 500
# The fields each kind holds besides kind, enabled and severity (the entry layer names them on the wire).
KIND_FIELDS: dict[RuleKind, tuple[str, ...]] = {
    RuleKind.KEYWORD: ("phrases", "speakers"),
    RuleKind.SENTIMENT: ("negative_in_a_row",),
    RuleKind.CUSTOMER_WAITING: ("seconds",),
    RuleKind.SILENCE: ("seconds",),
    RuleKind.HANDLE_TIME: ("seconds",),
}
# Channels where a customer waits for a written answer (customer_waiting applies to them only).
WRITTEN_CHANNELS = frozenset({"chat", "sms", "social"})

_SPEAKER_OF = {EntryKind.CUSTOMER_MESSAGE: "customer", EntryKind.AGENT_MESSAGE: "agent"}


@dataclass(frozen=True)
class Rule:
    """One attention rule. Only the fields of its ``kind`` are set (:data:`KIND_FIELDS`)."""

    rule_id: str
    kind: RuleKind
    enabled: bool = True
    severity: int = 1
    phrases: tuple[str, ...] = ()
    speakers: tuple[str, ...] = ()
    negative_in_a_row: int | None = None
    seconds: int | None = None

    def __post_init__(self) -> None:
        check_rule(self)

    def matcher(self) -> tuple[Phrase, ...]:
        return tuple(Phrase(p) for p in self.phrases)


def _problem(field_name: str, problem: str) -> Invalid:
    return Invalid(f"{field_name}: {problem}", problems=[{"field": field_name, "problem": problem}])


def check_rule(rule: Rule) -> None:
    """Refuse a rule that breaks its kind's bounds (:class:`Invalid` naming the field)."""
    if rule.severity not in SEVERITIES or isinstance(rule.severity, bool):
        raise _problem("severity", "must be 1, 2 or 3")
    kind = rule.kind
    if kind is RuleKind.KEYWORD:
        if not MIN_PHRASES <= len(rule.phrases) <= MAX_PHRASES:
            raise _problem("phrases", f"must hold {MIN_PHRASES} to {MAX_PHRASES} phrases")
        seen: dict[tuple[str, ...], str] = {}
        for i, text in enumerate(rule.phrases):
            if not MIN_PHRASE_CHARS <= len(text) <= MAX_PHRASE_CHARS:
                raise _problem(f"phrases.{i}", f"must be {MIN_PHRASE_CHARS} to {MAX_PHRASE_CHARS} characters")
            folded = Phrase(text).words
            if not folded:
                raise _problem(f"phrases.{i}", "must hold at least one word (letters or digits)")
            if folded in seen:
                raise _problem(f"phrases.{i}", f"matches the same words as phrases.{rule.phrases.index(seen[folded])}")
            seen[folded] = text
        if not rule.speakers or len(set(rule.speakers)) != len(rule.speakers) or not set(rule.speakers) <= set(SPEAKERS):
            raise _problem("speakers", "must be distinct speakers among customer and agent")
    else:
        for name, value in (("phrases", rule.phrases), ("speakers", rule.speakers)):
            if value:
                raise _problem(name, f"belongs to keyword rules, not {kind.value}")
    if kind is RuleKind.SENTIMENT:
        n = rule.negative_in_a_row
        if n is None or isinstance(n, bool) or not MIN_NEGATIVE_IN_ROW <= n <= MAX_NEGATIVE_IN_ROW:
            raise _problem("negative_in_a_row", f"must be an integer from {MIN_NEGATIVE_IN_ROW} to {MAX_NEGATIVE_IN_ROW}")
    elif rule.negative_in_a_row is not None:
        raise _problem("negative_in_a_row", f"belongs to sentiment rules, not {kind.value}")
    if kind in SECONDS_BOUNDS:
        low, high = SECONDS_BOUNDS[kind]
        s = rule.seconds
        if s is None or isinstance(s, bool) or not low <= s <= high:
            raise _problem("seconds", f"must be an integer from {low} to {high} for {kind.value} rules")
    elif rule.seconds is not None:
        raise _problem("seconds", f"belongs to timer rules, not {kind.value}")


def _distinct(phrases: Sequence[str]) -> tuple[str, ...]:
    """``phrases`` without those that match the same words as an earlier one ("Refund" after "refund"):
    they would raise the same alerts. A phrase that breaks its bounds is refused by its index as sent."""
    seen: set[tuple[str, ...]] = set()
    kept: list[str] = []
    for i, text in enumerate(phrases):
        if not isinstance(text, str) or not MIN_PHRASE_CHARS <= len(text) <= MAX_PHRASE_CHARS:
            raise _problem(f"phrases.{i}", f"must be {MIN_PHRASE_CHARS} to {MAX_PHRASE_CHARS} characters")
        folded = Phrase(text).words
        if not folded:
            raise _problem(f"phrases.{i}", "must hold at least one word (letters or digits)")
        if folded not in seen:
            seen.add(folded)
            kept.append(text)
    return tuple(kept)


def rule_from(
    rule_id: str,
    kind: str,
    enabled: bool = True,
    severity: int = 1,
    *,
    phrases: Sequence[str] | None = None,
    speakers: Sequence[str] | None = None,
    negative_in_a_row: int | None = None,
    seconds: int | None = None,
) -> Rule:
    """A rule from its fields (a keyword rule without ``speakers`` listens to the customer)."""
    try:
        rule_kind = RuleKind(kind)
    except ValueError:
        raise _problem("kind", f"must be one of {', '.join(k.value for k in RuleKind)}") from None
    if rule_kind is RuleKind.KEYWORD and speakers is None:
        speakers = DEFAULT_SPEAKERS
    return Rule(
        rule_id,
        rule_kind,
        enabled,
        severity,
        phrases=_distinct(phrases or ()),
        speakers=tuple(speakers or ()),
        negative_in_a_row=negative_in_a_row,
        seconds=seconds,
    )


def can_add_rule(existing: Iterable[str], rule_id: str) -> None:
    """Refuse a new rule beyond :data:`MAX_RULES` (replacing one of the rules is always allowed)."""
    ids = set(existing)
    if rule_id not in ids and len(ids) >= MAX_RULES:
        raise Conflict(f"a tenant may have at most {MAX_RULES} attention rules")


# --- evaluation -------------------------------------------------------------------------------------


def speaker(entry: TimelineEntry) -> str | None:
    """``customer`` or ``agent`` for a message or a transcript line of theirs (W12.4), None for every
    other entry."""
    if entry.kind is EntryKind.TRANSCRIPT:
        said = entry.extra.get("speaker")
        return said if said in SPEAKERS else None
    return _SPEAKER_OF.get(entry.kind)


def keyword_reason(rule: Rule, entry: TimelineEntry, phrases: Sequence[Phrase] | None = None) -> str | None:
    """The alert's reason when ``entry`` triggers the keyword ``rule`` (its text holds one of the rule's
    phrases, said by one of the rule's speakers), else None. The reason holds the phrase as the rule
    wrote it."""
    who = speaker(entry)
    if rule.kind is not RuleKind.KEYWORD or who not in rule.speakers or not entry.text:
        return None
    match = first_match(phrases if phrases is not None else rule.matcher(), entry.text)
    return f'{who} said "{match.text}"' if match else None


def negative_run(rule: Rule, latest: Sequence[Sentiment | None]) -> str | None:
    """The alert's reason when the workitem's last customer messages (``latest``, newest last, one per
    message: None while a message's sentiment is unknown) are ``negative_in_a_row`` negatives, else None."""
    n = rule.negative_in_a_row
    if rule.kind is not RuleKind.SENTIMENT or n is None or len(latest) < n:
        return None
    if all(s is Sentiment.NEGATIVE for s in latest[-n:]):
        return f"{n} negative customer message{'s' if n > 1 else ''} in a row"
    return None


def waiting_since(entries: Iterable[TimelineEntry]) -> TimelineEntry | None:
    """The first customer message that no agent message has answered yet (entries in seq order), or
    None when the customer is not waiting."""
    first: TimelineEntry | None = None
    for entry in entries:
        who = speaker(entry)
        if who == "agent":
            first = None
        elif who == "customer" and first is None:
            first = entry
    return first


def last_transcript_line(entries: Iterable[TimelineEntry]) -> TimelineEntry | None:
    """The newest transcript line among ``entries`` (in seq order), or None."""
    found: TimelineEntry | None = None
    for entry in entries:
        if entry.kind is EntryKind.TRANSCRIPT:
            found = entry
    return found


def seconds_between(start: str, end: str) -> float:
    """Seconds from ``start`` to ``end`` (ISO 8601 instants with offsets)."""
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def due_in(rule: Rule, since: str, now: str) -> float:
    """Seconds left before the timer ``rule``'s threshold, counted from ``since`` (<= 0: reached)."""
    assert rule.seconds is not None
    return rule.seconds - seconds_between(since, now)


def timer_reason(rule: Rule) -> str:
    assert rule.seconds is not None
    return {
        RuleKind.CUSTOMER_WAITING: f"customer waiting {rule.seconds} s",
        RuleKind.SILENCE: f"silence {rule.seconds} s",
        RuleKind.HANDLE_TIME: f"handle time {rule.seconds} s",
    }[rule.kind]


# --- alerts -----------------------------------------------------------------------------------------


class AlertState(str, enum.Enum):
    OPEN = "open"
    ACKED = "acked"
    CLEARED = "cleared"


class ClearReason(str, enum.Enum):
    RESOLVED = "resolved"  # the condition ended (the agent answered the waiting customer)
    ENDED = "ended"  # the workitem ended
    RULE_DELETED = "rule_deleted"  # the rule was deleted or disabled


def alert_id(tenant_id: str, workitem_id: str, rule_id: str, trigger: str) -> str:
    """The alert's id, a function of what raised it: the same entry or timer, delivered twice, names the
    same alert, so it is raised once."""
    digest = hashlib.blake2b(f"{tenant_id}\0{workitem_id}\0{rule_id}\0{trigger}".encode(), digest_size=12).hexdigest()
    return f"al-{digest}"


@dataclass(frozen=True)
class Alert:
    tenant_id: str
    alert_id: str
    workitem_id: str
    agent_id: str
    rule_id: str
    kind: RuleKind
    severity: int
    raised_at: str
    reason: str
    state: AlertState = AlertState.OPEN
    acked_by: str | None = None
    acked_at: str | None = None
    cleared_reason: ClearReason | None = None
    cleared_at: str | None = None

    @property
    def active(self) -> bool:
        """Open or acked: the (workitem, rule) pair has its alert and raises no other."""
        return self.state is not AlertState.CLEARED

    def ack(self, user_id: str, at: str) -> Alert:
        """Acked by ``user_id``; only an open alert can be acked (the first ack wins)."""
        if self.state is AlertState.ACKED:
            raise Conflict(f"alert {self.alert_id} was already acked", ackedBy=self.acked_by)
        if self.state is AlertState.CLEARED:
            raise Conflict(f"alert {self.alert_id} was cleared")
        return replace(self, state=AlertState.ACKED, acked_by=user_id, acked_at=at)

    def clear(self, reason: ClearReason, at: str) -> Alert:
        if self.state is AlertState.CLEARED:
            return self
        return replace(self, state=AlertState.CLEARED, cleared_reason=reason, cleared_at=at)


def raise_alert(tenant_id: str, rule: Rule, workitem_id: str, agent_id: str, trigger: str, reason: str, at: str) -> Alert:
    """A new open alert of ``rule`` on the workitem, raised by ``trigger`` (an entry's seq, a timer's
    threshold)."""
    return Alert(
        tenant_id,
        alert_id(tenant_id, workitem_id, rule.rule_id, trigger),
        workitem_id,
        agent_id,
        rule.rule_id,
        rule.kind,
        rule.severity,
        at,
        reason,
    )


# --- the supervisor's queue -------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    """One workitem of a supervisor's attention queue and its active alerts."""

    workitem_id: str
    alerts: tuple[Alert, ...] = field(default_factory=tuple)

    @property
    def score(self) -> int:
        """The sum of the severities of the open alerts (acked ones no longer ask for anyone)."""
        return sum(a.severity for a in self.alerts if a.state is AlertState.OPEN)

    @property
    def oldest(self) -> str:
        return min(a.raised_at for a in self.alerts)

    def key(self) -> tuple[int, str, str]:
        """Sorts highest score first, then the oldest alert first, then by workitem id."""
        return (-self.score, self.oldest, self.workitem_id)


def queue(alerts: Iterable[Alert], agents: Iterable[str]) -> list[QueueItem]:
    """The active alerts of ``agents``' workitems grouped by workitem, highest score first, ties by the
    oldest ``raisedAt``, then by workitem id (a total order, so a cursor resumes exactly)."""
    mine = frozenset(agents)
    grouped: dict[str, list[Alert]] = {}
    for a in alerts:
        if a.active and a.agent_id in mine:
            grouped.setdefault(a.workitem_id, []).append(a)
    items = [QueueItem(w, tuple(sorted(al, key=lambda a: (a.raised_at, a.alert_id)))) for w, al in grouped.items()]
    return sorted(items, key=QueueItem.key)


def page_after(items: Sequence[QueueItem], after: tuple[int, str, str] | None, limit: int) -> tuple[list[QueueItem], bool]:
    """The ``limit`` items that sort after the key ``after`` (the last key of the previous page), and
    whether more follow."""
    rest = [i for i in items if after is None or i.key() > after]
    return rest[:limit], len(rest) > limit
