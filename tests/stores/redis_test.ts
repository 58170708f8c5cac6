/**
 * Redis-specific behaviour against the real server of the matrix: TLS with CA
 * verification, every add kept, the data model as seen straight through
 * ioredis, one command per page as Redis's MONITOR sees it, server-side search
 * paging across scan chunks, the search-key backfill, compare-and-set edits
 * and deletes that never recreate a word, and failing fast when Redis does
 * not answer.
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { matchesSearch, newRecord, withSearchKey } from "../../stores/records.ts";
import { IDS_KEY, open, recordKey, SCAN_CHUNK } from "../../stores/redis.ts";
import { SET_SEARCH_KEYS } from "../../stores/redis_scripts.ts";
import { fold } from "../../stores/fold.ts";
import type { ListQuery, NewWord, StoreConfig, WordRecord, WordStore } from "../../stores/types.ts";
import { assertFoundAfterBackfill, oldWords, unkeyed } from "../support/backfill.ts";
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

/** Adds `records` through `store`, a few hundred transactions in flight at a time. */
/**
 * Runs `fn` with a store and a raw client on scratch database 15, emptied
 * before and after, so the test sees only its own words.
 */
async function onScratchDb(
  config: StoreConfig,
  fn: (store: WordStore, raw: Redis, scratch: StoreConfig) => Promise<void>,
): Promise<void> {
  const scratch = withDb(config, 15);
  const raw = rawClient(scratch);
  const store = await open(scratch);
  try {
    await raw.flushdb();
    await fn(store, raw, scratch);
  } finally {
    await raw.flushdb().catch(() => {});
    raw.disconnect();
    await store.close();
  }
}

async function addAll(store: WordStore, records: NewWord[]): Promise<void> {
  for (let i = 0; i < records.length; i += 500) {
    await Promise.all(records.slice(i, i + 500).map((r) => store.add(r)));
  }
}

/** `record` edited to `definition` on top of `revision`, as `updateRecord` builds it. */
function edited(record: WordRecord, definition: string, revision: string): NewWord {
  const updatedAt = new Date(Math.max(Date.now(), Date.parse(revision) + 1)).toISOString();
  return withSearchKey({ ...record, definition, updatedAt });
}

/** One command as Redis's MONITOR reports it. */
interface Seen {
  args: string[];
  source: string;
}

/**
 * Counts the commands Redis executes for one `list` call of `store`, from
 * MONITOR on a separate connection: a page after a unique id below every real
 * one tells which connection is the store's, and only that connection's
 * commands between the two PINGs of `store.ping()` around the call count (not
 * those a script runs, which MONITOR reports as from `lua`).
 */
async function commandsFor(
  raw: Redis,
  store: WordStore,
  query: ListQuery,
): Promise<{ commands: number; page: WordRecord[] }> {
  const seen: Seen[] = [];
  const monitor = await raw.monitor();
  try {
    monitor.on("monitor", (_time: string, args: string[], source: string) => {
      seen.push({ args, source });
    });
    const marker = `00000000-0000-7000-8000-${crypto.randomUUID().slice(-12)}`;
    await store.list({ limit: 1, offset: 0, after: marker });
    await store.ping();
    const page = await store.list(query);
    await store.ping();
    const pings = (): number[] => {
      const first = seen.findIndex((c) => c.args.includes(`(${marker}`));
      if (first < 0) return [];
      return seen.flatMap((c, i) =>
        i > first && c.source === seen[first].source && c.args[0].toLowerCase() === "ping"
          ? [i]
          : []
      );
    };
    for (const t0 = Date.now(); pings().length < 2;) {
      if (Date.now() - t0 > 5000) throw new Error("MONITOR never showed the store's PINGs");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const [before, after] = pings();
    const source = seen[before].source;
    return {
      commands: seen.slice(before + 1, after).filter((c) => c.source === source).length,
      page,
    };
  } finally {
    monitor.disconnect();
  }
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
      // The hash holds the record and its search key, as `add` was given them.
      assert.deepStrictEqual(await raw.hgetall(recordKey(record.id)), { ...record });
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
  await onScratchDb(config, async (store) => {
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
  });
});

storeTest(
  "REDIS",
  "a page of 1, 100 or 1000 words is one command, as Redis's MONITOR counts",
  async (config) => {
    await onScratchDb(config, async (store, raw) => {
      const records = Array.from({ length: 1000 }, (_, i) => newRecord(`page ${i}`, `def ${i}`));
      await addAll(store, records);
      for (const limit of [1, 100, 1000]) {
        const { commands, page } = await commandsFor(raw, store, { limit, offset: 0 });
        assert.deepStrictEqual(page, listed(...records.slice(0, limit)));
        assert.equal(commands, 1, `a page of ${limit} took ${commands} commands`);
      }
      // A search whose scan fits in one chunk is one command too, however many words match.
      const { commands, page } = await commandsFor(raw, store, {
        search: "def",
        limit: 1000,
        offset: 0,
      });
      assert.deepStrictEqual(page, listed(...records));
      assert.equal(commands, 1, `a search of 1000 words took ${commands} commands`);
    });
  },
);

storeTest(
  "REDIS",
  "search fills its pages across many scan chunks, after a cursor and past an offset",
  async (config) => {
    await onScratchDb(config, async (store) => {
      const total = 3 * SCAN_CHUNK + 345;
      // Every 97th word has the needle: a page of 25 spans more than one chunk.
      const rare = new Set([3, SCAN_CHUNK + 1, total - 1]);
      const records = Array.from({ length: total }, (_, i) =>
        newRecord(
          rare.has(i) ? `Rarest ${i}` : `w${i}`,
          i % 97 === 0 ? `with the NeEdLe ${i}` : `plain ${i}`,
        ));
      await addAll(store, records);
      const needles = records.filter((_, i) => i % 97 === 0);
      const rares = records.filter((_, i) => rare.has(i));
      const search = fold("NEEDLE");
      assert.deepStrictEqual(
        await store.list({ search, limit: 20, offset: 30 }),
        listed(...needles.slice(30, 50)),
      );
      const cursor = records[SCAN_CHUNK + 5].id;
      assert.deepStrictEqual(
        await store.list({ search, limit: 25, offset: 0, after: cursor }),
        listed(...needles.filter((r) => r.id > cursor).slice(0, 25)),
      );
      // Fewer matches than asked for: every chunk is scanned, and the page holds all of them.
      assert.deepStrictEqual(
        await store.list({ search, limit: 1000, offset: 60 }),
        listed(...needles.slice(60)),
      );
      assert.deepStrictEqual(
        await store.list({ search: "rarest", limit: 10, offset: 0 }),
        listed(...rares),
      );
      assert.deepStrictEqual(
        await store.list({ search: "rarest", limit: 1, offset: 1 }),
        listed(rares[1]),
      );
      assert.deepStrictEqual(
        await store.list({ search: "rarest", limit: 10, offset: 0, after: rares[1].id }),
        listed(rares[2]),
      );
      assert.deepStrictEqual(
        await store.list({ search: "rarest", limit: 10, offset: 0, after: rares[2].id }),
        [],
      );
    });
  },
);

storeTest(
  "REDIS",
  "a needle with Lua pattern characters is matched literally",
  async (config) => {
    await onScratchDb(config, async (store) => {
      const records = [
        "dot.word",
        "dotXword",
        "100% sure",
        "percent%a",
        "a[b]c",
        "paren(x)",
        "dash-x",
        "caret^x",
        "dollar$x",
        "all %.[(-^$ at once",
        "plain letters",
      ].map((word, i) => newRecord(word, `definition ${i}`));
      await addAll(store, records);
      const needles = [
        "%",
        ".",
        "[",
        "(",
        "-",
        "^",
        "$",
        "%a",
        "t.w",
        "[b]",
        "^x",
        "%.[(-^$",
        "[(",
      ];
      for (const needle of needles) {
        const expected = records.filter((r) => matchesSearch(r, fold(needle)));
        assert(expected.length > 0 && expected.length < records.length, needle);
        assert.deepStrictEqual(
          await store.list({ search: fold(needle), limit: 100, offset: 0 }),
          listed(...expected),
          `needle ${needle}`,
        );
      }
    });
  },
);

storeTest(
  "REDIS",
  "open gives words stored before search keys their key and never recreates a deleted word",
  async (config) => {
    const scratch = withDb(config, 15);
    const raw = rawClient(scratch);
    try {
      await raw.flushdb();
      const tag = crypto.randomUUID().slice(0, 8);
      const words = oldWords(tag);
      // One more word, whose hash is deleted while its id stays in the index.
      const [gone] = oldWords(`${tag}-gone`, 1);
      const old = raw.multi();
      for (const word of unkeyed([...words, gone])) {
        old.hset(recordKey(word.id), { ...word }).zadd(IDS_KEY, 0, word.id);
      }
      old.del(recordKey(gone.id));
      await old.exec();
      assert.equal(await raw.hexists(recordKey(words[0].id), "searchKey"), 0);

      const store = await open(scratch);
      try {
        await assertFoundAfterBackfill(store, tag, words);
        assert.equal(await raw.hget(recordKey(words[0].id), "searchKey"), words[0].searchKey);
        assert.equal(await raw.exists(recordKey(gone.id)), 0, "the deleted word stays deleted");
      } finally {
        await store.close();
      }
      // Its write alone, as when a word is deleted between the backfill's read and write: it
      // sets no key in a hash that is gone and replaces none already set.
      assert.equal(
        await raw.eval(
          SET_SEARCH_KEYS.lua,
          2,
          recordKey(gone.id),
          recordKey(words[0].id),
          "gone",
          "other",
        ),
        0,
      );
      assert.equal(await raw.exists(recordKey(gone.id)), 0);
      assert.equal(await raw.hget(recordKey(words[0].id), "searchKey"), words[0].searchKey);
    } finally {
      await raw.flushdb().catch(() => {});
      raw.disconnect();
    }
  },
);

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
    // a `default` without these commands would silently drop every add (HSET, ZADD) or
    // deletion (a script's DEL and ZREM, logged as one MULTI/EXEC) on restart.
    const writes = [["hset", "k", "f", "v"], ["zadd", "k", "0", "m"], ["del", "k"], [
      "zrem",
      "k",
      "m",
    ]];
    for (const cmd of writes) {
      assert.equal(await raw.call("ACL", "DRYRUN", "default", ...cmd), "OK");
    }
    // Nobody can log in as `default`: it is off.
    const users = (await raw.call("ACL", "LIST")) as string[];
    assert.ok(users.some((u) => u.startsWith("user default off ")), "default user is off");
  } finally {
    raw.disconnect();
  }
}, { needs: [tls] });

storeTest(
  "REDIS",
  "replace and remove apply only at the expected revision and never recreate a word",
  async (config) => {
    const store = await open(config);
    const raw = rawClient(config);
    try {
      const tag = `cas-${crypto.randomUUID()}`;
      const r = newRecord(tag, "original");
      const [original] = listed(r);
      await store.add(r);
      assert.deepStrictEqual(await store.get(r.id), original);
      assert.equal(await store.get(newRecord(tag, "never added").id), undefined);

      const first = edited(original, "first edit", r.createdAt);
      assert.equal(await store.replace(first, r.createdAt), true);
      const [firstStored] = listed(first);
      assert.deepStrictEqual(await store.get(r.id), firstStored);
      assert.deepStrictEqual(await raw.hgetall(recordKey(r.id)), { ...first });
      // Pages and searches carry updatedAt too.
      assert.deepStrictEqual(await store.list({ search: tag, limit: 10, offset: 0 }), [
        firstStored,
      ]);
      assert.deepStrictEqual(
        await store.list({ search: "first edit", limit: 1000, offset: 0 }).then(
          (page) => page.filter((w) => w.id === r.id),
        ),
        [firstStored],
      );
      const [before] = await raw.zrevrangebylex(IDS_KEY, `(${r.id}`, "-", "LIMIT", 0, 1);
      assert.deepStrictEqual(await store.list({ limit: 1, offset: 0, after: before }), [
        firstStored,
      ]);
      assert.deepStrictEqual(
        await store.list({ search: "original", limit: 1000, offset: 0 }).then((page) =>
          page.filter((w) => w.id === r.id)
        ),
        [],
        "search no longer finds the old text",
      );

      // A stale revision changes nothing.
      assert.equal(await store.replace(edited(original, "stale", r.createdAt), r.createdAt), false);
      assert.equal(await store.remove(r.id, r.createdAt), false);
      assert.deepStrictEqual(await raw.hgetall(recordKey(r.id)), { ...first });
      assert.equal(await raw.zscore(IDS_KEY, r.id), "0");

      assert.equal(await store.remove(r.id, first.updatedAt!), true);
      assert.equal(await store.get(r.id), undefined);
      assert.equal(await raw.exists(recordKey(r.id)), 0);
      assert.equal(await raw.zscore(IDS_KEY, r.id), null, "the id left the index with its hash");

      // Neither the deleted word nor one never stored comes back through replace.
      const never = newRecord(tag, "never added");
      assert.equal(
        await store.replace(edited(first, "back", first.updatedAt!), first.updatedAt!),
        false,
      );
      assert.equal(await store.replace(edited(original, "back", r.createdAt), r.createdAt), false);
      assert.equal(await store.remove(r.id, first.updatedAt!), false);
      assert.equal(
        await store.replace(edited(listed(never)[0], "x", never.createdAt), never.createdAt),
        false,
      );
      assert.equal(await store.remove(never.id, never.createdAt), false);
      for (const id of [r.id, never.id]) {
        assert.equal(await raw.exists(recordKey(id)), 0);
        assert.equal(await raw.zscore(IDS_KEY, id), null);
      }
    } finally {
      raw.disconnect();
      await store.close();
    }
  },
);

storeTest(
  "REDIS",
  "a word whose hash is gone but whose id is still indexed is neither recreated nor listed",
  async (config) => {
    const store = await open(config);
    const raw = rawClient(config);
    try {
      const tag = `orphan-${crypto.randomUUID()}`;
      const r = newRecord(tag, "hash deleted");
      await store.add(r);
      await raw.del(recordKey(r.id));
      assert.equal(await raw.zscore(IDS_KEY, r.id), "0");
      assert.equal(await store.get(r.id), undefined);
      assert.equal(
        await store.replace(edited(listed(r)[0], "back", r.createdAt), r.createdAt),
        false,
      );
      assert.equal(await store.remove(r.id, r.createdAt), false);
      assert.equal(await raw.exists(recordKey(r.id)), 0, "replace wrote no hash");
      assert.deepStrictEqual(await store.list({ search: tag, limit: 10, offset: 0 }), []);
    } finally {
      raw.disconnect();
      await store.close();
    }
  },
);
