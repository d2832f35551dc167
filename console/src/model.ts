/**
 * What the live screens (supervisor, agent) share in their models: workitem events, directory messages
 * and the unread count, reading the board again after a reconnect, call audio per workitem, names.
 */
import { useEffect, useMemo } from "preact/hooks";
import type { ConsoleConfig } from "./api";
import { type Feedback, useNewFeedback } from "./kit/feedback";
import { Observable, useObservable } from "./kit/observable";
import type { CoachingClient, EventData, Room, Workitem } from "./protocol";
import type { Timelines } from "./store";
import { type AudioSession, joinAudio } from "./voice";

export type DirectoryMessage = EventData["directory.message"];

/** The events that carry a workitem's new state. */
const WORKITEM_EVENTS = ["workitem.assigned", "workitem.updated", "workitem.ended"] as const;

export abstract class LiveModel extends Observable {
  unread = 0;
  messages: DirectoryMessage[] = [];
  readonly audio = new Map<string, AudioSession>();
  /** People's names as events and workitems give them (supervisors who joined, claimed, spoke). */
  names = new Map<string, string>();
  /** Supervisors' voice modes (listen, whisper, barge), by workitem then supervisor (`voice.mode`). */
  readonly voiceModes = new Map<string, Map<string, { name: string; mode: string }>>();

  constructor(
    readonly client: CoachingClient,
    readonly me: string,
  ) {
    super();
    for (const name of WORKITEM_EVENTS) client.on(name, (data) => this.upsert(data.workitem));
    const learn = (d: { supervisorId: string; supervisorName?: string }) => {
      if (d.supervisorName) this.names.set(d.supervisorId, d.supervisorName);
    };
    client.on("coaching.joined", learn);
    client.on("assist.claimed", learn);
    client.on("coaching.left", (d) => {
      learn(d);
      this.voiceModes.get(d.workitemId)?.delete(d.supervisorId);
    });
    client.on("voice.mode", (d) => {
      learn(d);
      const modes = this.voiceModes.get(d.workitemId) ?? new Map();
      modes.set(d.supervisorId, { name: d.supervisorName, mode: d.mode });
      this.voiceModes.set(d.workitemId, modes);
      this.changed();
    });
    client.on("directory.unread", (data) => {
      this.unread = data.count;
      this.changed();
    });
    client.on("directory.message", (data) => {
      this.messages = [...this.messages, data];
      this.changed();
    });
  }

  /** A workitem's new state (from an event or a reply). */
  abstract upsert(workitem: Workitem): void;
  /** The screen's first read, once its events are subscribed. */
  protected abstract start(): Promise<void>;
  /** What may have changed while the socket was away, read again once it is back. */
  protected abstract refresh(): Promise<void>;

  /** Read the screen's state now and again after every reconnect. */
  async load(): Promise<void> {
    let away = false;
    this.client.onState((state) => {
      if (state !== "live") away = true;
      else if (away) void this.refresh().catch(() => undefined);
    });
    await this.start();
  }

  async readUnread(): Promise<void> {
    this.unread = (await this.client.request<{ count: number }>("directory.unread.get")).count;
  }

  /** Mark the conversation with `userId` read; the reply is the unread count left. */
  async markRead(userId: string): Promise<void> {
    this.unread = (await this.client.request<{ count: number }>("directory.read", { withUserId: userId })).count;
  }

  /** Join a workitem's call room (leaving the one joined before for that workitem). */
  async joinAudio(workitemId: string, config: ConsoleConfig, room: Room, element: HTMLAudioElement | null): Promise<AudioSession> {
    await this.leaveAudio(workitemId);
    const session = await joinAudio(config, room, element);
    this.audio.set(workitemId, session);
    return session;
  }

  async leaveAudio(workitemId: string): Promise<void> {
    const session = this.audio.get(workitemId);
    this.audio.delete(workitemId);
    await session?.leave();
  }
}

/** How a screen names people: `self` for the signed-in user, else `lookup`'s name, else the id. */
export function namer(me: string, self: string, lookup: (id: string) => string | undefined): (id?: string) => string {
  return (id) => (!id ? "" : id === me ? self : (lookup(id) ?? id));
}

/**
 * A live screen's scaffolding: its model (made once per client), re-rendered on every change of the
 * model or the timelines, loaded once with a failure shown in the screen's feedback.
 */
export function useLiveScreen<M extends LiveModel>(create: () => M, deps: unknown[], timelines: Timelines): [M, Feedback] {
  const model = useMemo(create, deps);
  useObservable(model);
  useObservable(timelines);
  const feedback = useNewFeedback();
  useEffect(() => {
    void feedback.run(model.load());
  }, [model]);
  return [model, feedback];
}
