// Unit tests of the protocol client (node:test): ordering, dedupe, catch-up, correlation, renewal,
// and every action/event name it uses exists in docs/asyncapi.yaml.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  ACTIONS,
  CoachingClient,
  ENTRY_EVENTS,
  type Entry,
  EVENTS,
  ProtocolError,
  type SocketLike,
  TimelineBuffer,
} from "../src/protocol";

const entry = (seq: number, workitemId = "w1"): Entry => ({
  workitemId,
  seq,
  kind: "customer_message",
  at: "2026-01-01T00:00:00Z",
  text: `m${seq}`,
});

/** A scripted server on the other end of a fake socket. */
class FakeSocket implements SocketLike {
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(
    readonly url: string,
    readonly server: FakeServer,
  ) {}
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  send(data: string): void {
    const frame = JSON.parse(data) as Record<string, unknown>;
    this.sent.push(frame);
    const reply = this.server.answer(frame);
    if (reply) queueMicrotask(() => this.push(reply));
  }
  push(frame: unknown): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  close(code = 1000): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code }));
  }
}

class FakeServer {
  sockets: FakeSocket[] = [];
  timeline: Entry[] = [];
  knowsRefresh = true;
  /** A dead network: frames go nowhere and nothing comes back (the socket stays open). */
  silent = false;
  /** Actions whose next frame gets no reply (lost on the way back), once each. */
  drop = new Set<string>();
  answer(frame: Record<string, unknown>): unknown {
    const requestId = frame.requestId;
    if (this.silent) return undefined;
    if (this.drop.delete(String(frame.action))) return undefined;
    switch (frame.action) {
      case "timeline.get": {
        const after = Number(frame.after);
        const limit = Number(frame.limit ?? 200);
        const rest = this.timeline.filter((e) => e.seq > after);
        return { type: "ack", requestId, data: { entries: rest.slice(0, limit), hasMore: rest.length > limit } };
      }
      case "auth.refresh":
        return this.knowsRefresh
          ? { type: "ack", requestId, data: { exp: 0 } }
          : { type: "error", requestId, error: { code: "invalid", message: "unknown action" } };
      case "coach.send":
        return { type: "error", requestId, error: { code: "conflict", message: "nobody is monitoring" } };
      case "agent.watch":
        return { type: "ack", requestId, data: { workitems: [] } };
      case "assist.recipients": {
        // Two pages: each list continues on the second one.
        const second = frame.cursor === "p2";
        return {
          type: "ack",
          requestId,
          data: second
            ? { supervisors: [{ userId: "s2" }], agents: [], nextCursor: null }
            : { supervisors: [{ userId: "s1" }], agents: [{ userId: "a1" }], nextCursor: "p2" },
        };
      }
      default:
        return { type: "ack", requestId, data: {} };
    }
  }
  factory = (url: string): SocketLike => {
    const socket = new FakeSocket(url, this);
    this.sockets.push(socket);
    queueMicrotask(() => socket.open());
    return socket;
  };
  get last(): FakeSocket {
    const socket = this.sockets.at(-1);
    assert.ok(socket);
    return socket;
  }
  event(name: string, data: unknown): void {
    this.last.push({ type: "event", event: name, data, at: "2026-01-01T00:00:00Z" });
  }
}

function jwt(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "HS256" })}.${b64(claims)}.sig`;
}

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));
/** Waits until ``done()`` holds or ``ms`` pass (timers on a loaded machine fire late: wait on the state, not a fixed time). */
async function until(done: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await tick(5);
}

function client(server: FakeServer, extra: Partial<ConstructorParameters<typeof CoachingClient>[0]> = {}) {
  const c = new CoachingClient({
    url: "ws://test/ws",
    token: jwt({ sub: "a", exp: Math.floor(Date.now() / 1000) + 3600, iat: Math.floor(Date.now() / 1000) }),
    socketFactory: server.factory,
    reconnectMinMs: 5,
    reconnectMaxMs: 20,
    ...extra,
  });
  const delivered: number[] = [];
  c.onEntries((_, entries) => delivered.push(...entries.map((e) => e.seq)));
  return { c, delivered };
}

test("names used by the client exist in docs/asyncapi.yaml", () => {
  const doc = readFileSync(new URL("../../docs/asyncapi.yaml", import.meta.url), "utf8");
  const actions = new Set([...doc.matchAll(/^\s*x-action:\s*(\S+)/gm)].map((m) => m[1]));
  const events = new Set([...doc.matchAll(/^\s*x-event:\s*(\S+)/gm)].map((m) => m[1]));
  assert.ok(actions.size > 20 && events.size > 10, "the document lists its actions and events");
  assert.deepEqual(
    ACTIONS.filter((a) => !actions.has(a)),
    [],
  );
  assert.deepEqual(
    EVENTS.filter((e) => !events.has(e)),
    [],
  );
  for (const name of ENTRY_EVENTS) assert.ok((EVENTS as readonly string[]).includes(name), name);
});

test("the client's event list holds every event the server documents, each once", () => {
  const doc = readFileSync(new URL("../../docs/asyncapi.yaml", import.meta.url), "utf8");
  const documented = [...doc.matchAll(/^\s*x-event:\s*(\S+)/gm)].map((m) => m[1]);
  const known = new Set<string>(EVENTS);
  assert.deepEqual(
    documented.filter((e) => !known.has(e)),
    [],
    "events in docs/asyncapi.yaml missing from EVENTS in src/protocol.ts",
  );
  assert.equal(known.size, EVENTS.length, "EVENTS names an event twice");
});

test("the buffer drops duplicates and holds entries after a gap until it is filled", () => {
  const buffer = new TimelineBuffer();
  assert.deepEqual(
    buffer.offer([entry(1), entry(2), entry(2), entry(1)]).map((e) => e.seq),
    [1, 2],
  );
  assert.deepEqual(buffer.offer([entry(5), entry(4)]), []);
  assert.equal(buffer.missing, true);
  assert.deepEqual(
    buffer.offer([entry(3), entry(4)]).map((e) => e.seq),
    [3, 4, 5],
  );
  assert.equal(buffer.missing, false);
  assert.equal(buffer.lastSeq, 5);
});

test("requests are correlated by requestId; errors reject with the server's code", async () => {
  const server = new FakeServer();
  const { c } = client(server);
  c.connect();
  const [ok, refused] = await Promise.allSettled([
    c.request("ping"),
    c.request("coach.send", { workitemId: "w1", text: "hi" }),
  ]);
  assert.equal(ok.status, "fulfilled");
  assert.equal(refused.status, "rejected");
  assert.ok(refused.status === "rejected" && refused.reason instanceof ProtocolError);
  assert.equal((refused as PromiseRejectedResult).reason.code, "conflict");
  const ids = server.last.sent.map((f) => f.requestId);
  assert.equal(new Set(ids).size, ids.length);
  assert.ok(server.last.sent.every((f) => typeof f.action === "string"));
  c.close();
});

test("pushed entries arrive once and in order; a gap is filled with timeline.get", async () => {
  const server = new FakeServer();
  server.timeline = [1, 2, 3, 4].map((n) => entry(n));
  const { c, delivered } = client(server);
  c.connect();
  await c.track("w1", { entries: [entry(1)] });
  server.event("message.received", { entry: entry(1) }); // duplicate of the initial one
  server.event("message.received", { entry: entry(4) }); // 2 and 3 are missing
  await tick(5);
  assert.deepEqual(delivered, [1, 2, 3, 4]);
  server.event("message.received", { entry: entry(4) });
  server.event("message.received", { entry: entry(5) });
  await tick(5);
  assert.deepEqual(delivered, [1, 2, 3, 4, 5]);
  const asked = server.sockets[0]?.sent.filter((f) => f.action === "timeline.get").map((f) => f.after);
  assert.deepEqual(asked, [1]);
  c.close();
});

test("on() hands each listener its event's data and stops when asked; message.delivery is no new entry", async () => {
  const server = new FakeServer();
  server.timeline = [entry(1)];
  const { c, delivered } = client(server);
  c.connect();
  await c.track("w1");
  const deliveries: string[] = [];
  const stop = c.on("message.delivery", (data, at) => deliveries.push(`${data.messageId}:${data.delivery}:${at}`));
  const claims: string[] = [];
  c.on("assist.claimed", (data) => claims.push(data.supervisorId));
  const failed = { ...entry(1), messageId: "m1", delivery: "failed" };
  server.event("message.delivery", { workitemId: "w1", messageId: "m1", seq: 1, delivery: "failed", entry: failed });
  server.event("assist.claimed", { assistId: "a1", supervisorId: "sup1" });
  await tick(5);
  stop();
  server.event("message.delivery", { workitemId: "w1", messageId: "m1", seq: 1, delivery: "sent", entry: failed });
  await tick(5);
  assert.deepEqual(deliveries, ["m1:failed:2026-01-01T00:00:00Z"]);
  assert.deepEqual(claims, ["sup1"]);
  assert.deepEqual(delivered, [1]); // the entry went through ordering once, from timeline.get
  c.close();
});

test("after a dropped socket the client reconnects, re-watches and catches up page by page", async () => {
  const server = new FakeServer();
  server.timeline = [entry(1), entry(2)];
  const { c, delivered } = client(server);
  const states: string[] = [];
  c.onState((s) => states.push(s));
  c.connect();
  await c.track("w1");
  await c.watch("agent-1");
  assert.deepEqual(delivered, [1, 2]);
  c.simulateDrop(10);
  server.timeline = Array.from({ length: 450 }, (_, i) => entry(i + 1)); // written while away
  await tick(60);
  assert.equal(c.state, "live");
  assert.deepEqual(states, ["live", "reconnecting", "live"]);
  assert.deepEqual(
    delivered,
    Array.from({ length: 450 }, (_, i) => i + 1),
  );
  const second = server.sockets[1]?.sent ?? [];
  assert.deepEqual(
    second.filter((f) => f.action === "agent.watch").map((f) => f.agentId),
    ["agent-1"],
  );
  assert.deepEqual(
    second.filter((f) => f.action === "timeline.get").map((f) => f.after),
    [2, 202, 402],
  );
  c.close();
});

test("token renewal: auth.refresh keeps the socket; a server without it gets a new connection", async () => {
  for (const knowsRefresh of [true, false]) {
    const server = new FakeServer();
    server.knowsRefresh = knowsRefresh;
    const now = Math.floor(Date.now() / 1000);
    const fresh = jwt({ sub: "a", exp: now + 7200, iat: now });
    const { c } = client(server, { renewToken: async () => fresh });
    c.connect();
    await tick(1);
    assert.equal(await c.refresh(), knowsRefresh ? "auth.refresh" : "reconnect");
    assert.equal(c.token, fresh);
    await tick(60);
    assert.equal(c.state, "live");
    assert.equal(server.sockets.length, knowsRefresh ? 1 : 2);
    if (!knowsRefresh) assert.ok(server.last.url.endsWith(encodeURIComponent(fresh)));
    c.close();
  }
});

test("without a socket (the admin's screen) the token is still renewed before it expires, and no socket opens", async () => {
  const server = new FakeServer();
  const now = Math.floor(Date.now() / 1000);
  const fresh = jwt({ sub: "a", exp: now + 7200, iat: now });
  const renewed: unknown[] = [];
  // The clock reads one minute before the first token's renewal lead: the timer fires after its 1 s floor.
  const { c } = client(server, {
    renewToken: async () => fresh,
    now: () => Date.now() + (3600 - 120 - 60) * 1000 + 59_000,
  });
  c.on("token.renewed", (data) => renewed.push(data.how));
  c.keepTokenFresh();
  await tick(1300);
  assert.equal(c.token, fresh);
  assert.deepEqual(renewed, ["adopted"]);
  assert.equal(server.sockets.length, 0);
  c.close();
});

test("requestAll follows nextCursor and concatenates every list", async () => {
  const server = new FakeServer();
  const { c } = client(server);
  c.connect();
  const all = await c.requestAll<{ supervisors: { userId: string }[]; agents: { userId: string }[] }>(
    "assist.recipients",
  );
  assert.deepEqual(
    all.supervisors.map((s) => s.userId),
    ["s1", "s2"],
  );
  assert.deepEqual(
    all.agents.map((a) => a.userId),
    ["a1"],
  );
  assert.deepEqual(
    server.last.sent.map((f) => f.cursor),
    [undefined, "p2"],
  );
  assert.ok(!("nextCursor" in all));
  c.close();
});

test("an entry pushed before the workitem was tracked is fetched when tracking starts", async () => {
  const server = new FakeServer();
  server.timeline = [1, 2, 3].map((n) => entry(n));
  const { c, delivered } = client(server);
  c.connect();
  await tick(1);
  server.event("message.received", { entry: entry(3) }); // arrives before the monitor.start ack
  await tick(1);
  await c.track("w1", { entries: [entry(1), entry(2)], hasMore: false });
  assert.deepEqual(delivered, [1, 2, 3]);
  c.close();
});

test("a silent socket stops counting as live within two heartbeats, and the client reconnects", async () => {
  const server = new FakeServer();
  const { c } = client(server, { heartbeatMs: 20 });
  const states: string[] = [];
  c.onState((s) => states.push(s));
  c.connect();
  await tick(5);
  assert.equal(c.state, "live");
  try {
    server.silent = true;
    await until(() => states.includes("reconnecting"), 2_000);
    assert.ok(states.includes("reconnecting"), `states: ${states}`);
    assert.ok(server.sockets[0].sent.some((f) => f.action === "ping"), "it asked before giving up");
    server.silent = false;
    await until(() => c.state === "live" && server.sockets.length >= 2, 2_000);
    assert.equal(c.state, "live");
    assert.ok(server.sockets.length >= 2);
  } finally {
    c.close();
  }
});

test("a send whose reply is lost is sent again with the same clientMessageId until it is answered", async () => {
  const server = new FakeServer();
  const { c } = client(server, { resendMs: 20, heartbeatMs: 0 });
  c.connect();
  await tick(5);
  server.drop.add("message.send");
  const reply = await c.send("message.send", { workitemId: "w1", text: "hi" });
  assert.deepEqual(reply, {});
  const sends = server.sockets.flatMap((s) => s.sent).filter((f) => f.action === "message.send");
  assert.equal(sends.length, 2);
  assert.ok(typeof sends[0].clientMessageId === "string" && sends[0].clientMessageId === sends[1].clientMessageId);
  // A refusal is final: not sent again.
  await assert.rejects(c.send("coach.send", { workitemId: "w1", text: "x" }), (e: ProtocolError) => e.code === "conflict");
  assert.equal(server.sockets.flatMap((s) => s.sent).filter((f) => f.action === "coach.send").length, 1);
  c.close();
});

test("fast delivery: the socket asks for it, out-of-order and second copies are ordered and dropped, no timeline.get while copies close the gap", async () => {
  const server = new FakeServer();
  server.timeline = [entry(1)];
  const { c, delivered } = client(server, { delivery: "fast", gapWaitMs: 40 });
  c.connect();
  await c.track("w1", { entries: [entry(1)] });
  server.timeline = [1, 2, 3].map((n) => entry(n)); // committed since
  assert.match(server.last.url, /[?&]delivery=fast(&|$)/);
  const asked = () => server.last.sent.filter((f) => f.action === "timeline.get").length;
  const before = asked();
  server.event("coach.message", { entry: entry(3) }); // the handler's post of 3 overtakes 2's
  server.event("coach.message", { entry: entry(2) });
  server.event("coach.message", { entry: entry(2) }); // the ordered path's copies
  server.event("coach.message", { entry: entry(3) });
  await tick(60);
  assert.deepEqual(delivered, [1, 2, 3]);
  assert.equal(asked(), before, "the gap closed by itself: nothing asked");
  c.close();
});

test("fast delivery: a gap that stays open is filled with timeline.get after gapWaitMs, not before", async () => {
  const server = new FakeServer();
  server.timeline = [entry(1)];
  const { c, delivered } = client(server, { delivery: "fast", gapWaitMs: 50 });
  c.connect();
  await c.track("w1", { entries: [entry(1)] });
  server.timeline = [1, 2, 3].map((n) => entry(n)); // committed since
  const asked = () => server.last.sent.filter((f) => f.action === "timeline.get").map((f) => f.after);
  const before = asked().length;
  server.event("coach.message", { entry: entry(3) }); // 2's handler died before posting
  server.event("coach.message", { entry: entry(3) });
  await tick(20);
  assert.deepEqual(delivered, [1]);
  assert.equal(asked().length, before, "still waiting for the gap to close by itself");
  await tick(60);
  assert.deepEqual(delivered, [1, 2, 3]);
  assert.deepEqual(asked().slice(before), [1], "one timeline.get for the gap, after the last delivered seq");
  c.close();
});

test("an ordered socket (the default) names no delivery mode", async () => {
  const server = new FakeServer();
  const { c } = client(server);
  c.connect();
  await tick(5);
  assert.doesNotMatch(server.last.url, /delivery=/);
  c.close();
});
