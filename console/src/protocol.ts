/**
 * A typed client for the coaching WebSocket protocol (docs/asyncapi.yaml).
 *
 * Self-contained (no UI, no dependencies) so integrators can copy it:
 * - connect with `?token=`, reconnect by itself with backoff, report the connection state;
 * - correlate every action with its one reply by `requestId` (ack -> resolve, error -> reject);
 * - deliver each workitem's timeline entries exactly once and in `seq` order: duplicates are dropped,
 *   a gap triggers `timeline.get {after}` and later entries wait until it is filled;
 * - with `delivery: "fast"`, open the socket with `?delivery=fast`: the server then posts each entry as
 *   soon as it is committed, possibly out of order and twice (docs/asyncapi.yaml, "Fast delivery"), and
 *   a gap is given `gapWaitMs` to close by itself (a late or second copy) before `timeline.get` asks;
 * - after a reconnect, catch up every tracked timeline with `timeline.get {after: <last seq>}`
 *   and re-send the connection-scoped subscriptions (`agent.watch`);
 * - renew the token before it expires with `auth.refresh`, or, when the server does not know that
 *   action, by reconnecting with the new token.
 */

/** Every action this client may send (a unit test checks each against docs/asyncapi.yaml). */
export const ACTIONS = [
  "ping",
  "auth.refresh",
  "presence.set",
  "agents.list",
  "agent.watch",
  "agent.unwatch",
  "workitems.list",
  "monitor.start",
  "monitor.stop",
  "coaching.end",
  "coach.send",
  "coach.react",
  "coach.forward",
  "message.send",
  "workitem.transfer",
  "workitem.end",
  "consult.start",
  "timeline.get",
  "assist.templates",
  "assist.recipients",
  "assist.request",
  "assist.claim",
  "assist.pending",
  "directory.send",
  "directory.unread.get",
  "directory.read",
  "voice.join",
  "voice.monitor",
  "voice.whisper",
  "voice.barge",
  "voice.listen",
  "voice.pause_transcript",
  "voice.resume_transcript",
  "attention.list",
  "attention.ack",
] as const;
export type Action = (typeof ACTIONS)[number];

/**
 * Every event the server pushes (`docs/asyncapi.yaml`, `x-event`), one name a line. Unit tests compare
 * it with the document and with the backend's list of event names; {@link EventData} gives each its
 * payload type.
 */
export const EVENTS = [
  "presence.changed",
  "workitem.assigned",
  "workitem.updated",
  "workitem.ended",
  "coaching.joined",
  "coaching.left",
  "coaching.ended",
  "coach.message",
  "coach.reaction",
  "coach.forwarded",
  "message.received",
  "message.delivery",
  "consult.requested",
  "assist.requested",
  "assist.claimed",
  "assist.escalated",
  "directory.message",
  "directory.unread",
  "voice.coach_room",
  "voice.coach_room_closed",
  "attention.raised",
  "attention.acked",
  "attention.cleared",
  "entry.sentiment",
  "transcript.segment",
  "transcript.partial",
  "transcript.paused",
  "transcript.resumed",
  "transcript.unavailable",
  "voice.mode",
] as const;
export type EventName = (typeof EVENTS)[number];

/** The `data` of each pushed event (the schemas of docs/asyncapi.yaml). */
export interface ServerEventData {
  "presence.changed": { userId: string; state: Presence };
  "workitem.assigned": { workitem: Workitem };
  "workitem.updated": { workitem: Workitem };
  "workitem.ended": { workitem: Workitem };
  "coaching.joined": { workitemId: string; supervisorId: string; supervisorName?: string; entry: Entry };
  "coaching.left": { workitemId: string; supervisorId: string; supervisorName?: string; entry: Entry };
  "coaching.ended": { workitemId: string; reason: string; entry: Entry };
  "coach.message": { entry: Entry };
  "coach.reaction": { entry: Entry };
  "coach.forwarded": { entry: Entry };
  "message.received": { entry: Entry };
  /** How an agent message to an SMS or social customer fared (its entry was delivered before). */
  "message.delivery": { workitemId: string; messageId: string; seq: number; delivery: "sent" | "failed"; reason?: string; entry: Entry };
  "consult.requested": { consultId: string; workitemId: string; agentId: string };
  "assist.requested": { assistId: string; agentId: string; text: string; workitemId?: string };
  "assist.claimed": { assistId: string; supervisorId: string; supervisorName?: string };
  "assist.escalated": { assistId: string; agentId: string; text: string; workitemId?: string; stage: "team" | "admins" };
  "directory.message": { messageId: string; fromUserId: string; text: string; replyTo?: string };
  "directory.unread": { count: number };
  "voice.coach_room": Room & { workitemId: string };
  "voice.coach_room_closed": { workitemId: string };
  "attention.raised": { alert: Alert };
  "attention.acked": { alert: Alert };
  "attention.cleared": { alert: Alert };
  "entry.sentiment": { workitemId: string; seq: number; sentiment: "positive" | "negative" | "neutral" | "mixed" };
  /** A final line of a voice call's live transcript (an entry of kind `transcript`). */
  "transcript.segment": { entry: Entry };
  /** Words of an utterance not yet final: never stored, no `seq`; its segment replaces it. */
  "transcript.partial": { workitemId: string; utteranceId: string; speaker: "agent" | "customer"; text: string };
  "transcript.paused": { workitemId: string; state: "paused" };
  "transcript.resumed": { workitemId: string; state: "running" };
  "transcript.unavailable": { workitemId: string; state: "unavailable"; reason?: string };
  "voice.mode": { workitemId: string; supervisorId: string; supervisorName: string; mode: "listen" | "whisper" | "barge"; entry: Entry };
}

/** An attention alert (docs/attention.md). */
export interface Alert {
  alertId: string;
  workitemId: string;
  agentId: string;
  ruleId: string;
  kind: "keyword" | "sentiment" | "customer_waiting" | "silence" | "handle_time";
  severity: number;
  raisedAt: string;
  reason: string;
  state: "open" | "acked" | "cleared";
  ackedBy?: string;
  ackedAt?: string;
  clearedReason?: "resolved" | "ended" | "rule_deleted";
}

/** The client's own notices, delivered like events. */
export interface LocalEventData {
  /** `agent.watch` sent again after a reconnect, with its reply. */
  "agent.watch.resumed": { agentId: string; workitems: Workitem[] };
  /** A new token is in use (`how`: "auth.refresh", "reconnect", "adopted"). */
  "token.renewed": { how: string };
}

/** What {@link CoachingClient.on} accepts: server events plus the client's own notices. */
export type ClientEvent = EventName | keyof LocalEventData;
/** The payload of each event {@link CoachingClient.on} delivers (every name in EVENTS must have one). */
export type EventData = { [E in EventName]: ServerEventData[E] } & LocalEventData;
export type EventListener<E extends ClientEvent> = (data: EventData[E], at?: string) => void;

/**
 * Events whose `data.entry` is a new timeline entry of `data.entry.workitemId`. Not `message.delivery`:
 * its entry has been delivered already and only carries the channel's answer.
 */
export const ENTRY_EVENTS: ReadonlySet<string> = new Set([
  "coaching.joined",
  "coaching.left",
  "coaching.ended",
  "coach.message",
  "coach.reaction",
  "coach.forwarded",
  "message.received",
  "voice.mode",
  "transcript.segment",
]);

export type Channel = "chat" | "sms" | "social" | "voice" | "email";
export type Presence = "available" | "not_ready" | "offline";
export type Role = "admin" | "supervisor" | "agent" | "customer";

export interface Workitem {
  workitemId: string;
  channel: Channel;
  agentId: string;
  customer: { id: string; name: string };
  subject: string;
  status: "active" | "ended";
  createdAt: string;
  coaching: { active: boolean; supervisors: string[] };
  lastActivityAt?: string;
  waitingSince?: string | null;
  monitoredBy?: { userId: string; name: string }[];
  lastMessage?: { author: "customer" | "agent"; text: string } | null;
}

/** One unclaimed request of `assist.pending`. */
export interface PendingRequest {
  assistId: string;
  agentId: string;
  agentName: string;
  text: string;
  workitemId?: string;
  requestedAt: string;
  escalated: boolean;
}

export interface Entry {
  workitemId: string;
  seq: number;
  kind: string;
  at: string;
  authorId?: string;
  authorRole?: string;
  messageId?: string;
  text?: string;
  forwardedFrom?: string;
  reaction?: "thumbs_up" | "thumbs_down" | null;
  [extra: string]: unknown;
}

export interface Room {
  meetingId: string;
  attendeeId: string;
  joinToken: string;
  mediaRegion?: string;
  capabilities?: { audio: string; video: string; content: string };
  [extra: string]: unknown;
}

export interface ErrorBody {
  code: string;
  message: string;
}

/** The server answered an action with an `error` frame (or the client gave up on it). */
export class ProtocolError extends Error {
  readonly code: string;
  readonly action: string;
  constructor(action: string, body: ErrorBody) {
    super(`${action}: ${body.code}: ${body.message}`);
    this.name = "ProtocolError";
    this.code = body.code;
    this.action = action;
  }
}

export type ConnectionState = "connecting" | "live" | "reconnecting" | "closed";

export interface PushEvent {
  event: string;
  data: Record<string, unknown>;
  at?: string;
}

/** The parts of the browser's WebSocket this client uses (so tests can pass a fake). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type SocketFactory = (url: string) => SocketLike;

export interface ClientOptions {
  /** `ws(s)://host/ws` without the token. */
  url: string;
  /** The current bearer token. */
  token: string;
  /** Obtains a fresh token for the same user (e.g. the identity provider's refresh); optional. */
  renewToken?: (current: string) => Promise<string>;
  socketFactory?: SocketFactory;
  /** Milliseconds an action may wait for its reply before it is rejected with `timeout`. */
  requestTimeoutMs?: number;
  /** First and longest reconnect delay, in milliseconds (doubled after each failed attempt, jittered). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** Seconds before `exp` at which the token is renewed (capped at half the token's lifetime). */
  refreshLeadSeconds?: number;
  /** Milliseconds between keep-alive `ping`s (API Gateway closes idle sockets after 10 minutes). */
  pingIntervalMs?: number;
  /**
   * Liveness: after this many milliseconds without any frame from the server a `ping` is sent, and
   * without its reply within as long again the connection counts as lost (a dead network never closes
   * the socket by itself). 0 turns it off.
   */
  heartbeatMs?: number;
  /** Milliseconds between attempts of a send that may be repeated ({@link CoachingClient.send}). */
  resendMs?: number;
  /**
   * `ordered` (the default): the server sends each workitem's entries once and in `seq` order.
   * `fast`: it sends them as soon as they are committed, maybe out of order or twice; this client
   * orders and de-duplicates them by `seq` either way.
   */
  delivery?: Delivery;
  /**
   * Milliseconds a gap in `seq` may stay open before `timeline.get` fills it. Default: 0 for `ordered`
   * (a gap means a skipped push), {@link FAST_GAP_WAIT_MS} for `fast` (the missing entry is usually
   * just behind, or comes as the ordered path's copy).
   */
  gapWaitMs?: number;
  now?: () => number;
}

export type Delivery = "ordered" | "fast";

/**
 * How long a fast client lets a gap close by itself before it asks: an out-of-order post arrives within
 * milliseconds, the ordered path's copy (the backstop) within about a second on AWS at p99
 * (docs/performance.md), so 1.5 s asks only when both are lost.
 */
export const FAST_GAP_WAIT_MS = 1500;

interface Pending {
  action: string;
  resolve: (data: Record<string, unknown>) => void;
  reject: (error: ProtocolError) => void;
  timer: ReturnType<typeof setTimeout>;
}

type EntryListener = (workitemId: string, entries: Entry[]) => void;
/** A listener as stored: frames are checked by the server against the schemas {@link EventData} names. */
type RawListener = (data: Record<string, unknown>, at?: string) => void;

/**
 * Per-workitem ordering: delivers each `seq` once, in order, with no gap.
 * `offer` returns the entries that became deliverable; `missing` says a gap waits for catch-up.
 */
export class TimelineBuffer {
  lastSeq: number;
  private readonly held = new Map<number, Entry>();
  constructor(lastSeq = 0) {
    this.lastSeq = lastSeq;
  }

  offer(entries: Iterable<Entry>): Entry[] {
    for (const entry of entries) {
      if (typeof entry.seq !== "number" || entry.seq <= this.lastSeq) continue; // duplicate or old
      if (!this.held.has(entry.seq)) this.held.set(entry.seq, entry);
    }
    const ready: Entry[] = [];
    for (;;) {
      const next = this.held.get(this.lastSeq + 1);
      if (!next) break;
      this.held.delete(next.seq);
      this.lastSeq = next.seq;
      ready.push(next);
    }
    return ready;
  }

  /** True while some entry after a gap is held back. */
  get missing(): boolean {
    return this.held.size > 0;
  }
}

/** The claims of a JWT, without verifying it (the server does that). */
export function tokenClaims(token: string): Record<string, unknown> {
  const part = token.split(".")[1] ?? "";
  const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  try {
    const json =
      typeof atob === "function"
        ? decodeURIComponent(
            Array.from(atob(padded), (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`).join(""),
          )
        : "";
    return JSON.parse(json) as Record<string, unknown>;
  } catch {
    return {};
  }
}

const OPEN = 1;

export class CoachingClient {
  state: ConnectionState = "connecting";
  token: string;
  /** Unix seconds at which the current token expires (0 when unknown). */
  expiresAt = 0;
  /** How the last renewal went: "auth.refresh", "reconnect" (server without auth.refresh), or an error. */
  lastRefresh = "";

  private readonly opts: Required<Omit<ClientOptions, "renewToken" | "gapWaitMs">> & { gapWaitMs: number } & Pick<
      ClientOptions,
      "renewToken"
    >;
  private readonly gapTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private socket: SocketLike | null = null;
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly timelines = new Map<string, TimelineBuffer>();
  private readonly catchingUp = new Set<string>();
  private readonly watched = new Set<string>();
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private readonly eventListeners = new Map<string, Set<RawListener>>();
  private readonly entryListeners = new Set<EntryListener>();
  private attempts = 0;
  private stopped = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private connectedOnce = false;
  private holdUntil = 0;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private lastFrameAt = 0;
  private nextClientId = 1;

  constructor(options: ClientOptions) {
    this.opts = {
      socketFactory: (url: string) => new WebSocket(url) as unknown as SocketLike,
      requestTimeoutMs: 15_000,
      reconnectMinMs: 500,
      reconnectMaxMs: 10_000,
      refreshLeadSeconds: 120,
      pingIntervalMs: 5 * 60_000,
      heartbeatMs: 3_000,
      resendMs: 5_000,
      now: () => Date.now(),
      delivery: "ordered",
      ...options,
      gapWaitMs: options.gapWaitMs ?? (options.delivery === "fast" ? FAST_GAP_WAIT_MS : 0),
    };
    this.token = options.token;
    this.expiresAt = Number(tokenClaims(this.token).exp ?? 0);
  }

  // -- lifecycle ---------------------------------------------------------------------------------

  connect(): this {
    this.stopped = false;
    this.open();
    return this;
  }

  close(): void {
    this.stopped = true;
    this.clearTimers();
    this.socket?.close(1000, "bye");
    this.socket = null;
    this.rejectAll("closed", "the client was closed");
    this.setState("closed");
  }

  /**
   * Drop the socket as a network failure would, staying away at least `outageMs` (the client then
   * reconnects and catches up by itself). For demos and tests of the recovery path.
   */
  simulateDrop(outageMs = 0): void {
    this.holdUntil = this.opts.now() + outageMs;
    this.socket?.close(4000, "dropped");
  }

  private open(): void {
    const mode = this.opts.delivery === "fast" ? "&delivery=fast" : "";
    const url = `${this.opts.url}?token=${encodeURIComponent(this.token)}${mode}`;
    this.setState(this.connectedOnce ? "reconnecting" : "connecting");
    const socket = this.opts.socketFactory(url);
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.attempts = 0;
      const again = this.connectedOnce;
      this.connectedOnce = true;
      this.setState("live");
      this.scheduleRefresh();
      this.pingTimer = setInterval(() => {
        this.request("ping").catch(() => undefined);
      }, this.opts.pingIntervalMs);
      this.lastFrameAt = this.opts.now();
      if (this.opts.heartbeatMs > 0) this.heartbeatTimer = setInterval(() => this.heartbeat(socket), this.opts.heartbeatMs);
      if (again) void this.resume();
    };
    socket.onmessage = (ev) => {
      if (this.socket !== socket) return;
      this.lastFrameAt = this.opts.now();
      this.receive(String(ev.data));
    };
    socket.onerror = () => undefined; // onclose follows
    socket.onclose = () => this.lost(socket);
  }

  /** The socket is gone (closed, or silent past the heartbeat): reject what waits, reconnect later. */
  private lost(socket: SocketLike): void {
    if (this.socket !== socket) return;
    this.socket = null;
    this.clearTimers();
    this.rejectAll("disconnected", "the connection closed before the reply arrived");
    if (socket.readyState === OPEN) socket.close(4001, "no heartbeat");
    if (this.stopped) return;
    this.setState("reconnecting");
    const base = Math.min(this.opts.reconnectMaxMs, this.opts.reconnectMinMs * 2 ** this.attempts);
    this.attempts += 1;
    const delay = Math.max(base / 2 + Math.random() * (base / 2), this.holdUntil - this.opts.now());
    this.reconnectTimer = setTimeout(() => this.open(), delay);
  }

  /** Heard nothing for a while: ask, and count the connection lost if the answer does not come. */
  private heartbeat(socket: SocketLike): void {
    const quiet = this.opts.now() - this.lastFrameAt;
    if (quiet >= 2 * this.opts.heartbeatMs) this.lost(socket);
    else if (quiet >= this.opts.heartbeatMs && this.state === "live") this.request("ping").catch(() => undefined);
  }

  /** The browser says the network is gone: the connection is not live, whatever the socket says. */
  networkLost(): void {
    if (this.socket) this.lost(this.socket);
  }

  /** After a reconnect: re-watch agents and catch up every tracked timeline. */
  private async resume(): Promise<void> {
    for (const agentId of this.watched) {
      try {
        const data = await this.requestAll("agent.watch", { agentId });
        this.emit("agent.watch.resumed", { agentId, ...data });
      } catch {
        // the permission may be gone; the UI learns it from its own calls
      }
    }
    await Promise.all([...this.timelines.keys()].map((id) => this.catchUp(id)));
  }

  private clearTimers(): void {
    for (const timer of this.gapTimers.values()) clearTimeout(timer);
    this.gapTimers.clear();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.reconnectTimer = this.refreshTimer = this.pingTimer = this.heartbeatTimer = null;
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }

  // -- requests ----------------------------------------------------------------------------------

  /** Send one action; resolves with the ack's `data`, rejects with a {@link ProtocolError}. */
  async request<T = Record<string, unknown>>(action: Action, fields: Record<string, unknown> = {}, timeoutMs?: number): Promise<T> {
    if (this.state !== "live" && this.state !== "closed") await this.untilLive(action);
    const socket = this.socket;
    if (!socket || socket.readyState !== OPEN || this.state !== "live") {
      throw new ProtocolError(action, { code: "disconnected", message: "not connected" });
    }
    const requestId = `r${this.nextId++}`;
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new ProtocolError(action, { code: "timeout", message: "no reply in time" }));
      }, timeoutMs ?? this.opts.requestTimeoutMs);
      this.pending.set(requestId, {
        action,
        resolve: (data) => {
          this.ingestReply(data);
          resolve(data as T);
        },
        reject,
        timer,
      });
      socket.send(JSON.stringify({ ...fields, action, requestId }));
    });
  }

  /**
   * A message send (`coach.send`, `message.send`) that may be repeated: it carries a `clientMessageId`,
   * and while its outcome is unknown (no reply in time, or the connection dropped) it is sent again
   * with the same id once the connection is live, so it lands exactly once. Rejects only with the
   * server's own refusal (or when the client is closed).
   */
  async send<T = Record<string, unknown>>(action: Action, fields: Record<string, unknown>): Promise<T> {
    const clientMessageId = `${this.opts.now().toString(36)}-${(this.nextClientId++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    for (;;) {
      try {
        return await this.request<T>(action, { ...fields, clientMessageId }, this.opts.resendMs);
      } catch (error) {
        const code = error instanceof ProtocolError ? error.code : "";
        if ((code !== "timeout" && code !== "disconnected") || this.stopped) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  /**
   * An action whose reply may be paged (`{limit?, cursor?}` → `nextCursor`): follows `nextCursor`
   * and concatenates every array field of the pages (other fields come from the last page).
   */
  async requestAll<T = Record<string, unknown>>(
    action: Action,
    fields: Record<string, unknown> = {},
    maxPages = 100,
  ): Promise<T> {
    const merged: Record<string, unknown> = {};
    let cursor: unknown;
    for (let page = 0; page < maxPages; page++) {
      const data = await this.request(action, cursor ? { ...fields, cursor } : fields);
      for (const [key, value] of Object.entries(data)) {
        if (key === "nextCursor") continue;
        merged[key] = Array.isArray(value) ? [...((merged[key] as unknown[]) ?? []), ...value] : value;
      }
      cursor = data.nextCursor;
      if (!cursor) break;
    }
    return merged as T;
  }

  /** Resolves when the socket is open; rejects with `disconnected` after the request timeout. */
  private untilLive(action: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new ProtocolError(action, { code: "disconnected", message: "not connected" }));
      }, this.opts.requestTimeoutMs);
      const off = this.onState((state) => {
        if (state === "live" || state === "closed") {
          clearTimeout(timer);
          off();
          resolve();
        }
      });
    });
  }

  private rejectAll(code: string, message: string): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new ProtocolError(pending.action, { code, message }));
      this.pending.delete(id);
    }
  }

  private receive(raw: string): void {
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return;
    }
    if (frame.type === "ack" || frame.type === "error") {
      const pending = this.pending.get(String(frame.requestId));
      if (!pending) return;
      this.pending.delete(String(frame.requestId));
      clearTimeout(pending.timer);
      if (frame.type === "ack") pending.resolve((frame.data as Record<string, unknown>) ?? {});
      else pending.reject(new ProtocolError(pending.action, frame.error as ErrorBody));
      return;
    }
    if (frame.type === "event") {
      const name = String(frame.event);
      const data = (frame.data as Record<string, unknown>) ?? {};
      if (ENTRY_EVENTS.has(name) && data.entry) this.ingest([data.entry as Entry]);
      this.emit(name, data, frame.at as string | undefined);
    }
  }

  /** An ack's own entries (`{entry}` or `{entries}` of a tracked workitem) go through ordering too. */
  private ingestReply(data: Record<string, unknown>): void {
    const entries: Entry[] = [];
    if (data.entry && typeof data.entry === "object") entries.push(data.entry as Entry);
    if (entries.length) this.ingest(entries);
  }

  // -- events and timelines ----------------------------------------------------------------------

  onState(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /**
   * Listen to one event; `data` is typed by the event's name (its schema in docs/asyncapi.yaml).
   * Returns the function that stops listening.
   */
  on<E extends ClientEvent>(event: E, listener: EventListener<E>): () => void {
    let set = this.eventListeners.get(event);
    if (!set) {
      set = new Set();
      this.eventListeners.set(event, set);
    }
    const untyped = listener as RawListener;
    set.add(untyped);
    return () => set?.delete(untyped);
  }

  private emit(event: string, data: Record<string, unknown>, at?: string): void {
    for (const listener of this.eventListeners.get(event) ?? []) listener(data, at);
  }

  /** Receive a tracked workitem's entries: each once, in `seq` order. */
  onEntries(listener: EntryListener): () => void {
    this.entryListeners.add(listener);
    return () => this.entryListeners.delete(listener);
  }

  /**
   * Start ordering a workitem's timeline. `initial` are entries already fetched (e.g. from
   * `monitor.start`); older ones they lack (`hasMore`, or a first entry after 1) are fetched from
   * `after: 0`. One `timeline.get` always follows: an entry pushed before the workitem was tracked
   * (between the server starting the action and its ack arriving) is not lost.
   */
  async track(workitemId: string, initial?: { entries: Entry[]; hasMore?: boolean }): Promise<void> {
    const existing = this.timelines.get(workitemId);
    const buffer = existing ?? new TimelineBuffer(0);
    if (!existing) this.timelines.set(workitemId, buffer);
    if (initial) this.ingest(initial.entries.map((e) => ({ ...e, workitemId })));
    await this.catchUp(workitemId);
  }

  untrack(workitemId: string): void {
    this.timelines.delete(workitemId);
    this.settleGap(workitemId);
  }

  lastSeq(workitemId: string): number {
    return this.timelines.get(workitemId)?.lastSeq ?? 0;
  }

  private ingest(entries: Entry[]): void {
    const byWorkitem = new Map<string, Entry[]>();
    for (const entry of entries) {
      const list = byWorkitem.get(entry.workitemId) ?? [];
      list.push(entry);
      byWorkitem.set(entry.workitemId, list);
    }
    for (const [workitemId, list] of byWorkitem) {
      const buffer = this.timelines.get(workitemId);
      if (!buffer) continue; // not tracked: the UI reads it when it opens it
      const ready = buffer.offer(list);
      if (ready.length) for (const listener of this.entryListeners) listener(workitemId, ready);
      if (!buffer.missing) this.settleGap(workitemId);
      else if (this.opts.gapWaitMs <= 0) void this.catchUp(workitemId);
      else this.awaitGap(workitemId);
    }
  }

  /** A gap stays open for `gapWaitMs` before `timeline.get` is asked (once per gap, not per entry). */
  private awaitGap(workitemId: string): void {
    if (this.gapTimers.has(workitemId)) return;
    const timer = setTimeout(() => {
      this.gapTimers.delete(workitemId);
      if (this.timelines.get(workitemId)?.missing) void this.catchUp(workitemId);
    }, this.opts.gapWaitMs);
    this.gapTimers.set(workitemId, timer);
  }

  private settleGap(workitemId: string): void {
    const timer = this.gapTimers.get(workitemId);
    if (timer) clearTimeout(timer);
    this.gapTimers.delete(workitemId);
  }

  /** Fetch everything after the last delivered `seq` (page by page) and deliver it in order. */
  async catchUp(workitemId: string): Promise<void> {
    if (this.catchingUp.has(workitemId)) return;
    this.catchingUp.add(workitemId);
    try {
      for (;;) {
        const buffer = this.timelines.get(workitemId);
        if (!buffer) return;
        const page = await this.request<{ entries: Entry[]; hasMore: boolean }>("timeline.get", {
          workitemId,
          after: buffer.lastSeq,
          limit: 200,
        });
        this.ingest(page.entries.map((e) => ({ ...e, workitemId })));
        if (!page.hasMore || page.entries.length === 0) return;
      }
    } catch {
      // disconnected or refused: the next reconnect catches up again
    } finally {
      this.catchingUp.delete(workitemId);
    }
  }

  // -- subscriptions -----------------------------------------------------------------------------

  /** `agent.watch`, remembered so a reconnect watches again. */
  async watch(agentId: string): Promise<{ workitems: Workitem[] }> {
    const data = await this.requestAll<{ workitems: Workitem[] }>("agent.watch", { agentId });
    this.watched.add(agentId);
    return data;
  }

  async unwatch(agentId: string): Promise<void> {
    this.watched.delete(agentId);
    await this.request("agent.unwatch", { agentId });
  }

  // -- token renewal -----------------------------------------------------------------------------

  private scheduleRefresh(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    const claims = tokenClaims(this.token);
    const exp = Number(claims.exp ?? 0);
    const iat = Number(claims.iat ?? 0);
    this.expiresAt = exp;
    if (!exp || !this.opts.renewToken) return;
    const lifetime = iat ? exp - iat : this.opts.refreshLeadSeconds * 2;
    const lead = Math.min(this.opts.refreshLeadSeconds, lifetime / 2);
    const inMs = Math.max(1_000, (exp - lead) * 1000 - this.opts.now());
    this.refreshTimer = setTimeout(() => void this.refresh(), inMs);
  }

  /**
   * Renew the token before it expires without opening a socket (a screen that only uses REST, such
   * as the admin's, reads `token` or listens for `token.renewed`).
   */
  keepTokenFresh(): this {
    this.scheduleRefresh();
    return this;
  }

  /**
   * Get a new token and extend this connection with `auth.refresh`. A server without that action
   * (`invalid`) gets the new token on a fresh connection instead (then the usual catch-up runs).
   * Without an open socket the new token is simply adopted (the next connection uses it).
   */
  async refresh(): Promise<string> {
    if (!this.opts.renewToken) return "no token source";
    let fresh: string;
    try {
      fresh = await this.opts.renewToken(this.token);
    } catch (error) {
      this.lastRefresh = `failed: ${String(error)}`;
      this.refreshTimer = setTimeout(() => void this.refresh(), 10_000);
      return this.lastRefresh;
    }
    if (this.state !== "live") {
      this.token = fresh;
      this.lastRefresh = "adopted";
      this.scheduleRefresh();
      this.emit("token.renewed", { how: this.lastRefresh });
      return this.lastRefresh;
    }
    try {
      await this.request("auth.refresh", { token: fresh });
      this.token = fresh;
      this.lastRefresh = "auth.refresh";
      this.scheduleRefresh();
    } catch (error) {
      const code = error instanceof ProtocolError ? error.code : "unknown";
      this.token = fresh;
      if (code === "invalid" || code === "unknown") {
        // The server predates auth.refresh: reconnect with the new token (and catch up).
        this.lastRefresh = "reconnect";
        this.socket?.close(4001, "token renewed");
      } else {
        this.lastRefresh = `failed: ${code}`;
        this.refreshTimer = setTimeout(() => void this.refresh(), 10_000);
      }
    }
    this.emit("token.renewed", { how: this.lastRefresh });
    return this.lastRefresh;
  }
}
