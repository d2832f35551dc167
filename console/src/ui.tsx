/** Pieces the role screens share: timelines, composers, workitem rows and titles, voice, messages. */
import type { ComponentChildren, Ref } from "preact";
import { useEffect, useId, useRef, useState } from "preact/hooks";
import { List } from "./kit/collections";
import { Badge } from "./kit/panel";
import type { DirectoryMessage } from "./model";
import type { Entry, Workitem } from "./protocol";
import { annotations, COACHING_KINDS } from "./store";

const KIND_LABEL: Record<string, string> = {
  customer_message: "Customer",
  agent_message: "Agent",
  coach_message: "Coaching",
  supervisor_joined: "Coaching",
  supervisor_left: "Coaching",
  coaching_ended: "Coaching",
  reaction: "Reaction",
  voice_mode: "Voice",
  assist_requested: "Assistance",
  assist_claimed: "Assistance",
};

function time(at: string): string {
  const date = new Date(at);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function describe(entry: Entry, name: (id?: string) => string): string {
  switch (entry.kind) {
    case "supervisor_joined":
      return `${name(entry.authorId)} started monitoring`;
    case "supervisor_left":
      return `${name(entry.authorId)} stopped monitoring`;
    case "coaching_ended":
      return `Coaching ended${entry.reason ? ` (${String(entry.reason)})` : ""}`;
    case "reaction":
      return entry.reaction === "thumbs_up"
        ? "Marked a coach message helpful"
        : entry.reaction === "thumbs_down"
          ? "Marked a coach message not helpful"
          : "Reaction cleared";
    case "voice_mode":
      return `Voice: ${String(entry.mode ?? "")}`;
    case "assist_requested":
      return `Help requested${entry.text ? `: ${entry.text}` : ""}`;
    case "assist_claimed":
      return `${name(entry.authorId)} claimed the request`;
    default:
      return entry.text ?? "";
  }
}

export interface TimelineProps {
  entries: Entry[];
  /** Who is looking: the timeline is drawn from their side. */
  viewer: "supervisor" | "agent" | "customer";
  name: (id?: string) => string;
  /** Only these kinds (e.g. the agent's conversation pane). */
  kinds?: ReadonlySet<string>;
  /** Buttons for a coach message (the agent's side panel). */
  coachActions?: (entry: Entry) => ComponentChildren;
  label: string;
  /** The customer's display name (staff views). */
  customerName?: string;
}

export function Timeline({ entries, viewer, name, kinds, coachActions, label, customerName }: TimelineProps) {
  const list = useRef<HTMLOListElement>(null);
  const shown = kinds ? entries.filter((e) => kinds.has(e.kind)) : entries;
  const { reactions, forwarded } = annotations(entries);
  useEffect(() => {
    const element = list.current;
    if (element) element.scrollTop = element.scrollHeight;
  }, [shown.length]);
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be reachable by keyboard to scroll it
    <ol class="timeline" ref={list} aria-label={label} tabIndex={0}>
      {shown.length === 0 && <li class="empty">No messages yet.</li>}
      {shown.map((entry) => {
        const coaching = COACHING_KINDS.has(entry.kind);
        const said = entry.kind === "transcript" ? entry.speaker : undefined; // a voice call's transcript line
        const fromCustomer = entry.kind === "customer_message" || said === "customer";
        const mine =
          (viewer === "customer" && entry.kind === "customer_message") ||
          (viewer !== "customer" && (entry.kind === "agent_message" || said === "agent"));
        const reaction = entry.messageId ? reactions.get(entry.messageId) : undefined;
        const message = entry.kind.endsWith("_message") || entry.kind === "transcript";
        return (
          <li
            key={entry.seq}
            data-testid="timeline-entry"
            data-seq={entry.seq}
            data-kind={entry.kind}
            class={`entry ${entry.kind} ${coaching ? "coaching" : ""} ${mine ? "mine" : ""} ${message ? "message" : "note"}`}
          >
            {message ? (
              <div class="bubble">
                <div class="meta">
                  {coaching && <span class="tag">{KIND_LABEL[entry.kind]}</span>}
                  {said && <span class="tag">Transcript</span>}
                  {viewer !== "customer" && (
                    <span class="author">{fromCustomer ? (customerName ?? "Customer") : name(entry.authorId)}</span>
                  )}
                  {viewer === "customer" && <span class="author">{entry.kind === "customer_message" ? "You" : "Agent"}</span>}
                  <span class="time">{time(entry.at)}</span>
                </div>
                <p class="text">{entry.text}</p>
                {viewer !== "customer" && entry.forwardedFrom && <p class="hint">Forwarded from coaching</p>}
                {entry.kind === "coach_message" && (reaction || (entry.messageId && forwarded.has(entry.messageId))) && (
                  <p class="hint">
                    {[
                      reaction === "thumbs_up" ? "Helpful" : reaction === "thumbs_down" ? "Not helpful" : "",
                      entry.messageId && forwarded.has(entry.messageId) ? "Forwarded to the customer" : "",
                    ]
                      .filter(Boolean)
                      .join(" · ")}
                  </p>
                )}
                {entry.kind === "coach_message" && coachActions?.(entry)}
              </div>
            ) : (
              <p class="note-text">
                <span class="tag">{KIND_LABEL[entry.kind] ?? entry.kind}</span> {describe(entry, name)}
                <span class="time"> {time(entry.at)}</span>
              </p>
            )}
          </li>
        );
      })}
    </ol>
  );
}

/** A one-line text box with a send button; Enter sends. */
export function Composer(props: {
  inputTestId: string;
  sendTestId: string;
  label: string;
  placeholder: string;
  onSend: (text: string) => Promise<unknown>;
  disabled?: boolean;
}) {
  const [text, setText] = useState("");
  const [sending, setSending] = useState<string[]>([]);
  const id = useId();
  const submit = async (event: Event) => {
    event.preventDefault();
    const value = text.trim();
    if (!value) return;
    setText(""); // at once, so the next message can be typed while this one is sent
    setSending((list) => [...list, value]);
    try {
      await props.onSend(value); // resent until it lands or the server refuses it
    } finally {
      setSending((list) => list.filter((t, i) => i !== list.indexOf(value) || t !== value));
    }
  };
  return (
    <form class="composer" onSubmit={submit}>
      {sending.length > 0 && (
        <p class="hint sending" data-testid="sending" aria-live="polite">
          Sending {sending.length === 1 ? `“${sending[0].slice(0, 40)}”` : `${sending.length} messages`}…
        </p>
      )}
      <label class="visually-hidden" for={id}>
        {props.label}
      </label>
      <input
        id={id}
        data-testid={props.inputTestId}
        value={text}
        placeholder={props.placeholder}
        disabled={props.disabled}
        autocomplete="off"
        maxLength={4000}
        onInput={(e) => setText((e.target as HTMLInputElement).value)}
      />
      <button type="submit" data-testid={props.sendTestId} disabled={props.disabled || !text.trim()}>
        Send
      </button>
    </form>
  );
}

/** A small channel badge (text, so it renders with any font). */
export function ChannelBadge({ channel }: { channel: string }) {
  return <span class="channel">{channel}</span>;
}

/** "Customer · agent · chat · ended · coached": the details of a workitem, then its state. */
export function workitemLine(workitem: Workitem, details: string[], withCoaching: boolean): string {
  return (
    details.join(" · ") +
    (workitem.status === "ended" ? " · ended" : "") +
    (withCoaching && workitem.coaching.active ? " · coached" : "")
  );
}

export interface WorkitemListProps {
  workitems: readonly Workitem[];
  /** The row drawn as selected (an open tile, the workitem shown). */
  selected: (workitem: Workitem) => boolean;
  /** Rows are toggle buttons (`aria-pressed`): one of them is the workitem shown. */
  pressed?: boolean;
  /** The details under the subject, before the state. */
  details: (workitem: Workitem) => string[];
  onSelect: (workitem: Workitem) => void;
  empty: string;
  /** New messages on a workitem that is not open (a mark on its row). */
  unread?: (workitem: Workitem) => number;
}

/** A list of workitem buttons (`workitem-row`, `data-workitem-id`): channel, subject, details. */
export function WorkitemList({ workitems, selected, pressed, details, onSelect, empty, unread }: WorkitemListProps) {
  return (
    <List
      items={workitems}
      itemKey={(w) => w.workitemId}
      class="workitem-list"
      empty={empty}
      render={(w) => (
        <button
          type="button"
          class={`workitem-row ${selected(w) ? "selected" : ""}`}
          data-testid="workitem-row"
          data-workitem-id={w.workitemId}
          aria-pressed={pressed ? selected(w) : undefined}
          onClick={() => onSelect(w)}
        >
          <ChannelBadge channel={w.channel} />
          <span class="subject">
            {w.subject || w.customer.name} <Badge count={unread?.(w) ?? 0} label="new messages" testId="unread-mark" />
          </span>
          <span class="sub">{workitemLine(w, details(w), true)}</span>
        </button>
      )}
    />
  );
}

/** The title block of an open workitem: channel, subject (or `fallback`), and a line of details. */
export function WorkitemTitle({ workitem, fallback, details }: { workitem?: Workitem; fallback: string; details: string[] }) {
  return (
    <div>
      <h2>
        <ChannelBadge channel={workitem?.channel ?? ""} /> {workitem?.subject || fallback}
      </h2>
      <p class="sub">{workitem ? workitemLine(workitem, details, false) : ""}</p>
    </div>
  );
}

/** Whether the workitem is a call this product joins through the Chime SDK: an Amazon Connect call
 * (`connect-…`) is Connect's, listened to with Connect's own monitor (docs/connectors.md). */
export function isChimeCall(w: { workitemId: string; channel: string } | undefined): boolean {
  return w?.channel === "voice" && !w.workitemId.startsWith("connect-");
}

/** What stands in for the voice controls on an Amazon Connect call. */
export function ConnectCallNote() {
  return (
    <p class="hint" data-testid="voice-connect-note">
      An Amazon Connect call: listen, whisper or barge with Amazon Connect's own monitor. Coaching messages work here as on any workitem.
    </p>
  );
}

/** The voice controls' frame, with the element the call's audio plays in. */
export function VoiceBox({ audioRef, children }: { audioRef: Ref<HTMLAudioElement>; children: ComponentChildren }) {
  return (
    <fieldset class="voice">
      <legend class="visually-hidden">Voice</legend>
      {children}
      {/* biome-ignore lint/a11y/useMediaCaption: live call audio, there is no caption track to offer */}
      <audio ref={audioRef} />
    </fieldset>
  );
}

/** Directory messages, oldest first (`directory-message`). */
export function MessageList({ messages, name }: { messages: readonly DirectoryMessage[]; name: (id?: string) => string }) {
  return (
    <List
      items={messages}
      itemKey={(m) => m.messageId}
      class="messages"
      itemHooks={() => ({ "data-testid": "directory-message" })}
      render={(m) => (
        <>
          <strong>{name(m.fromUserId)}:</strong> {m.text}
        </>
      )}
    />
  );
}
