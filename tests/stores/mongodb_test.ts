/**
 * MongoDB-specific behaviour against the real server of the matrix (FerretDB
 * over SQLite): the read preference of the URL reaching the driver, TLS with
 * CA verification, the data model as seen straight through the driver,
 * operator-looking strings kept as text, password authentication, the
 * database taken from the URL, and failing fast when nothing answers.
 */
import assert from "node:assert/strict";
import { MongoClient } from "mongodb";
import { fold } from "../../stores/fold.ts";
import { newRecord } from "../../stores/records.ts";
import { assertFoundAfterBackfill, oldWords, unkeyed } from "../support/backfill.ts";
import { listed } from "../support/records.ts";
import { nextRevision } from "../../stores/edits.ts";
import { withSearchKey } from "../../stores/records.ts";
import {
  CLAIMS,
  COLLECTION,
  databaseOf,
  DEFAULT_DATABASE,
  ID_INDEX,
  literalPattern,
  open,
  openCollection,
} from "../../stores/mongodb.ts";
import type { StoreConfig } from "../../stores/types.ts";
import { storeTest, tlsStoreConfig } from "../support/env.ts";
import { assertRecreatedAfterDrop } from "../support/schema_loss.ts";
import { strangerCa } from "../support/tls.ts";

const tls = tlsStoreConfig("MONGODB");

/** `url` with `key=value` set in its query string. */
function withParam(url: string, key: string, value: string): string {
  const [base, query = ""] = url.split("?");
  const params = new URLSearchParams(query);
  params.set(key, value);
  return `${base}?${params}`;
}

/** `url` with its userinfo replaced by `userinfo` (already encoded). */
function withUserinfo(url: string, userinfo: string): string {
  return url.replace(/^(mongodb(?:\+srv)?:\/\/)[^@/]*@/, `$1${userinfo}@`);
}

/** `url` with `path` (without the leading slash) as its database path. */
function withPath(url: string, path: string): string {
  return url.replace(/^(mongodb:\/\/[^/]+)\/[^?]*/, `$1/${path}`);
}

/** A raw driver client on the same server as `config`. */
function rawClient(config: StoreConfig): MongoClient {
  return new MongoClient(config.url, {
    serverSelectionTimeoutMS: 3000,
    ...(config.caCert ? { tls: true, ca: config.caCert } : {}),
  });
}

Deno.test("MONGODB: the database comes from the URL path, else grand_tour", () => {
  assert.equal(databaseOf("mongodb://u:p@h:1/grand_tour?tls=true"), "grand_tour");
  assert.equal(databaseOf("mongodb://h1:1,h2:2/other"), "other");
  assert.equal(databaseOf("mongodb+srv://u:p@cluster.example/db%20x?x=1"), "db x");
  assert.equal(databaseOf("mongodb://u:p@h:1/?authSource=admin"), DEFAULT_DATABASE);
  assert.equal(databaseOf("mongodb://h:1"), DEFAULT_DATABASE);
});

Deno.test("MONGODB: search patterns escape every regex metacharacter", () => {
  const tricky = String.raw`a.b*c+d?e^f$g(h)i[j]k{l}m|n\o-p/q#r`;
  const pattern = literalPattern(tricky);
  assert.equal(
    pattern,
    String.raw`a\.b\*c\+d\?e\^f\$g\(h\)i\[j\]k\{l\}m\|n\\o\-p\/q\#r`,
  );
  // JavaScript's engine agrees that the escaped pattern matches the text literally.
  assert.ok(new RegExp(pattern, "i").test(`xx${tricky.toUpperCase()}yy`));
  assert.ok(!new RegExp(literalPattern(".*"), "i").test("anything"));
  assert.equal(literalPattern("tab\there\nnl"), String.raw`tab\x09here\x0anl`);
});

storeTest(
  "MONGODB",
  "the URL's readPreference reaches the collection and cursors, and queries still work on a standalone",
  async (config) => {
    const secondary = {
      ...config,
      url: withParam(config.url, "readPreference", "secondaryPreferred"),
    };
    const { client, words } = await openCollection(secondary);
    try {
      assert.equal(client.readPreference.mode, "secondaryPreferred");
      assert.equal(words.readPreference?.mode, "secondaryPreferred");
      assert.equal(words.find({}).readPreference.mode, "secondaryPreferred");
      assert.deepStrictEqual(words.writeConcern?.w, "majority");
    } finally {
      await client.close();
    }
    const store = await open(secondary);
    try {
      const record = newRecord(`rp-${crypto.randomUUID()}`, "read from a secondary if any");
      await store.add(record);
      assert.deepStrictEqual(
        await store.list({ search: record.word, limit: 10, offset: 0 }),
        listed(record),
        "read-your-writes under secondaryPreferred",
      );
    } finally {
      await store.close();
    }
  },
);

storeTest("MONGODB", "TLS with the matrix CA connects, verifies and round-trips", async () => {
  const store = await open(tls!);
  try {
    await store.ping();
    const record = newRecord("tls-mongodb", "written over TLS 🔒 'quoted' \\ %_ $regex");
    await store.add(record);
    const found = await store.list({ search: fold("written over TLS 🔒"), limit: 1000, offset: 0 });
    assert.deepStrictEqual(found.find((r) => r.id === record.id), listed(record)[0]);
  } finally {
    await store.close();
  }
}, { needs: [tls] });

storeTest("MONGODB", "TLS is refused when the server is not signed by the given CA", async () => {
  const otherCa = await strangerCa();
  await assert.rejects(
    () => open({ ...tls!, caCert: otherCa, connectTimeoutMs: 1000 }),
    /certificate/,
  );
  // Without a CA the system trust store is used, which does not know the matrix CA either.
  await assert.rejects(
    () => open({ ...tls!, caCert: undefined, connectTimeoutMs: 1000 }),
    /certificate/,
  );
}, { needs: [tls] });

storeTest(
  "MONGODB",
  "records are plain documents in grand_tour.words with a unique id index",
  async (config) => {
    const store = await open(config);
    const raw = rawClient(config);
    try {
      const record = newRecord("raw-view ✓", 'def with "quotes" and ‏עברית‏ and e\u0301');
      await store.add(record);
      const words = raw.db("grand_tour").collection(COLLECTION);
      const doc = await words.findOne({ id: record.id });
      assert.ok(doc, "the record is in grand_tour.words");
      const { _id, ...fields } = doc;
      assert.ok(_id, "the server assigned an _id");
      // `rev` (the revision an edit compares) starts as createdAt.
      assert.deepStrictEqual(fields, { ...record, rev: record.createdAt });
      assert.equal(typeof doc.createdAt, "string", "createdAt is kept as the gateway's string");

      const indexes = await words.listIndexes().toArray();
      const idIndex = indexes.find((i) => i.name === ID_INDEX);
      assert.ok(idIndex, "the id index exists");
      assert.deepStrictEqual(idIndex.key, { id: 1 });
      assert.equal(idIndex.unique, true);

      // The unique index refuses a second document with the same id.
      await assert.rejects(() => store.add({ ...record, word: "duplicate" }), /duplicate key/i);
      assert.equal(await words.countDocuments({ id: record.id }), 1);
    } finally {
      await raw.close();
      await store.close();
    }
  },
);

storeTest("MONGODB", "operator-looking strings are stored and matched as text", async (config) => {
  const store = await open(config);
  const raw = rawClient(config);
  try {
    const tag = crypto.randomUUID();
    const gt = newRecord(`{"$gt": ""} ${tag}`, `$where: function() { return true } ${tag}`);
    const ne = newRecord(`$ne ${tag}`, `{ "$regex": ".*" } ${tag}`);
    const plain = newRecord(`plain ${tag}`, `nothing special ${tag}`);
    for (const r of [gt, ne, plain]) await store.add(r);

    const words = raw.db("grand_tour").collection(COLLECTION);
    const stored = await words.findOne({ id: gt.id }, { projection: { _id: 0 } });
    assert.deepStrictEqual(stored, { ...gt, rev: gt.createdAt });
    assert.equal(await words.countDocuments({ word: `{"$gt": ""} ${tag}` }), 1);

    const search = (s: string) => store.list({ search: fold(s), limit: 100, offset: 0 });
    assert.deepStrictEqual(await search(tag), listed(gt, ne, plain));
    const TAG = tag.toUpperCase();
    assert.deepStrictEqual(await search(`{"$GT": ""} ${TAG}`), listed(gt));
    assert.deepStrictEqual(await search(`$where: function() { return true } ${TAG}`), listed(gt));
    assert.deepStrictEqual(await search(`$NE ${TAG}`), listed(ne));
    assert.deepStrictEqual(await search(`{ "$regex": ".*" } ${tag}`), listed(ne));
    assert.deepStrictEqual(await search(`.* ${tag}`), []);
    assert.deepStrictEqual(await search(`^plain ${tag}`), []);
    assert.deepStrictEqual(await search(`${tag}$`), []);
  } finally {
    await raw.close();
    await store.close();
  }
});

storeTest(
  "MONGODB",
  "an edit's claim blocks its revision while young, is completed once abandoned, and is cleaned up",
  async (config) => {
    const store = await open(config);
    const raw = rawClient(config);
    try {
      const claims = raw.db(databaseOf(config.url)).collection(CLAIMS);
      const claimsOf = async (id: string) =>
        (await claims.find({ id }).toArray()).map((c) => c.revision as string);
      const w = newRecord(`claimed ${crypto.randomUUID()}`, "start");
      await store.add(w);
      const edit = (from: string, word: string) =>
        withSearchKey({ ...w, word, updatedAt: nextRevision(from) });
      const claim = (from: string, to: ReturnType<typeof edit>, ageMs: number) =>
        claims.insertOne({
          _id: `${w.id}|${from}` as never,
          id: w.id,
          revision: from,
          change: {
            word: to.word,
            definition: to.definition,
            searchKey: to.searchKey,
            updatedAt: to.updatedAt,
            rev: to.updatedAt,
          },
          at: Date.now() - ageMs,
        });

      // A writer died after claiming the first edit: the next writer of that revision
      // loses, and completes the dead writer's edit for it.
      const dead = edit(w.createdAt, `${w.word} by the dead writer`);
      await claim(w.createdAt, dead, 6_000);
      assert.equal(await store.replace(edit(w.createdAt, "mine"), w.createdAt), false);
      assert.equal((await store.get(w.id))?.word, dead.word);

      // A young claim is a live writer's: others lose and leave the word alone.
      const live = edit(dead.updatedAt!, `${w.word} by a live writer`);
      await claim(dead.updatedAt!, live, 0);
      assert.equal(await store.replace(edit(dead.updatedAt!, "mine"), dead.updatedAt!), false);
      assert.equal((await store.get(w.id))?.word, dead.word);
      await claims.deleteOne({ _id: `${w.id}|${dead.updatedAt}` as never });

      // An applied edit keeps only its own claim; a deletion leaves none.
      const mine = edit(dead.updatedAt!, `${w.word} mine`);
      assert.equal(await store.replace(mine, dead.updatedAt!), true);
      assert.deepEqual(await claimsOf(w.id), [dead.updatedAt]);
      assert.equal(await store.remove(w.id, mine.updatedAt!), true);
      assert.deepEqual(await claimsOf(w.id), []);
    } finally {
      await raw.close();
      await store.close();
    }
  },
);

storeTest("MONGODB", "the server checks the password (SCRAM-SHA-256)", async (config) => {
  const t0 = performance.now();
  const err = await open({
    ...config,
    url: withUserinfo(config.url, "grand_tour:not-the-password"),
  }).then(() => undefined, (e: Error) => e);
  assert.ok(err instanceof Error, "a wrong password is refused");
  assert.match(err.message, /authentication failed/i);
  assert.ok(!err.message.includes("not-the-password"), "the error does not carry the password");
  assert.ok(performance.now() - t0 < 3000);

  // Unauthenticated clients may say hello but not read or write.
  const host = /@([^/?]+)/.exec(config.url)?.[1];
  const anonymous = new MongoClient(`mongodb://${host}/grand_tour`, {
    serverSelectionTimeoutMS: 2000,
    ...(config.caCert ? { tls: true, ca: config.caCert } : {}),
  });
  try {
    await assert.rejects(
      () => anonymous.db("grand_tour").collection(COLLECTION).findOne({}),
      /requires authentication/i,
    );
  } finally {
    await anonymous.close();
  }
});

storeTest("MONGODB", "a URL without a database path uses grand_tour", async (config) => {
  const store = await open({ ...config, url: withPath(config.url, "") });
  const raw = rawClient(config);
  try {
    const record = newRecord(`no-path-${crypto.randomUUID()}`, "lands in grand_tour");
    await store.add(record);
    const doc = await raw.db("grand_tour").collection(COLLECTION).findOne({ id: record.id });
    assert.equal(doc?.word, record.word);
  } finally {
    await raw.close();
    await store.close();
  }
});

storeTest("MONGODB", "open rejects quickly when nothing answers", async (config) => {
  // A port that accepts TCP connections but never speaks the MongoDB protocol.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const url = config.url.replace(/@[^/]+\//, `@127.0.0.1:${port}/`);
    const t0 = performance.now();
    const err = await open({ ...config, url, connectTimeoutMs: 500 }).then(
      () => undefined,
      (e: Error) => e,
    );
    const elapsed = performance.now() - t0;
    assert.ok(err instanceof Error, "open must reject");
    assert.ok(elapsed < 1500, `open took ${Math.round(elapsed)} ms`);
    assert.ok(!err.message.includes("matrix-pw"), "the error does not carry the password");
  } finally {
    listener.close();
    for (const c of held) c.close();
    await accepting.catch(() => {});
  }
});

storeTest(
  "MONGODB",
  "a words collection dropped under the running store gets its id index again without a restart",
  async (config) => {
    const raw = rawClient(config);
    try {
      await assertRecreatedAfterDrop("MONGODB", () => open(config), async () => {
        await raw.db(databaseOf(config.url)).collection(COLLECTION).drop();
      });
      const indexes = await raw.db(databaseOf(config.url)).collection(COLLECTION).listIndexes()
        .toArray();
      assert.equal(indexes.find((i) => i.name === ID_INDEX)?.unique, true);
    } finally {
      await raw.close();
    }
  },
);

storeTest(
  "MONGODB",
  "documents from before search keys get their key when the store opens",
  async (config) => {
    const t = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
    const database = `grand_tour_${t}`;
    const raw = rawClient(config);
    try {
      // FerretDB updates about 6 ms each: 603 words take a few seconds.
      const before = oldWords(t);
      await raw.db(database).collection(COLLECTION).insertMany(unkeyed(before));
      const store = await open({ ...config, url: withPath(config.url, database) });
      try {
        await assertFoundAfterBackfill(store, t, before);
      } finally {
        await store.close();
      }
      const left = await raw.db(database).collection(COLLECTION)
        .countDocuments({ searchKey: { $exists: false } });
      assert.equal(left, 0);
    } finally {
      await raw.db(database).dropDatabase().catch(() => {});
      await raw.close();
    }
  },
);
