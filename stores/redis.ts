/**
 * Redis store, through `ioredis`.
 *
 * Data model (database from the URL, `/0` by default):
 * - `grand_tour:words:ids`: a sorted set of every record id, all with score 0,
 *   so members are ordered lexicographically, which for UUIDv7 ids is id
 *   (insertion) order; `ZRANGE key offset offset+limit-1` reads one page
 *   directly in O(log N + limit).
 * - `grand_tour:word:<id>`: a hash per record with `id`, `word`, `definition`,
 *   `createdAt`, stored as given.
 *
 * Both are written in one MULTI/EXEC, so a reader never sees an id without its
 * hash. Every `add` is kept (ids are unique), so the same word added twice is
 * two entries. Searches scan the id index in chunks and filter in TypeScript
 * with {@linkcode matchesSearch}, stopping once `offset + limit` matches are
 * found: nothing of the search text reaches Redis, so nothing is interpreted.
 *
 * The client fails fast: no offline queue, no resending of unanswered commands
 * after a reconnect, a per-command timeout, and `open` bounded by
 * `connectTimeoutMs`.
 *
 * @module
 */
import { Redis, type RedisOptions } from "ioredis";
import { matchesSearch } from "./records.ts";
import type { ListQuery, OpenStore, StoreConfig, WordRecord, WordStore } from "./types.ts";

/** Sorted set of every record id (score 0, ordered by member). */
export const IDS_KEY = "grand_tour:words:ids";
/** Hash key of one record. */
export function recordKey(id: string): string {
  return `grand_tour:word:${id}`;
}

const FIELDS = ["id", "word", "definition", "createdAt"] as const;
/** Ids read per round trip while searching. */
const SCAN_CHUNK = 500;

function options(config: StoreConfig): RedisOptions {
  const tls = config.caCert !== undefined
    ? { ca: config.caCert, rejectUnauthorized: true }
    : /^rediss:/i.test(config.url)
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

function toRecord(values: (string | null)[] | null | undefined): WordRecord | undefined {
  if (!values || values.some((v) => v === null || v === undefined)) return undefined;
  const [id, word, definition, createdAt] = values as string[];
  return { id, word, definition, createdAt };
}

/** Reads the records of `ids` in one pipelined round trip, keeping their order. */
async function readRecords(client: Redis, ids: string[]): Promise<WordRecord[]> {
  if (ids.length === 0) return [];
  const pipeline = client.pipeline();
  for (const id of ids) pipeline.hmget(recordKey(id), ...FIELDS);
  const replies = await pipeline.exec();
  if (!replies) throw new Error("REDIS: the pipeline was not executed");
  const out: WordRecord[] = [];
  for (const [err, value] of replies) {
    if (err) throw err;
    const record = toRecord(value as (string | null)[]);
    if (record) out.push(record);
  }
  return out;
}

class RedisWordStore implements WordStore {
  constructor(private readonly client: Redis) {}

  async add(record: WordRecord): Promise<void> {
    const replies = await this.client
      .multi()
      .hset(recordKey(record.id), {
        id: record.id,
        word: record.word,
        definition: record.definition,
        createdAt: record.createdAt,
      })
      .zadd(IDS_KEY, 0, record.id)
      .exec();
    if (!replies) throw new Error("redis: transaction aborted");
    for (const [err] of replies) if (err) throw err;
  }

  async list({ search, limit, offset, after }: ListQuery): Promise<WordRecord[]> {
    // Members all score 0, so the lexical range after a cursor's id is the list after it.
    const from = after === undefined ? "-" : `(${after}`;
    if (search === undefined || search === "") {
      const ids = await this.client.zrangebylex(IDS_KEY, from, "+", "LIMIT", offset, limit);
      return await readRecords(this.client, ids);
    }
    const wanted = offset + limit;
    const matches: WordRecord[] = [];
    for (let start = from; matches.length < wanted;) {
      const ids = await this.client.zrangebylex(IDS_KEY, start, "+", "LIMIT", 0, SCAN_CHUNK);
      for (const record of await readRecords(this.client, ids)) {
        if (matchesSearch(record, search)) matches.push(record);
        if (matches.length >= wanted) break;
      }
      if (ids.length < SCAN_CHUNK) break;
      start = `(${ids[ids.length - 1]}`;
    }
    return matches.slice(offset, wanted);
  }

  async ping(): Promise<void> {
    const reply = await this.client.ping();
    if (reply !== "PONG") throw new Error("redis: unexpected PING reply");
  }

  async close(): Promise<void> {
    try {
      if (this.client.status === "ready") await this.client.quit();
    } catch {
      // closing anyway
    } finally {
      this.client.disconnect();
    }
  }
}

/** Connects to Redis at `config.url` (TLS for `rediss:` or when `caCert` is set). */
export const open: OpenStore = async (config) => {
  const client = new Redis(config.url, options(config));
  // Errors surface through rejected calls; without a listener ioredis logs them.
  // The first one explains a failed open better than "Connection is closed.".
  let firstError: Error | undefined;
  client.on("error", (e: Error) => {
    firstError ??= e;
  });
  const connecting = client.connect();
  connecting.catch(() => {}); // may settle after the timeout below
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      connecting,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("redis: connection timed out")),
          config.connectTimeoutMs,
        );
      }),
    ]);
    const store = new RedisWordStore(client);
    await store.ping();
    return store;
  } catch (e) {
    client.disconnect();
    throw firstError ?? e;
  } finally {
    clearTimeout(timer);
  }
};
