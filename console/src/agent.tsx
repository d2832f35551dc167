/** The agent's panel: workitems, the conversation, the coaching side panel, raise hand, voice. */
import { useRef, useState } from "preact/hooks";
import type { ConsoleConfig } from "./api";
import { List } from "./kit/collections";
import { ErrorBar, FeedbackScope, useFeedback } from "./kit/feedback";
import { Badge, Panel } from "./kit/panel";
import { LiveModel, namer, useLiveScreen } from "./model";
import type { CoachingClient, Entry, EventData, Room, Workitem } from "./protocol";
import type { ScreenProps } from "./screens";
import type { Timelines } from "./store";
import { Composer, ConnectCallNote, isChimeCall, MessageList, Timeline, VoiceBox, WorkitemList, WorkitemTitle } from "./ui";

// The conversation pane: the messages, and on a voice call its transcript lines (docs/transcript.md).
const CONVERSATION = new Set(["customer_message", "agent_message", "transcript"]);
const COACHING_PANEL = new Set(["coach_message", "supervisor_joined", "supervisor_left", "coaching_ended", "reaction"]);

interface Person {
  userId: string;
  name: string;
}

interface Recipients {
  supervisors: Person[];
  agents: Person[];
}

class AgentModel extends LiveModel {
  workitems = new Map<string, Workitem>();
  selected = "";
  presence = "available";
  templates: { templateId: string; text: string }[] = [];
  assistAvailable = false;
  supervisors: Person[] = [];
  agents: Person[] = [];
  assist: { assistId: string; recipients: string[]; claimedBy?: string; text: string } | null = null;
  coachRoom = new Map<string, Room>();
  contactRoom = new Map<string, Room>();
  consults: EventData["consult.requested"][] = [];
  helpRequests: EventData["assist.requested"][] = [];
  /** Customer and coach messages that arrived on workitems not open, by workitem. */
  unreadBy = new Map<string, number>();

  constructor(client: CoachingClient, me: string) {
    super(client, me);
    const coaching = (d: { workitemId?: string; supervisorId?: string; entry?: Entry }, active: boolean | null) => {
      const w = this.workitems.get(String(d.workitemId ?? d.entry?.workitemId));
      if (!w) return;
      const supervisorId = d.supervisorId ?? "";
      if (active === true && supervisorId && !w.coaching.supervisors.includes(supervisorId)) w.coaching.supervisors.push(supervisorId);
      if (active === false) w.coaching.supervisors = w.coaching.supervisors.filter((s) => s !== supervisorId);
      if (active === null) w.coaching.supervisors = [];
      w.coaching.active = w.coaching.supervisors.length > 0;
      this.changed();
    };
    client.on("coaching.joined", (d) => coaching(d, true));
    client.on("coaching.left", (d) => coaching(d, false));
    const arrived = (d: { entry: Entry }) => {
      const id = d.entry.workitemId;
      if (id === this.selected || d.entry.authorId === this.me) return;
      this.unreadBy.set(id, (this.unreadBy.get(id) ?? 0) + 1);
      this.changed();
    };
    client.on("message.received", arrived);
    client.on("coach.message", arrived);
    client.on("coaching.ended", (d) => coaching(d, null));
    client.on("assist.claimed", (d) => {
      if (this.assist && this.assist.assistId === d.assistId) this.assist.claimedBy = d.supervisorId;
      this.changed();
      // Not among the recipients listed earlier: ask again for the claimer's name.
      if (!this.names.has(d.supervisorId)) void this.refreshRecipients().catch(() => undefined);
    });
    client.on("voice.coach_room", (d) => {
      this.coachRoom.set(d.workitemId, d);
      this.changed();
    });
    client.on("voice.coach_room_closed", (d) => {
      this.coachRoom.delete(d.workitemId);
      this.changed();
    });
    client.on("assist.requested", (d) => {
      this.helpRequests = [...this.helpRequests, d];
      this.changed();
    });
    client.on("consult.requested", (d) => {
      this.consults = [...this.consults, d];
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
  protected async refresh(): Promise<void> {
    const list = await this.client.requestAll<{ workitems: Workitem[] }>("workitems.list", { agentId: this.me });
    const current = new Set(list.workitems.map((w) => w.workitemId));
    for (const id of this.workitems.keys()) {
      if (!current.has(id)) this.workitems.delete(id);
    }
    for (const w of list.workitems) this.upsert(w);
    await this.readUnread();
    this.changed();
  }

  protected async start(): Promise<void> {
    const list = await this.client.requestAll<{ workitems: Workitem[] }>("workitems.list", { agentId: this.me });
    for (const w of list.workitems) this.upsert(w);
    const [templates, recipients] = await Promise.all([
      this.client.request<{ available: boolean; templates: { templateId: string; text: string }[] }>("assist.templates"),
      this.client.requestAll<Recipients>("assist.recipients"),
    ]);
    this.assistAvailable = templates.available;
    this.templates = templates.templates;
    this.setRecipients(recipients);
    await this.readUnread();
    this.changed();
  }

  setRecipients(recipients: Recipients): void {
    this.supervisors = recipients.supervisors;
    this.agents = recipients.agents;
    for (const p of [...recipients.supervisors, ...recipients.agents]) this.names.set(p.userId, p.name);
  }

  /** Who may be asked for help or handed a workitem, as they are now. */
  async refreshRecipients(): Promise<void> {
    this.setRecipients(await this.client.requestAll<Recipients>("assist.recipients"));
    this.changed();
  }

  async setPresence(state: string): Promise<void> {
    await this.client.request("presence.set", { state });
    this.presence = state;
    this.changed();
  }

  /** Raise a hand with a template, to all available supervisors or to one person. */
  async raiseHand(templateId: string, to: string, workitemId?: string): Promise<void> {
    const template = this.templates.find((x) => x.templateId === templateId);
    const fields: Record<string, unknown> = { templateId, to: to === "supervisors" ? "supervisors" : { userId: to } };
    if (workitemId) fields.workitemId = workitemId;
    const data = await this.client.request<{ assistId: string; recipients: string[] }>("assist.request", fields);
    this.assist = { ...data, text: template?.text ?? "" };
    this.changed();
  }

  /** End the workitem or its coaching; the reply's workitem is the new state. */
  async act(action: "workitem.end" | "coaching.end" | "workitem.transfer", fields: Record<string, unknown>): Promise<void> {
    const data = await this.client.request<{ workitem?: Workitem }>(action, fields);
    if (data.workitem) this.upsert(data.workitem);
  }

  async joinCall(workitemId: string, config: ConsoleConfig, element: HTMLAudioElement | null): Promise<void> {
    const data = await this.client.request<{ contactRoom: Room }>("voice.join", { workitemId });
    this.contactRoom.set(workitemId, data.contactRoom);
    await this.joinAudio(workitemId, config, data.contactRoom, element);
    this.changed();
  }
}

export function AgentScreen({ client, timelines, config, session }: ScreenProps) {
  const [model, feedback] = useLiveScreen(() => new AgentModel(client, session.userId), [client, session.userId], timelines);
  const name = namer(session.userId, "You", (id) => model.names.get(id));
  const current = model.workitems.get(model.selected);

  return (
    <FeedbackScope feedback={feedback}>
      <div class="screen agent">
        <ErrorBar feedback={feedback} />
        <aside class="sidebar" aria-label="My workitems">
          <div class="row">
            <label for="presence">Presence</label>
            <select
              id="presence"
              data-testid="presence-select"
              value={model.presence}
              onChange={feedback.action((e: Event) => model.setPresence((e.target as HTMLSelectElement).value))}
            >
              <option value="available">Available</option>
              <option value="not_ready">Not ready</option>
            </select>
          </div>
          <h2>My workitems</h2>
          <WorkitemList
            workitems={[...model.workitems.values()]}
            selected={(w) => model.selected === w.workitemId}
            pressed
            details={(w) => [w.customer.name]}
            onSelect={(w) => {
              model.selected = w.workitemId;
              model.unreadBy.delete(w.workitemId);
              model.changed();
            }}
            unread={(w) => model.unreadBy.get(w.workitemId) ?? 0}
            empty="No workitems."
          />
          <RaiseHand model={model} current={current} name={name} />
          {(model.messages.length > 0 || model.unread > 0) && <DirectoryInbox model={model} name={name} />}
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
          <Conversation key={current.workitemId} workitem={current} model={model} timelines={timelines} config={config} name={name} />
        ) : (
          <main class="placeholder">
            <h2>No workitem selected</h2>
          </main>
        )}
      </div>
    </FeedbackScope>
  );
}

function DirectoryInbox({ model, name }: { model: AgentModel; name: (id?: string) => string }) {
  const feedback = useFeedback();
  const last = model.messages.at(-1);
  return (
    <Panel
      class="directory"
      label="Directory messages"
      level={3}
      title={
        <>
          Messages <Badge count={model.unread} label="unread" />
        </>
      }
    >
      <MessageList messages={model.messages} name={name} />
      {last && (
        <>
          <Composer
            inputTestId="directory-input"
            sendTestId="directory-send"
            label={`Reply to ${name(last.fromUserId)}`}
            placeholder={`Reply to ${name(last.fromUserId)}`}
            onSend={(text) => feedback.run(model.client.request("directory.send", { toUserId: last.fromUserId, text, replyTo: last.messageId }))}
          />
          {model.unread > 0 && (
            <button
              type="button"
              class="secondary"
              onClick={feedback.action(async () => {
                await model.markRead(last.fromUserId);
                model.changed();
              })}
            >
              Mark read
            </button>
          )}
        </>
      )}
    </Panel>
  );
}

function RaiseHand({ model, current, name }: { model: AgentModel; current?: Workitem; name: (id?: string) => string }) {
  const feedback = useFeedback();
  const [step, setStep] = useState<"closed" | "templates" | "recipients">("closed");
  const [template, setTemplate] = useState("");
  if (!model.assistAvailable) return null;
  const send = feedback.action(async (to: string) => {
    await model.raiseHand(template, to, current?.workitemId);
    setStep("closed");
  });
  return (
    <section class="raise-hand" aria-label="Raise hand">
      <button
        type="button"
        data-testid="assist-button"
        aria-expanded={step !== "closed"}
        onClick={() => {
          setStep(step === "closed" ? "templates" : "closed");
          void feedback.run(model.refreshRecipients());
        }}
      >
        Raise hand
      </button>
      {step === "templates" && (
        <List
          items={model.templates}
          itemKey={(t) => t.templateId}
          class="menu"
          label="What do you need?"
          render={(t) => (
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
          )}
        />
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
}) {
  const { workitem, model, timelines, name } = props;
  const feedback = useFeedback();
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
  const send = (action: "coach.react" | "coach.forward" | "consult.start", fields: Record<string, unknown>) => () =>
    void feedback.run(client.request(action, { workitemId: id, ...fields }));
  const act = (action: "workitem.end" | "coaching.end" | "workitem.transfer", fields: Record<string, unknown> = {}) => () =>
    void feedback.run(model.act(action, { workitemId: id, ...fields }));

  const coachActions = (entry: Entry) =>
    entry.authorRole === "supervisor" && entry.messageId ? (
      <div class="coach-actions">
        <button type="button" class="small secondary" data-testid="react-up" onClick={send("coach.react", { messageId: entry.messageId, reaction: "thumbs_up" })}>
          Helpful
        </button>
        <button type="button" class="small secondary" data-testid="react-down" onClick={send("coach.react", { messageId: entry.messageId, reaction: "thumbs_down" })}>
          Not helpful
        </button>
        {text && !ended && (
          <button type="button" class="small" data-testid="forward-button" onClick={send("coach.forward", { messageId: entry.messageId })}>
            Forward to customer
          </button>
        )}
      </div>
    ) : null;

  return (
    <>
      <main class="conversation" aria-label="Conversation">
        <header class="tile-header">
          <WorkitemTitle workitem={workitem} fallback={workitem.customer.name} details={[workitem.customer.name, workitem.channel]} />
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
                onFocus={() => void model.refreshRecipients().catch(() => undefined)}
                onInput={(e) => setTransferTo((e.target as HTMLInputElement).value.trim())}
              />
              <datalist id="transfer-people">
                {[...model.agents, ...model.supervisors].map((p) => (
                  <option key={p.userId} value={p.userId}>
                    {p.name}
                  </option>
                ))}
              </datalist>
              <button type="button" class="secondary" disabled={!transferTo} data-testid="transfer-button" onClick={act("workitem.transfer", { toAgentId: transferTo })}>
                Transfer
              </button>
              <button type="button" class="secondary" disabled={!transferTo} data-testid="consult-button" onClick={send("consult.start", { userId: transferTo })}>
                Consult
              </button>
              <button type="button" class="danger" data-testid="end-button" onClick={act("workitem.end")}>
                End
              </button>
            </div>
          )}
        </header>
        <Timeline entries={entries} viewer="agent" name={name} customerName={workitem.customer.name} kinds={CONVERSATION} label="Conversation with the customer" />
        {workitem.channel === "voice" && !isChimeCall(workitem) ? (
          <ConnectCallNote />
        ) : workitem.channel === "voice" ? (
          <VoiceBox audioRef={audioRef}>
            <button type="button" data-testid="voice-join" onClick={feedback.action(() => model.joinCall(id, props.config, audioRef.current))}>
              Join call
            </button>
            <p class="room" aria-live="polite">
              {contactRoom ? `In the call · meeting ${contactRoom.meetingId}` : "Not in the call"}
            </p>
            {[...(model.voiceModes.get(id)?.values() ?? [])].map((v) => (
              <p class="hint" key={v.name} data-testid="voice-mode" aria-live="polite">
                {v.mode === "whisper" ? `${v.name} is whispering to you` : v.mode === "barge" ? `${v.name} joined the call (barge)` : `${v.name} is listening`}
              </p>
            ))}
          </VoiceBox>
        ) : (
          text &&
          !ended && (
            <Composer
              inputTestId="message-input"
              sendTestId="message-send"
              label="Message to the customer"
              placeholder="Reply to the customer"
              onSend={(t) => feedback.run(client.send("message.send", { workitemId: id, text: t }))}
            />
          )
        )}
      </main>
      <Panel as="aside" class="coaching-panel" title="Coaching">
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
            <Composer
              inputTestId="coach-input"
              sendTestId="coach-send"
              label="Reply to the supervisor"
              placeholder="Reply to the supervisor"
              onSend={(t) => feedback.run(client.send("coach.send", { workitemId: id, text: t }))}
            />
            <button type="button" class="secondary" data-testid="end-coaching" onClick={act("coaching.end")}>
              End coaching
            </button>
          </>
        )}
      </Panel>
    </>
  );
}
