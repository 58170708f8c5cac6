/**
 * The SCYLLA store: ScyllaDB or Apache Cassandra over CQL with the DataStax
 * Node.js driver (`cassandra-driver`).
 *
 * **Data model.** Keyspace `grand_tour` (NetworkTopologyStrategy, replication
 * factor from `SCYLLA_REPLICATION_FACTOR` in `SCYLLA_DATACENTER`, set when the
 * keyspace is created; an existing keyspace is never altered, and `open`
 * refuses one replicated less than asked, saying how to raise it:
 * {@linkcode checkReplication}) and
 *
 * ```sql
 * CREATE TABLE grand_tour.words (
 *   bucket int, id text, word text, definition text, created_at text, updated_at text,
 *   PRIMARY KEY ((bucket), id)
 * ) WITH CLUSTERING ORDER BY (id ASC);
 * CREATE TABLE grand_tour.words_buckets (
 *   scope text, bucket int, PRIMARY KEY ((scope), bucket)
 * ) WITH CLUSTERING ORDER BY (bucket ASC);
 * ```
 *
 * A word's partition is the hour of its UUIDv7 `id`: `bucket = floor(ms /
 * 3_600_000)`, `ms` being the id's first 48 bits. Ids sort by time, so the id
 * order is bucket order, then clustering order inside a bucket: "oldest
 * first" needs no sort. `words_buckets` lists every hour that holds words, one
 * row per hour in the one partition `scope = 'words'`, so a page goes straight
 * to the next hour with words instead of probing empty ones (8,760 rows a
 * year). `id`, `created_at` and `updated_at` are `text` so they round-trip
 * byte for byte; text clustering order (UTF-8 bytes) equals the ids' string
 * order. `updated_at` stays null until a word's first edit; `open` adds the
 * column (`ALTER TABLE … ADD`) to a `words` table created without it.
 *
 * **Why an hour.** A row is about 250 bytes for a typical word and at most
 * about 2.1 KiB (256 code points of up to 4 UTF-8 bytes in each field);
 * Cassandra and Scylla are comfortable up to about 100 MB and 100,000 rows
 * per partition. A million words a year is about 115 rows (30 KB) an hour;
 * even a million words in one day (12 words/s) is 42,000 rows, about 10 MB, an
 * hour. The benchmark's seeding (about 11,600 words/s for 100,000 words) fills
 * one or two hours with up to 100,000 rows once, at the edge but harmless; its
 * `addWord` rate (about 3,300/s) sustained for an hour would make a 12-million
 * row, 3 GB partition. An hour passes 100,000 rows above about 28 words/s
 * sustained (100 MB above about 110 typical or 13 largest words/s). Cassandra
 * then logs "Writing large partition" while compacting it; the operator caps
 * writes (`RATE_LIMIT_PER_MINUTE`) or ships a narrower width (a minute gives
 * 60 times the room) with a re-bucketing migration like the one below, since
 * the bucket is a function of the id and the width. Narrower is not the
 * default because a page reads one partition per non-empty bucket: at a word
 * a minute, a page of 100 reads two hours but a hundred minutes, and
 * `words_buckets` would grow 60 times faster. A day overflows at 1.2 words/s.
 * Every 48-bit UUIDv7 time gives an hour below 2^27, so `int` holds any
 * bucket (minutes would not fit).
 *
 * **Adding** records the word's bucket in `words_buckets` first (an
 * idempotent insert; the store remembers the buckets it recorded, one entry
 * per hour) and writes the word only once that is acknowledged, so a reader
 * that could see an acknowledged word also sees its bucket.
 *
 * **Pages.** `list` reads `words_buckets` from the bucket of `after` (from
 * the first bucket without one), then reads the buckets in order with `id >
 * after LIMIT n`. Starting at `bucket(after)` makes a page deep in the list
 * cost what the first page costs: one bucket-list query and, when one hour
 * holds the page, one single-partition read; two when the page crosses into
 * the next hour. When those fall short too, each further round reads as many
 * buckets in parallel as all rounds before it (2, 4, … up to 16), so sparse
 * hours cost few round trips. `offset` walks the buckets through `offset + limit` rows.
 * Search has no CQL equivalent (LIKE needs SASI/SAI indexes and has
 * wildcards), so it reads the buckets whole, 500 rows per driver page, and
 * filters in TypeScript with {@linkcode matchesSearch} until the page is
 * full: every character is literal.
 *
 * **Migration.** The previous version kept every word in bucket 0. `open`
 * moves them: it reads bucket 0 in id order, 500 rows at a time, from the
 * first id after hour 0 of 1970 (bucket 0's own hour, whose rows stay),
 * records each row's bucket, copies the row into it `USING TIMESTAMP` of its
 * original write, then deletes the copied rows from bucket 0: one range delete
 * for rows older than five minutes, by id for newer ones, so a row that an
 * older gateway (clock within five minutes) writes meanwhile is never deleted
 * uncopied. It repeats until bucket 0 holds no such row, so an open store
 * never has words left in bucket 0 that it would not list. Every step is
 * idempotent: it can be run again after a crash at any point and by two
 * gateways at once. Within one process an open joins a migration already
 * running for the keyspace (the gateway abandons an open after the connect
 * timeout + 15 s and retries; the retry waits for the same migration, which
 * keeps its progress). Words an older gateway adds to bucket 0 during a
 * rolling deploy are moved at the next open. When `words_buckets` is missing
 * but `words` exists (dropped under a running gateway), `open` creates it and
 * records every bucket `SELECT DISTINCT bucket` finds.
 *
 * **Edits and deletes** are lightweight transactions (Paxos) on the word's
 * row, addressed as `(bucket(id), id)` without a lookup since the bucket is a
 * function of the id: `UPDATE … SET word, definition, updated_at … IF
 * created_at = ? AND updated_at = ?` and `DELETE … IF created_at = ? AND
 * updated_at = ?`, the second value null for a never-edited word's revision
 * (Cassandra accepts `IF col = null`, true when the cell is unset). A plain
 * UPDATE would create a missing row, and `IF updated_at = null` alone holds
 * for a missing row too; `created_at`, never null on a stored row, refuses an
 * id that is not stored or was deleted. Each is one statement: a Paxos
 * prepare and a read, then, when the condition holds, propose and commit,
 * four round trips between coordinator and replicas, at LOCAL_SERIAL with the
 * commit written at LOCAL_QUORUM.
 *
 * Paxos ballots are per partition, so LWTs on any words of one hour contend:
 * a proposer outbid by another sleeps (Cassandra: up to 100 ms) on the
 * coordinator and tries again, until `cas_contention_timeout` (1.8 s on the
 * matrix), longer than this store's socket timeout, so a contended LWT fails
 * with its outcome unknown and may still apply afterwards. Sent all at once,
 * 100 edits of one word or of 100 words of one hour had some fail that way
 * on the matrix. So the store sends its LWTs one partition at a time, in
 * order (a lane per hour, dropped when idle), and contends only with other
 * gateways. It also remembers the revision its last applied LWT left on each
 * of the {@linkcode REMEMBERED_WORDS} words it edited last (revisions only
 * grow; a deleted word has none): a compare-and-set on an older revision is
 * answered false without a round trip, which is how most of a burst of edits
 * of one word end, and the rest of the burst reaches the database one at a
 * time. An LWT that waited {@linkcode LANE_WAIT_MS} for its turn is refused
 * unsent, so it cannot apply long after its caller stopped waiting.
 *
 * Edits are the only LWTs; the other writes of a row are plain: its INSERT by
 * `add` and a migration's copy. That mix is safe because an INSERT is
 * acknowledged at LOCAL_QUORUM before its id is returned to anyone, so before
 * any LWT on the row, whose quorum read then sees it; and because cells carry
 * timestamps that order them as the writes happened: an INSERT is dated
 * (`USING TIMESTAMP`) a minute before the word's `createdAt`, older than any
 * Paxos ballot of an edit or deletion of it (ballots come from the
 * coordinators' clocks, which Cassandra needs in agreement anyway, and the
 * gateway's must not run a minute ahead of them), and a copy keeps its
 * original write time. An INSERT or copy arriving late (a coordinator that
 * was stalled executes it after another node answered it)
 * therefore never brings back an edited or deleted word. A bucket emptied by
 * deletes may keep its `words_buckets` row (a page reads it empty and moves
 * on); removing that row must not race an `add` into the same hour.
 *
 * **Losing a node.** Every statement is idempotent to the driver (reads,
 * INSERTs of gateway-assigned ids with fixed timestamps, LWTs whose "not
 * applied" is checked against the row), so a call whose node dies or stalls
 * goes to the next node: speculatively after {@linkcode SPECULATIVE_DELAY_MS},
 * or after the per-node socket timeout; a stalled node's connection is dropped
 * after a few timeouts, so the node leaves the query plans. The driver reaches
 * the nodes it discovers on the contact points' port.
 *
 * Reads and writes use LOCAL_QUORUM, so a write acknowledged to `add` is seen
 * by the next `list` or `get` (read-your-writes) with any replication factor;
 * an acknowledged LWT was committed at LOCAL_QUORUM too, so the next
 * LOCAL_QUORUM read overlaps the replicas that hold it and sees it. Every
 * write is in the commit log of a quorum of replicas when it resolves
 * (`commitlog_sync: batch` on the matrix fsyncs it first).
 *
 * @module
 */
import cassandra from "cassandra-driver";
import { bulkhead, type BulkheadPolicy } from "cockatiel";
import { deadline } from "./deadline.ts";
import { checkReplicationSettings, DEFAULT_DATACENTER } from "./scylla_settings.ts";
import { matchesSearch, timestampOf } from "./records.ts";
import type { ListQuery, NewWord, OpenStore, StoreConfig, WordRecord, WordStore } from "./types.ts";

/** The keyspace unless `options.keyspace` names another (tests use that). */
const DEFAULT_KEYSPACE = "grand_tour";
const TABLE = "words";
const BUCKETS_TABLE = "words_buckets";
/** The `words_buckets` partition that lists the buckets of `words`. */
const SCOPE = "words";
/** Width of a bucket: an hour of the id's timestamp. */
const BUCKET_MS = 3_600_000;
/** Where the previous version kept every word. */
const LEGACY_BUCKET = 0;
/** Rows newer than this are deleted from bucket 0 by id, not by range, when migrated. */
const RECENT_MS = 5 * 60_000;
const DEFAULT_PORT = 9042;
/**
 * Per-node socket timeout: a call on a node that stopped answering (SIGSTOP,
 * a dead host behind a live socket) fails there within this, and the driver
 * sends it to the next node (every statement is idempotent: {@linkcode run}),
 * so a call is answered within the gateway's 2 s even when its first node
 * stalls before speculation helped.
 */
const READ_TIMEOUT_MS = 800;
/**
 * A call not answered within this goes to one more node (speculative
 * execution): a stalled coordinator costs a call this much, not the socket
 * timeout. Well above the healthy p99 of a call on the three-node matrix
 * even on a loaded machine: at 150 ms with two extra copies, a busy run sent
 * enough copies (LWTs contending in Paxos, INSERTs doubled) that the nodes
 * answered write timeouts to an add among 200 at once and to an edit.
 */
const SPECULATIVE_DELAY_MS = 600;
const SPECULATIVE_EXECUTIONS = 1;
/**
 * Read timeouts on one connection before the driver drops it (default 64):
 * a stalled node's connection goes within a second of load, the node is
 * marked down and leaves every query plan until it answers again.
 */
const DEFUNCT_READ_TIMEOUTS = 4;
/**
 * How much older than the word's `createdAt` its INSERT is dated (`USING
 * TIMESTAMP`): a copy of the INSERT that a stalled coordinator executes
 * late, after the call was answered by another node, then loses to every
 * edit and deletion of the word, as long as the gateway's clock is not
 * ahead of Cassandra's by more than this.
 */
const INSERT_BACKDATE_MS = 60_000;
/**
 * Statements one store sends at once; the others wait in the gateway, in
 * order. The per-node socket timeout then measures how fast a node answers,
 * not how deep a burst queued on its one connection: with no limit, 200
 * adds at once on a three-node cluster just started took over 800 ms each,
 * timed out by the socket timeout four at a time, so the driver closed every
 * node's connection and failed 152 of them ("All host(s) tried"). The Java
 * driver's request throttler does the same. Measured in docs/performance.md
 * ("Cassandra's in-flight limit").
 */
const IN_FLIGHT = 32;
/** Longest a statement waits for a slot ({@linkcode IN_FLIGHT}) outside the gateway. */
const DEFAULT_QUEUE_WAIT_MS = 2_000;
/**
 * INSERTs queued at once in `addMany` and a migration's copy: as many as
 * there are slots, so a seed of thousands of words never queues them all and
 * none waits for a slot longer than a statement of a user's call would.
 */
const ADD_MANY_IN_FLIGHT = IN_FLIGHT;
/** Rows per page when scanning a partition, and per migration step. */
const PAGE_SIZE = 500;
/** Bucket numbers per page of `words_buckets`. */
const BUCKETS_PER_PAGE = 64;
/** Most buckets read at once when a page spans several. */
const MAX_PARALLEL_BUCKETS = 16;
const MAX_INT = 2 ** 31 - 1;
/**
 * Longest an LWT waits for its partition's lane before it is refused unsent:
 * with the 800 ms socket timeout, an edit is answered within 1.8 s, inside the
 * gateway's default 2 s request timeout, unless a burst also kept it waiting
 * for a slot ({@linkcode IN_FLIGHT}); the gateway's timeout answers it then.
 */
const LANE_WAIT_MS = 1_000;
/** How many words' last revisions the store remembers (the ones it edited last). */
const REMEMBERED_WORDS = 1_000;
/** The remembered revision of a word this store deleted: above every revision. */
const GONE = "\uffff";

const { consistencies } = cassandra.types;

/**
 * No client-side timestamps, so the coordinator dates each plain write with
 * the clock its LWT ballots come from (module documentation). The driver
 * documents `null` for this; its type declarations lack it.
 */
const SERVER_TIMESTAMPS =
  null as unknown as cassandra.policies.timestampGeneration.TimestampGenerator;

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
  const datacenter = options.datacenter?.trim() || DEFAULT_DATACENTER;
  const rf = (options.replicationFactor ?? "1").trim();
  checkReplicationSettings(datacenter, rf);
  return { keyspace, datacenter, replicationFactor: Number(rf) };
}

type Client = InstanceType<typeof cassandra.Client>;
type Row = cassandra.types.Row;

function toRecord(row: Row): WordRecord {
  const record: WordRecord = {
    id: row.get("id"),
    word: row.get("word"),
    definition: row.get("definition"),
    createdAt: row.get("created_at"),
  };
  const updatedAt = row.get("updated_at");
  if (updatedAt !== null && updatedAt !== undefined) record.updatedAt = updatedAt;
  return record;
}

type OperationInfo = Parameters<cassandra.policies.retry.RetryPolicy["onRequestError"]>[0];

/**
 * The driver's default retries, plus one: a lightweight transaction whose
 * Paxos round timed out on its coordinator (a write timeout of type CAS, or a
 * read timeout at SERIAL/LOCAL_SERIAL: replicas slow to answer, say a node
 * rejoining the cluster) is sent once more, to the next node. The default
 * gives up on it, though it is as safe to send again as any LWT here: its
 * "not applied" answer is checked against the row ({@linkcode ScyllaStore}).
 */
class LwtRetryPolicy extends cassandra.policies.retry.RetryPolicy {
  override onWriteTimeout(
    info: OperationInfo,
    consistency: cassandra.types.consistencies,
    received: number,
    blockFor: number,
    writeType: string,
  ) {
    if (writeType === "CAS" && info.nbRetry === 0) return this.retryResult(consistency, false);
    return super.onWriteTimeout(info, consistency, received, blockFor, writeType);
  }

  override onReadTimeout(
    info: OperationInfo,
    consistency: cassandra.types.consistencies,
    received: number,
    blockFor: number,
    isDataPresent: boolean,
  ) {
    const serial = consistency === consistencies.serial ||
      consistency === consistencies.localSerial;
    if (serial && info.nbRetry === 0) return this.retryResult(consistency, false);
    return super.onReadTimeout(info, consistency, received, blockFor, isDataPresent);
  }
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
      defunctReadTimeoutThreshold: DEFUNCT_READ_TIMEOUTS,
    },
    pooling: { heartBeatInterval: 5_000 },
    policies: {
      timestampGeneration: SERVER_TIMESTAMPS,
      // Hosts marked down are retried soon and at most every 2 s, not the default 10 min.
      reconnection: new cassandra.policies.reconnection.ExponentialReconnectionPolicy(
        250,
        2_000,
        false,
      ),
      speculativeExecution: new cassandra.policies.speculativeExecution
        .ConstantSpeculativeExecutionPolicy(SPECULATIVE_DELAY_MS, SPECULATIVE_EXECUTIONS),
      retry: new LwtRetryPolicy(),
    },
    // The driver reaches the nodes it discovers (system.peers) on this port, not on theirs: with
    // the default 9042 a cluster on another port was used through one contact point only.
    protocolOptions: { maxSchemaAgreementWaitSeconds: 5, port: nativePort(points) },
    queryOptions: {
      consistency: consistencies.localQuorum,
      prepare: true,
      fetchSize: PAGE_SIZE,
    },
  });
}

/**
 * Refuses a keyspace replicated less than `SCYLLA_REPLICATION_FACTOR` asks
 * (one created before the cluster had its nodes): the rows it holds are on
 * fewer nodes than the operator counts on, and raising the factor is not
 * enough on its own, since the new replicas get the old rows only through a
 * repair. More replicas than asked is fine.
 */
export function checkReplication(
  keyspace: string,
  datacenter: string,
  wanted: number,
  replication: Record<string, string> | null,
): void {
  const have = Number(replication?.[datacenter] ?? replication?.replication_factor ?? 0);
  if (have >= wanted) return;
  throw new Error(
    `keyspace ${keyspace} has replication factor ${have} in ${datacenter} but ` +
      `SCYLLA_REPLICATION_FACTOR is ${wanted}: run ALTER KEYSPACE ${keyspace} WITH replication = ` +
      `{'class': 'NetworkTopologyStrategy', '${datacenter}': ${wanted}} and then ` +
      `nodetool repair -full ${keyspace} on every node (or set SCYLLA_REPLICATION_FACTOR=${have})`,
  );
}

/**
 * The port the driver uses for the nodes it discovers: the contact points'
 * (every node of a cluster serves CQL on one port; the driver takes one for
 * all). Contact points on different ports each keep their own; the first
 * one's is used for discovered nodes.
 */
function nativePort(points: ContactPoints): number {
  const first = points.hosts[0];
  return Number(first.slice(first.lastIndexOf(":") + 1));
}

/** Which tables `open` had to create. */
interface Created {
  words: boolean;
  buckets: boolean;
}

/**
 * Creates the keyspace and tables when missing; an existing keyspace keeps
 * its replication. Cassandra lists a table in `system_schema` a moment before
 * it serves it, so when two gateways create one at once the second open can
 * fail on its first statement; the gateway's wrapper (`managed.ts`) retries it.
 */
async function ensureSchema(
  client: Client,
  { keyspace, datacenter, replicationFactor }: ReturnType<typeof replicationOf>,
): Promise<Created> {
  const ks = await client.execute(
    "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
    [keyspace],
    { prepare: true, consistency: consistencies.localOne },
  );
  if (ks.rowLength > 0) {
    checkReplication(keyspace, datacenter, replicationFactor, ks.first().get("replication"));
  } else {
    await client.execute(
      `CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = ` +
        `{'class': 'NetworkTopologyStrategy', '${datacenter}': ${replicationFactor}}`,
      [],
      { prepare: true },
    );
  }
  const tables = await client.execute(
    "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
    [keyspace],
    { prepare: true, consistency: consistencies.localOne },
  );
  const names = new Set(tables.rows.map((row) => row.get("table_name")));
  const created = { words: !names.has(TABLE), buckets: !names.has(BUCKETS_TABLE) };
  if (created.words) {
    await client.execute(
      `CREATE TABLE IF NOT EXISTS ${keyspace}.${TABLE} (
        bucket int,
        id text,
        word text,
        definition text,
        created_at text,
        updated_at text,
        PRIMARY KEY ((bucket), id)
      ) WITH CLUSTERING ORDER BY (id ASC)`,
      [],
      { prepare: true },
    );
  }
  if (!created.words) await addUpdatedAt(client, keyspace);
  if (created.buckets) {
    await client.execute(
      `CREATE TABLE IF NOT EXISTS ${keyspace}.${BUCKETS_TABLE} (
        scope text,
        bucket int,
        PRIMARY KEY ((scope), bucket)
      ) WITH CLUSTERING ORDER BY (bucket ASC)`,
      [],
      { prepare: true },
    );
  }
  return created;
}

/** The columns of `keyspace.words`. */
async function wordsColumns(client: Client, keyspace: string): Promise<Set<string>> {
  const rs = await client.execute(
    "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?",
    [keyspace, TABLE],
    { prepare: true, consistency: consistencies.localOne },
  );
  return new Set(rs.rows.map((row) => row.get("column_name")));
}

/**
 * Adds `updated_at` to a `words` table created before edits. Two gateways may
 * add it at once: the one refused because the column now exists goes on.
 */
async function addUpdatedAt(client: Client, keyspace: string): Promise<void> {
  if ((await wordsColumns(client, keyspace)).has("updated_at")) return;
  try {
    await client.execute(`ALTER TABLE ${keyspace}.${TABLE} ADD updated_at text`);
  } catch (e) {
    if (!(await wordsColumns(client, keyspace)).has("updated_at")) throw e;
  }
}

/** The values of {@linkcode statements}' `insert` for `r`, dated {@linkcode INSERT_BACKDATE_MS} before it. */
function insertValues(r: NewWord): unknown[] {
  const micros = (Date.parse(r.createdAt) - INSERT_BACKDATE_MS) * 1000;
  return [
    bucketOf(r.id),
    r.id,
    r.word,
    r.definition,
    r.createdAt,
    cassandra.types.Long.fromNumber(micros),
  ];
}

/** The bucket of a word: the hour of its id's timestamp, counted from 1970. */
function bucketOf(id: string): number {
  return Math.floor(Date.parse(timestampOf(id)) / BUCKET_MS);
}

/** The smallest id string of millisecond `ms`: every id of `ms` or later sorts after it. */
function idFloor(ms: number): string {
  const hex = ms.toString(16).padStart(12, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8)}`;
}

/**
 * The values of `IF created_at = ? AND updated_at = ?` that hold only while a
 * word of `createdAt` is at `revision`: never edited (`updated_at` null) when
 * the revision is its `createdAt`, else edited last at `revision` (every edit
 * sets `updated_at` later than `createdAt`, so the two cannot be confused).
 */
function revisionCondition(createdAt: string, revision: string): [string, string | null] {
  return [createdAt, revision === createdAt ? null : revision];
}

/** Lets `promise` reject without an unhandled rejection while it waits to be awaited. */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

/** Up to `n` further values of `values`. */
async function take<T>(values: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  while (out.length < n) {
    const next = await values.next();
    if (next.done) break;
    out.push(next.value);
  }
  return out;
}

const COLUMNS = "id, word, definition, created_at, updated_at";

/** The CQL the store runs on one keyspace, prepared on first use. */
function statements(keyspace: string) {
  const words = `${keyspace}.${TABLE}`;
  const buckets = `${keyspace}.${BUCKETS_TABLE}`;
  const insert = `INSERT INTO ${words} (bucket, id, word, definition, created_at) ` +
    "VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?";
  // Where a row's revision is still the expected one; see `revisionCondition`.
  const ifRevision = "IF created_at = ? AND updated_at = ?";
  return {
    insert,
    copy: `INSERT INTO ${words} (bucket, id, word, definition, created_at, updated_at) ` +
      "VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
    get: `SELECT ${COLUMNS} FROM ${words} WHERE bucket = ? AND id = ?`,
    replace: `UPDATE ${words} SET word = ?, definition = ?, updated_at = ? ` +
      `WHERE bucket = ? AND id = ? ${ifRevision}`,
    remove: `DELETE FROM ${words} WHERE bucket = ? AND id = ? ${ifRevision}`,
    recordBucket: `INSERT INTO ${buckets} (scope, bucket) VALUES (?, ?)`,
    // `bucket >= ?` and `id > ?` seek along the clustering order: no row before the page is read.
    bucketsFrom: `SELECT bucket FROM ${buckets} WHERE scope = ? AND bucket >= ?`,
    rows: `SELECT ${COLUMNS} FROM ${words} WHERE bucket = ? AND id > ? LIMIT ?`,
    storedBuckets: `SELECT DISTINCT bucket FROM ${words}`,
    legacyPage: `SELECT ${COLUMNS}, WRITETIME(word) AS written FROM ${words} ` +
      "WHERE bucket = ? AND id > ? LIMIT ?",
    deleteRange: `DELETE FROM ${words} WHERE bucket = ? AND id >= ? AND id <= ?`,
    deleteIds: `DELETE FROM ${words} WHERE bucket = ? AND id IN ?`,
    // Touch both tables: one dropped under a running gateway fails the ping, and the reconnect recreates it.
    pingWords: `SELECT id FROM ${words} WHERE bucket = ? LIMIT 1`,
    pingBuckets: `SELECT bucket FROM ${buckets} WHERE scope = ? LIMIT 1`,
  };
}

/** The LWTs of one partition, run one at a time; see the module documentation. */
interface Lane {
  /** Settles once the last LWT queued in the lane has. */
  tail: Promise<unknown>;
  /** LWTs queued or running; the lane is dropped at 0. */
  pending: number;
}

/** The store over one keyspace; see the module documentation. */
class ScyllaStore implements WordStore {
  #client: Client;
  #cql: ReturnType<typeof statements>;
  /** Buckets this store recorded (or is recording) in `words_buckets`: at most one per hour. */
  #recorded = new Map<number, Promise<void>>();
  /** The LWT lanes of partitions with LWTs queued or running. */
  #lanes = new Map<number, Lane>();
  /**
   * Per word id, the revision this store's last applied LWT left
   * ({@linkcode GONE} once deleted), for the {@linkcode REMEMBERED_WORDS}
   * words edited last, in that order.
   */
  #revisions = new Map<string, string>();
  /** The {@linkcode IN_FLIGHT} slots every statement goes through. */
  #slots: BulkheadPolicy = bulkhead(IN_FLIGHT, Number.POSITIVE_INFINITY);
  /** How long a statement may wait for a slot: the gateway's budget, which has run out then. */
  #queueWaitMs: number;

  constructor(client: Client, keyspace: string, queueWaitMs = DEFAULT_QUEUE_WAIT_MS) {
    this.#client = client;
    this.#cql = statements(keyspace);
    this.#queueWaitMs = queueWaitMs;
  }

  async add(r: NewWord): Promise<void> {
    const bucket = bucketOf(r.id);
    await this.#record(bucket);
    await this.#run(this.#cql.insert, [...insertValues(r)]);
  }

  /**
   * Each bucket's row first, then the words, {@linkcode ADD_MANY_IN_FLIGHT} at
   * a time through `#run`, so each INSERT is idempotent to the driver
   * like any other and a timed-out one goes to the next node (the driver's
   * `executeConcurrent` sends its statements as not idempotent, so one slow
   * node failed the whole batch).
   */
  async addMany(records: NewWord[]): Promise<void> {
    await Promise.all([...new Set(records.map((r) => bucketOf(r.id)))].map((b) => this.#record(b)));
    await inFlight(records, (r) => this.#run(this.#cql.insert, [...insertValues(r)]));
  }

  /** One row at LOCAL_QUORUM, which sees every acknowledged add and LWT (module documentation). */
  async get(id: string): Promise<WordRecord | undefined> {
    const row = (await this.#run(this.#cql.get, [bucketOf(id), id])).first();
    return row ? toRecord(row) : undefined;
  }

  /** `UPDATE … IF created_at = ? AND updated_at = ?`: a lightweight transaction, never an upsert. */
  replace(r: NewWord, revision: string): Promise<boolean> {
    return this.#lwt(r.id, revision, r.updatedAt!, this.#cql.replace, [
      r.word,
      r.definition,
      r.updatedAt,
      bucketOf(r.id),
      r.id,
      ...revisionCondition(r.createdAt, revision),
    ], r);
  }

  /** `DELETE … IF created_at = ? AND updated_at = ?`; `createdAt` is the time inside the id. */
  remove(id: string, revision: string): Promise<boolean> {
    return this.#lwt(id, revision, GONE, this.#cql.remove, [
      bucketOf(id),
      id,
      ...revisionCondition(timestampOf(id), revision),
    ]);
  }

  async list({ search, limit, offset, after = "" }: ListQuery): Promise<WordRecord[]> {
    const out: WordRecord[] = [];
    let skipped = 0;
    const wanted = search ? MAX_INT : Math.min(offset + limit, MAX_INT);
    for await (const record of this.#rowsAfter(after, wanted)) {
      if (!matchesSearch(record, search)) continue;
      if (skipped < offset) {
        skipped++;
        continue;
      }
      out.push(record);
      if (out.length >= limit) break;
    }
    return out;
  }

  async ping(): Promise<void> {
    const one = { consistency: consistencies.localOne };
    await Promise.all([
      this.#run(this.#cql.pingWords, [LEGACY_BUCKET], one),
      this.#run(this.#cql.pingBuckets, [SCOPE], one),
    ]);
  }

  async close(): Promise<void> {
    await this.#client.shutdown().catch(() => {});
  }

  /**
   * Moves every word the previous version stored in bucket 0 (except those of
   * hour 0 itself) into its own bucket; see the module documentation.
   */
  async moveLegacyWords(): Promise<void> {
    let after = idFloor(BUCKET_MS);
    for (;;) {
      const page = await this.#run(this.#cql.legacyPage, [LEGACY_BUCKET, after, PAGE_SIZE]);
      if (page.rowLength === 0) return;
      await this.#copy(page.rows);
      await this.#deleteLegacy(page.rows.map((row) => row.get("id") as string));
      after = page.rows[page.rowLength - 1].get("id");
    }
  }

  /** Records in `words_buckets` every bucket that holds a word (after it was lost). */
  async recordStoredBuckets(): Promise<void> {
    const buckets: number[] = [];
    const rows = await this.#run(this.#cql.storedBuckets, [], { fetchSize: PAGE_SIZE });
    for await (const row of rows) buckets.push(row.get("bucket"));
    for (let i = 0; i < buckets.length; i += PAGE_SIZE) {
      await Promise.all(buckets.slice(i, i + PAGE_SIZE).map((b) => this.#record(b)));
    }
  }

  /**
   * Every statement is idempotent to the driver, which may therefore send it
   * to another node after a timeout or speculatively: reads; INSERTs of a
   * gateway-assigned id with the same values and timestamp (the bucket's, a
   * word's, a migration's copy); range and id deletes of copied rows; and
   * the LWTs, whose compare-and-set on the revision applies at most once
   * however often it is sent, and whose "not applied" answer {@linkcode lwt}
   * checks against the row (another copy may have applied it).
   */
  #run(query: string, params: unknown[], options: cassandra.QueryOptions = {}) {
    const queued = performance.now();
    return this.#slots.execute(() => {
      // Its caller was answered already (the gateway's budget ran out): sending it is wasted work.
      if (performance.now() - queued > this.#queueWaitMs) {
        throw new Error("Cassandra/Scylla: too many statements in flight; not sent");
      }
      return this.#client.execute(query, params, {
        prepare: true,
        consistency: consistencies.localQuorum,
        isIdempotent: true,
        ...options,
      });
    });
  }

  /**
   * Runs a conditional statement on word `id` that expects `revision` and
   * leaves `next`, in the lane of the word's partition: Paxos at
   * LOCAL_SERIAL, its commit at LOCAL_QUORUM. Resolves whether it applied;
   * false at once when this store already moved the word past `revision`.
   * The driver may send it again (another node, speculatively): the revision
   * moves once it applied, so a second copy is not applied, and a "not
   * applied" answer or a failure is checked against the row
   * ({@linkcode landed}) before it counts as a lost race.
   */
  #lwt(
    id: string,
    revision: string,
    next: string,
    query: string,
    params: unknown[],
    mine?: NewWord,
  ): Promise<boolean> {
    const bucket = bucketOf(id);
    const lane: Lane = this.#lanes.get(bucket) ?? { tail: Promise.resolve(), pending: 0 };
    this.#lanes.set(bucket, lane);
    const queued = performance.now();
    const run = async (): Promise<boolean> => {
      // ISO-8601 revisions of one format sort by time.
      if (revision < (this.#revisions.get(id) ?? "")) return false;
      if (performance.now() - queued > LANE_WAIT_MS) {
        throw new Error("Cassandra/Scylla: too many edits of one hour's words at once; not sent");
      }
      let applied: boolean;
      try {
        const rs = await this.#run(query, params, {
          serialConsistency: consistencies.localSerial,
        });
        // "Not applied" from the only copy sent is the answer; after another copy (speculative, or
        // sent to another host after a failure) the row tells whether an earlier copy applied it.
        const resent = rs.info.speculativeExecutions > 0 ||
          Object.keys(rs.info.triedHosts ?? {}).length > 1;
        applied = rs.wasApplied() || (resent && await this.#landed(id, next, mine));
      } catch (e) {
        // Its node died or stalled: the outcome is unknown unless the row says it applied.
        if (!(await this.#landed(id, next, mine).catch(() => false))) throw e;
        applied = true;
      }
      if (!applied) return false;
      this.#remember(id, next);
      return true;
    };
    const result = lane.tail.then(run);
    lane.pending++;
    lane.tail = result.catch(() => {}).finally(() => {
      if (--lane.pending === 0) this.#lanes.delete(bucket);
    });
    return result;
  }

  /**
   * Whether word `id` is where this LWT would have left it, read at
   * LOCAL_SERIAL (which completes any Paxos round in progress on it): at
   * revision `next` with `mine`'s word and definition, or gone for a
   * deletion (`next` {@linkcode GONE}). A copy the driver sent again after
   * an unknown outcome answers "not applied" when the first one applied.
   */
  async #landed(id: string, next: string, mine: NewWord | undefined): Promise<boolean> {
    const row = (await this.#run(this.#cql.get, [bucketOf(id), id], {
      consistency: consistencies.localSerial,
    })).first();
    if (next === GONE) return !row;
    if (!row || !mine) return false;
    const r = toRecord(row);
    return r.updatedAt === next && r.word === mine.word && r.definition === mine.definition;
  }

  /** Remembers that word `id` is at `revision` now, forgetting the word edited longest ago. */
  #remember(id: string, revision: string): void {
    this.#revisions.delete(id);
    this.#revisions.set(id, revision);
    if (this.#revisions.size > REMEMBERED_WORDS) {
      this.#revisions.delete(this.#revisions.keys().next().value!);
    }
  }

  /** Writes the `words_buckets` row of `bucket` unless this store already did. */
  #record(bucket: number): Promise<void> {
    let recorded = this.#recorded.get(bucket);
    if (!recorded) {
      recorded = this.#run(this.#cql.recordBucket, [SCOPE, bucket]).then(() => {});
      recorded.catch(() => this.#recorded.delete(bucket));
      this.#recorded.set(bucket, recorded);
    }
    return recorded;
  }

  /** Up to `wanted` records with ids after `after`, oldest first, bucket by bucket. */
  async *#rowsAfter(after: string, wanted: number): AsyncGenerator<WordRecord> {
    const buckets = this.#bucketsFrom(after ? bucketOf(after) : 0);
    let left = wanted;
    let read = 0;
    try {
      for (;;) {
        // One bucket, then one more, then as many at once as were read before: 1, 1, 2, 4, …
        const next = await take(buckets, Math.min(Math.max(read, 1), MAX_PARALLEL_BUCKETS));
        if (next.length === 0) return;
        read += next.length;
        const reads = next.map((b) => handled(this.#readBucket(b, after, left)));
        for (const rows of reads) {
          for await (const row of await rows) {
            yield toRecord(row);
            if (--left === 0) return;
          }
        }
      }
    } finally {
      await buckets.return(undefined);
    }
  }

  /** The buckets listed in `words_buckets` from `first` on, in order. */
  async *#bucketsFrom(first: number): AsyncGenerator<number> {
    const rows = await this.#run(this.#cql.bucketsFrom, [SCOPE, first], {
      fetchSize: BUCKETS_PER_PAGE,
    });
    for await (const row of rows) yield row.get("bucket");
  }

  /** Up to `limit` rows of `bucket` with ids after `after`, fetched a driver page at a time. */
  #readBucket(bucket: number, after: string, limit: number) {
    return this.#run(this.#cql.rows, [bucket, after, limit], {
      fetchSize: Math.min(limit, PAGE_SIZE),
    });
  }

  /**
   * Writes migrated rows into their buckets, each bucket recorded first, with
   * their original write time and `updated_at` (left unset, not null, when
   * there is none: no tombstone).
   */
  async #copy(rows: Row[]): Promise<void> {
    const buckets = new Set(rows.map((row) => bucketOf(row.get("id"))));
    await Promise.all([...buckets].map((b) => this.#record(b)));
    // A page at once (500 INSERTs) made a node of the loaded three-node matrix miss the 800 ms
    // socket timeout on every node it tried, and the open failed (CI, 2026-11-29).
    await inFlight(rows, (row) => {
      const r = toRecord(row);
      const values = [bucketOf(r.id), r.id, r.word, r.definition, r.createdAt, r.updatedAt];
      return this.#run(this.#cql.copy, [...values, row.get("written")]);
    });
  }

  /**
   * Deletes copied rows (`ids`, ascending) from bucket 0: the older ones as
   * one range, the recent ones by id, since a row an older gateway writes
   * now may fall between two recent ones.
   */
  async #deleteLegacy(ids: string[]): Promise<void> {
    const horizon = idFloor(Date.now() - RECENT_MS);
    const old = ids.filter((id) => id < horizon);
    const recent = ids.slice(old.length);
    if (old.length > 0) {
      await this.#run(this.#cql.deleteRange, [LEGACY_BUCKET, old[0], old[old.length - 1]]);
    }
    if (recent.length > 0) await this.#run(this.#cql.deleteIds, [LEGACY_BUCKET, recent]);
  }
}

/** Runs `write` on every item, {@linkcode ADD_MANY_IN_FLIGHT} at a time. */
async function inFlight<T>(items: readonly T[], write: (item: T) => Promise<unknown>) {
  const queue = items.values();
  const worker = async () => {
    for (const item of queue) await write(item);
  };
  await Promise.all(Array.from({ length: Math.min(ADD_MANY_IN_FLIGHT, items.length) }, worker));
}

/** Migrations running in this process, by cluster and keyspace: a second open joins the first. */
const migrations = new Map<string, Promise<void>>();

/** Runs the store's migration, or waits for the one this process already runs for `key`. */
function migrateOnce(key: string, store: ScyllaStore): Promise<void> {
  let running = migrations.get(key);
  if (!running) {
    running = store.moveLegacyWords().finally(() => migrations.delete(key));
    migrations.set(key, running);
  }
  return running;
}

/**
 * Connects to the contact points in `config.url` (TLS verified against
 * `config.caCert` when given), creates keyspace and tables when missing,
 * moves words an older version stored in one partition into their buckets,
 * and returns the store. Rejects when no contact point answers.
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
    const created = await ensureSchema(client, schema);
    const store = new ScyllaStore(client, keyspace, config.requestTimeoutMs);
    await migrateOnce(`${points.hosts.join(",")}/${keyspace}`, store);
    if (created.buckets && !created.words) await store.recordStoredBuckets();
    return store;
  } catch (e) {
    await client.shutdown().catch(() => {});
    throw e;
  }
};
