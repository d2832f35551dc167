// Unit tests of the console's component kit (node:test): feedback, the shared clock, lists and tables,
// badges, routes and screens loaded on demand. Components are rendered to HTML without a browser.
import assert from "node:assert/strict";
import { test } from "node:test";
import { renderToString } from "preact-render-to-string";
import { Clock, Elapsed, formatElapsed, type Timers } from "../src/kit/clock";
import { type Column, DataTable, filterRows, List, sortRows } from "../src/kit/collections";
import { ErrorBar, Feedback, Notice } from "../src/kit/feedback";
import { Badge, Panel } from "../src/kit/panel";
import { hrefOf, lazy, pick, routeOf } from "../src/kit/router";
import { namer } from "../src/model";
import { ProtocolError, type Workitem } from "../src/protocol";
import { workitemLine } from "../src/ui";

test("feedback: a failed action is shown, not thrown; a success gives its value and its notice", async () => {
  const feedback = new Feedback();
  let changes = 0;
  feedback.subscribe(() => changes++);
  assert.equal(await feedback.run(Promise.resolve(7), "Saved"), 7);
  assert.equal(feedback.notice, "Saved");
  const refused = new ProtocolError("coach.send", { code: "conflict", message: "nobody is monitoring" });
  assert.equal(await feedback.run(() => Promise.reject(refused)), undefined);
  assert.equal(feedback.error, "coach.send: not possible right now (coach.send: conflict: nobody is monitoring)");
  assert.equal(feedback.notice, "Saved", "a failure leaves the last notice");
  const shown = feedback.error;
  await feedback.run(async () => "fine");
  assert.equal(feedback.error, shown, "without clearOnSuccess the error stays until dismissed");
  feedback.dismiss();
  assert.equal(feedback.error, "");
  assert.equal(changes, 3, "one change each for the notice, the failure and the dismissal");
});

test("feedback with clearOnSuccess: the next success clears the error; action() runs on an event", async () => {
  const feedback = new Feedback({ clearOnSuccess: true });
  const seen: number[] = [];
  const click = feedback.action(async (n: number) => {
    seen.push(n);
    if (n < 0) throw new Error("negative");
  });
  click(-1);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(feedback.error, "negative");
  click(2);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(feedback.error, "");
  assert.deepEqual(seen, [-1, 2]);
});

test("feedback renders as an alert with a dismiss button, and a status line for the notice", async () => {
  const feedback = new Feedback();
  assert.equal(renderToString(<ErrorBar feedback={feedback} />), "");
  await feedback.run(Promise.reject(new Error("no network")), "never");
  const html = renderToString(<ErrorBar feedback={feedback} />);
  assert.match(html, /class="error-bar" role="alert"/);
  assert.match(html, /no network/);
  assert.match(html, /aria-label="Dismiss error"/);
  await feedback.run(Promise.resolve(), "User: saved");
  assert.equal(renderToString(<Notice feedback={feedback} />), '<p class="notice" role="status">User: saved</p>');
});

class FakeTimers implements Timers {
  time = 1_000_000;
  intervals = new Map<number, () => void>();
  private next = 1;
  now = () => this.time;
  setInterval = (tick: () => void) => {
    const id = this.next++;
    this.intervals.set(id, tick);
    return id;
  };
  clearInterval = (handle: unknown) => {
    this.intervals.delete(handle as number);
  };
  advance(ms: number): void {
    this.time += ms;
    for (const tick of this.intervals.values()) tick();
  }
}

test("the clock runs one interval for every timer on the page, and none when no timer is shown", () => {
  const timers = new FakeTimers();
  const clock = new Clock(timers);
  assert.equal(clock.running, false);
  const seen: number[] = [];
  const stops = [1, 2, 3].map(() => clock.subscribe(() => seen.push(clock.now)));
  assert.equal(timers.intervals.size, 1);
  timers.advance(1000);
  assert.deepEqual(seen, [1_001_000, 1_001_000, 1_001_000], "every timer sees the same second");
  for (const stop of stops.slice(0, 2)) stop();
  assert.equal(clock.running, true);
  stops[2]?.();
  assert.equal(clock.running, false);
  assert.equal(timers.intervals.size, 0);
  timers.time += 5000;
  assert.equal(clock.read(), 1_006_000, "a stopped clock reads the time now, not its last tick");
});

test("elapsed time reads m:ss under an hour and h:mm:ss after; a live timer shows the span since its start", () => {
  assert.equal(formatElapsed(0), "0:00");
  assert.equal(formatElapsed(7_999), "0:07");
  assert.equal(formatElapsed(12 * 60_000 + 5_000), "12:05");
  assert.equal(formatElapsed(3_723_000), "1:02:03");
  assert.equal(formatElapsed(-4_000), "0:00", "a clock ahead of ours is no negative wait");
  const timers = new FakeTimers();
  const clock = new Clock(timers);
  const since = new Date(timers.time - 65_000).toISOString();
  const html = renderToString(<Elapsed since={since} label="Waiting" source={clock} />);
  assert.equal(html, `<time class="elapsed" datetime="${since}" title="Waiting">1:05</time>`);
  assert.equal(renderToString(<Elapsed since="not a date" source={clock} />), "");
});

interface Row {
  id: string;
  agent: string;
  wait: number;
}
const rows: Row[] = [
  { id: "w1", agent: "Alex", wait: 30 },
  { id: "w2", agent: "casey", wait: 300 },
  { id: "w3", agent: "Blake", wait: 30 },
  { id: "w10", agent: "alex", wait: 5 },
];
const columns: Column<Row>[] = [
  { key: "id", label: "Id", value: (r) => r.id },
  { key: "agent", label: "Agent", value: (r) => r.agent },
  { key: "wait", label: "Waiting", value: (r) => r.wait },
  { key: "open", label: "Open", hiddenLabel: true, cell: (r) => <button type="button">{r.id}</button> },
];
const ids = (list: Row[]) => list.map((r) => r.id);

test("rows sort by a column's value: numbers as numbers, text case-blind with numbers inside, ties kept in order", () => {
  assert.deepEqual(ids(sortRows(rows, columns, null)), ["w1", "w2", "w3", "w10"]);
  assert.deepEqual(ids(sortRows(rows, columns, { key: "wait", descending: false })), ["w10", "w1", "w3", "w2"]);
  assert.deepEqual(ids(sortRows(rows, columns, { key: "wait", descending: true })), ["w2", "w1", "w3", "w10"]);
  assert.deepEqual(ids(sortRows(rows, columns, { key: "agent", descending: false })), ["w1", "w10", "w3", "w2"]);
  assert.deepEqual(ids(sortRows(rows, columns, { key: "id", descending: false })), ["w1", "w2", "w3", "w10"]);
  assert.deepEqual(ids(sortRows(rows, columns, { key: "open", descending: false })), ["w1", "w2", "w3", "w10"], "no value: no order");
});

test("the filter keeps rows whose valued columns hold every word, in any case", () => {
  assert.deepEqual(ids(filterRows(rows, columns, "")), ["w1", "w2", "w3", "w10"]);
  assert.deepEqual(ids(filterRows(rows, columns, "ALEX")), ["w1", "w10"]);
  assert.deepEqual(ids(filterRows(rows, columns, "alex 5")), ["w10"]);
  assert.deepEqual(ids(filterRows(rows, columns, "nobody")), []);
});

test("a table shows its empty state, sort buttons with aria-sort, and each row's test hooks", () => {
  const empty = renderToString(<DataTable rows={[]} columns={columns} rowKey={(r) => r.id} empty="No conversations." />);
  assert.match(empty, /<tr class="empty-row"><td class="empty" colspan="4">No conversations\.<\/td><\/tr>/);
  const html = renderToString(
    <DataTable
      rows={rows}
      columns={columns}
      rowKey={(r) => r.id}
      rowHooks={(r) => ({ "data-testid": "floor-row", "data-workitem-id": r.id })}
      sortable
      initialSort={{ key: "wait", descending: true }}
      filterLabel="Filter"
      testId="floor"
    />,
  );
  assert.match(html, /<th scope="col" aria-sort="descending"><button type="button" class="sort">Waiting/);
  assert.match(html, /<th scope="col" aria-sort="none"><button type="button" class="sort">Agent/);
  assert.match(html, /<th scope="col"><span class="visually-hidden">Open<\/span><\/th>/, "a column without a value is no sort button");
  assert.deepEqual([...html.matchAll(/data-workitem-id="(\w+)"/g)].map((m) => m[1]), ["w2", "w1", "w3", "w10"]);
  assert.match(html, /<label for="[^"]+">Filter<\/label><input id="[^"]+" type="search"/);
  assert.doesNotMatch(html, /empty-row/);
  const plain = renderToString(<DataTable rows={rows.slice(0, 1)} columns={columns.slice(0, 1)} rowKey={(r) => r.id} />);
  assert.equal(plain, '<table><thead><tr><th scope="col">Id</th></tr></thead><tbody><tr><td>w1</td></tr></tbody></table>');
});

test("a list says when it is empty and puts each item's hooks on its <li>", () => {
  assert.equal(
    renderToString(<List items={[]} itemKey={String} render={String} empty="No agents." class="agent-board" />),
    '<p class="empty">No agents.</p><ul class="agent-board"></ul>',
  );
  assert.equal(
    renderToString(<List items={["a", "b"]} itemKey={String} render={(x) => x.toUpperCase()} itemHooks={(x) => ({ "data-id": x })} />),
    '<ul><li data-id="a">A</li><li data-id="b">B</li></ul>',
  );
});

test("a badge shows a count with words for screen readers, and nothing at zero; a panel is a named landmark", () => {
  assert.equal(renderToString(<Badge count={0} label="unread" />), "");
  assert.equal(
    renderToString(<Badge count={3} label="unread" testId="unread-badge" />),
    '<span class="badge" data-testid="unread-badge">3<span class="visually-hidden"> unread</span></span>',
  );
  assert.equal(
    renderToString(
      <Panel as="aside" class="sidebar" label="Agents" title="My agents" testId="attention-panel">
        <p>x</p>
      </Panel>,
    ),
    '<aside class="sidebar" aria-label="Agents" data-testid="attention-panel"><h2>My agents</h2><p>x</p></aside>',
  );
  assert.equal(renderToString(<Panel title="Messages" level={3} />), '<section aria-label="Messages"><h3>Messages</h3></section>');
});

test("routes come from the fragment; an unknown route is the default screen", () => {
  assert.equal(routeOf(""), "");
  assert.equal(routeOf("#"), "");
  assert.equal(routeOf("#/"), "");
  assert.equal(routeOf("#/insights"), "insights");
  assert.equal(routeOf("#insights/"), "insights");
  assert.equal(hrefOf("insights"), "#/insights");
  const routes = { "": "board", insights: "charts" };
  assert.equal(pick(routes, "insights"), "charts");
  assert.equal(pick(routes, "nope"), "board");
  assert.equal(pick(routes, "constructor"), "board", "only the table's own routes");
});

test("a lazy screen loads its code once, shows Loading… until then, and tries again after a failure", async () => {
  let calls = 0;
  let fail = true;
  const Hello = ({ who }: { who: string }) => <p>Hello {who}</p>;
  const Screen = lazy(async () => {
    calls += 1;
    if (fail) throw new Error("offline");
    return Hello;
  });
  assert.equal(renderToString(<Screen who="Sam" />), '<p class="loading">Loading…</p>');
  await assert.rejects(Screen.load(), /offline/);
  let ready = false;
  void Screen.ready.then(() => {
    ready = true;
  });
  fail = false;
  const [a, b] = await Promise.all([Screen.load(), Screen.load()]);
  assert.equal(a, Hello);
  assert.equal(b, Hello);
  assert.equal(calls, 2, "one failed import, then one shared by both callers");
  await Screen.ready;
  assert.equal(ready, true);
  assert.equal(renderToString(<Screen who="Sam" />), "<p>Hello Sam</p>");
  await Screen.load();
  assert.equal(calls, 2, "loaded code is kept");
});

test("screens name people and describe workitems the same way", () => {
  const name = namer("sup1", "Sam (you)", (id) => ({ agent1: "Alex" })[id]);
  assert.deepEqual([name(undefined), name("sup1"), name("agent1"), name("ghost")], ["", "Sam (you)", "Alex", "ghost"]);
  const workitem = {
    workitemId: "w1",
    channel: "chat",
    agentId: "agent1",
    customer: { id: "c1", name: "Casey" },
    subject: "Refund",
    status: "ended",
    createdAt: "2026-01-01T00:00:00Z",
    coaching: { active: true, supervisors: ["sup1"] },
  } satisfies Workitem;
  assert.equal(workitemLine(workitem, ["Casey", "chat"], true), "Casey · chat · ended · coached");
  assert.equal(workitemLine(workitem, ["Casey", "Alex", "chat"], false), "Casey · Alex · chat · ended");
});
