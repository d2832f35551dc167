"""A tenant of a chosen size, and one call of every action against it (request budgets, bench)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.adapters.dynamo import DirectoryEdge, RecipientItem, WorkitemItem
from chalicelib.adapters.store_keys import recipient_pk, workitem_pk
from tests.support.ddbcount import count_dynamodb
from tests.support.world import Client, World


def bulk_tenant(world: World, tid: str, users: int) -> None:
    """Fill ``tid`` with ``users`` agents (each with one open workitem) in teams of 4 agents + 1 supervisor,
    written directly with batch writes so a large tenant is cheap to build."""
    with RecipientItem.batch_write() as users_batch, DirectoryEdge.batch_write() as edges, WorkitemItem.batch_write() as items:
        for i in range(users):
            agent = f"bulk-agent-{i}"
            sup = f"bulk-sup-{i // 4}"
            users_batch.save(
                RecipientItem(
                    recipient_pk(tid, f"U#{agent}"),
                    "U",
                    tenant_id=tid,
                    user_id=agent,
                    role="agent",
                    name=agent,
                    in_directory=True,
                    workitem_count=1,
                )
            )
            if i % 4 == 0:
                users_batch.save(
                    RecipientItem(
                        recipient_pk(tid, f"U#{sup}"),
                        "U",
                        tenant_id=tid,
                        user_id=sup,
                        role="supervisor",
                        name=sup,
                        in_directory=True,
                    )
                )
            edges.save(
                DirectoryEdge(
                    pk=f"T#{tid}#A#{agent}",
                    sk=f"S#{sup}#T#bulk-{i // 4}",
                    gsi1pk=f"T#{tid}#S#{sup}",
                    gsi1sk=f"A#{agent}#T#bulk-{i // 4}",
                    tenant_id=tid,
                    agent_id=agent,
                    supervisor_id=sup,
                    team_id=f"bulk-{i // 4}",
                )
            )
            wid = f"bulk-wi-{i}"
            items.save(
                WorkitemItem(
                    workitem_pk(tid, wid),
                    "W",
                    tenant_id=tid,
                    workitem_id=wid,
                    channel="chat",
                    agent_id=agent,
                    customer_id=f"c{i}",
                    customer_name="C",
                    status="active",
                    created_at="2026-01-01T00:00:00.000Z",
                    gsi1pk=f"T#{tid}#AGENT#{agent}",
                    gsi1sk=f"2026-01-01T00:00:00.000Z#{wid}",
                    seq=0,
                    customer_seq=0,
                    version=0,
                )
            )


class Cast:
    """The people of one coached chat: an agent, two supervisors (one monitoring), a customer."""

    def __init__(self, world: World, tid: str) -> None:
        world.team(tid=tid, supervisors=("sup-1", "sup-2"), agents=("agent-1", "agent-2"))
        world.admin("PUT", "/admin/templates/tpl-1", {"text": "Need help", "enabled": True}, tid)
        world.assign("wi-1", tid=tid)
        world.assign("wi-2", tid=tid)
        world.assign("wi-3", tid=tid)
        world.assign("wi-voice", channel="voice", tid=tid)
        self.world = world
        self.agent = world.connect("agent-1", "agent", tid)
        self.agent2 = world.connect("agent-2", "agent", tid)
        self.sup = world.connect("sup-1", "supervisor", tid)
        self.sup2 = world.connect("sup-2", "supervisor", tid)
        self.customer = world.connect("cust-wi-1", "customer", tid, wid="wi-1")
        self.sup.ok("monitor.start", workitemId="wi-1")
        self.tip = self.sup.ok("coach.send", workitemId="wi-1", text="first tip")["entry"]["messageId"]
        self.sup.ok("monitor.start", workitemId="wi-voice")
        self.assist: dict[str, Any] = {}
        world.admin("PUT", "/admin/attention-rules/kw", {"kind": "keyword", "phrases": ["refund"]}, tid)
        self.customer.ok("message.send", workitemId="wi-1", text="I want a refund")
        self.alert_id = self.sup.events("attention.raised")[-1]["data"]["alert"]["alertId"]


def actions(cast: Cast) -> list[tuple[str, Callable[[], Any]]]:
    """One representative call of each action, in an order where each is valid."""
    a, s, s2, c = cast.agent, cast.sup, cast.sup2, cast.customer

    def ok(client: Client, action: str, **fields: Any) -> Callable[[], Any]:
        return lambda: client.ok(action, **fields)

    return [
        ("ping", ok(a, "ping")),
        ("auth.refresh", lambda: a.ok("auth.refresh", token=cast.world.token("agent-1", "agent", a.claims["tid"]))),
        ("presence.set", ok(a, "presence.set", state="available")),
        ("agents.list", ok(s, "agents.list")),
        ("agent.watch", ok(s2, "agent.watch", agentId="agent-1")),
        ("agent.unwatch", ok(s2, "agent.unwatch", agentId="agent-1")),
        ("workitems.list", ok(s, "workitems.list", agentId="agent-1")),
        ("monitor.start", ok(s2, "monitor.start", workitemId="wi-1")),
        ("coach.send", ok(s, "coach.send", workitemId="wi-1", text="try the refund flow")),
        ("coach.send with clientMessageId", ok(s, "coach.send", workitemId="wi-1", text="and again", clientMessageId="c-1")),
        ("coach.send repeated", ok(s, "coach.send", workitemId="wi-1", text="and again", clientMessageId="c-1")),
        ("coach.react", ok(a, "coach.react", workitemId="wi-1", messageId=cast.tip, reaction="thumbs_up")),
        ("coach.forward", ok(a, "coach.forward", workitemId="wi-1", messageId=cast.tip)),
        ("message.send", ok(c, "message.send", workitemId="wi-1", text="thanks")),
        ("timeline.get", ok(s, "timeline.get", workitemId="wi-1", after=0, limit=50)),
        ("monitor.stop", ok(s2, "monitor.stop", workitemId="wi-1")),
        ("consult.start", ok(a, "consult.start", workitemId="wi-2", userId="agent-2")),
        ("coaching.end", ok(a, "coaching.end", workitemId="wi-1")),
        ("workitem.transfer", ok(a, "workitem.transfer", workitemId="wi-2", toAgentId="agent-2")),
        ("workitem.end", ok(a, "workitem.end", workitemId="wi-3")),
        ("assist.templates", ok(a, "assist.templates")),
        ("assist.recipients", ok(a, "assist.recipients")),
        ("assist.request", lambda: cast.assist.update(a.ok("assist.request", templateId="tpl-1", to="supervisors"))),
        ("assist.pending", ok(s, "assist.pending")),
        ("assist.claim", lambda: s.ok("assist.claim", assistId=cast.assist["assistId"])),
        ("directory.send", ok(s, "directory.send", toUserId="agent-1", text="on my way")),
        ("directory.unread.get", ok(a, "directory.unread.get")),
        ("directory.read", ok(a, "directory.read", withUserId="sup-1")),
        ("voice.join", ok(a, "voice.join", workitemId="wi-voice")),
        ("voice.monitor", ok(s, "voice.monitor", workitemId="wi-voice")),
        ("voice.whisper", ok(s, "voice.whisper", workitemId="wi-voice")),
        ("voice.barge", ok(s, "voice.barge", workitemId="wi-voice")),
        ("voice.listen", ok(s, "voice.listen", workitemId="wi-voice")),
        ("attention.list", ok(s, "attention.list")),
        ("attention.ack", ok(s2, "attention.ack", alertId=cast.alert_id)),
    ]


# A target the production address check accepts and no delivery reaches (.invalid never resolves, RFC 2606).
SUBSCRIPTION = {"url": "https://hooks.example.invalid/hook", "events": ["*"], "enabled": True}


class _CountedLater:
    """The analytics store, holding each fact until the action's requests are counted. Counting
    coaching in the stream consumer is a cost per coaching event of its own (docs/data-model.md,
    ``tests/integration/test_analytics.py``), not a request of the action or of its pushes."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.held: list[tuple[str, Any]] = []

    def apply(self, tenant_id: str, slot: Any) -> bool:
        self.held.append((tenant_id, slot))
        return True

    def read(self, *args: Any) -> Any:
        return self.store.read(*args)

    def flush(self) -> None:
        held, self.held = self.held, []
        for tenant_id, slot in held:
            self.store.apply(tenant_id, slot)


def measure(world: World, tid: str, bulk_users: int) -> dict[str, int]:
    """The DynamoDB requests of one call of every action (and of every inbound webhook) in ``tid``,
    filled with ``bulk_users`` more users first. Assistance actions count their analytics write (on
    their path); the stream consumer's analytics writes are counted apart (``_CountedLater``)."""
    bulk_tenant(world, tid, bulk_users)
    # Outbound webhooks must cost no request on any action's path (fan-out reads them once, cached).
    world.admin("PUT", "/admin/webhook-subscriptions/all", SUBSCRIPTION, tid)
    cast = Cast(world, tid)
    counts: dict[str, int] = {}
    analytics = world.services.analytics
    later = _CountedLater(analytics.store)
    for name, call in actions(cast):
        analytics.store = later if not name.startswith("assist.") else later.store
        try:
            with count_dynamodb() as log:
                call()
        finally:
            analytics.store = later.store
            later.flush()
        counts[name] = log.total
    with count_dynamodb() as log:
        world.assign("wi-new", tid=tid)
    counts["webhook workitem.assigned"] = log.total
    for kind, data in (
        ("workitem.message", {"workitemId": "wi-new", "from": "customer", "text": "hi"}),
        ("workitem.transferred", {"workitemId": "wi-new", "toAgentId": "agent-2"}),
        ("workitem.ended", {"workitemId": "wi-new", "endedBy": "system"}),
    ):
        with count_dynamodb() as log:
            status, body = world.webhook(kind, data, tid=tid)
        assert status == 200, body
        counts[f"webhook {kind}"] = log.total
    return counts
