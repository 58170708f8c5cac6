/**
 * The one contract between the gateway and its databases.
 *
 * A store module (`stores/<name>.ts`) knows one database and nothing of
 * GraphQL: it exports an {@linkcode OpenStore} function that connects, creates
 * what is missing (database, keyspace, table, index) and returns a
 * {@linkcode WordStore}. Validation, id and timestamp assignment, timeouts,
 * retries and error wording live outside the modules, once.
 *
 * @module
 */
import type { NodeStatus } from "./replicas.ts";

/** Every store the gateway knows, as named in the GraphQL `Store` enum. */
export const STORE_NAMES = [
  "SQLITE",
  "MONGODB",
  "POSTGRESQL",
  "MYSQL",
  "SCYLLA",
  "ELASTICSEARCH",
  "REDIS",
  "RABBITMQ",
] as const;

/** One of {@linkcode STORE_NAMES}. */
export type StoreName = typeof STORE_NAMES[number];

/** A store with a database server: every one but the embedded SQLite. */
export type NetworkStoreName = Exclude<StoreName, "SQLITE">;

/**
 * A stored word. `id` is a UUIDv7 assigned by the gateway before the write, so
 * sorting by `id` is insertion order in every store. `createdAt` is ISO-8601
 * UTC with millisecond precision and equals the timestamp inside `id`.
 * `updatedAt` (same format) is absent until the first edit; every edit makes
 * it later than the word's previous revision (`revisionOf` in `edits.ts`).
 */
export interface WordRecord {
  id: string;
  word: string;
  definition: string;
  createdAt: string;
  updatedAt?: string;
}

/**
 * A record as `add` receives it: with its search key, `fold(word) ␟
 * fold(definition)` (`records.ts`), which a store that searches in the
 * database stores beside the word and compares needles with.
 */
export interface NewWord extends WordRecord {
  searchKey: string;
}

/** A page of the list, oldest first. */
export interface ListQuery {
  /**
   * A needle already folded with `fold()` (`fold.ts`): the page holds only
   * records whose search key contains it as a literal substring, compared
   * code point for code point. `undefined` lists everything. No wildcard,
   * regular-expression or query syntax may be interpreted, and nothing is
   * folded again: the database compares exactly.
   */
  search?: string;
  /** 1..1001, already validated (a cursor page asks for one more to learn whether another follows). */
  limit: number;
  /** Matches to skip, >= 0, already validated; 0 whenever `after` is set. */
  offset: number;
  /**
   * Keyset paging: only records whose id sorts after this one (a cursor's
   * position). A page after any id must cost about the same as the first
   * page: the store seeks to it through its id order, never skips rows.
   */
  after?: string;
}

/** Connection settings of one store, parsed and validated at start-up. */
export interface StoreConfig {
  /** The store's URL; for stores whose settings allow it, comma-separated nodes of one cluster. */
  url: string;
  /**
   * Read replicas (`<STORE>_READ_URL`, for stores that declare them): reads
   * go to them and writes to `url`. Absent when none are configured.
   */
  readUrls?: readonly string[];
  /** PEM text of the CA certificate; when set, the module must use TLS and verify the server. */
  caCert?: string;
  /** Milliseconds a connection attempt may take before it counts as failed. */
  connectTimeoutMs: number;
  /**
   * The gateway's budget per call to this store: `<STORE>_TIMEOUT_MS` when
   * set, else `REQUEST_TIMEOUT_MS` (the registry fills it in). A module's own
   * client timeout is no shorter, or it fails calls the gateway would have
   * waited for. Absent outside the gateway (a module's default applies).
   */
  requestTimeoutMs?: number;
  /**
   * Gateway workers in this process (`WORKERS`; the registry fills it in): a
   * store with read replicas shares its write positions with the others'
   * (stores/replicas.ts), so read-your-writes holds whichever worker reads.
   * Absent outside the gateway: alone.
   */
  workers?: number;
  /** Store-specific extra settings (e.g. SCYLLA_REPLICATION_FACTOR), already validated. */
  options: Record<string, string>;
}

/** A connected store. Methods reject on database errors; the caller maps them. */
export interface WordStore {
  /** Durably stores `record` and resolves only once the database acknowledged it. */
  add(record: NewWord): Promise<void>;
  /**
   * Durably stores many records through the database's bulk path (a bulk
   * insert, a batch, a pipeline): for imports and the benchmark's seeding,
   * not for GraphQL. Resolves once every record was acknowledged.
   */
  addMany(records: NewWord[]): Promise<void>;
  /**
   * The record with this id, or undefined when there is none; read-your-writes
   * like `list`. Edits read through it before their compare-and-set, so a
   * store with read replicas serves it from the primary.
   */
  get(id: string): Promise<WordRecord | undefined>;
  /**
   * Compare-and-set: replaces the stored record `record.id` with `record`
   * (whose `updatedAt` is set) only if its revision (`updatedAt`, else
   * `createdAt`) is still `revision`, atomically; resolves false and changes
   * nothing when the record changed meanwhile or is gone. Never creates a
   * record (no upsert), and resolves only once the change is durable.
   */
  replace(record: NewWord, revision: string): Promise<boolean>;
  /**
   * Compare-and-delete: removes record `id` only if its revision is still
   * `revision`; false when it changed or is gone. Durable when it resolves.
   */
  remove(id: string, revision: string): Promise<boolean>;
  /** Lists records ordered by `id` ascending, filtered and paged by `query`. */
  list(query: ListQuery): Promise<WordRecord[]>;
  /**
   * A cheap real round trip to the database; rejects when it is not serving.
   * A store with read replicas still serves reads while its primary is down,
   * so it rejects only when no node answers.
   */
  ping(): Promise<void>;
  /**
   * Role, health and lag of the primary and each read replica, for stores
   * with replicas (`<STORE>_READ_URL`); absent or empty otherwise. Known
   * without a round trip (the last ping, the replicas' background probes).
   */
  nodes?(): NodeStatus[];
  /** Releases every connection; never rejects. */
  close(): Promise<void>;
}

/** What each store module exports as `open`. Rejects when the database cannot be reached. */
export type OpenStore = (config: StoreConfig) => Promise<WordStore>;
