/**
 * Live updates (`wordEvents`) through real gateway processes, SQLite only:
 * SSE delivery in ack order and exactly once, nothing for a refused write,
 * READ_TOKEN, the subscription caps, SIGTERM with a subscription open.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { type GraphQLBody, startServer, uniqueTag } from "./support/gateway.ts";
import type { ServerProcess } from "../scripts/server_process.ts";
import { requiredTest, storeConfig, testEnv } from "./support/env.ts";
import { subscribe } from "./support/sse.ts";
import { REDIS_SERVER, startRedisServer } from "./support/redis_server.ts";
import { memoryOf } from "../scripts/server_process.ts";
import { valueOf } from "./support/prometheus.ts";
import { ADD, DELETE, UPDATE } from "./support/words.ts";

const WORD_EVENTS = `subscription($store: Store) {
  wordEvents(store: $store) { kind store word { id word definition store } }
}`;

const opts = { sanitizeOps: false, sanitizeResources: false };

async function gql(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<GraphQLBody> {
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return await res.json();
}

type Event = {
  kind: string;
  store: string;
  word: { id: string; word: string; definition: string };
};
const eventOf = (b: GraphQLBody) => (b.data as { wordEvents: Event }).wordEvents;

Deno.test({
  name:
    "SSE: a subscriber gets ADDED, UPDATED, DELETED once each, in order, none for a refused write",
  ...opts,
  fn: async () => {
    const server = await startServer();
    try {
      const sub = await subscribe(server.url, WORD_EVENTS, { store: "SQLITE" });
      const every = await subscribe(server.url, WORD_EVENTS);
      assertEquals(sub.status, 200);
      const tag = uniqueTag();
      const added = await gql(server.url, ADD, { store: "SQLITE", word: tag, definition: "one" });
      const id = (added.data!.addWord as { id: string }).id;
      // refused writes: bad input, an unknown id
      const bad = await gql(server.url, ADD, { store: "SQLITE", word: " ", definition: "x" });
      assertEquals(bad.errors?.[0].extensions?.code, "BAD_USER_INPUT");
      const missing = await gql(server.url, DELETE, {
        store: "SQLITE",
        id: "0190c2a4-0000-7000-8000-000000000000",
      });
      assertEquals(missing.errors?.[0].extensions?.code, "NOT_FOUND");
      await gql(server.url, UPDATE, { store: "SQLITE", id, definition: "two" });
      await gql(server.url, DELETE, { store: "SQLITE", id });
      for (const s of [sub, every]) {
        await s.waitFor(3);
        await new Promise((r) => setTimeout(r, 300)); // nothing more comes
        const got = s.events.map(eventOf);
        assertEquals(got.map((e) => e.kind), ["ADDED", "UPDATED", "DELETED"]);
        assertEquals(got.map((e) => e.word.definition), ["one", "two", "two"]);
        assertOk(got.every((e) => e.word.id === id && e.store === "SQLITE"));
      }
      // a subscription to another store sees none of them
      const other = await subscribe(server.url, WORD_EVENTS, { store: "POSTGRESQL" });
      await gql(server.url, ADD, { store: "SQLITE", word: tag, definition: "three" });
      await every.waitFor(4);
      await new Promise((r) => setTimeout(r, 200));
      assertEquals(other.events.length, 0);
      for (const s of [sub, every, other]) s.close();
    } finally {
      const status = await server.stop();
      assertOk(status.success, server.output().slice(-2000));
    }
  },
});

Deno.test({
  name: "SSE: the body deadlines, rate limit and CSRF check leave an open subscription alone",
  ...opts,
  fn: async () => {
    const server = await startServer({
      BODY_IDLE_TIMEOUT_MS: "100",
      BODY_TIMEOUT_MS: "200",
      RATE_LIMIT_PER_MINUTE: "2",
    });
    try {
      const post = await subscribe(server.url, WORD_EVENTS);
      // GET with Accept: text/event-stream needs the CSRF header, as any GET does
      const query = encodeURIComponent(WORD_EVENTS);
      const refused = await fetch(`${server.url}/graphql?query=${query}`, {
        headers: { accept: "text/event-stream" },
      });
      assertEquals(refused.status, 403);
      await refused.body?.cancel();
      const get = await fetch(`${server.url}/graphql?query=${query}`, {
        headers: { accept: "text/event-stream", "x-graphql-yoga-csrf": "1" },
      });
      assertEquals(get.headers.get("content-type"), "text/event-stream");
      await new Promise((r) => setTimeout(r, 1000)); // well past both body deadlines
      await gql(server.url, ADD, { store: "SQLITE", word: uniqueTag(), definition: "d" });
      assertEquals(eventOf((await post.waitFor(1))[0]).kind, "ADDED");
      const reader = get.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("event: next")) text += (await reader.read()).value ?? "";
      await reader.cancel();
      post.close();
    } finally {
      const status = await server.stop();
      assertOk(status.success, server.output().slice(-2000));
    }
  },
});

Deno.test({
  name: "SSE: a quiet subscription gets a keep-alive comment every SUBSCRIPTION_PING_MS",
  ...opts,
  fn: async () => {
    const server = await startServer({ SUBSCRIPTION_PING_MS: "200" });
    try {
      const res = await fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream" },
        body: JSON.stringify({ query: WORD_EVENTS }),
      });
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      const until = Date.now() + 1100;
      while (Date.now() < until) text += (await reader.read()).value ?? "";
      await reader.cancel();
      const pings = text.split(":\n\n").length - 1;
      assertOk(pings >= 4, `${pings} pings in 1.1 s: ${JSON.stringify(text)}`);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "SSE: READ_TOKEN refuses an unauthenticated subscription",
  ...opts,
  fn: async () => {
    const server = await startServer({
      WRITE_TOKEN: "w-token-0123456789ab",
      READ_TOKEN: "r-token-0123456789ab",
    });
    try {
      const refused = await subscribe(server.url, WORD_EVENTS);
      await refused.ended;
      assertEquals(refused.status, 401);
      assertEquals(refused.events[0]?.errors?.[0].extensions?.code, "UNAUTHENTICATED");
      const ok = await subscribe(server.url, WORD_EVENTS, {}, {
        authorization: "Bearer r-token-0123456789ab",
      });
      assertEquals(ok.status, 200);
      await gql(server.url, ADD, { store: "SQLITE", word: uniqueTag(), definition: "d" }, {
        authorization: "Bearer w-token-0123456789ab",
      });
      assertEquals(eventOf((await ok.waitFor(1))[0]).kind, "ADDED");
      ok.close();
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "SSE: the per-client and total caps refuse with SUBSCRIPTION_LIMIT",
  ...opts,
  fn: async () => {
    for (
      const [env, open] of [[{ SUBSCRIPTIONS_PER_CLIENT: "2" }, 2], [
        { SUBSCRIPTIONS_MAX: "3" },
        3,
      ]] as const
    ) {
      const server = await startServer(env);
      try {
        const subs = [];
        for (let i = 0; i < open; i++) subs.push(await subscribe(server.url, WORD_EVENTS));
        const refused = await subscribe(server.url, WORD_EVENTS);
        assertOk(await refused.ended, "a refused subscription completes");
        assertEquals(refused.events[0]?.errors?.[0].extensions?.code, "SUBSCRIPTION_LIMIT");
        // closing one frees its place
        subs[0].close();
        await new Promise((r) => setTimeout(r, 300));
        const again = await subscribe(server.url, WORD_EVENTS);
        await gql(server.url, ADD, { store: "SQLITE", word: uniqueTag(), definition: "d" });
        assertEquals(eventOf((await again.waitFor(1))[0]).kind, "ADDED");
        for (const s of [...subs, again]) s.close();
      } finally {
        await server.stop();
      }
    }
  },
});

Deno.test({
  name: "SIGTERM with an open subscription exits 0 within the drain, the stream ended",
  ...opts,
  fn: async () => {
    const server = await startServer({ SHUTDOWN_DRAIN_MS: "500" });
    const sub = await subscribe(server.url, WORD_EVENTS);
    const started = Date.now();
    const status = await server.stop("SIGTERM", 15_000);
    const took = Date.now() - started;
    assertOk(status.success, server.output().slice(-2000));
    // drain (0.5 s) + bodies/listener/stores steps, not the listener's 2.5 s limit spent waiting
    assertOk(took < 2500, `took ${took} ms`);
    assertOk(await sub.ended, "the stream completed");
    const last = sub.events.at(-1);
    assertEquals(last?.errors?.[0].extensions?.code, "SHUTTING_DOWN");
  },
});

Deno.test({
  name:
    "a subscriber whose socket never reads is disconnected (SUBSCRIBER_TOO_SLOW last) and the gateway's memory stays flat",
  ...opts,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "slow-subscriber-" });
    // On disk, so the words written do not count in the gateway's memory.
    const server = await startServer({ RATE_LIMIT_PER_MINUTE: "0", SQLITE_PATH: `${dir}/w.db` });
    const port = Number(new URL(server.url).port);
    const open = async () =>
      valueOf(
        await (await fetch(`${server.url}/metrics`)).text(),
        "grand_tour_subscriptions_open",
        {},
      ) ?? NaN;
    // ~2 KB events: 256 four-byte characters in word and definition.
    const big = "\u{1D538}".repeat(256);
    const EVENT_BYTES = 2 * 256 * 4;
    let adds = 0;
    /** Four clients adding until `done()` or `total` adds. */
    const write = (total: number, done: () => Promise<boolean> = () => Promise.resolve(false)) =>
      Promise.all(Array.from({ length: 4 }, async () => {
        while (adds < total && !(await done())) {
          for (let i = 0; i < 50; i++, adds++) {
            const out = await gql(server.url, ADD, { store: "SQLITE", word: big, definition: big });
            assertEquals(out.errors, undefined, JSON.stringify(out.errors));
          }
        }
      }));
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await write(2_000); // warm-up: JIT, heap, pools at the load's size
      const before = memoryOf(server.pid)!.rssMiB;
      const body = JSON.stringify({ query: WORD_EVENTS, variables: { store: "SQLITE" } });
      await conn.write(new TextEncoder().encode(
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
          `Accept: text/event-stream\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      ));
      const head = new Uint8Array(4096);
      const n = await conn.read(head); // the status line and headers; then it reads nothing more
      assertOk(new TextDecoder().decode(head.subarray(0, n ?? 0)).startsWith("HTTP/1.1 200"));
      assertEquals(await open(), 1);
      // Until the socket buffers (a few MB on loopback) are full and the subscriber's queue (256
      // events) overflows; then on, with the socket still unread, to 20,000 events (~40 MB).
      const from = adds;
      await write(from + 40_000, async () => (await open()) === 0);
      const droppedAfter = adds - from;
      assertEquals(await open(), 0, `still subscribed after ${droppedAfter} events`);
      await write(from + 20_000);
      const after = memoryOf(server.pid)!.rssMiB;
      const published = ((adds - from) * EVENT_BYTES) / 2 ** 20;
      console.log(
        `slow subscriber dropped after ${droppedAfter} events; RSS ${before.toFixed(0)} → ${
          after.toFixed(0)
        } MiB over ${published.toFixed(0)} MiB of events`,
      );
      assertOk(
        after - before < published / 2,
        `RSS ${before.toFixed(0)} → ${after.toFixed(0)} MiB while ${
          published.toFixed(0)
        } MiB of events went to a subscriber that never read (dropped after ${droppedAfter})`,
      );
      // What the kernel held is still there to read; the stream ends with the reason.
      let text = "";
      const buf = new Uint8Array(1 << 16);
      const decoder = new TextDecoder();
      for (;;) {
        const got = await Promise.race([
          conn.read(buf),
          new Promise<"idle">((r) => setTimeout(() => r("idle"), 2_000)),
        ]);
        if (got === null || got === "idle") break;
        text += decoder.decode(buf.subarray(0, got), { stream: true });
      }
      const reason = text.lastIndexOf("SUBSCRIBER_TOO_SLOW");
      assertOk(reason > 0 && reason > text.lastIndexOf("ADDED"), text.slice(-500));
    } finally {
      try {
        conn.close();
      } catch {
        // closed by the server
      }
      await server.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

/**
 * The Redis of the cross-instance test: the matrix's (`REDIS_URL`), or
 * `EVENTS_TEST_REDIS_URL` to use another one.
 */
const EVENTS_REDIS = testEnv.EVENTS_TEST_REDIS_URL ?? storeConfig("REDIS")?.url;
/** What the tests over {@linkcode EVENTS_REDIS} need. */
const NEEDS_EVENTS_REDIS = {
  missing: EVENTS_REDIS ? undefined : "neither REDIS_URL nor EVENTS_TEST_REDIS_URL is set",
  start: "deno task matrix up redis",
};

/** Two instances sharing {@linkcode EVENTS_REDIS}, without a rate limit. */
const SHARED_REDIS = { EVENTS_URL: EVENTS_REDIS ?? "", RATE_LIMIT_PER_MINUTE: "0" };

/** Runs `fn` with two gateway instances A and B started with `env`; both must then stop cleanly. */
async function withTwoInstances(
  env: Record<string, string>,
  fn: (a: ServerProcess, b: ServerProcess) => Promise<void>,
): Promise<void> {
  const a = await startServer(env);
  const b = await startServer(env);
  try {
    await fn(a, b);
  } finally {
    for (const s of [a, b]) {
      const status = await s.stop();
      assertOk(status.success, s.output().slice(-2000));
    }
  }
}

requiredTest(
  "EVENTS_URL: a subscriber on A gets 100 writes made through B, in order, exactly once",
  NEEDS_EVENTS_REDIS,
  async () => {
    await withTwoInstances(SHARED_REDIS, async (a, b) => {
      const sub = await subscribe(a.url, WORD_EVENTS, { store: "SQLITE" });
      const tag = uniqueTag();
      const words: string[] = [];
      for (let i = 0; i < 100; i++) {
        const word = `${tag}-${i}`;
        words.push(word);
        const out = await gql(b.url, ADD, { store: "SQLITE", word, definition: "d" });
        assertEquals(out.errors, undefined, JSON.stringify(out.errors));
      }
      await sub.waitFor(100, 20_000);
      await new Promise((r) => setTimeout(r, 300));
      assertEquals(sub.events.map((e) => eventOf(e).word.word), words);
      sub.close();
    });
  },
);

requiredTest(
  "EVENTS_URL: while 4 clients add, edit and delete at once through B, A gets each event once, each client's in its order",
  NEEDS_EVENTS_REDIS,
  async () => {
    await withTwoInstances(SHARED_REDIS, async (a, b) => {
      const sub = await subscribe(a.url, WORD_EVENTS, { store: "SQLITE" });
      const tag = uniqueTag();
      const CLIENTS = 4, WORDS = 10;
      // One client: each of its words added, edited, deleted, one request at a time.
      const client = async (c: number) => {
        const expected: string[] = [];
        for (let i = 0; i < WORDS; i++) {
          const word = `${tag}-${c}-${i}`;
          const added = await gql(b.url, ADD, { store: "SQLITE", word, definition: "one" });
          assertEquals(added.errors, undefined, JSON.stringify(added.errors));
          const id = (added.data!.addWord as { id: string }).id;
          const edited = await gql(b.url, UPDATE, { store: "SQLITE", id, definition: "two" });
          assertEquals(edited.errors, undefined, JSON.stringify(edited.errors));
          const deleted = await gql(b.url, DELETE, { store: "SQLITE", id });
          assertEquals(deleted.errors, undefined, JSON.stringify(deleted.errors));
          expected.push(`ADDED ${word}`, `UPDATED ${word}`, `DELETED ${word}`);
        }
        return expected;
      };
      const expected = await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
      const total = CLIENTS * WORDS * 3;
      await sub.waitFor(total, 30_000);
      await new Promise((r) => setTimeout(r, 300)); // nothing more comes
      const got = sub.events.map(eventOf).map((e) => `${e.kind} ${e.word.word}`);
      assertEquals(got.length, total);
      for (let c = 0; c < CLIENTS; c++) {
        assertEquals(
          got.filter((e) => e.split(" ")[1].startsWith(`${tag}-${c}-`)),
          expected[c],
        );
      }
      sub.close();
    });
  },
);

requiredTest(
  "EVENTS_URL: with Redis killed both gateways keep serving, and events flow again once it is back",
  {
    missing: REDIS_SERVER ? undefined : "redis-server is not installed",
    start: "deno task matrix up redis",
  },
  async () => {
    const redis = await startRedisServer();
    const env = { EVENTS_URL: redis.url, RATE_LIMIT_PER_MINUTE: "0" };
    try {
      await withTwoInstances(env, async (a, b) => {
        const sub = await subscribe(a.url, WORD_EVENTS, { store: "SQLITE" });
        const add = async (definition: string) => {
          const out = await gql(b.url, ADD, { store: "SQLITE", word: uniqueTag(), definition });
          assertEquals(out.errors, undefined, JSON.stringify(out.errors));
        };
        await add("before");
        await sub.waitFor(1);
        await redis.kill();
        // Queries and mutations do not depend on the event transport.
        for (let i = 0; i < 5; i++) await add("while Redis is down");
        const listed = await gql(a.url, `{ words(store: SQLITE, limit: 1) { id } }`, {});
        assertEquals(listed.errors, undefined, JSON.stringify(listed.errors));
        await redis.restart();
        // Pub/sub does not replay: what was published while Redis was down is gone. Once both
        // connections are back (reconnect backoff capped at 2 s), a new write reaches A again.
        const t0 = Date.now();
        let n = 0;
        while (!sub.events.some((e) => eventOf(e).word.definition.startsWith("after"))) {
          if (Date.now() - t0 > 20_000) throw new Error("no event within 20 s of Redis's return");
          await add(`after ${n++}`);
          await new Promise((r) => setTimeout(r, 250));
        }
        const definitions = sub.events.map((e) => eventOf(e).word.definition);
        assertEquals(definitions[0], "before");
        assertOk(!definitions.includes("while Redis is down"), definitions.join(", "));
        assertOk(!sub.events.some((e) => e.errors), JSON.stringify(sub.events.at(-1)));
        sub.close();
      });
    } finally {
      await redis.kill();
    }
  },
);

Deno.test({
  name: "without EVENTS_URL: A gets none of B's writes, only its own",
  ...opts,
  fn: async () => {
    await withTwoInstances({}, async (a, b) => {
      const sub = await subscribe(a.url, WORD_EVENTS);
      await gql(b.url, ADD, { store: "SQLITE", word: uniqueTag(), definition: "from b" });
      await gql(a.url, ADD, { store: "SQLITE", word: uniqueTag(), definition: "from a" });
      await sub.waitFor(1);
      await new Promise((r) => setTimeout(r, 300));
      assertEquals(sub.events.map((e) => eventOf(e).word.definition), ["from a"]);
      sub.close();
    });
  },
});
