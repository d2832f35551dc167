/** The admin screen: users, teams, assistance templates and the tenant policy (REST). */
import { useEffect, useState } from "preact/hooks";
import { type ConsoleConfig, rest } from "./api";
import { ErrorBar, useErrors } from "./ui";

interface Template {
  templateId: string;
  text: string;
  enabled: boolean;
}
interface Policy {
  recordCoaching: boolean;
  escalationSeconds: number;
  retentionDays: number;
}

function ids(value: string): string[] {
  return value
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

export function AdminScreen(props: { config: ConsoleConfig; token: string }) {
  const call = <T,>(method: string, path: string, body?: unknown) => rest<T>(props.config, props.token, method, path, body);
  const [error, setError, clearError] = useErrors();
  const [notice, setNotice] = useState("");
  const [templates, setTemplates] = useState<Template[]>([]);
  const [policy, setPolicy] = useState<Policy | null>(null);
  const [user, setUser] = useState({ userId: "", name: "", role: "agent" });
  const [team, setTeam] = useState({ teamId: "", name: "", supervisors: "", agents: "" });
  const [template, setTemplate] = useState({ templateId: "", text: "" });

  const reload = async () => {
    try {
      setTemplates((await call<{ templates: Template[] }>("GET", "/admin/templates")).templates);
      setPolicy(await call<Policy>("GET", "/admin/policy"));
    } catch (e) {
      setError(e);
    }
  };
  useEffect(() => {
    void reload();
  }, []);

  const run = async (label: string, action: () => Promise<unknown>) => {
    try {
      await action();
      setNotice(`${label}: saved`);
      await reload();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <main class="screen admin">
      <ErrorBar message={error} onClose={clearError} />
      <p class="notice" role="status">
        {notice}
      </p>
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
        <table>
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Text</th>
              <th scope="col">Enabled</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {templates.map((t) => (
              <tr key={t.templateId} data-testid="template-row">
                <td>{t.templateId}</td>
                <td>{t.text}</td>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`Enable ${t.text}`}
                    checked={t.enabled}
                    onChange={() => run("Template", () => call("PUT", `/admin/templates/${encodeURIComponent(t.templateId)}`, { text: t.text, enabled: !t.enabled }))}
                  />
                </td>
                <td>
                  <button type="button" class="small danger" onClick={() => run("Template", () => call("DELETE", `/admin/templates/${encodeURIComponent(t.templateId)}`))}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
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
            <button type="submit">Save policy</button>
          </form>
        </section>
      )}
    </main>
  );
}
