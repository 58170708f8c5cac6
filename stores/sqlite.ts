/**
 * The embedded store: SQLite through `node:sqlite`, built into Deno, so the
 * gateway runs with nothing installed. Always configured.
 *
 * The database lives on its own worker thread (`sqlite_worker.ts`):
 * `node:sqlite` is synchronous, and a commit waits for the disk (WAL,
 * `synchronous=FULL`), which on the gateway's event loop would hold up the
 * requests of every other store. This module only passes messages; the
 * RabbitMQ store keeps its view on disk through it too ({@linkcode openWorkerStore}).
 *
 * @module
 */
import type { SqliteReply, SqliteRequest, SqliteValues } from "./sqlite_worker.ts";
import type { ListQuery, NewWord, OpenStore, WordRecord, WordStore } from "./types.ts";

/** Distributes `Omit<T, "seq">` over a union. */
type WithoutSeq<T> = T extends unknown ? Omit<T, "seq"> : never;

/** A {@linkcode SqliteRequest} as {@linkcode SqliteWorkerStore.call} takes it: without its `seq`. */
export type SqliteCall = WithoutSeq<SqliteRequest>;

class SqliteError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

interface Pending {
  resolve: (value: SqliteValues[keyof SqliteValues]) => void;
  reject: (e: Error) => void;
}

/** One database on its own worker thread, as a {@linkcode WordStore} and by request. */
export class SqliteWorkerStore implements WordStore {
  #worker = new Worker(new URL("./sqlite_worker.ts", import.meta.url), { type: "module" });
  #pending = new Map<number, Pending>();
  #seq = 0;
  #failure: Error | undefined;
  #closed = false;

  constructor() {
    this.#worker.onmessage = (e: MessageEvent<SqliteReply>) => {
      const reply = e.data;
      const p = this.#pending.get(reply.seq);
      if (!p) return;
      this.#pending.delete(reply.seq);
      if (reply.ok) p.resolve(reply.value);
      else p.reject(new SqliteError(reply.name, reply.message));
    };
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#fail(new SqliteError("SqliteWorkerError", "sqlite: the database thread stopped"));
    };
  }

  /** Sends one request to the thread; resolves with its reply's value. */
  call<C extends SqliteCall>(req: C): Promise<SqliteValues[C["op"]]> {
    if (this.#closed) return Promise.reject(new SqliteError("SqliteError", "sqlite: store closed"));
    if (this.#failure) return Promise.reject(this.#failure);
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#pending.set(seq, {
        resolve: resolve as (value: SqliteValues[keyof SqliteValues]) => void,
        reject,
      });
      this.#worker.postMessage({ ...req, seq } as SqliteRequest);
    });
  }

  async add(record: NewWord): Promise<void> {
    await this.call({ op: "add", record });
  }

  async addMany(records: NewWord[]): Promise<void> {
    await this.call({ op: "addMany", records });
  }

  get(id: string): Promise<WordRecord | undefined> {
    return this.call({ op: "get", id });
  }

  replace(record: NewWord, revision: string): Promise<boolean> {
    return this.call({ op: "replace", record, revision });
  }

  remove(id: string, revision: string): Promise<boolean> {
    return this.call({ op: "remove", id, revision });
  }

  async list(query: ListQuery): Promise<WordRecord[]> {
    return (await this.call({ op: "list", query })) ?? [];
  }

  async ping(): Promise<void> {
    await this.call({ op: "ping" });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      if (!this.#failure) await this.call({ op: "close" });
    } catch {
      // closing anyway
    } finally {
      this.#closed = true;
      this.#fail(new SqliteError("SqliteError", "sqlite: store closed"));
    }
  }

  #fail(e: Error): void {
    this.#failure ??= e;
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
    this.#worker.terminate();
  }
}

/**
 * Starts a thread and opens (creating when missing) the database file at
 * `path`, or `:memory:`, on it; `view` opens it as a stream's view (see
 * `sqlite_worker.ts`). Rejects, with the thread stopped, when it cannot.
 */
export async function openWorkerStore(path: string, view = false): Promise<SqliteWorkerStore> {
  const store = new SqliteWorkerStore();
  try {
    await store.call({ op: "open", path, view });
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
}

/** Opens (creating when missing) the database file at `config.url`, or `:memory:`, on its thread. */
export const open: OpenStore = (config) => openWorkerStore(config.url);
