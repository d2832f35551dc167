/** Configuration, sign-in tokens and REST calls shared by every role's screen. */
import type { OidcSettings } from "./oidc";
import { type Role, tokenClaims } from "./protocol";

/** `config.json` next to index.html: where the APIs are and how to sign in. */
export interface ConsoleConfig {
  /** REST base URL; "" means this page's own origin (the local stack). */
  apiUrl: string;
  /** WebSocket URL (`wss://…`); "" means `ws(s)://<this origin>/ws`. */
  wsUrl: string;
  /** "local": `/?token=` and the demo-user picker; "oidc": the identity provider (code + PKCE). */
  signIn: "local" | "oidc";
  /** "fake": show room state only (local stack); "chime": join with amazon-chime-sdk-js. */
  voice: "fake" | "chime";
  /** For `signIn: "oidc"`; `roleClaim`/`tenantClaim` name the claims the API reads (default `role`, `tid`). */
  oidc?: OidcSettings & { roleClaim?: string; tenantClaim?: string };
}

export const DEFAULT_CONFIG: ConsoleConfig = { apiUrl: "", wsUrl: "", signIn: "local", voice: "fake" };

export async function loadConfig(): Promise<ConsoleConfig> {
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) return DEFAULT_CONFIG;
    return { ...DEFAULT_CONFIG, ...((await response.json()) as Partial<ConsoleConfig>) };
  } catch {
    return DEFAULT_CONFIG;
  }
}

export function wsUrl(config: ConsoleConfig): string {
  if (config.wsUrl) return config.wsUrl;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

export interface Session {
  token: string;
  userId: string;
  tenantId: string;
  role: Role;
  name: string;
  wid?: string;
}

const ROLES: Role[] = ["admin", "supervisor", "agent", "customer"];

/** The session a token stands for; a list role claim (e.g. `cognito:groups`) maps to its first known role. */
export function sessionFromToken(token: string, roleClaim = "role", tenantClaim = "tid"): Session | null {
  const claims = tokenClaims(token);
  const rawRole = claims[roleClaim];
  const candidates = Array.isArray(rawRole) ? rawRole : [rawRole];
  const role = candidates.find((r): r is Role => ROLES.includes(r as Role));
  if (!claims.sub || !role) return null;
  return {
    token,
    userId: String(claims.sub),
    tenantId: String(claims[tenantClaim] ?? ""),
    role,
    name: String(claims.name ?? claims.email ?? claims.sub),
    wid: claims.wid ? String(claims.wid) : undefined,
  };
}

/** Seconds until the token's `exp` (Infinity for a token without one). */
export function secondsLeft(token: string, nowMs: number = Date.now()): number {
  const exp = Number(tokenClaims(token).exp ?? 0);
  return exp ? exp - nowMs / 1000 : Number.POSITIVE_INFINITY;
}

/**
 * The token to start a session with: the stored one while it has more than `marginSeconds` left,
 * otherwise a renewed one from `renew` (or the stored one while it is still valid, when renewal fails);
 * null when it has expired and cannot be renewed (sign in again). A reload after the token expired
 * thus never opens a socket or calls REST with a dead token.
 */
export async function startingToken(
  token: string,
  renew: ((current: string) => Promise<string>) | undefined,
  nowMs: number = Date.now(),
  marginSeconds = 30,
): Promise<string | null> {
  if (secondsLeft(token, nowMs) > marginSeconds) return token;
  const stillValid = secondsLeft(token, nowMs) > 0 ? token : null;
  if (!renew) return stillValid;
  try {
    const fresh = await renew(token);
    return secondsLeft(fresh, nowMs) > 0 ? fresh : stillValid;
  } catch {
    return stillValid;
  }
}

const STORAGE_KEY = "coaching-console-token";
/**
 * Where the inline script at the top of index.html puts a token given in the address (`/?token=` or
 * `/#token=`): it takes it out of the address before anything else loads, so no request carries it
 * and the history does not keep it. Only the local stack's sign-in uses it (`initialToken`).
 */
export const ADDRESS_TOKEN_KEY = "coaching-console-address-token";

/** The address's token (`/?token=`, `/#token=`) wins, then this tab's stored token. */
export function initialToken(storage: Pick<Storage, "getItem" | "setItem" | "removeItem"> = sessionStorage): string | null {
  const fromAddress = takeAddressToken(storage);
  if (fromAddress) {
    storage.setItem(STORAGE_KEY, fromAddress);
    return fromAddress;
  }
  return storage.getItem(STORAGE_KEY);
}

/** The token the address carried at load, once (signing in through an issuer ignores it). */
export function takeAddressToken(storage: Pick<Storage, "getItem" | "removeItem"> = sessionStorage): string | null {
  const token = storage.getItem(ADDRESS_TOKEN_KEY);
  storage.removeItem(ADDRESS_TOKEN_KEY);
  return token;
}

/** This tab's stored token (OIDC sign-in: no `/?token=`). */
export function storedToken(): string | null {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function storeToken(token: string | null): void {
  if (token) sessionStorage.setItem(STORAGE_KEY, token);
  else sessionStorage.removeItem(STORAGE_KEY);
}

export interface DemoUser {
  userId: string;
  name: string;
  role: Role;
  token: string;
}

/** The local stack's demo users (served only by the local stack). */
export async function demoUsers(): Promise<DemoUser[]> {
  const response = await fetch("console/demo-users", { cache: "no-store" });
  if (!response.ok) return [];
  return ((await response.json()) as { users: DemoUser[] }).users;
}

/** A fresh token for the same user from the local stack's token helper. */
export async function renewLocalToken(current: string): Promise<string> {
  const response = await fetch("console/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: current }),
  });
  if (!response.ok) throw new Error(`token renewal refused (${response.status})`);
  return ((await response.json()) as { token: string }).token;
}

export class RestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function rest<T = unknown>(
  config: ConsoleConfig,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(config.apiUrl + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (!response.ok) {
    const error = (parsed.error ?? {}) as { code?: string; message?: string };
    throw new RestError(response.status, error.code ?? String(response.status), error.message ?? response.statusText);
  }
  return parsed as T;
}
