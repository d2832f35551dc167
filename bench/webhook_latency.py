"""Outbound webhook latency on the local stack: from a coach message's commit to a receiver on 127.0.0.1.

A supervisor sends coach messages one after another on a monitored chat; a subscription to
``timeline.entry`` posts each entry to a receiver in this process. Per message it records the commit
time (the entry's ``at``, stamped when the handler commits), when the agent's WebSocket push arrived,
and when the webhook arrived, and prints the medians and 95th percentiles and the ratio of the webhook's
latency to the push's (the webhook goes through the stream, the delivery queue and the
``deliver_webhooks`` function; the push through the stream only).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from bench import stack as stack_module
from bench.common import cli, emit
from bench.receivers import CoachReceiver, epoch
from bench.wsclient import open_all


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000, 1),
    }


async def run_async(samples: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stack = await loop.run_in_executor(None, lambda: stack_module.start(None, {"DEVSTACK_STORE": "moto"}))
    receiver = CoachReceiver()
    try:
        await loop.run_in_executor(None, stack.seed, [("t1", ["sup-1"], ["agent-1"])], [("wi-1", "agent-1")])
        admin = stack.token("bench-admin", "admin")
        await loop.run_in_executor(
            None,
            lambda: stack.request(
                "PUT", "/admin/webhook-subscriptions/bench", {"url": receiver.url, "events": ["timeline.entry"]}, token=admin
            ),
        )
        sup, agent = await open_all(
            stack.ws_url,
            [
                ("sup-1", "supervisor", None, stack.token("sup-1", "supervisor")),
                ("agent-1", "agent", None, stack.token("agent-1", "agent")),
            ],
        )
        await sup.ok("monitor.start", workitemId="wi-1")
        committed: dict[int, float] = {}
        for i in range(samples):
            entry = (await sup.ok("coach.send", workitemId="wi-1", text=f"tip {i}"))["entry"]
            committed[int(entry["seq"])] = epoch(entry["at"])
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 30
        while len(receiver.arrivals) < samples and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        # perf_counter of the push -> wall clock: offset measured now (same process, same clock source).
        offset = time.time() - time.perf_counter()
        pushed = {int(f["data"]["entry"]["seq"]): t + offset for t, f in agent.events("coach.message")}
        webhook = [receiver.arrivals[s] - c for s, c in committed.items() if s in receiver.arrivals]
        push = [pushed[s] - c for s, c in committed.items() if s in pushed]
        await sup.close()
        await agent.close()
        result: dict[str, Any] = {"samples": samples, "delivered": len(webhook), "webhook": _stats(webhook), "push": _stats(push)}
        result["webhook_to_push_p50"] = round(result["webhook"]["p50_ms"] / max(result["push"]["p50_ms"], 0.1), 2)
        return {"webhook_latency": result}
    finally:
        receiver.close()
        stack.stop()


def main() -> None:
    args = cli(__doc__.splitlines()[0])
    emit(asyncio.run(run_async(30 if args.quick else 200)), args.out)


if __name__ == "__main__":
    main()
