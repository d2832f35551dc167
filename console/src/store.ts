/** The timelines every screen renders from, and what their entries say about each other. */
import { Observable } from "./kit/observable";
import type { CoachingClient, Entry } from "./protocol";

/** Every tracked workitem's entries, in `seq` order, exactly once (fed by the client's ordering). */
export class Timelines extends Observable {
  readonly entries = new Map<string, Entry[]>();
  constructor(client: CoachingClient) {
    super();
    client.onEntries((workitemId, entries) => {
      const list = this.entries.get(workitemId) ?? [];
      // A workitem tracked again (a tile closed and reopened) is delivered from seq 1 again.
      for (const entry of entries) if (!list.length || entry.seq > (list.at(-1)?.seq ?? 0)) list.push(entry);
      this.entries.set(workitemId, list);
      this.changed();
    });
  }
  of(workitemId: string): Entry[] {
    return this.entries.get(workitemId) ?? [];
  }
}

export const COACHING_KINDS = new Set([
  "coach_message",
  "supervisor_joined",
  "supervisor_left",
  "coaching_ended",
  "reaction",
  "voice_mode",
  "assist_requested",
  "assist_claimed",
]);

/** Latest reaction per coach message, and which coach messages were forwarded. */
export function annotations(entries: Entry[]): {
  reactions: Map<string, string | null>;
  forwarded: Set<string>;
} {
  const reactions = new Map<string, string | null>();
  const forwarded = new Set<string>();
  for (const entry of entries) {
    if (entry.kind === "reaction" && entry.messageId) reactions.set(entry.messageId, entry.reaction ?? null);
    if (entry.forwardedFrom) forwarded.add(entry.forwardedFrom);
  }
  return { reactions, forwarded };
}
