/**
 * What the replica scenarios rely on and measure, asked of the databases
 * themselves, never of the gateway:
 *
 * - {@linkcode checkReplication}: the store's topology, every replica of
 *   `<STORE>_READ_URL` replicating from its primary (PostgreSQL: streaming
 *   in `pg_stat_replication` and `pg_stat_wal_receiver`; MariaDB: both
 *   replication threads running; Redis: `connected_slaves` and each
 *   replica's link up).
 * - {@linkcode NodeReads}: reads each replica served, from its own
 *   statistics (tests/support/replica_admin.ts: PostgreSQL's scans of
 *   `words`, MariaDB's `Com_stmt_execute`, Redis's EVALSHA and EVAL). Only
 *   the gateway's reads (`words` pages and searches) run on a replica, so its
 *   counter is exactly the reads it served; PostgreSQL counts a first page as
 *   two index scans once `words` has statistics (the planner reads the
 *   index's first entry to estimate `id > $1`, then the page is read), so
 *   its scans are divided by what one such page costs, measured on the
 *   replica when counting starts ({@linkcode pgScansPerPage}). A primary's counter also counts
 *   the read before every edit and deletion (the gateway compare-and-sets
 *   what it read there) and, on MariaDB and Redis, the writes themselves, so
 *   the reads the primary served are the reads the load got answered minus
 *   the replicas' (its own counter's growth is reported beside them).
 *
 * @module
 */
import pg from "pg";
import mysql from "mysql2/promise";
import { Redis } from "ioredis";
import { storeConfig } from "../../support/env.ts";
import { countReads } from "../../support/replica_admin.ts";
import type { NetworkStoreName, StoreConfig, StoreName } from "../../../stores/types.ts";
import { OK, type Sample } from "./samples.ts";

/** How long the topology may take to settle (a replica resyncing after its primary restarted). */
const SETTLE_MS = 60_000;

/** The stores of `stores` with read replicas configured. */
export function storesWithReplicas(stores: readonly StoreName[]): NetworkStoreName[] {
  return stores.filter((s) =>
    s !== "SQLITE" && (storeConfig(s)?.readUrls?.length ?? 0) > 0
  ) as NetworkStoreName[];
}

/** How many replicas of `config` replicate now; the problems of those that do not. */
type Probe = (config: StoreConfig) => Promise<{ replicating: number; problems: string[] }>;

async function pgQuery<T>(
  url: string,
  caCert: string | undefined,
  sql: string | pg.QueryConfig,
): Promise<T[]> {
  const client = new pg.Client({
    connectionString: url,
    ssl: caCert ? { ca: caCert, rejectUnauthorized: true } : false,
    connectionTimeoutMillis: 3_000,
  });
  client.on("error", () => {});
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end().catch(() => {});
  }
}

const postgresql: Probe = async (config) => {
  const [{ n }] = await pgQuery<{ n: string }>(
    config.url,
    config.caCert,
    "SELECT count(*) AS n FROM pg_stat_replication WHERE state = 'streaming'",
  );
  const problems: string[] = [];
  for (const [i, url] of config.readUrls!.entries()) {
    const [r] = await pgQuery<{ recovery: boolean; status: string | null }>(
      url,
      config.caCert,
      "SELECT pg_is_in_recovery() AS recovery, (SELECT status FROM pg_stat_wal_receiver) AS status",
    );
    if (!r.recovery) problems.push(`replica ${i + 1} is not a standby`);
    else if (r.status !== "streaming") problems.push(`replica ${i + 1} WAL receiver ${r.status}`);
  }
  return { replicating: Number(n), problems };
};

const mysqlProbe: Probe = async (config) => {
  const problems: string[] = [];
  let replicating = 0;
  for (const [i, url] of config.readUrls!.entries()) {
    const u = new URL(url);
    const conn = await mysql.createConnection({
      host: u.hostname,
      port: Number(u.port || 3306),
      user: decodeURIComponent(u.username),
      password: decodeURIComponent(u.password),
      connectTimeout: 3_000,
      ssl: config.caCert ? { ca: config.caCert, rejectUnauthorized: true } : undefined,
    });
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>("SHOW SLAVE STATUS");
      const s = rows[0];
      if (s?.Slave_IO_Running === "Yes" && s?.Slave_SQL_Running === "Yes") replicating++;
      else {
        problems.push(
          `replica ${i + 1}: IO ${s?.Slave_IO_Running ?? "-"}, SQL ${s?.Slave_SQL_Running ?? "-"}` +
            (s?.Last_Error ? ` (${String(s.Last_Error).slice(0, 200)})` : ""),
        );
      }
    } finally {
      await conn.end().catch(() => {});
    }
  }
  return { replicating, problems };
};

async function redisInfo(url: string, caCert?: string): Promise<string> {
  const client = new Redis(url, {
    ...(caCert ? { tls: { ca: caCert, rejectUnauthorized: true } } : {}),
    connectTimeout: 3_000,
    maxRetriesPerRequest: 0,
  });
  client.on("error", () => {});
  try {
    return await client.info("replication");
  } finally {
    client.disconnect();
  }
}

const redisProbe: Probe = async (config) => {
  const primary = await redisInfo(config.url, config.caCert);
  const online = [...primary.matchAll(/^slave\d+:.*state=online/gm)].length;
  const problems: string[] = [];
  for (const [i, url] of config.readUrls!.entries()) {
    const info = await redisInfo(url, config.caCert);
    if (!/^role:slave\r?$/m.test(info)) problems.push(`replica ${i + 1} is not a replica`);
    else if (!/^master_link_status:up\r?$/m.test(info)) problems.push(`replica ${i + 1} link down`);
  }
  return { replicating: online, problems };
};

const PROBES: Partial<Record<NetworkStoreName, Probe>> = {
  POSTGRESQL: postgresql,
  MYSQL: mysqlProbe,
  REDIS: redisProbe,
};

/**
 * Checks the topology a replica scenario on `store` relies on: replicas
 * configured, and every one of them replicating from the primary (waiting
 * up to {@linkcode SETTLE_MS} for one that is still catching up). Returns
 * "1 of 1 replicas replicating"; throws saying what is missing.
 */
export async function checkReplication(store: NetworkStoreName): Promise<string> {
  const config = storeConfig(store);
  const wanted = config?.readUrls?.length ?? 0;
  if (!config || wanted === 0) {
    throw new Error(
      `${store}: no read replica configured (${store}_READ_URL); matrix up --cluster`,
    );
  }
  const probe = PROBES[store];
  if (!probe) throw new Error(`${store}: no replication check for this store`);
  const deadline = Date.now() + SETTLE_MS;
  let last = "";
  for (;;) {
    try {
      const { replicating, problems } = await probe(config);
      if (replicating >= wanted && problems.length === 0) {
        return `${replicating} of ${wanted} replicas replicating`;
      }
      last = [`${replicating} of ${wanted} replicas replicating`, ...problems].join("; ");
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${store}: the cluster topology this scenario relies on is not there after ${
          SETTLE_MS / 1000
        } s: ${last}`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Reads served by one store's nodes over a run, as {@linkcode NodeReads.figures} reports them. */
export interface ReadFigures {
  /** Reads the replicas served, from their own statistics. */
  replica: number;
  /** Reads the primary served: `lists` minus `replica`. */
  primary: number;
  /** `words` reads the load got answered. */
  lists: number;
  /** `replica / lists`, in %. */
  replicaShare: number;
  /**
   * Growth of the primary's own counter (reads before edits and deletions
   * included, PostgreSQL's in scans; see the module).
   */
  primaryCounter: number;
}

/** One node's counter: its last value and what it grew by since the start. */
interface Counter {
  url: string;
  last: number;
  grown: number;
}

/** The load's read, a first page, as stores/postgresql.ts sends it. */
const PG_FIRST_PAGE = `SELECT id::text AS id FROM words WHERE words.id > $1::uuid
  ORDER BY words.id LIMIT $2 OFFSET $3`;

/**
 * How many scans PostgreSQL at `url` counts for one of the load's reads (a
 * first page of `words`): two once the table has statistics, one before
 * (see the module). Measured with one such read by a client that then
 * disconnects (a backend reports its counts as it exits); at least 1.
 */
export async function pgScansPerPage(url: string, caCert?: string): Promise<number> {
  const before = await countReads("POSTGRESQL", url, caCert);
  const rows = await pgQuery<unknown>(url, caCert, {
    text: PG_FIRST_PAGE,
    values: ["00000000-0000-0000-0000-000000000000", 20, 0],
  }).catch(() => undefined);
  if (!rows) return 1; // no table yet: nothing to read, nothing counted
  for (let i = 0; i < 40; i++) {
    const n = (await countReads("POSTGRESQL", url, caCert)) - before;
    if (n > 0) return n;
    await new Promise((r) => setTimeout(r, 50));
  }
  return 1;
}

/**
 * PostgreSQL's statistics of a busy backend reach the shared counters when it
 * goes idle, at most once a second; one that went idle within a second of
 * its last report does so 10 s later (`PGSTAT_IDLE_INTERVAL`). So a count
 * taken right after the load stops waits this long first.
 */
export const PG_STATS_SETTLE_MS = 11_000;

/**
 * Reads by node of some stores, from the databases' own counters: a first
 * snapshot when created, more with {@linkcode snapshot}, the totals with
 * {@linkcode figures}. A counter found lower than at the snapshot before
 * restarted with its server (after a kill): what it holds then is counted
 * from zero. Take a snapshot right before killing a node, and one once it is
 * ready again: reads it served between the two are counted; PostgreSQL's
 * statistics not yet reported when it was killed are lost with it.
 */
export class NodeReads {
  #counters = new Map<NetworkStoreName, { primary: Counter; replicas: Counter[] }>();
  /** What one read counts on each store's replicas (PostgreSQL: {@linkcode pgScansPerPage}). */
  #perRead = new Map<NetworkStoreName, number>();

  private constructor(readonly stores: readonly NetworkStoreName[]) {}

  /** Starts counting the reads of `stores` (each with replicas configured) now. */
  static async start(stores: readonly NetworkStoreName[]): Promise<NodeReads> {
    const tally = new NodeReads(stores);
    for (const store of stores) {
      const config = storeConfig(store)!;
      const counter = (url: string): Counter => ({ url, last: NaN, grown: 0 });
      tally.#counters.set(store, {
        primary: counter(config.url),
        replicas: config.readUrls!.map(counter),
      });
      tally.#perRead.set(
        store,
        store === "POSTGRESQL" ? await pgScansPerPage(config.readUrls![0], config.caCert) : 1,
      );
    }
    await tally.snapshot();
    return tally;
  }

  /** Reads every counter of `store` (all stores when omitted) once more. */
  async snapshot(store?: NetworkStoreName): Promise<void> {
    const stores = store ? [store] : this.stores;
    await Promise.all(stores.map(async (s) => {
      const config = storeConfig(s)!;
      const { primary, replicas } = this.#counters.get(s)!;
      await Promise.all([primary, ...replicas].map(async (c) => {
        const value = await countReads(s, c.url, config.caCert);
        if (Number.isFinite(c.last)) c.grown += value >= c.last ? value - c.last : value;
        c.last = value;
      }));
    }));
  }

  /**
   * The totals of `stores` (all by default), after a last snapshot (waiting
   * {@linkcode PG_STATS_SETTLE_MS} first for PostgreSQL): the replicas' reads against
   * the `words` reads answered in `loads`, which must be every load the
   * gateway served since this tally started.
   */
  async figures(
    loads: readonly { readonly samples: readonly Sample[] }[],
    stores: readonly NetworkStoreName[] = this.stores,
  ): Promise<Map<NetworkStoreName, ReadFigures>> {
    if (stores.includes("POSTGRESQL")) {
      await new Promise((r) => setTimeout(r, PG_STATS_SETTLE_MS));
    }
    await Promise.all(stores.map((s) => this.snapshot(s)));
    const out = new Map<NetworkStoreName, ReadFigures>();
    for (const store of stores) {
      const { primary, replicas } = this.#counters.get(store)!;
      const lists = loads.reduce(
        (n, l) =>
          n +
          l.samples.filter((s) => s.store === store && s.op === "list" && s.outcome === OK).length,
        0,
      );
      const replica = Math.round(
        replicas.reduce((n, c) => n + c.grown, 0) / this.#perRead.get(store)!,
      );
      out.set(store, {
        replica,
        primary: Math.max(0, lists - replica),
        lists,
        replicaShare: lists ? (replica / lists) * 100 : NaN,
        primaryCounter: primary.grown,
      });
    }
    return out;
  }
}

/** "reads replica/primary 1930/41 (97.9% on replicas; primary's counter +3120)". */
export function describeReads(f: ReadFigures): string {
  return `reads replica/primary ${f.replica}/${f.primary} (${
    f.replicaShare.toFixed(1)
  }% on replicas, database-counted; primary's own counter +${f.primaryCounter})`;
}
