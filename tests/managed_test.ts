/**
 * The wrapper every store runs in (stores/managed.ts), over fakes: the
 * reconnection loop against a database that refuses every connection, the
 * call timeout, reconnecting after a failed call and a failed ping, and
 * closing while a connection is being opened. No database needed.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { StoreUnavailableError } from "../stores/errors.ts";
import { ManagedStore, type StoreCall } from "../stores/managed.ts";
import { newRecord } from "../stores/records.ts";
import type { ListQuery, NewWord, WordRecord, WordStore } from "../stores/types.ts";

Deno.test(
  "a store that cannot connect logs its first three failed attempts, then one line per 30, with no secret",
  async () => {
    const lines: string[] = [];
    const secret = "postgres://u:hunter2-secret@db.invalid:5432/x";
    const store = new ManagedStore({
      name: "POSTGRESQL",
      open: () => Promise.reject(new Error(`connect ECONNREFUSED ${secret}`)),
      requestTimeoutMs: 500,
      connectTimeoutMs: 500,
      reconnectMaxMs: 20,
      secrets: [secret],
      log: (line) => lines.push(line),
    });
    store.start();
    const attempts = () => lines.map((l) => Number(l.match(/attempt (\d+),/)?.[1]));
    try {
      const deadline = Date.now() + 20_000;
      while (!attempts().includes(30) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const health = await store.health();
      assertEquals(health.healthy, false);
      assertOk(/^connecting \(attempt \d+\)$/.test(health.message ?? ""), health.message);
    } finally {
      await store.close();
    }
    assertEquals(attempts().slice(0, 4), [1, 2, 3, 30], lines.join("\n"));
    assertOk(lines.every((l) => !l.includes("hunter2")), "the password is never logged");
  },
);

/**
 * A `WordStore` in memory whose calls and pings can be made to fail or
 * hang, counting what the managed store does with it.
 */
class FakeStore implements WordStore {
  failCalls = false;
  failPing = false;
  hangCalls = false;
  closed = 0;
  pings = 0;
  readonly words: WordRecord[] = [];

  #call<T>(value: () => T): Promise<T> {
    if (this.hangCalls) return new Promise(() => {});
    if (this.failCalls) return Promise.reject(new Error("connection reset by peer"));
    return Promise.resolve(value());
  }
  add(r: NewWord) {
    return this.#call(() => void this.words.push(r));
  }
  addMany(rs: NewWord[]) {
    return this.#call(() => void this.words.push(...rs));
  }
  get(id: string) {
    return this.#call(() => this.words.find((w) => w.id === id));
  }
  replace() {
    return this.#call(() => false);
  }
  remove() {
    return this.#call(() => false);
  }
  list(q: ListQuery) {
    return this.#call(() => this.words.slice(q.offset, q.offset + q.limit));
  }
  ping() {
    this.pings++;
    return this.failPing ? Promise.reject(new Error("ping failed")) : Promise.resolve();
  }
  close() {
    this.closed++;
    return Promise.resolve();
  }
}

/** A managed store over fakes: each `open` hands out the next fake (or waits on `gate`). */
function managed(opts: { requestTimeoutMs?: number; gate?: Promise<void> } = {}) {
  const opened: FakeStore[] = [];
  const lines: string[] = [];
  const calls: StoreCall[] = [];
  const store = new ManagedStore({
    name: "REDIS",
    open: async () => {
      await opts.gate;
      const fake = new FakeStore();
      opened.push(fake);
      return fake;
    },
    requestTimeoutMs: opts.requestTimeoutMs ?? 200,
    connectTimeoutMs: 200,
    reconnectMaxMs: 20,
    secrets: [],
    log: (line) => lines.push(line),
    observe: (call) => calls.push(call),
  });
  return { store, opened, lines, calls };
}

/** Waits until `ok()` holds, failing after `ms`. */
async function until(ok: () => boolean, ms = 5_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The reason of the StoreUnavailableError that `p` rejects with. */
async function unavailable(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assertOk(e instanceof StoreUnavailableError, `not a StoreUnavailableError: ${e}`);
    return e.reason;
  }
  throw new Error("the call did not fail");
}

const page: ListQuery = { limit: 10, offset: 0 };

Deno.test("calls answer 'not connected' until the store opens, then reach it", async () => {
  let letOpen = () => {};
  const gate = new Promise<void>((r) => (letOpen = r));
  const { store, opened } = managed({ gate });
  store.start();
  try {
    assertEquals(await unavailable(store.list(page)), "not connected");
    assertEquals((await store.health()).healthy, false);
    letOpen();
    await store.whenReady(2_000);
    const word = newRecord("hello", "world");
    await store.add(word);
    assertEquals(await store.get(word.id), word);
    assertEquals(opened.length, 1);
    assertEquals((await store.health()).healthy, true);
  } finally {
    await store.close();
  }
});

Deno.test("a call that outlasts the request timeout answers 'timed out' and is not waited for", async () => {
  const { store, opened } = managed({ requestTimeoutMs: 100 });
  store.start();
  try {
    await store.whenReady(2_000);
    opened[0].hangCalls = true;
    const t0 = performance.now();
    assertEquals(await unavailable(store.list(page)), "timed out");
    // Well before a second timeout would have passed: the hung call is abandoned, not awaited.
    assertOk(performance.now() - t0 < 1_000, `answered after ${performance.now() - t0} ms`);
    // Its ping succeeded, so the connection is kept.
    await until(() => opened[0].pings > 0, 2_000, "the ping after the failed call");
    opened[0].hangCalls = false;
    assertEquals(await store.list(page), []);
    assertEquals(opened.length, 1);
  } finally {
    await store.close();
  }
});

Deno.test("a failed call followed by a failed ping drops the connection and reconnects", async () => {
  const { store, opened, lines } = managed();
  store.start();
  try {
    await store.whenReady(2_000);
    const first = opened[0];
    first.failCalls = true;
    first.failPing = true;
    assertEquals(await unavailable(store.add(newRecord("a", "b"))), "database error");
    await until(() => opened.length === 2, 5_000, "a second connection");
    await store.whenReady(2_000);
    await until(() => first.closed === 1, 2_000, "the lost connection to be closed");
    const word = newRecord("after", "reconnect");
    await store.add(word);
    assertEquals(opened[1].words, [word]);
    assertOk(lines.some((l) => l.includes("lost the database; reconnecting")), lines.join("\n"));
  } finally {
    await store.close();
  }
});

Deno.test("a failed call whose ping succeeds keeps the connection", async () => {
  const { store, opened } = managed();
  store.start();
  try {
    await store.whenReady(2_000);
    opened[0].failCalls = true;
    assertEquals(await unavailable(store.list(page)), "database error");
    await until(() => opened[0].pings > 0, 2_000, "the ping after the failed call");
    opened[0].failCalls = false;
    assertEquals(await store.list(page), []);
    assertEquals(opened.length, 1);
    assertEquals(opened[0].closed, 0);
  } finally {
    await store.close();
  }
});

Deno.test("a store that finishes opening after close is closed at once and never used", async () => {
  let letOpen = () => {};
  const gate = new Promise<void>((r) => (letOpen = r));
  const { store, opened } = managed({ gate });
  store.start();
  await store.close();
  letOpen();
  await until(() => opened.length === 1, 2_000, "the open to finish");
  await until(() => opened[0].closed === 1, 2_000, "the late store to be closed");
  assertEquals(await unavailable(store.list(page)), "shutting down");
  assertEquals((await store.health()).message, "closed");
});

Deno.test("the observer hears every call and ping once it settled, with its error when it failed", async () => {
  let letOpen = () => {};
  const gate = new Promise<void>((r) => (letOpen = r));
  const { store, opened, calls } = managed({ gate });
  store.start();
  try {
    await unavailable(store.list(page)); // refused while connecting: observed too
    letOpen();
    await store.whenReady(2_000);
    const word = newRecord("seen", "by the observer");
    await store.add(word);
    await store.get(word.id);
    await store.replace(word, word.createdAt);
    await store.remove(word.id, word.createdAt);
    await store.health();
    opened[0].failPing = true;
    await store.health();
    const seen = calls.map((c) => [c.operation, c.store, c.error?.constructor.name ?? "ok"]);
    assertEquals(seen, [
      ["list", "REDIS", "StoreUnavailableError"],
      ["add", "REDIS", "ok"],
      ["get", "REDIS", "ok"],
      ["replace", "REDIS", "ok"],
      ["remove", "REDIS", "ok"],
      ["ping", "REDIS", "ok"],
      ["ping", "REDIS", "StoreUnavailableError"],
    ]);
    assertOk(calls.every((c) => c.ms >= 0 && c.ms < 2_000), JSON.stringify(calls));
  } finally {
    await store.close();
  }
});
