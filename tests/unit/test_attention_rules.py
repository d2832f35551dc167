"""Attention rules (chalicelib/domain/attention.py, phrases.py, sentiment.py): validation, matching,
runs, alert states and the supervisor's ranked queue."""

from __future__ import annotations

import pytest

from chalicelib.domain.attention import (
    MAX_RULES,
    Alert,
    AlertState,
    ClearReason,
    QueueItem,
    Rule,
    RuleKind,
    alert_id,
    can_add_rule,
    due_in,
    keyword_reason,
    negative_run,
    page_after,
    queue,
    raise_alert,
    waiting_since,
)
from chalicelib.domain.errors import Conflict, Invalid
from chalicelib.domain.identity import Role
from chalicelib.domain.phrases import Phrase, first_match, fold, words
from chalicelib.domain.sentiment import Sentiment, from_scores, truncate_utf8
from chalicelib.domain.timeline import EntryKind, TimelineEntry

pytestmark = pytest.mark.unit

T0 = "2026-12-07T10:00:00+00:00"


def keyword(*phrases: str, speakers: tuple[str, ...] = ("customer",), severity: int = 2) -> Rule:
    return Rule("r1", RuleKind.KEYWORD, True, severity, phrases=phrases, speakers=speakers)


def entry(seq: int, kind: EntryKind, text: str = "", at: str = T0) -> TimelineEntry:
    role = Role.CUSTOMER if kind is EntryKind.CUSTOMER_MESSAGE else Role.AGENT
    return TimelineEntry("wi-1", seq, kind, at, "u", role, text=text)


def said(text: str, who: EntryKind = EntryKind.CUSTOMER_MESSAGE) -> TimelineEntry:
    return entry(1, who, text)


# --- matching ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "REFUND",
        "Refund!",
        "refünd",
        "I want a refund.",
        "(refund)",
        "refund, now",
        "\uff32\uff25\uff26\uff35\uff2e\uff24",  # full-width compatibility forms
        "Refund\u0308",  # a combining mark after the word's last letter
        "«refund»",
        "refund\N{GRINNING FACE}",
        "refund_policy",  # "_" separates words like any punctuation
    ],
)
def test_a_phrase_matches_whole_words_whatever_case_accents_and_forms(text: str) -> None:
    assert keyword_reason(keyword("refund"), said(text)) == 'customer said "refund"'


@pytest.mark.parametrize("text", ["refunds", "prefund", "refunded", "re-fund", "re fund", ""])
def test_a_phrase_does_not_match_inside_or_across_words(text: str) -> None:
    assert keyword_reason(keyword("refund"), said(text)) is None


def test_accents_in_the_phrase_fold_too_and_decomposed_equals_composed() -> None:
    rule = keyword("résiliation")
    assert keyword_reason(rule, said("je veux une RESILIATION"))
    assert keyword_reason(rule, said("re\u0301siliation"))  # NFD in the text
    assert keyword_reason(keyword("re\u0301siliation"), said("résiliation"))  # NFD in the phrase


def test_multi_word_phrases_need_their_words_in_a_row() -> None:
    rule = keyword("speak to a manager")
    assert keyword_reason(rule, said("Can I SPEAK to a... manager?"))
    assert keyword_reason(rule, said("speak to a new manager")) is None
    assert keyword_reason(rule, said("manager speak to a")) is None


def test_the_reason_names_the_first_phrase_that_matched_as_written() -> None:
    rule = keyword("Cancel", "lawyer")
    assert keyword_reason(rule, said("my lawyer says cancel")) == 'customer said "Cancel"'


def test_special_case_folding_sharp_s_and_turkish_i() -> None:
    assert words("Straße") == words("STRASSE") == words("strasse") == ("strasse",)
    assert words("İADE") == words("IADE") == words("iade") == words("\u0131ade") == ("iade",)
    assert keyword_reason(keyword("iade"), said("İADE istiyorum"))
    assert words("ΣΊΣΥΦΟΣ") == words("σίσυφος")  # the final sigma folds like the others


def test_scripts_without_spaces_match_by_characters_in_a_row() -> None:
    assert words("我要退款") == ("我", "要", "退", "款")
    assert keyword_reason(keyword("退款"), said("我要退款"))
    assert keyword_reason(keyword("退款"), said("退款单"))  # documented: inside longer words too
    assert keyword_reason(keyword("退款"), said("退 款"))  # each character is a word: spaces between them change nothing
    assert keyword_reason(keyword("환불"), said("환불을 원해요"))
    assert keyword_reason(keyword("返金"), said("ﾍﾝｷﾝ")) is None
    assert words("ｶﾞ") == words("ガ")  # half-width katakana with its voicing mark


def test_marks_of_other_scripts_stay_in_their_words() -> None:
    assert words("हिंदी भाषा") == ("हिंदी", "भाषा")
    assert words("ที่นี่") == ("ที่", "นี่")
    assert words("が") != words("か")  # the voicing mark is not an accent


def test_separators_split_words_on_both_sides() -> None:
    assert words("e-mail customer's") == ("e", "mail", "customer", "s")
    assert keyword_reason(keyword("e-mail"), said("send an E-MAIL"))
    assert keyword_reason(keyword("e-mail"), said("send an email")) is None


def test_speakers_decide_whose_messages_count() -> None:
    assert keyword_reason(keyword("refund"), said("refund", EntryKind.AGENT_MESSAGE)) is None
    rule = keyword("refund", speakers=("agent",))
    assert keyword_reason(rule, said("refund", EntryKind.AGENT_MESSAGE)) == 'agent said "refund"'
    assert keyword_reason(rule, said("refund", EntryKind.COACH_MESSAGE)) is None


def test_first_match_and_fold() -> None:
    b, a = Phrase("b"), Phrase("a")
    assert first_match([b, a], "a b") is b  # the rule's order, not the text's
    assert first_match([a], "x b") is None
    assert fold("\uff21\uff22\uff23") == "abc"


# --- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": RuleKind.KEYWORD, "phrases": (), "speakers": ("customer",)}, "phrases"),
        ({"kind": RuleKind.KEYWORD, "phrases": ("x",) * 101, "speakers": ("customer",)}, "phrases"),
        ({"kind": RuleKind.KEYWORD, "phrases": ("x" * 101,), "speakers": ("customer",)}, "phrases.0"),
        ({"kind": RuleKind.KEYWORD, "phrases": ("ok", "!!!"), "speakers": ("customer",)}, "phrases.1"),
        ({"kind": RuleKind.KEYWORD, "phrases": ("Refund", "refünd"), "speakers": ("customer",)}, "phrases.1"),
        ({"kind": RuleKind.KEYWORD, "phrases": ("a",), "speakers": ()}, "speakers"),
        ({"kind": RuleKind.KEYWORD, "phrases": ("a",), "speakers": ("agent", "agent")}, "speakers"),
        ({"kind": RuleKind.KEYWORD, "phrases": ("a",), "speakers": ("supervisor",)}, "speakers"),
        ({"kind": RuleKind.KEYWORD, "phrases": ("a",), "speakers": ("agent",), "seconds": 10}, "seconds"),
        ({"kind": RuleKind.SENTIMENT, "negative_in_a_row": 0}, "negative_in_a_row"),
        ({"kind": RuleKind.SENTIMENT, "negative_in_a_row": 11}, "negative_in_a_row"),
        ({"kind": RuleKind.SENTIMENT, "negative_in_a_row": True}, "negative_in_a_row"),
        ({"kind": RuleKind.SENTIMENT}, "negative_in_a_row"),
        ({"kind": RuleKind.SENTIMENT, "negative_in_a_row": 2, "phrases": ("a",)}, "phrases"),
        ({"kind": RuleKind.CUSTOMER_WAITING, "seconds": 9}, "seconds"),
        ({"kind": RuleKind.CUSTOMER_WAITING, "seconds": 3601}, "seconds"),
        ({"kind": RuleKind.SILENCE, "seconds": 4}, "seconds"),
        ({"kind": RuleKind.SILENCE, "seconds": 601}, "seconds"),
        ({"kind": RuleKind.HANDLE_TIME, "seconds": 59}, "seconds"),
        ({"kind": RuleKind.HANDLE_TIME, "seconds": 86401}, "seconds"),
        ({"kind": RuleKind.HANDLE_TIME, "seconds": 60, "negative_in_a_row": 1}, "negative_in_a_row"),
        ({"kind": RuleKind.HANDLE_TIME, "seconds": 60, "severity": 0}, "severity"),
        ({"kind": RuleKind.HANDLE_TIME, "seconds": 60, "severity": 4}, "severity"),
        ({"kind": RuleKind.HANDLE_TIME, "seconds": 60, "severity": True}, "severity"),
    ],
)
def test_a_rule_out_of_its_kinds_bounds_is_refused_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(Invalid) as refused:
        Rule("r", **kwargs)
    assert refused.value.details["problems"][0]["field"] == field


@pytest.mark.parametrize(
    ("kind", "low", "high"),
    [(RuleKind.CUSTOMER_WAITING, 10, 3600), (RuleKind.SILENCE, 5, 600), (RuleKind.HANDLE_TIME, 60, 86400)],
)
def test_timer_bounds_are_inclusive(kind: RuleKind, low: int, high: int) -> None:
    assert Rule("r", kind, seconds=low).seconds == low
    assert Rule("r", kind, seconds=high, severity=3).seconds == high


def test_keyword_bounds_are_inclusive() -> None:
    assert len(keyword(*(f"w{i}" for i in range(100))).phrases) == 100
    assert keyword("x" * 100).phrases == ("x" * 100,)
    assert Rule("r", RuleKind.SENTIMENT, negative_in_a_row=10).negative_in_a_row == 10


def test_at_most_fifty_rules_but_a_replacement_is_allowed() -> None:
    ids = [f"r{i}" for i in range(MAX_RULES)]
    can_add_rule(ids[:-1], "new")
    can_add_rule(ids, "r3")
    with pytest.raises(Conflict):
        can_add_rule(ids, "new")


# --- runs and timers --------------------------------------------------------------------------------


N, P, U = Sentiment.NEGATIVE, Sentiment.POSITIVE, Sentiment.NEUTRAL


def test_negative_runs_count_the_last_customer_messages_only() -> None:
    rule = Rule("s", RuleKind.SENTIMENT, negative_in_a_row=3)
    assert negative_run(rule, [P, N, N, N]) == "3 negative customer messages in a row"
    assert negative_run(rule, [N, N]) is None
    assert negative_run(rule, [N, N, N, U]) is None
    assert negative_run(rule, [N, None, N, N]) is None
    assert negative_run(rule, [N, N, None]) is None  # unknown yet is not negative
    assert negative_run(Rule("s", RuleKind.SENTIMENT, negative_in_a_row=1), [N]) == "1 negative customer message in a row"


def test_the_customer_waits_from_their_first_unanswered_message() -> None:
    c, a = EntryKind.CUSTOMER_MESSAGE, EntryKind.AGENT_MESSAGE
    assert waiting_since([]) is None
    assert waiting_since([entry(1, c), entry(2, a)]) is None
    first = waiting_since([entry(1, c), entry(2, a), entry(3, c), entry(4, EntryKind.COACH_MESSAGE), entry(5, c)])
    assert first is not None and first.seq == 3


def test_due_in_counts_from_the_start() -> None:
    rule = Rule("w", RuleKind.CUSTOMER_WAITING, seconds=45)
    assert due_in(rule, T0, "2026-12-07T10:00:30+00:00") == 15
    assert due_in(rule, T0, "2026-12-07T10:00:46+00:00") == -1


# --- alerts -----------------------------------------------------------------------------------------


def alert(workitem: str = "wi-1", rule: str = "r1", severity: int = 1, at: str = T0, agent: str = "agent-1") -> Alert:
    r = Rule(rule, RuleKind.HANDLE_TIME, severity=severity, seconds=60)
    return raise_alert("t1", r, workitem, agent, "60", "handle time 60 s", at)


def test_an_alert_id_is_a_function_of_its_trigger() -> None:
    assert alert_id("t", "w", "r", "5") == alert_id("t", "w", "r", "5")
    assert len({alert_id("t", "w", "r", "5"), alert_id("t", "w", "r", "6"), alert_id("u", "w", "r", "5")}) == 3
    assert alert_id("t", "w", "r", "5").startswith("al-")


def test_the_first_ack_wins_and_cleared_alerts_take_no_ack() -> None:
    a = alert()
    acked = a.ack("sup-1", T0)
    assert (acked.state, acked.acked_by) == (AlertState.ACKED, "sup-1")
    with pytest.raises(Conflict):
        acked.ack("sup-2", T0)
    cleared = acked.clear(ClearReason.ENDED, T0)
    assert (cleared.state, cleared.cleared_reason, cleared.active) == (AlertState.CLEARED, ClearReason.ENDED, False)
    assert cleared.clear(ClearReason.RESOLVED, T0) is cleared
    with pytest.raises(Conflict):
        cleared.ack("sup-1", T0)


def test_the_queue_ranks_by_open_severity_then_oldest_alert() -> None:
    alerts = [
        alert("wi-a", "r1", 1, "2026-12-07T10:00:05+00:00"),
        alert("wi-b", "r1", 3, "2026-12-07T10:00:09+00:00"),
        alert("wi-c", "r1", 1, "2026-12-07T10:00:01+00:00"),
        alert("wi-c", "r2", 3, "2026-12-07T10:00:02+00:00").ack("sup", T0),  # acked: scores nothing
        alert("wi-d", "r1", 3, "2026-12-07T10:00:03+00:00").clear(ClearReason.ENDED, T0),  # cleared: gone
        alert("wi-e", "r1", 3, "2026-12-07T10:00:00+00:00", agent="not-mine"),
        alert("wi-f", "r1", 2, "2026-12-07T10:00:07+00:00"),
        alert("wi-f", "r2", 1, "2026-12-07T10:00:08+00:00"),
    ]
    ranked = queue(alerts, ["agent-1"])
    assert [(i.workitem_id, i.score) for i in ranked] == [("wi-f", 3), ("wi-b", 3), ("wi-c", 1), ("wi-a", 1)]
    assert len(ranked[2].alerts) == 2  # the acked alert is listed, it only scores nothing


def test_pages_resume_after_the_last_key() -> None:
    at = "2026-12-07T10:00:{:02d}+00:00"
    items = [QueueItem(f"wi-{i}", (alert(f"wi-{i}", severity=1 + i % 3, at=at.format(i)),)) for i in range(7)]
    ranked = sorted(items, key=QueueItem.key)
    seen: list[str] = []
    after = None
    while True:
        page, more = page_after(ranked, after, 3)
        seen += [i.workitem_id for i in page]
        if not more:
            break
        after = page[-1].key()
    assert seen == [i.workitem_id for i in ranked] and len(set(seen)) == 7


# --- sentiment --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "label"),
    [
        ({"neg": 0.451, "neu": 0.549, "pos": 0.0, "compound": -0.6249}, Sentiment.NEGATIVE),
        ({"neg": 0.0, "neu": 0.403, "pos": 0.597, "compound": 0.8347}, Sentiment.POSITIVE),
        ({"neg": 0.294, "neu": 0.515, "pos": 0.191, "compound": -0.34}, Sentiment.MIXED),
        ({"neg": 0.372, "neu": 0.461, "pos": 0.168, "compound": -0.6249}, Sentiment.NEGATIVE),
        ({"neg": 0.0, "neu": 1.0, "pos": 0.0, "compound": 0.0}, Sentiment.NEUTRAL),
        ({"neg": 0.0, "neu": 1.0, "pos": 0.0, "compound": 0.04}, Sentiment.NEUTRAL),
    ],
)
def test_lexicon_scores_map_to_the_four_labels(scores: dict, label: Sentiment) -> None:
    assert from_scores(scores) is label


def test_labels_from_the_services_and_truncation_on_a_character_boundary() -> None:
    assert Sentiment.from_label("NEGATIVE") is Sentiment.NEGATIVE
    assert Sentiment.from_label("ANGRY") is None
    text = "é" * 3000  # 6000 bytes
    cut = truncate_utf8(text)
    assert len(cut.encode()) == 4998 and cut == "é" * 2499
    assert truncate_utf8("ok") == "ok"
    assert truncate_utf8("a\ud800b") == "a?b"
