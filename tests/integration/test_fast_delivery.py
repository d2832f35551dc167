"""Fast delivery (docs/product.md W15) through the real Lambda entry points, on in-memory stores and moto:
``?delivery=fast`` on ``$connect``, timeline entries posted by the handler that committed them, the
stream's copy as the backstop, and a handler that dies after its commit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.entrypoints import ws
from tests.support.ordering import OrderedTimeline
from tests.support.world import Client, World

# Tier: from the world fixture's backend (service on memory, integration on moto; tests/conftest.py).


@pytest.fixture
def w(world: World) -> World:
    world.team()
    world.assign("wi-1")
    return world


def _stored(w: World, user: str) -> list[tuple[str, bool]]:
    recipient = w.services.directory.directory.recipient("t1", f"U#{user}")
    assert recipient is not None
    return [(c.connection_id, c.fast) for c in recipient.connections]


def test_w15_1_the_delivery_mode_is_recorded_on_the_connection(w: World) -> None:
    fast = w.connect("agent-1", "agent", delivery="fast")
    ordered = w.connect("agent-1", "agent", delivery="ordered")
    plain = w.connect("agent-1", "agent")
    assert sorted(_stored(w, "agent-1")) == sorted(
        [(fast.connection_id, True), (ordered.connection_id, False), (plain.connection_id, False)]
    )
    fast.disconnect()  # $disconnect knows no mode: the fast connection goes all the same
    assert sorted(_stored(w, "agent-1")) == sorted([(ordered.connection_id, False), (plain.connection_id, False)])


@pytest.mark.parametrize("mode", ["slow", "FAST", "", "fast "])
def test_w15_1_an_unknown_delivery_mode_is_refused_and_nothing_is_stored(w: World, mode: str) -> None:
    status, client = w.connect_token(w.token("agent-1", "agent"), delivery=mode)
    assert (status, client) == (400, None)
    assert w.services.directory.directory.recipient("t1", "U#agent-1") is None or _stored(w, "agent-1") == []


class Killed(BaseException):
    """The handler's process dies (a Lambda crash or timeout): no reply, no clean-up, nothing after it."""


def _coach(w: World) -> tuple[Client, Client, Client]:
    """A monitoring supervisor, the agent on a fast connection and the agent on an ordered one."""
    sup = w.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    return sup, w.connect("agent-1", "agent", delivery="fast"), w.connect("agent-1", "agent")


def _seqs(frames: list[dict[str, Any]]) -> list[int]:
    return [f["data"]["entry"]["seq"] for f in frames]


def test_w15_2_the_handler_posts_timeline_entries_to_fast_connections_at_once(w: World) -> None:
    sup, fast, ordered = _coach(w)
    with w.batched():  # the stream is held: only the handler's own posts arrive
        entry = sup.ok("coach.send", workitemId="wi-1", text="Offer the refund")["entry"]
        assert _seqs(fast.events("coach.message")) == [entry["seq"]]
        assert fast.events("coach.message")[0]["data"]["entry"]["text"] == "Offer the refund"
        assert ordered.events("coach.message") == []  # ordered connections wait for the stream
    # The stream's copy reaches both: the ordered connection once, the fast one a second time (the backstop).
    assert _seqs(ordered.events("coach.message")) == [entry["seq"]]
    assert _seqs(fast.events("coach.message")) == [entry["seq"]] * 2


def test_w15_2_only_timeline_entries_take_the_fast_path(w: World) -> None:
    sup = w.connect("sup-1", "supervisor", delivery="fast")
    sup.ok("agent.watch", agentId="agent-1")
    agent = w.connect("agent-1", "agent")
    with w.batched():
        agent.ok("presence.set", state="not_ready")  # presence is not a workitem change: pushed as before
        other = w.connect("sup-2", "supervisor")
        other.ok("monitor.start", workitemId="wi-1")
        joined = [f["event"] for f in sup.frames() if f["type"] == "event"]
    assert "workitem.updated" not in joined  # a watcher's workitem.updated waits for the stream
    assert "workitem.updated" in [f["event"] for f in sup.events()]


def test_w15_2_the_sender_and_customers_get_no_fast_copy(w: World) -> None:
    sup, fast, _ = _coach(w)
    fast_sup = w.connect("sup-1", "supervisor", delivery="fast")
    customer = w.connect("cust-1", "customer", wid="wi-1")
    with w.batched():
        fast_sup.ok("coach.send", workitemId="wi-1", text="Offer the refund")
        assert fast_sup.events("coach.message") == []  # its own message comes back in the ack only
        assert len(fast.events("coach.message")) == 1
    assert customer.events() == []  # coaching never reaches the customer, on any path
    assert len(sup.events("coach.message")) == 1  # the sender's other (ordered) connection, from the stream


@pytest.mark.moto  # DynamoDB requests are counted on moto
def test_w15_3_the_recipients_come_with_the_workitems_read_and_the_ack_waits_for_no_other_request(world: World) -> None:
    from tests.support.ddbcount import count_dynamodb

    world.team()
    world.assign("wi-1")
    sup = world.connect("sup-1", "supervisor", delivery="fast")
    sup.ok("monitor.start", workitemId="wi-1")
    agent = world.connect("agent-1", "agent", delivery="fast")
    with count_dynamodb() as log, world.batched():
        sup.ok("coach.send", workitemId="wi-1", text="thanks")
        handler = list(log.calls)
    # The handler: one read (the workitem and its recipients, one BatchGetItem across both tables), then
    # its commit, and nothing between them; then the stream reads the recipients itself, after the commit.
    assert handler == ["BatchGetItem", "TransactWriteItems"]
    # The stream's consumer: its own read of the recipients first (then the analytics fact's write).
    assert log.calls[:3] == ["BatchGetItem", "TransactWriteItems", "BatchGetItem"]
    assert len(agent.events("coach.message")) == 2  # the handler's post, then the stream's copy


@pytest.mark.moto  # DynamoDB requests are counted on moto
def test_w15_3_a_retry_after_a_lost_race_reads_the_workitem_alone(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.services.ports import StaleWorkitem
    from tests.support.ddbcount import count_dynamodb

    world.team()
    world.assign("wi-1")
    sup = world.connect("sup-1", "supervisor")
    sup.ok("monitor.start", workitemId="wi-1")
    agent = world.connect("agent-1", "agent", delivery="fast")
    store = world.services.coaching.store
    commit, lost = store.commit, list[bool]()

    def loses_once(*args: Any, **kwargs: Any) -> None:
        if not lost:
            lost.append(True)
            raise StaleWorkitem("wi-1")
        commit(*args, **kwargs)

    monkeypatch.setattr(store, "commit", loses_once)
    with count_dynamodb() as log, world.batched():
        sup.ok("coach.send", workitemId="wi-1", text="thanks")
        handler = list(log.calls)
        assert len(agent.events("coach.message")) == 1  # posted from what the first attempt read
    # The first attempt reads the workitem with its recipients; the retry reads the workitem alone.
    assert handler == ["BatchGetItem", "GetItem", "TransactWriteItems"]


def test_w15_3_a_function_instance_that_has_not_seen_the_workitem_reads_its_recipients_beside_the_commit(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold instance does not know whom to read with the workitem: it reads them in parallel with its
    commit (the commit waits here until that read has started), and posts to the fast connections all the
    same."""
    import threading

    from chalicelib.services.commits import ExpectedRecipients

    sup, fast, _ = _coach(w)
    w.services.coaching.commits._expected = ExpectedRecipients()  # a new function instance
    lookup = w.services.fanout._recipients
    read, real_read = threading.Event(), lookup.recipients
    store = w.services.coaching.store
    commit = store.commit

    def reading(*args: Any, **kwargs: Any) -> Any:
        read.set()
        return real_read(*args, **kwargs)

    def commit_while_reading(*args: Any, **kwargs: Any) -> None:
        assert read.wait(timeout=30), "the recipients' read did not start before the commit ended"
        commit(*args, **kwargs)

    monkeypatch.setattr(lookup, "recipients", reading)
    monkeypatch.setattr(store, "commit", commit_while_reading)
    with w.batched():
        entry = sup.ok("coach.send", workitemId="wi-1", text="Offer the refund")["entry"]
        assert _seqs(fast.events("coach.message")) == [entry["seq"]]


def test_w15_3_a_read_beside_the_commit_that_stalls_holds_up_no_ack(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store stalls on the read beside the commit (a cold instance): the action is answered once its
    commit is done and the wait for that read is over, without a fast post; the stream posts the entry."""
    import threading

    from chalicelib.services import commits
    from chalicelib.services.commits import ExpectedRecipients

    sup, fast, ordered = _coach(w)
    w.services.coaching.commits._expected = ExpectedRecipients()
    lookup = w.services.fanout._recipients
    real, stalled = lookup.recipients, threading.Event()

    def stalls_while_the_action_runs(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name.startswith("beside-commit"):
            stalled.wait()  # released below, only after the action has been answered
        return real(*args, **kwargs)

    monkeypatch.setattr(lookup, "recipients", stalls_while_the_action_runs)
    monkeypatch.setattr(commits, "BESIDE_COMMIT_WAIT_SECONDS", 0.05)
    try:
        with w.batched():
            entry = sup.ok("coach.send", workitemId="wi-1", text="Offer the refund")["entry"]
            assert fast.events("coach.message") == []
    finally:
        stalled.set()
    assert _seqs(fast.events("coach.message")) == _seqs(ordered.events("coach.message")) == [entry["seq"]]


def test_w15_2_a_connection_opened_while_the_handler_commits_gets_the_entry_from_the_stream(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handler's read of the recipients may come before a connection that opens just before its commit;
    the ordered copy is pushed to the recipients the stream reads after the commit, so such a connection
    (ordered, or fast) still gets the entry, once for an ordered one."""
    sup, _, _ = _coach(w)
    store = w.services.coaching.store
    commit = store.commit
    late: list[Client] = []

    def connect_then_commit(*args: Any, **kwargs: Any) -> None:
        late.extend([w.connect("agent-1", "agent"), w.connect("agent-1", "agent", delivery="fast")])
        commit(*args, **kwargs)

    with w.batched():
        with monkeypatch.context() as m:
            m.setattr(store, "commit", connect_then_commit)
            entry = sup.ok("coach.send", workitemId="wi-1", text="Offer the refund")["entry"]
        assert [c.events("coach.message") for c in late] == [[], []]  # the handler read before they opened
    assert [_seqs(c.events("coach.message")) for c in late] == [[entry["seq"]], [entry["seq"]]]


@pytest.mark.parametrize("fault", ["killed after the commit", "commit answer lost"])
def test_w15_4_no_committed_entry_is_ever_missing_for_a_fast_connection(
    w: World, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """Handlers die or fail between their commit and their posts; with the stream held behind them, the
    fast connection gets later entries first. After client-side ordering it has every entry of the
    timeline, in order, exactly once."""
    sup, fast, ordered = _coach(w)
    view = OrderedTimeline(fast, "wi-1")
    view.offer(fast.ok("timeline.get", workitemId="wi-1", after=0)["entries"])
    store = w.services.coaching.store
    commit = store.commit

    def dies_after_commit(*args: Any, **kwargs: Any) -> None:
        commit(*args, **kwargs)
        if fault == "killed after the commit":
            raise Killed()
        raise ConnectionError("the store's answer to a commit that succeeded was lost")

    with w.batched():  # the stream runs late: everything below is committed before it pushes
        sup.ok("coach.send", workitemId="wi-1", text="one")
        with monkeypatch.context() as m:
            m.setattr(store, "commit", dies_after_commit)
            if fault == "killed after the commit":
                with pytest.raises(Killed):
                    ws.message(
                        sup.event(
                            "$default",
                            json.dumps({"action": "coach.send", "requestId": "r", "workitemId": "wi-1", "text": "two"}),
                        )
                    )
            else:
                assert sup.request("coach.send", workitemId="wi-1", text="two")["type"] == "error"
        sup.ok("coach.send", workitemId="wi-1", text="three")
        view.receive()
        assert view.missing  # "three" arrived, "two" did not: a gap
        assert [e["text"] for e in view.held.values()] == ["three"]
    # Either the stream's copy closes the gap (the backstop)...
    view.receive()
    assert not view.missing
    # ...or, had it not, the client's timeline.get after its wait: nothing is left to fetch.
    view.fill_gap()
    timeline = fast.ok("timeline.get", workitemId="wi-1", after=0)["entries"]
    assert [e["seq"] for e in view.delivered] == [e["seq"] for e in timeline]
    assert [e["text"] for e in view.delivered if e["kind"] == "coach_message"] == ["one", "two", "three"]
    assert view.received > len(view.delivered)  # copies arrived, and each was delivered once
    # The ordered connection got each message once, in order, unchanged by the faults.
    assert [f["data"]["entry"]["text"] for f in ordered.events("coach.message")] == ["one", "two", "three"]


def test_w15_4_a_gap_the_stream_has_not_closed_yet_is_filled_with_timeline_get(w: World) -> None:
    sup, fast, _ = _coach(w)
    view = OrderedTimeline(fast, "wi-1")
    view.offer(fast.ok("timeline.get", workitemId="wi-1", after=0)["entries"])
    with w.batched():
        post_fast = w.services.fanout.post_fast
        w.services.fanout.post_fast = lambda *a, **k: None  # type: ignore[method-assign]  # a post that never left
        sup.ok("coach.send", workitemId="wi-1", text="one")
        w.services.fanout.post_fast = post_fast  # type: ignore[method-assign]
        sup.ok("coach.send", workitemId="wi-1", text="two")
        view.receive()
        assert view.missing
        view.fill_gap()  # the stream is late: the client asks
        assert not view.missing
        assert [e["text"] for e in view.delivered if e["kind"] == "coach_message"] == ["one", "two"]
    view.receive()  # the stream's copies come later and are dropped
    assert [e["text"] for e in view.delivered if e["kind"] == "coach_message"] == ["one", "two"]


def test_w15_3_a_failed_read_beside_the_commit_commits_all_the_same_and_the_stream_reads(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.services.commits import ExpectedRecipients

    sup, fast, ordered = _coach(w)
    w.services.coaching.commits._expected = ExpectedRecipients()  # a new function instance: it reads beside the commit
    lookup = w.services.fanout._recipients
    real = lookup.recipients
    calls: list[str] = []

    def once_unanswered(*args: Any, **kwargs: Any) -> Any:
        calls.append("read")
        if len(calls) == 1:
            raise ConnectionError("the store did not answer")
        return real(*args, **kwargs)

    monkeypatch.setattr(lookup, "recipients", once_unanswered)
    with w.batched():
        entry = sup.ok("coach.send", workitemId="wi-1", text="Offer the refund")["entry"]
        assert fast.events("coach.message") == []  # nobody read: no fast post
    assert calls == ["read", "read"]  # the handler's read failed; the stream read them itself
    assert _seqs(fast.events("coach.message")) == _seqs(ordered.events("coach.message")) == [entry["seq"]]
