/** The supervisor's board: agents, their workitems, monitored tiles, assistance and directory. */
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { type ConsoleConfig, rest } from "./api";
import type { CoachingClient, Room, Workitem } from "./protocol";
import { Observable, type Timelines, useObservable } from "./store";
import { ChannelBadge, Composer, ErrorBar, Timeline, useErrors } from "./ui";
import { type AudioSession, joinAudio } from "./voice";

interface AgentCard {
  userId: string;
  name: string;
  presence: string;
  workitemCount: number;
}

interface AssistPopup {
  assistId: string;
  agentId: string;
  text: string;
  workitemId?: string;
  claimedBy?: string;
}

interface DirectoryMessage {
  messageId: string;
  fromUserId: string;
  text: string;
}

type VoiceMode = "listen" | "whisper" | "barge";
interface VoiceState {
  mode: VoiceMode;
  room: Room;
  media: string;
}

class SupervisorModel extends Observable {
  agents = new Map<string, AgentCard>();
  workitems = new Map<string, Map<string, Workitem>>();
  selectedAgent = "";
  open: string[] = [];
  monitoring = new Set<string>();
  voice = new Map<string, VoiceState>();
  popups: AssistPopup[] = [];
  unread = 0;
  messages: DirectoryMessage[] = [];
  notifications = true;
  audio = new Map<string, AudioSession>();

  constructor(
    readonly client: CoachingClient,
    readonly me: string,
  ) {
    super();
    client.on("presence.changed", (d) => {
      const card = this.agents.get(String(d.userId));
      if (card) {
        card.presence = String(d.state);
        this.changed();
      }
    });
    for (const name of ["workitem.assigned", "workitem.updated", "workitem.ended"] as const) {
      client.on(name, (d) => this.upsert(d.workitem as Workitem));
    }
    client.on("agent.watch.resumed", (d) => {
      for (const w of (d.workitems as Workitem[]) ?? []) this.upsert(w);
    });
    client.on("coaching.ended", (d) => {
      this.monitoring.delete(String(d.workitemId));
      this.changed();
    });
    client.on("assist.requested", (d) => {
      this.popups = [...this.popups, d as unknown as AssistPopup];
      this.changed();
    });
    client.on("assist.claimed", (d) => {
      const popup = this.popups.find((p) => p.assistId === d.assistId);
      if (popup) popup.claimedBy = String(d.supervisorId);
      this.changed();
    });
    client.on("assist.escalated", (d) => {
      if (d.assistId && !this.popups.some((p) => p.assistId === d.assistId)) {
        this.popups = [...this.popups, d as unknown as AssistPopup];
      }
      this.changed();
    });
    client.on("directory.unread", (d) => {
      this.unread = Number(d.count ?? 0);
      this.changed();
    });
    client.on("directory.message", (d) => {
      this.messages = [...this.messages, d as unknown as DirectoryMessage];
      this.changed();
    });
  }

  upsert(workitem: Workitem): void {
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
    this.changed();
  }

  /** Presence, counts and unread as they are now: after the first watches, and after a reconnect. */
  private async refresh(): Promise<void> {
    const agents = (await this.client.requestAll<{ agents: AgentCard[] }>("agents.list")).agents;
    for (const agent of agents) {
      const card = this.agents.get(agent.userId);
      if (card) card.presence = agent.presence;
      else this.agents.set(agent.userId, agent);
    }
    this.unread = (await this.client.request<{ count: number }>("directory.unread.get")).count;
    this.changed();
  }

  async load(): Promise<void> {
    let away = false;
    this.client.onState((state) => {
      if (state !== "live") away = true;
      else if (away) void this.refresh().catch(() => undefined);
    });
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

  async leaveAudio(workitemId: string): Promise<void> {
    const session = this.audio.get(workitemId);
    this.audio.delete(workitemId);
    await session?.leave();
  }
}

export function SupervisorScreen(props: {
  client: CoachingClient;
  timelines: Timelines;
  config: ConsoleConfig;
  token: string;
  me: string;
  myName: string;
}) {
  const { client, timelines, config } = props;
  const model = useMemo(() => new SupervisorModel(client, props.me), [client, props.me]);
  useObservable(model);
  useObservable(timelines);
  const [error, setError, clearError] = useErrors();

  useEffect(() => {
    model.load().catch(setError);
    rest<{ agentMessageNotification: boolean }>(config, props.token, "GET", "/me/settings")
      .then((s) => {
        model.notifications = s.agentMessageNotification;
        model.changed();
      })
      .catch(() => undefined);
  }, [model]);

  const name = (id?: string) => {
    if (!id) return "";
    if (id === props.me) return `${props.myName} (you)`;
    return model.agents.get(id)?.name ?? id;
  };
  const agents = [...model.agents.values()];
  const selected = model.selectedAgent;
  const selectedItems = [...(model.workitems.get(selected)?.values() ?? [])];

  const toggleNotifications = async () => {
    try {
      const next = !model.notifications;
      await rest(config, props.token, "PUT", "/me/settings", { agentMessageNotification: next });
      model.notifications = next;
      model.changed();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <div class="screen supervisor">
      <ErrorBar message={error} onClose={clearError} />
      <aside class="sidebar" aria-label="Agents">
        <h2>My agents</h2>
        {agents.length === 0 && <p class="empty">No agents on your teams.</p>}
        <ul class="agent-board">
          {agents.map((agent) => (
            <li key={agent.userId}>
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
            </li>
          ))}
        </ul>
        {selected && (
          <section aria-label={`Workitems of ${name(selected)}`}>
            <h3>{name(selected)}'s workitems</h3>
            {selectedItems.length === 0 && <p class="empty">No workitems.</p>}
            <ul class="workitem-list">
              {selectedItems.map((w) => (
                <li key={w.workitemId}>
                  <button
                    type="button"
                    class={`workitem-row ${model.open.includes(w.workitemId) ? "selected" : ""}`}
                    data-testid="workitem-row"
                    data-workitem-id={w.workitemId}
                    onClick={() => model.openTile(w.workitemId).catch(setError)}
                  >
                    <ChannelBadge channel={w.channel} />
                    <span class="subject">{w.subject || w.customer.name}</span>
                    <span class="sub">
                      {w.customer.name} · {w.channel}
                      {w.status === "ended" ? " · ended" : ""}
                      {w.coaching.active ? " · coached" : ""}
                    </span>
                  </button>
                </li>
              ))}
            </ul>
          </section>
        )}
        <label class="toggle">
          <input type="checkbox" checked={model.notifications} onChange={toggleNotifications} />
          Agent message pop-ups
        </label>
      </aside>

      <main class="tiles" aria-label="Monitored workitems">
        {model.open.length === 0 && (
          <div class="placeholder">
            <h2>Nothing open</h2>
            <p>Select an agent, then one of their workitems to monitor it. You can open several at once.</p>
          </div>
        )}
        {model.open.map((id) => (
          <WorkitemTile key={id} id={id} model={model} timelines={timelines} config={config} name={name} onError={setError} />
        ))}
      </main>

      <aside class="sidebar right" aria-label="Assistance and messages">
        <h2>
          Assistance{" "}
          {model.unread > 0 && (
            <span class="badge" data-testid="unread-badge">
              {model.unread}
              <span class="visually-hidden"> unread</span>
            </span>
          )}
        </h2>
        {model.popups.length === 0 && <p class="empty">No requests.</p>}
        {model.popups.map((popup) => (
          <div class="assist-popup" data-testid="assist-popup" role="alert" key={popup.assistId}>
            <p>
              <strong>{name(popup.agentId)}</strong> raised a hand: {popup.text}
            </p>
            {popup.claimedBy ? (
              <p class="hint">Claimed by {name(popup.claimedBy)}</p>
            ) : (
              <button
                type="button"
                data-testid="claim-button"
                onClick={async () => {
                  try {
                    await client.request("assist.claim", { assistId: popup.assistId });
                    popup.claimedBy = props.me;
                    model.changed();
                    if (popup.workitemId) await model.monitor(popup.workitemId);
                  } catch (e) {
                    setError(e);
                  }
                }}
              >
                Claim
              </button>
            )}
          </div>
        ))}
        <Directory client={client} model={model} name={name} onError={setError} />
      </aside>
    </div>
  );
}

function WorkitemTile(props: {
  id: string;
  model: SupervisorModel;
  timelines: Timelines;
  config: ConsoleConfig;
  name: (id?: string) => string;
  onError: (e: unknown) => void;
}) {
  const { id, model, timelines, name, onError } = props;
  const workitem = model.findWorkitem(id);
  const monitoring = model.monitoring.has(id);
  const voice = model.voice.get(id);
  const audioRef = useRef<HTMLAudioElement>(null);
  const canCoach = monitoring && workitem && workitem.channel !== "voice" && workitem.channel !== "email";

  const setVoice = async (mode: VoiceMode) => {
    try {
      const action = mode === "listen" ? (voice ? "voice.listen" : "voice.monitor") : mode === "whisper" ? "voice.whisper" : "voice.barge";
      const data = await model.client.request<{ contactRoom?: Room; coachRoom?: Room }>(action, { workitemId: id });
      const room = (data.coachRoom ?? data.contactRoom) as Room;
      await model.leaveAudio(id);
      const session = await joinAudio(props.config, room, audioRef.current);
      model.audio.set(id, session);
      model.voice.set(id, { mode, room, media: session.media });
      model.changed();
    } catch (e) {
      onError(e);
    }
  };

  return (
    <section class="tile" aria-label={`Workitem ${workitem?.subject ?? id}`}>
      <header>
        <div>
          <h2>
            <ChannelBadge channel={workitem?.channel ?? ""} /> {workitem?.subject || id}
          </h2>
          <p class="sub">
            {workitem ? `${workitem.customer.name} · ${name(workitem.agentId)} · ${workitem.channel}` : ""}
            {workitem?.status === "ended" ? " · ended" : ""}
          </p>
        </div>
        <div class="actions">
          {monitoring ? (
            <button type="button" class="secondary" data-testid="stop-button" onClick={() => model.stop(id).catch(onError)}>
              Stop monitoring
            </button>
          ) : (
            <button type="button" data-testid="monitor-button" onClick={() => model.monitor(id).catch(onError)}>
              Monitor
            </button>
          )}
          <button type="button" class="link" aria-label="Close tile" onClick={() => model.close(id)}>
            ✕
          </button>
        </div>
      </header>
      <Timeline entries={timelines.of(id)} viewer="supervisor" name={name} customerName={workitem?.customer.name} label="Timeline (as the agent sees it)" />
      {workitem?.channel === "voice" && monitoring && (
        <fieldset class="voice">
          <legend class="visually-hidden">Voice</legend>
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
          {/* biome-ignore lint/a11y/useMediaCaption: live call audio, there is no caption track to offer */}
          <audio ref={audioRef} />
        </fieldset>
      )}
      {canCoach && (
        <Composer
          inputTestId="coach-input"
          sendTestId="coach-send"
          label="Coach message"
          placeholder="Coach the agent (the customer never sees this)"
          onSend={(text) => model.client.request("coach.send", { workitemId: id, text }).catch(onError)}
        />
      )}
      {monitoring && !canCoach && workitem?.channel !== "voice" && <p class="hint">Coaching messages are not available on this channel.</p>}
    </section>
  );
}

function Directory(props: {
  client: CoachingClient;
  model: SupervisorModel;
  name: (id?: string) => string;
  onError: (e: unknown) => void;
}) {
  const { client, model, name, onError } = props;
  const [to, setTo] = useState("");
  return (
    <section class="directory" aria-label="Directory messages">
      <h2>Messages</h2>
      <ul class="messages">
        {model.messages.map((m) => (
          <li key={m.messageId} data-testid="directory-message">
            <strong>{name(m.fromUserId)}:</strong> {m.text}
          </li>
        ))}
      </ul>
      {model.unread > 0 && (
        <button
          type="button"
          class="secondary"
          onClick={async () => {
            try {
              for (const from of new Set(model.messages.map((m) => m.fromUserId))) {
                const left = await client.request<{ count: number }>("directory.read", { withUserId: from });
                model.unread = left.count;
              }
              model.changed();
            } catch (e) {
              onError(e);
            }
          }}
        >
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
        onSend={(text) => client.request("directory.send", { toUserId: to, text }).catch(onError)}
      />
    </section>
  );
}
