/**
 * RabbitMQ as a word store: every word is one persistent JSON message in the
 * durable STREAM queue `words` (`x-queue-type: stream`), so reading never
 * consumes anything and the stream is the only copy.
 *
 * One long-lived consumer reads the stream from its first offset and keeps an
 * in-memory projection sorted by `id`. `open` resolves once that projection
 * has caught up with the stream's tail: it publishes a tiny marker message
 * (type `marker`, ignored by every reader) and waits until the consumer has
 * seen it, since a stream's passive declare reports no message count.
 * `add` publishes on a confirm channel and resolves after the publisher
 * confirm AND after the consumer has seen the record (read-your-writes).
 * `list` makes a real round trip (passive declare of `words`) and then serves
 * the projection. amqplib does not reconnect: any connection or channel
 * error breaks this store for good, rejects what is pending and everything
 * after it; the gateway's wrapper opens a new one.
 *
 * The projection outlives a connection: it belongs to the configured store
 * (the {@linkcode StoreConfig} object), and remembers the offset and message
 * id of the last message it applied. A reconnect consumes from that offset
 * and checks that the message found there is the same one; then it only
 * reads what was published while it was away (a broker restart costs
 * milliseconds, not a re-read of the whole stream). If the stream was deleted
 * and recreated in between, the message differs: the projection is dropped
 * and the next connection reads the stream from its first offset.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import amqp from "amqplib";
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, SocketOptions } from "amqplib";
import { byId, matchesSearch } from "./records.ts";
import { schemeProblem } from "./server_url.ts";
import type { ListQuery, OpenStore, StoreConfig, WordRecord, WordStore } from "./types.ts";

const QUEUE = "words";
const PREFETCH = 1000;
/** Heartbeat in seconds, so a silent broker is noticed even without traffic. */
const HEARTBEAT_S = 5;
/** How long `add` waits for the confirm and for the consumer to see the record. */
const ADD_TIMEOUT_MS = 10_000;
/** Catching up with the stream on open may take this long on top of the connect timeout. */
const CATCH_UP_GRACE_MS = 12_000;
const CLOSE_TIMEOUT_MS = 1_000;
const DECLARE_RETRY_MS = 200;
const TYPE_WORD = "word";
const TYPE_MARKER = "marker";

class RabbitStoreError extends Error {
  override name = "RabbitStoreError";
}

/** A record as stored, checked field by field; undefined for anything else. */
function parseRecord(content: Buffer): WordRecord | undefined {
  try {
    const v = JSON.parse(content.toString("utf8"));
    if (
      v && typeof v.id === "string" && typeof v.word === "string" &&
      typeof v.definition === "string" && typeof v.createdAt === "string"
    ) {
      return { id: v.id, word: v.word, definition: v.definition, createdAt: v.createdAt };
    }
  } catch {
    // not ours
  }
  return undefined;
}

/** A message's place in the stream and its id (`messageId`, "" when it has none). */
interface Position {
  offset: number;
  messageId: string;
}

/** Records sorted by id, each id once, and where in the stream they were read up to. */
class Projection {
  #records: WordRecord[] = [];
  #ids = new Set<string>();
  /** Offset and message id of the stream's first message, as read when the projection started. */
  head: Position | undefined;
  /** Offset and message id of the last message applied; undefined before the first. */
  last: Position | undefined;

  /** Forgets everything (the stream it was read from is gone). */
  reset(): void {
    this.#records = [];
    this.#ids = new Set();
    this.head = undefined;
    this.last = undefined;
  }

  has(id: string): boolean {
    return this.#ids.has(id);
  }

  insert(r: WordRecord): void {
    if (this.#ids.has(r.id)) return;
    this.#ids.add(r.id);
    const a = this.#records;
    if (a.length === 0 || a[a.length - 1].id < r.id) {
      a.push(r);
      return;
    }
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid].id < r.id) lo = mid + 1;
      else hi = mid;
    }
    a.splice(lo, 0, r);
  }

  page(q: ListQuery): WordRecord[] {
    const out: WordRecord[] = [];
    let skip = q.offset;
    for (const r of this.#records) {
      if (q.after !== undefined && r.id <= q.after) continue;
      if (!matchesSearch(r, q.search)) continue;
      if (skip > 0) {
        skip--;
        continue;
      }
      out.push({ ...r });
      if (out.length >= q.limit) break;
    }
    return byId(out);
  }
}

/** One projection per configured store, kept across reconnects. */
const projections = new WeakMap<StoreConfig, Projection>();

/** The stream offset a delivered message carries, or undefined. */
function offsetOf(msg: ConsumeMessage): number | undefined {
  const v = msg.properties.headers?.["x-stream-offset"];
  return typeof v === "number" && Number.isSafeInteger(v) ? v : undefined;
}

/** A delivered message's `messageId`, or "". */
function idOf(msg: ConsumeMessage): string {
  return typeof msg.properties.messageId === "string" ? msg.properties.messageId : "";
}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

class RabbitWordStore implements WordStore {
  #conn: ChannelModel;
  #pub!: ConfirmChannel;
  #ops!: Channel;
  #sub!: Channel;
  #projection: Projection;
  /** The offset this connection resumed from and must find its last message at; undefined when read from the start. */
  #resumeAt: Position | undefined;
  /** Waiting for the consumer to see an id (a record id or a marker nonce). */
  #waiters = new Map<string, Set<Waiter>>();
  #failure: Error | undefined;
  #closed = false;

  constructor(conn: ChannelModel, projection: Projection) {
    this.#conn = conn;
    this.#projection = projection;
    conn.on("error", (e: Error) => this.#fail(e));
    conn.on("close", () => this.#fail(new RabbitStoreError("connection closed")));
  }

  /** Opens the channels, declares the stream, starts the consumer and catches up. */
  async init(catchUpMs: number): Promise<void> {
    const deadline = Date.now() + catchUpMs;
    await this.#declare(deadline);
    this.#pub = await this.#channel(this.#conn.createConfirmChannel());
    this.#ops = await this.#channel(this.#conn.createChannel());
    this.#sub = await this.#channel(this.#conn.createChannel());
    this.#pub.on("return", (msg: ConsumeMessage) => {
      const id = typeof msg.properties.messageId === "string" ? msg.properties.messageId : "";
      this.#settle(id, new RabbitStoreError(`the ${QUEUE} stream is missing`));
    });
    // The marker goes in first, so the stream is not empty when its head is peeked at.
    const nonce = crypto.randomUUID();
    const seen = this.#waitFor(nonce, Math.max(1, deadline - Date.now()));
    seen.catch(() => {}); // awaited below; a failure before that must not go unhandled
    await this.#publish(Buffer.alloc(0), { type: TYPE_MARKER, messageId: nonce });
    const { head, last } = this.#projection;
    if (head && last) {
      const now = await this.#peekHead();
      if (now.offset === head.offset && now.messageId === head.messageId) this.#resumeAt = last;
      else this.#projection.reset(); // not the stream the projection was read from
    }
    await this.#sub.prefetch(PREFETCH);
    await this.#sub.consume(QUEUE, (msg) => this.#onMessage(msg), {
      noAck: false,
      arguments: { "x-stream-offset": this.#resumeAt?.offset ?? "first" },
    });
    await seen;
  }

  async add(record: WordRecord): Promise<void> {
    this.#check();
    const body = Buffer.from(
      JSON.stringify({
        id: record.id,
        word: record.word,
        definition: record.definition,
        createdAt: record.createdAt,
      }),
      "utf8",
    );
    const seen = this.#projection.has(record.id)
      ? Promise.resolve()
      : this.#waitFor(record.id, ADD_TIMEOUT_MS);
    await Promise.all([
      this.#publish(body, {
        type: TYPE_WORD,
        messageId: record.id,
        contentType: "application/json",
        contentEncoding: "utf-8",
      }),
      seen,
    ]);
  }

  async list(query: ListQuery): Promise<WordRecord[]> {
    await this.ping();
    return this.#projection.page(query);
  }

  async ping(): Promise<void> {
    this.#check();
    await this.#ops.checkQueue(QUEUE);
    this.#check();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#rejectAll(new RabbitStoreError("store closed"));
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.#conn.close(),
        new Promise((resolve) => timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)),
      ]);
    } catch {
      // already closed or broken
    } finally {
      clearTimeout(timer);
      this.#destroySocket();
    }
  }

  /**
   * Declares the `words` stream on a throw-away channel (a refused declare closes
   * its channel). Right after a broker restart, a durable stream answers 404
   * "home node ... is down or inaccessible" for a moment until it is recovered:
   * that one error is retried until `deadline`.
   */
  async #declare(deadline: number): Promise<void> {
    for (;;) {
      this.#check();
      const ch = await this.#conn.createChannel();
      ch.on("error", () => {});
      try {
        await ch.assertQueue(QUEUE, {
          durable: true,
          exclusive: false,
          autoDelete: false,
          arguments: { "x-queue-type": "stream" },
        });
        await ch.close();
        return;
      } catch (e) {
        const recovering = /down or inaccessible/.test(String((e as Error)?.message));
        if (!recovering || Date.now() + DECLARE_RETRY_MS > deadline) throw e;
      }
      await new Promise((resolve) => setTimeout(resolve, DECLARE_RETRY_MS));
    }
  }

  /** The stream's first message, read on a throw-away consumer (the stream must not be empty). */
  async #peekHead(): Promise<Position> {
    const ch = await this.#conn.createChannel();
    ch.on("error", () => {});
    try {
      await ch.prefetch(1);
      return await new Promise<Position>((resolve, reject) => {
        ch.consume(QUEUE, (msg) => {
          if (msg === null) {
            return reject(new RabbitStoreError(`the ${QUEUE} consumer was cancelled`));
          }
          resolve({ offset: offsetOf(msg) ?? -1, messageId: idOf(msg) });
        }, { noAck: false, arguments: { "x-stream-offset": "first" } }).catch(reject);
      });
    } finally {
      await ch.close().catch(() => {});
    }
  }

  async #channel<C extends Channel>(creating: Promise<C>): Promise<C> {
    const ch = await creating;
    ch.on("error", (e: Error) => this.#fail(e));
    ch.on("close", () => this.#fail(new RabbitStoreError("channel closed")));
    return ch;
  }

  #onMessage(msg: ConsumeMessage | null): void {
    if (this.#failure || this.#closed) return; // the projection belongs to the next connection now
    if (msg === null) {
      this.#fail(new RabbitStoreError(`the server cancelled the ${QUEUE} consumer`));
      return;
    }
    const { type, messageId } = msg.properties;
    const offset = offsetOf(msg);
    const id = idOf(msg);
    if (this.#resumeAt) {
      // The broker starts a consumer exactly at the offset asked for (earlier messages of the
      // chunk are filtered out), so the first delivery must be the last message applied.
      const expected = this.#resumeAt;
      this.#resumeAt = undefined;
      if (offset !== expected.offset || id !== expected.messageId) {
        this.#projection.reset();
        this.#fail(
          new RabbitStoreError(`the ${QUEUE} stream changed under the store; reading it again`),
        );
        return;
      }
    }
    if (offset !== undefined) {
      this.#projection.head ??= { offset, messageId: id };
      this.#projection.last = { offset, messageId: id };
    }
    if (type === TYPE_MARKER) {
      if (typeof messageId === "string" && this.#waiters.has(messageId)) this.#settle(messageId);
    } else {
      const record = parseRecord(msg.content);
      if (record) {
        this.#projection.insert(record);
        this.#settle(record.id);
      }
    }
    this.#ack(msg);
  }

  #ack(msg: ConsumeMessage): void {
    try {
      this.#sub.ack(msg);
    } catch (e) {
      this.#fail(e as Error);
    }
  }

  /** Publishes persistently and mandatorily; resolves on the broker's confirm. */
  #publish(body: Buffer, props: Record<string, string>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      try {
        this.#check();
        this.#pub.sendToQueue(
          QUEUE,
          body,
          { ...props, persistent: true, mandatory: true },
          (err: unknown) => {
            if (err) reject(new RabbitStoreError("the broker did not confirm the message"));
            else resolve();
          },
        );
      } catch (e) {
        reject(e);
      }
    });
  }

  /** Resolves when the consumer sees `id`; rejects after `ms` or when the store breaks. */
  #waitFor(id: string, ms: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let set = this.#waiters.get(id);
      if (!set) this.#waiters.set(id, set = new Set());
      const timer = setTimeout(() => {
        set.delete(w);
        if (set.size === 0 && this.#waiters.get(id) === set) this.#waiters.delete(id);
        reject(new RabbitStoreError(`the ${QUEUE} stream did not deliver within ${ms} ms`));
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
      if (this.#failure) w.reject(this.#failure);
    });
  }

  #settle(id: string, error?: Error): void {
    const set = this.#waiters.get(id);
    if (!set) return;
    this.#waiters.delete(id);
    for (const w of set) error ? w.reject(error) : w.resolve();
  }

  #rejectAll(e: Error): void {
    const all = [...this.#waiters.values()];
    this.#waiters.clear();
    for (const set of all) for (const w of set) w.reject(e);
  }

  #check(): void {
    if (this.#closed) throw new RabbitStoreError("store closed");
    if (this.#failure) throw this.#failure;
  }

  #fail(e: Error): void {
    if (this.#failure || this.#closed) return;
    this.#failure = e instanceof Error ? e : new RabbitStoreError(String(e));
    this.#rejectAll(this.#failure);
    // The connection is useless once a channel broke; let it go.
    try {
      this.#conn.close().catch(() => {}).finally(() => this.#destroySocket());
    } catch {
      this.#destroySocket();
    }
  }

  #destroySocket(): void {
    const inner = (this.#conn as unknown as { connection?: { stream?: { destroy?: () => void } } })
      .connection;
    try {
      inner?.stream?.destroy?.();
    } catch {
      // gone already
    }
  }
}

function socketOptions(config: StoreConfig, protocol: string): SocketOptions {
  const opts: SocketOptions = { timeout: config.connectTimeoutMs, noDelay: true };
  if (config.caCert !== undefined) {
    if (protocol !== "amqps:") {
      throw new RabbitStoreError("a CA certificate is configured but the URL is not amqps://");
    }
    opts.ca = [config.caCert];
    opts.rejectUnauthorized = true;
  }
  return opts;
}

/** Connects, declares the `words` stream and catches up with it. */
export const open: OpenStore = async (config) => {
  let url: URL;
  try {
    url = new URL(config.url);
  } catch {
    throw new RabbitStoreError("RABBITMQ_URL is not a valid amqp:// or amqps:// URL");
  }
  const problem = schemeProblem("RABBITMQ", url);
  if (problem) throw new RabbitStoreError(problem);
  if (!url.searchParams.has("heartbeat")) url.searchParams.set("heartbeat", String(HEARTBEAT_S));
  const sockopts = socketOptions(config, url.protocol);
  const conn = await amqp.connect(url.toString(), sockopts);
  let projection = projections.get(config);
  if (!projection) projections.set(config, projection = new Projection());
  const store = new RabbitWordStore(conn, projection);
  try {
    await store.init(config.connectTimeoutMs + CATCH_UP_GRACE_MS);
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
};
