/**
 * Sign-in through an OpenID Connect provider: authorization code with PKCE (S256), no client secret.
 *
 * 1. `beginSignIn` stores a random verifier, state and nonce in this tab's sessionStorage and returns the
 *    authorization URL (the caller navigates to it).
 * 2. The provider redirects back with `?code=&state=`; `completeSignIn` checks the state, exchanges the
 *    code (with the verifier) at the token endpoint, checks the id token's nonce, and returns the tokens.
 * 3. `refreshTokens` uses the refresh token grant before the bearer token expires.
 * Everything touching the browser (storage, fetch, randomness) is injectable for the unit tests.
 */
import { tokenClaims } from "./protocol";

export interface OidcSettings {
  issuer: string;
  clientId: string;
  scopes?: string;
  /** Defaults to `<issuer>/.well-known/openid-configuration`'s values. */
  authorizationEndpoint?: string;
  tokenEndpoint?: string;
  /** Defaults to the page's origin + path (the console's `index.html`). */
  redirectUri?: string;
  /** Which token the APIs get: the id token (default; its `aud` is the client id) or the access token. */
  bearer?: "id_token" | "access_token";
}

export interface OidcTokens {
  /** The bearer token for REST (`Authorization`) and the WebSocket (`?token=`). */
  bearer: string;
  refreshToken?: string;
}

export interface OidcDeps {
  storage: Pick<Storage, "getItem" | "setItem" | "removeItem">;
  fetch: typeof fetch;
  random: (bytes: number) => Uint8Array;
}

const PENDING_KEY = "coaching-console-oidc-pending";
const REFRESH_KEY = "coaching-console-oidc-refresh";

export function browserDeps(): OidcDeps {
  return {
    storage: sessionStorage,
    fetch: (input, init) => fetch(input, init),
    random: (n) => crypto.getRandomValues(new Uint8Array(n)),
  };
}

export function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A code verifier: 32 random bytes, base64url (43 characters, within RFC 7636's 43..128). */
export function codeVerifier(random: OidcDeps["random"]): string {
  return base64url(random(32));
}

/** The S256 code challenge: base64url(SHA-256(verifier)). */
export async function codeChallenge(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

interface Endpoints {
  authorization: string;
  token: string;
}

export async function endpoints(settings: OidcSettings, deps: OidcDeps): Promise<Endpoints> {
  if (settings.authorizationEndpoint && settings.tokenEndpoint) {
    return { authorization: settings.authorizationEndpoint, token: settings.tokenEndpoint };
  }
  const url = `${settings.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
  const response = await deps.fetch(url);
  if (!response.ok) throw new Error(`discovery failed (${response.status})`);
  const doc = (await response.json()) as { authorization_endpoint?: string; token_endpoint?: string };
  const authorization = settings.authorizationEndpoint ?? doc.authorization_endpoint;
  const token = settings.tokenEndpoint ?? doc.token_endpoint;
  if (!authorization || !token) throw new Error("discovery document without authorization or token endpoint");
  return { authorization, token };
}

interface Pending {
  verifier: string;
  state: string;
  nonce: string;
  redirectUri: string;
  tokenEndpoint: string;
}

/** Prepare a sign-in and return the URL of the provider's authorization endpoint. */
export async function beginSignIn(settings: OidcSettings, redirectUri: string, deps: OidcDeps): Promise<string> {
  const ends = await endpoints(settings, deps);
  const pending: Pending = {
    verifier: codeVerifier(deps.random),
    state: base64url(deps.random(16)),
    nonce: base64url(deps.random(16)),
    redirectUri: settings.redirectUri ?? redirectUri,
    tokenEndpoint: ends.token,
  };
  deps.storage.setItem(PENDING_KEY, JSON.stringify(pending));
  const url = new URL(ends.authorization);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", settings.clientId);
  url.searchParams.set("redirect_uri", pending.redirectUri);
  url.searchParams.set("scope", settings.scopes ?? "openid profile email");
  url.searchParams.set("state", pending.state);
  url.searchParams.set("nonce", pending.nonce);
  url.searchParams.set("code_challenge", await codeChallenge(pending.verifier));
  url.searchParams.set("code_challenge_method", "S256");
  return url.toString();
}

export class SignInError extends Error {}

async function tokenRequest(endpoint: string, form: Record<string, string>, deps: OidcDeps): Promise<Record<string, unknown>> {
  const response = await deps.fetch(endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  });
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) throw new SignInError(`token endpoint refused: ${String(body.error ?? response.status)}`);
  return body;
}

function tokensFrom(body: Record<string, unknown>, settings: OidcSettings, previousRefresh?: string): OidcTokens {
  const bearer = body[settings.bearer ?? "id_token"];
  if (typeof bearer !== "string" || !bearer) throw new SignInError(`token response without ${settings.bearer ?? "id_token"}`);
  const refreshToken = typeof body.refresh_token === "string" ? body.refresh_token : previousRefresh;
  return { bearer, refreshToken };
}

/**
 * Handle the provider's redirect (`search` is `location.search`). Returns null when the page is not a
 * callback; throws SignInError on a provider error, an unexpected state, or a nonce mismatch.
 */
export async function completeSignIn(search: string, settings: OidcSettings, deps: OidcDeps): Promise<OidcTokens | null> {
  const params = new URLSearchParams(search);
  const code = params.get("code");
  const error = params.get("error");
  if (!code && !error) return null;
  const raw = deps.storage.getItem(PENDING_KEY);
  deps.storage.removeItem(PENDING_KEY);
  if (error) throw new SignInError(`sign-in refused: ${error}${params.get("error_description") ? ` (${params.get("error_description")})` : ""}`);
  if (!raw) throw new SignInError("no sign-in in progress in this tab");
  const pending = JSON.parse(raw) as Pending;
  if (params.get("state") !== pending.state) throw new SignInError("state does not match this tab's sign-in");
  const body = await tokenRequest(
    pending.tokenEndpoint,
    {
      grant_type: "authorization_code",
      code: code as string,
      redirect_uri: pending.redirectUri,
      client_id: settings.clientId,
      code_verifier: pending.verifier,
    },
    deps,
  );
  if (typeof body.id_token === "string" && tokenClaims(body.id_token).nonce !== pending.nonce) {
    throw new SignInError("id token nonce does not match this tab's sign-in");
  }
  const tokens = tokensFrom(body, settings);
  if (tokens.refreshToken) deps.storage.setItem(REFRESH_KEY, JSON.stringify({ token: tokens.refreshToken, endpoint: pending.tokenEndpoint }));
  return tokens;
}

/** A fresh bearer token from the refresh token grant (the stored refresh token is replaced when rotated). */
export async function refreshTokens(settings: OidcSettings, deps: OidcDeps): Promise<string> {
  const raw = deps.storage.getItem(REFRESH_KEY);
  if (!raw) throw new SignInError("no refresh token: sign in again");
  const stored = JSON.parse(raw) as { token: string; endpoint: string };
  const body = await tokenRequest(
    stored.endpoint,
    { grant_type: "refresh_token", refresh_token: stored.token, client_id: settings.clientId },
    deps,
  );
  const tokens = tokensFrom(body, settings, stored.token);
  deps.storage.setItem(REFRESH_KEY, JSON.stringify({ token: tokens.refreshToken, endpoint: stored.endpoint }));
  return tokens.bearer;
}

export function forgetTokens(deps: OidcDeps): void {
  deps.storage.removeItem(REFRESH_KEY);
  deps.storage.removeItem(PENDING_KEY);
}
