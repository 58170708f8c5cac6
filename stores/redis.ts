/**
 * Redis store, through `ioredis`.
 *
 * Data model (database from the URL, `/0` by default):
 * - `grand_tour:words:ids`: a sorted set of every record id, all with score 0,
 *   so members are ordered lexicographically, which for UUIDv7 ids is id
 *   (insertion) order, and `ZRANGE … BYLEX` from `-` or `(<id>` seeks to a
 *   page in O(log N).
 * - `grand_tour:word:<id>`: a hash per record with `id`, `word`, `definition`,
 *   `createdAt` as given, `updatedAt` once edited, and `searchKey`, the
 *   folded text search compares (`records.ts`).
 *
 * Both are written in one MULTI/EXEC, so a reader never sees an id without its
 * hash. Every `add` is kept (ids are unique), so the same word added twice is
 * two entries.
 *
 * An edit and a deletion are one script each (`redis_scripts.ts`), which
 * Redis runs atomically: `REPLACE` sets `word`, `definition`, `searchKey` and
 * `updatedAt` only if the hash still has the expected revision (`updatedAt`,
 * else `createdAt`), `REMOVE` deletes the hash and its index entry under the
 * same check. A missing hash has no revision, so neither recreates a deleted
 * word, even one whose id is still in the index. `get` is one HMGET. Like
 * `add`, each resolves once Redis replied, which under `appendfsync always`
 * is after the write was fsynced to the append-only file.
 *
 * Reads run as Lua scripts on the server (`redis_scripts.ts`), called as
 * EVALSHA, so what a read costs does not grow with the words it returns:
 * - a page is one command whatever its limit: the script takes the ids from
 *   the index and replies with their hashes' fields;
 * - a search is one command per {@linkcode SCAN_CHUNK} ids it scans: each call
 *   walks up to that many ids from where the last stopped, keeps the words
 *   whose stored `searchKey` contains the needle (a plain `string.find`, so
 *   nothing of the search text is interpreted), skips the first `offset` and
 *   replies with the rest and where it stopped; the gateway calls again until
 *   `offset + limit` matches are found or the index ends. That is at most
 *   `floor(ids scanned / SCAN_CHUNK) + 1` commands: a rare word among 100,000
 *   words is 51 calls (about 160 ms on the matrix), among a million 501.
 *
 * The scripts need Redis 6.2 or later (`ZRANGE … BYLEX`). They derive each
 * hash's key from an id they read, so they are not Redis Cluster-safe: a
 * cluster would need all keys in one slot through a hash tag, which means new
 * key names and moving the existing keys (see `redis_scripts.ts`).
 *
 * Words stored before search keys have no `searchKey` and are found by no
 * search until `open` has given them one: it walks the whole index,
 * {@linkcode SCAN_CHUNK} ids per call, and writes 500 keys at a time with a
 * script that never recreates a hash that is gone. An open cut short loses
 * nothing: the next one walks past the words already keyed. With nothing to
 * key, the walk costs an open about 160 ms per 100,000 words.
 *
 * The client fails fast: no offline queue, no resending of unanswered commands
 * after a reconnect, a per-command timeout, and `open` bounded by
 * `connectTimeoutMs`.
 *
 * @module
 */
import { deadline } from "./deadline.ts";
import { Redis, type RedisOptions } from "ioredis";
import { backfillSearchKeys, type Unkeyed } from "./records.ts";
import { PAGE, REMOVE, REPLACE, SEARCH, SET_SEARCH_KEYS, UNKEYED } from "./redis_scripts.ts";
import {
  type Positions,
  ReadRouter,
  type Replica,
  type RouterOptions,
  routerOptions,
} from "./replicas.ts";
import type { ListQuery, NewWord, OpenStore, StoreConfig, WordRecord, WordStore } from "./types.ts";

/** Sorted set of every record id (score 0, ordered by member). */
export const IDS_KEY = "grand_tour:words:ids";
/** Prefix of every record's hash key. */
const RECORD_PREFIX = "grand_tour:word:";
/** Hash key of one record. */
export function recordKey(id: string): string {
  return RECORD_PREFIX + id;
}

/**
 * Most ids one search or backfill call scans: about 2 ms of Redis's time
 * (about 1 µs an id), which no other client waits much longer than.
 */
export const SCAN_CHUNK = 2000;

/** Where reading the index starts: the first id, or the first after `after`. */
function rangeStart(after: string | undefined): string {
  return after === undefined ? "-" : `(${after}`;
}

/** The stored scripts, bound as ioredis commands (EVALSHA, EVAL on NOSCRIPT). */
interface Scripts {
  wordsPage(ids: string, from: string, offset: number, limit: number, prefix: string): Promise<
    (string | null)[]
  >;
  wordsSearch(
    ids: string,
    from: string,
    needle: string,
    skip: number,
    want: number,
    scan: number,
    prefix: string,
  ): Promise<[string | null, number, ...(string | null)[]]>;
  wordsUnkeyed(
    ids: string,
    from: string,
    scan: number,
    want: number,
    prefix: string,
  ): Promise<[string | null, ...string[]]>;
  wordsSetSearchKeys(numberOfKeys: number, ...keysThenValues: string[]): Promise<number>;
  wordsReplace(
    key: string,
    revision: string,
    word: string,
    definition: string,
    searchKey: string,
    updatedAt: string,
  ): Promise<number>;
  wordsRemove(key: string, ids: string, revision: string, id: string): Promise<number>;
}

/** `client` with {@linkcode Scripts} defined on it. */
function withScripts(client: Redis): Redis & Scripts {
  client.defineCommand("wordsPage", PAGE);
  client.defineCommand("wordsSearch", SEARCH);
  client.defineCommand("wordsUnkeyed", UNKEYED);
  client.defineCommand("wordsSetSearchKeys", SET_SEARCH_KEYS);
  client.defineCommand("wordsReplace", REPLACE);
  client.defineCommand("wordsRemove", REMOVE);
  return client as Redis & Scripts;
}

/**
 * The store's ioredis options for `url` (TLS for `rediss:` or with
 * `caCert`): fail fast, reconnect in the background. Also used by the rate
 * limit's shared Redis (server/rate_limit_redis.ts).
 */
export function clientOptions(config: StoreConfig, url = config.url): RedisOptions {
  const tls = config.caCert !== undefined
    ? { ca: config.caCert, rejectUnauthorized: true }
    : /^rediss:/i.test(url)
    ? { rejectUnauthorized: true }
    : undefined;
  return {
    lazyConnect: true,
    connectTimeout: config.connectTimeoutMs,
    commandTimeout: Math.max(config.connectTimeoutMs, 1000),
    // Fail calls during an outage instead of queueing them until the server is back.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // Reconnect in the background with a short, capped backoff.
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 10), 2000),
    connectionName: "grand_tour",
    ...(tls ? { tls } : {}),
  };
}

/** The fields of a record, in the order `get` and the scripts reply them. */
const FIELDS = ["id", "word", "definition", "createdAt", "updatedAt"] as const;

/**
 * The record of `fields` (in {@linkcode FIELDS} order), or undefined when one
 * of the first four is missing (an id without a hash).
 */
function toRecord(
  [id, word, definition, createdAt, updatedAt]: (string | null)[],
): WordRecord | undefined {
  if (id === null || word === null || definition === null || createdAt === null) return undefined;
  return updatedAt === null
    ? { id, word, definition, createdAt }
    : { id, word, definition, createdAt, updatedAt };
}

/** Records from flat {@linkcode FIELDS} fields, skipping any with a field missing. */
function toRecords(fields: (string | null)[], into: WordRecord[] = []): WordRecord[] {
  for (let i = 0; i + FIELDS.length <= fields.length; i += FIELDS.length) {
    const record = toRecord(fields.slice(i, i + FIELDS.length));
    if (record) into.push(record);
  }
  return into;
}

/** Gives words stored before search keys their key (see {@linkcode backfillSearchKeys}). */
async function backfill(client: Redis & Scripts): Promise<void> {
  await backfillSearchKeys(
    async (after, batch) => {
      const rows: Unkeyed[] = [];
      for (let from = rangeStart(after); rows.length < batch;) {
        const [stop, ...fields] = await client.wordsUnkeyed(
          IDS_KEY,
          from,
          SCAN_CHUNK,
          batch - rows.length,
          RECORD_PREFIX,
        );
        for (let i = 0; i + 2 < fields.length; i += 3) {
          rows.push({ id: fields[i], word: fields[i + 1], definition: fields[i + 2] });
        }
        if (stop === null) break;
        from = rangeStart(stop);
      }
      return rows;
    },
    async (keys) => {
      await client.wordsSetSearchKeys(
        keys.length,
        ...keys.map((k) => recordKey(k.id)),
        ...keys.map((k) => k.searchKey),
      );
    },
  );
}

/**
 * A replication position: the replication id and offset. A replica has a
 * write once it reports the primary's replication id and an offset at least
 * the primary's right after the write (`INFO replication`).
 */
export interface ReplicationOffset {
  replid: string;
  offset: bigint;
}

/** Reads `master_replid` and `<field>` out of `INFO replication`. */
export function replicationOffset(info: string, field: string): ReplicationOffset {
  const value = (name: string) => new RegExp(`^${name}:(\\S+)`, "m").exec(info)?.[1];
  const replid = value("master_replid");
  const offset = value(field);
  if (replid === undefined || offset === undefined || !/^\d+$/.test(offset)) {
    throw new Error(`redis: INFO replication has no ${field}`);
  }
  return { replid, offset: BigInt(offset) };
}

const offsets: Positions<ReplicationOffset> = {
  covers: (applied, target) => applied.replid === target.replid && applied.offset >= target.offset,
  // A new replication id (the primary restarted or failed over) starts a new history: the newest wins.
  later: (a, b) => a.replid === b.replid && a.offset > b.offset ? a : b,
};

/**
 * A replica named in `REDIS_READ_URL`, connected (within the connect timeout)
 * before the store serves, so the first reads can use it. One that does not
 * answer does not stop the store opening: it reconnects in the background and
 * the router leaves it out until it does.
 */
async function openReplica(
  url: string,
  config: StoreConfig,
): Promise<Replica<ReplicationOffset, Redis & Scripts>> {
  const client = withScripts(new Redis(url, clientOptions(config, url)));
  client.on("error", () => {}); // a replica down is the router's business: it is left out
  const connecting = client.connect();
  await deadline(connecting, config.connectTimeoutMs, "").catch(() => {});
  return {
    reader: client,
    applied: async () => replicationOffset(await client.info("replication"), "slave_repl_offset"),
    close() {
      client.disconnect();
      return Promise.resolve();
    },
  };
}

class RedisWordStore implements WordStore {
  readonly #router: ReadRouter<ReplicationOffset, Redis & Scripts>;

  constructor(
    private readonly client: Redis & Scripts,
    replicas: Replica<ReplicationOffset, Redis & Scripts>[] = [],
    router: RouterOptions = {},
  ) {
    this.#router = new ReadRouter(client, replicas, offsets, router);
  }

  add(record: NewWord): Promise<void> {
    return this.addMany([record]);
  }

  /**
   * After an acknowledged write: the primary's replication offset, which now
   * counts the write (one `INFO replication`; no `WAIT`, which would hold the
   * shared connection). For {@linkcode ReadRouter.beforeWrite}.
   */
  async #offset(): Promise<ReplicationOffset> {
    return replicationOffset(await this.client.info("replication"), "master_repl_offset");
  }

  /** The hashes and their index entries in one MULTI/EXEC: a reader never sees an id without its hash. */
  async addMany(records: NewWord[]): Promise<void> {
    const afterWrite = this.#router.beforeWrite();
    const tx = this.client.multi();
    for (const r of records) {
      tx.hset(recordKey(r.id), {
        id: r.id,
        word: r.word,
        definition: r.definition,
        createdAt: r.createdAt,
        searchKey: r.searchKey,
      });
    }
    tx.zadd(IDS_KEY, ...records.flatMap((r) => [0, r.id]));
    const replies = await tx.exec();
    if (!replies) throw new Error("redis: transaction aborted");
    for (const [err] of replies) if (err) throw err;
    await afterWrite(() => this.#offset());
  }

  /**
   * One HMGET of the word's hash: undefined when it is gone, `updatedAt` once
   * edited. From the primary: edits compare-and-set what it returns.
   */
  async get(id: string): Promise<WordRecord | undefined> {
    return toRecord(await this.client.hmget(recordKey(id), ...FIELDS));
  }

  /** One {@linkcode REPLACE} script: compare the revision, then write, atomically. */
  async replace(r: NewWord, revision: string): Promise<boolean> {
    const afterWrite = this.#router.beforeWrite();
    const written = await this.client.wordsReplace(
      recordKey(r.id),
      revision,
      r.word,
      r.definition,
      r.searchKey,
      r.updatedAt!,
    );
    if (written === 1) await afterWrite(() => this.#offset());
    return written === 1;
  }

  /** One {@linkcode REMOVE} script: compare the revision, then DEL the hash and ZREM the id. */
  async remove(id: string, revision: string): Promise<boolean> {
    const afterWrite = this.#router.beforeWrite();
    const removed = await this.client.wordsRemove(recordKey(id), IDS_KEY, revision, id) === 1;
    if (removed) await afterWrite(() => this.#offset());
    return removed;
  }

  /** A page or a search, on a replica that has this gateway's writes, else on the primary. */
  list(query: ListQuery): Promise<WordRecord[]> {
    return this.#router.read((client) => listOn(client, query));
  }

  nodes() {
    return this.#router.nodes();
  }

  ping(): Promise<void> {
    return this.#router.ping(async () => {
      const reply = await this.client.ping();
      if (reply !== "PONG") throw new Error("redis: unexpected PING reply");
    });
  }

  async close(): Promise<void> {
    await this.#router.close();
    try {
      if (this.client.status === "ready") await this.client.quit();
    } catch {
      // closing anyway
    } finally {
      this.client.disconnect();
    }
  }
}

/** One page (one EVALSHA) or a search (one per {@linkcode SCAN_CHUNK} ids) on `client`. */
async function listOn(
  client: Redis & Scripts,
  { search, limit, offset, after }: ListQuery,
): Promise<WordRecord[]> {
  const from = rangeStart(after);
  if (search === undefined || search === "") {
    const fields = await client.wordsPage(IDS_KEY, from, offset, limit, RECORD_PREFIX);
    return toRecords(fields);
  }
  const matches: WordRecord[] = [];
  let skip = offset;
  for (let start = from;;) {
    const [stop, skipped, ...fields] = await client.wordsSearch(
      IDS_KEY,
      start,
      search,
      skip,
      limit - matches.length,
      SCAN_CHUNK,
      RECORD_PREFIX,
    );
    toRecords(fields, matches);
    skip -= skipped;
    if (matches.length >= limit || stop === null) return matches;
    start = rangeStart(stop);
  }
}

/**
 * Connects to Redis at `config.url` (TLS for `rediss:` or when `caCert` is
 * set) and gives words stored before search keys their key.
 */
export const open: OpenStore = async (config) => {
  const client = withScripts(new Redis(config.url, clientOptions(config)));
  // Errors surface through rejected calls; without a listener ioredis logs them.
  // The first one explains a failed open better than "Connection is closed.".
  let firstError: Error | undefined;
  client.on("error", (e: Error) => {
    firstError ??= e;
  });
  const connecting = client.connect();
  connecting.catch(() => {}); // may settle after the timeout below
  try {
    await deadline(connecting, config.connectTimeoutMs, "redis: connection timed out");
    await client.ping();
    await backfill(client);
    const replicas = await Promise.all(
      (config.readUrls ?? []).map((url) => openReplica(url, config)),
    );
    return new RedisWordStore(client, replicas, routerOptions("REDIS", config));
  } catch (e) {
    client.disconnect();
    throw firstError ?? e;
  }
};
