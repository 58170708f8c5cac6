/**
 * RabbitMQ as a word store: the durable STREAM queue `words`
 * (`rabbitmq_stream.ts`), which is never consumed and is the only source of
 * truth, holds every word, edit and deletion as one persistent JSON message;
 * pages and searches are served from a materialised view of it on local
 * disk (`rabbitmq_view.ts`).
 *
 * The stream is append-only: an edit or a deletion is an EVENT in it, not a
 * change to an earlier message. Its messages (AMQP `type`):
 * - `word` (message id = the word's id): a new word;
 * - `update` (message id = a fresh nonce): the full new record, with its
 *   `updatedAt` and search key, and the revision it expects;
 * - `delete` (message id = a fresh nonce): a word's id and the revision it
 *   expects;
 * - `marker`: nothing; published to learn when a view has caught up.
 *
 * Every view applies them in stream order with one deterministic rule: a
 * `word` is added unless its id is taken; an `update` applies only if the
 * word exists and its revision (`updatedAt`, else `createdAt`) equals the
 * expected one, and then replaces the row whole; a `delete` applies only if
 * the word exists at the expected revision; any other event is ignored. So
 * the list rebuilt from the stream is the same on every gateway and for
 * every rebuild, a deleted word never comes back (its `word` message comes
 * before its deletion), and of two edits of one revision only the first in
 * the stream applies.
 *
 * `open` opens the view and connects, compares the stream's first message
 * with the one the view was built from (rebuilding it when it is another
 * stream's), publishes a tiny marker message, follows the stream from the
 * view's stored offset and resolves once the view has applied the marker:
 * it has caught up with the stream's tail, since a stream's passive declare
 * reports no message count. `add`, `replace` and `remove` publish on a
 * confirm channel and resolve after the publisher confirm AND once this
 * store's view has applied that very message (read-your-writes), `replace`
 * and `remove` with whether it applied. `list` and `get` make a real round
 * trip (passive declare of `words`) beside one SQLite statement.
 *
 * **Losing a broker.** When the connection to its broker fails, the store
 * fails over to another node of `RABBITMQ_URL`'s list: it lets the view
 * finish the batch it is writing, connects to the next broker, follows the
 * stream again from the last message the view holds, and publishes again
 * every write not yet applied, while new calls wait for the failover (with
 * one broker listed, or the stream itself gone, the store fails instead). A
 * second copy of a message changes nothing (the rule above: a `word` whose
 * id is taken is ignored, and an `update` or `delete` whose first copy
 * applied no longer finds its revision), so a write whose confirm was lost
 * with its broker is answered by the view applying it, once. Only when no
 * broker answers within the connect timeout, or the view fails, does the
 * store break for good, rejecting what is pending and everything after it;
 * the gateway's wrapper then opens a new one, which resumes from the view's
 * stored offset.
 *
 * A deleted word's text stays in the stream: its `word` message and every
 * `update` of it remain in the history, readable by anyone who may read the
 * stream; the view alone forgets it. Retention is the operator's, and the
 * store sets none: `x-max-age` or `x-max-length-bytes` on `words` would drop
 * the oldest messages, and since the stream is the only copy, the words they
 * added would be lost. A view rebuilt afterwards (a new gateway, a deleted
 * view file, or any view once the stream's first message is another one,
 * which is how a view tells streams apart) cannot replay them: it lacks
 * those words, ignores the edits and deletions of them still in the stream,
 * and lists less than the views built before, which keep them until they are
 * rebuilt. To purge deleted text, copy the live words into a new stream and
 * let the views rebuild from it.
 *
 * @module
 */
import {
  type Delivery,
  RabbitStoreError,
  StreamConnection,
  StreamGoneError,
} from "./rabbitmq_stream.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { splitNodes } from "./settings.ts";
import { View, type ViewFeed } from "./rabbitmq_view.ts";
import type { ListQuery, NewWord, OpenStore, StoreConfig, WordRecord, WordStore } from "./types.ts";

/** Most messages delivered and not yet applied: bounds what waits in memory for the view. */
const PREFETCH = 1000;
/** How long `add`, `replace` and `remove` wait for the confirm and for the view to apply them. */
const WRITE_TIMEOUT_MS = 10_000;
/** Catching up with the stream on open may take this long on top of the connect timeout. */
const CATCH_UP_GRACE_MS = 12_000;
/** A failover to another broker may take this long on top of the connect timeout. */
const FAILOVER_GRACE_MS = 2_000;
/** Pause between two brokers tried in one failover. */
const FAILOVER_PAUSE_MS = 50;

interface Waiter {
  resolve: (applied: boolean) => void;
  reject: (e: Error) => void;
}

/**
 * Callers waiting for the view to apply a message, by record id or nonce,
 * each told whether it applied.
 */
class Waiters {
  #byId = new Map<string, Set<Waiter>>();

  /** Resolves when `id` is settled; rejects with `timeout()` after `ms`. */
  wait(id: string, ms: number, timeout: () => Error): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      let set = this.#byId.get(id);
      if (!set) this.#byId.set(id, set = new Set());
      const timer = setTimeout(() => {
        set.delete(w);
        if (set.size === 0 && this.#byId.get(id) === set) this.#byId.delete(id);
        reject(timeout());
      }, ms);
      const w: Waiter = {
        resolve: (applied) => {
          clearTimeout(timer);
          resolve(applied);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      set.add(w);
    });
  }

  /** Resolves everyone waiting for `id` with `outcome`, or rejects them with it. */
  settle(id: string, outcome: boolean | Error): void {
    const set = this.#byId.get(id);
    if (!set) return;
    this.#byId.delete(id);
    for (const w of set) typeof outcome === "boolean" ? w.resolve(outcome) : w.reject(outcome);
  }

  rejectAll(e: Error): void {
    const all = [...this.#byId.values()];
    this.#byId.clear();
    for (const set of all) for (const w of set) w.reject(e);
  }
}

/** Publishes one write's message on `stream`; resolves on the broker's confirm. */
type Publish = (stream: StreamConnection) => Promise<void>;

class RabbitWordStore implements WordStore {
  #config!: StoreConfig;
  #stream: StreamConnection | undefined;
  #view: View | undefined;
  #feed: ViewFeed | undefined;
  #waiters = new Waiters();
  /** Writes published and not yet applied by the view, by waiter key: sent again after a failover. */
  #pending = new Map<string, Publish>();
  /** The failover to another broker under way, if any. */
  #failingOver: Promise<void> | undefined;
  #failure: Error | undefined;
  #closed = false;

  /** Connects, opens the view, then follows the stream until the view has caught up. */
  async init(config: StoreConfig, viewPath: string): Promise<void> {
    this.#config = config;
    const deadline = Date.now() + config.connectTimeoutMs + CATCH_UP_GRACE_MS;
    // The broker first, the view (a SQLite worker thread) only once the broker answered: the
    // reconnect loop against a broker that is down or stalled then starts no thread per attempt,
    // which took CPU from every other store's requests.
    const s = await this.#connect(deadline);
    this.#view = await View.open(viewPath);
    // A first marker, so the stream is not empty when its head is peeked at; the view's position
    // is read after it, and a second marker published after that: the consumer starts at that
    // position (which another process sharing the view may have moved past the first marker)
    // and has caught up with the stream's tail once it applied the second.
    await s.publishMarker(crypto.randomUUID());
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
    await this.#follow(s, () => s.publishMarker(nonce));
    await caughtUp;
  }

  async add(record: NewWord): Promise<void> {
    await this.#publishAndWait(record.id, (s) => s.publishWord(record));
  }

  /** Publishes them all at once (confirms pipelined on the channel), each waited for as `add` waits. */
  async addMany(records: NewWord[]): Promise<void> {
    await Promise.all(records.map((r) => this.add(r)));
  }

  async get(id: string): Promise<WordRecord | undefined> {
    const [, record] = await Promise.all([this.#onBroker((s) => s.ping()), this.#view!.get(id)]);
    this.#check();
    return record;
  }

  /** Publishes an `update` event; true once this view applied it, false once it ignored it. */
  replace(record: NewWord, revision: string): Promise<boolean> {
    const nonce = crypto.randomUUID();
    return this.#publishAndWait(nonce, (s) => s.publishUpdate(record, revision, nonce));
  }

  /** Publishes a `delete` event; true once this view applied it, false once it ignored it. */
  remove(id: string, revision: string): Promise<boolean> {
    const nonce = crypto.randomUUID();
    return this.#publishAndWait(nonce, (s) => s.publishDelete(id, revision, nonce));
  }

  async list(query: ListQuery): Promise<WordRecord[]> {
    const [, page] = await Promise.all([this.#onBroker((s) => s.ping()), this.#view!.list(query)]);
    this.#check();
    return page;
  }

  async ping(): Promise<void> {
    await Promise.all([this.#onBroker((s) => s.ping()), this.#view!.ping()]);
    this.#check();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#release(new RabbitStoreError("store closed"));
    await Promise.all([this.#stream?.close(), this.#view?.close()]);
  }

  /** Connects to a broker of the URL list; its failure starts a failover to another. */
  async #connect(deadline: number): Promise<StreamConnection> {
    // A failure while opening rejects the open itself; only an open connection fails over.
    const opened: { s?: StreamConnection } = {};
    const s = opened.s = await StreamConnection.open(
      this.#config,
      deadline,
      (e) => opened.s && this.#brokerLost(opened.s, e),
    );
    this.#stream = s;
    return s;
  }

  /**
   * Feeds the view from `s`, from the last message it holds; `then` runs once
   * the consumer is set up.
   */
  async #follow(s: StreamConnection, then?: () => Promise<void>): Promise<void> {
    const state = await this.#view!.resume(await s.peekHead());
    await then?.();
    this.#check();
    const feed = this.#feed = this.#view!.feed(
      state,
      (batch, outcomes) => this.#applied(s, batch, outcomes),
      (e) => this.#fail(e),
    );
    await s.follow(state.last?.offset ?? "first", PREFETCH, (d) => feed.push(d));
  }

  /** `call` on the live broker connection; once more on the next one if its broker was lost meanwhile. */
  async #onBroker<T>(call: (s: StreamConnection) => Promise<T>): Promise<T> {
    const s = await this.#live();
    try {
      return await call(s);
    } catch (e) {
      if (!s.broken || this.#closed) throw e;
      return await call(await this.#live());
    }
  }

  /** The broker connection, once a failover under way is done. */
  async #live(): Promise<StreamConnection> {
    this.#check();
    if (this.#failingOver) await this.#failingOver;
    this.#check();
    return this.#stream!;
  }

  /**
   * Publishes the message whose waiters are keyed `key`; resolves after its
   * confirm and once this view applied it, with whether it applied. A
   * publish cut short by the loss of its broker is sent again on the next
   * one (a second copy changes nothing: module documentation), and then
   * the view's applying it is the answer.
   */
  async #publishAndWait(key: string, publish: Publish): Promise<boolean> {
    this.#check();
    const applied = this.#waiters.wait(
      key,
      WRITE_TIMEOUT_MS,
      () =>
        new RabbitStoreError(`the view did not apply the message within ${WRITE_TIMEOUT_MS} ms`),
    );
    applied.catch(() => {}); // awaited below
    this.#pending.set(key, publish);
    try {
      const s = await this.#live();
      await publish(s).catch((e: Error) => {
        if (!s.broken || this.#closed) throw e;
      });
      return await applied;
    } catch (e) {
      this.#waiters.settle(key, e as Error);
      throw e;
    } finally {
      this.#pending.delete(key);
    }
  }

  /**
   * The broker of `s` was lost: fails over to another ({@linkcode failOver})
   * while calls wait. Only when no broker takes over in time, or the view
   * fails, does the store fail as a whole (the gateway's wrapper then opens
   * a new one).
   */
  #brokerLost(s: StreamConnection, e: Error): void {
    if (this.#closed || this.#failure || s !== this.#stream || this.#failingOver) return;
    // Still opening (the open fails and is retried), one broker only (the wrapper reconnects),
    // or the stream itself is gone (no other broker has it): the store fails as a whole.
    const single = splitNodes(this.#config.url).length < 2;
    if (!this.#feed || single || e instanceof StreamGoneError) return this.#fail(e);
    this.#failingOver = this.#failOver().then(
      () => {
        this.#failingOver = undefined;
        // Lost again after the failover's last check: its loss was not heard, so go on now.
        if (this.#stream!.broken) this.#brokerLost(this.#stream!, e);
      },
      (err: Error) => {
        this.#failingOver = undefined;
        this.#fail(err);
      },
    );
  }

  /**
   * Connects to another node of the URL list, follows the stream from where
   * the view is, and sends again every write not yet applied; tries the
   * next broker while one fails during that (the survivors may refuse
   * connections while the stream elects a new leader), until the connect
   * timeout plus {@linkcode FAILOVER_GRACE_MS}.
   */
  async #failOver(): Promise<void> {
    const until = Date.now() + this.#config.connectTimeoutMs + FAILOVER_GRACE_MS;
    for (;;) {
      await this.#feed!.finish();
      try {
        const next = await this.#connect(until);
        await this.#follow(next);
        await Promise.all([...this.#pending.values()].map((publish) => publish(next)));
        if (!next.broken) return;
      } catch (e) {
        if (Date.now() >= until || this.#closed) throw e;
      }
      if (Date.now() >= until) throw new RabbitStoreError("no broker took over in time");
      await sleep(FAILOVER_PAUSE_MS);
    }
  }

  /** A batch is in the view: the broker may send more, and whoever waited for it may go on. */
  #applied(s: StreamConnection, batch: Delivery[], outcomes: Map<number, boolean>): void {
    if (this.#failure || this.#closed) return;
    if (s === this.#stream) s.ack(batch[batch.length - 1]);
    for (const { event, marker, position } of batch) {
      if (marker !== undefined) this.#waiters.settle(marker, true);
      else if (event?.type === "add") this.#waiters.settle(event.record.id, true);
      else if (event) {
        this.#waiters.settle(
          position.id,
          outcomes.get(position.offset) ??
            new RabbitStoreError("the view no longer knows whether this change applied"),
        );
      }
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
