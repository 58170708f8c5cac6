/**
 * One primary/replica pair of the matrix's cluster topology, through the
 * drivers the gateway uses (npm:pg, npm:mysql2, ioredis): write on the
 * primary, read on the replica, try to write on the replica, read the
 * replica's own read counters, and hold replication back (lag) with the
 * logins the matrix documents for it: the matrix user, no superuser.
 *
 * @module
 */
import pg from "pg";
import mysql from "mysql2/promise";
import { Redis } from "ioredis";
import { MATRIX } from "../../scripts/matrix/types.ts";

/** Where a pair is: the primary's URL, the replica's URL, the CA (TLS, verified) when set. */
export interface PairConfig {
  primaryUrl: string;
  replicaUrl: string;
  caCert?: string;
}

/** Both ends of one pair, open. */
export interface Pair {
  /** Writes `key` = `value` on the primary. */
  write(key: string, value: string): Promise<void>;
  /** Reads `key` on the replica (undefined when it is not there yet). */
  read(key: string): Promise<string | undefined>;
  /** Tries to write on the replica; resolves to the error it raised (undefined if it wrote). */
  writeOnReplica(key: string, value: string): Promise<Error | undefined>;
  /** The replica's own count of reads so far, from its statistics. */
  replicaReads(): Promise<number>;
  /** True when the replica connection is TLS. */
  replicaTls(): Promise<boolean>;
  /** Holds replication back (on) or lets it go on (off), as the matrix user on the replica. */
  holdBack(on: boolean): Promise<void>;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** PostgreSQL: table `matrix_replica_probe`; lag by `recovery_min_apply_delay`. */
export async function postgresPair(c: PairConfig): Promise<Pair> {
  const ssl = c.caCert ? { ca: c.caCert, rejectUnauthorized: true } : false;
  const primary = new pg.Client({ connectionString: c.primaryUrl, ssl });
  const replica = new pg.Client({ connectionString: c.replicaUrl, ssl });
  await primary.connect();
  await replica.connect();
  await primary.query(
    "CREATE TABLE IF NOT EXISTS matrix_replica_probe (k text PRIMARY KEY, v text NOT NULL)",
  );
  return {
    write: async (k, v) => {
      await primary.query("INSERT INTO matrix_replica_probe VALUES ($1, $2)", [k, v]);
    },
    read: async (k) => {
      try {
        const r = await replica.query("SELECT v FROM matrix_replica_probe WHERE k = $1", [k]);
        return r.rows[0]?.v;
      } catch (e) {
        // The table itself may not have been replayed yet.
        if ((e as { code?: string }).code === "42P01") return undefined;
        throw e;
      }
    },
    writeOnReplica: (k, v) =>
      replica.query("INSERT INTO matrix_replica_probe VALUES ($1, $2)", [k, v]).then(
        () => undefined,
        (e) => e as Error,
      ),
    replicaReads: async () => {
      // A backend reports its counters when idle or at exit; a fresh client sees the latest.
      const fresh = new pg.Client({ connectionString: c.replicaUrl, ssl });
      await fresh.connect();
      try {
        const r = await fresh.query(
          "SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0)::int AS n " +
            "FROM pg_stat_user_tables WHERE relname = 'matrix_replica_probe'",
        );
        return r.rows[0].n;
      } finally {
        await fresh.end();
      }
    },
    replicaTls: async () =>
      (await replica.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).rows[0]
        .ssl === true,
    holdBack: async (on) => {
      // The commits stay unapplied for an hour, until the delay is reset.
      await replica.query(
        on
          ? "ALTER SYSTEM SET recovery_min_apply_delay = '1h'"
          : "ALTER SYSTEM RESET recovery_min_apply_delay",
      );
      await replica.query("SELECT pg_reload_conf()");
      // The startup process re-reads the setting on its own, a moment later.
      await sleep(1_000);
    },
    close: async () => {
      await primary.end();
      await replica.end();
    },
  };
}

function mysqlOptions(url: string, caCert?: string): mysql.ConnectionOptions {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    connectTimeout: 2_000,
    ssl: caCert ? { ca: caCert, rejectUnauthorized: true, verifyIdentity: true } : undefined,
  };
}

/** MariaDB: table `grand_tour_replicas.probe`; lag by `CHANGE MASTER TO MASTER_DELAY`. */
export async function mysqlPair(c: PairConfig): Promise<Pair> {
  const primary = await mysql.createConnection(mysqlOptions(c.primaryUrl, c.caCert));
  const replica = await mysql.createConnection(mysqlOptions(c.replicaUrl, c.caCert));
  await primary.query("CREATE DATABASE IF NOT EXISTS grand_tour_replicas");
  await primary.query(
    "CREATE TABLE IF NOT EXISTS grand_tour_replicas.probe " +
      "(k VARCHAR(64) PRIMARY KEY, v TEXT NOT NULL) ENGINE=InnoDB",
  );
  const status = async (name: string) => {
    const [rows] = await replica.query<mysql.RowDataPacket[]>("SHOW GLOBAL STATUS LIKE ?", [name]);
    return Number(rows[0]?.Value ?? 0);
  };
  const slave = async (sql: string) => {
    await replica.query("STOP SLAVE");
    await replica.query(sql);
    await replica.query("START SLAVE");
  };
  return {
    write: async (k, v) => {
      await primary.query("INSERT INTO grand_tour_replicas.probe VALUES (?, ?)", [k, v]);
    },
    read: async (k) => {
      try {
        const [rows] = await replica.query<mysql.RowDataPacket[]>(
          "SELECT v FROM grand_tour_replicas.probe WHERE k = ?",
          [k],
        );
        return rows[0]?.v;
      } catch (e) {
        // The database or table may not have been replicated yet.
        if ([1049, 1146].includes((e as { errno?: number }).errno ?? 0)) return undefined;
        throw e;
      }
    },
    writeOnReplica: (k, v) =>
      replica.query("INSERT INTO grand_tour_replicas.probe VALUES (?, ?)", [k, v]).then(
        () => undefined,
        (e) => e as Error,
      ),
    replicaReads: () => status("Com_select"),
    replicaTls: async () => {
      const [rows] = await replica.query<mysql.RowDataPacket[]>(
        "SHOW SESSION STATUS LIKE 'Ssl_cipher'",
      );
      return (rows[0]?.Value ?? "") !== "";
    },
    holdBack: (on) => slave(`CHANGE MASTER TO MASTER_DELAY = ${on ? 3600 : 0}`),
    close: async () => {
      await primary.end();
      await replica.end();
    },
  };
}

/** Redis: keys `matrix:replica-probe:*` in database 14 (expiring); lag by `REPLICAOF` a dead port. */
export function redisPair(c: PairConfig): Promise<Pair> {
  const open = (url: string) => {
    const u = new URL(url);
    u.pathname = "/14";
    return new Redis(u.toString(), {
      ...(c.caCert ? { tls: { ca: c.caCert, rejectUnauthorized: true } } : {}),
      connectTimeout: 2_000,
      maxRetriesPerRequest: 0,
    });
  };
  const primary = open(c.primaryUrl);
  const replica = open(c.replicaUrl);
  const key = (k: string) => `matrix:replica-probe:${k}`;
  const info = async (section: string) => await replica.info(section);
  return Promise.resolve({
    write: async (k, v) => {
      await primary.set(key(k), v, "EX", 600);
    },
    read: async (k) => (await replica.get(key(k))) ?? undefined,
    writeOnReplica: (k, v) =>
      replica.set(key(k), v, "EX", 600).then(() => undefined, (e) => e as Error),
    replicaReads: async () =>
      Number(/^cmdstat_get:calls=(\d+)/m.exec(await info("commandstats"))?.[1] ?? 0),
    replicaTls: async () => {
      await replica.ping();
      // ioredis's socket is a node:tls TLSSocket (encrypted) when the URL is rediss:.
      return (replica as unknown as { stream?: { encrypted?: boolean } }).stream?.encrypted ===
        true;
    },
    holdBack: async (on) => {
      // A primary that is not there: the link goes down, the replica keeps serving what it has.
      await replica.call("REPLICAOF", MATRIX.host, String(on ? 1 : MATRIX.ports.redisTls));
    },
    close: async () => {
      primary.disconnect();
      replica.disconnect();
      await Promise.resolve();
    },
  });
}
