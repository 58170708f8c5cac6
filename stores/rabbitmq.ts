/**
 * RabbitMQ as a word store: every word is one persistent JSON message in the
 * durable STREAM queue `words` (`rabbitmq_stream.ts`), which is never
 * consumed and is the only source of truth; pages and searches are served
 * from a materialised view of it on local disk (`rabbitmq_view.ts`).
 *
 * `open` opens the view and connects, compares the stream's first message
 * with the one the view was built from (rebuilding it when it is another
 * stream's), publishes a tiny marker message (type `marker`, ignored by every
 * reader), follows the stream from the view's stored offset and resolves
 * once the view has applied the marker: it has caught up with the stream's
 * tail, since a stream's passive declare reports no message count. `add`
 * publishes on a confirm channel and resolves after the publisher confirm AND
 * once this store's view has applied the record (read-your-writes). `list`
 * makes a real round trip (passive declare of `words`) beside one SQLite
 * statement. Any broker or view failure breaks the store for good, rejects
 * what is pending and everything after it; the gateway's wrapper opens a new
 * one, which resumes from the view's stored offset.
 *
 * @module
 */
import { type Delivery, RabbitStoreError, StreamConnection } from "./rabbitmq_stream.ts";
import { View, type ViewFeed } from "./rabbitmq_view.ts";
import type { ListQuery, NewWord, OpenStore, StoreConfig, WordRecord, WordStore } from "./types.ts";

/** Most messages delivered and not yet applied: bounds what waits in memory for the view. */
const PREFETCH = 1000;
/** How long `add` waits for the confirm and for the view to apply the record. */
const ADD_TIMEOUT_MS = 10_000;
/** Catching up with the stream on open may take this long on top of the connect timeout. */
const CATCH_UP_GRACE_MS = 12_000;

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

/** Callers waiting for the view to apply a message, by record id or marker nonce. */
class Waiters {
  #byId = new Map<string, Set<Waiter>>();

  /** Resolves when `id` is settled; rejects with `timeout()` after `ms`. */
  wait(id: string, ms: number, timeout: () => Error): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let set = this.#byId.get(id);
      if (!set) this.#byId.set(id, set = new Set());
      const timer = setTimeout(() => {
        set.delete(w);
        if (set.size === 0 && this.#byId.get(id) === set) this.#byId.delete(id);
        reject(timeout());
      }, ms);
      const w: Waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      set.add(w);
    });
  }

  /** Resolves (or, with `error`, rejects) everyone waiting for `id`. */
  settle(id: string, error?: Error): void {
    const set = this.#byId.get(id);
    if (!set) return;
    this.#byId.delete(id);
    for (const w of set) error ? w.reject(error) : w.resolve();
  }

  rejectAll(e: Error): void {
    const all = [...this.#byId.values()];
    this.#byId.clear();
    for (const set of all) for (const w of set) w.reject(e);
  }
}

class RabbitWordStore implements WordStore {
  #stream: StreamConnection | undefined;
  #view: View | undefined;
  #feed: ViewFeed | undefined;
  #waiters = new Waiters();
  #failure: Error | undefined;
  #closed = false;

  /** Opens the view and the connection, then follows the stream until the view has caught up. */
  async init(config: StoreConfig, viewPath: string): Promise<void> {
    const deadline = Date.now() + config.connectTimeoutMs + CATCH_UP_GRACE_MS;
    const [view, stream] = await Promise.allSettled([
      View.open(viewPath),
      StreamConnection.open(config, deadline, (e) => this.#fail(e)),
    ]);
    if (view.status === "fulfilled") this.#view = view.value;
    if (stream.status === "fulfilled") this.#stream = stream.value;
    if (view.status === "rejected") throw view.reason;
    if (stream.status === "rejected") throw stream.reason;
    const [v, s] = [this.#view!, this.#stream!];
    // A first marker, so the stream is not empty when its head is peeked at; the view's position
    // is read after it, and a second marker published after that: the consumer starts at that
    // position (which another process sharing the view may have moved past the first marker)
    // and has caught up with the stream's tail once it applied the second.
    await s.publishMarker(crypto.randomUUID());
    const state = await v.resume(await s.peekHead());
    const nonce = crypto.randomUUID();
    const caughtUp = this.#waiters.wait(
      nonce,
      Math.max(1, deadline - Date.now()),
      () =>
        new RabbitStoreError(
          `the view did not catch up with the words stream in time (applied up to offset ${
            this.#feed?.last?.offset ?? "none"
          }); the next attempt resumes there`,
        ),
    );
    caughtUp.catch(() => {}); // awaited below; a failure before that must not go unhandled
    await s.publishMarker(nonce);
    this.#check();
    const feed = this.#feed = v.feed(state, (batch) => this.#applied(batch), (e) => this.#fail(e));
    await s.follow(state.last?.offset ?? "first", PREFETCH, (d) => feed.push(d));
    await caughtUp;
  }

  async add(record: NewWord): Promise<void> {
    this.#check();
    const applied = this.#waiters.wait(
      record.id,
      ADD_TIMEOUT_MS,
      () => new RabbitStoreError(`the view did not apply the word within ${ADD_TIMEOUT_MS} ms`),
    );
    const confirmed = this.#stream!.publishWord(record).catch((e: Error) => {
      this.#waiters.settle(record.id, e);
      throw e;
    });
    await Promise.all([confirmed, applied]);
  }

  /** Publishes them all at once (confirms pipelined on the channel), each waited for as `add` waits. */
  async addMany(records: NewWord[]): Promise<void> {
    await Promise.all(records.map((r) => this.add(r)));
  }

  async list(query: ListQuery): Promise<WordRecord[]> {
    this.#check();
    const [, page] = await Promise.all([this.#stream!.ping(), this.#view!.list(query)]);
    this.#check();
    return page;
  }

  async ping(): Promise<void> {
    this.#check();
    await Promise.all([this.#stream!.ping(), this.#view!.ping()]);
    this.#check();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#release(new RabbitStoreError("store closed"));
    await Promise.all([this.#stream?.close(), this.#view?.close()]);
  }

  /** A batch is in the view: the broker may send more, and whoever waited for it may go on. */
  #applied(batch: Delivery[]): void {
    if (this.#failure || this.#closed) return;
    this.#stream!.ack(batch[batch.length - 1]);
    for (const d of batch) {
      const id = d.record?.id ?? d.marker;
      if (id !== undefined) this.#waiters.settle(id);
    }
  }

  #check(): void {
    if (this.#closed) throw new RabbitStoreError("store closed");
    if (this.#failure) throw this.#failure;
  }

  #fail(e: Error): void {
    if (this.#failure || this.#closed) return;
    this.#failure = e;
    this.#release(e);
    void this.#stream?.close();
    void this.#view?.close();
  }

  #release(e: Error): void {
    this.#feed?.stop();
    this.#waiters.rejectAll(e);
  }
}

/** Opens the view at `config.options.viewPath`, connects and catches up with the `words` stream. */
export const open: OpenStore = async (config) => {
  const viewPath = config.options.viewPath;
  if (!viewPath) throw new RabbitStoreError("no view path is configured (RABBITMQ_VIEW_PATH)");
  const store = new RabbitWordStore();
  try {
    await store.init(config, viewPath);
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
};
