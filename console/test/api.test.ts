// Unit tests of the session start (node:test): a token that expired while the tab was closed is renewed
// before anything uses it, or the user signs in again.
import assert from "node:assert/strict";
import { test } from "node:test";
import { secondsLeft, startingToken } from "../src/api";

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);

function jwt(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "HS256" })}.${b64(claims)}.sig`;
}

const at = (secondsFromNow: number) => jwt({ sub: "a", exp: NOW / 1000 + secondsFromNow });

test("secondsLeft reads exp; a token without exp never runs out", () => {
  assert.equal(secondsLeft(at(90), NOW), 90);
  assert.equal(secondsLeft(at(-5), NOW), -5);
  assert.equal(secondsLeft(jwt({ sub: "a" }), NOW), Number.POSITIVE_INFINITY);
});

test("a token with time left is used as it is, without asking for a new one", async () => {
  const token = at(600);
  let asked = 0;
  const renew = async () => {
    asked += 1;
    return at(3600);
  };
  assert.equal(await startingToken(token, renew, NOW), token);
  assert.equal(asked, 0);
});

test("an expired token, or one about to expire, is renewed before the session starts", async () => {
  const fresh = at(3600);
  const seen: string[] = [];
  const renew = async (current: string) => {
    seen.push(current);
    return fresh;
  };
  for (const left of [-3600, -1, 10, 30]) {
    assert.equal(await startingToken(at(left), renew, NOW), fresh);
  }
  assert.equal(seen.length, 4);
});

test("a token that is still valid is kept when renewal fails (the client renews it again later)", async () => {
  const soon = at(10);
  assert.equal(await startingToken(soon, undefined, NOW), soon);
  assert.equal(await startingToken(soon, async () => Promise.reject(new Error("offline")), NOW), soon);
});

test("an expired token that cannot be renewed means signing in again", async () => {
  const expired = at(-60);
  assert.equal(await startingToken(expired, undefined, NOW), null);
  assert.equal(
    await startingToken(expired, async () => Promise.reject(new Error("token renewal refused (401)")), NOW),
    null,
  );
  // A source that answers with another dead token is no better.
  assert.equal(await startingToken(expired, async () => at(-1), NOW), null);
});
