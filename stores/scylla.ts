/**
 * The SCYLLA store: ScyllaDB or Apache Cassandra over CQL with the DataStax
 * Node.js driver (`cassandra-driver`).
 *
 * Data model: keyspace `grand_tour` (NetworkTopologyStrategy, replication
 * factor from `SCYLLA_REPLICATION_FACTOR` in `SCYLLA_DATACENTER`, set when the
 * keyspace is created; an existing keyspace is never altered) and
 *
 * ```sql
 * CREATE TABLE grand_tour.words (
 *   bucket int, id text, word text, definition text, created_at text,
 *   PRIMARY KEY ((bucket), id)
 * ) WITH CLUSTERING ORDER BY (id ASC)
 * ```
 *
 * Every word lives in one partition (`bucket = 0`) clustered by its UUIDv7
 * `id`, so "oldest first" is the partition's natural order and a page is one
 * bounded, single-partition read (`LIMIT offset + limit`) instead of a
 * cluster-wide scan, which CQL cannot order anyway. A word is at most ~2 KiB,
 * so the partition stays far below Cassandra's ~100 MB comfort zone for tens of
 * thousands of words; a busier deployment would widen `bucket` (e.g. per
 * month of the id) without changing the row shape. `id` and `created_at` are
 * `text` so they round-trip byte for byte; text clustering order (UTF-8 bytes)
 * equals the ids' string order.
 *
 * Search has no CQL equivalent (LIKE needs SASI/SAI indexes and has
 * wildcards), so it pages through the partition and filters in TypeScript
 * with {@linkcode matchesSearch}: every character is literal.
 *
 * Reads and writes use LOCAL_QUORUM, so a write acknowledged to `add` is seen
 * by the next `list` (read-your-writes) with any replication factor.
 *
 * @module
 */
import cassandra from "cassandra-driver";
import { matchesSearch } from "./records.ts";
import type { ListQuery, OpenStore, StoreConfig, WordRecord, WordStore } from "./types.ts";

/** The keyspace unless `options.keyspace` names another (tests use that). */
const DEFAULT_KEYSPACE = "grand_tour";
const TABLE = "words";
/** The one partition every word lives in. */
const BUCKET = 0;
const DEFAULT_PORT = 9042;
/** Per-request socket timeout: an unresponsive node fails a call well within ~1.5 s. */
const READ_TIMEOUT_MS = 1_200;
/** Rows per page when scanning the partition. */
const PAGE_SIZE = 500;
const MAX_INT = 2 ** 31 - 1;

const { consistencies } = cassandra.types;

/** Where to connect and as whom, parsed from the store URL. */
export interface ContactPoints {
  /** `host:port` strings as the driver takes them (IPv6 hosts in brackets). */
  hosts: string[];
  username?: string;
  password?: string;
}

/**
 * Parses `SCYLLA_URL`: one or more comma-separated contact points, each
 * `host`, `host:port`, `[ipv6]:port` or a URL such as
 * `cassandra://user:pass@host:port` (any scheme; user and password are
 * percent-decoded). Credentials come from the first contact point that has
 * them. The port defaults to 9042. Errors never echo the URL.
 */
export function parseContactPoints(url: string): ContactPoints {
  const out: ContactPoints = { hosts: [] };
  for (const raw of url.split(",")) {
    const part = raw.trim();
    if (!part) continue;
    let u: URL;
    try {
      u = new URL(part.includes("://") ? part : `cassandra://${part}`);
    } catch {
      throw new Error("SCYLLA_URL: a contact point is not host:port or a URL");
    }
    if (!u.hostname) throw new Error("SCYLLA_URL: a contact point has no host");
    out.hosts.push(`${u.hostname}:${u.port || DEFAULT_PORT}`);
    if (out.username === undefined && u.username) {
      out.username = decodeURIComponent(u.username);
      out.password = decodeURIComponent(u.password);
    }
  }
  if (out.hosts.length === 0) throw new Error("SCYLLA_URL has no contact point");
  return out;
}

/** The keyspace and the replication it is created with, from `config.options`. */
export function replicationOf(options: Record<string, string>): {
  keyspace: string;
  datacenter: string;
  replicationFactor: number;
} {
  const keyspace = options.keyspace?.trim() || DEFAULT_KEYSPACE;
  if (!/^[a-z][a-z0-9_]{0,47}$/.test(keyspace)) {
    throw new Error("keyspace names are lower-case letters, digits and '_'");
  }
  const datacenter = options.datacenter?.trim() || "datacenter1";
  const rf = (options.replicationFactor ?? "1").trim();
  // Both end up in CQL text (DDL takes no bind markers for replication), so allow only safe shapes.
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(datacenter)) {
    throw new Error("SCYLLA_DATACENTER may only hold letters, digits, '_', '.' and '-'");
  }
  if (!/^\d{1,2}$/.test(rf) || Number(rf) < 1) {
    throw new Error("SCYLLA_REPLICATION_FACTOR must be a whole number from 1 to 99");
  }
  return { keyspace, datacenter, replicationFactor: Number(rf) };
}

type Client = InstanceType<typeof cassandra.Client>;
type Row = cassandra.types.Row;

function toRecord(row: Row): WordRecord {
  return {
    id: row.get("id"),
    word: row.get("word"),
    definition: row.get("definition"),
    createdAt: row.get("created_at"),
  };
}

function deadline<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function newClient(config: StoreConfig, points: ContactPoints, datacenter: string): Client {
  return new cassandra.Client({
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
    ...(config.caCert !== undefined
      ? { sslOptions: { ca: [config.caCert], rejectUnauthorized: true } }
      : {}),
    socketOptions: {
      connectTimeout: config.connectTimeoutMs,
      readTimeout: READ_TIMEOUT_MS,
    },
    pooling: { heartBeatInterval: 5_000 },
    policies: {
      // Hosts marked down are retried soon and at most every 2 s, not the default 10 min.
      reconnection: new cassandra.policies.reconnection.ExponentialReconnectionPolicy(
        250,
        2_000,
        false,
      ),
    },
    protocolOptions: { maxSchemaAgreementWaitSeconds: 5 },
    queryOptions: {
      consistency: consistencies.localQuorum,
      prepare: true,
      fetchSize: PAGE_SIZE,
    },
  });
}

/** Creates the keyspace and table when missing; an existing keyspace keeps its replication. */
async function ensureSchema(
  client: Client,
  { keyspace, datacenter, replicationFactor }: ReturnType<typeof replicationOf>,
): Promise<void> {
  const ks = await client.execute(
    "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?",
    [keyspace],
    { prepare: true, consistency: consistencies.localOne },
  );
  if (ks.rowLength === 0) {
    await client.execute(
      `CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = ` +
        `{'class': 'NetworkTopologyStrategy', '${datacenter}': ${replicationFactor}}`,
      [],
      { prepare: true },
    );
  }
  const table = await client.execute(
    "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?",
    [keyspace, TABLE],
    { prepare: true, consistency: consistencies.localOne },
  );
  if (table.rowLength === 0) {
    await client.execute(
      `CREATE TABLE IF NOT EXISTS ${keyspace}.${TABLE} (
        bucket int,
        id text,
        word text,
        definition text,
        created_at text,
        PRIMARY KEY ((bucket), id)
      ) WITH CLUSTERING ORDER BY (id ASC)`,
      [],
      { prepare: true },
    );
  }
}

const COLUMNS = "id, word, definition, created_at";

/**
 * Connects to the contact points in `config.url` (TLS verified against
 * `config.caCert` when given), creates keyspace and table when missing and
 * returns the store. Rejects when no contact point answers.
 */
export const open: OpenStore = async (config) => {
  const points = parseContactPoints(config.url);
  const schema = replicationOf(config.options);
  const { keyspace, datacenter } = schema;
  const client = newClient(config, points, datacenter);
  try {
    // Each contact point may take connectTimeoutMs; bound the whole attempt too.
    await deadline(
      client.connect(),
      config.connectTimeoutMs * points.hosts.length + 1_000,
      "Cassandra/Scylla: connecting timed out",
    );
    await ensureSchema(client, schema);
  } catch (e) {
    await client.shutdown().catch(() => {});
    throw e;
  }

  const table = `${keyspace}.${TABLE}`;
  const INSERT =
    `INSERT INTO ${table} (bucket, id, word, definition, created_at) VALUES (?, ?, ?, ?, ?)`;
  // `id > ?` seeks along the clustering order: a page after any id costs what the first does.
  const FIRST_ROWS = `SELECT ${COLUMNS} FROM ${table} WHERE bucket = ? AND id > ? LIMIT ?`;
  const ALL_ROWS = `SELECT ${COLUMNS} FROM ${table} WHERE bucket = ? AND id > ?`;
  // Touches the table: one dropped under a running gateway fails the ping, and the reconnect recreates it.
  const PING = `SELECT id FROM ${table} WHERE bucket = ? LIMIT 1`;

  const store: WordStore = {
    async add(r: WordRecord): Promise<void> {
      await client.execute(INSERT, [BUCKET, r.id, r.word, r.definition, r.createdAt], {
        prepare: true,
        consistency: consistencies.localQuorum,
      });
    },

    async list({ search, limit, offset, after = "" }: ListQuery): Promise<WordRecord[]> {
      const out: WordRecord[] = [];
      if (!search) {
        const wanted = Math.min(offset + limit, MAX_INT);
        const rows = await client.execute(FIRST_ROWS, [BUCKET, after, wanted], {
          prepare: true,
          consistency: consistencies.localQuorum,
          fetchSize: Math.min(wanted, PAGE_SIZE),
        });
        let seen = 0;
        for await (const row of rows) {
          if (seen++ < offset) continue;
          out.push(toRecord(row));
          if (out.length >= limit) break;
        }
        return out;
      }
      const rows = await client.execute(ALL_ROWS, [BUCKET, after], {
        prepare: true,
        consistency: consistencies.localQuorum,
        fetchSize: PAGE_SIZE,
      });
      let skipped = 0;
      for await (const row of rows) {
        const record = toRecord(row);
        if (!matchesSearch(record, search)) continue;
        if (skipped < offset) {
          skipped++;
          continue;
        }
        out.push(record);
        if (out.length >= limit) break;
      }
      return out;
    },

    async ping(): Promise<void> {
      await client.execute(PING, [BUCKET], { prepare: true, consistency: consistencies.localOne });
    },

    async close(): Promise<void> {
      await client.shutdown().catch(() => {});
    },
  };
  return store;
};
