"""The stack under faults: a frozen store, a killed store, a client that never reads, clients that
vanish, SIGTERM under load. Each asserts the contract: exactly one reply per frame, no acked message
lost and ``seq`` without gaps, other recipients' pushes on time, a clean and quick exit."""

from __future__ import annotations

import os
import signal
import socket
import struct
import time
from typing import Any

import pytest

from tests.e2e.wsclient import WsClient
from tests.faults.support import (
    ArrivalClock,
    FaultStack,
    Traffic,
    check_delivery,
    open_chat,
    p95,
    push_latencies,
    raw_websocket,
    record,
    replies,
    wait_replies,
)

pytestmark = pytest.mark.faults

STORE_FREE_LIMIT = 1.0  # ping and /health answer within this while the store is frozen
FREEZE_CEILING = 60.0  # a frozen store that /health has not reported by then is a failure, whatever the load
PUSH_P95_LIMIT = 1.0  # other recipients' push latency while one client does not read


def _assert_delivery(result: dict[str, Any]) -> None:
    assert result["missing"] == [], f"frames without a reply: {result['missing']}"
    assert result["doubled"] == [], f"frames with two replies: {result['doubled']}"
    assert result["acked_lost"] == [], f"acked but not on the timeline: {result['acked_lost']}"
    assert result["seq_contiguous"], "seq has a gap"
    assert set(result["errors"]) <= {"unavailable"}, f"a stall reported as something else: {result['errors']}"


def test_a_frozen_store_gets_every_frame_answered_and_store_free_calls_stay_fast(stack: FaultStack) -> None:
    chat = open_chat(stack)
    # The agent on a fast connection too (W15): the handlers that commit post to it, the stream as well.
    fast = WsClient.connect(f"{stack.ws_url}?delivery=fast", stack.token("agent-1", "agent"), timeout=20)
    try:
        with Traffic(chat) as traffic:
            time.sleep(2)
            stack.freeze_store()
            frozen_at = time.monotonic()
            try:
                time.sleep(1.5)
                pings = [chat.agent.request("ping", timeout=5) for _ in range(3)]
                ping_seconds = []
                for _ in range(3):
                    started = time.monotonic()
                    assert chat.sup2.request("ping", timeout=STORE_FREE_LIMIT)["type"] == "ack"
                    ping_seconds.append(time.monotonic() - started)
                health_status, health_body, health_seconds = stack.health()
                # The probe notices: the store stays frozen until /health says so (FREEZE_CEILING only
                # ends a run whose probe never notices), and for 8 s at least.
                while health_status == 200 and time.monotonic() - frozen_at < FREEZE_CEILING:
                    time.sleep(0.2)
                    health_status, health_body, seconds = stack.health()
                    health_seconds = max(health_seconds, seconds)
                health_detect = time.monotonic() - frozen_at
                connect_status = _connect_status(stack)
                time.sleep(max(0.0, 8 - (time.monotonic() - frozen_at)))
            finally:
                stack.thaw_store()
            thawed_at = time.monotonic()
            # The frames queued during the freeze are answered first (a backlog that depends on the
            # machine's load): wait for that, then time a new message on its own.
            wait_replies(chat.customer, list(traffic.sent), timeout=FREEZE_CEILING)
            drained = time.monotonic() - thawed_at
            recovery = _recovery_seconds(chat, time.monotonic())
            time.sleep(2)
        result = check_delivery(chat, traffic.sent, timeout=40)
        fast_missing, fast_conflicts = _fast_delivery(fast, chat.customer, traffic.sent)
    finally:
        fast.close()
        chat.close()

    record(
        "store frozen 8 s",
        frames=result["frames"],
        replies_missing=len(result["missing"]),
        acked_lost=len(result["acked_lost"]),
        unavailable=result["errors"].get("unavailable", 0),
        ping_max_s=round(max(ping_seconds), 3),
        health_max_s=round(health_seconds, 3),
        health_503_after_s=round(health_detect, 2),
        backlog_answered_s=round(drained, 2),
        recovery_s=round(recovery, 2),
        fast_connection_missing=len(fast_missing),
    )
    _assert_delivery(result)
    assert fast_missing == [], f"acked but never on the fast connection: {fast_missing}"
    assert fast_conflicts == [], f"copies of one seq that are not the same entry: {fast_conflicts}"
    assert all(p["type"] == "ack" for p in pings)
    assert max(ping_seconds) < STORE_FREE_LIMIT and health_seconds < STORE_FREE_LIMIT
    assert (health_status, health_body["status"]) == (503, "unavailable"), health_body
    assert connect_status in (200, 503), f"a connection opened during the freeze got {connect_status}"
    assert stack.health()[0] == 200  # healthy again
    # Once the backlog is answered, a new message is acked within one handler's time budget.
    assert recovery < 20


def _fast_delivery(fast: Any, customer: Any, sent: list[Any]) -> tuple[list[str], list[int]]:
    """Wait until every acked message has reached the fast connection (a ceiling, not a target: the
    stream's copy is the backstop); then the acked messages that never did, and the ``seq`` numbers
    whose copies disagree (a client de-duplicates by ``seq``, so copies must be the same entry)."""
    got = replies(customer)
    acked = {s.text for s in sent if got.get(s.request_id) and got[s.request_id][0]["type"] == "ack"}
    deadline = time.monotonic() + 30

    def received() -> list[tuple[int, str]]:
        return [(f["data"]["entry"]["seq"], f["data"]["entry"]["text"]) for f in fast.events("message.received")]

    while acked - {text for _, text in received()} and time.monotonic() < deadline:
        time.sleep(0.1)
    copies: dict[int, set[str]] = {}
    for seq, text in received():
        copies.setdefault(seq, set()).add(text)
    return sorted(acked - {text for _, text in received()}), sorted(seq for seq, texts in copies.items() if len(texts) > 1)


def _connect_status(stack: FaultStack) -> int:
    from tests.e2e.wsclient import WsClient, WsRefused

    try:
        client = WsClient.connect(stack.ws_url, stack.token("agent-2", "agent"), timeout=20)
    except WsRefused as refused:
        return refused.status
    client.close()
    return 200


def _recovery_seconds(chat: Any, since: float) -> float:
    """Seconds from the thaw until a new message is acknowledged again."""
    while time.monotonic() - since < 30:
        reply = chat.agent.request("message.send", workitemId=chat.workitem_id, text="are you there?", timeout=20)
        if reply["type"] == "ack":
            return time.monotonic() - since
        time.sleep(0.2)
    return float("inf")


def test_a_client_that_never_reads_stalls_nobody_and_is_closed(stack: FaultStack) -> None:
    chat = open_chat(stack)
    slow = raw_websocket(stack, stack.token("sup-1", "supervisor"))
    mark = len(stack.output)
    clocks = {
        name: ArrivalClock(client)
        for name, client in (("agent", chat.agent), ("sup-2", chat.sup2), ("sup-1 (reading)", chat.sup1))
    }
    try:
        with Traffic(chat, rate=8, size=6000) as traffic:
            time.sleep(14)
        result = check_delivery(chat, traffic.sent, timeout=30)
        arrivals = {name: clock.stop() for name, clock in clocks.items()}
        closed = _closed_by_server(slow)
    finally:
        slow.close()
        chat.close()
    latencies = {name: push_latencies(chat.agent, traffic.sent, at) for name, at in arrivals.items()}
    evicted = [line for line in stack.log_since(mark) if "with 1008" in line]
    everyone = [v for values in latencies.values() for v in values]

    record(
        "client that never reads",
        frames=result["frames"],
        replies_missing=len(result["missing"]),
        acked_lost=len(result["acked_lost"]),
        others_push_p95_s=round(p95(everyone), 3),
        others_push_max_s=round(max(everyone), 3),
        closed_1008=bool(evicted),
    )
    _assert_delivery(result)
    assert result["errors"] == {}
    for name, values in latencies.items():
        assert len(values) == result["acked"], f"{name} missed pushes"
        assert p95(values) < PUSH_P95_LIMIT, f"{name}: push p95 {p95(values):.2f}s"
    assert evicted, "the gateway closes a client that does not read (1008)"
    assert closed


def _closed_by_server(sock: socket.socket) -> bool:
    """Read what the server sent until it closed: a close frame (1008) or a reset."""
    sock.settimeout(5)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True
            data += chunk
    except ConnectionResetError:
        return True
    except TimeoutError:
        return struct.pack("!H", 1008) in data


def test_clients_that_vanish_mid_traffic_disturb_nobody(stack: FaultStack) -> None:
    chat = open_chat(stack)
    mark = len(stack.output)
    clock = ArrivalClock(chat.sup2)
    try:
        with Traffic(chat) as traffic:
            for round_ in range(6):
                sockets = [raw_websocket(stack, stack.token("sup-1", "supervisor"), rcvbuf=65536) for _ in range(3)]
                time.sleep(0.5)
                for sock in sockets:  # an RST, no close frame: a laptop lid, a dropped network
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.close()
                assert chat.agent.request("ping")["type"] == "ack", round_
            time.sleep(1)
        result = check_delivery(chat, traffic.sent)
        latencies = push_latencies(chat.sup2, traffic.sent, clock.stop())
    finally:
        chat.close()
    logged = stack.log_since(mark)
    record(
        "abrupt disconnects (18 sockets reset)",
        frames=result["frames"],
        replies_missing=len(result["missing"]),
        acked_lost=len(result["acked_lost"]),
        others_push_p95_s=round(p95(latencies), 3),
    )
    _assert_delivery(result)
    assert result["errors"] == {}
    assert p95(latencies) < PUSH_P95_LIMIT
    assert not [line for line in logged if "Traceback" in line]
    assert stack.health()[0] == 200


def test_a_killed_store_is_reported_once_and_the_stack_exits_non_zero(fresh_stack: FaultStack) -> None:
    stack = fresh_stack
    chat = open_chat(stack)
    mark = len(stack.output)
    try:
        with Traffic(chat) as traffic:
            time.sleep(1.5)
            os.kill(stack.store_pid, signal.SIGKILL)
            killed_at = time.monotonic()
            status, body = 0, None
            # Until /health reports the death or the stack has gone (then the 503 was missed: a failure).
            while status != 503 and stack.process.poll() is None:
                status, body = _health_while_up(stack)
                time.sleep(0.05)
        stack.process.wait(30)
        exit_seconds = time.monotonic() - killed_at
        got = replies(chat.customer)
    finally:
        chat.close()
    logged = stack.log_since(mark)
    died = [line for line in logged if "exited with code" in line and "cannot serve" in line]
    before_kill = [s for s in traffic.sent if s.at < killed_at - 0.5]
    answered_after = [s for s in traffic.sent if s.at >= killed_at and s.request_id in got]
    codes = {frame["error"]["code"] for s in answered_after for frame in got[s.request_id] if frame["type"] == "error"}
    record(
        "store killed",
        exit_code=stack.process.returncode,
        exit_s=round(exit_seconds, 2),
        health=f"{status} {body and body.get('reason')}",
        replies_missing_before_kill=sum(1 for s in before_kill if s.request_id not in got),
        answered_after_kill=len(answered_after),
        tracebacks=sum("Traceback" in line for line in logged),
    )
    assert status == 503 and body is not None and "exited with code" in body["reason"]
    assert len(died) == 1, died
    assert stack.process.returncode == 3
    assert exit_seconds < 8
    assert all(s.request_id in got for s in before_kill)
    assert all(len(got[s.request_id]) == 1 for s in traffic.sent if s.request_id in got)
    assert codes <= {"unavailable"}, codes
    assert not [line for line in logged if "Traceback" in line]


def test_sigterm_under_load_with_a_client_that_never_reads_exits_within_5s(fresh_stack: FaultStack) -> None:
    stack = fresh_stack
    chat = open_chat(stack)
    slow = raw_websocket(stack, stack.token("sup-1", "supervisor"))
    try:
        with Traffic(chat, rate=10, size=6000) as traffic:
            time.sleep(3)
            stack.freeze_store()  # handlers are stuck on the store too
            time.sleep(0.5)
            started = time.monotonic()
            stack.process.send_signal(signal.SIGTERM)
            try:
                stack.process.wait(10)
            finally:
                exit_seconds = time.monotonic() - started
        got = replies(chat.customer)
    finally:
        slow.close()
        chat.close()
    deadline = time.monotonic() + 30  # a ceiling for a store that is never reaped, not a target
    while _alive(stack.store_pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # SIGKILL and reaping take a moment, longer on a loaded machine
    store_gone = not _alive(stack.store_pid)
    record(
        "SIGTERM under load (store frozen, one client not reading)",
        exit_code=stack.process.returncode,
        exit_s=round(exit_seconds, 2),
        store_child_gone=store_gone,
        doubled=sum(1 for frames in got.values() if len(frames) > 1),
        frames=len(traffic.sent),
    )
    assert exit_seconds < 5
    assert store_gone
    assert all(len(frames) == 1 for frames in got.values())
    assert stack.process.returncode == 0


def _health_while_up(stack: FaultStack) -> tuple[int, Any]:
    """``/health``'s status and body, or (0, None) when the stack no longer answers (it has exited)."""
    try:
        status, body, _ = stack.health()
    except OSError:
        return 0, None
    return status, body


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone for good; only its parent may reap it
        return stat.read().split(") ", 1)[1][0] != "Z"
