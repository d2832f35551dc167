/**
 * The supervisor's floor: every active conversation of their agents in one table, longest-waiting
 * customer first, with running wait timers, who monitors, alerts and raised hands, and one click to
 * monitor (docs/console.md, rules W18.x). Rows come from the workitems the board watches, kept live by
 * `workitem.updated` (`lastActivityAt`, `waitingSince`, `monitoredBy`, `lastMessage`).
 */
import { useState } from "preact/hooks";
import { formatElapsed as formatAge, useNow } from "./kit/clock";
import { type Column, DataTable } from "./kit/collections";
import type { Alert, Channel, Workitem } from "./protocol";

export interface FloorRow {
  workitem: Workitem;
  agentName: string;
  presence: string;
  /** Open and acked alerts of the workitem. */
  alerts: Alert[];
  /** Unclaimed raised hands about it. */
  hands: number;
  monitoring: boolean;
}

/** Seconds of customer wait at which the timer turns amber, then red. */
export const WAIT_WARN_SECONDS = 30;
export const WAIT_LATE_SECONDS = 120;

const NOT_WAITING = Number.MAX_SAFE_INTEGER;

export function waitLevel(waitMs: number): "ok" | "warn" | "late" {
  return waitMs >= WAIT_LATE_SECONDS * 1000 ? "late" : waitMs >= WAIT_WARN_SECONDS * 1000 ? "warn" : "ok";
}

const CHANNELS: Channel[] = ["chat", "sms", "social", "voice", "email"];

export function Floor(props: { rows: FloorRow[]; onMonitor: (workitemId: string) => void; onOpen: (workitemId: string) => void }) {
  const now = useNow();
  const [channel, setChannel] = useState("");
  const [waitingOnly, setWaitingOnly] = useState(false);
  const rows = props.rows.filter(
    (r) => r.workitem.status === "active" && (!channel || r.workitem.channel === channel) && (!waitingOnly || r.workitem.waitingSince),
  );
  const waiting = props.rows.filter((r) => r.workitem.waitingSince && r.workitem.status === "active").length;
  const columns: Column<FloorRow>[] = [
    {
      key: "agent",
      label: "Agent",
      value: (r) => r.agentName,
      cell: (r) => (
        <span class="floor-agent">
          <span class={`presence presence-${r.presence}`} aria-hidden="true" />
          {r.agentName}
          <span class="visually-hidden"> ({r.presence.replace("_", " ")})</span>
        </span>
      ),
    },
    { key: "customer", label: "Customer", value: (r) => r.workitem.customer.name },
    {
      key: "conversation",
      label: "Subject and last message",
      value: (r) => `${r.workitem.subject} ${r.workitem.lastMessage?.text ?? ""}`,
      cell: (r) => (
        <span class="floor-conversation">
          <span class="subject">{r.workitem.subject || "(no subject)"}</span>
          {r.workitem.lastMessage && (
            <span class="last" title={r.workitem.lastMessage.text}>
              {r.workitem.lastMessage.author === "customer" ? "Customer: " : "Agent: "}
              {r.workitem.lastMessage.text}
            </span>
          )}
        </span>
      ),
    },
    {
      key: "wait",
      label: "Customer wait",
      value: (r) => (r.workitem.waitingSince ? Date.parse(r.workitem.waitingSince) : NOT_WAITING),
      cell: (r) => {
        const since = r.workitem.waitingSince;
        if (!since)
          return (
            <span class="hint" title="answered">
              – <span class="visually-hidden">answered</span>
            </span>
          );
        const ms = now - Date.parse(since);
        return (
          <span class={`wait wait-${waitLevel(ms)}`} data-testid="floor-wait">
            {formatAge(ms)}
          </span>
        );
      },
    },
    {
      key: "alerts",
      label: "Alerts",
      value: (r) => -(r.alerts.filter((a) => a.state === "open").reduce((n, a) => n + a.severity, 0) * 10 + r.hands),
      cell: (r) => (
        <span class="floor-alerts">
          {r.alerts.length > 0 && (
            <span class="alert-count" title={r.alerts.map((a) => a.reason).join("; ")}>
              {r.alerts.length} {r.alerts.length === 1 ? "alert" : "alerts"}
            </span>
          )}
          {r.hands > 0 && (
            <span class="hand" data-testid="floor-hand">
              ✋ <span class="visually-hidden">raised hand</span>
            </span>
          )}
        </span>
      ),
    },
    {
      key: "action",
      label: "Action",
      hiddenLabel: true,
      cell: (r) =>
        r.monitoring ? (
          <button type="button" class="secondary" onClick={() => props.onOpen(r.workitem.workitemId)}>
            Open
          </button>
        ) : (
          <button
            type="button"
            data-testid="floor-monitor"
            aria-label={`Monitor ${r.workitem.customer.name} with ${r.agentName}`}
            onClick={() => props.onMonitor(r.workitem.workitemId)}
          >
            Monitor
          </button>
        ),
    },
    { key: "channel", label: "Channel", value: (r) => r.workitem.channel },
    {
      key: "age",
      label: "Age",
      value: (r) => Date.parse(r.workitem.createdAt),
      cell: (r) => formatAge(now - Date.parse(r.workitem.createdAt)),
    },
    {
      key: "monitors",
      label: "Monitored by",
      value: (r) => (r.workitem.monitoredBy ?? []).map((m) => m.name).join(", "),
    },
  ];
  return (
    <section class="floor" aria-label="Floor" data-testid="floor">
      <div class="floor-tools">
        <h2>
          Floor <span class="hint">{`${rows.length} conversations · ${waiting} waiting`}</span>
        </h2>
        <label>
          Channel{" "}
          <select value={channel} onChange={(e) => setChannel((e.target as HTMLSelectElement).value)} data-testid="floor-channel">
            <option value="">all</option>
            {CHANNELS.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </label>
        <label>
          <input type="checkbox" checked={waitingOnly} onChange={() => setWaitingOnly(!waitingOnly)} /> Waiting only
        </label>
      </div>
      <div class="floor-scroll">
        <DataTable
          rows={rows}
          columns={columns}
          rowKey={(r) => r.workitem.workitemId}
          rowHooks={(r) => ({
            "data-testid": "floor-row",
            "data-workitem-id": r.workitem.workitemId,
            "data-agent-id": r.workitem.agentId,
            class: r.workitem.waitingSince ? "waiting" : undefined,
          })}
          sortable
          initialSort={{ key: "wait", descending: false }}
          filterLabel="Search"
          empty="No active conversations."
          class="floor-table"
          testId="floor-table"
        />
      </div>
    </section>
  );
}
