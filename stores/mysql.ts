/**
 * The MYSQL store: MySQL-protocol servers (the matrix runs MariaDB) through a
 * `mysql2` connection pool.
 *
 * On open it creates the database named in the URL (`grand_tour` by default)
 * and a `words` table in `utf8mb4_bin`, so emoji, combining marks and case
 * round-trip exactly and nothing is accent- or case-folded when compared.
 * Every statement is a server-side prepared statement. Search looks for the
 * folded needle in `search_key`, the folded text the gateway writes beside
 * each word (`records.ts`), with `LOCATE` under the binary collation (never
 * `LIKE`, never `LOWER`): `%`, `_` and `\` are plain characters and MariaDB's
 * own case mapping plays no part. A table from before keys existed gets the
 * column and a backfill when the store opens.
 *
 * @module
 */
import mysql from "mysql2/promise";
import { backfillSearchKeys, MAX_SEARCH_KEY, type Unkeyed } from "./records.ts";
import type { ListQuery, NewWord, OpenStore, StoreConfig, WordRecord, WordStore } from "./types.ts";
import { deadline } from "./deadline.ts";
import { parseServerUrl, type ServerTarget } from "./server_url.ts";
import { settings } from "./mysql_settings.ts";
import {
  type Positions,
  PrimaryLostSchema,
  ReadRouter,
  type Replica,
  routerOptions,
} from "./replicas.ts";

const DEFAULT_DATABASE = "grand_tour";
const DEFAULT_PORT = 3306;
const POOL_SIZE = 10;
/** `YYYY-MM-DDTHH:mm:ss.sssZ`, the only `createdAt` form the gateway builds. */
const ISO_UTC = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2}\.\d{3})Z$/;
/** `YYYY-MM-DD HH:mm:ss.sss`, how `DATETIME(3)` comes back with `dateStrings`. */
/** MariaDB leaves out the fraction of a DATETIME(3) that falls on a whole second. */
const SQL_DATETIME = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?$/;

/** The folded text search compares, sized for the longest key (`records.ts`). */
const KEY_COLUMN =
  `search_key VARCHAR(${MAX_SEARCH_KEY}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL`;

/** Reads `mysql://user:password@host:port/database`; errors never echo the URL. */
function parseUrl(raw: string, variable = "MYSQL_URL"): ServerTarget {
  const target = parseServerUrl(settings, raw, {
    port: DEFAULT_PORT,
    database: DEFAULT_DATABASE,
  }, variable);
  // The name is spliced into DDL as a quoted identifier, so keep it plain.
  if (!/^[A-Za-z0-9_$]{1,64}$/.test(target.database)) {
    throw new Error("MYSQL: the database name may only contain letters, digits, _ and $");
  }
  return target;
}

/** `2024-05-06T07:08:09.123Z` -> `2024-05-06 07:08:09.123`, without going through `Date`. */
function toSqlDatetime(iso: string): string {
  const m = ISO_UTC.exec(iso);
  if (!m) throw new Error("MYSQL: createdAt must be an ISO-8601 UTC time with milliseconds");
  return `${m[1]} ${m[2]}`;
}

/** The inverse of {@linkcode toSqlDatetime}. */
function fromSqlDatetime(value: unknown): string {
  const m = typeof value === "string" ? SQL_DATETIME.exec(value) : null;
  if (!m) throw new Error("MYSQL: unexpected created_at value in the words table");
  return `${m[1]}T${m[2]}.${(m[3] ?? "").padEnd(3, "0").slice(0, 3)}Z`;
}

interface WordRow extends mysql.RowDataPacket {
  id: string;
  word: string;
  definition: string;
  created_at: string;
  updated_at: string | null;
}

function toRecord(r: WordRow): WordRecord {
  return {
    id: r.id,
    word: r.word,
    definition: r.definition,
    createdAt: fromSqlDatetime(r.created_at),
    ...(r.updated_at === null ? {} : { updatedAt: fromSqlDatetime(r.updated_at) }),
  };
}

/** Null until a word's first edit. */
const UPDATED_COLUMN = "updated_at DATETIME(3) NULL";

/** A MariaDB GTID position (`domain-server-seq`, one per replication domain): seq by domain. */
export type GtidPosition = ReadonlyMap<number, bigint>;

/** Parses `0-1-100,1-2-7` (empty: no GTID yet). */
export function gtidPosition(text: string): GtidPosition {
  const out = new Map<number, bigint>();
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [domain, , seq] = part.split("-");
    out.set(Number(domain), BigInt(seq));
  }
  return out;
}

/** GTID positions: a replica that applied `applied` has every transaction up to `target`, per domain. */
const gtidPositions: Positions<GtidPosition> = {
  covers: (applied, target) =>
    [...target].every(([domain, seq]) => (applied.get(domain) ?? -1n) >= seq),
  later(a, b) {
    const out = new Map(a);
    for (const [domain, seq] of b) if ((out.get(domain) ?? -1n) < seq) out.set(domain, seq);
    return out;
  },
};

/** One server's pool, and the one way a statement runs on it: bounded, the connection destroyed on expiry. */
interface Node {
  withConnection<T>(
    ms: number,
    work: (conn: mysql.PoolConnection) => Promise<T>,
    after?: After<T>,
  ): Promise<T>;
  close(): Promise<void>;
}

/**
 * What runs after `work` succeeded, on the same connection, outside its
 * bound; it must not reject, and `destroy` drops the connection (a statement
 * left running on it) instead of handing it back to the pool.
 */
type After<T> = (conn: mysql.PoolConnection, result: T, destroy: () => void) => Promise<void>;

/** A pool on `target` (no default database: the store creates it first). */
function connect(target: ServerTarget, config: StoreConfig): Node {
  const pool = mysql.createPool({
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    // No default database: the store creates it first.
    connectionLimit: POOL_SIZE,
    maxIdle: POOL_SIZE,
    idleTimeout: 60_000,
    waitForConnections: true,
    queueLimit: 0,
    connectTimeout: config.connectTimeoutMs,
    enableKeepAlive: true,
    charset: "utf8mb4",
    timezone: "Z",
    dateStrings: true,
    multipleStatements: false,
    ssl: config.caCert === undefined ? undefined : {
      ca: config.caCert,
      rejectUnauthorized: true,
      verifyIdentity: true,
    },
  });
  // Every new connection works in UTC and strict mode before its first statement.
  pool.pool.on("connection", (conn) => {
    // mysql2 listens for a pooled connection's `error` once: a second one (a write to a connection
    // it already dropped, a socket error after our timeout destroyed it) would be thrown from a
    // socket callback, where only the process-wide handler sees it.
    conn.on("error", () => {});
    conn.query(
      "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,NO_ENGINE_SUBSTITUTION,ERROR_FOR_DIVISION_BY_ZERO'",
      () => {/* a failure here also fails the statement queued behind it */},
    );
  });

  /**
   * Runs `work` on a pooled connection within `ms`, then `after`. mysql2's
   * own query timeout leaves the connection checked out, so on expiry the
   * connection is destroyed here (and a connection acquired too late is
   * handed back).
   */
  const withConnection = async <T>(
    ms: number,
    work: (conn: mysql.PoolConnection) => Promise<T>,
    after?: After<T>,
  ): Promise<T> => {
    let abandoned = false;
    const acquiring = pool.getConnection();
    const conn = await deadline(
      acquiring,
      ms + config.connectTimeoutMs,
      "MYSQL: no connection became available in time",
      () => {
        abandoned = true;
        acquiring.then((c) => c.release(), () => {});
      },
    );
    let destroyed = false;
    const destroy = () => {
      destroyed = true;
      conn.destroy();
    };
    try {
      const result = await deadline(work(conn), ms, "MYSQL: the statement timed out", destroy);
      await after?.(conn, result, destroy);
      return result;
    } finally {
      if (!destroyed && !abandoned) conn.release();
    }
  };

  const closePool = async (): Promise<void> => {
    try {
      await deadline(pool.end(), 2_000, "MYSQL: close timed out", () => {});
    } catch {
      // close never rejects
    }
  };
  return { withConnection, close: closePool };
}

/** Opens a pool, creates the database and the `words` table when missing. */
export const open: OpenStore = async (config: StoreConfig): Promise<WordStore> => {
  const target = parseUrl(config.url);
  // A hung server must surface as an error, not as a call that never ends.
  const statementTimeoutMs = Math.max(1_000, config.connectTimeoutMs);
  const ddlTimeoutMs = Math.max(5_000, config.connectTimeoutMs);
  const table = `\`${target.database}\`.\`words\``;
  const unkeyedSql = `SELECT id, word, definition FROM ${table}
    WHERE id > ? AND search_key IS NULL ORDER BY id LIMIT ?`;

  const primary = connect(target, config);
  const { withConnection } = primary;
  const closePool = primary.close;

  try {
    await withConnection(ddlTimeoutMs, async (conn) => {
      await conn.query(
        `CREATE DATABASE IF NOT EXISTS \`${target.database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
      );
      await conn.query(`CREATE TABLE IF NOT EXISTS ${table} (
        id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
        word VARCHAR(256) NOT NULL,
        definition VARCHAR(256) NOT NULL,
        created_at DATETIME(3) NOT NULL,
        ${KEY_COLUMN},
        ${UPDATED_COLUMN}
      ) ENGINE = InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
      // A table from an earlier version (MySQL has no ADD COLUMN IF NOT EXISTS).
      const [cols] = await conn.query<mysql.RowDataPacket[]>(
        `SELECT column_name AS name FROM information_schema.columns
         WHERE table_schema = ? AND table_name = 'words'`,
        [target.database],
      );
      const has = new Set(cols.map((c) => String(c.name)));
      for (const [name, column] of [["search_key", KEY_COLUMN], ["updated_at", UPDATED_COLUMN]]) {
        if (!has.has(name)) await conn.query(`ALTER TABLE ${table} ADD COLUMN ${column}`);
      }
    });
    if (config.readUrls?.length) {
      // Read-your-writes compares MariaDB's GTIDs (@@last_gtid, @@gtid_slave_pos); MySQL has
      // neither, and its writes would fail once the position lookup did.
      const [rows] = await withConnection(
        statementTimeoutMs,
        (conn) => conn.query<mysql.RowDataPacket[]>("SELECT VERSION() AS v"),
      );
      if (!/mariadb/i.test(String(rows[0]?.v ?? ""))) {
        throw new Error("MYSQL_READ_URL works with MariaDB only: this server is MySQL");
      }
    }
    await backfillSearchKeys(
      async (after, n) => {
        const [rows] = await withConnection(
          statementTimeoutMs,
          (conn) =>
            conn.execute<(Unkeyed & mysql.RowDataPacket)[]>(unkeyedSql, [after ?? "", String(n)]),
        );
        return rows;
      },
      async (keys) => {
        const values = keys.map(() => "SELECT ? AS id, ? AS k").join(" UNION ALL ");
        await withConnection(
          statementTimeoutMs,
          (conn) =>
            conn.execute(
              `UPDATE ${table} AS w JOIN (${values}) AS v ON w.id = v.id SET w.search_key = v.k`,
              keys.flatMap((k) => [k.id, k.searchKey]),
            ),
        );
      },
    );
  } catch (err) {
    await closePool();
    throw err;
  }

  const replicas = (config.readUrls ?? []).map((url): Replica<GtidPosition, Node> => {
    const node = connect(parseUrl(url, "MYSQL_READ_URL"), config);
    return {
      reader: node,
      applied: () =>
        node.withConnection(statementTimeoutMs, async (conn) => {
          const [rows] = await conn.query<mysql.RowDataPacket[]>(
            "SELECT @@gtid_slave_pos AS pos",
          );
          return gtidPosition(String(rows[0].pos ?? ""));
        }),
      close: node.close,
    };
  });
  const router = new ReadRouter<GtidPosition, Node>(
    primary,
    replicas,
    gtidPositions,
    routerOptions("MYSQL", config),
  );
  /**
   * Runs a write on the primary; when it `changed` anything, tells the router
   * the GTID it was committed as (read on the same connection, after the
   * write's own bound), for read-your-writes. A failure there does not fail
   * the committed write.
   */
  const write = <T>(
    ms: number,
    work: (conn: mysql.PoolConnection) => Promise<T>,
    changed: (result: T) => boolean = () => true,
  ): Promise<T> => {
    const afterWrite = router.beforeWrite();
    return withConnection(ms, work, async (conn, result, destroy) => {
      if (!changed(result)) return;
      await afterWrite(async () => {
        const [rows] = await conn.query<mysql.RowDataPacket[]>("SELECT @@last_gtid AS gtid");
        return gtidPosition(String(rows[0].gtid ?? ""));
      }, destroy);
    });
  };

  const insertSql =
    `INSERT INTO ${table} (id, word, definition, created_at, search_key) VALUES (?, ?, ?, ?, ?)`;
  // `id > ?` seeks through the primary key: a page after any id costs what the first does.
  const columns = "id, word, definition, created_at, updated_at";
  const listSql = `SELECT ${columns} FROM ${table} WHERE id > ? ORDER BY id LIMIT ? OFFSET ?`;
  const searchSql = `SELECT ${columns} FROM ${table}
    WHERE id > ? AND LOCATE(?, search_key) > 0 ORDER BY id LIMIT ? OFFSET ?`;
  const getSql = `SELECT ${columns} FROM ${table} WHERE id = ?`;
  // Compare-and-set on the revision: never creates a row; a changed or deleted row is left alone.
  const replaceSql = `UPDATE ${table} SET word = ?, definition = ?, search_key = ?, updated_at = ?
    WHERE id = ? AND COALESCE(updated_at, created_at) = ?`;
  const removeSql = `DELETE FROM ${table} WHERE id = ? AND COALESCE(updated_at, created_at) = ?`;
  /** Runs one statement and answers whether it changed exactly one row. */
  const changedOne = async (sql: string, values: string[]): Promise<boolean> => {
    const [result] = await write(
      statementTimeoutMs,
      (conn) => conn.execute<mysql.ResultSetHeader>(sql, values),
      ([r]) => r.affectedRows === 1,
    );
    return result.affectedRows === 1;
  };

  return {
    async add(r: NewWord): Promise<void> {
      const createdAt = toSqlDatetime(r.createdAt);
      // Autocommit with innodb_flush_log_at_trx_commit=1: the OK packet means durable.
      await write(
        statementTimeoutMs,
        (conn) => conn.execute(insertSql, [r.id, r.word, r.definition, createdAt, r.searchKey]),
      );
    },

    async addMany(rs: NewWord[]): Promise<void> {
      // One multi-row INSERT (the text protocol escapes the nested arrays).
      const rows = rs.map((
        r,
      ) => [r.id, r.word, r.definition, toSqlDatetime(r.createdAt), r.searchKey]);
      await write(
        ddlTimeoutMs,
        (conn) =>
          conn.query(
            `INSERT INTO ${table} (id, word, definition, created_at, search_key) VALUES ?`,
            [rows],
          ),
      );
    },

    async list(query: ListQuery): Promise<WordRecord[]> {
      // LIMIT/OFFSET are bound as strings: the binary protocol would send JS
      // numbers as DOUBLE, which the server refuses there.
      const page = [String(query.limit), String(query.offset)];
      const after = query.after ?? "";
      const needle = query.search || undefined;
      const [rows] = await router.read((node) =>
        node.withConnection(
          statementTimeoutMs,
          (conn) =>
            needle === undefined
              ? conn.execute<WordRow[]>(listSql, [after, ...page])
              : conn.execute<WordRow[]>(searchSql, [after, needle, ...page]),
        )
      );
      return rows.map(toRecord);
    },

    // Edits read the word they compare-and-set: from the primary, the only node sure to have
    // another gateway's latest revision.
    async get(id: string): Promise<WordRecord | undefined> {
      const [rows] = await withConnection(
        statementTimeoutMs,
        (conn) => conn.execute<WordRow[]>(getSql, [id]),
      );
      return rows.length ? toRecord(rows[0]) : undefined;
    },

    replace(r: NewWord, revision: string): Promise<boolean> {
      return changedOne(replaceSql, [
        r.word,
        r.definition,
        r.searchKey,
        toSqlDatetime(r.updatedAt!),
        r.id,
        toSqlDatetime(revision),
      ]);
    },

    remove(id: string, revision: string): Promise<boolean> {
      return changedOne(removeSql, [id, toSqlDatetime(revision)]);
    },

    ping(): Promise<void> {
      // Touches the table: one dropped under a running gateway fails the ping, and the reconnect recreates it.
      return router.ping(async () => {
        await withConnection(
          statementTimeoutMs,
          (conn) => conn.query(`SELECT 1 FROM ${table} LIMIT 0`),
        ).catch((e) => {
          // ER_NO_SUCH_TABLE, ER_BAD_DB_ERROR: reopening creates them again.
          const errno = (e as { errno?: number }).errno;
          if (errno === 1146 || errno === 1049) {
            throw new PrimaryLostSchema("MYSQL: the words table is gone", { cause: e });
          }
          throw e;
        });
      });
    },

    nodes: () => router.nodes(),

    async close(): Promise<void> {
      await Promise.all([router.close(), closePool()]);
    },
  };
};
