/** The admin screen's attention rules (docs/attention.md): the tenant's rules in a table, a form that
 * creates or replaces one (the fields of its kind only), enable/disable and delete. */
import { useEffect, useState } from "preact/hooks";
import { DataTable } from "./kit/collections";

export type Call = <T>(method: string, path: string, body?: unknown) => Promise<T>;
type Run = (label: string, action: () => Promise<unknown>) => Promise<void>;

const KINDS = ["keyword", "sentiment", "customer_waiting", "silence", "handle_time"] as const;
type Kind = (typeof KINDS)[number];
const KIND_LABELS: Record<Kind, string> = {
  keyword: "Keyword",
  sentiment: "Negative sentiment in a row",
  customer_waiting: "Customer waiting (chat, SMS, social)",
  silence: "Silence (voice)",
  handle_time: "Handle time",
};
// The seconds each timer kind takes, inclusive (the server says the same, and refuses the rest).
const SECONDS: Partial<Record<Kind, [number, number]>> = {
  customer_waiting: [10, 3600],
  silence: [5, 600],
  handle_time: [60, 86400],
};

export interface Rule {
  ruleId: string;
  kind: Kind;
  enabled: boolean;
  severity: number;
  phrases?: string[];
  speakers?: string[];
  negativeInARow?: number;
  seconds?: number;
}

interface Draft {
  ruleId: string;
  kind: Kind;
  severity: number;
  phrases: string;
  speakers: string[];
  negativeInARow: number;
  seconds: number;
}

const EMPTY: Draft = { ruleId: "", kind: "keyword", severity: 2, phrases: "", speakers: ["customer"], negativeInARow: 3, seconds: 60 };

/** The body a PUT takes: the draft's kind's fields only (the server refuses the others). */
export function ruleBody(draft: Draft, enabled = true): Record<string, unknown> {
  const body: Record<string, unknown> = { kind: draft.kind, severity: draft.severity, enabled };
  if (draft.kind === "keyword") {
    body.phrases = draft.phrases
      .split(/[\n,]+/)
      .map((p) => p.trim())
      .filter(Boolean);
    body.speakers = draft.speakers;
  } else if (draft.kind === "sentiment") {
    body.negativeInARow = draft.negativeInARow;
  } else {
    body.seconds = draft.seconds;
  }
  return body;
}

function draftOf(rule: Rule): Draft {
  return {
    ruleId: rule.ruleId,
    kind: rule.kind,
    severity: rule.severity,
    phrases: (rule.phrases ?? []).join(", "),
    speakers: rule.speakers ?? ["customer"],
    negativeInARow: rule.negativeInARow ?? EMPTY.negativeInARow,
    seconds: rule.seconds ?? EMPTY.seconds,
  };
}

function condition(rule: Rule): string {
  if (rule.kind === "keyword") return `${(rule.phrases ?? []).join(", ")} (${(rule.speakers ?? []).join(", ")})`;
  if (rule.kind === "sentiment") return `${rule.negativeInARow} negative in a row`;
  return `${rule.seconds} s`;
}

export function AttentionRules({ call, run }: { call: Call; run: Run }) {
  const [rules, setRules] = useState<Rule[]>([]);
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const path = (id: string) => `/admin/attention-rules/${encodeURIComponent(id)}`;
  const load = async () => setRules((await call<{ rules: Rule[] }>("GET", "/admin/attention-rules")).rules);
  const change = (label: string, action: () => Promise<unknown>) =>
    run(label, async () => {
      await action();
      await load();
    });
  useEffect(() => {
    void load().catch(() => undefined); // a failure shows when the admin acts; the other sections still load
  }, []);
  const bounds = SECONDS[draft.kind];
  const input = (e: Event) => (e.target as HTMLInputElement).value;

  return (
    <section class="card" aria-labelledby="rules-h" data-testid="attention-rules">
      <h2 id="rules-h">Attention rules</h2>
      <DataTable
        rows={rules}
        rowKey={(r) => r.ruleId}
        rowHooks={(r) => ({ "data-testid": "rule-row", "data-rule-id": r.ruleId })}
        empty="No rules: supervisors get no alerts."
        columns={[
          { key: "id", label: "Id", value: (r) => r.ruleId },
          { key: "kind", label: "Kind", value: (r) => KIND_LABELS[r.kind] ?? r.kind },
          { key: "when", label: "When", value: condition },
          { key: "severity", label: "Severity", value: (r) => String(r.severity) },
          {
            key: "enabled",
            label: "Enabled",
            cell: (r) => (
              <input
                type="checkbox"
                aria-label={`Enable rule ${r.ruleId}`}
                checked={r.enabled}
                onChange={() => change("Rule", () => call("PUT", path(r.ruleId), ruleBody(draftOf(r), !r.enabled)))}
              />
            ),
          },
          {
            key: "actions",
            label: "Actions",
            hiddenLabel: true,
            cell: (r) => (
              <>
                <button type="button" class="small" onClick={() => setDraft(draftOf(r))}>
                  Edit
                </button>{" "}
                <button type="button" class="small danger" onClick={() => change("Rule", () => call("DELETE", path(r.ruleId)))}>
                  Delete
                </button>
              </>
            ),
          },
        ]}
      />
      <form
        class="form-grid"
        data-testid="rule-form"
        onSubmit={(e) => {
          e.preventDefault();
          const enabled = rules.find((r) => r.ruleId === draft.ruleId)?.enabled ?? true;
          void change("Rule", () => call("PUT", path(draft.ruleId), ruleBody(draft, enabled)));
        }}
      >
        <label>
          Rule id
          <input required name="ruleId" value={draft.ruleId} onInput={(e) => setDraft({ ...draft, ruleId: input(e) })} />
        </label>
        <label>
          Kind
          <select name="kind" value={draft.kind} onChange={(e) => setDraft({ ...draft, kind: (e.target as HTMLSelectElement).value as Kind })}>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {KIND_LABELS[k]}
              </option>
            ))}
          </select>
        </label>
        <label>
          Severity
          <select name="severity" value={String(draft.severity)} onChange={(e) => setDraft({ ...draft, severity: Number((e.target as HTMLSelectElement).value) })}>
            <option value="1">1 (low)</option>
            <option value="2">2</option>
            <option value="3">3 (high)</option>
          </select>
        </label>
        {draft.kind === "keyword" && (
          <>
            <label>
              Phrases (comma or line separated)
              <textarea required name="phrases" rows={2} value={draft.phrases} onInput={(e) => setDraft({ ...draft, phrases: input(e) })} />
            </label>
            <fieldset>
              <legend>Said by</legend>
              {["customer", "agent"].map((s) => (
                <label class="inline" key={s}>
                  <input
                    type="checkbox"
                    name={`speaker-${s}`}
                    checked={draft.speakers.includes(s)}
                    onChange={() =>
                      setDraft({ ...draft, speakers: draft.speakers.includes(s) ? draft.speakers.filter((x) => x !== s) : [...draft.speakers, s] })
                    }
                  />
                  {s === "customer" ? "Customer" : "Agent"}
                </label>
              ))}
            </fieldset>
          </>
        )}
        {draft.kind === "sentiment" && (
          <label>
            Negative customer messages in a row
            <input type="number" name="negativeInARow" min={1} max={10} value={draft.negativeInARow}
              onInput={(e) => setDraft({ ...draft, negativeInARow: Number(input(e)) })} />
          </label>
        )}
        {bounds && (
          <label>
            Seconds ({bounds[0]}-{bounds[1]})
            <input type="number" name="seconds" min={bounds[0]} max={bounds[1]} value={draft.seconds}
              onInput={(e) => setDraft({ ...draft, seconds: Number(input(e)) })} />
          </label>
        )}
        <button type="submit">Save rule</button>
      </form>
    </section>
  );
}
