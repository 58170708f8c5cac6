/**
 * PostgreSQL through `npm:pg`: a small pool, the table `words` in the database
 * named by the URL path (`grand_tour` by default), created when missing.
 *
 * - Ordering: `ORDER BY words.id` (the uuid column, not the text alias, so the
 *   primary-key index serves each page) compares the 16 bytes, which is
 *   the order of the lowercase hex text, so UUIDv7 ids list in insertion order.
 * - Search: `strpos(search_key, $1) > 0`, a literal substring match of the
 *   folded needle in the folded key the gateway wrote beside the word
 *   (`records.ts`); no LIKE, so `%`, `_` and `\` are ordinary characters, and
 *   no `lower()`, so the server's locale plays no part. A table from before
 *   keys existed gets the column and a backfill when the store opens.
 * - Durability: a write resolves after COMMIT, which the server acknowledges
 *   only once its WAL is flushed (with the default `synchronous_commit = on`).
 * - TLS: when a CA is configured the connection uses TLS and verifies the
 *   server's certificate and name against it; otherwise it is plain.
 *
 * @module
 */
// @ts-types="npm:@types/pg@8.23.1"
import pg from "pg";
import { backfillSearchKeys, MAX_SEARCH_KEY, type Unkeyed } from "./records.ts";
import { parseServerUrl, type ServerTarget } from "./server_url.ts";
import { DEFAULT_DATABASE, settings } from "./postgresql_settings.ts";
import {
  type Positions,
  PrimaryLostSchema,
  ReadRouter,
  type Replica,
  routerOptions,
} from "./replicas.ts";
import type { ListQuery, NewWord, OpenStore, StoreConfig, WordRecord, WordStore } from "./types.ts";

const DEFAULT_PORT = 5432;
/** Server-side limit of one statement; the client gives up 100 ms later (a server that stopped answering). */
const STATEMENT_TIMEOUT_MS = 1_500;
/** Server-side limit of CREATE DATABASE, which copies a template and fsyncs it (once, on first use). */
const CREATE_DATABASE_TIMEOUT_MS = 15_000;
const POOL_SIZE = 10;
/** Any constant: serialises schema creation between gateways starting at once. */
const SCHEMA_LOCK = 0x67745f77; // "gt_w"

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS words (
  id uuid PRIMARY KEY,
  word varchar(256) NOT NULL,
  definition varchar(256) NOT NULL,
  created_at timestamptz NOT NULL,
  search_key varchar(${MAX_SEARCH_KEY}),
  updated_at timestamptz
)`;
/** Tables created before search keys existed. Nullable, so adding it rewrites nothing. */
const ADD_KEY_COLUMN =
  `ALTER TABLE words ADD COLUMN IF NOT EXISTS search_key varchar(${MAX_SEARCH_KEY})`;
/** Tables created before edits existed; null until a word's first edit. */
const ADD_UPDATED_COLUMN = "ALTER TABLE words ADD COLUMN IF NOT EXISTS updated_at timestamptz";

/** A timestamp column as the gateway writes it: ISO-8601 UTC with milliseconds. */
const iso = (column: string) =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

const COLUMNS = `id::text AS id, word, definition,
  ${iso("created_at")} AS created_at, ${iso("updated_at")} AS updated_at`;

const INSERT = `INSERT INTO words (id, word, definition, created_at, search_key)
  VALUES ($1::uuid, $2, $3, $4::timestamptz, $5)`;
/** A bulk insert: one statement for a whole batch of records, as arrays. */
const INSERT_MANY = `INSERT INTO words (id, word, definition, created_at, search_key)
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])`;
const PING = "SELECT 1 FROM words LIMIT 0";
// `words.id > $1` seeks through the primary key: a page after any id costs what the first does.
const GET = `SELECT ${COLUMNS} FROM words WHERE id = $1::uuid`;
/** Compare-and-set on the revision: never creates a row, and a changed or deleted row is left alone. */
const REPLACE = `UPDATE words SET word = $1, definition = $2, search_key = $3,
  updated_at = $4::timestamptz
  WHERE id = $5::uuid AND coalesce(updated_at, created_at) = $6::timestamptz`;
const REMOVE =
  "DELETE FROM words WHERE id = $1::uuid AND coalesce(updated_at, created_at) = $2::timestamptz";
const PAGE = `SELECT ${COLUMNS} FROM words WHERE words.id > $1::uuid
  ORDER BY words.id LIMIT $2 OFFSET $3`;
const SEARCH =
  `SELECT ${COLUMNS} FROM words WHERE words.id > $1::uuid AND strpos(search_key, $2) > 0
  ORDER BY words.id LIMIT $3 OFFSET $4`;
/** Words without a key after `$1` in id order: the backfill walks the primary key once. */
const UNKEYED = `SELECT id::text AS id, word, definition FROM words
  WHERE words.id > $1::uuid AND search_key IS NULL ORDER BY words.id LIMIT $2`;
const FIRST_ID = "00000000-0000-0000-0000-000000000000";
/** The primary's WAL position after a commit: a standby that replayed it has the write. */
const WRITTEN_LSN = "SELECT pg_current_wal_lsn()::text AS lsn";
/** How far a hot standby has replayed the WAL it received. */
const REPLAYED_LSN = "SELECT pg_last_wal_replay_lsn()::text AS lsn";
const SET_KEYS = `UPDATE words SET search_key = k.key
  FROM unnest($1::uuid[], $2::text[]) AS k(id, key) WHERE words.id = k.id`;

function poolConfig(
  target: ServerTarget,
  config: StoreConfig,
  database: string,
  timeoutMs: number,
): pg.PoolConfig {
  return {
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    database,
    ssl: config.caCert ? { ca: config.caCert, rejectUnauthorized: true } : false,
    max: POOL_SIZE,
    connectionTimeoutMillis: config.connectTimeoutMs,
    idleTimeoutMillis: 10_000,
    allowExitOnIdle: true,
    keepAlive: true,
    statement_timeout: timeoutMs,
    query_timeout: timeoutMs + 100,
    application_name: "grand-tour",
  };
}

function newPool(
  target: ServerTarget,
  config: StoreConfig,
  database: string,
  timeoutMs = STATEMENT_TIMEOUT_MS,
): pg.Pool {
  const pool = new pg.Pool(poolConfig(target, config, database, timeoutMs));
  // An idle connection that dies (server restart) must not crash the process;
  // the next query opens a fresh one or rejects.
  pool.on("error", () => {});
  return pool;
}

function codeOf(e: unknown): string | undefined {
  return (e as { code?: string } | null)?.code;
}

/** Creates the database through the maintenance database `postgres`; a concurrent creation is fine. */
async function createDatabase(target: ServerTarget, config: StoreConfig): Promise<void> {
  const admin = newPool(target, config, "postgres", CREATE_DATABASE_TIMEOUT_MS);
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(target.database)}`);
  } catch (e) {
    // duplicate_database, or the catalog's unique index: another gateway was first.
    if (codeOf(e) !== "42P04" && codeOf(e) !== "23505") throw e;
  } finally {
    await admin.end().catch(() => {});
  }
}

/** Creates the table when missing, serialised by an advisory lock so concurrent starts cannot collide. */
async function createSchema(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  const ignore = () => {};
  client.on("error", ignore);
  let failed: unknown;
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock($1)", [SCHEMA_LOCK]);
    await client.query(CREATE_TABLE);
    await client.query(ADD_KEY_COLUMN);
    await client.query(ADD_UPDATED_COLUMN);
    await client.query("COMMIT");
  } catch (e) {
    failed = e;
    await client.query("ROLLBACK").catch(() => {});
    throw e;
  } finally {
    client.removeListener("error", ignore);
    client.release(failed instanceof Error ? failed : undefined);
  }
}

interface Row {
  id: string;
  word: string;
  definition: string;
  created_at: string;
  updated_at: string | null;
}

const toRecord = (row: Row): WordRecord => ({
  id: row.id,
  word: row.word,
  definition: row.definition,
  createdAt: row.created_at,
  ...(row.updated_at === null ? {} : { updatedAt: row.updated_at }),
});

/** A WAL position `X/Y` (two hex halves) as one number, so positions compare. */
export function lsn(text: string): bigint {
  const [hi, lo] = text.split("/");
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

/** WAL positions: a standby that replayed up to `applied` has every commit before it. */
const walPositions: Positions<bigint> = {
  covers: (applied, target) => applied >= target,
  later: (a, b) => a > b ? a : b,
};

/** A hot standby named in `POSTGRESQL_READ_URL`, with its replay position. */
function openReplica(url: string, config: StoreConfig): Replica<bigint, pg.Pool> {
  const target = parseServerUrl(settings, url, {
    port: DEFAULT_PORT,
    database: DEFAULT_DATABASE,
  }, "POSTGRESQL_READ_URL");
  const pool = newPool(target, config, target.database);
  return {
    reader: pool,
    async applied() {
      const { rows } = await pool.query<{ lsn: string | null }>(REPLAYED_LSN);
      // null: not a standby (a primary named as a replica); it has every write it answers for.
      if (rows[0].lsn === null) throw new Error("not a hot standby");
      return lsn(rows[0].lsn);
    },
    close: () => pool.end().catch(() => {}),
  };
}

/** Connects, creates the database and table when missing, and returns the store. */
export const open: OpenStore = async (config) => {
  const target = parseServerUrl(settings, config.url, {
    port: DEFAULT_PORT,
    database: DEFAULT_DATABASE,
  });
  let pool = newPool(target, config, target.database);
  try {
    try {
      await createSchema(pool);
    } catch (e) {
      if (codeOf(e) !== "3D000") throw e; // invalid_catalog_name: the database is missing
      await pool.end().catch(() => {});
      await createDatabase(target, config);
      pool = newPool(target, config, target.database);
      await createSchema(pool);
    }
    await backfillSearchKeys(
      async (after, n) => (await pool.query<Unkeyed>(UNKEYED, [after ?? FIRST_ID, n])).rows,
      async (keys) => {
        await pool.query(SET_KEYS, [keys.map((k) => k.id), keys.map((k) => k.searchKey)]);
      },
    );
  } catch (e) {
    await pool.end().catch(() => {});
    throw e;
  }
  const primary = pool;
  const replicas = (config.readUrls ?? []).map((url) => openReplica(url, config));
  const router = new ReadRouter(
    primary,
    replicas,
    walPositions,
    routerOptions("POSTGRESQL", config),
  );
  /** Where the primary's WAL is now: after a commit, past it. */
  const walNow = async () => lsn((await primary.query<{ lsn: string }>(WRITTEN_LSN)).rows[0].lsn);
  /**
   * Runs a write on the primary and answers the rows it changed; when it
   * changed any, tells the router where the WAL is, for read-your-writes on
   * replicas (a failure there does not fail the committed write).
   */
  const write = async (sql: string, values: unknown[]): Promise<number> => {
    const afterWrite = router.beforeWrite();
    const { rowCount } = await primary.query(sql, values);
    if (rowCount) await afterWrite(walNow);
    return rowCount ?? 0;
  };

  let closed = false;
  const store: WordStore = {
    async add(r: NewWord) {
      await write(INSERT, [r.id, r.word, r.definition, r.createdAt, r.searchKey]);
    },
    async addMany(rs: NewWord[]) {
      await write(INSERT_MANY, [
        rs.map((r) => r.id),
        rs.map((r) => r.word),
        rs.map((r) => r.definition),
        rs.map((r) => r.createdAt),
        rs.map((r) => r.searchKey),
      ]);
    },
    // Edits read the word they compare-and-set: from the primary, the only node sure to have
    // another gateway's latest revision.
    async get(id: string) {
      const { rows } = await primary.query<Row>(GET, [id]);
      return rows.length ? toRecord(rows[0]) : undefined;
    },
    async replace(r: NewWord, revision: string) {
      const values = [r.word, r.definition, r.searchKey, r.updatedAt, r.id, revision];
      return await write(REPLACE, values) === 1;
    },
    async remove(id: string, revision: string) {
      return await write(REMOVE, [id, revision]) === 1;
    },
    list({ search, limit, offset, after = FIRST_ID }: ListQuery) {
      return router.read(async (pool) => {
        const result = search
          ? await pool.query<Row>(SEARCH, [after, search, limit, offset])
          : await pool.query<Row>(PAGE, [after, limit, offset]);
        return result.rows.map(toRecord);
      });
    },
    ping() {
      // Touches the table: one dropped under a running gateway fails the ping, and the reconnect recreates it.
      return router.ping(async () => {
        await primary.query(PING).catch((e) => {
          // undefined_table, invalid_catalog_name: reopening creates them again.
          if (codeOf(e) === "42P01" || codeOf(e) === "3D000") {
            throw new PrimaryLostSchema("POSTGRESQL: the words table is gone", { cause: e });
          }
          throw e;
        });
      });
    },
    nodes: () => router.nodes(),
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([router.close(), primary.end().catch(() => {})]);
    },
  };
  return store;
};
