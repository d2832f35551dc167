"""2. Fan-out latency of coach.send vs a bare echo, through the real local gateway.

Setup: the local stack in a child process (:mod:`bench.stack`); ``W`` chat workitems, each with one
agent, ``M`` = 8 supervisors of the agent's team monitoring it, and the workitem's customer, every
one on their own real WebSocket connection (``W`` x 10 live connections: 20 and 200).

Measured, one operation at a time (closed loop, nothing else in flight), alternating:

* **echo** - ``ping`` from a random live connection, from the moment the frame is written to the
  socket until its ``ack`` is read. The app answers every frame through ``@connections``, so the ack
  takes the same path as any push: gateway -> thread pool -> handler -> HTTP POST /@connections ->
  gateway -> socket, with no DynamoDB request. This is the floor of the stack.
* **fan-out** - ``coach.send`` from a random staff member (agent or supervisor) of a random workitem,
  from the moment the frame is written until ``coach.message`` is read on each of its 8 recipients
  (the agent and the monitoring supervisors, the sender's own connection gets the ack instead).
  Every (send, recipient) pair is one sample. Path: gateway -> handler -> GetItem, TransactWriteItems,
  BatchGetItem on the store -> 8 parallel POSTs /@connections -> sockets.

Customers stay connected and must receive nothing: coaching frames seen by them are counted.

Then the same again with fast delivery (key ``fanout_fast``; docs/product.md W15): every connection of
the 200-connection phase is closed and opened again with ``?delivery=fast`` (the same people, the same
workitems, the supervisors still monitoring), and the same measurement runs. A recipient's sample is
the first ``coach.message`` of the send to reach it, which is the handler's post, posted in one batch
with the sender's ack (the ordered path's copy comes later and is not counted). ``ack_p50_ms`` and
``ack_p99_ms`` are the sender's ack of the same sends: the target is ``p99_ms`` <= 1.25 x ``ack_p99_ms``
(others see a message about when its sender learns it is committed) and <= half of ``fanout``'s p99.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import stack as stack_module
from bench.common import cli, emit, summary_ms
from bench.wsclient import Conn, Frame, close_all, open_all

SUPERVISORS_PER_WORKITEM = 8
PER_WORKITEM = SUPERVISORS_PER_WORKITEM + 2  # + agent + customer
COACHING_EVENTS = frozenset(
    {"coach.message", "coach.reaction", "coach.forwarded", "coaching.joined", "coaching.left", "coaching.ended"}
)
DELIVERY_TIMEOUT = 10.0
SAMPLES = 200  # measured coach.send (x 8 recipients) and pings per connection count
WARMUP = 20  # unmeasured rounds first: the stack's thread pools create their SDK clients


def people(i: int) -> tuple[str, list[str], str, str]:
    """(agent, supervisors, customer, workitem) of workitem ``i``."""
    return f"fa{i}", [f"fs{i}-{j}" for j in range(SUPERVISORS_PER_WORKITEM)], f"cust-fw{i}", f"fw{i}"


class Room:
    """The connections of one workitem."""

    def __init__(self, workitem: str, agent: Conn, supervisors: list[Conn], customer: Conn) -> None:
        self.workitem = workitem
        self.agent = agent
        self.supervisors = supervisors
        self.customer = customer

    @property
    def staff(self) -> list[Conn]:
        return [self.agent, *self.supervisors]

    @property
    def all(self) -> list[Conn]:
        return [*self.staff, self.customer]


class Deliveries:
    """Arrival times of coach.message per text, and coaching frames that reached customers."""

    def __init__(self) -> None:
        self.arrivals: dict[str, dict[str, float]] = {}
        self.expected: dict[str, int] = {}
        self.complete: dict[str, asyncio.Event] = {}
        self.leaked: list[Frame] = []

    def expect(self, text: str, recipients: int) -> asyncio.Event:
        self.arrivals[text] = {}
        self.expected[text] = recipients
        self.complete[text] = asyncio.Event()
        return self.complete[text]

    def on_event(self, conn: Conn, at: float, frame: Frame) -> None:
        name = frame.get("event")
        if conn.role == "customer":
            entry = (frame.get("data") or {}).get("entry") or {}
            if name in COACHING_EVENTS or entry.get("kind") not in (None, "customer_message", "agent_message"):
                self.leaked.append(frame)
            return
        if name != "coach.message":
            return
        text = ((frame.get("data") or {}).get("entry") or {}).get("text")
        if not isinstance(text, str) or (got := self.arrivals.get(text)) is None:
            return
        got.setdefault(conn.name, at)
        if len(got) >= self.expected[text]:
            self.complete[text].set()


async def open_rooms(
    stack: stack_module.Stack, indexes: range, deliveries: Deliveries, *, fast: bool = False, monitor: bool = True
) -> list[Room]:
    specs: list[tuple[str, str, str | None, str]] = []
    for i in indexes:
        agent, sups, customer, wid = people(i)
        specs.append((agent, "agent", wid, stack.token(agent, "agent")))
        specs.extend((s, "supervisor", wid, stack.token(s, "supervisor")) for s in sups)
        specs.append((customer, "customer", wid, stack.token(customer, "customer", wid=wid)))
    conns = await open_all(stack.ws_url, specs, query="&delivery=fast" if fast else "")
    for conn in conns:
        conn.on_event = deliveries.on_event
    rooms = []
    for n, i in enumerate(indexes):
        chunk = conns[n * PER_WORKITEM : (n + 1) * PER_WORKITEM]
        rooms.append(Room(people(i)[3], chunk[0], chunk[1:-1], chunk[-1]))

    async def start_monitoring(room: Room) -> None:
        for sup in room.supervisors:  # one at a time: no optimistic-concurrency retries in the setup
            await sup.ok("monitor.start", workitemId=room.workitem, timeout=60)

    if monitor:  # (a reconnecting supervisor still monitors: monitoring belongs to the user)
        await asyncio.gather(*(start_monitoring(r) for r in rooms))
    await asyncio.sleep(0.5)  # let the coaching.joined pushes land before measuring
    return rooms


async def measure(
    rooms: list[Room], deliveries: Deliveries, samples: int, warmup: int, label: str, rng: random.Random
) -> dict[str, Any]:
    everyone = [c for r in rooms for c in r.all]
    echo: list[float] = []
    fan: list[float] = []
    acks: list[float] = []
    missing = 0
    errors: list[str] = []
    started = time.perf_counter()
    for k in range(warmup + samples):
        keep = k >= warmup
        # echo: one ping, answered through @connections
        conn = rng.choice(everyone)
        sent_at, replied_at, frame = await conn.request("ping", timeout=DELIVERY_TIMEOUT)
        if frame.get("type") != "ack":
            errors.append(f"ping: {frame}")
        elif keep:
            echo.append(replied_at - sent_at)
        # fan-out: one coach.send to the 8 other staff connections of a workitem
        room = rng.choice(rooms)
        sender = rng.choice(room.staff)
        text = f"tip {label} {k}"
        done = deliveries.expect(text, len(room.staff) - 1)
        _, sent_at, waiter = await sender.send("coach.send", workitemId=room.workitem, text=text)
        try:
            await asyncio.wait_for(done.wait(), DELIVERY_TIMEOUT)
            replied_at, frame = await asyncio.wait_for(waiter, DELIVERY_TIMEOUT)
        except TimeoutError:
            missing += len(room.staff) - 1 - len(deliveries.arrivals[text])
            errors.append(f"coach.send {text}: {len(deliveries.arrivals[text])} of {len(room.staff) - 1} delivered")
            continue
        if frame.get("type") != "ack":
            errors.append(f"coach.send: {frame}")
            continue
        if keep:
            fan.extend(t - sent_at for t in deliveries.arrivals[text].values())
            acks.append(replied_at - sent_at)
    elapsed = time.perf_counter() - started
    fan_s, echo_s = summary_ms(fan), summary_ms(echo)
    return {
        "live_connections": len(everyone),
        "workitems": len(rooms),
        "recipients_per_send": SUPERVISORS_PER_WORKITEM,
        "sends": samples,
        "p50_ms": fan_s["p50_ms"],
        "p99_ms": fan_s["p99_ms"],
        "echo_p50_ms": echo_s["p50_ms"],
        "echo_p99_ms": echo_s["p99_ms"],
        "ratio_p99": round(fan_s["p99_ms"] / echo_s["p99_ms"], 2) if echo and fan else None,
        "ratio_p50": round(fan_s["p50_ms"] / echo_s["p50_ms"], 2) if echo and fan else None,
        "fanout_samples": fan_s,
        "echo_samples": echo_s,
        "coach_send_ack": summary_ms(acks),
        "missing_deliveries": missing,
        "errors": errors[:10],
        "seconds": round(elapsed, 1),
    }


async def run_async(quick: bool, endpoint: str | None, trace: Path | None = None) -> dict[str, Any]:
    samples, warmup = (60, 10) if quick else (SAMPLES, WARMUP)
    rng = random.Random(20240601)
    total_workitems = 200 // PER_WORKITEM  # 20
    small_workitems = 20 // PER_WORKITEM  # 2
    loop = asyncio.get_running_loop()
    phases: dict[str, float] = {}
    t = time.perf_counter()
    # --store moto pins the stack to moto's server; without it the stack would pick DynamoDB Local itself.
    extra = {"DYNAMODB_ENDPOINT": endpoint} if endpoint else {"DEVSTACK_STORE": "moto"}
    # The stack's own CommitToPostDelay by Path (the functions' metrics, as CloudWatch would get them):
    # how long after the commit each path hands its posts over, measured inside the stack.
    metrics_file = Path(tempfile.mkdtemp(prefix="bench-fanout-")) / "metrics.jsonl"
    extra["DEVSTACK_METRICS_FILE"] = str(metrics_file)
    command = None
    if trace is not None:
        extra["BENCH_TRACE_OUT"] = str(trace)
        command = [sys.executable, "-m", "bench.stack_trace"]
    stack = await loop.run_in_executor(None, lambda: stack_module.start(command, extra))
    try:
        phases["start_s"] = time.perf_counter() - t
        t = time.perf_counter()
        teams = []
        workitems = []
        for i in range(total_workitems):
            agent, sups, _, wid = people(i)
            teams.append((f"ft{i}", sups, [agent]))
            workitems.append((wid, agent))
        await loop.run_in_executor(None, stack.seed, teams, workitems)
        phases["seed_s"] = time.perf_counter() - t
        t = time.perf_counter()
        deliveries = Deliveries()
        rooms = await open_rooms(stack, range(small_workitems), deliveries)
        result_20 = await measure(rooms, deliveries, samples, warmup, "c20", rng)
        t2 = time.perf_counter()
        rooms += await open_rooms(stack, range(small_workitems, total_workitems), deliveries)
        phases["connect_and_monitor_200_s"] = time.perf_counter() - t2
        if trace is not None:  # the server-side trace covers the 200-connection phase only
            stack.process.send_signal(signal.SIGUSR1)
        mark = _lines(metrics_file)
        result_200 = await measure(rooms, deliveries, samples, warmup, "c200", rng)
        result_200["commit_to_post_ms"] = commit_to_post(metrics_file, mark)
        await close_all(c for r in rooms for c in r.all)
        # The same people and workitems again, every connection opened with ?delivery=fast.
        fast_rooms = await open_rooms(stack, range(total_workitems), deliveries, fast=True, monitor=False)
        mark = _lines(metrics_file)
        result_fast = fast_shape(await measure(fast_rooms, deliveries, samples, warmup, "fast", rng), result_200)
        result_fast["commit_to_post_ms"] = commit_to_post(metrics_file, mark)
        leaked = len(deliveries.leaked)
        await close_all(c for r in fast_rooms for c in r.all)
    finally:
        await loop.run_in_executor(None, stack.stop)
    store = "DynamoDB Local (DYNAMODB_ENDPOINT)" if endpoint else "embedded moto server"
    for result in (result_20, result_200, result_fast):
        result["leaked_to_customers"] = leaked
        result["store"] = store
    result_200["phases"] = {k: round(v, 1) for k, v in phases.items()}
    if trace is not None and trace.exists():
        result_200["server_trace"] = json.loads(trace.read_text())
    return {"fanout": result_200, "fanout_20": result_20, "fanout_fast": result_fast}


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0


def commit_to_post(path: Path, since: int) -> dict[str, Any]:
    """The stack's CommitToPostDelay samples written after line ``since``, by path (``stream``: the
    ordered copy from the stream's consumer; ``fast``: the handler's own posts), p50/p99 in ms."""
    by_path: dict[str, list[float]] = {}
    lines = path.read_text(encoding="utf-8").splitlines()[since:] if path.exists() else []
    for line in lines:
        document = json.loads(line)
        value = document.get("CommitToPostDelay")
        if value is not None:  # one value, or an array of them (EMF)
            values = value if isinstance(value, list) else [value]
            by_path.setdefault(str(document.get("Path")), []).extend(float(v) / 1000 for v in values)
    return {name: summary_ms(values) for name, values in sorted(by_path.items())}


def fast_shape(fast: dict[str, Any], ordered: dict[str, Any]) -> dict[str, Any]:
    """``fanout``'s keys for the fast run, plus the sender's ack of the same sends and the targets'
    ratios: to the ack's p99 (<= 1.25) and to the ordered run's p99 (<= 0.5)."""
    ack = fast["coach_send_ack"]
    fast["delivery"] = "fast"
    fast["ack_p50_ms"] = ack.get("p50_ms")
    fast["ack_p99_ms"] = ack.get("p99_ms")
    fast["ratio_to_ack_p99"] = round(fast["p99_ms"] / ack["p99_ms"], 2) if fast["p99_ms"] and ack.get("p99_ms") else None
    fast["ratio_to_ordered_p99"] = (
        round(fast["p99_ms"] / ordered["p99_ms"], 2) if fast["p99_ms"] and ordered.get("p99_ms") else None
    )
    return fast


def _run(quick: bool, endpoint: str | None, trace: bool) -> dict[str, Any]:
    if not trace:
        return asyncio.run(run_async(quick, endpoint))
    with tempfile.TemporaryDirectory(prefix="bench-trace-") as tmp:
        return asyncio.run(run_async(quick, endpoint, Path(tmp) / "trace.json"))


def run(quick: bool, store: str = "ddblocal", trace: bool = False) -> dict[str, Any]:
    """``store``: ``ddblocal`` - the stack as ``make run`` starts it when Java is present, on AWS's
    DynamoDB Local engine (keys ``fanout`` and ``fanout_20``); ``moto`` - the same stack on its
    fallback store, moto's server (keys ``fanout_moto`` and ``fanout_20_moto``)."""
    if store == "moto":
        result = _run(quick, None, trace)
        return {"fanout_moto": result["fanout"], "fanout_20_moto": result["fanout_20"], "fanout_fast_moto": result["fanout_fast"]}
    with stack_module.dynamodb_local() as endpoint:
        if endpoint is None:
            return {"fanout": {"skipped": "DynamoDB Local is not available (make install, Java 17+)"}}
        return _run(quick, endpoint, trace)


def main() -> None:
    args = cli(__doc__.splitlines()[0], stores=True)
    emit(run(args.quick, args.store, args.trace), args.out)


if __name__ == "__main__":
    main()
