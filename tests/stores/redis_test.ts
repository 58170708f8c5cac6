/**
 * Redis-specific behaviour against the real server of the matrix: TLS with CA
 * verification, every add kept, the data model as seen straight through
 * ioredis, chunked search paging, and failing fast when Redis does not answer.
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { newRecord } from "../../stores/records.ts";
import { IDS_KEY, open, recordKey } from "../../stores/redis.ts";
import { fold } from "../../stores/fold.ts";
import type { NewWord, StoreConfig } from "../../stores/types.ts";
import { listed } from "../support/records.ts";
import { storeTest, tlsStoreConfig } from "../support/env.ts";
import { strangerCa } from "../support/tls.ts";

const tls = tlsStoreConfig("REDIS");

/** A raw ioredis client on the same server and database as `config`. */
function rawClient(config: StoreConfig): Redis {
  return new Redis(config.url, {
    ...(config.caCert ? { tls: { ca: config.caCert } } : {}),
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
  });
}

/** `config` pointed at database `db` (the matrix tests use 0; 15 is scratch space here). */
function withDb(config: StoreConfig, db: number): StoreConfig {
  const url = new URL(config.url);
  url.pathname = `/${db}`;
  return { ...config, url: url.toString() };
}

storeTest("REDIS", "rediss URL with the matrix CA connects, verifies and round-trips", async () => {
  const store = await open(tls!);
  try {
    await store.ping();
    const record = newRecord("tls-redis", "written over TLS 🔒 'quoted' \\ %_");
    await store.add(record);
    const found = await store.list({ search: fold("written over TLS 🔒"), limit: 1000, offset: 0 });
    assert(found.some((r) => r.id === record.id), "the record added over TLS is listed");
    assert.deepStrictEqual(found.find((r) => r.id === record.id), listed(record)[0]);
  } finally {
    await store.close();
  }
}, { needs: [tls] });

storeTest("REDIS", "TLS is refused when the server is not signed by the given CA", async () => {
  const otherCa = await strangerCa();
  await assert.rejects(() => open({ ...tls!, caCert: otherCa }));
  // Without a CA the system trust store is used, which does not know the matrix CA either.
  await assert.rejects(() => open({ ...tls!, caCert: undefined }));
}, { needs: [tls] });

storeTest("REDIS", "adding the same word twice keeps two entries in id order", async (config) => {
  const store = await open(config);
  try {
    const word = `twice-${crypto.randomUUID()}`;
    const first = newRecord(word, "first");
    const second = newRecord(word, "second");
    await store.add(first);
    await store.add(second);
    const found = await store.list({ search: word, limit: 10, offset: 0 });
    assert.deepStrictEqual(found, listed(first, second));
  } finally {
    await store.close();
  }
});

storeTest(
  "REDIS",
  "records are visible straight through ioredis as index + hash",
  async (config) => {
    const store = await open(config);
    const raw = rawClient(config);
    try {
      const record = newRecord("raw-view ✓", 'def with "quotes" and $ne and ‏עברית‏');
      await store.add(record);
      assert.deepStrictEqual(await raw.zscore(IDS_KEY, record.id), "0");
      assert.deepStrictEqual(await raw.hgetall(recordKey(record.id)), { ...listed(record)[0] });
      // Ids in the index are in id order, so the newest record is the last member.
      const [last] = await raw.zrange(IDS_KEY, -1, "-1");
      assert(last >= record.id);
    } finally {
      raw.disconnect();
      await store.close();
    }
  },
);

storeTest("REDIS", "search and plain listing page correctly across scan chunks", async (config) => {
  const scratch = withDb(config, 15);
  const raw = rawClient(scratch);
  const store = await open(scratch);
  try {
    await raw.flushdb();
    const records: NewWord[] = [];
    for (let i = 0; i < 1234; i++) {
      records.push(newRecord(`w${i}`, i % 3 === 0 ? `has NeEdLe ${i}` : `plain ${i}`));
    }
    await Promise.all(records.map((r) => store.add(r)));
    const needles = records.filter((_, i) => i % 3 === 0);
    assert.deepStrictEqual(
      await store.list({ search: "needle", limit: 50, offset: 380 }),
      listed(...needles.slice(380)),
    );
    assert.deepStrictEqual(
      await store.list({ search: fold("NEEDLE"), limit: 7, offset: 200 }),
      listed(...needles.slice(200, 207)),
    );
    assert.deepStrictEqual(
      await store.list({ limit: 1000, offset: 600 }),
      listed(...records.slice(600, 1600)),
    );
    assert.deepStrictEqual(await store.list({ limit: 5, offset: 1234 }), []);
    assert.deepStrictEqual(await store.list({ search: "needle.", limit: 5, offset: 0 }), []);
  } finally {
    await raw.flushdb().catch(() => {});
    raw.disconnect();
    await store.close();
  }
});

storeTest(
  "REDIS",
  "open rejects quickly and without secrets when Redis does not answer",
  async (config) => {
    // A port that accepts TCP connections but never speaks Redis.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const conn of listener) held.push(conn);
    })();
    try {
      const url = new URL(config.url);
      url.port = String((listener.addr as Deno.NetAddr).port);
      const t0 = performance.now();
      const err = await open({ ...config, url: url.toString(), connectTimeoutMs: 500 }).then(
        () => undefined,
        (e: Error) => e,
      );
      const elapsed = performance.now() - t0;
      if (!(err instanceof Error)) throw new Error("open must reject");
      assert(elapsed < 1500, `open took ${Math.round(elapsed)} ms`);
      assert(!err.message.includes(url.password), "the error does not carry the password");
    } finally {
      listener.close();
      for (const c of held) c.close();
      await accepting.catch(() => {});
    }
  },
);

storeTest("REDIS", "the matrix server fsyncs every write and can replay transactions", async () => {
  const raw = rawClient(tls!);
  try {
    assert.deepStrictEqual(await raw.config("GET", "appendonly"), ["appendonly", "yes"]);
    assert.deepStrictEqual(await raw.config("GET", "appendfsync"), ["appendfsync", "always"]);
    // Redis 7.0 replays MULTI/EXEC from the AOF as `default` and re-checks ACLs at EXEC:
    // a `default` without these commands would silently drop every add on restart.
    for (const cmd of [["hset", "k", "f", "v"], ["zadd", "k", "0", "m"]]) {
      assert.equal(await raw.call("ACL", "DRYRUN", "default", ...cmd), "OK");
    }
    // Nobody can log in as `default`: it is off.
    const users = (await raw.call("ACL", "LIST")) as string[];
    assert.ok(users.some((u) => u.startsWith("user default off ")), "default user is off");
  } finally {
    raw.disconnect();
  }
}, { needs: [tls] });
