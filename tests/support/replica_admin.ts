/**
 * What the read-replica store tests (and the fault suite) need of a store's
 * primary and first replica beyond the store itself: how many reads each has
 * served, from the database's own statistics (never the gateway's), and
 * holding replication back to inject lag (the matrix pair's `holdBack`,
 * `support/replicas.ts`).
 *
 * @module
 */
import pg from "pg";
import mysql from "mysql2/promise";
import { Redis } from "ioredis";
import { mysqlPair, type Pair, postgresPair, redisPair } from "./replicas.ts";
import type { StoreConfig } from "../../stores/types.ts";

/** Reads served so far by each node, as the databases count them. */
export interface NodeReads {
  primary: number;
  replica: number;
}

/** The admin side of one store's primary and first replica. */
export interface ReplicaAdmin {
  /** Reads of the store's words served by each node so far. */
  reads(): Promise<NodeReads>;
  /** Holds the replica's replication back (on) or lets it go (off). */
  lag(on: boolean): Promise<void>;
  close(): Promise<void>;
}

type Counter = (url: string, caCert?: string) => Promise<number>;

/** PostgreSQL: scans of `words` (sequential and index); a session's count shows once it ends. */
const postgresReads: Counter = async (url, caCert) => {
  const ssl = caCert ? { ca: caCert, rejectUnauthorized: true } : false;
  const client = new pg.Client({ connectionString: url, ssl });
  await client.connect();
  try {
    const r = await client.query(
      "SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0)::int8 AS n " +
        "FROM pg_stat_user_tables WHERE relname = 'words'",
    );
    return Number(r.rows[0].n);
  } finally {
    await client.end();
  }
};

/** MariaDB: prepared statements executed (the store's reads; its position queries are plain). */
const mysqlReads: Counter = async (url, caCert) => {
  const u = new URL(url);
  const conn = await mysql.createConnection({
    host: u.hostname,
    port: Number(u.port),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    ssl: caCert ? { ca: caCert, rejectUnauthorized: true } : undefined,
  });
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      "SHOW GLOBAL STATUS LIKE 'Com_stmt_execute'",
    );
    return Number(rows[0]?.Value ?? 0);
  } finally {
    await conn.end();
  }
};

/** Redis: scripts run (a page or a search is EVALSHA, EVAL on a first call). */
const redisReads: Counter = async (url, caCert) => {
  const client = new Redis(url, {
    ...(caCert ? { tls: { ca: caCert, rejectUnauthorized: true } } : {}),
    maxRetriesPerRequest: 0,
  });
  try {
    const stats = await client.info("commandstats");
    const calls = (cmd: string) =>
      Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, "m").exec(stats)?.[1] ?? 0);
    return calls("evalsha") + calls("eval");
  } finally {
    client.disconnect();
  }
};

const ADMIN: Record<string, { reads: Counter; pair: typeof postgresPair }> = {
  POSTGRESQL: { reads: postgresReads, pair: postgresPair },
  MYSQL: { reads: mysqlReads, pair: mysqlPair },
  REDIS: { reads: redisReads, pair: redisPair },
};

/**
 * Reads of the store's words served so far by the one node at `url`, as its
 * own statistics count them (the counters above; each restarts at zero with
 * its server).
 */
export function countReads(store: string, url: string, caCert?: string): Promise<number> {
  return ADMIN[store].reads(url, caCert);
}

/** The admin side of `store` as `config` (with `readUrls`) names it. */
export async function replicaAdmin(store: string, config: StoreConfig): Promise<ReplicaAdmin> {
  const { reads, pair: openPair } = ADMIN[store];
  const replicaUrl = config.readUrls![0];
  const pair: Pair = await openPair({ primaryUrl: config.url, replicaUrl, caCert: config.caCert });
  return {
    reads: async () => ({
      primary: await reads(config.url, config.caCert),
      replica: await reads(replicaUrl, config.caCert),
    }),
    lag: (on) => pair.holdBack(on),
    close: () => pair.close(),
  };
}
