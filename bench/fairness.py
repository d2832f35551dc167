"""8. Fair delivery: another tenant's webhook latency with and without a noisy tenant, on the local stack.

The quiet tenant's supervisor sends coach messages one after another (5 a second) on a monitored chat;
a subscription to ``timeline.entry`` posts each entry to a receiver in this process. Per message the
latency is from the entry's commit (its ``at``) to the webhook's arrival. First with nothing else
going on (*quiet*), then while a noisy tenant has 20 subscriptions to a receiver that accepts TCP
connections and never answers and changes a supervisor's presence every 200 ms, each change 20
deliveries that hold a post for 10 s (*noisy*). The ratio of the quiet tenant's p99 with and without
the noise is the figure (target: at most 2, docs/product.md Q19).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import stack as stack_module
from bench.common import cli, emit, summary_ms
from bench.receivers import CoachReceiver, SilentReceiver, epoch
from bench.wsclient import open_all
from devstack.tokens import mint

NOISY = "noisy"
NOISY_SUBSCRIPTIONS = 20
NOISE_EVERY = 0.2
SEND_EVERY = 0.2


async def _measure(sup: Any, receiver: CoachReceiver, label: str, samples: int) -> tuple[list[float], int]:
    committed: dict[int, float] = {}
    for i in range(samples):
        entry = (await sup.ok("coach.send", workitemId="wi-1", text=f"{label} {i}"))["entry"]
        committed[int(entry["seq"])] = epoch(entry["at"])
        await asyncio.sleep(SEND_EVERY)
    deadline = time.monotonic() + 60
    while any(t not in receiver.arrivals for t in committed) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    latencies = [receiver.arrivals[t] - c for t, c in committed.items() if t in receiver.arrivals]
    return latencies, samples - len(latencies)


async def run_async(samples: int, endpoint: str | None) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    extra = {"DYNAMODB_ENDPOINT": endpoint} if endpoint else {"DEVSTACK_STORE": "moto"}
    stack = await loop.run_in_executor(None, lambda: stack_module.start(None, extra))
    receiver = CoachReceiver()
    hole = SilentReceiver()
    try:
        await loop.run_in_executor(None, stack.seed, [("t1", ["sup-1"], ["agent-1"])], [("wi-1", "agent-1")])
        admin = stack.token("bench-admin", "admin")
        body = {"url": receiver.url, "events": ["timeline.entry"]}
        await loop.run_in_executor(None, lambda: stack.request("PUT", "/admin/webhook-subscriptions/bench", body, token=admin))
        noisy_admin = mint(stack_module.JWT_SECRET, sub="noisy-admin", role="admin", tid=NOISY, ttl_seconds=3600)
        await loop.run_in_executor(
            None,
            lambda: stack.request("PUT", "/admin/users/loud-1", {"name": "Loud", "role": "supervisor"}, token=noisy_admin),
        )
        sup, agent = await open_all(
            stack.ws_url,
            [
                ("sup-1", "supervisor", None, stack.token("sup-1", "supervisor")),
                ("agent-1", "agent", None, stack.token("agent-1", "agent")),
            ],
        )
        await sup.ok("monitor.start", workitemId="wi-1")
        await _measure(sup, receiver, "warm-up", 10)
        quiet, quiet_lost = await _measure(sup, receiver, "quiet", samples)

        def subscribe_dead(number: int) -> None:
            dead = {"url": hole.url, "events": ["presence.changed"]}
            stack.request("PUT", f"/admin/webhook-subscriptions/dead-{number}", dead, token=noisy_admin)

        for number in range(NOISY_SUBSCRIPTIONS):
            await loop.run_in_executor(None, subscribe_dead, number)
        [loud] = await open_all(
            stack.ws_url,
            [("loud-1", "supervisor", None, mint(stack_module.JWT_SECRET, sub="loud-1", role="supervisor", tid=NOISY))],
        )
        changes = 0
        stop = asyncio.Event()

        async def noise() -> None:
            nonlocal changes
            while not stop.is_set():
                await loud.ok("presence.set", state=("not_ready", "available")[changes % 2])
                changes += 1
                await asyncio.sleep(NOISE_EVERY)

        noisy_task = asyncio.create_task(noise())
        await asyncio.sleep(5)  # the noise is underway: posts to the silent receiver hold their 10 s
        noisy, noisy_lost = await _measure(sup, receiver, "noisy", samples)
        stop.set()
        await noisy_task
        for conn in (sup, agent, loud):
            await conn.close()
        alone, crowded = summary_ms(quiet), summary_ms(noisy)
        return {
            "fairness": {
                "samples": samples,
                "store": "ddblocal" if endpoint else "moto",
                "quiet": alone,
                "noisy": crowded,
                "lost": quiet_lost + noisy_lost,
                "ratio_p50": round(crowded["p50_ms"] / max(alone["p50_ms"], 0.1), 2),
                "ratio_p99": round(crowded["p99_ms"] / max(alone["p99_ms"], 0.1), 2),
                "noise": {
                    "presence_changes": changes,
                    "deliveries_queued": changes * NOISY_SUBSCRIPTIONS,
                    "connections_to_the_silent_receiver": len(hole.held),
                },
            }
        }
    finally:
        hole.close()
        receiver.close()
        stack.stop()


def run(quick: bool, store: str) -> dict[str, Any]:
    samples = 30 if quick else 150
    if store == "moto":
        return asyncio.run(run_async(samples, None))
    with stack_module.dynamodb_local() as endpoint:
        return asyncio.run(run_async(samples, endpoint))


def main() -> None:
    args = cli(__doc__.splitlines()[0], stores=True)
    emit(run(args.quick, args.store), args.out)


if __name__ == "__main__":
    main()
