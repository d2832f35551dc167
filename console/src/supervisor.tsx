/** The supervisor's board: agents, their workitems, monitored tiles, assistance and directory. */
import { useEffect, useRef, useState } from "preact/hooks";
import { type ConsoleConfig, rest } from "./api";
import { Floor, type FloorRow } from "./floor";
import { List } from "./kit/collections";
import { ErrorBar, FeedbackScope, useFeedback } from "./kit/feedback";
import { Badge, Panel } from "./kit/panel";
import { LiveModel, namer, useLiveScreen } from "./model";
import type { Alert, CoachingClient, EventData, PendingRequest, Room, Workitem } from "./protocol";
import type { ScreenProps } from "./screens";
import type { Timelines } from "./store";
import { Composer, ConnectCallNote, isChimeCall, MessageList, Timeline, VoiceBox, WorkitemList, WorkitemTitle } from "./ui";

interface AgentCard {
  userId: string;
  name: string;
  presence: string;
  workitemCount: number;
}

type AssistPopup = EventData["assist.requested"] & { requestedAt?: string; escalated?: boolean | string };

/** Agents in their names' natural order: agent-2 before agent-10. */
const natural = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

/** Whether the user wants sound and desktop notifications (asked once, kept in this browser). */
const ALERTS_KEY = "coaching.floorAlerts";

type VoiceMode = "listen" | "whisper" | "barge";
interface VoiceState {
  mode: VoiceMode;
  room: Room;
  media: string;
}

class SupervisorModel extends LiveModel {
  agents = new Map<string, AgentCard>();
  workitems = new Map<string, Map<string, Workitem>>();
  selectedAgent = "";
  open: string[] = [];
  monitoring = new Set<string>();
  voice = new Map<string, VoiceState>();
  popups: AssistPopup[] = [];
  notifications = true;
  /** Open and acked attention alerts of my agents' workitems, by alert id (docs/attention.md). */
  alerts = new Map<string, Alert>();
  /** The toggle waits for the saved setting: a click before it arrived would flip the default. */
  settingsRead = false;
  /** Sound and desktop notifications for raised hands and alerts (off until the user turns them on). */
  alerting = localStorage.getItem(ALERTS_KEY) === "on";

  constructor(client: CoachingClient, me: string) {
    super(client, me);
    client.on("presence.changed", (d) => {
      const card = this.agents.get(d.userId);
      if (card) {
        card.presence = d.state;
        this.changed();
      }
    });
    client.on("agent.watch.resumed", (d) => {
      for (const w of d.workitems ?? []) this.upsert(w);
    });
    client.on("coaching.ended", (d) => {
      this.monitoring.delete(d.workitemId);
      this.changed();
    });
    client.on("assist.requested", (d, at) => {
      this.addPopup({ ...d, requestedAt: at });
      this.notify(`${this.agentName(d.agentId)} raised a hand`, d.text);
    });
    client.on("assist.claimed", (d) => {
      // Claimed by anyone: the pop-up goes; the claimer is named where the agent sees it.
      this.popups = this.popups.filter((p) => p.assistId !== d.assistId);
      this.changed();
    });
    const keep = (d: { alert: Alert }) => {
      this.alerts.set(d.alert.alertId, d.alert);
      this.changed();
    };
    client.on("attention.raised", (d) => {
      keep(d);
      this.notify(`Attention: ${this.agentName(d.alert.agentId)}`, d.alert.reason);
    });
    client.on("attention.acked", keep);
    client.on("attention.cleared", (d) => {
      this.alerts.delete(d.alert.alertId);
      this.changed();
    });
    client.on("assist.escalated", (d, at) => {
      const known = this.popups.find((p) => p.assistId === d.assistId);
      if (known) known.escalated = d.stage ?? true;
      else this.addPopup({ ...d, requestedAt: at, escalated: d.stage ?? true });
      this.notify(`Escalated: ${this.agentName(d.agentId)} needs help`, d.text);
      this.changed();
    });
  }

  agentName(id: string): string {
    return this.agents.get(id)?.name ?? id;
  }

  addPopup(popup: AssistPopup): void {
    if (!this.popups.some((p) => p.assistId === popup.assistId)) this.popups = [...this.popups, popup];
    this.changed();
  }

  /** Requests nobody has claimed yet, as the server lists them (first load and every reconnect). */
  async readPending(): Promise<void> {
    const data = await this.client.request<{ requests: PendingRequest[] }>("assist.pending");
    const kept = new Map(this.popups.map((p) => [p.assistId, p]));
    this.popups = data.requests.map((r) => ({ ...kept.get(r.assistId), ...r }));
  }

  /** What the tab title counts: unclaimed hands, open alerts and unread messages. */
  pendingCount(): number {
    return this.popups.length + [...this.alerts.values()].filter((a) => a.state === "open").length + this.unread;
  }

  /** A sound and a desktop notification, when the user turned them on. */
  notify(title: string, body: string): void {
    if (!this.alerting) return;
    try {
      const audio = new AudioContext();
      const tone = audio.createOscillator();
      tone.frequency.value = 880;
      tone.connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.15);
    } catch {
      // no audio output: the title and the pop-up still say it
    }
    if (typeof Notification !== "undefined" && Notification.permission === "granted") new Notification(title, { body });
  }

  /** Turn sound and desktop notifications on or off; the browser's permission is asked once. */
  async setAlerting(on: boolean): Promise<void> {
    this.alerting = on;
    localStorage.setItem(ALERTS_KEY, on ? "on" : "off");
    if (on && typeof Notification !== "undefined" && Notification.permission === "default") await Notification.requestPermission();
    this.changed();
  }

  /** The floor's rows: every workitem of my agents, with its agent, alerts and raised hands. */
  floorRows(): FloorRow[] {
    const rows: FloorRow[] = [];
    for (const [agentId, items] of this.workitems) {
      const card = this.agents.get(agentId);
      for (const workitem of items.values()) {
        rows.push({
          workitem,
          agentName: card?.name ?? agentId,
          presence: card?.presence ?? "offline",
          alerts: [...this.alerts.values()].filter((a) => a.workitemId === workitem.workitemId),
          hands: this.popups.filter((p) => p.workitemId === workitem.workitemId).length,
          monitoring: this.monitoring.has(workitem.workitemId),
        });
      }
    }
    return rows;
  }

  /** My agents in their names' natural order. */
  sortedAgents(): AgentCard[] {
    return [...this.agents.values()].sort((a, b) => natural.compare(a.name, b.name) || natural.compare(a.userId, b.userId));
  }

  upsert(workitem: Workitem): void {
    for (const m of workitem.monitoredBy ?? []) this.names.set(m.userId, m.name);
    const list = this.workitems.get(workitem.agentId) ?? new Map<string, Workitem>();
    list.set(workitem.workitemId, workitem);
    this.workitems.set(workitem.agentId, list);
    for (const [agentId, items] of this.workitems) {
      if (agentId !== workitem.agentId) items.delete(workitem.workitemId); // transferred away
    }
    for (const [agentId, card] of this.agents) {
      card.workitemCount = [...(this.workitems.get(agentId)?.values() ?? [])].filter((w) => w.status === "active").length;
    }
    if (workitem.coaching.supervisors.includes(this.me)) this.monitoring.add(workitem.workitemId);
    else this.monitoring.delete(workitem.workitemId);
    this.changed();
  }

  /** Presence, counts and unread as they are now: after the first watches, and after a reconnect. */
  protected async refresh(): Promise<void> {
    const agents = (await this.client.requestAll<{ agents: AgentCard[] }>("agents.list")).agents;
    for (const agent of agents) {
      const card = this.agents.get(agent.userId);
      if (card) card.presence = agent.presence;
      else this.agents.set(agent.userId, agent);
    }
    await this.readUnread();
    await this.readAttention();
    await this.readPending();
    this.changed();
  }

  /** The attention queue as the server ranks it (after the first watches, and after a reconnect). */
  async readAttention(): Promise<void> {
    const data = await this.client.requestAll<{ items: { workitem: Workitem; alerts: Alert[] }[] }>("attention.list");
    this.alerts.clear();
    for (const item of data.items) {
      this.upsert(item.workitem);
      for (const alert of item.alerts) this.alerts.set(alert.alertId, alert);
    }
  }

  /** Workitems with alerts, highest score (open severities) first, then the oldest alert, then id. */
  attention(): { workitemId: string; score: number; alerts: Alert[] }[] {
    const byWorkitem = new Map<string, Alert[]>();
    for (const alert of this.alerts.values()) byWorkitem.set(alert.workitemId, [...(byWorkitem.get(alert.workitemId) ?? []), alert]);
    const items = [...byWorkitem].map(([workitemId, alerts]) => ({
      workitemId,
      alerts: alerts.sort((a, b) => a.raisedAt.localeCompare(b.raisedAt)),
      score: alerts.filter((a) => a.state === "open").reduce((sum, a) => sum + a.severity, 0),
    }));
    return items.sort(
      (a, b) => b.score - a.score || a.alerts[0].raisedAt.localeCompare(b.alerts[0].raisedAt) || a.workitemId.localeCompare(b.workitemId),
    );
  }

  async ack(alertId: string): Promise<void> {
    const data = await this.client.request<{ alert: Alert }>("attention.ack", { alertId });
    this.alerts.set(alertId, data.alert);
    this.changed();
  }

  protected async start(): Promise<void> {
    const agents = (await this.client.requestAll<{ agents: AgentCard[] }>("agents.list")).agents;
    for (const agent of agents) this.agents.set(agent.userId, agent);
    this.changed();
    await Promise.all(
      agents.map(async (agent) => {
        const data = await this.client.watch(agent.userId);
        for (const w of data.workitems) this.upsert(w);
        const card = this.agents.get(agent.userId);
        if (card) card.workitemCount = agent.workitemCount;
      }),
    );
    // Presence is pushed only to watchers: a change between agents.list and the watches above would
    // be missed, so read the board once more now that every watch is in place.
    await this.refresh();
  }

  findWorkitem(id: string): Workitem | undefined {
    for (const items of this.workitems.values()) {
      const found = items.get(id);
      if (found) return found;
    }
    return undefined;
  }

  async openTile(workitemId: string): Promise<void> {
    if (!this.open.includes(workitemId)) this.open = [...this.open, workitemId];
    this.changed();
    await this.client.track(workitemId);
  }

  async monitor(workitemId: string): Promise<void> {
    const data = await this.client.request<{ workitem: Workitem; entries: []; hasMore: boolean }>("monitor.start", {
      workitemId,
    });
    this.monitoring.add(workitemId);
    this.upsert(data.workitem);
    if (!this.open.includes(workitemId)) this.open = [...this.open, workitemId];
    await this.client.track(workitemId, { entries: data.entries, hasMore: data.hasMore });
    this.changed();
  }

  async stop(workitemId: string): Promise<void> {
    await this.client.request("monitor.stop", { workitemId });
    this.monitoring.delete(workitemId);
    await this.leaveAudio(workitemId);
    this.voice.delete(workitemId);
    this.changed();
  }

  close(workitemId: string): void {
    this.open = this.open.filter((id) => id !== workitemId);
    this.client.untrack(workitemId);
    this.changed();
  }

  /** Claim a raised hand, then monitor the workitem it is about. */
  async claim(popup: AssistPopup): Promise<void> {
    await this.client.request("assist.claim", { assistId: popup.assistId });
    this.popups = this.popups.filter((p) => p.assistId !== popup.assistId);
    this.changed();
    if (popup.workitemId) await this.monitor(popup.workitemId);
  }

  /** Listen, whisper or barge: the room to join comes with the reply. */
  async setVoice(workitemId: string, mode: VoiceMode, config: ConsoleConfig, element: HTMLAudioElement | null): Promise<void> {
    const action = mode === "listen" ? (this.voice.has(workitemId) ? "voice.listen" : "voice.monitor") : mode === "whisper" ? "voice.whisper" : "voice.barge";
    const data = await this.client.request<{ contactRoom?: Room; coachRoom?: Room }>(action, { workitemId });
    const room = (data.coachRoom ?? data.contactRoom) as Room;
    const session = await this.joinAudio(workitemId, config, room, element);
    this.voice.set(workitemId, { mode, room, media: session.media });
    this.changed();
  }

  /** Mark every conversation with a message on the screen read. */
  async readAll(): Promise<void> {
    for (const from of new Set(this.messages.map((m) => m.fromUserId))) await this.markRead(from);
    this.changed();
  }
}

export function SupervisorScreen({ client, timelines, config, token, session }: ScreenProps) {
  const [model, feedback] = useLiveScreen(() => new SupervisorModel(client, session.userId), [client, session.userId], timelines);
  useEffect(() => {
    rest<{ agentMessageNotification: boolean }>(config, token, "GET", "/me/settings")
      .then((s) => {
        model.notifications = s.agentMessageNotification;
      })
      .catch(() => undefined)
      .finally(() => {
        model.settingsRead = true;
        model.changed();
      });
  }, [model]);

  const name = namer(session.userId, `${session.name} (you)`, (id) => model.agents.get(id)?.name ?? model.names.get(id));
  const selected = model.selectedAgent;
  const pending = model.pendingCount();
  useEffect(() => {
    document.title = pending > 0 ? `(${pending}) Supervisor · Coaching` : "Supervisor · Coaching";
  }, [pending]);

  const toggleNotifications = feedback.action(async () => {
    const next = !model.notifications;
    await rest(config, token, "PUT", "/me/settings", { agentMessageNotification: next });
    model.notifications = next;
    model.changed();
  });

  return (
    <FeedbackScope feedback={feedback}>
      <div class="screen supervisor">
        <ErrorBar feedback={feedback} />
        <Panel as="aside" class="sidebar" label="Agents" title="My agents">
          <List
            items={model.sortedAgents()}
            itemKey={(agent) => agent.userId}
            class="agent-board"
            empty="No agents on your teams."
            render={(agent) => (
              <button
                type="button"
                class={`agent-card ${selected === agent.userId ? "selected" : ""}`}
                data-testid="agent-row"
                data-agent-id={agent.userId}
                aria-pressed={selected === agent.userId}
                onClick={() => {
                  model.selectedAgent = agent.userId;
                  model.changed();
                }}
              >
                <span class={`presence presence-${agent.presence}`} aria-hidden="true" />
                <span class="agent-name" title={agent.name}>
                  {agent.name}
                </span>
                <span class="presence-text">{agent.presence.replace("_", " ")}</span>
                <span class="count" title="Active workitems">
                  {agent.workitemCount} <span class="visually-hidden">active workitems</span>
                </span>
              </button>
            )}
          />
          {selected && (
            <Panel label={`Workitems of ${name(selected)}`} title={`${name(selected)}'s workitems`} level={3}>
              <WorkitemList
                workitems={[...(model.workitems.get(selected)?.values() ?? [])]}
                selected={(w) => model.open.includes(w.workitemId)}
                details={(w) => [w.customer.name, w.channel]}
                onSelect={(w) => void feedback.run(model.openTile(w.workitemId))}
                empty="No workitems."
              />
            </Panel>
          )}
          <label class="toggle">
            <input type="checkbox" checked={model.notifications} disabled={!model.settingsRead} onChange={toggleNotifications} />
            Agent message pop-ups
          </label>
          <label class="toggle">
            <input
              type="checkbox"
              data-testid="alerting-toggle"
              checked={model.alerting}
              onChange={feedback.action(() => model.setAlerting(!model.alerting))}
            />
            Sound and desktop notifications
          </label>
        </Panel>

        <main class="tiles" aria-label="Floor and monitored workitems">
          <Floor
            rows={model.floorRows()}
            onMonitor={(id) => void feedback.run(model.monitor(id))}
            onOpen={(id) => void feedback.run(model.openTile(id))}
          />
          {model.open.map((id) => (
            <WorkitemTile key={id} id={id} model={model} timelines={timelines} config={config} name={name} />
          ))}
        </main>

        <Panel
          as="aside"
          class="sidebar right"
          label="Assistance and messages"
          title={
            <>
              Assistance <Badge count={model.unread} label="unread" testId="unread-badge" />
            </>
          }
        >
          <AttentionPanel model={model} name={name} />
          {model.popups.length === 0 && <p class="empty">No requests.</p>}
          {model.popups.map((popup) => {
            const workitem = popup.workitemId ? model.findWorkitem(popup.workitemId) : undefined;
            return (
              <div class="assist-popup" data-testid="assist-popup" data-assist-id={popup.assistId} role="alert" key={popup.assistId}>
                <p>
                  <strong>{name(popup.agentId)}</strong> raised a hand: {popup.text}
                </p>
                <p class="hint">
                  {popup.workitemId ? `About ${workitem ? `${workitem.customer.name} (${workitem.subject || workitem.channel})` : popup.workitemId}` : "No workitem"}
                  {popup.requestedAt && (
                    <>
                      {" · at "}
                      <time dateTime={popup.requestedAt}>{new Date(popup.requestedAt).toLocaleTimeString()}</time>
                    </>
                  )}
                  {popup.escalated ? <strong class="escalated"> · escalated{typeof popup.escalated === "string" ? ` (${popup.escalated})` : ""}</strong> : null}
                </p>
                <button type="button" data-testid="claim-button" onClick={feedback.action(() => model.claim(popup))}>
                  Claim
                </button>
              </div>
            );
          })}
          <Directory model={model} name={name} />
        </Panel>
      </div>
    </FeedbackScope>
  );
}

/** Which conversations need me now: my agents' workitems with alerts, highest score first, live. */
function AttentionPanel({ model, name }: { model: SupervisorModel; name: (id?: string) => string }) {
  const feedback = useFeedback();
  const items = model.attention();
  return (
    <section class="attention-panel" data-testid="attention-panel" aria-label="Attention">
      <h3>Needs attention</h3>
      {items.length === 0 && <p class="empty">Nothing needs you now.</p>}
      {items.map((item) => {
        const workitem = model.findWorkitem(item.workitemId);
        return (
          <div
            class="attention-item"
            data-testid="attention-item"
            data-workitem-id={item.workitemId}
            data-alert-id={item.alerts[0].alertId}
            key={item.workitemId}
          >
            <p>
              <strong>{workitem ? workitem.customer.name : item.workitemId}</strong> with {name(item.alerts[0].agentId)}{" "}
              <span class="count" title="Score">
                {item.score}
              </span>
            </p>
            <ul>
              {item.alerts.map((alert) => (
                <li key={alert.alertId} data-alert-id={alert.alertId} class={`severity-${alert.severity}`}>
                  {alert.reason}{" "}
                  {alert.state === "acked" ? (
                    <span class="hint">taken by {name(alert.ackedBy)}</span>
                  ) : (
                    <button type="button" data-testid="ack-button" onClick={feedback.action(() => model.ack(alert.alertId))}>
                      Take
                    </button>
                  )}
                </li>
              ))}
            </ul>
            <button type="button" data-testid="attention-monitor" onClick={feedback.action(() => model.monitor(item.workitemId))}>
              Monitor
            </button>
          </div>
        );
      })}
    </section>
  );
}

function WorkitemTile(props: {
  id: string;
  model: SupervisorModel;
  timelines: Timelines;
  config: ConsoleConfig;
  name: (id?: string) => string;
}) {
  const { id, model, timelines, name } = props;
  const feedback = useFeedback();
  const workitem = model.findWorkitem(id);
  const monitoring = model.monitoring.has(id);
  const voice = model.voice.get(id);
  const audioRef = useRef<HTMLAudioElement>(null);
  const canCoach = monitoring && workitem && workitem.channel !== "voice" && workitem.channel !== "email";
  const setVoice = feedback.action((mode: VoiceMode) => model.setVoice(id, mode, props.config, audioRef.current));

  return (
    <section class="tile" aria-label={`Workitem ${workitem?.subject ?? id}`}>
      <header>
        <WorkitemTitle
          workitem={workitem}
          fallback={id}
          details={workitem ? [workitem.customer.name, name(workitem.agentId), workitem.channel] : []}
        />
        <div class="actions">
          {monitoring ? (
            <button type="button" class="secondary" data-testid="stop-button" onClick={feedback.action(() => model.stop(id))}>
              Stop monitoring
            </button>
          ) : workitem?.status === "ended" ? (
            <span class="hint">Ended</span>
          ) : (
            <button type="button" data-testid="monitor-button" onClick={feedback.action(() => model.monitor(id))}>
              Monitor
            </button>
          )}
          <button type="button" class="link" aria-label="Close tile" onClick={() => model.close(id)}>
            ✕
          </button>
        </div>
      </header>
      {(workitem?.monitoredBy?.length ?? 0) > 0 && (
        <p class="hint" data-testid="monitored-by">
          Monitored by {workitem?.monitoredBy?.map((m) => (m.userId === model.me ? "you" : m.name)).join(", ")}
        </p>
      )}
      {[...(model.voiceModes.get(id)?.entries() ?? [])]
        .filter(([sid]) => sid !== model.me)
        .map(([sid, v]) => (
          <p class="hint" key={sid} data-testid="voice-mode" aria-live="polite">
            {v.name}: {v.mode}
          </p>
        ))}
      <Timeline entries={timelines.of(id)} viewer="supervisor" name={name} customerName={workitem?.customer.name} label="Timeline (as the agent sees it)" />
      {workitem?.channel === "voice" && monitoring && !isChimeCall(workitem) && <ConnectCallNote />}
      {isChimeCall(workitem) && monitoring && (
        <VoiceBox audioRef={audioRef}>
          <button type="button" data-testid="voice-listen" aria-pressed={voice?.mode === "listen"} onClick={() => setVoice("listen")}>
            Listen
          </button>
          <button type="button" data-testid="voice-whisper" aria-pressed={voice?.mode === "whisper"} onClick={() => setVoice("whisper")}>
            Whisper
          </button>
          <button type="button" data-testid="voice-barge" aria-pressed={voice?.mode === "barge"} onClick={() => setVoice("barge")}>
            Barge
          </button>
          <p class="room" data-testid="voice-state" aria-live="polite">
            {voice
              ? `${voice.mode} · meeting ${voice.room.meetingId} · audio ${voice.room.capabilities?.audio ?? "?"}${voice.media === "none" ? " (no media: local fake provider)" : ""}`
              : "Not connected to the call"}
          </p>
        </VoiceBox>
      )}
      {canCoach && (
        <Composer
          inputTestId="coach-input"
          sendTestId="coach-send"
          label="Coach message"
          placeholder="Coach the agent (the customer never sees this)"
          onSend={(text) => feedback.run(model.client.send("coach.send", { workitemId: id, text }))}
        />
      )}
      {monitoring && !canCoach && workitem?.channel !== "voice" && <p class="hint">Coaching messages are not available on this channel.</p>}
    </section>
  );
}

function Directory({ model, name }: { model: SupervisorModel; name: (id?: string) => string }) {
  const feedback = useFeedback();
  const [to, setTo] = useState("");
  return (
    <Panel class="directory" label="Directory messages" title="Messages">
      <MessageList messages={model.messages} name={name} />
      {model.unread > 0 && (
        <button type="button" class="secondary" onClick={feedback.action(() => model.readAll())}>
          Mark read
        </button>
      )}
      <label for="directory-to">To</label>
      <select id="directory-to" value={to} onChange={(e) => setTo((e.target as HTMLSelectElement).value)}>
        <option value="">Choose an agent…</option>
        {[...model.agents.values()].map((a) => (
          <option key={a.userId} value={a.userId}>
            {a.name}
          </option>
        ))}
      </select>
      <Composer
        inputTestId="directory-input"
        sendTestId="directory-send"
        label="Directory message"
        placeholder="Message"
        disabled={!to}
        onSend={(text) => feedback.run(model.client.request("directory.send", { toUserId: to, text }))}
      />
    </Panel>
  );
}
