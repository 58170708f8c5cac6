/**
 * MongoDB store (any MongoDB wire-protocol server; the matrix runs FerretDB),
 * through the official `mongodb` driver.
 *
 * Data model: database from the URL path (`grand_tour` when the URL has
 * none), collection `words`, one document per record,
 * `{ id, word, definition, createdAt, searchKey }` with every field the string the
 * gateway built (so `createdAt` round-trips byte for byte), plus the
 * server's own `_id`. A unique index `id_1` on `id`, created on open, keeps
 * ids unique and serves the listing order: ids are UUIDv7 strings, so
 * `sort({ id: 1 })` is insertion order.
 *
 * Writes use `w: "majority"`, so `add` resolves once a majority of a replica
 * set (or the standalone server) acknowledged the write. Reads use whatever
 * read preference / read concern the URL asks for; nothing here overrides it.
 * Read-your-writes under secondary reads: every call runs in its own
 * causally consistent session, and the store keeps the highest
 * `operationTime` any of its calls saw, advancing each new session to it, so a
 * `list` after an `add` carries `afterClusterTime` and a secondary waits until
 * it has replicated that write. Standalone servers (and FerretDB) report no
 * operation time; the sessions then add nothing.
 *
 * Search is a `$regex` on `searchKey`, the folded text the gateway writes
 * beside each word (`records.ts`), with the folded needle fully escaped
 * (every regex metacharacter backslashed, control characters as `\xHH`) and
 * no options: a literal substring match, the folding done by the gateway, not
 * by the server's regex engine. Documents from before keys existed get one by
 * a backfill when the store opens. User strings only ever appear as values,
 * never as keys, so `$where` or `$gt` in a word is stored and matched as text.
 *
 * Failing fast: server selection and connecting are bounded by
 * `connectTimeoutMs`, and a socket that does not answer an operation is
 * dropped after `max(2000, 2 × connectTimeoutMs)` ms.
 *
 * @module
 */
import {
  type ClientSession,
  type Collection,
  MongoClient,
  type MongoClientOptions,
  type Timestamp,
} from "mongodb";
import { backfillSearchKeys, type Unkeyed } from "./records.ts";
import type { ListQuery, NewWord, OpenStore, StoreConfig, WordRecord, WordStore } from "./types.ts";

/** Database used when the URL names none. */
export const DEFAULT_DATABASE = "grand_tour";
/** The collection of records. */
export const COLLECTION = "words";
/** The collection of edits in flight (see {@linkcode ClaimDocument}). */
export const CLAIMS = "word_claims";
/** Name of the unique index on `id`. */
export const ID_INDEX = "id_1";

/** The stored shape. */
export interface WordDocument {
  /** The word's id; documents written before edits existed have a server-made ObjectId. */
  _id?: string;
  id: string;
  word: string;
  definition: string;
  createdAt: string;
  /** Missing on documents written before search keys, until the backfill. */
  searchKey?: string;
  /** Missing until the word's first edit. */
  updatedAt?: string;
  /**
   * The word's revision (`updatedAt`, else `createdAt`), the key of its
   * compare-and-set: one equality that a server pushing down nothing but
   * `_id` still evaluates without `$or`. Missing on documents written before edits.
   */
  rev?: string;
}

const PROJECTION = {
  _id: 0,
  id: 1,
  word: 1,
  definition: 1,
  createdAt: 1,
  updatedAt: 1,
} as const;

/**
 * The document `id` at `revision` (its `updatedAt`, or its `createdAt` while
 * it has none): the filter of a compare-and-set, which never upserts.
 */
function atRevision(address: Address, revision: string) {
  if ("_id" in address) return { ...address, rev: revision };
  // Written before edits existed: no `rev` yet.
  return {
    ...address,
    $or: [
      { rev: revision },
      { rev: { $exists: false }, updatedAt: revision },
      { rev: { $exists: false }, updatedAt: { $exists: false }, createdAt: revision },
    ],
  };
}

/**
 * How a word's document is found: by `_id` (the word's id, since edits
 * existed: servers that push down only `_id` equality, like FerretDB v1, find
 * it at once) or, for a document written before, by `id` (FerretDB scans the
 * collection for that).
 */
type Address = { _id: string } | { id: string };

/**
 * The database named in a MongoDB connection string's path, or
 * {@linkcode DEFAULT_DATABASE}. (The driver itself falls back to `test`.)
 */
export function databaseOf(url: string): string {
  const rest = url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
  const slash = rest.indexOf("/");
  if (slash < 0) return DEFAULT_DATABASE;
  const path = rest.slice(slash + 1).split("?")[0];
  return path === "" ? DEFAULT_DATABASE : decodeURIComponent(path);
}

/** `text` as a regular expression that matches it literally (PCRE and Go RE2 alike). */
export function literalPattern(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|\-/#]/g, "\\$&").replace(
    // deno-lint-ignore no-control-regex -- control characters are what this escapes
    /[\u0000-\u001f\u007f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

function clientOptions(config: StoreConfig): MongoClientOptions {
  return {
    appName: "grand-tour",
    serverSelectionTimeoutMS: config.connectTimeoutMs,
    connectTimeoutMS: config.connectTimeoutMs,
    // Only armed while an operation waits for its reply; idle pooled sockets are not affected.
    socketTimeoutMS: Math.max(2_000, 2 * config.connectTimeoutMs),
    ...(config.caCert !== undefined ? { tls: true, ca: config.caCert } : {}),
  };
}

function toRecord(doc: Partial<WordDocument>): WordRecord {
  return {
    id: String(doc.id),
    word: String(doc.word),
    definition: String(doc.definition),
    createdAt: String(doc.createdAt),
    ...(typeof doc.updatedAt === "string" ? { updatedAt: doc.updatedAt } : {}),
  };
}

/** What an edit sets on a document. */
interface Change {
  word: string;
  definition: string;
  searchKey: string;
  updatedAt: string;
  rev: string;
}

/**
 * A claim on one transition of one word: at most one can exist per word and
 * revision (`_id` is unique), which makes an edit a compare-and-set even on a
 * server whose `updateOne` is not atomic under concurrency (FerretDB v1 reads
 * and writes the document in two steps: two concurrent conditional updates of
 * one revision both apply). A claim stays in {@linkcode CLAIMS} after its
 * edit applied, so that no later writer who read the same revision can claim
 * it again while the first write may still be landing; the next edit of the
 * word removes it (and a deletion every claim of its word), so a word keeps
 * at most one.
 */
interface ClaimDocument {
  _id: string;
  id: string;
  revision: string;
  change: Change | "delete";
  /** When it was claimed (ms since 1970, the claimer's clock). */
  at: number;
}

/**
 * A claim older than this whose edit has not applied is a dead writer's:
 * another writer applies it for them. Younger, its writer may still be
 * writing (FerretDB's two-step update must not run twice at once), so the
 * others wait (their edit lost the race and is retried). Above the driver's
 * socket timeout, so no live writer's call is still in flight.
 */
const CLAIM_ABANDONED_MS = 5_000;

/** MongoDB's duplicate key error. */
const DUPLICATE_KEY = 11000;

class MongoWordStore implements WordStore {
  /** The newest operation time any call of this store saw (replica sets and sharded clusters only). */
  #operationTime: Timestamp | undefined;

  constructor(
    private readonly client: MongoClient,
    private readonly words: Collection<WordDocument>,
    private readonly claims: Collection<ClaimDocument>,
  ) {}

  /** Runs `work` in a causally consistent session that starts after everything this store saw. */
  async #causal<T>(work: (session: ClientSession) => Promise<T>): Promise<T> {
    const session = this.client.startSession({ causalConsistency: true });
    try {
      if (this.#operationTime) session.advanceOperationTime(this.#operationTime);
      const result = await work(session);
      const seen = session.operationTime;
      if (seen && (!this.#operationTime || seen.greaterThan(this.#operationTime))) {
        this.#operationTime = seen;
      }
      return result;
    } finally {
      await session.endSession().catch(() => {});
    }
  }

  async add(record: NewWord): Promise<void> {
    const doc: WordDocument = {
      _id: record.id,
      id: record.id,
      word: record.word,
      definition: record.definition,
      createdAt: record.createdAt,
      searchKey: record.searchKey,
      rev: record.createdAt,
    };
    await this.#causal((session) => this.words.insertOne(doc, { session }));
  }

  async addMany(records: NewWord[]): Promise<void> {
    const docs: WordDocument[] = records.map((r) => ({
      _id: r.id,
      id: r.id,
      word: r.word,
      definition: r.definition,
      createdAt: r.createdAt,
      searchKey: r.searchKey,
      rev: r.createdAt,
    }));
    await this.#causal((session) => this.words.insertMany(docs, { session, ordered: true }));
  }

  get(id: string): Promise<WordRecord | undefined> {
    return this.#causal(async (session) => {
      const doc = await this.words.findOne({ _id: id }, { session, projection: PROJECTION }) ??
        await this.words.findOne({ id }, { session, projection: PROJECTION });
      return doc ? toRecord(doc) : undefined;
    });
  }

  /**
   * Runs `op` on word `id`'s document addressed by `_id` (every document
   * since edits existed) and, when that matched nothing and no document has
   * that `_id`, by `id` (one written before); resolves with what matched.
   */
  async #onWord(
    id: string,
    session: ClientSession,
    op: (address: Address) => Promise<number>,
  ): Promise<number> {
    const matched = await op({ _id: id });
    if (matched > 0 || await this.words.countDocuments({ _id: id }, { session, limit: 1 })) {
      return matched;
    }
    return await op({ id });
  }

  replace(r: NewWord, revision: string): Promise<boolean> {
    const change: Change = {
      word: r.word,
      definition: r.definition,
      searchKey: r.searchKey,
      updatedAt: r.updatedAt!,
      rev: r.updatedAt!,
    };
    return this.#causal((session) => this.#transition(r.id, revision, change, session));
  }

  remove(id: string, revision: string): Promise<boolean> {
    return this.#causal((session) => this.#transition(id, revision, "delete", session));
  }

  /**
   * Moves word `id` from `revision` to `change` (or deletes it) if nobody
   * did first: claims the transition, then applies it. A claim already
   * there is someone else's edit of the same revision, and this edit has
   * lost; when that claim is abandoned (older than
   * {@linkcode CLAIM_ABANDONED_MS}), it is completed here, so a writer that
   * died after claiming blocks its word only that long.
   */
  async #transition(
    id: string,
    revision: string,
    change: Change | "delete",
    session: ClientSession,
  ): Promise<boolean> {
    const claim: ClaimDocument = {
      _id: `${id}|${revision}`,
      id,
      revision,
      change,
      at: Date.now(),
    };
    try {
      await this.claims.insertOne(claim, { session });
    } catch (e) {
      if ((e as { code?: number }).code !== DUPLICATE_KEY) throw e;
      const theirs = await this.claims.findOne({ _id: claim._id }, { session });
      if (theirs && Date.now() - theirs.at > CLAIM_ABANDONED_MS) await this.#apply(theirs, session);
      return false;
    }
    return await this.#apply(claim, session);
  }

  /**
   * Applies a claimed transition (idempotent) and removes the word's older
   * claims (all of them after a deletion); true if it changed the word.
   */
  async #apply(claim: ClaimDocument, session: ClientSession): Promise<boolean> {
    const { change } = claim;
    const changed = 1 === await this.#onWord(claim.id, session, async (address) => {
      const filter = atRevision(address, claim.revision);
      return change === "delete"
        ? (await this.words.deleteOne(filter, { session })).deletedCount
        : (await this.words.updateOne(filter, { $set: change }, { session })).matchedCount;
    });
    const older = change === "delete" ? {} : { revision: { $lt: claim.revision } };
    await this.claims.deleteMany({ id: claim.id, ...older }, { session });
    return changed;
  }

  list(query: ListQuery): Promise<WordRecord[]> {
    const needle = query.search;
    const filter = {
      ...(needle ? { searchKey: { $regex: literalPattern(needle) } } : {}),
      ...(query.after ? { id: { $gt: query.after } } : {}),
    };
    return this.#causal(async (session) => {
      const docs = await this.words
        .find(filter, { session, projection: PROJECTION })
        .sort({ id: 1 })
        .skip(query.offset)
        .limit(query.limit)
        .toArray();
      return docs.map(toRecord);
    });
  }

  /**
   * Lists the collection's indexes: a collection dropped under a running
   * gateway (or re-created by an insert, without the unique `id` index)
   * fails the ping, and the reconnect creates the index again.
   */
  async ping(): Promise<void> {
    if (!(await this.words.indexExists(ID_INDEX))) {
      throw new Error(`mongodb: the ${COLLECTION} collection has no ${ID_INDEX} index`);
    }
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => {});
  }
}

/**
 * Connects and returns the client and the `words` collection (majority write
 * concern; read preference and read concern as the URL says), creating the
 * unique `id` index if missing. `open` is this plus the store around it.
 */
export async function openCollection(
  config: StoreConfig,
): Promise<{ client: MongoClient; words: Collection<WordDocument> }> {
  const client = new MongoClient(config.url, clientOptions(config));
  try {
    await client.connect();
    const words = client.db(databaseOf(config.url)).collection<WordDocument>(COLLECTION, {
      writeConcern: { w: "majority" },
    });
    await words.createIndex({ id: 1 }, { name: ID_INDEX, unique: true });
    return { client, words };
  } catch (e) {
    await client.close().catch(() => {});
    throw e;
  }
}

/** Gives documents written before search keys their key (see {@linkcode backfillSearchKeys}). */
async function backfill(words: Collection<WordDocument>): Promise<void> {
  await backfillSearchKeys(
    (after, batch) =>
      words.find(
        { searchKey: { $exists: false }, ...(after ? { id: { $gt: after } } : {}) },
        { projection: { _id: 0, id: 1, word: 1, definition: 1 } },
      ).sort({ id: 1 }).limit(batch).toArray() as Promise<Unkeyed[]>,
    async (keys) => {
      // One update at a time: FerretDB (SQLite) runs a bulk of them far slower than this
      // (20 ms per update, and an unordered bulk of 100 stalled it for minutes).
      for (const k of keys) {
        await words.updateOne({ id: k.id }, { $set: { searchKey: k.searchKey } });
      }
    },
  );
}

/**
 * Connects, creates the unique `id` index on `words` and the `id` index of
 * the claims if missing, gives older documents their search key, and
 * returns the store.
 */
export const open: OpenStore = async (config) => {
  const { client, words } = await openCollection(config);
  try {
    await backfill(words);
    const claims = client.db(databaseOf(config.url)).collection<ClaimDocument>(CLAIMS, {
      writeConcern: { w: "majority" },
    });
    await claims.createIndex({ id: 1 }, { name: "claims_by_word" });
    return new MongoWordStore(client, words, claims);
  } catch (e) {
    await client.close().catch(() => {});
    throw e;
  }
};
