/**
 * Empties the gateway's data in every configured network store through raw
 * clients, restarting nothing, so each fault scenario starts from a known
 * state: booting every server of the cluster topology per scenario (JVMs,
 * Erlang VMs, replicas cloning their primary) would not fit in a CI run.
 *
 * What is emptied is exactly what the gateway writes (see each
 * stores/<store>.ts): PostgreSQL and MySQL the `words` table (TRUNCATE),
 * Redis the index `grand_tour:words:ids` and every `grand_tour:word:<id>`
 * hash of its database, MongoDB the `words` and `word_claims` collections
 * (documents deleted, indexes kept), Elasticsearch the `words` index and
 * RabbitMQ the `words` stream (both deleted: the next gateway creates them
 * as on first use), Scylla the keyspace's `words` and `words_buckets` tables.
 * SQLite's file and RabbitMQ's view live in the suite's own directory.
 *
 * A store with read replicas (`<STORE>_READ_URL`) is wiped on its primary;
 * the wipe then waits until every replica has applied it (no word left
 * there), or fails naming the replica.
 *
 * @module
 */
import pg from "pg";
import mysql from "mysql2/promise";
import { Redis } from "ioredis";
import { MongoClient } from "mongodb";
import { Client as Elastic } from "@elastic/elasticsearch";
import cassandra from "cassandra-driver";
import amqp from "amqplib";
import { storeConfig } from "../../support/env.ts";
import { CLAIMS, COLLECTION, databaseOf } from "../../../stores/mongodb.ts";
import { INDEX } from "../../../stores/elasticsearch.ts";
import { IDS_KEY, recordKey } from "../../../stores/redis.ts";
import { parseContactPoints, replicationOf } from "../../../stores/scylla.ts";
import type { NetworkStoreName, StoreConfig } from "../../../stores/types.ts";

/** How long a replica may take to apply the wipe. */
const REPLICA_WAIT_MS = 30_000;
const CONNECT_TIMEOUT_MS = 5_000;

/** How one store is emptied, and (for stores with replicas) how many words a node still holds. */
interface Wiper {
  wipe(config: StoreConfig): Promise<void>;
  count?(url: string, config: StoreConfig): Promise<number>;
}

/** The first node of a comma-separated list of URLs. */
const firstUrl = (url: string) => url.split(",")[0].trim();

/** A connected PostgreSQL client on `url` (errors of a lost connection are the caller's calls'). */
async function pgClient(url: string, caCert?: string): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: url,
    ssl: caCert ? { ca: caCert, rejectUnauthorized: true } : false,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  client.on("error", () => {});
  await client.connect();
  return client;
}

async function withPg<T>(
  url: string,
  caCert: string | undefined,
  fn: (c: pg.Client) => Promise<T>,
) {
  const client = await pgClient(url, caCert);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** PostgreSQL's undefined_table: nothing written yet. */
const noTable = (e: unknown) => (e as { code?: string }).code === "42P01";

const postgresql: Wiper = {
  wipe: (config) =>
    withPg(config.url, config.caCert, async (c) => {
      // A gateway still holding the table would otherwise make this wait for good.
      await c.query("SET lock_timeout = '10s'");
      await c.query("TRUNCATE words").catch((e) => {
        if (!noTable(e)) throw e;
      });
    }),
  count: (url, config) =>
    withPg(url, config.caCert, async (c) => {
      try {
        return Number((await c.query("SELECT count(*)::int8 AS n FROM words")).rows[0].n);
      } catch (e) {
        if (noTable(e)) return 0;
        throw e;
      }
    }),
};

/** A MySQL connection on `url`, and the gateway's table there (database from the path). */
async function withMysql<T>(
  url: string,
  caCert: string | undefined,
  fn: (c: mysql.Connection, table: string) => Promise<T>,
): Promise<T> {
  const u = new URL(url);
  const database = decodeURIComponent(u.pathname.replace(/^\//, "")) || "grand_tour";
  const conn = await mysql.createConnection({
    host: u.hostname,
    port: Number(u.port || 3306),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    connectTimeout: CONNECT_TIMEOUT_MS,
    ssl: caCert ? { ca: caCert, rejectUnauthorized: true } : undefined,
  });
  try {
    return await fn(conn, `\`${database}\`.\`words\``);
  } finally {
    await conn.end().catch(() => {});
  }
}

/** MySQL's unknown database or table: nothing written yet. */
const noMysqlTable = (e: unknown) => [1049, 1146].includes((e as { errno?: number }).errno ?? 0);

const mysqlWiper: Wiper = {
  wipe: (config) =>
    withMysql(config.url, config.caCert, async (c, table) => {
      await c.query("SET SESSION lock_wait_timeout = 10");
      await c.query(`TRUNCATE TABLE ${table}`).catch((e) => {
        if (!noMysqlTable(e)) throw e;
      });
    }),
  count: (url, config) =>
    withMysql(url, config.caCert, async (c, table) => {
      try {
        const [rows] = await c.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${table}`);
        return Number(rows[0].n);
      } catch (e) {
        if (noMysqlTable(e)) return 0;
        throw e;
      }
    }),
};

async function withRedis<T>(url: string, caCert: string | undefined, fn: (r: Redis) => Promise<T>) {
  const client = new Redis(url, {
    ...(caCert ? { tls: { ca: caCert, rejectUnauthorized: true } } : {}),
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
  });
  client.on("error", () => {});
  try {
    return await fn(client);
  } finally {
    client.disconnect();
  }
}

/** Every key of the gateway's record hashes in `client`'s database. */
async function recordKeys(client: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await client.scan(cursor, "MATCH", `${recordKey("")}*`, "COUNT", 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== "0");
  return keys;
}

const redisWiper: Wiper = {
  wipe: (config) =>
    withRedis(config.url, config.caCert, async (r) => {
      await r.unlink(IDS_KEY);
      const keys = await recordKeys(r);
      for (let i = 0; i < keys.length; i += 1000) await r.unlink(...keys.slice(i, i + 1000));
    }),
  count: (url, config) =>
    withRedis(
      url,
      config.caCert,
      async (r) => (await r.zcard(IDS_KEY)) + (await recordKeys(r)).length,
    ),
};

const mongodb: Wiper = {
  async wipe(config) {
    const client = new MongoClient(config.url, {
      serverSelectionTimeoutMS: CONNECT_TIMEOUT_MS,
      ...(config.caCert ? { tls: true, ca: config.caCert } : {}),
    });
    try {
      const db = client.db(databaseOf(config.url));
      for (const name of [COLLECTION, CLAIMS]) await db.collection(name).deleteMany({});
    } finally {
      await client.close().catch(() => {});
    }
  },
};

const elasticsearch: Wiper = {
  async wipe(config) {
    const url = new URL(firstUrl(config.url));
    const auth = url.username
      ? { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) }
      : undefined;
    url.username = url.password = "";
    const client = new Elastic({
      node: { url },
      ...(auth ? { auth } : {}),
      ...(config.caCert ? { tls: { ca: config.caCert } } : {}),
      requestTimeout: 60_000,
      maxRetries: 0,
    });
    try {
      await client.indices.delete({ index: INDEX, ignore_unavailable: true });
    } finally {
      await client.close().catch(() => {});
    }
  },
};

const scylla: Wiper = {
  async wipe(config) {
    const points = parseContactPoints(config.url);
    const { keyspace, datacenter } = replicationOf(config.options);
    const client = new cassandra.Client({
      contactPoints: points.hosts,
      localDataCenter: datacenter,
      ...(points.username !== undefined
        ? {
          authProvider: new cassandra.auth.PlainTextAuthProvider(
            points.username,
            points.password ?? "",
          ),
        }
        : {}),
      ...(config.caCert ? { sslOptions: { ca: [config.caCert], rejectUnauthorized: true } } : {}),
      socketOptions: { connectTimeout: CONNECT_TIMEOUT_MS, readTimeout: 60_000 },
    });
    try {
      const tables = await client.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
        [keyspace],
      );
      for (const row of tables.rows) {
        const table = String(row.get("table_name"));
        if (table === "words" || table === "words_buckets") {
          await client.execute(`TRUNCATE ${keyspace}.${table}`);
        }
      }
    } finally {
      await client.shutdown().catch(() => {});
    }
  },
};

const rabbitmq: Wiper = {
  async wipe(config) {
    const conn = await amqp.connect(firstUrl(config.url), {
      timeout: CONNECT_TIMEOUT_MS,
      ...(config.caCert ? { ca: [config.caCert] } : {}),
    });
    conn.on("error", () => {});
    try {
      const ch = await conn.createChannel();
      ch.on("error", () => {});
      await ch.deleteQueue("words");
    } finally {
      await conn.close().catch(() => {});
    }
  },
};

const WIPERS: Record<NetworkStoreName, Wiper> = {
  POSTGRESQL: postgresql,
  MYSQL: mysqlWiper,
  REDIS: redisWiper,
  MONGODB: mongodb,
  ELASTICSEARCH: elasticsearch,
  SCYLLA: scylla,
  RABBITMQ: rabbitmq,
};

/**
 * Empties the gateway's data in each of `stores` (configured ones; the
 * others are skipped), on the primary where a store has replicas, then waits
 * until each replica holds no word either. Throws naming the store (and
 * replica) that could not be emptied.
 */
export async function wipeStores(stores: readonly NetworkStoreName[]): Promise<void> {
  await Promise.all(stores.map(async (store) => {
    const config = storeConfig(store);
    if (!config) return;
    const wiper = WIPERS[store];
    try {
      await wiper.wipe(config);
    } catch (e) {
      throw new Error(`cannot empty ${store}: ${(e as Error).message}`);
    }
    for (const [i, url] of (config.readUrls ?? []).entries()) {
      if (!wiper.count) throw new Error(`${store}: no way to count words on a replica`);
      await replicaEmpty(store, i, () => wiper.count!(url, config));
    }
  }));
}

/** Waits until `count` (of replica `i` of `store`) is 0; throws after {@linkcode REPLICA_WAIT_MS}. */
async function replicaEmpty(store: string, i: number, count: () => Promise<number>) {
  const deadline = Date.now() + REPLICA_WAIT_MS;
  let last = "";
  for (;;) {
    try {
      const n = await count();
      if (n === 0) return;
      last = `${n} words left`;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${store} replica ${i + 1} did not apply the wipe within ${
          REPLICA_WAIT_MS / 1000
        } s (${last})`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
