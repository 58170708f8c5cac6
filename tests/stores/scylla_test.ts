/**
 * SCYLLA-specific behaviour of `stores/scylla.ts` against the real matrix
 * server (Apache Cassandra over CQL): contact-point parsing, surviving a dead
 * contact point, the keyspace replication the options ask for, the table as a
 * plain driver sees it, search paging across driver pages, TLS verification
 * and failing fast.
 *
 * @module
 */
import assert from "node:assert/strict";
import cassandra from "cassandra-driver";
import { newRecord } from "../../stores/records.ts";
import { open, parseContactPoints } from "../../stores/scylla.ts";
import { fold } from "../../stores/fold.ts";
import type { NewWord, StoreConfig, WordRecord, WordStore } from "../../stores/types.ts";
import { listed } from "../support/records.ts";
import { storeTest, tlsStoreConfig } from "../support/env.ts";
import { assertRecreatedAfterDrop } from "../support/schema_loss.ts";
import { strangerCa } from "../support/tls.ts";

const tls = tlsStoreConfig("SCYLLA");
/** Nothing listens here on the matrix machine. */
const DEAD_CONTACT_POINT = "127.0.0.1:19999";

/** A token no other test or run uses, to find this test's rows in the shared table. */
function token(): string {
  return `sct${crypto.randomUUID().replaceAll("-", "")}`;
}

/** A plain driver client on the same server as `config`, bypassing the store module. */
function rawClient(config: StoreConfig): InstanceType<typeof cassandra.Client> {
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

async function withStore<T>(config: StoreConfig, fn: (s: WordStore) => Promise<T>): Promise<T> {
  const store = await open(config);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

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
      const rf2 = { ...c, options: { ...c.options, replicationFactor: "2", keyspace } };
      await withStore(rf2, async (store) => {
        assert.deepEqual(await replicationOf(keyspace), {
          class: "org.apache.cassandra.locator.NetworkTopologyStrategy",
          [c.options.datacenter]: "2",
        });
        // One node cannot give LOCAL_QUORUM (2 of 2) replicas: the write is refused, not weakened.
        await assert.rejects(store.add(newRecord(token(), "needs two replicas")));
      });
    } finally {
      await raw.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => {});
      await raw.shutdown();
    }
  },
);

storeTest("SCYLLA", "rows are visible through a plain driver exactly as added", async (c) => {
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
        "SELECT bucket, id, word, definition, created_at FROM grand_tour.words WHERE bucket = 0 AND id = ?",
        [r.id],
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
        { bucket: 0, ...listed(r)[0] },
      );
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
    });
    const id = table.rows.find((row) => row.get("column_name") === "id");
    assert.equal(id?.get("clustering_order"), "asc");
  } finally {
    await raw.shutdown();
  }
});

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
