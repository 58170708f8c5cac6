/**
 * MYSQL-specific behaviour of `stores/mysql.ts` against the real matrix server
 * (MariaDB): TLS verification, the database and table the store creates, the
 * row as other clients see it, exact round trips under `utf8mb4_bin`, and
 * failing fast.
 *
 * @module
 */
import assert from "node:assert/strict";
import mysql from "mysql2/promise";
import { open } from "../../stores/mysql.ts";
import { fold } from "../../stores/fold.ts";
import { MAX_SEARCH_KEY, newRecord } from "../../stores/records.ts";
import { assertFoundAfterBackfill, oldWords, unkeyed } from "../support/backfill.ts";
import { listed } from "../support/records.ts";
import type { StoreConfig, WordStore } from "../../stores/types.ts";
import { storeConfig, storeTest, tlsStoreConfig } from "../support/env.ts";
import { assertRecreatedAfterDrop } from "../support/schema_loss.ts";
import { strangerCa } from "../support/tls.ts";
import { onDatabase, withOpened } from "../support/stores.ts";

const tls = tlsStoreConfig("MYSQL");

/** A token no other test or run uses, to find this test's rows in the shared table. */
function token(): string {
  return `myt${crypto.randomUUID().replaceAll("-", "")}`;
}

function databaseOf(config: StoreConfig): string {
  return decodeURIComponent(new URL(config.url).pathname.slice(1)) || "grand_tour";
}

/** A raw mysql2 connection without a default database, TLS when a CA is set. */
async function rawConnection(config: StoreConfig): Promise<mysql.Connection> {
  const u = new URL(config.url);
  return await mysql.createConnection({
    host: u.hostname,
    port: Number(u.port || 3306),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    connectTimeout: 3_000,
    dateStrings: true,
    ssl: config.caCert ? { ca: config.caCert, rejectUnauthorized: true } : undefined,
  });
}

async function withRaw<T>(config: StoreConfig, fn: (c: mysql.Connection) => Promise<T>) {
  const c = await rawConnection(config);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => c.destroy());
  }
}

const withStore = <T>(config: StoreConfig, fn: (s: WordStore) => Promise<T>) =>
  withOpened(open, config, fn);

/** Successful server-side TLS handshakes so far. */
async function tlsHandshakes(config: StoreConfig): Promise<number> {
  return await withRaw(config, async (c) => {
    const [rows] = await c.query<mysql.RowDataPacket[]>(
      "SHOW GLOBAL STATUS LIKE 'Ssl_finished_accepts'",
    );
    return Number(rows[0].Value);
  });
}

storeTest(
  "MYSQL",
  "TLS verified against the matrix CA stores and lists a record over encrypted connections",
  async () => {
    const t = token();
    const rec = newRecord(`tls ${t}`, "sent over TLS");
    const before = await tlsHandshakes(tls!);
    await withStore(tls!, async (store) => {
      await store.ping();
      await store.add(rec);
      assert.deepEqual(await store.list({ search: t, limit: 10, offset: 0 }), listed(rec));
    });
    // One handshake is the probe's own; the store's connections add at least one more.
    const after = await tlsHandshakes(tls!);
    assert.ok(
      after - before >= 2,
      `expected TLS handshakes from the store (${before} -> ${after})`,
    );
    await withRaw(tls!, async (c) => {
      const [rows] = await c.query<mysql.RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Ssl_version'");
      assert.match(String(rows[0].Value), /^TLSv1\.[23]$/);
    });
  },
  { needs: [tls] },
);

storeTest(
  "MYSQL",
  "a CA that did not sign the server certificate is refused without leaking the URL",
  async () => {
    const wrong = { ...tls!, caCert: await strangerCa() };
    const t0 = Date.now();
    await assert.rejects(open(wrong), (err: Error) => {
      const password = decodeURIComponent(new URL(tls!.url).password);
      assert.ok(!err.message.includes(password), "the error names the password");
      assert.ok(!err.message.includes("mysql://"), "the error names the URL");
      assert.match(err.message, /certificate|self.signed|verify|issuer/i);
      return true;
    });
    assert.ok(Date.now() - t0 < 5_000, "refusal took too long");
  },
  { needs: [tls] },
);

storeTest(
  "MYSQL",
  "the store creates its database and table (utf8mb4_bin) and rows read back through mysql2",
  async (config) => {
    const database = `grand_tour_${token()}`;
    const scratch = onDatabase(config, database);
    const schemas = (c: mysql.Connection) =>
      c.execute<mysql.RowDataPacket[]>(
        "SELECT DEFAULT_CHARACTER_SET_NAME AS cs, DEFAULT_COLLATION_NAME AS co FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
        [database],
      );
    try {
      await withRaw(config, async (c) => assert.deepEqual((await schemas(c))[0], []));
      const rec = newRecord("Straße 😀", "créée par le store");
      await withStore(scratch, (store) => store.add(rec));
      await withRaw(config, async (c) => {
        const [[schema]] = await schemas(c);
        assert.deepEqual({ ...schema }, { cs: "utf8mb4", co: "utf8mb4_bin" });
        const [cols] = await c.execute<mysql.RowDataPacket[]>(
          `SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, COLLATION_NAME AS co
           FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'words'
           ORDER BY ORDINAL_POSITION`,
          [database],
        );
        assert.deepEqual(cols.map((r) => ({ ...r })), [
          { name: "id", type: "char(36)", co: "ascii_bin" },
          { name: "word", type: "varchar(256)", co: "utf8mb4_bin" },
          { name: "definition", type: "varchar(256)", co: "utf8mb4_bin" },
          { name: "created_at", type: "datetime(3)", co: null },
          { name: "search_key", type: `varchar(${MAX_SEARCH_KEY})`, co: "utf8mb4_bin" },
          { name: "updated_at", type: "datetime(3)", co: null },
        ]);
        const [rows] = await c.execute<mysql.RowDataPacket[]>(
          `SELECT id, word, definition, created_at FROM \`${database}\`.words`,
        );
        assert.deepEqual(rows.map((r) => ({ ...r })), [{
          id: rec.id,
          word: rec.word,
          definition: rec.definition,
          created_at: rec.createdAt.replace("T", " ").replace("Z", ""),
        }]);
      });
      // Opening again finds everything in place and keeps the row.
      await withStore(scratch, async (store) => {
        assert.deepEqual(await store.list({ limit: 10, offset: 0 }), listed(rec));
      });
    } finally {
      await withRaw(config, (c) => c.query(`DROP DATABASE IF EXISTS \`${database}\``));
    }
  },
);

storeTest(
  "MYSQL",
  "an added record is in grand_tour.words as other clients see it",
  async (config) => {
    const rec = newRecord(`raw ${token()}`, `it's "there"`);
    await withStore(config, (store) => store.add(rec));
    await withRaw(config, async (c) => {
      const [rows] = await c.execute<mysql.RowDataPacket[]>(
        `SELECT id, word, definition, created_at FROM \`${databaseOf(config)}\`.words WHERE id = ?`,
        [rec.id],
      );
      assert.equal(databaseOf(config), "grand_tour");
      assert.deepEqual(rows.map((r) => ({ ...r })), [{
        id: rec.id,
        word: rec.word,
        definition: rec.definition,
        created_at: rec.createdAt.replace("T", " ").replace("Z", ""),
      }]);
    });
  },
);

storeTest(
  "MYSQL",
  "binary collation: exact round trips; search compares folded keys, LIKE wildcards are literal",
  async (config) => {
    const t = token();
    const longWord = "😀".repeat(256); // 256 code points, 1024 UTF-8 bytes
    const recs = [
      newRecord(`${t} e\u0301cole `, "trailing space and a combining accent"),
      newRecord(`${t} ÉCOLE`, "precomposed capital"),
      newRecord(`100%_${t}\\`, "percent, underscore, backslash"),
      newRecord(longWord, `${t} the longest word`),
    ];
    await withStore(config, async (store) => {
      for (const r of recs) await store.add(r);
      const all = await store.list({ search: t, limit: 10, offset: 0 });
      assert.deepEqual(all, listed(...recs));
      const find = (needle: string) => store.list({ search: fold(needle), limit: 10, offset: 0 });
      // "école" (precomposed, lower case) matches "ÉCOLE" and "e\u0301cole" (NFD) alike…
      assert.deepEqual(await find(`${t} école`), listed(recs[0], recs[1]));
      // …but a bare "e" is not "é": MariaDB's own collations would disagree on these.
      assert.deepEqual(await find(`${t} ecole`), []);
      assert.deepEqual(await find(`%_${t}\\`), listed(recs[2]));
      assert.deepEqual(await find(`__${t}`), []);
      assert.deepEqual(await find(`${t} _`), []);
      // Paging by id within this test's rows.
      assert.deepEqual(
        await store.list({ search: t, limit: 2, offset: 1 }),
        listed(...recs.slice(1, 3)),
      );
    });
  },
);

storeTest(
  "MYSQL",
  "a createdAt that is not ISO-8601 UTC with milliseconds is refused, not reshaped",
  async (config) => {
    const rec = { ...newRecord(`bad time ${token()}`, "x"), createdAt: "2024-01-02 03:04:05" };
    await withStore(config, async (store) => {
      await assert.rejects(store.add(rec), /createdAt/);
      assert.deepEqual(await store.list({ search: rec.word, limit: 10, offset: 0 }), []);
    });
  },
);

storeTest(
  "MYSQL",
  "an unreachable server rejects open quickly and close never rejects",
  async (config) => {
    const u = new URL(config.url);
    u.port = "1";
    const t0 = Date.now();
    await assert.rejects(open({ ...config, url: u.toString() }), (err: Error) => {
      assert.ok(
        !err.message.includes(decodeURIComponent(u.password)),
        "the error names the password",
      );
      return true;
    });
    assert.ok(Date.now() - t0 < 1_500, `open took ${Date.now() - t0} ms`);
    const store = await open(config);
    await store.close();
    await store.close();
    await assert.rejects(store.ping());
  },
);

storeTest(
  "MYSQL",
  "a words table dropped under the running store is created again without a restart, replicas or not",
  async (config) => {
    // The matrix grants the test user `grand_tour_*` scratch databases.
    const database = `grand_tour_drop_${token()}`;
    // With read replicas where the matrix has them: a dropped table fails the primary's ping
    // even while a replica answers, so the store is opened again and creates it.
    const cfg = onDatabase(storeConfig("MYSQL") ?? config, database);
    try {
      await assertRecreatedAfterDrop("MYSQL", () => open(cfg), async () => {
        await withRaw(config, (c) => c.query(`DROP TABLE \`${database}\`.words`));
      });
    } finally {
      await withRaw(config, (c) => c.query(`DROP DATABASE IF EXISTS \`${database}\``));
    }
  },
);

storeTest(
  "MYSQL",
  "a table from before search keys gets the column, and its words their keys, when the store opens",
  async (config) => {
    const t = token();
    const database = `grand_tour_${t}`;
    const before = oldWords(t);
    try {
      await withRaw(config, async (c) => {
        await c.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
        await c.query(`CREATE TABLE \`${database}\`.words (
          id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
          word VARCHAR(256) NOT NULL, definition VARCHAR(256) NOT NULL,
          created_at DATETIME(3) NOT NULL) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
        await c.query(
          `INSERT INTO \`${database}\`.words (id, word, definition, created_at) VALUES ?`,
          [unkeyed(before).map((r) => [r.id, r.word, r.definition, toSql(r.createdAt)])],
        );
      });
      await withStore(
        onDatabase(config, database),
        (store) => assertFoundAfterBackfill(store, t, before),
      );
      await withRaw(config, async (c) => {
        const [rows] = await c.query<mysql.RowDataPacket[]>(
          `SELECT COUNT(*) AS n FROM \`${database}\`.words WHERE search_key IS NULL`,
        );
        assert.equal(Number(rows[0].n), 0);
      });
    } finally {
      await withRaw(config, (c) => c.query(`DROP DATABASE IF EXISTS \`${database}\``));
    }
  },
);

/** `2024-05-06T07:08:09.123Z` as MariaDB's DATETIME(3) text. */
function toSql(iso: string): string {
  return iso.replace("T", " ").replace("Z", "");
}
