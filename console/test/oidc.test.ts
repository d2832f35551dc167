// Unit tests of the OIDC sign-in (node:test): PKCE helpers, the authorization request, the callback
// (state, nonce, code exchange without a client secret) and the refresh token grant.
import assert from "node:assert/strict";
import { test } from "node:test";
import { sessionFromToken } from "../src/api";
import {
  base64url,
  beginSignIn,
  codeChallenge,
  codeVerifier,
  completeSignIn,
  forgetTokens,
  type OidcDeps,
  type OidcSettings,
  refreshTokens,
  SignInError,
} from "../src/oidc";

// RFC 7636 appendix B: these 32 octets give this verifier, whose S256 challenge is this.
const RFC_OCTETS = [
  116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83,
  132, 141, 121,
];
const RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

const jwt = (claims: Record<string, unknown>) =>
  `${base64url(new TextEncoder().encode('{"alg":"RS256"}'))}.${base64url(new TextEncoder().encode(JSON.stringify(claims)))}.sig`;

interface Call {
  url: string;
  method: string;
  form: URLSearchParams | null;
}

/** A provider on the other end of an injected fetch: discovery plus a scripted token endpoint. */
function fakeProvider(tokenAnswers: Array<{ status: number; body: Record<string, unknown> }>) {
  const calls: Call[] = [];
  const store = new Map<string, string>();
  let counter = 0;
  const deps: OidcDeps = {
    storage: {
      getItem: (k) => store.get(k) ?? null,
      setItem: (k, v) => void store.set(k, v),
      removeItem: (k) => void store.delete(k),
    },
    random: (n) => new Uint8Array(n).map((_, i) => (i + counter++) % 256),
    fetch: async (input, init) => {
      const url = String(input);
      const form = typeof init?.body === "string" ? new URLSearchParams(init.body) : null;
      calls.push({ url, method: init?.method ?? "GET", form });
      if (url === "https://idp.example/.well-known/openid-configuration") {
        return Response.json({ authorization_endpoint: "https://idp.example/authorize", token_endpoint: "https://idp.example/token" });
      }
      if (url === "https://idp.example/token") {
        const answer = tokenAnswers.shift() ?? { status: 500, body: {} };
        return Response.json(answer.body, { status: answer.status });
      }
      return new Response("not found", { status: 404 });
    },
  };
  return { deps, calls, store };
}

const settings: OidcSettings = { issuer: "https://idp.example", clientId: "console-client" };
const REDIRECT = "https://console.example/";

test("PKCE: the RFC 7636 vector, and generated verifiers are 43 base64url characters", async () => {
  assert.equal(codeVerifier(() => new Uint8Array(RFC_OCTETS)), RFC_VERIFIER);
  assert.equal(await codeChallenge(RFC_VERIFIER), RFC_CHALLENGE);
  const v = codeVerifier((n) => crypto.getRandomValues(new Uint8Array(n)));
  assert.match(v, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(v, codeVerifier((n) => crypto.getRandomValues(new Uint8Array(n))));
});

test("beginSignIn: discovery, then an authorization URL with S256 challenge, state and nonce", async () => {
  const { deps, calls, store } = fakeProvider([]);
  const url = new URL(await beginSignIn(settings, REDIRECT, deps));
  assert.equal(calls[0].url, "https://idp.example/.well-known/openid-configuration");
  assert.equal(url.origin + url.pathname, "https://idp.example/authorize");
  const p = url.searchParams;
  assert.equal(p.get("response_type"), "code");
  assert.equal(p.get("client_id"), "console-client");
  assert.equal(p.get("redirect_uri"), REDIRECT);
  assert.equal(p.get("code_challenge_method"), "S256");
  assert.equal(p.get("scope"), "openid profile email");
  const pending = JSON.parse([...store.values()][0]) as { verifier: string; state: string; nonce: string };
  assert.equal(p.get("code_challenge"), await codeChallenge(pending.verifier));
  assert.equal(p.get("state"), pending.state);
  assert.equal(p.get("nonce"), pending.nonce);
  assert.notEqual(pending.state, pending.nonce);
  assert.equal(p.get("code_verifier"), null, "the verifier never leaves the tab");
});

test("beginSignIn: explicit endpoints (e.g. a Cognito hosted domain) skip discovery", async () => {
  const { deps, calls } = fakeProvider([]);
  const url = await beginSignIn(
    { ...settings, authorizationEndpoint: "https://pool.auth.example/oauth2/authorize", tokenEndpoint: "https://pool.auth.example/oauth2/token" },
    REDIRECT,
    deps,
  );
  assert.ok(url.startsWith("https://pool.auth.example/oauth2/authorize?"));
  assert.equal(calls.length, 0);
});

test("completeSignIn: exchanges the code with the verifier, no client secret; returns the id token", async () => {
  const { deps, calls, store } = fakeProvider([]);
  const auth = new URL(await beginSignIn(settings, REDIRECT, deps));
  const pending = JSON.parse([...store.values()][0]) as { verifier: string; nonce: string };
  const idToken = jwt({ sub: "u1", nonce: pending.nonce, role: "agent", tid: "t1" });
  const { deps: d2, calls: c2 } = fakeProvider([{ status: 200, body: { id_token: idToken, access_token: "at", refresh_token: "rt1" } }]);
  d2.storage.setItem("coaching-console-oidc-pending", [...store.values()][0]);
  const tokens = await completeSignIn(`?code=abc&state=${auth.searchParams.get("state")}`, settings, d2);
  assert.deepEqual(tokens, { bearer: idToken, refreshToken: "rt1" });
  const exchange = c2.find((c) => c.url === "https://idp.example/token");
  assert.ok(exchange?.form);
  assert.equal(exchange.method, "POST");
  assert.equal(exchange.form.get("grant_type"), "authorization_code");
  assert.equal(exchange.form.get("code"), "abc");
  assert.equal(exchange.form.get("code_verifier"), pending.verifier);
  assert.equal(exchange.form.get("redirect_uri"), REDIRECT);
  assert.equal(exchange.form.get("client_id"), "console-client");
  assert.equal(exchange.form.get("client_secret"), null);
  assert.equal(calls.length, 1, "only discovery before the redirect");
  // The pending sign-in is single use: replaying the callback is refused without calling the provider.
  await assert.rejects(completeSignIn(`?code=abc&state=${auth.searchParams.get("state")}`, settings, d2), SignInError);
  assert.equal(c2.filter((c) => c.url.endsWith("/token")).length, 1);
});

test("completeSignIn: not a callback, wrong state, provider error, nonce mismatch, token endpoint refusal", async () => {
  const start = async (answers: Array<{ status: number; body: Record<string, unknown> }>) => {
    const provider = fakeProvider(answers);
    const url = new URL(await beginSignIn(settings, REDIRECT, provider.deps));
    const pending = JSON.parse([...provider.store.values()][0]) as { nonce: string };
    return { ...provider, state: url.searchParams.get("state"), nonce: pending.nonce };
  };
  const none = await start([]);
  assert.equal(await completeSignIn("", settings, none.deps), null);
  assert.equal(await completeSignIn("?foo=1", settings, none.deps), null);

  const wrong = await start([{ status: 200, body: { id_token: "x" } }]);
  await assert.rejects(completeSignIn("?code=abc&state=forged", settings, wrong.deps), /state does not match/);
  assert.equal(wrong.calls.filter((c) => c.url.endsWith("/token")).length, 0, "a forged state never reaches the provider");

  const denied = await start([]);
  await assert.rejects(
    completeSignIn(`?error=access_denied&error_description=nope&state=${denied.state}`, settings, denied.deps),
    /access_denied \(nope\)/,
  );

  const replayed = await start([{ status: 200, body: { id_token: jwt({ sub: "u1", nonce: "someone-else", role: "agent" }) } }]);
  await assert.rejects(completeSignIn(`?code=abc&state=${replayed.state}`, settings, replayed.deps), /nonce/);

  const refused = await start([{ status: 400, body: { error: "invalid_grant" } }]);
  await assert.rejects(completeSignIn(`?code=abc&state=${refused.state}`, settings, refused.deps), /invalid_grant/);

  const noIdToken = await start([{ status: 200, body: { access_token: "at" } }]);
  await assert.rejects(completeSignIn(`?code=abc&state=${noIdToken.state}`, settings, noIdToken.deps), /without id_token/);

  const access = await start([{ status: 200, body: { access_token: "the-access-token", id_token: jwt({ nonce: "" }) } }]);
  const accessState = access.state;
  // With bearer "access_token" the access token is used (the id token's nonce is still checked).
  access.store.set(
    "coaching-console-oidc-pending",
    JSON.stringify({ ...JSON.parse(access.store.get("coaching-console-oidc-pending") as string), nonce: "" }),
  );
  const tokens = await completeSignIn(`?code=abc&state=${accessState}`, { ...settings, bearer: "access_token" }, access.deps);
  assert.equal(tokens?.bearer, "the-access-token");
});

test("refreshTokens: refresh token grant; a rotated refresh token replaces the stored one", async () => {
  const p2 = fakeProvider([
    { status: 200, body: { id_token: "second", refresh_token: "rt2" } },
    { status: 200, body: { id_token: "third" } },
    { status: 400, body: { error: "invalid_grant" } },
  ]);
  p2.store.set("coaching-console-oidc-refresh", JSON.stringify({ token: "rt1", endpoint: "https://idp.example/token" }));
  assert.equal(await refreshTokens(settings, p2.deps), "second");
  assert.equal(p2.calls[0].form?.get("grant_type"), "refresh_token");
  assert.equal(p2.calls[0].form?.get("refresh_token"), "rt1");
  assert.equal(p2.calls[0].form?.get("client_id"), "console-client");
  assert.equal(await refreshTokens(settings, p2.deps), "third");
  assert.equal(p2.calls[1].form?.get("refresh_token"), "rt2", "the rotated refresh token is used");
  assert.equal(await refreshTokens(settings, p2.deps).catch((e: Error) => e.message), "token endpoint refused: invalid_grant");
  assert.equal(p2.calls[2].form?.get("refresh_token"), "rt2", "an unrotated refresh token is kept");
  forgetTokens(p2.deps);
  await assert.rejects(refreshTokens(settings, p2.deps), /sign in again/);
});

test("sessionFromToken: configurable role and tenant claims; a list claim maps to its first known role", () => {
  const token = jwt({ sub: "u1", "cognito:groups": ["staff", "supervisor", "agent"], "custom:tid": "t9", email: "a@b" });
  const s = sessionFromToken(token, "cognito:groups", "custom:tid");
  assert.equal(s?.role, "supervisor");
  assert.equal(s?.tenantId, "t9");
  assert.equal(sessionFromToken(jwt({ sub: "u1", "cognito:groups": ["staff"] }), "cognito:groups"), null);
  assert.equal(s?.name, "a@b");
  assert.equal(sessionFromToken(jwt({ sub: "u1", role: "agent", tid: "t1" }))?.role, "agent");
});
