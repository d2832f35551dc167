"""7. Contention: 10 writers in a closed loop on one workitem; none may be refused.

Setup: the local stack in a child process on DynamoDB Local; one chat workitem with its agent, its
customer and 8 supervisors of the agent's team monitoring it.

Traffic: each of the 10 writers sends ``PER_WRITER`` messages one after another, each waiting for its
ack before the next (the agent and the customer ``message.send``, the supervisors ``coach.send``):
10 callers always racing for the same workitem's next ``seq``.

Result: ``refused`` (error replies, by code: ``rate_limited`` would be contention reported to the
client, which the contract forbids with up to 10 waiting callers), ``acked``, the ack latency
p50/p99 in ms, and ``seq_gapless`` (the timeline read back numbers 1..n with no gap).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from bench import stack as stack_module
from bench.common import cli, emit, summary_ms
from bench.wsclient import Conn, close_all, open_all

WRITERS = 10
PER_WRITER = 30
WID = "wi-contention"
AGENT = "ca-1"
SUPERVISORS = [f"cs-{i}" for i in range(WRITERS - 2)]
CUSTOMER = "cust-contention"


async def _writer(conn: Conn, count: int, latencies: list[float], refused: dict[str, int]) -> int:
    action = "coach.send" if conn.role == "supervisor" else "message.send"
    acked = 0
    for n in range(count):
        sent_at, replied_at, frame = await conn.request(action, timeout=60, workitemId=WID, text=f"{conn.name} {n}")
        if frame.get("type") == "ack":
            acked += 1
            latencies.append(replied_at - sent_at)
        else:
            code = str((frame.get("error") or {}).get("code"))
            refused[code] = refused.get(code, 0) + 1
    return acked


async def _timeline(conn: Conn) -> list[int]:
    seqs: list[int] = []
    after = 0
    while True:
        page = await conn.ok("timeline.get", workitemId=WID, after=after, limit=200)
        seqs.extend(e["seq"] for e in page["entries"])
        if not page["hasMore"] or not page["entries"]:
            return seqs
        after = seqs[-1]


async def run_async(quick: bool, endpoint: str | None) -> dict[str, Any]:
    per_writer = 10 if quick else PER_WRITER
    loop = asyncio.get_running_loop()
    extra = {"DYNAMODB_ENDPOINT": endpoint} if endpoint else {"DEVSTACK_STORE": "moto"}
    stack = await loop.run_in_executor(None, lambda: stack_module.start(extra_env=extra))
    try:
        await loop.run_in_executor(None, stack.seed, [("ct", SUPERVISORS, [AGENT])], [(WID, AGENT)])
        specs: list[tuple[str, str, str | None, str]] = [(AGENT, "agent", WID, stack.token(AGENT, "agent"))]
        specs.extend((s, "supervisor", WID, stack.token(s, "supervisor")) for s in SUPERVISORS)
        specs.append((CUSTOMER, "customer", WID, stack.token(f"cust-{WID}", "customer", wid=WID)))
        conns = await open_all(stack.ws_url, specs)
        for conn in conns:
            if conn.role == "supervisor":
                await conn.ok("monitor.start", workitemId=WID)
        latencies: list[float] = []
        refused: dict[str, int] = {}
        started = time.perf_counter()
        acked = sum(await asyncio.gather(*(_writer(c, per_writer, latencies, refused) for c in conns)))
        seconds = time.perf_counter() - started
        seqs = await _timeline(conns[0])
        await close_all(conns)
    finally:
        await loop.run_in_executor(None, stack.stop)
    acks = summary_ms(latencies)
    return {
        "contention": {
            "writers": WRITERS,
            "per_writer": per_writer,
            "acked": acked,
            "refused": sum(refused.values()),
            "refused_by_code": refused,
            "ack_p50_ms": acks["p50_ms"],
            "ack_p99_ms": acks["p99_ms"],
            "ack_max_ms": acks["max_ms"],
            "writes_per_s": round(acked / seconds, 1),
            "seq_gapless": seqs == list(range(1, len(seqs) + 1)),
            "store": "ddblocal" if endpoint else "moto",
        }
    }


def run(quick: bool, store: str = "ddblocal") -> dict[str, Any]:
    if store == "moto":
        return asyncio.run(run_async(quick, None))
    with stack_module.dynamodb_local() as endpoint:
        return asyncio.run(run_async(quick, endpoint))


def main() -> None:
    args = cli(__doc__.splitlines()[0], stores=True)
    emit(run(args.quick, args.store if "--store" in sys.argv else "ddblocal"), args.out)


if __name__ == "__main__":
    main()
