"""4. Load: 200 concurrent WebSocket clients, then loss / duplication / order / silent-monitoring checks.

Setup: the local stack in a child process; 50 chat workitems, each with its agent, 2 supervisors
of the agent's team monitoring it and its customer - 200 live connections on one event loop.

Traffic: every agent and supervisor sends 50 ``coach.send`` (each waits for its ack, then pauses
about ``PAUSE`` s, so the 150 senders offer ~75 messages/s and slow down if the stack does);
meanwhile every customer and every agent sends a few conversation messages (``message.send``), so
customers have legitimate frames to receive. Coaching texts carry a marker customers must never see.

Truth: when the traffic has stopped and no frame has arrived for a while, the full timeline of every
workitem is read back with ``timeline.get`` (staff view, and the customer's own view). Then, per
receiver per workitem, over the message entries (coach, customer and agent messages):

* ``lost``         - entries the receiver should have been pushed (every message entry it did not
                     author itself; customers: agent messages) that never arrived
* ``duplicated``   - entry frames received more than once
* ``out_of_order`` - entry frames that arrived after a frame with a higher ``seq`` of that workitem
* ``leaked_to_customers`` - frames at customers that are coaching events, non-customer entry kinds,
                     or contain the coaching marker

``sent`` is the number of coach.send acks, ``delivered`` the number of coach.message frames received.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import defaultdict
from typing import Any

from bench import stack as stack_module
from bench.common import cli, emit, summary_ms
from bench.wsclient import Conn, close_all, open_all

WORKITEMS = 50
SUPERVISORS = 2
COACH_PER_SENDER = 50
CONVERSATION_PER_PERSON = 5
PAUSE = 2.0  # mean seconds between two coach.send of one sender (after the ack)
SEND_DEADLINE = 300.0  # stop sending after this many seconds whatever happens
QUIET = 2.0  # the traffic is over when no frame arrived for this long ...
QUIET_MAX = 60.0  # ... or after this long
MARKER = "COACH-ONLY"
MESSAGE_KINDS = frozenset({"coach_message", "customer_message", "agent_message"})
CUSTOMER_KINDS = frozenset({"customer_message", "agent_message"})
COACHING_EVENTS = frozenset(
    {"coach.message", "coach.reaction", "coach.forwarded", "coaching.joined", "coaching.left", "coaching.ended"}
)


def people(i: int) -> tuple[str, list[str], str, str]:
    return f"la{i}", [f"ls{i}-{j}" for j in range(SUPERVISORS)], f"cust-lw{i}", f"lw{i}"


class Stats:
    def __init__(self) -> None:
        self.acked = 0
        self.refused: list[str] = []
        self.unanswered = 0
        self.conversation = 0
        self.ack_latency: list[float] = []
        self.acked_ids: dict[str, str] = {}  # messageId -> workitem


async def coach_sender(conn: Conn, count: int, rng: random.Random, stats: Stats, deadline: float) -> None:
    await asyncio.sleep(rng.uniform(0, PAUSE))
    for n in range(count):
        if time.perf_counter() > deadline:
            return
        try:
            sent_at, replied_at, frame = await conn.request(
                "coach.send", timeout=60, workitemId=conn.workitem, text=f"{MARKER} {conn.name} #{n}"
            )
        except (TimeoutError, ConnectionError):
            stats.unanswered += 1
            continue
        if frame.get("type") == "ack":
            stats.acked += 1
            stats.ack_latency.append(replied_at - sent_at)
            stats.acked_ids[frame["data"]["entry"]["messageId"]] = str(conn.workitem)
        else:
            stats.refused.append(json.dumps(frame.get("error"))[:200])
        await asyncio.sleep(rng.uniform(0.5, 1.5) * PAUSE)


async def talker(conn: Conn, count: int, spread: float, rng: random.Random, stats: Stats, deadline: float) -> None:
    for n in range(count):
        await asyncio.sleep(rng.uniform(0.5, 1.5) * spread)
        if time.perf_counter() > deadline:
            return
        try:
            frame = (
                await conn.request("message.send", timeout=60, workitemId=conn.workitem, text=f"conversation {conn.name} #{n}")
            )[2]
        except (TimeoutError, ConnectionError):
            stats.unanswered += 1
            continue
        if frame.get("type") == "ack":
            stats.conversation += 1
        else:
            stats.refused.append(json.dumps(frame.get("error"))[:200])


async def quiesce(conns: list[Conn]) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < QUIET_MAX:
        last = max((c.frames[-1][0] for c in conns if c.frames), default=0.0)
        if time.perf_counter() - last >= QUIET:
            break
        await asyncio.sleep(0.25)
    return time.perf_counter() - started


async def read_timeline(conn: Conn, workitem: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await conn.ok("timeline.get", timeout=60, workitemId=workitem, after=after, limit=200)
        entries.extend(page["entries"])
        if not page.get("hasMore") or not page["entries"]:
            return entries
        after = page["entries"][-1]["seq"]


def check_receiver(conn: Conn, truth: list[dict[str, Any]], kinds: frozenset[str]) -> tuple[dict[str, float], list[str]]:
    """Loss / duplication / order of one receiver on its workitem, against the timeline it should follow;
    and a description of each inversion (which entries, by whom, how far apart)."""
    by_seq = {e["seq"]: e for e in truth}
    expected = {e["seq"] for e in truth if e["kind"] in kinds and e["authorId"] != conn.name}
    received: list[tuple[float, int]] = []
    for at, frame in conn.events():
        entry = (frame.get("data") or {}).get("entry")
        if isinstance(entry, dict) and entry.get("workitemId") == conn.workitem and entry.get("kind") in kinds:
            received.append((at, entry["seq"]))
    highest, highest_at = 0, 0.0
    out_of_order = 0
    inversions = []
    delays = []
    for at, seq in received:
        if seq < highest:
            out_of_order += 1
            delays.append(at - highest_at)
            early, late = by_seq.get(seq, {}), by_seq.get(highest, {})
            inversions.append(
                f"{conn.name}@{conn.workitem}: seq {seq} ({early.get('kind')} by {early.get('authorId')}, "
                f"at {early.get('at')}) arrived {1000 * (at - highest_at):.1f} ms after seq {highest} "
                f"({late.get('kind')} by {late.get('authorId')}, at {late.get('at')})"
            )
        if seq > highest:
            highest, highest_at = seq, at
    got = {seq for _, seq in received}
    return (
        {
            "expected": len(expected),
            "received": len(received),
            "lost": len(expected - got),
            "duplicated": len(received) - len(got),
            "out_of_order": out_of_order,
            "unexpected": len(got - expected),
            "max_inversion_ms": round(1000 * max(delays), 1) if delays else 0.0,
        },
        inversions,
    )


def leaks(conn: Conn) -> int:
    count = 0
    for _, frame in conn.frames:
        if frame.get("type") != "event":
            continue
        entry = (frame.get("data") or {}).get("entry") or {}
        if (
            frame.get("event") in COACHING_EVENTS
            or (entry and entry.get("kind") not in CUSTOMER_KINDS)
            or MARKER in json.dumps(frame)
        ):
            count += 1
    return count


def timeline_integrity(truth: list[dict[str, Any]]) -> int:
    """Gaps or duplicates in a workitem's own numbering (must be 0: the truth itself must be sound)."""
    seqs = [e["seq"] for e in truth]
    return 0 if seqs == list(range(1, len(seqs) + 1)) else 1


async def run_async(quick: bool, endpoint: str | None) -> dict[str, Any]:
    workitems = 10 if quick else WORKITEMS
    per_sender = 10 if quick else COACH_PER_SENDER
    rng = random.Random(7)
    loop = asyncio.get_running_loop()
    phases: dict[str, float] = {}
    t = time.perf_counter()
    extra = {"DYNAMODB_ENDPOINT": endpoint} if endpoint else {"DEVSTACK_STORE": "moto"}
    stack = await loop.run_in_executor(None, lambda: stack_module.start(extra_env=extra))
    try:
        phases["start_s"] = time.perf_counter() - t
        t = time.perf_counter()
        teams, items = [], []
        for i in range(workitems):
            agent, sups, _, wid = people(i)
            teams.append((f"lt{i}", sups, [agent]))
            items.append((wid, agent))
        await loop.run_in_executor(None, stack.seed, teams, items)
        phases["seed_s"] = time.perf_counter() - t
        t = time.perf_counter()
        specs: list[tuple[str, str, str | None, str]] = []
        for i in range(workitems):
            agent, sups, customer, wid = people(i)
            specs.append((agent, "agent", wid, stack.token(agent, "agent")))
            specs.extend((s, "supervisor", wid, stack.token(s, "supervisor")) for s in sups)
            specs.append((customer, "customer", wid, stack.token(customer, "customer", wid=wid)))
        conns = await open_all(stack.ws_url, specs)
        staff = [c for c in conns if c.role != "customer"]
        customers = [c for c in conns if c.role == "customer"]
        supervisors = [c for c in conns if c.role == "supervisor"]
        for sup in supervisors:  # sequential per workitem is not needed for correctness; it avoids retries
            await sup.ok("monitor.start", timeout=60, workitemId=sup.workitem)
        await asyncio.sleep(1.0)
        phases["connect_and_monitor_s"] = time.perf_counter() - t

        stats = Stats()
        t = time.perf_counter()
        deadline = t + SEND_DEADLINE
        spread = per_sender * PAUSE / (CONVERSATION_PER_PERSON + 1)
        tasks = [coach_sender(c, per_sender, random.Random(rng.random()), stats, deadline) for c in staff]
        tasks += [
            talker(c, CONVERSATION_PER_PERSON, spread, random.Random(rng.random()), stats, deadline)
            for c in conns
            if c.role in ("customer", "agent")
        ]
        await asyncio.gather(*tasks)
        phases["traffic_s"] = time.perf_counter() - t
        phases["quiesce_s"] = await quiesce(conns)
        truncated = time.perf_counter() > deadline

        t = time.perf_counter()
        by_workitem: dict[str, list[Conn]] = defaultdict(list)
        for c in conns:
            by_workitem[str(c.workitem)].append(c)
        truth: dict[str, list[dict[str, Any]]] = {}
        customer_truth: dict[str, list[dict[str, Any]]] = {}
        for wid, members in by_workitem.items():
            reader = next(c for c in members if c.role == "supervisor")
            truth[wid] = await read_timeline(reader, wid)
            customer_conn = next(c for c in members if c.role == "customer")
            customer_truth[wid] = await read_timeline(customer_conn, wid)
        phases["verify_s"] = time.perf_counter() - t

        totals: dict[str, float] = defaultdict(int)
        worst: list[dict[str, Any]] = []
        inversions: list[str] = []
        for c in conns:
            kinds = CUSTOMER_KINDS if c.role == "customer" else MESSAGE_KINDS
            source = customer_truth if c.role == "customer" else truth
            counts, found = check_receiver(c, source[str(c.workitem)], kinds)
            inversions.extend(found)
            for key, value in counts.items():
                if key == "max_inversion_ms":
                    totals[key] = max(totals[key], value)
                else:
                    totals[key] += value
            if any(counts[k] for k in ("lost", "duplicated", "out_of_order", "unexpected")):
                worst.append({"receiver": c.name, "workitem": c.workitem, **counts})
        coach_entries = {e["messageId"]: wid for wid, entries in truth.items() for e in entries if e["kind"] == "coach_message"}
        delivered = sum(len(c.events("coach.message")) for c in staff)
        result: dict[str, Any] = {
            "load": {
                "sent": stats.acked,
                "delivered": delivered,
                "lost": totals["lost"],
                "duplicated": totals["duplicated"],
                "out_of_order": totals["out_of_order"],
                "leaked_to_customers": sum(leaks(c) for c in customers),
            },
            "load_detail": {
                "store": "DynamoDB Local (DYNAMODB_ENDPOINT)" if endpoint else "embedded moto server",
                "clients": len(conns),
                "workitems": workitems,
                "senders": len(staff),
                "coach_per_sender": per_sender,
                "coach_attempted": len(staff) * per_sender,
                "coach_refused": len(stats.refused),
                "refusals": sorted(set(stats.refused))[:5],
                "unanswered": stats.unanswered,
                "conversation_messages": stats.conversation,
                "coach_entries_in_timelines": len(coach_entries),
                "acked_not_in_timeline": len(set(stats.acked_ids) - set(coach_entries)),
                "expected_entry_frames": totals["expected"],
                "received_entry_frames": totals["received"],
                "unexpected_entry_frames": totals["unexpected"],
                "timelines_with_gaps": sum(timeline_integrity(v) for v in truth.values()),
                "customer_frames": sum(len(c.events()) for c in customers),
                "receivers_with_problems": len(worst),
                "examples": worst[:5],
                "inversions": inversions[:10],
                "max_inversion_ms": totals["max_inversion_ms"],
                "coach_send_ack": summary_ms(stats.ack_latency),
                "coach_sends_per_s": round(stats.acked / phases["traffic_s"], 1) if phases["traffic_s"] else None,
                "truncated_by_deadline": truncated,
                "phases": {k: round(v, 1) for k, v in phases.items()},
            },
        }
        await close_all(conns)
    finally:
        await loop.run_in_executor(None, stack.stop)
    return result


def run(quick: bool, store: str = "ddblocal") -> dict[str, Any]:
    """``store``: ``ddblocal`` (DynamoDB Local; falls back to moto with a note when it cannot start)
    or ``moto`` (the stack's embedded store, which cannot sustain this load: see docs/performance.md)."""
    if store == "moto":
        return asyncio.run(run_async(quick, None))
    with stack_module.dynamodb_local() as endpoint:
        result = asyncio.run(run_async(quick, endpoint))
    if endpoint is None:
        result["load_detail"]["note"] = "DynamoDB Local unavailable: ran on the embedded moto store"
    return result


def main() -> None:
    args = cli(__doc__.splitlines()[0], stores=True)
    emit(run(args.quick, args.store if "--store" in sys.argv else "ddblocal"), args.out)


if __name__ == "__main__":
    main()
