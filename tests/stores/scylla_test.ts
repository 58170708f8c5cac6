/**
 * SCYLLA-specific behaviour of `stores/scylla.ts` against the real matrix
 * server (Apache Cassandra over CQL): contact-point parsing, surviving a dead
 * contact point, the keyspace replication the options ask for, the tables as
 * a plain driver sees them, hour buckets (rows in the hour of their id, pages
 * across hours, a deep cursor page reading only the buckets it needs), the
 * migration out of the previous version's single partition, search paging
 * across driver pages, TLS verification and failing fast; edits and deletes
 * as lightweight transactions on a word's revision (never recreating a word,
 * `updated_at` added to an older table and kept by the migration, bursts of
 * edits of one hour's words without timeouts).
 *
 * Tests that need ids far in the past or future build them with
 * {@linkcode recordAt} in a keyspace of their own, dropped afterwards, so such
 * ids never reach the shared list.
 *
 * @module
 */
import assert from "node:assert/strict";
import cassandra from "cassandra-driver";
import { updateRecord } from "../../stores/edits.ts";
import { byId, newRecord, timestampOf, withSearchKey } from "../../stores/records.ts";
import { open, parseContactPoints, replicationOf } from "../../stores/scylla.ts";
import { fold } from "../../stores/fold.ts";
import type { NewWord, StoreConfig, WordRecord, WordStore } from "../../stores/types.ts";
import { listed } from "../support/records.ts";
import { storeTest, tlsStoreConfig } from "../support/env.ts";
import { assertRecreatedAfterDrop } from "../support/schema_loss.ts";
import { strangerCa } from "../support/tls.ts";
import { withOpened } from "../support/stores.ts";

const tls = tlsStoreConfig("SCYLLA");
/** Nothing listens here on the matrix machine. */
const DEAD_CONTACT_POINT = "127.0.0.1:19999";
const HOUR = 3_600_000;
/** Hours far from now, so that no other test's words share their buckets. */
const PAST = Date.UTC(2001, 0, 1);
const FUTURE = Date.UTC(2090, 5, 1);

type Raw = InstanceType<typeof cassandra.Client>;

/** A token no other test or run uses, to find this test's rows in the shared table. */
function token(): string {
  return `sct${crypto.randomUUID().replaceAll("-", "")}`;
}

/** A plain driver client on the same server as `config`, bypassing the store module. */
function rawClient(config: StoreConfig): Raw {
  const points = parseContactPoints(config.url);
  return new cassandra.Client({
    contactPoints: points.hosts,
    localDataCenter: config.options.datacenter ?? "datacenter1",
    ...(points.username !== undefined
      ? {
        authProvider: new cassandra.auth.PlainTextAuthProvider(points.username, points.password!),
      }
      : {}),
    ...(config.caCert ? { sslOptions: { ca: [config.caCert], rejectUnauthorized: true } } : {}),
    socketOptions: { connectTimeout: 3_000, readTimeout: 10_000 },
  });
}

/**
 * Runs `fn` with `config` pointed at a fresh keyspace and a raw client, then
 * drops the keyspace.
 */
async function withKeyspace(
  c: StoreConfig,
  fn: (config: StoreConfig, raw: Raw, keyspace: string) => Promise<void>,
): Promise<void> {
  const keyspace = `gt_bkt_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const raw = rawClient(c);
  try {
    await fn({ ...c, options: { ...c.options, keyspace } }, raw, keyspace);
  } finally {
    await raw.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => {});
    await raw.shutdown();
  }
}

/** A UUIDv7 carrying the Unix millisecond `ms`: version 7, variant 10xx, the rest random. */
function idAt(ms: number): string {
  const time = ms.toString(16).padStart(12, "0");
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  const rand = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  const variant = (8 + (bytes[0] & 3)).toString(16);
  const groups = [time.slice(0, 8), time.slice(8), `7${rand.slice(0, 3)}`];
  return [...groups, variant + rand.slice(3, 6), rand.slice(6, 18)].join("-");
}

/** A record whose id (and so createdAt) is at millisecond `ms`. */
function recordAt(ms: number, word: string, definition: string): NewWord {
  const id = idAt(ms);
  return withSearchKey({ id, word, definition, createdAt: timestampOf(id) });
}

/** The hour of an id's timestamp: the bucket its row belongs in. */
function hourOf(id: string): number {
  return Math.floor(Date.parse(timestampOf(id)) / HOUR);
}

/** `counts[i]` records in hour `hours[i]`, a second apart, tagged with `tag` and numbered. */
function recordsInHours(tag: string, hours: number[], counts: number[]): NewWord[] {
  const records: NewWord[] = [];
  hours.forEach((hour, h) => {
    for (let i = 0; i < counts[h]; i++) {
      const n = records.length;
      const definition = n % 3 === 0 ? "needle" : "hay";
      records.push(recordAt(hour * HOUR + i * 1_000, `${tag} ${n}`, definition));
    }
  });
  return records;
}

async function addAll(store: WordStore, records: NewWord[]): Promise<void> {
  for (let i = 0; i < records.length; i += 100) {
    await Promise.all(records.slice(i, i + 100).map((r) => store.add(r)));
  }
}

/** Every page of `size` after the previous page's last id, until a short page. */
async function cursorPages(
  store: WordStore,
  size: number,
  search?: string,
): Promise<WordRecord[][]> {
  const pages: WordRecord[][] = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.list({ search, limit: size, offset: 0, after });
    pages.push(page);
    if (page.length < size) return pages;
    after = page[page.length - 1].id;
  }
}

/** Every row of `keyspace`.words as bucket → ids, read with a plain driver. */
async function rowsByBucket(raw: Raw, keyspace: string): Promise<Record<number, string[]>> {
  const out: Record<number, string[]> = {};
  const rows = await raw.execute(`SELECT bucket, id FROM ${keyspace}.words`, [], {
    fetchSize: 1000,
  });
  for await (const row of rows) (out[row.get("bucket")] ??= []).push(row.get("id"));
  return out;
}

/** Where each record belongs: bucket → ids in id order. */
function expectedBuckets(records: WordRecord[]): Record<number, string[]> {
  const out: Record<number, string[]> = {};
  for (const r of records) (out[hourOf(r.id)] ??= []).push(r.id);
  for (const ids of Object.values(out)) ids.sort();
  return out;
}

/** The buckets `words_buckets` lists, read with a plain driver. */
async function listedBuckets(raw: Raw, keyspace: string): Promise<number[]> {
  const rs = await raw.execute(
    `SELECT bucket FROM ${keyspace}.words_buckets WHERE scope = 'words'`,
    [],
    { consistency: cassandra.types.consistencies.localQuorum },
  );
  return rs.rows.map((row) => row.get("bucket"));
}

/** Sorted, numeric bucket numbers of a {@linkcode rowsByBucket} result. */
function bucketNumbers(rows: Record<number, string[]>): number[] {
  return Object.keys(rows).map(Number).sort((a, b) => a - b);
}

/**
 * Writes `records` into bucket 0 as the previous version did, into a keyspace
 * it creates with the replication `config` asks for (the store refuses less).
 */
async function writeOldWay(
  raw: Raw,
  keyspace: string,
  records: WordRecord[],
  config: StoreConfig,
): Promise<void> {
  const { datacenter, replicationFactor } = replicationOf(config.options);
  await raw.execute(
    `CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = ` +
      `{'class': 'NetworkTopologyStrategy', '${datacenter}': ${replicationFactor}}`,
  );
  await raw.execute(
    `CREATE TABLE IF NOT EXISTS ${keyspace}.words (bucket int, id text, word text, ` +
      "definition text, created_at text, PRIMARY KEY ((bucket), id)) " +
      "WITH CLUSTERING ORDER BY (id ASC)",
  );
  await rawInsert(raw, keyspace, records.map((r) => [0, r]));
}

/** Inserts each record into the given bucket with a plain driver. */
async function rawInsert(
  raw: Raw,
  keyspace: string,
  rows: [number, WordRecord][],
): Promise<void> {
  const insert = `INSERT INTO ${keyspace}.words (bucket, id, word, definition, created_at) ` +
    "VALUES (?, ?, ?, ?, ?)";
  for (let i = 0; i < rows.length; i += 200) {
    await Promise.all(
      rows.slice(i, i + 200).map(([bucket, r]) =>
        raw.execute(insert, [bucket, r.id, r.word, r.definition, r.createdAt], {
          prepare: true,
          consistency: cassandra.types.consistencies.localQuorum,
        })
      ),
    );
  }
}

/**
 * The row of `id` in its bucket as a plain driver reads it at LOCAL_QUORUM,
 * with the write times of `word` and `created_at`; undefined when there is none.
 */
async function rawRow(
  raw: Raw,
  keyspace: string,
  id: string,
): Promise<Record<string, unknown> | undefined> {
  const rs = await raw.execute(
    "SELECT id, word, definition, created_at, updated_at, WRITETIME(word) AS word_written, " +
      `WRITETIME(created_at) AS created_written FROM ${keyspace}.words WHERE bucket = ? AND id = ?`,
    [hourOf(id), id],
    { prepare: true, consistency: cassandra.types.consistencies.localQuorum },
  );
  const row = rs.first();
  return row ? Object.fromEntries(row.keys().map((k) => [k, row.get(k)])) : undefined;
}

/** `record` edited to `word` and `definition` on top of `revision`, as `updateRecord` builds it. */
function edited(record: WordRecord, word: string, definition: string, revision: string): NewWord {
  const updatedAt = new Date(Math.max(Date.now(), Date.parse(revision) + 1)).toISOString();
  return withSearchKey({ ...record, word, definition, updatedAt });
}

/** The next message `worker` posts. */
function nextMessage(worker: Worker): Promise<string> {
  return new Promise((resolve) => {
    worker.onmessage = (e) => resolve(e.data);
  });
}

/**
 * Starts `count` gateways' stores at the same moment and resolves once each
 * has opened and closed again. Each runs in a Worker, a module instance of
 * its own, so their migrations are as independent as in separate processes,
 * behind the gateway's `ManagedStore` (stores/managed.ts), which retries a
 * failed open (Cassandra lists a table another client is creating a moment
 * before it serves it).
 */
async function openGateways(config: StoreConfig, count: number): Promise<void> {
  const module = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
  const source = `import { open } from ${module("../../stores/scylla.ts")};
    import { ManagedStore } from ${module("../../stores/managed.ts")};
    self.onmessage = async (e) => {
      const store = new ManagedStore({
        name: "SCYLLA", open: () => open(e.data), requestTimeoutMs: 5000,
        connectTimeoutMs: 5000, reconnectMaxMs: 500, secrets: [], log: () => {},
      });
      store.start();
      try { await store.whenReady(30000); self.postMessage(""); }
      catch (err) { self.postMessage(String(err)); }
      finally { await store.close(); }
    };
    self.postMessage("loaded");`;
  const url = URL.createObjectURL(new Blob([source], { type: "application/javascript" }));
  const workers = Array.from({ length: count }, () => new Worker(url, { type: "module" }));
  try {
    const loaded = await Promise.all(workers.map(nextMessage));
    assert.deepEqual(loaded, workers.map(() => "loaded"));
    const opened = workers.map((worker) => {
      const reply = nextMessage(worker);
      worker.postMessage(config);
      return reply;
    });
    assert.deepEqual(await Promise.all(opened), workers.map(() => ""), "a gateway did not open");
  } finally {
    for (const worker of workers) worker.terminate();
    URL.revokeObjectURL(url);
  }
}

/**
 * Words for a migration test: three pages' worth over three past hours, 20
 * written a minute ago and 30 in the future (the last two groups are deleted
 * from bucket 0 by id, the first by range).
 */
function legacyRecords(tag: string): WordRecord[] {
  const past = Math.floor(PAST / HOUR);
  const now = Date.now();
  return listed(
    ...recordsInHours(tag, [past, past + 2, past + 3], [400, 500, 300]),
    ...Array.from({ length: 20 }, (_, i) => recordAt(now - 60_000 + i, `${tag} r${i}`, "recent")),
    ...recordsInHours(tag, [Math.floor(FUTURE / HOUR)], [30]),
  );
}

/**
 * Every record is in its hour's bucket exactly once and nowhere else (bucket
 * 0 empty), words_buckets lists exactly those hours, and the store lists and
 * searches them in id order.
 */
async function assertMigrated(
  config: StoreConfig,
  raw: Raw,
  keyspace: string,
  records: WordRecord[],
): Promise<void> {
  const expected = expectedBuckets(records);
  assert.deepEqual(await rowsByBucket(raw, keyspace), expected, "rows by bucket");
  assert.deepEqual(await listedBuckets(raw, keyspace), bucketNumbers(expected), "words_buckets");
  await withStore(config, async (store) => {
    assert.deepEqual((await cursorPages(store, 250)).flat(), records, "listed");
    assert.deepEqual(
      await store.list({ search: "recent", limit: 1000, offset: 0 }),
      records.filter((r) => r.definition === "recent"),
      "searched",
    );
  });
}

const withStore = <T>(config: StoreConfig, fn: (s: WordStore) => Promise<T>) =>
  withOpened(open, config, fn);

Deno.test("SCYLLA_URL parsing takes host:port lists and URLs with percent-encoded credentials", () => {
  assert.deepEqual(parseContactPoints("10.0.0.1:9142, db.example, [::1]:9043"), {
    hosts: ["10.0.0.1:9142", "db.example:9042", "[::1]:9043"],
  });
  assert.deepEqual(
    parseContactPoints("cassandra://gt:p%40ss%3Aw%2Fd@h1:19042,scylla://other:pw@h2,h3:1"),
    { hosts: ["h1:19042", "h2:9042", "h3:1"], username: "gt", password: "p@ss:w/d" },
  );
  for (const bad of ["", " , ", "cassandra://"]) {
    assert.throws(() => parseContactPoints(bad));
  }
  try {
    parseContactPoints("cassandra://u:secret-pw@[bad");
    assert.fail("a malformed URL was accepted");
  } catch (e) {
    assert.ok(!String((e as Error).message).includes("secret-pw"), "error echoes the URL");
  }
});

storeTest("SCYLLA", "one dead contact point among several does not stop the store", async (c) => {
  const config = { ...c, url: `${DEAD_CONTACT_POINT},${c.url}` };
  const tag = token();
  await withStore(config, async (store) => {
    const r = newRecord(tag, "still reachable through the live contact point");
    await store.add(r);
    assert.deepEqual(await store.list({ search: tag, limit: 10, offset: 0 }), listed(r));
    await store.ping();
  });
  // The dead one last works the same.
  await withStore({ ...c, url: `${c.url},${DEAD_CONTACT_POINT}` }, async (store) => {
    assert.equal((await store.list({ search: tag, limit: 10, offset: 0 })).length, 1);
  });
});

storeTest(
  "SCYLLA",
  "the keyspace gets NetworkTopologyStrategy with the configured factor",
  async (c) => {
    const raw = rawClient(c);
    const replicationOf = async (keyspace: string) => {
      const rs = await raw.execute(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
        [keyspace],
        { prepare: true },
      );
      return rs.first()?.get("replication") as Record<string, string> | undefined;
    };
    const keyspace = `gt_rf_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    try {
      await withStore(c, async () => {});
      assert.deepEqual(await replicationOf("grand_tour"), {
        class: "org.apache.cassandra.locator.NetworkTopologyStrategy",
        [c.options.datacenter]: c.options.replicationFactor,
      });
      // Twice as many replicas as nodes: LOCAL_QUORUM (nodes + 1) cannot be had, so open's
      // first read (the migration's) is refused, not weakened, and the store does not open;
      // the keyspace was created first. (RF 2 on the single node, RF 6 on the cluster of 3.)
      const rf = String(2 * raw.hosts.length);
      const over = { ...c, options: { ...c.options, replicationFactor: rf, keyspace } };
      await assert.rejects(open(over), /Not enough replicas/);
      assert.deepEqual(await replicationOf(keyspace), {
        class: "org.apache.cassandra.locator.NetworkTopologyStrategy",
        [c.options.datacenter]: rf,
      });
    } finally {
      await raw.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => {});
      await raw.shutdown();
    }
  },
);

storeTest(
  "SCYLLA",
  "rows are visible through a plain driver in the bucket of their hour",
  async (c) => {
    const tag = token();
    const records = [
      newRecord(`${tag} O'Reilly "q" \\ $gt %_`, "😀👩🏽‍💻 e\u0301 עברית"),
      newRecord(`${tag} second`, "x".repeat(256)),
    ];
    await withStore(c, async (store) => {
      for (const r of records) await store.add(r);
    });
    const raw = rawClient(c);
    try {
      for (const r of records) {
        const rs = await raw.execute(
          "SELECT bucket, id, word, definition, created_at FROM grand_tour.words " +
            "WHERE bucket = ? AND id = ?",
          [hourOf(r.id), r.id],
          { prepare: true, consistency: cassandra.types.consistencies.localQuorum },
        );
        assert.equal(rs.rowLength, 1);
        const row = rs.first();
        assert.deepEqual(
          {
            bucket: row.get("bucket"),
            id: row.get("id"),
            word: row.get("word"),
            definition: row.get("definition"),
            createdAt: row.get("created_at"),
          },
          { bucket: hourOf(r.id), ...listed(r)[0] },
        );
        const bucketRow = await raw.execute(
          "SELECT bucket FROM grand_tour.words_buckets WHERE scope = 'words' AND bucket = ?",
          [hourOf(r.id)],
          { prepare: true, consistency: cassandra.types.consistencies.localQuorum },
        );
        assert.equal(bucketRow.rowLength, 1, "words_buckets lists the word's hour");
      }
      const table = await raw.execute(
        "SELECT column_name, kind, position, clustering_order, type FROM system_schema.columns " +
          "WHERE keyspace_name = 'grand_tour' AND table_name = 'words'",
      );
      const columns = Object.fromEntries(
        table.rows.map((row) => [row.get("column_name"), `${row.get("kind")} ${row.get("type")}`]),
      );
      assert.deepEqual(columns, {
        bucket: "partition_key int",
        id: "clustering text",
        word: "regular text",
        definition: "regular text",
        created_at: "regular text",
        updated_at: "regular text",
      });
      const id = table.rows.find((row) => row.get("column_name") === "id");
      assert.equal(id?.get("clustering_order"), "asc");
      const buckets = await raw.execute(
        "SELECT column_name, kind, clustering_order, type FROM system_schema.columns " +
          "WHERE keyspace_name = 'grand_tour' AND table_name = 'words_buckets'",
      );
      assert.deepEqual(
        Object.fromEntries(buckets.rows.map((row) => [
          row.get("column_name"),
          `${row.get("kind")} ${row.get("type")} ${row.get("clustering_order")}`,
        ])),
        { scope: "partition_key text none", bucket: "clustering int asc" },
      );
    } finally {
      await raw.shutdown();
    }
  },
);

storeTest("SCYLLA", "search and offsets page correctly past one driver page", async (c) => {
  const tag = token();
  const records: NewWord[] = [];
  for (let i = 0; i < 530; i++) records.push(newRecord(`${tag}-${i}`, i % 2 ? "odd" : "even"));
  await withStore(c, async (store) => {
    for (let i = 0; i < records.length; i += 50) {
      await Promise.all(records.slice(i, i + 50).map((r) => store.add(r)));
    }
    const ids = (rs: WordRecord[]) => rs.map((r) => r.id);
    assert.deepEqual(
      ids(await store.list({ search: fold(tag.toUpperCase()), limit: 20, offset: 505 })),
      ids(records.slice(505, 525)),
    );
    assert.deepEqual(
      ids(await store.list({ search: tag, limit: 1000, offset: 0 })),
      ids(records),
    );
    const odd = records.filter((_, i) => i % 2 === 1);
    const oddHits = (await store.list({ search: tag, limit: 1000, offset: 0 }))
      .filter((r) => r.definition === "odd");
    assert.deepEqual(ids(oddHits), ids(odd));
    // Without search: the newest rows are at the end of the id order.
    const all = await store.list({ search: undefined, limit: 1000, offset: 0 });
    const mine = all.filter((r) => r.word.startsWith(tag));
    assert.deepEqual(ids(mine), ids(records.slice(0, mine.length)));
    assert.deepEqual(ids(all), [...ids(all)].sort());
  });
});

storeTest(
  "SCYLLA",
  "TLS verifies the server against the CA and refuses a stranger CA",
  async () => {
    const tag = token();
    await withStore(tls!, async (store) => {
      const r = newRecord(tag, "over TLS");
      await store.add(r);
      assert.deepEqual(await store.list({ search: tag, limit: 5, offset: 0 }), listed(r));
    });
    const stranger = { ...tls!, caCert: await strangerCa() };
    await assert.rejects(open(stranger));
  },
  { needs: [tls] },
);

storeTest("SCYLLA", "an unreachable cluster or a wrong password fails fast", async (c) => {
  const started = Date.now();
  await assert.rejects(open({ ...c, url: DEAD_CONTACT_POINT }));
  assert.ok(Date.now() - started < 1_500, `took ${Date.now() - started} ms`);
  const points = parseContactPoints(c.url);
  const wrong = points.hosts.map((h) => `cassandra://${points.username}:not-the-password@${h}`);
  await assert.rejects(open({ ...c, url: wrong.join(",") }));
});

storeTest(
  "SCYLLA",
  "a words table dropped under the running store is created again without a restart",
  async (c) => {
    const keyspace = `gt_drop_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    const cfg = { ...c, options: { ...c.options, keyspace } };
    const raw = rawClient(c);
    try {
      await assertRecreatedAfterDrop("SCYLLA", () => open(cfg), async () => {
        await raw.execute(`DROP TABLE ${keyspace}.words`);
      });
    } finally {
      await raw.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => {});
      await raw.shutdown();
    }
  },
);

storeTest(
  "SCYLLA",
  "rows land in the bucket of their id's hour and words_buckets lists each hour once",
  async (c) => {
    await withKeyspace(c, async (config, raw, keyspace) => {
      const hour = Math.floor(PAST / HOUR);
      const hours = [hour, hour + 1, hour + 5, Math.floor(FUTURE / HOUR)];
      const records = recordsInHours(token(), hours, [3, 1, 2, 2]);
      await withStore(config, (store) => addAll(store, records));
      const rows = await rowsByBucket(raw, keyspace);
      assert.deepEqual(rows, expectedBuckets(records));
      assert.deepEqual(bucketNumbers(rows), hours);
      assert.deepEqual(await listedBuckets(raw, keyspace), hours);
    });
  },
);

storeTest(
  "SCYLLA",
  "listing, search and cursor pages cross hours, empty ones between, in id order with full pages",
  async (c) => {
    await withKeyspace(c, async (config) => {
      const past = Math.floor(PAST / HOUR);
      const future = Math.floor(FUTURE / HOUR);
      const now = Math.floor(Date.now() / HOUR);
      const hours = [past, past + 1, past + 3, now - 30, future, future + 2];
      const added = recordsInHours(token(), hours, [3, 5, 1, 6, 4, 2]);
      const records = listed(...added);
      const needles = records.filter((r) => r.definition === "needle");
      await withStore(config, async (store) => {
        await addAll(store, added);
        assert.deepEqual(await store.list({ limit: 1000, offset: 0 }), records);
        for (let offset = 0; offset < records.length; offset += 4) {
          assert.deepEqual(
            await store.list({ limit: 4, offset }),
            records.slice(offset, offset + 4),
            `offset ${offset}`,
          );
        }
        const pages = await cursorPages(store, 4);
        assert.deepEqual(pages.flat(), records);
        assert.ok(pages.slice(0, -1).every((p) => p.length === 4), "every page but the last full");
        const found = await cursorPages(store, 3, "needle");
        assert.deepEqual(found.flat(), needles);
        assert.ok(
          found.slice(0, -1).every((p) => p.length === 3),
          "every hit page but the last full",
        );
        assert.deepEqual(
          await store.list({ search: "needle", limit: 3, offset: 2 }),
          needles.slice(2, 5),
        );
        const after = records[7].id;
        assert.deepEqual(
          await store.list({ search: "needle", limit: 2, offset: 1, after }),
          needles.filter((r) => r.id > after).slice(1, 3),
        );
        assert.deepEqual(await store.list({ limit: 5, offset: 0, after: records.at(-1)!.id }), []);
      });
    });
  },
);

storeTest(
  "SCYLLA",
  "a cursor page in the last hour reads no earlier bucket, however full they are",
  async (c) => {
    await withKeyspace(c, async (config, raw, keyspace) => {
      const hour = Math.floor(PAST / HOUR);
      const early = [hour, hour + 1, hour + 2];
      const last = hour + 10;
      const tag = token();
      const filler = early.flatMap((h) =>
        Array.from({ length: 300 }, (_, i) => recordAt(h * HOUR + i, `${tag} f${h}-${i}`, "old"))
      );
      const tail = Array.from(
        { length: 5 },
        (_, i) => recordAt(last * HOUR + i * 1_000, `${tag} t${i}`, "new"),
      );
      await withStore(config, async (store) => {
        await addAll(store, [...filler, ...tail]);
        // Traps: rows stored in the early buckets whose ids sort after every real id. Any read of
        // an early bucket with `id > after` would return them.
        const traps = early.map((h, i): [number, WordRecord] => [
          h,
          listed(recordAt(FUTURE + i, `${tag} trap`, "read an earlier bucket"))[0],
        ]);
        await rawInsert(raw, keyspace, traps);
        const after = tail[1].id;
        assert.deepEqual(
          await store.list({ limit: 10, offset: 0, after }),
          listed(...tail.slice(2)),
        );
        assert.deepEqual(
          await store.list({ search: tag, limit: 10, offset: 0, after }),
          listed(...tail.slice(2)),
        );
        // Without a cursor the same walk does meet them, after every row of their bucket.
        const all = await store.list({ search: "trap", limit: 10, offset: 0 });
        assert.equal(all.length, 3);
      });
    });
  },
);

storeTest(
  "SCYLLA",
  "open moves the previous version's single partition into hour buckets, from two gateways at once",
  async (c) => {
    await withKeyspace(c, async (config, raw, keyspace) => {
      const tag = token();
      const records = legacyRecords(tag);
      await writeOldWay(raw, keyspace, records, config);
      const writtenAt = (bucket: number) =>
        raw.execute(
          `SELECT WRITETIME(word) AS t FROM ${keyspace}.words WHERE bucket = ? AND id = ?`,
          [bucket, records[0].id],
          { prepare: true },
        ).then((rs) => String(rs.first()?.get("t")));
      const original = await writtenAt(0);

      // Two gateways at once, each migrating on its own.
      await openGateways(config, 2);
      await assertMigrated(config, raw, keyspace, records);
      // A copy keeps its original write time: a later edit or delete always wins over it.
      assert.equal(await writtenAt(hourOf(records[0].id)), original);

      await withStore(config, async () => {});
      await assertMigrated(config, raw, keyspace, records);

      // An older gateway still running adds a word the old way; the next open moves it too.
      const late = listed(recordAt(Date.now() - 1_000, `${tag} late`, "recent"));
      await rawInsert(raw, keyspace, late.map((r) => [0, r]));
      await openGateways(config, 2);
      await assertMigrated(config, raw, keyspace, byId([...records, ...late]));
    });
  },
);

storeTest(
  "SCYLLA",
  "a migration interrupted after copying and after deleting part of a page completes",
  async (c) => {
    await withKeyspace(c, async (config, raw, keyspace) => {
      const records = legacyRecords(token());
      await writeOldWay(raw, keyspace, records, config);
      // What a crashed run left: words_buckets with the first hour, the first 300 rows copied into
      // their buckets, the first 100 of them deleted from bucket 0.
      await raw.execute(
        `CREATE TABLE ${keyspace}.words_buckets (scope text, bucket int, ` +
          "PRIMARY KEY ((scope), bucket)) WITH CLUSTERING ORDER BY (bucket ASC)",
      );
      await raw.execute(
        `INSERT INTO ${keyspace}.words_buckets (scope, bucket) VALUES ('words', ?)`,
        [hourOf(records[0].id)],
        { prepare: true },
      );
      await rawInsert(raw, keyspace, records.slice(0, 300).map((r) => [hourOf(r.id), r]));
      await raw.execute(
        `DELETE FROM ${keyspace}.words WHERE bucket = 0 AND id >= ? AND id <= ?`,
        [records[0].id, records[99].id],
        { prepare: true },
      );
      await withStore(config, async () => {});
      await assertMigrated(config, raw, keyspace, records);
    });
  },
);

storeTest(
  "SCYLLA",
  "a words_buckets table dropped under the running store is rebuilt from the words",
  async (c) => {
    await withKeyspace(c, async (config, raw, keyspace) => {
      const hour = Math.floor(PAST / HOUR);
      const records = recordsInHours(token(), [hour, hour + 7], [2, 3]);
      await withStore(config, async (store) => {
        await addAll(store, records);
        await raw.execute(`DROP TABLE ${keyspace}.words_buckets`);
        await assert.rejects(store.ping(), "the ping touches words_buckets");
      });
      await withStore(config, async (store) => {
        assert.deepEqual(await store.list({ limit: 10, offset: 0 }), listed(...records));
      });
      assert.deepEqual(await listedBuckets(raw, keyspace), [hour, hour + 7]);
    });
  },
);

storeTest(
  "SCYLLA",
  "replace and remove apply only at the expected revision and never recreate a word",
  async (c) => {
    const raw = rawClient(c);
    const tag = token();
    try {
      await withStore(c, async (store) => {
        const r = newRecord(`${tag} cas`, "original");
        const [original] = listed(r);
        await store.add(r);
        assert.deepEqual(await store.get(r.id), original);
        assert.equal(await store.get(idAt(Date.now())), undefined);
        assert.equal((await rawRow(raw, "grand_tour", r.id))?.updated_at, null);

        const first = edited(original, `${tag} cas`, "first edit", r.createdAt);
        assert.equal(await store.replace(first, r.createdAt), true);
        const [firstStored] = listed(first);
        assert.deepEqual(await store.get(r.id), firstStored);
        assert.deepEqual(await store.list({ search: tag, limit: 10, offset: 0 }), [firstStored]);
        const row = await rawRow(raw, "grand_tour", r.id);
        assert.equal(row?.updated_at, first.updatedAt);
        assert.equal(row?.definition, "first edit");
        // The edit's cells are dated after the add's (server-side timestamps for both).
        assert.ok(BigInt(String(row?.word_written)) > BigInt(String(row?.created_written)));

        // A stale revision changes nothing, from this store or from another gateway's.
        const stale = edited(original, `${tag} cas`, "stale edit", r.createdAt);
        assert.equal(await store.replace(stale, r.createdAt), false);
        assert.equal(await store.remove(r.id, r.createdAt), false);
        await withStore(c, async (other) => {
          assert.deepEqual(await other.get(r.id), firstStored, "another gateway reads the edit");
          assert.equal(await other.replace(stale, r.createdAt), false);
          assert.equal(await other.remove(r.id, r.createdAt), false);
        });
        assert.deepEqual(await store.get(r.id), firstStored);

        assert.equal(await store.remove(r.id, first.updatedAt!), true);
        assert.equal(await store.get(r.id), undefined);
        assert.equal(await rawRow(raw, "grand_tour", r.id), undefined);
        assert.deepEqual(await store.list({ search: tag, limit: 10, offset: 0 }), []);

        // Neither the deleted word nor one never stored comes back through replace.
        const never = newRecord(`${tag} never`, "not stored");
        await withStore(c, async (other) => {
          for (const s of [store, other]) {
            assert.equal(
              await s.replace(edited(first, "back", "back", first.updatedAt!), first.updatedAt!),
              false,
            );
            assert.equal(
              await s.replace(edited(original, "back", "back", r.createdAt), r.createdAt),
              false,
            );
            assert.equal(await s.remove(r.id, first.updatedAt!), false);
            assert.equal(
              await s.replace(edited(never, "x", "y", never.createdAt), never.createdAt),
              false,
            );
            assert.equal(await s.remove(never.id, never.createdAt), false);
          }
        });
        assert.equal(await rawRow(raw, "grand_tour", r.id), undefined);
        assert.equal(await rawRow(raw, "grand_tour", never.id), undefined);
      });
    } finally {
      await raw.shutdown();
    }
  },
);

storeTest(
  "SCYLLA",
  "open adds updated_at to a table from before edits, and the migration keeps it",
  async (c) => {
    await withKeyspace(c, async (config, raw, keyspace) => {
      const tag = token();
      const legacy = legacyRecords(tag).slice(0, 50);
      await writeOldWay(raw, keyspace, legacy, config);
      const columns = async () => {
        const rs = await raw.execute(
          "SELECT column_name, type FROM system_schema.columns " +
            "WHERE keyspace_name = ? AND table_name = 'words'",
          [keyspace],
          { prepare: true },
        );
        return Object.fromEntries(rs.rows.map((row) => [row.get("column_name"), row.get("type")]));
      };
      assert.equal((await columns()).updated_at, undefined);
      await openGateways(config, 2);
      assert.equal((await columns()).updated_at, "text", "open added the column");
      await assertMigrated(config, raw, keyspace, legacy);

      // An edited word still in bucket 0 (a late writer) is moved with its updated_at and write time.
      const [late] = listed(recordAt(Date.now() - 2_000, `${tag} late`, "recent"));
      const lateEdit = {
        ...late,
        definition: "recent, edited",
        updatedAt: new Date().toISOString(),
      };
      await raw.execute(
        `INSERT INTO ${keyspace}.words (bucket, id, word, definition, created_at, updated_at) ` +
          "VALUES (0, ?, ?, ?, ?, ?)",
        [late.id, late.word, lateEdit.definition, late.createdAt, lateEdit.updatedAt],
        { prepare: true, consistency: cassandra.types.consistencies.localQuorum },
      );
      const written = await raw.execute(
        `SELECT WRITETIME(updated_at) AS t FROM ${keyspace}.words WHERE bucket = 0 AND id = ?`,
        [late.id],
        { prepare: true },
      ).then((rs) => String(rs.first().get("t")));
      await withStore(config, async (store) => {
        assert.deepEqual(await store.get(late.id), lateEdit);
        const row = await rawRow(raw, keyspace, late.id);
        assert.equal(row?.updated_at, lateEdit.updatedAt);
        assert.equal(String(row?.word_written), written, "the copy keeps its write time");
        // The migrated word is edited like any other, on its revision.
        const next = edited(lateEdit, late.word, "edited after the move", lateEdit.updatedAt);
        assert.equal(await store.replace(next, late.createdAt), false);
        assert.equal(await store.replace(next, lateEdit.updatedAt), true);
        assert.deepEqual(await store.get(late.id), listed(next)[0]);
      });
      assert.deepEqual(await rowsByBucket(raw, keyspace), expectedBuckets([...legacy, late]));
    });
  },
);

/** Conditional statements (LWTs) the driver is asked to run while `fn` runs: how many, and most at once. */
async function countLwts(fn: () => Promise<void>): Promise<{ sent: number; mostAtOnce: number }> {
  type Execute = (
    this: Raw,
    query: string,
    params?: unknown[],
    options?: cassandra.QueryOptions,
  ) => Promise<cassandra.types.ResultSet>;
  const proto = cassandra.Client.prototype;
  const original = proto.execute;
  const execute = original as Execute;
  const counts = { sent: 0, mostAtOnce: 0 };
  let running = 0;
  const counting: Execute = function (query, params, options) {
    const call = execute.call(this, query, params, options);
    if (!/ IF /.test(query)) return call;
    counts.sent++;
    counts.mostAtOnce = Math.max(counts.mostAtOnce, ++running);
    return call.finally(() => running--);
  };
  proto.execute = counting as typeof original;
  try {
    await fn();
  } finally {
    proto.execute = original;
  }
  return counts;
}

/** Edits sent at once in the burst test. */
const BURST = 20;

storeTest(
  "SCYLLA",
  "bursts of edits of one hour's words, and of one word, send one LWT at a time and none stale",
  async (c) => {
    await withKeyspace(c, async (config) => {
      const hour = Math.floor(PAST / HOUR);
      // 20 at once: an LWT at replication factor 3 takes about 20 ms on the matrix's three nodes
      // (two cores), and the lane refuses what waited 1 s; the order, not the rate, is tested.
      const words = recordsInHours(token(), [hour], [BURST]);
      const [contested] = recordsInHours(token(), [hour + 1], [1]);
      await withStore(config, async (store) => {
        await addAll(store, [...words, contested]);
        // One edit of each of BURST words of one partition, all at once.
        let many: WordRecord[] = [];
        const manyLwts = await countLwts(async () => {
          many = await Promise.all(
            words.map((w, i) => updateRecord(store, w.id, { definition: `edit ${i}` })),
          );
        });
        assert.deepEqual(many.map((w) => w.definition), words.map((_, i) => `edit ${i}`));
        assert.deepEqual(await store.list({ limit: 100, offset: 0 }), [
          ...many,
          listed(contested)[0],
        ]);
        assert.deepEqual(manyLwts, { sent: BURST, mostAtOnce: 1 });
        // BURST edits of one word at once: each applies whole, on top of the one before, and the
        // store sends none on a revision it already replaced.
        let edits: WordRecord[] = [];
        const oneLwts = await countLwts(async () => {
          edits = await Promise.all(
            Array.from(
              { length: BURST },
              (_, i) => updateRecord(store, contested.id, { word: `w${i}`, definition: `d${i}` }),
            ),
          );
        });
        const last = edits.reduce((a, b) => (a.updatedAt! > b.updatedAt! ? a : b));
        assert.deepEqual(await store.get(contested.id), last);
        assert.equal(new Set(edits.map((e) => e.updatedAt)).size, edits.length);
        assert.deepEqual(oneLwts, { sent: BURST, mostAtOnce: 1 });
      });
    });
  },
);

storeTest(
  "SCYLLA",
  "edits and deletes win over an add dated by a gateway clock that runs an hour ahead",
  async (c) => {
    const tag = token();
    await withStore(c, async (store) => {
      const r = newRecord(`${tag} skewed`, "added");
      // The driver would date the INSERT by this clock if it sent client-side timestamps.
      const now = Date.now;
      Date.now = () => now() + HOUR;
      try {
        await store.add(r);
      } finally {
        Date.now = now;
      }
      const next = edited(listed(r)[0], r.word, "edited", r.createdAt);
      assert.equal(await store.replace(next, r.createdAt), true);
      assert.deepEqual(await store.get(r.id), listed(next)[0], "the edit shows");
      assert.equal(await store.remove(r.id, next.updatedAt!), true);
      assert.equal(await store.get(r.id), undefined, "the deletion shows");
    });
  },
);
