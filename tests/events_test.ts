/**
 * Live updates (`wordEvents`) through real gateway processes, SQLite only:
 * SSE delivery in ack order and exactly once, nothing for a refused write,
 * READ_TOKEN, the subscription caps, SIGTERM with a subscription open.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { type GraphQLBody, startServer, uniqueTag } from "./support/gateway.ts";
import { requiredTest, storeConfig, testEnv } from "./support/env.ts";
import { subscribe } from "./support/sse.ts";
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

/**
 * The Redis of the cross-instance test: the matrix's (`REDIS_URL`), or
 * `EVENTS_TEST_REDIS_URL` to use another one.
 */
const EVENTS_REDIS = testEnv.EVENTS_TEST_REDIS_URL ?? storeConfig("REDIS")?.url;

requiredTest(
  "EVENTS_URL: a subscriber on A gets 100 writes made through B, in order, exactly once",
  {
    missing: EVENTS_REDIS ? undefined : "neither REDIS_URL nor EVENTS_TEST_REDIS_URL is set",
    start: "deno task matrix up redis",
  },
  async () => {
    const env = { EVENTS_URL: EVENTS_REDIS!, RATE_LIMIT_PER_MINUTE: "0" };
    const a = await startServer(env);
    const b = await startServer(env);
    try {
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
    } finally {
      for (const s of [a, b]) {
        const status = await s.stop();
        assertOk(status.success, s.output().slice(-2000));
      }
    }
  },
);

Deno.test({
  name: "without EVENTS_URL: A gets none of B's writes, only its own",
  ...opts,
  fn: async () => {
    const a = await startServer();
    const b = await startServer();
    try {
      const sub = await subscribe(a.url, WORD_EVENTS);
      await gql(b.url, ADD, { store: "SQLITE", word: uniqueTag(), definition: "from b" });
      await gql(a.url, ADD, { store: "SQLITE", word: uniqueTag(), definition: "from a" });
      await sub.waitFor(1);
      await new Promise((r) => setTimeout(r, 300));
      assertEquals(sub.events.map((e) => eventOf(e).word.definition), ["from a"]);
      sub.close();
    } finally {
      await a.stop();
      await b.stop();
    }
  },
});
