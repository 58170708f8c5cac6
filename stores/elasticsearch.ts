/**
 * Elasticsearch store, through the official `@elastic/elasticsearch` client.
 *
 * Data model: index `words`, one document per record with the record's `id`
 * as `_id`, created on open with an explicit, strict mapping
 * ({@linkcode MAPPINGS}): `word` and `definition` are analysed `text` with a
 * `keyword` subfield each, `searchKey` a `keyword` holding the folded text
 * search compares (`records.ts`), `createdAt` a `date`, `id` a `keyword` (the
 * sort key: ids are UUIDv7 strings, so sorting by `id` is insertion order).
 * `_source` keeps the record exactly as sent, and records are read back from
 * it, so every string round-trips byte for byte. An index from before search
 * keys gets the field added to its mapping and its documents a backfill when
 * the store opens.
 *
 * Deleting leaves a tombstone first (`deleted`, see `remove`), hidden from
 * every read, then deletes it; every conditional write carries a `writeId`
 * of its own, so a write Elasticsearch ran twice (a primary lost mid-write)
 * is not mistaken for a conflict.
 *
 * Writes use `refresh: "wait_for"`: `add` resolves once the document is
 * indexed and visible to search, so a following `list` sees it. The index
 * refreshes every 250 ms ({@linkcode SETTINGS}), so that wait stays short.
 * Concurrent adds share `_bulk` requests (`elasticsearch_bulk.ts`).
 *
 * Search is a `wildcard` query on `searchKey`, the folded needle wrapped in
 * `*…*` with `*`, `?` and `\` escaped and matched case-sensitively (the
 * gateway folded both sides): the literal matches, oldest first, exactly what
 * every other store returns. There is no fuzzy or typo-tolerant matching, and
 * no query-string syntax is ever parsed.
 *
 * Paging: `from`/`size` while `offset + limit` stays within the default
 * `index.max_result_window` (10 000); deeper pages skip ahead with
 * `search_after` on `id` in steps of 10 000 sort values, so any offset works
 * without raising index settings.
 *
 * Nodes: `ELASTICSEARCH_URL` may list several nodes of one cluster,
 * comma-separated ({@linkcode parseNodes}); the client spreads requests over
 * them and sends a request that could not reach one node to the next.
 *
 * Failing fast: connecting is bounded by `connectTimeoutMs`, every request by
 * the gateway's own budget per call (`requestTimeoutMs`, `REQUEST_TIMEOUT_MS`),
 * and with a single node the client never retries on its own.
 * Credentials in the URL go to `auth`, never into the node URL or a message.
 * With `caCert` the client speaks TLS (an `http:` URL is upgraded to
 * `https:`) and verifies the server against that CA.
 *
 * `ping` and the reachability check of `open` use `GET /_cluster/health`, not
 * `GET /` (`client.info()`/`client.ping()`): the integration-test
 * distribution the matrix runs has no root endpoint.
 *
 * @module
 */
import { Client, errors } from "@elastic/elasticsearch";
import type { estypes } from "@elastic/elasticsearch";
import { BulkAdds } from "./elasticsearch_bulk.ts";
import { revisionOf } from "./edits.ts";
import { backfillSearchKeys, type Unkeyed } from "./records.ts";
import { settings } from "./elasticsearch_settings.ts";
import { schemeProblem, splitNodes } from "./settings.ts";
import type { ListQuery, NewWord, OpenStore, StoreConfig, WordRecord, WordStore } from "./types.ts";

/** The index of records. */
export const INDEX = "words";

/**
 * Milliseconds one request may take when the configuration does not say
 * (`StoreConfig.requestTimeoutMs`, the gateway's budget per call). It was a
 * fixed 1.5 s, shorter than the gateway's 2 s: writes wait for a refresh, and
 * on a busy cluster (a node rejoining, recovering its replica) some took
 * 1.5–1.9 s and failed on this bound while the gateway would have waited.
 */
export const REQUEST_TIMEOUT_MS = 2_000;

/** The client's bound on one request: the gateway's budget per call. */
function requestTimeoutOf(config: StoreConfig): number {
  return config.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
}

/** Milliseconds creating the index may take on first use (cluster state update, shard start). */
const CREATE_TIMEOUT_MS = 10_000;

/** Elasticsearch's default `index.max_result_window`: `from + size` may not exceed it. */
export const RESULT_WINDOW = 10_000;

/** The explicit mapping of {@linkcode INDEX}. */
export const MAPPINGS: estypes.MappingTypeMapping = {
  dynamic: "strict",
  properties: {
    id: { type: "keyword" },
    word: { type: "text", fields: { keyword: { type: "keyword" } } },
    definition: { type: "text", fields: { keyword: { type: "keyword" } } },
    createdAt: { type: "date", format: "strict_date_optional_time" },
    searchKey: { type: "keyword" },
    updatedAt: { type: "date", format: "strict_date_optional_time" },
    deleted: { type: "boolean" },
    writeId: { type: "keyword" },
  },
};

/** Fields newer than the first mapping: added to an existing index on open. */
const ADDED_FIELDS = ["searchKey", "updatedAt", "deleted", "writeId"] as const;

/**
 * One primary shard; a replica only where there is a second node to hold it.
 * A short explicit refresh interval bounds how long `refresh: "wait_for"`
 * holds an `add` (about 1 s with the default, too close to the request
 * timeout), and keeps the shard from going search-idle.
 */
export const SETTINGS: estypes.IndicesIndexSettings = {
  number_of_shards: 1,
  auto_expand_replicas: "0-1",
  refresh_interval: "250ms",
};

/** The fields a page reads back (not the search key). */
const SOURCE = ["id", "word", "definition", "createdAt", "updatedAt"];

/** What a single-document read returns: a page's fields, and the marks of edits and deletions. */
const DOC_SOURCE = [...SOURCE, "deleted", "writeId"];

/** A stored document: a record, a tombstone (`deleted`), and which write left it (`writeId`). */
type Doc = WordRecord & { deleted?: boolean; writeId?: string };

/** `text` as a Lucene wildcard pattern that matches it literally. */
export function escapeWildcard(text: string): string {
  return text.replace(/[\\*?]/g, "\\$&");
}

/** The query for a search needle (every live word when there is none); tombstones never match. */
export function searchQuery(search: string | undefined): estypes.QueryDslQueryContainer {
  const live = { must_not: [{ term: { deleted: true } }] };
  if (search === undefined || search === "") return { bool: live };
  return {
    bool: {
      ...live,
      filter: [{ wildcard: { searchKey: { value: `*${escapeWildcard(search)}*` } } }],
    },
  };
}

/**
 * The nodes of `ELASTICSEARCH_URL`, one URL or several separated by commas,
 * each an `http(s)://` URL (checked one by one): without credentials, which
 * come from the first URL that has them, and upgraded to `https:` when a CA
 * is given. Errors never echo the URL.
 */
export function parseNodes(config: StoreConfig): {
  nodes: URL[];
  username: string;
  password: string;
} {
  const out = { nodes: [] as URL[], username: "", password: "" };
  for (const part of splitNodes(config.url)) {
    let url: URL;
    try {
      url = new URL(part);
    } catch {
      throw new Error("ELASTICSEARCH_URL is not a valid URL or comma-separated list of URLs");
    }
    const problem = schemeProblem(settings, url);
    if (problem) throw new Error(problem);
    if (!out.username && !out.password && (url.username || url.password)) {
      out.username = decodeURIComponent(url.username);
      out.password = decodeURIComponent(url.password);
    }
    url.username = "";
    url.password = "";
    if (config.caCert && url.protocol === "http:") url.protocol = "https:";
    out.nodes.push(url);
  }
  if (out.nodes.length === 0) throw new Error("ELASTICSEARCH_URL names no node");
  return out;
}

/**
 * Client options for `config`: every node of the URL list (requests go round
 * the nodes, a node that refuses a connection is skipped and retried on the
 * next one), credentials moved from the URL to `auth`, TLS when a CA is given.
 */
function clientOptions(config: StoreConfig) {
  const { nodes, username, password } = parseNodes(config);
  return {
    nodes: nodes.map((url) => ({ url })),
    ...(username || password ? { auth: { username, password } } : {}),
    // `timeout` bounds the TCP/TLS connect (undici's connector takes it from here).
    tls: {
      timeout: config.connectTimeoutMs,
      ...(config.caCert ? { ca: config.caCert } : {}),
    },
    requestTimeout: requestTimeoutOf(config),
    // With one node, never retried. With several, a request that could not connect (a node
    // killed) or got 502/503/504 goes to the next node; one that timed out is not retried
    // (the client's `retryOnTimeout` is off), so a stalled node costs one request timeout.
    maxRetries: nodes.length - 1,
    sniffOnStart: false,
  };
}

function alreadyExists(e: unknown): boolean {
  return e instanceof errors.ResponseError &&
    (e.body as { error?: { type?: string } } | undefined)?.error?.type ===
      "resource_already_exists_exception";
}

/**
 * Creates {@linkcode INDEX} with the explicit mapping unless it exists, and
 * adds fields newer than an existing index (`searchKey`); safe when racing.
 */
async function ensureIndex(client: Client, timeoutMs: number): Promise<void> {
  if (await client.indices.exists({ index: INDEX }, { requestTimeout: timeoutMs })) {
    await client.indices.putMapping(
      {
        index: INDEX,
        properties: Object.fromEntries(ADDED_FIELDS.map((f) => [f, MAPPINGS.properties![f]])),
      },
      { requestTimeout: CREATE_TIMEOUT_MS },
    );
    return;
  }
  try {
    await client.indices.create(
      { index: INDEX, settings: SETTINGS, mappings: MAPPINGS },
      { requestTimeout: CREATE_TIMEOUT_MS },
    );
  } catch (e) {
    if (!alreadyExists(e)) throw e;
  }
}

/**
 * Fails unless {@linkcode INDEX} exists with this store's mapping (`id` a
 * keyword). An index deleted under a running gateway fails the ping, and the
 * reconnect recreates it. One that an `add` auto-created meanwhile with a
 * dynamic mapping (Elasticsearch creates a missing index on write) cannot be
 * sorted by id: the store stays unavailable, saying so, until it is deleted
 * or reindexed.
 */
async function checkIndex(client: Client, timeoutMs: number): Promise<void> {
  const mappings = await client.indices.getMapping({ index: INDEX }, { requestTimeout: timeoutMs });
  const id = Object.values(mappings)[0]?.mappings?.properties?.id;
  if (id?.type !== "keyword") {
    throw new Error(
      `Elasticsearch index ${INDEX} has a mapping this gateway did not create (id is not a keyword): delete or reindex it`,
    );
  }
}

/** Gives documents indexed before search keys their key (see {@linkcode backfillSearchKeys}). */
async function backfill(client: Client): Promise<void> {
  const keyed = await backfillSearchKeys(
    async (after, size) => {
      const res = await client.search<Unkeyed>({
        index: INDEX,
        query: {
          bool: { must_not: [{ exists: { field: "searchKey" } }, { term: { deleted: true } }] },
        },
        sort: [{ id: "asc" }],
        size,
        _source: ["id", "word", "definition"],
        track_total_hits: false,
        ...(after ? { search_after: [after] } : {}),
      });
      return res.hits.hits.map((h) => h._source!);
    },
    async (keys) => {
      const res = await client.bulk({
        operations: keys.flatMap((k) => [
          { update: { _index: INDEX, _id: k.id } },
          { doc: { searchKey: k.searchKey } },
        ]),
      }, { requestTimeout: CREATE_TIMEOUT_MS });
      // A document deleted meanwhile is not recreated (no upsert); anything else is a failure.
      const failed = res.items.find((i) => i.update?.error && i.update.status !== 404);
      if (failed) throw new Error(`Elasticsearch backfill failed: ${failed.update?.error?.type}`);
    },
  );
  if (keyed > 0) await client.indices.refresh({ index: INDEX });
}

function toRecord(source: WordRecord | undefined): WordRecord {
  if (!source) throw new Error("Elasticsearch returned a hit without its source");
  return {
    id: source.id,
    word: source.word,
    definition: source.definition,
    createdAt: source.createdAt,
    ...(source.updatedAt === undefined ? {} : { updatedAt: source.updatedAt }),
  };
}

class ElasticsearchStore implements WordStore {
  constructor(private readonly client: Client, private readonly timeoutMs: number) {}

  /** Concurrent adds, coalesced into bulk requests ({@linkcode BulkAdds}). */
  readonly #adds = new BulkAdds((records) => this.#create(records, this.timeoutMs));

  /** Creates the document; concurrent adds share bulk requests. */
  add(record: NewWord): Promise<void> {
    return this.#adds.add(record);
  }

  async addMany(records: NewWord[]): Promise<void> {
    const failed = (await this.#create(records, CREATE_TIMEOUT_MS)).find((r) => r !== true);
    if (failed) throw failed;
  }

  /**
   * Creates every record in one bulk request (`create` on the gateway-assigned
   * ids), visible to search when it resolves: per record, `true` or why not.
   * Sent again on another node after its node died with the outcome unknown
   * (the client retries a lost connection), it never overwrites anything, and
   * the conflict an item then meets is success when the stored document is
   * that record.
   */
  async #create(records: readonly NewWord[], requestTimeout: number): Promise<(true | Error)[]> {
    const res = await this.client.bulk({
      index: INDEX,
      operations: records.flatMap((r) => [
        { create: { _id: r.id } },
        {
          id: r.id,
          word: r.word,
          definition: r.definition,
          createdAt: r.createdAt,
          searchKey: r.searchKey,
        },
      ]),
      refresh: "wait_for",
    }, { requestTimeout });
    return await Promise.all(res.items.map(async (item, i): Promise<true | Error> => {
      const error = item.create?.error;
      if (!error) return true;
      if (item.create?.status !== 409) {
        return new Error(`Elasticsearch create failed: ${error.type}`);
      }
      const r = records[i];
      const s = (await this.#read(r.id))?._source;
      return s && s.word === r.word && s.definition === r.definition && s.createdAt === r.createdAt
        ? true
        : new Error(`Elasticsearch already holds another word with id ${r.id}`);
    }));
  }

  /**
   * The document and its sequence number (realtime: sees every acknowledged
   * write), tombstones included.
   */
  async #read(id: string) {
    const doc = await this.client.get<Doc>(
      { index: INDEX, id, _source: DOC_SOURCE, realtime: true },
      { ignore: [404] },
    );
    return doc.found ? doc : undefined;
  }

  /** The live document (not a tombstone), if any. */
  async #live(id: string) {
    const doc = await this.#read(id);
    return doc && !doc._source?.deleted ? doc : undefined;
  }

  async get(id: string): Promise<WordRecord | undefined> {
    const doc = await this.#live(id);
    return doc ? toRecord(doc._source) : undefined;
  }

  /**
   * Compare-and-set: reads the document and its sequence number, checks its
   * revision, and writes only if the document is still at that sequence
   * number (`if_seq_no`/`if_primary_term`): a writer in between, or a
   * deletion, makes the write a version conflict, and nothing is created.
   * The new document carries a `writeId` of this call alone, so a conflict
   * can be told apart from this call's own write applied twice
   * ({@linkcode ElasticsearchStore.#unlessConflict}).
   */
  async replace(r: NewWord, revision: string): Promise<boolean> {
    const doc = await this.#live(r.id);
    if (!doc || revisionOf(toRecord(doc._source)) !== revision) return false;
    const writeId = crypto.randomUUID();
    return await this.#unlessConflict(r.id, writeId, () =>
      this.client.index({
        index: INDEX,
        id: r.id,
        document: {
          id: r.id,
          word: r.word,
          definition: r.definition,
          createdAt: r.createdAt,
          searchKey: r.searchKey,
          updatedAt: r.updatedAt,
          writeId,
        },
        if_seq_no: doc._seq_no,
        if_primary_term: doc._primary_term,
        refresh: "wait_for",
      }));
  }

  /**
   * Deletes in two steps: a compare-and-set like {@linkcode replace} turns
   * the document into a tombstone (`deleted`, with this call's `writeId`),
   * which every read and page skips; then the tombstone itself is deleted,
   * on its own sequence number, without waiting. The tombstone is what lets
   * a deletion that Elasticsearch applied and then ran again (below) know
   * it was its own: a plain `delete` that finds nothing cannot tell whose
   * deletion it met. A tombstone whose own deletion failed stays, hidden.
   */
  async remove(id: string, revision: string): Promise<boolean> {
    const doc = await this.#live(id);
    if (!doc || revisionOf(toRecord(doc._source)) !== revision) return false;
    const writeId = crypto.randomUUID();
    const deleted = await this.#unlessConflict(id, writeId, () =>
      this.client.index({
        index: INDEX,
        id,
        document: { ...doc._source, deleted: true, writeId },
        if_seq_no: doc._seq_no,
        if_primary_term: doc._primary_term,
        refresh: "wait_for",
      }));
    if (deleted) this.#purge(id, writeId);
    return deleted;
  }

  /** Deletes the tombstone `writeId` left, unless something replaced it; never fails a caller. */
  #purge(id: string, writeId: string): void {
    const purging = (async () => {
      const tomb = await this.#read(id);
      if (tomb?._source?.writeId !== writeId) return;
      await this.client.delete({
        index: INDEX,
        id,
        if_seq_no: tomb._seq_no,
        if_primary_term: tomb._primary_term,
      });
    })().catch(() => {
      // a tombstone left behind is hidden from every read
    });
    this.#purges.add(purging);
    purging.finally(() => this.#purges.delete(purging));
  }

  /** Tombstone deletions still in flight (awaited by `close`). */
  readonly #purges = new Set<Promise<void>>();

  /**
   * True once `write` succeeded; false when it lost to another writer (409)
   * or the document is gone (404), unless the document now carries this
   * call's `writeId`: then the write had applied, and what answered was a
   * second run of it. Elasticsearch runs a write again on its own when the
   * primary shard's node dies mid-write (the coordinating node retries on
   * the promoted replica), and the client does when a node's connection
   * dies; either meets the first run's result as a conflict.
   */
  async #unlessConflict(
    id: string,
    writeId: string,
    write: () => Promise<unknown>,
  ): Promise<boolean> {
    try {
      await write();
      return true;
    } catch (e) {
      if (e instanceof errors.ResponseError && (e.statusCode === 409 || e.statusCode === 404)) {
        return (await this.#read(id))?._source?.writeId === writeId;
      }
      throw e;
    }
  }

  async list({ search, limit, offset, after: cursor }: ListQuery): Promise<WordRecord[]> {
    const query = searchQuery(search);
    const sort: estypes.Sort = [{ id: "asc" }];
    // A cursor's id is a sort value: `search_after` seeks to it at the cost of a first page.
    let after: estypes.SortResults | undefined = cursor === undefined ? undefined : [cursor];
    if (after === undefined && offset + limit <= RESULT_WINDOW) {
      const res = await this.client.search<WordRecord>({
        index: INDEX,
        query,
        sort,
        from: offset,
        size: limit,
        _source: SOURCE,
        track_total_hits: false,
      });
      return res.hits.hits.map((h) => toRecord(h._source));
    }
    // Deep offset: walk the sort values to the offset, then read the page after it.
    for (let skip = offset; skip > 0;) {
      const step = Math.min(skip, RESULT_WINDOW);
      const res = await this.client.search({
        index: INDEX,
        query,
        sort,
        size: step,
        track_total_hits: false,
        stored_fields: ["_none_"],
        filter_path: ["hits.hits.sort"],
        ...(after ? { search_after: after } : {}),
      });
      const hits = res.hits?.hits ?? [];
      if (hits.length < step) return [];
      after = hits[hits.length - 1].sort;
      skip -= step;
    }
    const res = await this.client.search<WordRecord>({
      index: INDEX,
      query,
      sort,
      size: limit,
      _source: SOURCE,
      track_total_hits: false,
      ...(after ? { search_after: after } : {}),
    });
    return res.hits.hits.map((h) => toRecord(h._source));
  }

  async ping(): Promise<void> {
    const health = await this.client.cluster.health();
    if (health.status === "red") throw new Error("Elasticsearch cluster health is red");
    await checkIndex(this.client, this.timeoutMs);
  }

  async close(): Promise<void> {
    await Promise.all(this.#purges);
    try {
      await this.client.close();
    } catch {
      // closing never fails the caller
    }
  }
}

/** Connects, checks the cluster answers, creates the `words` index when missing. */
export const open: OpenStore = async (config) => {
  const client = new Client(clientOptions(config));
  try {
    await client.cluster.health({}, { requestTimeout: config.connectTimeoutMs });
    const timeoutMs = Math.max(config.connectTimeoutMs, requestTimeoutOf(config));
    await ensureIndex(client, timeoutMs);
    await checkIndex(client, timeoutMs);
    await backfill(client);
  } catch (e) {
    await client.close().catch(() => {});
    throw e;
  }
  return new ElasticsearchStore(client, requestTimeoutOf(config));
};
