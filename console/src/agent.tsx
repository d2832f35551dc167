/** The agent's panel: workitems, the conversation, the coaching side panel, raise hand, voice. */
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { ConsoleConfig } from "./api";
import type { CoachingClient, Entry, Room, Workitem } from "./protocol";
import { Observable, type Timelines, useObservable } from "./store";
import { ChannelBadge, Composer, ErrorBar, Timeline, useErrors } from "./ui";
import { type AudioSession, joinAudio } from "./voice";

const CONVERSATION = new Set(["customer_message", "agent_message"]);
const COACHING_PANEL = new Set(["coach_message", "supervisor_joined", "supervisor_left", "coaching_ended", "reaction"]);

interface Person {
  userId: string;
  name: string;
}

class AgentModel extends Observable {
  workitems = new Map<string, Workitem>();
  selected = "";
  presence = "available";
  templates: { templateId: string; text: string }[] = [];
  assistAvailable = false;
  supervisors: Person[] = [];
  agents: Person[] = [];
  names = new Map<string, string>();
  assist: { assistId: string; recipients: string[]; claimedBy?: string; text: string } | null = null;
  coachRoom = new Map<string, Room>();
  contactRoom = new Map<string, Room>();
  audio = new Map<string, AudioSession>();
  unread = 0;
  messages: { messageId: string; fromUserId: string; text: string }[] = [];
  consults: { consultId: string; workitemId: string; agentId: string }[] = [];
  helpRequests: { assistId: string; agentId: string; text: string }[] = [];

  constructor(
    readonly client: CoachingClient,
    readonly me: string,
  ) {
    super();
    for (const name of ["workitem.assigned", "workitem.updated", "workitem.ended"] as const) {
      client.on(name, (d) => this.upsert(d.workitem as Workitem));
    }
    const coaching = (d: Record<string, unknown>, active: boolean | null) => {
      const w = this.workitems.get(String(d.workitemId ?? (d.entry as Entry | undefined)?.workitemId));
      if (!w) return;
      const supervisorId = String(d.supervisorId ?? "");
      if (active === true && supervisorId && !w.coaching.supervisors.includes(supervisorId)) w.coaching.supervisors.push(supervisorId);
      if (active === false) w.coaching.supervisors = w.coaching.supervisors.filter((s) => s !== supervisorId);
      if (active === null) w.coaching.supervisors = [];
      w.coaching.active = w.coaching.supervisors.length > 0;
      this.changed();
    };
    client.on("coaching.joined", (d) => coaching(d, true));
    client.on("coaching.left", (d) => coaching(d, false));
    client.on("coaching.ended", (d) => coaching(d, null));
    client.on("assist.claimed", (d) => {
      if (this.assist && this.assist.assistId === d.assistId) this.assist.claimedBy = String(d.supervisorId);
      this.changed();
      if (!this.names.has(String(d.supervisorId))) {
        // Not among the recipients listed earlier: ask again for the claimer's name.
        this.client
          .requestAll<{ supervisors: Person[]; agents: Person[] }>("assist.recipients")
          .then((r) => {
            this.setRecipients(r);
            this.changed();
          })
          .catch(() => undefined);
      }
    });
    client.on("voice.coach_room", (d) => {
      this.coachRoom.set(String(d.workitemId), d as unknown as Room);
      this.changed();
    });
    client.on("voice.coach_room_closed", (d) => {
      this.coachRoom.delete(String(d.workitemId));
      this.changed();
    });
    client.on("directory.unread", (d) => {
      this.unread = Number(d.count ?? 0);
      this.changed();
    });
    client.on("directory.message", (d) => {
      this.messages = [...this.messages, d as unknown as AgentModel["messages"][number]];
      this.changed();
    });
    client.on("assist.requested", (d) => {
      this.helpRequests = [...this.helpRequests, d as unknown as AgentModel["helpRequests"][number]];
      this.changed();
    });
    client.on("consult.requested", (d) => {
      this.consults = [...this.consults, d as unknown as AgentModel["consults"][number]];
      this.changed();
    });
  }

  upsert(w: Workitem): void {
    if (w.agentId !== this.me) {
      this.workitems.delete(w.workitemId);
      if (this.selected === w.workitemId) this.selected = "";
    } else {
      const isNew = !this.workitems.has(w.workitemId);
      this.workitems.set(w.workitemId, w);
      if (isNew) void this.client.track(w.workitemId);
      if (!this.selected) this.selected = w.workitemId;
    }
    this.changed();
  }

  /** Workitems assigned, transferred or ended while the socket was away, and the unread count. */
  private async refresh(): Promise<void> {
    const list = await this.client.requestAll<{ workitems: Workitem[] }>("workitems.list", { agentId: this.me });
    const current = new Set(list.workitems.map((w) => w.workitemId));
    for (const id of this.workitems.keys()) {
      if (!current.has(id)) this.workitems.delete(id);
    }
    for (const w of list.workitems) this.upsert(w);
    this.unread = (await this.client.request<{ count: number }>("directory.unread.get")).count;
    this.changed();
  }

  async load(): Promise<void> {
    let away = false;
    this.client.onState((state) => {
      if (state !== "live") away = true;
      else if (away) void this.refresh().catch(() => undefined);
    });
    const list = await this.client.requestAll<{ workitems: Workitem[] }>("workitems.list", { agentId: this.me });
    for (const w of list.workitems) this.upsert(w);
    const [templates, recipients] = await Promise.all([
      this.client.request<{ available: boolean; templates: { templateId: string; text: string }[] }>("assist.templates"),
      this.client.requestAll<{ supervisors: Person[]; agents: Person[] }>("assist.recipients"),
    ]);
    this.assistAvailable = templates.available;
    this.templates = templates.templates;
    this.setRecipients(recipients);
    const unread = await this.client.request<{ count: number }>("directory.unread.get");
    this.unread = unread.count;
    this.changed();
  }

  setRecipients(recipients: { supervisors: Person[]; agents: Person[] }): void {
    this.supervisors = recipients.supervisors;
    this.agents = recipients.agents;
    for (const p of [...recipients.supervisors, ...recipients.agents]) this.names.set(p.userId, p.name);
  }
}

export function AgentScreen(props: {
  client: CoachingClient;
  timelines: Timelines;
  config: ConsoleConfig;
  me: string;
  myName: string;
}) {
  const { client, timelines } = props;
  const model = useMemo(() => new AgentModel(client, props.me), [client, props.me]);
  useObservable(model);
  useObservable(timelines);
  const [error, setError, clearError] = useErrors();
  useEffect(() => {
    model.load().catch(setError);
  }, [model]);

  const name = (id?: string) => {
    if (!id) return "";
    if (id === props.me) return "You";
    return model.names.get(id) ?? id;
  };
  const items = [...model.workitems.values()];
  const current = model.workitems.get(model.selected);

  const setPresence = async (state: string) => {
    try {
      await client.request("presence.set", { state });
      model.presence = state;
      model.changed();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <div class="screen agent">
      <ErrorBar message={error} onClose={clearError} />
      <aside class="sidebar" aria-label="My workitems">
        <div class="row">
          <label for="presence">Presence</label>
          <select id="presence" data-testid="presence-select" value={model.presence} onChange={(e) => setPresence((e.target as HTMLSelectElement).value)}>
            <option value="available">Available</option>
            <option value="not_ready">Not ready</option>
          </select>
        </div>
        <h2>My workitems</h2>
        {items.length === 0 && <p class="empty">No workitems.</p>}
        <ul class="workitem-list">
          {items.map((w) => (
            <li key={w.workitemId}>
              <button
                type="button"
                class={`workitem-row ${model.selected === w.workitemId ? "selected" : ""}`}
                data-testid="workitem-row"
                data-workitem-id={w.workitemId}
                aria-pressed={model.selected === w.workitemId}
                onClick={() => {
                  model.selected = w.workitemId;
                  model.changed();
                }}
              >
                <ChannelBadge channel={w.channel} />
                <span class="subject">{w.subject || w.customer.name}</span>
                <span class="sub">
                  {w.customer.name}
                  {w.status === "ended" ? " · ended" : ""}
                  {w.coaching.active ? " · coached" : ""}
                </span>
              </button>
            </li>
          ))}
        </ul>
        <RaiseHand model={model} current={current} onError={setError} name={name} />
        {(model.messages.length > 0 || model.unread > 0) && <DirectoryInbox model={model} name={name} onError={setError} />}
        {model.helpRequests.map((r) => (
          <p class="assist-popup" role="alert" key={r.assistId}>
            <strong>{name(r.agentId)}</strong> asks for help: {r.text}
          </p>
        ))}
        {model.consults.map((c) => (
          <p class="hint" role="status" key={c.consultId}>
            {name(c.agentId)} asks to consult on {c.workitemId}
          </p>
        ))}
      </aside>
      {current ? (
        <Conversation key={current.workitemId} workitem={current} model={model} timelines={timelines} config={props.config} name={name} onError={setError} />
      ) : (
        <main class="placeholder">
          <h2>No workitem selected</h2>
        </main>
      )}
    </div>
  );
}

function DirectoryInbox(props: { model: AgentModel; name: (id?: string) => string; onError: (e: unknown) => void }) {
  const { model, name, onError } = props;
  const last = model.messages.at(-1);
  return (
    <section class="directory" aria-label="Directory messages">
      <h3>Messages {model.unread > 0 && <span class="badge">{model.unread}</span>}</h3>
      <ul class="messages">
        {model.messages.map((m) => (
          <li key={m.messageId} data-testid="directory-message">
            <strong>{name(m.fromUserId)}:</strong> {m.text}
          </li>
        ))}
      </ul>
      {last && (
        <>
          <Composer
            inputTestId="directory-input"
            sendTestId="directory-send"
            label={`Reply to ${name(last.fromUserId)}`}
            placeholder={`Reply to ${name(last.fromUserId)}`}
            onSend={(text) =>
              model.client
                .request("directory.send", { toUserId: last.fromUserId, text, replyTo: last.messageId })
                .catch(onError)
            }
          />
          {model.unread > 0 && (
            <button
              type="button"
              class="secondary"
              onClick={() =>
                model.client
                  .request<{ count: number }>("directory.read", { withUserId: last.fromUserId })
                  .then((d) => {
                    model.unread = d.count;
                    model.changed();
                  })
                  .catch(onError)
              }
            >
              Mark read
            </button>
          )}
        </>
      )}
    </section>
  );
}

function RaiseHand(props: { model: AgentModel; current?: Workitem; onError: (e: unknown) => void; name: (id?: string) => string }) {
  const { model, current, onError, name } = props;
  const [step, setStep] = useState<"closed" | "templates" | "recipients">("closed");
  const [template, setTemplate] = useState("");
  if (!model.assistAvailable) return null;
  const send = async (to: string) => {
    try {
      const t = model.templates.find((x) => x.templateId === template);
      const fields: Record<string, unknown> = { templateId: template, to: to === "supervisors" ? "supervisors" : { userId: to } };
      if (current) fields.workitemId = current.workitemId;
      const data = await model.client.request<{ assistId: string; recipients: string[] }>("assist.request", fields);
      model.assist = { ...data, text: t?.text ?? "" };
      setStep("closed");
      model.changed();
    } catch (e) {
      onError(e);
    }
  };
  const refreshRecipients = async () => {
    try {
      model.setRecipients(await model.client.requestAll("assist.recipients"));
      model.changed();
    } catch (e) {
      onError(e);
    }
  };
  return (
    <section class="raise-hand" aria-label="Raise hand">
      <button
        type="button"
        data-testid="assist-button"
        aria-expanded={step !== "closed"}
        onClick={() => {
          setStep(step === "closed" ? "templates" : "closed");
          void refreshRecipients();
        }}
      >
        Raise hand
      </button>
      {step === "templates" && (
        <ul class="menu" aria-label="What do you need?">
          {model.templates.map((t) => (
            <li key={t.templateId}>
              <button
                type="button"
                data-testid="template-option"
                data-template-id={t.templateId}
                onClick={() => {
                  setTemplate(t.templateId);
                  setStep("recipients");
                }}
              >
                {t.text}
              </button>
            </li>
          ))}
        </ul>
      )}
      {step === "recipients" && (
        <ul class="menu" aria-label="Who should help?">
          <li>
            <button type="button" data-testid="recipient-option" data-recipient="supervisors" onClick={() => send("supervisors")}>
              All my available supervisors
            </button>
          </li>
          {[...model.supervisors, ...model.agents].map((p) => (
            <li key={p.userId}>
              <button type="button" data-testid="recipient-option" data-recipient={p.userId} onClick={() => send(p.userId)}>
                {p.name}
              </button>
            </li>
          ))}
        </ul>
      )}
      {model.assist && (
        <p class="assist-status" data-testid="assist-status" role="status">
          {model.assist.claimedBy
            ? `${name(model.assist.claimedBy)} is coming to help`
            : model.assist.recipients.length
              ? `Waiting for help (${model.assist.recipients.length} notified)`
              : "Nobody is available right now"}
        </p>
      )}
    </section>
  );
}

function Conversation(props: {
  workitem: Workitem;
  model: AgentModel;
  timelines: Timelines;
  config: ConsoleConfig;
  name: (id?: string) => string;
  onError: (e: unknown) => void;
}) {
  const { workitem, model, timelines, name, onError } = props;
  const id = workitem.workitemId;
  const entries = timelines.of(id);
  const client = model.client;
  const [transferTo, setTransferTo] = useState("");
  const audioRef = useRef<HTMLAudioElement>(null);
  const coachRoom = model.coachRoom.get(id);
  const contactRoom = model.contactRoom.get(id);
  const text = workitem.channel !== "voice" && workitem.channel !== "email";
  const ended = workitem.status === "ended";
  const hasCoaching = workitem.coaching.active || entries.some((e) => COACHING_PANEL.has(e.kind));

  const act = async (action: "workitem.end" | "coaching.end", fields: Record<string, unknown> = {}) => {
    try {
      const data = await client.request<{ workitem?: Workitem }>(action, { workitemId: id, ...fields });
      if (data.workitem) model.upsert(data.workitem);
    } catch (e) {
      onError(e);
    }
  };

  const coachActions = (entry: Entry) =>
    entry.authorRole === "supervisor" && entry.messageId ? (
      <div class="coach-actions">
        <button type="button" class="small secondary" data-testid="react-up" 
          onClick={() => client.request("coach.react", { workitemId: id, messageId: entry.messageId, reaction: "thumbs_up" }).catch(onError)}>
          Helpful
        </button>
        <button type="button" class="small secondary" data-testid="react-down" 
          onClick={() => client.request("coach.react", { workitemId: id, messageId: entry.messageId, reaction: "thumbs_down" }).catch(onError)}>
          Not helpful
        </button>
        {text && !ended && (
          <button type="button" class="small" data-testid="forward-button"
            onClick={() => client.request("coach.forward", { workitemId: id, messageId: entry.messageId }).catch(onError)}>
            Forward to customer
          </button>
        )}
      </div>
    ) : null;

  return (
    <>
      <main class="conversation" aria-label="Conversation">
        <header class="tile-header">
          <div>
            <h2>
              <ChannelBadge channel={workitem.channel} /> {workitem.subject || workitem.customer.name}
            </h2>
            <p class="sub">
              {workitem.customer.name} · {workitem.channel}
              {ended ? " · ended" : ""}
            </p>
          </div>
          {!ended && (
            <div class="actions">
              <label class="visually-hidden" for="transfer-to">
                Transfer to
              </label>
              <input
                id="transfer-to"
                list="transfer-people"
                placeholder="Transfer / consult: user id"
                value={transferTo}
                onFocus={() => model.client.requestAll<{ supervisors: Person[]; agents: Person[] }>("assist.recipients").then((r) => { model.setRecipients(r); model.changed(); }).catch(() => undefined)}
                onInput={(e) => setTransferTo((e.target as HTMLInputElement).value.trim())}
              />
              <datalist id="transfer-people">
                {[...model.agents, ...model.supervisors].map((p) => (
                  <option key={p.userId} value={p.userId}>
                    {p.name}
                  </option>
                ))}
              </datalist>
              <button type="button" class="secondary" disabled={!transferTo} data-testid="transfer-button"
                onClick={() => client.request<{ workitem: Workitem }>("workitem.transfer", { workitemId: id, toAgentId: transferTo }).then((d) => model.upsert(d.workitem)).catch(onError)}>
                Transfer
              </button>
              <button type="button" class="secondary" disabled={!transferTo} data-testid="consult-button"
                onClick={() => client.request("consult.start", { workitemId: id, userId: transferTo }).catch(onError)}>
                Consult
              </button>
              <button type="button" class="danger" data-testid="end-button" onClick={() => act("workitem.end")}>
                End
              </button>
            </div>
          )}
        </header>
        <Timeline entries={entries} viewer="agent" name={name} customerName={workitem.customer.name} kinds={CONVERSATION} label="Conversation with the customer" />
        {workitem.channel === "voice" ? (
          <fieldset class="voice">
            <legend class="visually-hidden">Voice</legend>
            <button
              type="button"
              data-testid="voice-join"
              onClick={async () => {
                try {
                  const data = await client.request<{ contactRoom: Room }>("voice.join", { workitemId: id });
                  model.contactRoom.set(id, data.contactRoom);
                  const old = model.audio.get(id);
                  await old?.leave();
                  model.audio.set(id, await joinAudio(props.config, data.contactRoom, audioRef.current));
                  model.changed();
                } catch (e) {
                  onError(e);
                }
              }}
            >
              Join call
            </button>
            <p class="room" aria-live="polite">
              {contactRoom ? `In the call · meeting ${contactRoom.meetingId}` : "Not in the call"}
            </p>
            {/* biome-ignore lint/a11y/useMediaCaption: live call audio, there is no caption track to offer */}
            <audio ref={audioRef} />
          </fieldset>
        ) : (
          text &&
          !ended && (
            <Composer inputTestId="message-input" sendTestId="message-send" label="Message to the customer" placeholder="Reply to the customer"
              onSend={(t) => client.request("message.send", { workitemId: id, text: t }).catch(onError)} />
          )
        )}
      </main>
      <aside class="coaching-panel" aria-label="Coaching">
        <h2>Coaching</h2>
        {coachRoom && (
          <p class="room" data-testid="coach-room" role="status">
            A supervisor is whispering · coach room {coachRoom.meetingId}
          </p>
        )}
        {!hasCoaching && <p class="empty">No supervisor is coaching this workitem.</p>}
        {hasCoaching && (
          <Timeline entries={entries} viewer="agent" name={name} kinds={COACHING_PANEL} coachActions={coachActions} label="Coaching messages" />
        )}
        {workitem.coaching.active && text && (
          <>
            <Composer inputTestId="coach-input" sendTestId="coach-send" label="Reply to the supervisor" placeholder="Reply to the supervisor"
              onSend={(t) => client.request("coach.send", { workitemId: id, text: t }).catch(onError)} />
            <button type="button" class="secondary" data-testid="end-coaching" onClick={() => act("coaching.end")}>
              End coaching
            </button>
          </>
        )}
      </aside>
    </>
  );
}
