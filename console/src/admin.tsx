/** The admin screen: users, teams, assistance templates, attention rules and the tenant policy (REST). */
import { useEffect, useState } from "preact/hooks";
import { rest } from "./api";
import { AttentionRules } from "./attention-rules";
import { DataTable } from "./kit/collections";
import { ErrorBar, Notice, useNewFeedback } from "./kit/feedback";
import type { ScreenProps } from "./screens";

interface Template {
  templateId: string;
  text: string;
  enabled: boolean;
}
interface Policy {
  recordCoaching: boolean;
  escalationSeconds: number;
  retentionDays: number;
  sentimentLanguage?: string;
}

// Amazon Comprehend's sentiment languages (the server's list; the local stack reads English only).
const LANGUAGES: [string, string][] = [
  ["en", "English"], ["es", "Spanish"], ["fr", "French"], ["de", "German"], ["it", "Italian"], ["pt", "Portuguese"],
  ["ar", "Arabic"], ["hi", "Hindi"], ["ja", "Japanese"], ["ko", "Korean"], ["zh", "Chinese (simplified)"], ["zh-TW", "Chinese (traditional)"],
];

function ids(value: string): string[] {
  return value
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

export function AdminScreen({ config, token }: ScreenProps) {
  const call = <T,>(method: string, path: string, body?: unknown) => rest<T>(config, token, method, path, body);
  const feedback = useNewFeedback();
  const [templates, setTemplates] = useState<Template[]>([]);
  const [policy, setPolicy] = useState<Policy | null>(null);
  const [user, setUser] = useState({ userId: "", name: "", role: "agent" });
  const [team, setTeam] = useState({ teamId: "", name: "", supervisors: "", agents: "" });
  const [template, setTemplate] = useState({ templateId: "", text: "" });

  const reload = () =>
    feedback.run(async () => {
      setTemplates((await call<{ templates: Template[] }>("GET", "/admin/templates")).templates);
      setPolicy(await call<Policy>("GET", "/admin/policy"));
    });
  useEffect(() => {
    void reload();
  }, []);

  /** Save, say so, and read the lists again. */
  const run = async (label: string, action: () => Promise<unknown>) => {
    const saved = await feedback.run(async () => {
      await action();
      return true;
    }, `${label}: saved`);
    if (saved) await reload();
  };

  return (
    <main class="screen admin">
      <ErrorBar feedback={feedback} />
      <Notice feedback={feedback} />
      <section class="card" aria-labelledby="users-h">
        <h2 id="users-h">Users</h2>
        <form
          class="form-grid"
          onSubmit={(e) => {
            e.preventDefault();
            void run("User", () => call("PUT", `/admin/users/${encodeURIComponent(user.userId)}`, { name: user.name, role: user.role }));
          }}
        >
          <label>
            User id
            <input required value={user.userId} onInput={(e) => setUser({ ...user, userId: (e.target as HTMLInputElement).value })} />
          </label>
          <label>
            Name
            <input required value={user.name} onInput={(e) => setUser({ ...user, name: (e.target as HTMLInputElement).value })} />
          </label>
          <label>
            Role
            <select value={user.role} onChange={(e) => setUser({ ...user, role: (e.target as HTMLSelectElement).value })}>
              <option value="agent">Agent</option>
              <option value="supervisor">Supervisor</option>
              <option value="admin">Admin</option>
            </select>
          </label>
          <button type="submit">Save user</button>
        </form>
      </section>
      <section class="card" aria-labelledby="teams-h">
        <h2 id="teams-h">Teams</h2>
        <form
          class="form-grid"
          onSubmit={(e) => {
            e.preventDefault();
            void run("Team", () =>
              call("PUT", `/admin/teams/${encodeURIComponent(team.teamId)}`, {
                name: team.name,
                supervisors: ids(team.supervisors),
                agents: ids(team.agents),
              }),
            );
          }}
        >
          <label>
            Team id
            <input required value={team.teamId} onInput={(e) => setTeam({ ...team, teamId: (e.target as HTMLInputElement).value })} />
          </label>
          <label>
            Name
            <input required value={team.name} onInput={(e) => setTeam({ ...team, name: (e.target as HTMLInputElement).value })} />
          </label>
          <label>
            Supervisors (user ids)
            <input value={team.supervisors} onInput={(e) => setTeam({ ...team, supervisors: (e.target as HTMLInputElement).value })} />
          </label>
          <label>
            Agents (user ids)
            <input value={team.agents} onInput={(e) => setTeam({ ...team, agents: (e.target as HTMLInputElement).value })} />
          </label>
          <button type="submit">Save team</button>
        </form>
      </section>
      <section class="card" aria-labelledby="templates-h">
        <h2 id="templates-h">Raise-hand templates</h2>
        <DataTable
          rows={templates}
          rowKey={(t) => t.templateId}
          rowHooks={() => ({ "data-testid": "template-row" })}
          columns={[
            { key: "id", label: "Id", value: (t) => t.templateId },
            { key: "text", label: "Text", value: (t) => t.text },
            {
              key: "enabled",
              label: "Enabled",
              cell: (t) => (
                <input
                  type="checkbox"
                  aria-label={`Enable ${t.text}`}
                  checked={t.enabled}
                  onChange={() => run("Template", () => call("PUT", `/admin/templates/${encodeURIComponent(t.templateId)}`, { text: t.text, enabled: !t.enabled }))}
                />
              ),
            },
            {
              key: "actions",
              label: "Actions",
              hiddenLabel: true,
              cell: (t) => (
                <button type="button" class="small danger" onClick={() => run("Template", () => call("DELETE", `/admin/templates/${encodeURIComponent(t.templateId)}`))}>
                  Delete
                </button>
              ),
            },
          ]}
        />
        <form
          class="form-grid"
          onSubmit={(e) => {
            e.preventDefault();
            void run("Template", () => call("PUT", `/admin/templates/${encodeURIComponent(template.templateId)}`, { text: template.text, enabled: true }));
          }}
        >
          <label>
            Template id
            <input required value={template.templateId} onInput={(e) => setTemplate({ ...template, templateId: (e.target as HTMLInputElement).value })} />
          </label>
          <label>
            Text
            <input required value={template.text} onInput={(e) => setTemplate({ ...template, text: (e.target as HTMLInputElement).value })} />
          </label>
          <button type="submit">Add template</button>
        </form>
      </section>
      <AttentionRules call={call} run={run} />
      {policy && (
        <section class="card" aria-labelledby="policy-h">
          <h2 id="policy-h">Policy</h2>
          <form
            class="form-grid"
            onSubmit={(e) => {
              e.preventDefault();
              void run("Policy", () => call("PUT", "/admin/policy", policy));
            }}
          >
            <label class="inline">
              <input type="checkbox" checked={policy.recordCoaching} onChange={() => setPolicy({ ...policy, recordCoaching: !policy.recordCoaching })} />
              Record coaching
            </label>
            <label>
              Escalate unclaimed requests after (seconds)
              <input type="number" min={1} value={policy.escalationSeconds}
                onInput={(e) => setPolicy({ ...policy, escalationSeconds: Number((e.target as HTMLInputElement).value) })} />
            </label>
            <label>
              Keep timelines (days)
              <input type="number" min={1} value={policy.retentionDays}
                onInput={(e) => setPolicy({ ...policy, retentionDays: Number((e.target as HTMLInputElement).value) })} />
            </label>
            <label>
              Customers write in (for sentiment)
              <select name="sentimentLanguage" value={policy.sentimentLanguage ?? "en"}
                onChange={(e) => setPolicy({ ...policy, sentimentLanguage: (e.target as HTMLSelectElement).value })}>
                {LANGUAGES.map(([code, name]) => (
                  <option key={code} value={code}>
                    {name}
                  </option>
                ))}
              </select>
            </label>
            <button type="submit">Save policy</button>
          </form>
        </section>
      )}
    </main>
  );
}
