/**
 * The RabbitMQ store's materialised view: the words of the `words` stream in
 * a SQLite file on local disk (`RABBITMQ_VIEW_PATH`), kept by the embedded
 * store's worker thread (`sqlite.ts`, opened as a view), so that a page or a
 * search is one SQLite statement (`id > ?`, `instr(search_key, ?)`) and the
 * gateway holds no word in memory: what the view costs in memory is
 * SQLite's page cache, whatever the length of the stream.
 *
 * Why this design: the stream stays the only source of truth and is never
 * consumed; the view is a cache of it that can always be thrown away and
 * rebuilt, as Kafka Streams rebuilds a RocksDB state store from its changelog
 * topic. A stream can only be read on from an offset, never paged or
 * searched, so something must index it: kept in memory, that index grew the
 * gateway with the stream; on local disk it is bounded, survives a restart
 * (which resumes instead of re-reading everything), and needs no second
 * database server that would be a second source of truth to keep in step.
 *
 * Position: one row holds the stream's first message the view was built from
 * (offset and message id; a stream deleted and recreated starts with another
 * one) and the last message applied, moved in the same transaction as the
 * words of each delivery batch, so the view never claims a message it lacks.
 * On open, a missing or empty view, or one built from another stream, is
 * emptied and rebuilt from the first offset; otherwise the stream is read on
 * from the stored offset, whose message must be the one stored (else the
 * view is emptied and the store reconnects).
 *
 * Events: each delivery batch is applied in that one transaction, in
 * stream order (`apply` of `sqlite_worker.ts`): a new word is inserted
 * unless its id is taken, an edit or deletion is the worker's compare-and-set
 * or compare-and-delete on the revision it names, and whether each applied
 * is answered to the feed, for the caller waiting for it. A view file from
 * before edits gets the `updated_at` column and is rebuilt once: its
 * gateway ignored the edit events newer ones may have published meanwhile.
 *
 * Several processes on one host (`deno serve --parallel` workers, or two
 * gateways started in the same directory) share one view file rather than
 * rebuild a file each per start: each follows the stream itself (its `add`
 * waits for its own consumer) and applies every batch under WAL and a busy
 * timeout, skipping the messages up to the stored position, which another
 * one already applied (applied twice, a word's `add` after its deletion
 * would bring it back), and reading their edits' outcomes from the file; the
 * position only moves forward, a batch is refused unless the view still
 * holds everything before it, and a rebuild happens only while the stored
 * head is another stream's. Gateways of different brokers must not share a
 * file: each would keep emptying it.
 *
 * @module
 */
import { openWorkerStore, type SqliteWorkerStore } from "./sqlite.ts";
import type { StreamPosition, ViewState } from "./sqlite_worker.ts";
import { type Delivery, RabbitStoreError } from "./rabbitmq_stream.ts";
import type { ListQuery, WordRecord } from "./types.ts";

/** Most messages applied in one transaction. */
const MAX_BATCH = 500;

function same(a: StreamPosition, b: StreamPosition): boolean {
  return a.offset === b.offset && a.id === b.id;
}

/** The view file, on its own thread. */
export class View {
  #db: SqliteWorkerStore;

  private constructor(db: SqliteWorkerStore) {
    this.#db = db;
  }

  /** Opens (creating when missing) the view at `path`; rejects with a clear error when it cannot. */
  static async open(path: string): Promise<View> {
    try {
      return new View(await openWorkerStore(path, true));
    } catch (e) {
      throw new RabbitStoreError(
        `cannot open the view at RABBITMQ_VIEW_PATH=${path}: ${(e as Error).message}`,
      );
    }
  }

  /**
   * Makes this the view of the stream whose first message is `head` (emptied
   * when it was built from another one, or still stands at `discard`) and
   * answers where it stands.
   */
  resume(head: StreamPosition, discard?: StreamPosition): Promise<ViewState> {
    return this.#db.call({ op: "resume", head, discard });
  }

  /** The word with this id in the view, or undefined. */
  get(id: string): Promise<WordRecord | undefined> {
    return this.#db.get(id);
  }

  /** One page of the view, as {@linkcode WordStore.list} answers it. */
  list(query: ListQuery): Promise<WordRecord[]> {
    return this.#db.list(query);
  }

  /** A round trip to the view's thread and database. */
  ping(): Promise<void> {
    return this.#db.ping();
  }

  /** Closes the file and stops the thread; never rejects. */
  close(): Promise<void> {
    return this.#db.close();
  }

  /**
   * Applies the messages `follow` delivers from `state` on, one transaction
   * per batch of what arrived while the previous one was written; calls
   * `applied` with each batch once committed, or `failed` once.
   */
  feed(state: ViewState, applied: Applied, failed: (e: Error) => void): ViewFeed {
    return new ViewFeed(this.#db, state, applied, failed);
  }
}

/**
 * Hears of each batch once it is in the view, with whether each edit and
 * deletion in it applied, by stream offset (absent when that is no longer
 * known: applied by another process too long ago).
 */
export type Applied = (batch: Delivery[], outcomes: Map<number, boolean>) => void;

/** Deliveries on their way into the view, in stream order. */
export class ViewFeed {
  #db: SqliteWorkerStore;
  #head: StreamPosition;
  /** The last message the view holds, as far as this feed knows. */
  #last: StreamPosition | undefined;
  /** The message the first delivery must be: the head, or the last one applied (not again). */
  #expect: StreamPosition | undefined;
  #queue: Delivery[] = [];
  #running = false;
  #stopped = false;
  #finishing = false;
  /** The drain under way, if any. */
  #draining: Promise<void> | undefined;
  #applied: Applied;
  #failed: (e: Error) => void;

  constructor(
    db: SqliteWorkerStore,
    state: ViewState,
    applied: Applied,
    failed: (e: Error) => void,
  ) {
    this.#db = db;
    this.#head = state.head;
    this.#last = state.last;
    this.#expect = state.last ?? state.head;
    this.#applied = applied;
    this.#failed = failed;
  }

  /** The last message applied; undefined before the first. */
  get last(): StreamPosition | undefined {
    return this.#last;
  }

  /** Queues a delivery; a write starts unless one is under way. */
  push(d: Delivery): void {
    if (this.#stopped || this.#finishing) return;
    this.#queue.push(d);
    if (this.#running) return;
    this.#running = true;
    queueMicrotask(() => void this.#drain());
  }

  /** Applies nothing more. */
  stop(): void {
    this.#stopped = true;
    this.#queue = [];
  }

  /**
   * Takes no more deliveries and drops the queued ones (a new consumer
   * delivers them again from {@linkcode last}), but lets the batch being
   * written finish and be heard of; resolves once it has.
   */
  async finish(): Promise<void> {
    this.#queue = [];
    this.#finishing = true;
    await this.#draining;
    this.#stopped = true;
  }

  #drain(): Promise<void> {
    return this.#draining = this.#drainQueue();
  }

  async #drainQueue(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#stopped) {
        const batch = this.#queue.splice(0, MAX_BATCH);
        const outcomes = await this.#apply(batch);
        if (!this.#stopped) this.#applied(batch, outcomes);
      }
    } catch (e) {
      if (!this.#stopped) this.#failed(e as Error);
      this.stop();
    } finally {
      this.#running = false;
    }
  }

  async #apply(batch: Delivery[]): Promise<Map<number, boolean>> {
    let fresh = batch;
    if (this.#expect) {
      const expected = this.#expect;
      this.#expect = undefined;
      // The broker starts a consumer exactly at the offset asked for, so the first delivery
      // must be the message expected there; else the stream is not the one the view holds.
      if (!same(batch[0].position, expected)) {
        if (this.#last) {
          await this.#db.call({ op: "resume", head: this.#head, discard: this.#last });
        }
        throw new RabbitStoreError("the words stream changed under the view; reading it again");
      }
      if (this.#last) fresh = batch.slice(1);
    }
    if (fresh.length === 0) return new Map();
    const last = fresh[fresh.length - 1].position;
    const events = fresh.flatMap((d) => d.event ? [d.event] : []);
    const outcomes = await this.#db.call({
      op: "apply",
      events,
      head: this.#head,
      from: this.#last,
      last,
    });
    this.#last = last;
    return outcomes;
  }
}
