/**
 * PostgreSQL-specific behaviour of `stores/postgresql.ts` against the real
 * matrix server: TLS verification, the table as other clients see it, uuid
 * ordering, literal search and creating what is missing.
 *
 * @module
 */
import assert from "node:assert/strict";
import pg from "pg";
import { open } from "../../stores/postgresql.ts";
import { fold } from "../../stores/fold.ts";
import { MAX_SEARCH_KEY, newRecord, withSearchKey } from "../../stores/records.ts";
import { assertFoundAfterBackfill, oldWords, unkeyed } from "../support/backfill.ts";
import { listed } from "../support/records.ts";
import type { StoreConfig, WordStore } from "../../stores/types.ts";
import { storeConfig, storeTest, tlsStoreConfig } from "../support/env.ts";
import { assertRecreatedAfterDrop } from "../support/schema_loss.ts";
import { strangerCa } from "../support/tls.ts";
import { onDatabase, withOpened } from "../support/stores.ts";

const tls = tlsStoreConfig("POSTGRESQL");

/** A token no other test or run uses, to find this test's rows in the shared table. */
function token(): string {
  return `pgt${crypto.randomUUID().replaceAll("-", "")}`;
}

/** A raw `pg` client on the database of `config` (or `database`), TLS when a CA is set. */
async function rawClient(config: StoreConfig, database?: string): Promise<pg.Client> {
  const u = new URL(config.url);
  const client = new pg.Client({
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: database ?? (decodeURIComponent(u.pathname.slice(1)) || "grand_tour"),
    ssl: config.caCert ? { ca: config.caCert, rejectUnauthorized: true } : false,
    connectionTimeoutMillis: 3_000,
  });
  await client.connect();
  return client;
}

const withStore = <T>(config: StoreConfig, fn: (s: WordStore) => Promise<T>) =>
  withOpened(open, config, fn);

/** Drops a database this test made, after every connection to it is gone. */
async function dropDatabase(config: StoreConfig, database: string): Promise<void> {
  const admin = await rawClient(config, "postgres");
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

storeTest(
  "POSTGRESQL",
  "TLS verified against the matrix CA stores and lists a record over an encrypted connection",
  async () => {
    const t = token();
    const rec = newRecord(`tls ${t}`, "sent over TLS");
    await withStore(tls!, async (store) => {
      await store.ping();
      await store.add(rec);
      assert.deepEqual(await store.list({ search: t, limit: 10, offset: 0 }), listed(rec));
    });
    const raw = await rawClient(tls!);
    try {
      const { rows } = await raw.query(
        "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
      );
      assert.equal(rows[0].ssl, true);
      assert.match(rows[0].version, /^TLSv1\.[23]$/);
    } finally {
      await raw.end();
    }
  },
  { needs: [tls] },
);

storeTest(
  "POSTGRESQL",
  "a CA that did not sign the server certificate is refused",
  async () => {
    const wrong: StoreConfig = { ...tls!, caCert: await strangerCa() };
    const started = Date.now();
    await assert.rejects(open(wrong), (e: Error) => {
      assert.match(e.message, /certificate|self[- ]signed|issuer|verify|UnknownIssuer/i);
      assert.ok(!e.message.includes(new URL(tls!.url).password), "password leaked");
      return true;
    });
    assert.ok(Date.now() - started < 5_000, "refusal took too long");
  },
  { needs: [tls] },
);

storeTest(
  "POSTGRESQL",
  "records are rows of grand_tour.words with native column types, readable straight through pg",
  async (config) => {
    const t = token();
    const rec = newRecord(`raw ${t}`, "Ünïcödé 'quotes' \\ $set 🎉 שלום e\u0301");
    await withStore(config, (store) => store.add(rec));
    const raw = await rawClient(config);
    try {
      const { rows } = await raw.query(
        "SELECT current_database() AS db, id::text AS id, word, definition, created_at FROM words WHERE id = $1",
        [rec.id],
      );
      assert.equal(rows.length, 1);
      assert.equal(rows[0].db, "grand_tour");
      assert.equal(rows[0].id, rec.id);
      assert.equal(rows[0].word, rec.word);
      assert.equal(rows[0].definition, rec.definition);
      assert.ok(rows[0].created_at instanceof Date);
      assert.equal((rows[0].created_at as Date).toISOString(), rec.createdAt);

      const cols = await raw.query(
        `SELECT column_name, data_type, character_maximum_length AS len, is_nullable
         FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'words'
         ORDER BY ordinal_position`,
      );
      assert.deepEqual(cols.rows, [
        { column_name: "id", data_type: "uuid", len: null, is_nullable: "NO" },
        { column_name: "word", data_type: "character varying", len: 256, is_nullable: "NO" },
        { column_name: "definition", data_type: "character varying", len: 256, is_nullable: "NO" },
        {
          column_name: "created_at",
          data_type: "timestamp with time zone",
          len: null,
          is_nullable: "NO",
        },
        {
          column_name: "search_key",
          data_type: "character varying",
          len: MAX_SEARCH_KEY,
          is_nullable: "YES",
        },
        // Null until the first edit.
        {
          column_name: "updated_at",
          data_type: "timestamp with time zone",
          len: null,
          is_nullable: "YES",
        },
      ]);
      const pk = await raw.query(
        `SELECT a.attname FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
         WHERE i.indrelid = 'words'::regclass AND i.indisprimary`,
      );
      assert.deepEqual(pk.rows, [{ attname: "id" }]);
    } finally {
      await raw.end();
    }
  },
);

storeTest(
  "POSTGRESQL",
  "uuid order is the order of the id text, so UUIDv7 ids list in insertion order",
  async (config) => {
    const t = token();
    // Ids whose order is decided at different byte positions (including 0x9f < 0xa0 and the
    // last byte), made unique to this run by a random tail, inserted out of order.
    const tail = crypto.randomUUID().replaceAll("-", "").slice(0, 10);
    const mine = [
      "00000000-0000-7000-8000-0",
      "0000000f-ffff-7fff-bfff-0",
      "00000010-0000-7000-8000-0",
      "7fffffff-ffff-7000-8000-0",
      "80000000-0000-7000-8000-0",
      "9fffffff-ffff-7fff-bfff-0",
      "a0000000-0000-7000-8000-0",
      "ffffffff-ffff-7fff-bfff-0",
      "ffffffff-ffff-7fff-bfff-0",
    ].map((prefix, i) => `${prefix}${tail}${i}`);
    const records = mine.map((id) =>
      withSearchKey({
        id,
        word: `order ${t}`,
        definition: id,
        createdAt: "2024-01-02T03:04:05.678Z",
      })
    );
    const shuffled = [8, 3, 0, 6, 5, 1, 7, 4, 2].map((i) => records[i]);
    // A database of its own, so these far-past and far-future ids never reach the shared list.
    const database = `grand_tour_${token()}`;
    try {
      await withStore(onDatabase(config, database), async (store) => {
        for (const r of shuffled) await store.add(r);
        const page = await store.list({ search: t, limit: 100, offset: 0 });
        const sorted = [...mine].sort();
        assert.deepEqual(page.map((r) => r.id), sorted);

        // Real UUIDv7 ids made in sequence list in the order they were made.
        const fresh = Array.from({ length: 20 }, (_, i) => newRecord(`seq ${t}`, `n${i}`));
        for (const r of [...fresh].reverse()) await store.add(r);
        const page1 = await store.list({ search: `seq ${t}`, limit: 7, offset: 0 });
        const page2 = await store.list({ search: `seq ${t}`, limit: 7, offset: 7 });
        const page3 = await store.list({ search: `seq ${t}`, limit: 7, offset: 14 });
        assert.deepEqual([...page1, ...page2, ...page3], listed(...fresh));
      });
    } finally {
      await dropDatabase(config, database);
    }
  },
);

storeTest(
  "POSTGRESQL",
  "search is a literal substring of the folded key: LIKE wildcards, backslashes and regex do nothing",
  async (config) => {
    const t = token();
    const a = newRecord(`${t} 100% pure_Ÿ`, "back\\slash");
    const b = newRecord(`${t} 1000 pureXy`, "backslash");
    const c = newRecord(`${t} ΟΔΟΣ`, "İstanbul (.*) [a-z] $1");
    await withStore(config, async (store) => {
      for (const r of [a, b, c]) await store.add(r);
      // Pages through every match: earlier runs may have stored many words with these characters.
      const find = async (s: string) => {
        const ids: string[] = [];
        for (let offset = 0;; offset += 1000) {
          const page = await store.list({ search: fold(s), limit: 1000, offset });
          ids.push(...page.filter((r) => r.word.startsWith(t)).map((r) => r.id));
          if (page.length < 1000) return ids;
        }
      };
      assert.deepEqual(await find(`${t} 100%`), [a.id]);
      assert.deepEqual(await find("%"), [a.id]);
      assert.deepEqual(await find("_ÿ"), [a.id]); // upper Ÿ folds to ÿ
      assert.deepEqual(await find("pure_"), [a.id]);
      assert.deepEqual(await find("k\\s"), [a.id]);
      assert.deepEqual(await find("ck\\"), [a.id]);
      assert.deepEqual(await find(`${t.toUpperCase()} 1000 PUREXY`), [b.id]);
      assert.deepEqual(await find("οδος"), [c.id]); // final sigma folds to σ
      assert.deepEqual(await find("ΔΟΣ"), [c.id]);
      assert.deepEqual(await find("(.*)"), [c.id]);
      assert.deepEqual(await find("[A-Z] $1"), [c.id]);
      assert.deepEqual(await find("i\u0307stanbul"), [c.id]);
      assert.deepEqual(await find(".*"), [c.id]);
      assert.deepEqual(await find(`${t} %`), []);
    });
  },
);

storeTest(
  "POSTGRESQL",
  "256 four-byte characters fit a varchar(256) and round-trip byte for byte",
  async (config) => {
    const t = token();
    const word = "😀".repeat(256);
    const definition = `${t}${"e\u0301".repeat(100)}${"\u05e9".repeat(256 - t.length - 200)}`;
    assert.equal([...definition].length, 256);
    const rec = newRecord(word, definition);
    await withStore(config, async (store) => {
      await store.add(rec);
      assert.deepEqual(await store.list({ search: t, limit: 5, offset: 0 }), listed(rec));
    });
  },
);

storeTest(
  "POSTGRESQL",
  "open creates a missing database and table, also when several gateways start at once",
  async (config) => {
    const database = `grand_tour_${token()}`;
    const cfg = onDatabase(config, database);
    try {
      const stores = await Promise.all([open(cfg), open(cfg), open(cfg)]);
      try {
        const rec = newRecord("fresh", "database");
        await stores[0].add(rec);
        for (const s of stores) {
          assert.deepEqual(await s.list({ limit: 10, offset: 0 }), listed(rec));
        }
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    } finally {
      await dropDatabase(config, database);
    }
  },
);

storeTest(
  "POSTGRESQL",
  "an unreachable server or a wrong password rejects open quickly without leaking secrets",
  async (config) => {
    const u = new URL(config.url);
    const password = decodeURIComponent(u.password);
    const closedPort = new URL(config.url);
    closedPort.port = "1";
    let started = Date.now();
    await assert.rejects(open({ ...config, url: closedPort.toString() }), (e: Error) => {
      assert.ok(!e.message.includes(password), "password leaked");
      return true;
    });
    assert.ok(Date.now() - started < 1_500 + 500, "unreachable server took too long");

    const wrongPw = new URL(config.url);
    wrongPw.password = "not-the-password";
    started = Date.now();
    await assert.rejects(open({ ...config, url: wrongPw.toString() }), (e: Error) => {
      assert.match(e.message, /password authentication failed/);
      assert.ok(!e.message.includes("not-the-password"), "password leaked");
      return true;
    });
    assert.ok(Date.now() - started < 3_000, "wrong password took too long");
  },
);

storeTest(
  "POSTGRESQL",
  "a duplicate id is refused and close can be called twice without rejecting",
  async (config) => {
    const rec = newRecord(`dup ${token()}`, "once");
    const store = await open(config);
    await store.add(rec);
    await assert.rejects(store.add({ ...rec, word: "twice" }), (e: Error) => {
      assert.match(e.message, /duplicate key/);
      return true;
    });
    await store.close();
    await store.close();
    await assert.rejects(store.ping());
  },
);

storeTest(
  "POSTGRESQL",
  "a words table dropped under the running store is created again without a restart, replicas or not",
  async (config) => {
    const database = `gt_drop_${token()}`;
    // With read replicas where the matrix has them: a dropped table fails the primary's ping
    // even while a replica answers, so the store is opened again and creates it.
    const cfg = onDatabase(storeConfig("POSTGRESQL") ?? config, database);
    try {
      await assertRecreatedAfterDrop("POSTGRESQL", () => open(cfg), async () => {
        const raw = await rawClient(cfg);
        try {
          await raw.query("DROP TABLE words");
        } finally {
          await raw.end();
        }
      });
    } finally {
      await dropDatabase(config, database);
    }
  },
);

storeTest(
  "POSTGRESQL",
  "a table from before search keys gets the column, and its words their keys, when the store opens",
  async (config) => {
    const t = token();
    const database = `gt_old_${t}`;
    const cfg = onDatabase(config, database);
    const admin = await rawClient(config, "postgres");
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`).finally(() =>
      admin.end()
    );
    try {
      const before = oldWords(t);
      const rows = unkeyed(before);
      const raw = await rawClient(cfg);
      try {
        await raw.query(`CREATE TABLE words (id uuid PRIMARY KEY, word varchar(256) NOT NULL,
          definition varchar(256) NOT NULL, created_at timestamptz NOT NULL)`);
        await raw.query(
          `INSERT INTO words SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])`,
          [
            rows.map((r) => r.id),
            rows.map((r) => r.word),
            rows.map((r) => r.definition),
            rows.map((r) => r.createdAt),
          ],
        );
      } finally {
        await raw.end();
      }
      await withStore(cfg, (store) => assertFoundAfterBackfill(store, t, before));
      const check = await rawClient(cfg);
      try {
        const { rows } = await check.query(
          "SELECT count(*)::int AS n FROM words WHERE search_key IS NULL",
        );
        assert.equal(rows[0].n, 0);
      } finally {
        await check.end();
      }
    } finally {
      await dropDatabase(config, database);
    }
  },
);
