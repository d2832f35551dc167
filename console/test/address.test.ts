// Unit tests of the token in the address (node:test): the inline script at the top of index.html takes
// `?token=` or `#token=` out of the address before anything loads, and the session starts from it once.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { runInNewContext } from "node:vm";
import { ADDRESS_TOKEN_KEY, initialToken } from "../src/api";

const html = readFileSync(new URL("../src/index.html", import.meta.url), "utf8");
const inline = [...html.matchAll(/<script>([^<]*)<\/script>/g)].map((m) => m[1]);

class MemoryStorage {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

/** Run the page's inline script at ``href``: what it stored and the address it left (null: untouched). */
function load(href: string): { stored: string | null; address: string | null } {
  const storage = new MemoryStorage();
  let address: string | null = null;
  const history = { replaceState: (_s: unknown, _t: string, url: string) => (address = url) };
  runInNewContext(inline[0], { URL, URLSearchParams, location: { href }, sessionStorage: storage, history });
  return { stored: storage.getItem(ADDRESS_TOKEN_KEY), address };
}

test("index.html has one inline script, before the stylesheet and the module", () => {
  assert.equal(inline.length, 1);
  assert.ok(html.indexOf("<script>") < html.indexOf('rel="stylesheet"'));
  assert.ok(html.indexOf('name="referrer" content="no-referrer"') < html.indexOf("<script>"));
});

test("a token in the query or the fragment is stored and leaves the address; the rest stays", () => {
  assert.deepEqual(load("http://h/?token=abc"), { stored: "abc", address: "/" });
  assert.deepEqual(load("http://h/?x=1&token=abc#y=2"), { stored: "abc", address: "/?x=1#y=2" });
  assert.deepEqual(load("http://h/#token=abc"), { stored: "abc", address: "/" });
  assert.deepEqual(load("http://h/index.html#a=1&token=abc"), { stored: "abc", address: "/index.html#a=1" });
  assert.deepEqual(load("http://h/?token=q#token=f"), { stored: "q", address: "/" });
});

test("without a token the address is left alone (an OIDC callback's code and state stay)", () => {
  assert.deepEqual(load("http://h/"), { stored: null, address: null });
  assert.deepEqual(load("http://h/?code=c&state=s"), { stored: null, address: null });
});

test("the address's token wins over the tab's stored one, once", () => {
  const storage = new MemoryStorage();
  storage.setItem("coaching-console-token", "old");
  storage.setItem(ADDRESS_TOKEN_KEY, "new");
  assert.equal(initialToken(storage), "new");
  assert.equal(storage.getItem(ADDRESS_TOKEN_KEY), null);
  assert.equal(initialToken(storage), "new"); // now the stored one
  storage.setItem("coaching-console-token", "kept");
  assert.equal(initialToken(storage), "kept");
});
