"""Attention alerts: how soon a supervisor hears of them, and what evaluating an entry costs.

Latency, on the local stack (``python -m devstack``, DynamoDB Local or moto's server): one supervisor of
one agent, connected but monitoring nothing (``attention.raised`` reaches every supervisor of the agent),
and one customer per chat.

* ``keyword``: a customer's message with a rule's phrase, one chat per sample (an open alert blocks a
  second of the same rule on that chat). Latency = the ``attention.raised`` push at the supervisor minus
  the entry's commit (its ``at``): the stream, the rule evaluation and the alert's write and push.
* ``waiting``: a ``customer_waiting`` rule of 10 s and a customer message nobody answers, one chat per
  sample. Latency = the push minus (the commit + 10 s): the SQS delay timer's lateness, the re-check and
  the push (the contract: within 5 s after the threshold).

Requests, in process (the integration tests' world on moto, counted with botocore's event hooks like
``bench.ddb_requests``): a batch of customer messages through the stream consumer, once in a tenant
without rules and once in a tenant with a keyword, a sentiment and a waiting rule. The difference per
message is what evaluating one entry costs in DynamoDB requests; both the messages that raise an alert
and those that do not are measured (a waiting rule's timer is one SQS SendMessage more, not counted here).
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from typing import Any

from bench import stack as stack_module
from bench.common import cli, emit
from bench.receivers import epoch
from bench.wsclient import Conn, close_all, open_all

WAIT_SECONDS = 10
KEYWORD_RULE = {"kind": "keyword", "phrases": ["refund"], "severity": 2}
WAITING_RULE = {"kind": "customer_waiting", "seconds": WAIT_SECONDS, "severity": 1}
SENTIMENT_RULE = {"kind": "sentiment", "negativeInARow": 2, "severity": 3}


def _stats(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    if not ordered:
        return {"samples": 0}

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000, 1)

    return {"samples": len(ordered), "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": round(ordered[-1] * 1000, 1)}


async def _raised_at(sup: Conn, workitem_id: str, kind: str, deadline: float) -> float | None:
    """When (perf_counter) the supervisor got ``attention.raised`` of ``kind`` for the workitem."""
    while time.monotonic() < deadline:
        for t, frame in sup.events("attention.raised"):
            alert = frame["data"]["alert"]
            if alert["workitemId"] == workitem_id and alert["kind"] == kind:
                return t
        await asyncio.sleep(0.02)
    return None


async def latency(quick: bool, endpoint: str | None) -> dict[str, Any]:
    keyword_samples, waiting_samples = (10, 5) if quick else (60, 20)
    loop = asyncio.get_running_loop()
    extra = {"DYNAMODB_ENDPOINT": endpoint} if endpoint else {"DEVSTACK_STORE": "moto"}
    stack = await loop.run_in_executor(None, lambda: stack_module.start(None, extra))
    conns: list[Conn] = []
    try:
        keyword_chats = [f"kw-{i}" for i in range(keyword_samples)]
        waiting_chats = [f"wait-{i}" for i in range(waiting_samples)]
        await loop.run_in_executor(
            None, stack.seed, [("at", ["sup-1"], ["agent-1"])], [(w, "agent-1") for w in keyword_chats + waiting_chats]
        )
        admin = stack.token("bench-admin", "admin")
        for rule_id, rule in (("kw", KEYWORD_RULE), ("wait", WAITING_RULE)):
            await loop.run_in_executor(
                None, functools.partial(stack.request, "PUT", f"/admin/attention-rules/{rule_id}", rule, token=admin)
            )
        people: list[tuple[str, str, str | None, str]] = [("sup-1", "supervisor", None, stack.token("sup-1", "supervisor"))]
        people += [
            (f"cust-{w}", "customer", w, stack.token(f"cust-{w}", "customer", wid=w)) for w in keyword_chats + waiting_chats
        ]
        conns = await open_all(stack.ws_url, people)
        sup, customers = conns[0], {c.workitem: c for c in conns[1:]}
        offset = time.time() - time.perf_counter()  # the frames' perf_counter times -> wall clock

        keyword: list[float] = []
        for w in keyword_chats:
            entry = (await customers[w].ok("message.send", workitemId=w, text="I want a refund now"))["entry"]
            pushed = await _raised_at(sup, w, "keyword", time.monotonic() + 30)
            if pushed is not None:
                keyword.append(pushed + offset - epoch(entry["at"]))
        committed: dict[str, float] = {}
        for w in waiting_chats:  # sent together, one chat each: their thresholds pass together
            entry = (await customers[w].ok("message.send", workitemId=w, text="hello, anyone there?"))["entry"]
            committed[w] = epoch(entry["at"])
        waiting: list[float] = []
        for w, at in committed.items():
            pushed = await _raised_at(sup, w, "customer_waiting", time.monotonic() + WAIT_SECONDS + 60)
            if pushed is not None:
                waiting.append(pushed + offset - (at + WAIT_SECONDS))
        return {
            "store": "DynamoDB Local" if endpoint else "moto server",
            "keyword_commit_to_push": _stats(keyword),
            "waiting_threshold_to_push": _stats(waiting),
            "keyword_missing": keyword_samples - len(keyword),
            "waiting_missing": waiting_samples - len(waiting),
        }
    finally:
        await close_all(conns)
        await loop.run_in_executor(None, stack.stop)


def requests_per_entry(messages: int) -> dict[str, Any]:
    """DynamoDB (and SQS) requests of ``messages`` customer messages sent in one stream batch, in a
    tenant without rules and in one with a keyword, a sentiment and a waiting rule."""
    from bench import ddbhooks
    from bench.ddb_requests import _environment

    _environment()
    ddbhooks.install()
    from moto import mock_aws

    from chalicelib import bootstrap
    from chalicelib.adapters.dynamo import create_tables
    from tests.support.world import World, test_settings

    def batch(world: World, tid: str, label: str, text: str) -> tuple[int, dict[str, int]]:
        chats = [f"{tid}-{label}-{i}" for i in range(messages)]
        for w in chats:
            world.assign(w, tid=tid)
        customers = [world.connect(f"cust-{w}", "customer", tid, wid=w) for w in chats]
        world.pump()
        with ddbhooks.counting() as hooks:
            with world.batched():
                for w, customer in zip(chats, customers, strict=True):
                    customer.ok("message.send", workitemId=w, text=text)
            world.pump()
        return hooks.total, hooks.by_operation()

    out: dict[str, Any] = {"messages_per_batch": messages}
    with mock_aws():
        settings = test_settings()
        create_tables(settings)
        world = World(settings)
        try:
            for tid, rules in (("plain", {}), ("ruled", {"kw": KEYWORD_RULE, "neg": SENTIMENT_RULE, "wait": WAITING_RULE})):
                world.team(tid=tid, supervisors=("sup-1",), agents=("agent-1",))
                for rule_id, rule in rules.items():
                    world.admin("PUT", f"/admin/attention-rules/{rule_id}", rule, tid=tid)
                world.connect("sup-1", "supervisor", tid)
                for label, text in (("quiet", "hello, a question about my order"), ("match", "I want a refund, this is awful")):
                    total, ops = batch(world, tid, label, text)
                    out[f"{tid}_{label}"] = {"requests": total, "ops": ops}
        finally:
            bootstrap.install(None)
    for label in ("quiet", "match"):
        extra = out[f"ruled_{label}"]["requests"] - out[f"plain_{label}"]["requests"]
        out[f"per_entry_{label}"] = round(extra / messages, 2)
    return out


def main() -> None:
    args = cli(__doc__.splitlines()[0], stores=True)
    result: dict[str, Any] = {}
    if args.store == "moto":
        result = asyncio.run(latency(args.quick, None))
    else:
        with stack_module.dynamodb_local() as endpoint:
            result = asyncio.run(latency(args.quick, endpoint))
    result["requests"] = requests_per_entry(5 if args.quick else 20)
    emit({"attention": result}, args.out)


if __name__ == "__main__":
    main()
