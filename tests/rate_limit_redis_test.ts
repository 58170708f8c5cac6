/**
 * The write rate limit shared through Redis (`RATE_LIMIT_REDIS_URL`,
 * server/rate_limit_redis.ts): two gateways in one process, each with its
 * own plugin and Redis client, stand for two instances behind a load
 * balancer. They count in the matrix's Redis (`REDIS_URL`) under a key
 * prefix of this run's own, whose keys the tests delete. And with that Redis
 * unreachable: writes go on, limited per instance, and the one warning
 * names no secret.
 */
import { Redis } from "ioredis";
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { storeTest } from "./support/env.ts";
import { startServer, testRegistry, uniqueTag } from "./support/gateway.ts";
import { parseSecurity } from "../server/config.ts";
import { createGraphQL } from "../server/graphql.ts";
import { secretsOfConfig } from "../stores/errors.ts";
import type { StoreConfig } from "../stores/types.ts";

/** One gateway instance: its own registry, yoga, rate-limit plugin and limiter client. */
class Instance {
  readonly #registry = testRegistry();
  readonly #graphql;

  constructor(perMinute: number, redis: StoreConfig, keyPrefix?: string) {
    this.#graphql = createGraphQL({
      registry: this.#registry,
      graphiql: false,
      security: { ...parseSecurity({}), rateLimitPerMinute: perMinute },
      secrets: secretsOfConfig(redis),
      rateLimitRedis: redis,
      rateLimitShared: { keyPrefix },
    });
  }

  ready(): Promise<void> {
    return this.#registry.embeddedReady();
  }

  /** `n` aliased writes as `client`: the HTTP status and the error text, if any. */
  async write(client: string, tag: string, n = 1): Promise<{ status: number; text: string }> {
    const fields = Array.from(
      { length: n },
      (_, i) => `w${i}: addWord(store: SQLITE, word: "${tag}-${i}", definition: "d") { id }`,
    );
    const res = await this.#graphql.fetch(
      "http://test/graphql",
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: `mutation { ${fields.join(" ")} }` }),
      },
      { clientAddress: client },
    );
    return { status: res.status, text: await res.text() };
  }

  async close(): Promise<void> {
    await this.#graphql.dispose();
    await this.#registry.close();
  }
}

/** Runs `fn` with two instances counting in `redis` under `prefix`, and closes them. */
async function withInstances(
  perMinute: number,
  redis: StoreConfig,
  prefix: string | undefined,
  fn: (a: Instance, b: Instance) => Promise<void>,
): Promise<void> {
  const a = new Instance(perMinute, redis, prefix);
  const b = new Instance(perMinute, redis, prefix);
  try {
    await Promise.all([a.ready(), b.ready()]);
    await fn(a, b);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

/** A raw client on the test Redis, for reading and deleting this run's counters. */
async function rawClient(config: StoreConfig): Promise<Redis> {
  const raw = new Redis(config.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  raw.on("error", () => {}); // a failed connect rejects below
  await raw.connect();
  return raw;
}

/** A key prefix of this run's own. */
function runPrefix(): string {
  return `grand_tour_test:rate_limit:${uniqueTag()}`;
}

storeTest(
  "REDIS",
  "two instances sharing one Redis share one budget per client",
  async (config) => {
    const prefix = runPrefix();
    const raw = await rawClient(config);
    try {
      await withInstances(5, config, prefix, async (a, b) => {
        const tag = uniqueTag();
        const [alice, bob] = ["198.51.100.1", "198.51.100.2"];
        assertEquals((await a.write(alice, `${tag}a`, 3)).status, 200, "3 on A");
        assertEquals(await raw.get(`${prefix}:${alice}`), "3", "a request's writes, spent at once");
        assertEquals((await b.write(alice, `${tag}b`, 2)).status, 200, "2 on B: 5 of 5");
        const refused = await b.write(alice, `${tag}c`);
        assertEquals(refused.status, 429, refused.text);
        assertOk(refused.text.includes("RATE_LIMITED"), refused.text);
        assertEquals((await a.write(alice, `${tag}d`)).status, 429, "A knows B's writes");
        assertEquals(await raw.get(`${prefix}:${alice}`), "5", "refused writes spend nothing");
        const ttl = await raw.pttl(`${prefix}:${alice}`);
        assertOk(ttl > 0 && ttl <= 60_000, `the window expires within the minute: ${ttl}`);
        // Another client has a budget of its own on both.
        assertEquals((await b.write(bob, `${tag}e`, 4)).status, 200, "bob on B");
        assertEquals((await a.write(bob, `${tag}f`, 2)).status, 429, "bob's 6th on A");
        assertEquals((await a.write(bob, `${tag}g`, 1)).status, 200, "bob's 5th on A");
      });
    } finally {
      const keys = await raw.keys(`${prefix}:*`);
      if (keys.length) await raw.del(...keys);
      raw.disconnect();
    }
  },
);

storeTest("REDIS", "the last points go to one instance when two race for them", async (config) => {
  const prefix = runPrefix();
  const raw = await rawClient(config);
  try {
    await withInstances(10, config, prefix, async (a, b) => {
      const tag = uniqueTag();
      const client = "198.51.100.9";
      // 8 requests of 3 writes at once over two instances: 3 fit in 10, never 4.
      const replies = await Promise.all(
        Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).write(client, `${tag}${i}`, 3)),
      );
      assertEquals(replies.filter((r) => r.status === 200).length, 3);
      assertEquals(replies.filter((r) => r.status === 429).length, 5);
      assertEquals(await raw.get(`${prefix}:${client}`), "9");
    });
  } finally {
    const keys = await raw.keys(`${prefix}:*`);
    if (keys.length) await raw.del(...keys);
    raw.disconnect();
  }
});

/**
 * A TCP relay to Redis that the test can cut and restore on the same port:
 * an outage of the limiter's Redis without touching the Redis server.
 */
class Relay {
  #listener: Deno.Listener | undefined;
  readonly #conns = new Set<Deno.Conn>();
  port = 0;

  constructor(readonly target: { hostname: string; port: number }) {}

  /** Listens (again, on the same port once it has one) and relays every connection. */
  up(): void {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: this.port });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    const listener = this.#listener;
    (async () => {
      for await (const client of listener) {
        let server: Deno.Conn;
        try {
          server = await Deno.connect(this.target);
        } catch {
          client.close();
          continue;
        }
        for (const c of [client, server]) this.#conns.add(c);
        const close = () => {
          for (const c of [client, server]) {
            this.#conns.delete(c);
            try {
              c.close();
            } catch { /* closed already */ }
          }
        };
        client.readable.pipeTo(server.writable).catch(() => {}).finally(close);
        server.readable.pipeTo(client.writable).catch(() => {}).finally(close);
      }
    })().catch(() => {});
  }

  /** Stops listening and cuts every relayed connection. */
  down(): void {
    this.#listener?.close();
    this.#listener = undefined;
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed already */ }
    }
    this.#conns.clear();
  }
}

storeTest(
  "REDIS",
  "an outage of the limiter's Redis: counted in memory, then shared again",
  async (config) => {
    const prefix = runPrefix();
    const raw = await rawClient(config);
    const target = new URL(config.url);
    const relay = new Relay({ hostname: target.hostname, port: Number(target.port || 6379) });
    relay.up();
    const relayed = new URL(config.url);
    relayed.port = String(relay.port);
    const client = "198.51.100.5";
    try {
      const lines = await captureConsole(() =>
        withInstances(3, { ...config, url: relayed.toString() }, prefix, async (a) => {
          const tag = uniqueTag();
          assertEquals((await a.write(client, `${tag}1`)).status, 200, "1 shared");
          assertEquals(await raw.get(`${prefix}:${client}`), "1");
          relay.down();
          // In memory, from zero: 3 more fit, a 4th does not.
          assertEquals((await a.write(client, `${tag}2`, 3)).status, 200, "3 in memory");
          assertEquals((await a.write(client, `${tag}3`)).status, 429, "the 4th in memory");
          assertEquals(await raw.get(`${prefix}:${client}`), "1", "nothing reached Redis");
          relay.up();
          // ioredis reconnects within its backoff (at most 2 s); a probe client sees when.
          const until = Date.now() + 8000;
          while (Date.now() < until) {
            await a.write("198.51.100.250", `${tag}p`);
            if (await raw.exists(`${prefix}:198.51.100.250`)) break;
            await new Promise((r) => setTimeout(r, 100));
          }
          // Shared again: Redis's count (1) goes on, not memory's.
          assertEquals((await a.write(client, `${tag}4`, 2)).status, 200, "2 more in Redis");
          assertEquals((await a.write(client, `${tag}5`)).status, 429, "Redis's 4th");
          assertEquals(await raw.get(`${prefix}:${client}`), "3");
        })
      );
      const own = lines.filter((l) => l.includes("rate limit"));
      assertEquals(own.length, 2, own.join("\n"));
      assertOk(own[0].includes("does not answer"), own[0]);
      assertOk(own[1].includes("answers again"), own[1]);
      assertOk(own.every((l) => !l.includes(config.url) && !l.includes(relayed.password)), own[0]);
    } finally {
      relay.down();
      const keys = await raw.keys(`${prefix}:*`);
      if (keys.length) await raw.del(...keys);
      raw.disconnect();
    }
  },
);

/** A local port nothing listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Runs `fn` with every console line captured, and returns them. */
async function captureConsole(fn: () => Promise<void>): Promise<string[]> {
  const lines: string[] = [];
  const saved = { log: console.log, warn: console.warn, error: console.error, info: console.info };
  const keep = (...args: unknown[]) => lines.push(args.map(String).join(" "));
  Object.assign(console, { log: keep, warn: keep, error: keep, info: keep });
  try {
    await fn();
  } finally {
    Object.assign(console, saved);
  }
  return lines;
}

Deno.test({
  name:
    "limiter Redis unreachable: writes go on, limited per instance, one redacted warning, no secret anywhere",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const secret = "s3cret-limiter-pw";
    const redis: StoreConfig = {
      url: `redis://limiter-user:${secret}@127.0.0.1:${closedPort()}/0`,
      connectTimeoutMs: 300,
      options: {},
    };
    const texts: string[] = [];
    const lines = await captureConsole(() =>
      withInstances(2, redis, undefined, async (a, b) => {
        const tag = uniqueTag();
        const client = "198.51.100.3";
        const started = performance.now();
        for (const [instance, name] of [[a, "A"], [b, "B"]] as const) {
          const first = await instance.write(client, `${tag}${name}`, 2);
          assertEquals(first.status, 200, `${name}: writes go on without the limiter's Redis`);
          const over = await instance.write(client, `${tag}${name}x`);
          assertEquals(over.status, 429, `${name}: still limited, in its own memory`);
          texts.push(first.text, over.text);
        }
        const ms = performance.now() - started;
        assertOk(ms < 2000, `no request waited for the unreachable Redis: ${ms} ms for 4`);
      })
    );
    const warnings = lines.filter((l) => l.includes("rate limit"));
    if (Deno.env.get("TEST_STORE_LOG")) console.error(warnings.join("\n"));
    assertEquals(warnings.length, 2, `one warning per instance:\n${lines.join("\n")}`);
    assertOk(warnings.every((w) => w.includes("each instance counts writes alone")), warnings[0]);
    for (const text of [...lines, ...texts]) {
      for (const leak of [secret, "limiter-user", redis.url]) {
        assertOk(!text.includes(leak), `"${leak}" leaked: ${text}`);
      }
    }
  },
});

Deno.test({
  name:
    "the started gateway: TRUSTED_PROXIES from its environment, an unreachable RATE_LIMIT_REDIS_URL redacted",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const secret = "s3cret-started-pw";
    const url = `redis://started-user:${secret}@127.0.0.1:${closedPort()}/0`;
    const server = await startServer({
      RATE_LIMIT_PER_MINUTE: "2",
      TRUSTED_PROXIES: "127.0.0.1",
      RATE_LIMIT_REDIS_URL: url,
    });
    try {
      const tag = uniqueTag();
      const write = async (client: string, i: number) => {
        const res = await fetch(`${server.url}/graphql`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-forwarded-for": client },
          body: JSON.stringify({
            query:
              `mutation { addWord(store: SQLITE, word: "${tag}-${i}", definition: "d") { id } }`,
          }),
        });
        const text = await res.text();
        assertOk(!text.includes(secret) && !text.includes("started-user"), text);
        return res.status;
      };
      // The test is 127.0.0.1, a trusted proxy: each forwarded client has its own budget.
      assertEquals([await write("198.51.100.1", 1), await write("198.51.100.1", 2)], [200, 200]);
      assertEquals(await write("198.51.100.1", 3), 429);
      assertEquals(await write("198.51.100.2", 4), 200);
    } finally {
      await server.stop();
    }
    const output = server.output();
    assertEquals(output.match(/rate limit: the shared Redis/g)?.length, 1, output);
    // The launcher granted the limiter's host: the connection was tried, and refused by no one there.
    assertStringIncludes(output, "ECONNREFUSED");
    for (const leak of [secret, "started-user", url]) {
      assertOk(!output.includes(leak), `"${leak}" leaked:\n${output}`);
    }
  },
});
