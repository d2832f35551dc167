/**
 * Insights: does coaching work? Per-day trends (drawn with uPlot, loaded with this screen only) and
 * per-agent / per-supervisor tables from `GET /analytics/coaching`, and the same rows as CSV.
 * Supervisors see their agents and themselves; admins their tenant (docs/product.md W13).
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { type ConsoleConfig, RestError, rest } from "./api";
import { DataTable } from "./kit/collections";
import { ErrorBar, useNewFeedback } from "./kit/feedback";
import type { ScreenProps } from "./screens";

export const METRICS = [
  "monitoredWorkitems",
  "coachMessages",
  "helpful",
  "notHelpful",
  "forwarded",
  "assistRequested",
  "assistClaimed",
  "assistEscalated",
  "claimSecondsP50",
  "alertsRaised",
  "alertsAcked",
  "ackSecondsP50",
] as const;
type Metric = (typeof METRICS)[number];
const LABELS: Record<Metric, string> = {
  monitoredWorkitems: "Monitored",
  coachMessages: "Coach messages",
  helpful: "Helpful",
  notHelpful: "Not helpful",
  forwarded: "Forwarded",
  assistRequested: "Hands raised",
  assistClaimed: "Claimed",
  assistEscalated: "Escalated",
  claimSecondsP50: "Claim p50 (s)",
  alertsRaised: "Alerts",
  alertsAcked: "Acked",
  ackSecondsP50: "Ack p50 (s)",
};
/** The per-day series charted (counts; the median is in the tables). */
const CHARTED: Metric[] = ["coachMessages", "helpful", "notHelpful", "assistRequested", "assistClaimed"];
const COLOURS = ["#1f5fbf", "#1a7f37", "#b42318", "#8a4baf", "#9a6700"];

type Metrics = Record<Metric, number | null>;
interface Row extends Metrics {
  key: string;
  name?: string;
}
interface Report {
  from: string;
  to: string;
  groupBy: string;
  rows: Row[];
  totals: Metrics;
}

const day = (d: Date) => d.toISOString().slice(0, 10);

function query(from: string, to: string, groupBy: string, format?: string): string {
  const params = new URLSearchParams({ from, to, groupBy });
  if (format) params.set("format", format);
  return `/analytics/coaching?${params}`;
}

/** The CSV of a grouping, fetched with the bearer token and handed to the browser as a download. */
async function downloadCsv(config: ConsoleConfig, token: string, path: string, filename: string): Promise<void> {
  const response = await fetch(config.apiUrl + path, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
    throw new RestError(response.status, body.error?.code ?? String(response.status), body.error?.message ?? response.statusText);
  }
  const url = URL.createObjectURL(new Blob([await response.text()], { type: "text/csv" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** The per-day chart: uPlot is imported the first time a chart is drawn (its own chunk). */
function TrendChart({ report }: { report: Report }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    let plot: { destroy(): void } | undefined;
    let current = true;
    void import("uplot").then(({ default: UPlot }) => {
      if (!current || !box.current) return;
      const xs = report.rows.map((r) => Date.parse(`${r.key}T00:00:00Z`) / 1000);
      const series = CHARTED.map((m) => report.rows.map((r) => r[m] ?? 0));
      plot = new UPlot(
        {
          width: Math.max(320, Math.min(960, box.current.clientWidth || 720)),
          height: 260,
          tzDate: (ts: number) => UPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
          series: [{}, ...CHARTED.map((m, i) => ({ label: LABELS[m], stroke: COLOURS[i], width: 2 }))],
          axes: [{}, { label: "per UTC day" }],
        },
        [xs, ...series],
        box.current,
      );
    });
    return () => {
      current = false;
      plot?.destroy();
    };
  }, [report]);
  return <div ref={box} class="trend-chart" data-testid="insights-chart" role="img" aria-label="Coaching per UTC day" />;
}

function MetricsTable({ report, caption, testId }: { report: Report; caption: string; testId: string }) {
  return (
    <DataTable
      rows={report.rows}
      rowKey={(r) => r.key}
      testId={testId}
      caption={caption}
      sortable
      empty="Nothing counted in this range."
      rowHooks={(r) => ({ "data-key": r.key })}
      columns={[
        { key: "who", label: "Who", value: (r) => r.name ?? r.key },
        ...METRICS.map((m) => ({ key: m, label: LABELS[m], value: (r: Row) => r[m] ?? "" })),
      ]}
    />
  );
}

export function InsightsScreen({ config, token, session }: ScreenProps) {
  const feedback = useNewFeedback();
  const today = new Date();
  const [from, setFrom] = useState(day(new Date(today.getTime() - 29 * 86400_000)));
  const [to, setTo] = useState(day(today));
  const [reports, setReports] = useState<{ day: Report; agent: Report; supervisor: Report } | null>(null);
  const load = () =>
    feedback.run(async () => {
      const [byDay, byAgent, bySupervisor] = await Promise.all(
        ["day", "agent", "supervisor"].map((g) => rest<Report>(config, token, "GET", query(from, to, g))),
      );
      setReports({ day: byDay, agent: byAgent, supervisor: bySupervisor });
    });
  useEffect(() => {
    void load();
  }, []);
  const totals = reports?.day.totals;
  return (
    <main class="screen insights" data-testid="insights">
      <ErrorBar feedback={feedback} />
      <section class="card" aria-labelledby="insights-h">
        <h2 id="insights-h">Coaching insights</h2>
        <p class="hint">
          {session.role === "admin" ? "Your tenant" : "Your agents and you"}, per UTC day. Attention alerts are not counted yet.
        </p>
        <form
          class="form-grid"
          onSubmit={(e) => {
            e.preventDefault();
            void load();
          }}
        >
          <label>
            From
            <input type="date" required value={from} onInput={(e) => setFrom((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            To
            <input type="date" required value={to} onInput={(e) => setTo((e.target as HTMLInputElement).value)} />
          </label>
          <button type="submit">Show</button>
          <button
            type="button"
            data-testid="insights-csv"
            onClick={() => feedback.run(() => downloadCsv(config, token, query(from, to, "agent", "csv"), `coaching-${from}-${to}.csv`))}
          >
            Download CSV (per agent)
          </button>
        </form>
        {totals && (
          <dl class="totals" data-testid="insights-totals">
            {METRICS.map((m) => (
              <div key={m} data-metric={m}>
                <dt>{LABELS[m]}</dt>
                <dd>{totals[m] ?? "–"}</dd>
              </div>
            ))}
          </dl>
        )}
      </section>
      {reports && (
        <>
          <section class="card" aria-labelledby="trend-h">
            <h2 id="trend-h">Trend</h2>
            <TrendChart report={reports.day} />
          </section>
          <section class="card" aria-labelledby="agents-h">
            <h2 id="agents-h">Per agent</h2>
            <MetricsTable report={reports.agent} caption="Coaching per agent" testId="insights-agents" />
          </section>
          <section class="card" aria-labelledby="supervisors-h">
            <h2 id="supervisors-h">Per supervisor</h2>
            <MetricsTable report={reports.supervisor} caption="Coaching per supervisor" testId="insights-supervisors" />
          </section>
        </>
      )}
    </main>
  );
}
