/** Entry point: configuration, sign-in (`/?token=`, the local demo picker), then the role's screen. */
import { render } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import {
  type ConsoleConfig,
  type DemoUser,
  demoUsers,
  initialToken,
  loadConfig,
  renewLocalToken,
  type Session,
  sessionFromToken,
  startingToken,
  storedToken,
  storeToken,
  takeAddressToken,
  wsUrl,
} from "./api";
import { hrefOf, pick, useRoute } from "./kit/router";
import { beginSignIn, browserDeps, completeSignIn, forgetTokens, refreshTokens } from "./oidc";
import { CoachingClient } from "./protocol";
import { SCREENS } from "./screens";
import { ConnectionStatus } from "./status";
import { Timelines } from "./store";

declare global {
  interface Window {
    /** The live client, for debugging and the browser tests (drop the socket, read state). */
    coachingClient?: CoachingClient;
  }
}

function SignIn({ config, onToken }: { config: ConsoleConfig; onToken: (token: string) => void }) {
  const [users, setUsers] = useState<DemoUser[] | null>(null);
  const [pasted, setPasted] = useState("");
  useEffect(() => {
    if (config.signIn === "local") demoUsers().then(setUsers, () => setUsers([]));
  }, [config]);
  return (
    <main class="sign-in">
      <h1>Coaching console</h1>
      {config.signIn === "oidc" ? (
        <OidcSignIn config={config} />
      ) : (
        <>
          <h2>Sign in as a demo user</h2>
          <p class="hint">Local stack only: each button signs this tab in with a fresh token.</p>
          <ul class="demo-users">
            {(users ?? []).map((u) => (
              <li key={u.userId}>
                <button type="button" data-testid="demo-user" data-user-id={u.userId} onClick={() => onToken(u.token)}>
                  <strong>{u.name}</strong>
                  <span class="sub">{u.role}</span>
                </button>
              </li>
            ))}
          </ul>
          {users !== null && users.length === 0 && <p class="empty">No demo users (is this the local stack?).</p>}
          <form
            class="composer"
            onSubmit={(e) => {
              e.preventDefault();
              if (pasted.trim()) onToken(pasted.trim());
            }}
          >
            <label for="token-input">Or paste a token</label>
            <input id="token-input" value={pasted} onInput={(e) => setPasted((e.target as HTMLInputElement).value)} />
            <button type="submit">Sign in</button>
          </form>
        </>
      )}
    </main>
  );
}

/** The page itself, without query or fragment: where the identity provider sends the browser back. */
const here = () => location.origin + location.pathname;

function OidcSignIn({ config }: { config: ConsoleConfig }) {
  const [error, setError] = useState("");
  if (!config.oidc) return <p role="alert">Sign-in is not configured: config.json has no `oidc` settings.</p>;
  const settings = config.oidc;
  return (
    <>
      <p>Sign in with your organization's account.</p>
      <button
        type="button"
        data-testid="oidc-sign-in"
        onClick={() =>
          beginSignIn(settings, here(), browserDeps()).then(
            (url) => location.assign(url),
            (e) => setError(String(e)),
          )
        }
      >
        Sign in
      </button>
      {error && <p role="alert">{error}</p>}
    </>
  );
}

/** Turn a token into a session with the claim names this deployment uses. */
function sessionFor(config: ConsoleConfig, token: string): Session | null {
  if (config.signIn === "oidc" && config.oidc) return sessionFromToken(token, config.oidc.roleClaim, config.oidc.tenantClaim);
  return sessionFromToken(token);
}

/** Where a fresh token comes from: the local stack's token helper, or the issuer's refresh token grant. */
function tokenSource(config: ConsoleConfig): ((current: string) => Promise<string>) | undefined {
  if (config.signIn === "local") return renewLocalToken;
  const settings = config.oidc;
  return settings ? () => refreshTokens(settings, browserDeps()) : undefined;
}

function Console({ config, session, onSignOut }: { config: ConsoleConfig; session: Session; onSignOut: () => void }) {
  const client = useMemo(
    () => new CoachingClient({ url: wsUrl(config), token: session.token, renewToken: tokenSource(config) }),
    [session.token],
  );
  const timelines = useMemo(() => new Timelines(client), [client]);
  const [token, setToken] = useState(session.token);
  const Screen = pick(SCREENS[session.role], useRoute());
  // The first screen's code arrives before the socket opens: its model listens before any event can.
  const [started, setStarted] = useState(false);
  useEffect(() => {
    let current = true;
    void Screen.ready.then(() => current && setStarted(true));
    return () => {
      current = false;
    };
  }, []);
  useEffect(() => {
    if (!started) return;
    window.coachingClient = client;
    const off = client.on("token.renewed", () => {
      storeToken(client.token);
      setToken(client.token);
    });
    // The admin's screen uses REST only: its token is renewed all the same, without a socket.
    if (session.role === "admin") client.keepTokenFresh();
    else client.connect();
    // A lost network may leave the socket open for minutes: the browser's word counts at once.
    const offline = () => client.networkLost();
    window.addEventListener("offline", offline);
    return () => {
      off();
      window.removeEventListener("offline", offline);
      client.close();
    };
  }, [client, started]);
  const roleTitle = { admin: "Admin", supervisor: "Supervisor", agent: "Agent", customer: "Customer" }[session.role];
  return (
    <div class={`app role-${session.role}`}>
      <header class="topbar">
        <h1>
          Coaching <span class="role">{roleTitle}</span>
        </h1>
        <div class="who">
          {"insights" in SCREENS[session.role] && (
            <nav aria-label="Screens" class="screens">
              <a href={hrefOf("")}>Home</a>
              <a href={hrefOf("insights")} data-testid="insights-link">
                Insights
              </a>
            </nav>
          )}
          {session.role !== "admin" && <ConnectionStatus client={client} />}
          <span class="user" title={session.name}>
            {session.name}
          </span>
          <button type="button" class="link" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <Screen client={client} timelines={timelines} config={config} session={session} token={token} />
    </div>
  );
}

function App() {
  const [config, setConfig] = useState<ConsoleConfig | null>(null);
  const [session, setSession] = useState<Session | null>(null);
  const [signInError, setSignInError] = useState("");
  useEffect(() => {
    loadConfig().then(async (c) => {
      if (c.signIn === "oidc" && c.oidc) {
        try {
          const tokens = await completeSignIn(location.search, c.oidc, browserDeps());
          if (tokens) {
            storeToken(tokens.bearer);
            history.replaceState(null, "", location.pathname);
          }
        } catch (e) {
          history.replaceState(null, "", location.pathname);
          setSignInError(String(e));
        }
      }
      // `/?token=` signs in on the local stack only; with an issuer, a token in the address is dropped.
      if (c.signIn === "oidc") takeAddressToken();
      const stored = c.signIn === "oidc" ? storedToken() : initialToken();
      // A token that expired while the tab was closed is renewed first, or the user signs in again.
      const token = stored ? await startingToken(stored, tokenSource(c)) : null;
      if (stored && !token) {
        storeToken(null);
        setSignInError("Your session has expired: sign in again.");
      } else if (token && token !== stored) {
        storeToken(token);
      }
      setConfig(c);
      if (token) setSession(sessionFor(c, token));
    });
  }, []);
  if (!config) return <p class="loading">Loading…</p>;
  if (!session) {
    return (
      <>
        {signInError && (
          <p role="alert" class="error">
            {signInError}
          </p>
        )}
        <SignIn
          config={config}
          onToken={(token) => {
            storeToken(token);
            setSession(sessionFor(config, token));
          }}
        />
      </>
    );
  }
  return (
    <Console
      key={session.token}
      config={config}
      session={session}
      onSignOut={() => {
        storeToken(null);
        forgetTokens(browserDeps());
        setSession(null);
      }}
    />
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
