/**
 * The broker side of the RabbitMQ store: one connection (amqps with the
 * configured CA, heartbeats) to the durable STREAM queue `words`
 * (`x-queue-type: stream`), where every word, edit and deletion is one
 * persistent JSON message and which is the only copy of the words. Reading
 * a stream never consumes it: a consumer starts at an offset and the broker
 * keeps every message.
 *
 * Messages, by AMQP `type` (`rabbitmq.ts` says how a view applies them):
 * - `word`: `{id, word, definition, createdAt}`, message id = the word's id;
 * - `update`: `{revision, record: {id, word, definition, createdAt,
 *   updatedAt, searchKey}}`, message id = a fresh nonce;
 * - `delete`: `{id, revision}`, message id = a fresh nonce;
 * - `marker`: empty, message id = a nonce; changes nothing.
 * An edit's record is nested, so a reader that predates edits, which takes
 * any message with top-level word fields for a new word, ignores it rather
 * than bringing back a deleted word.
 *
 * A {@linkcode StreamConnection} publishes with publisher confirms, reads the
 * stream's first message (its head: how a stream deleted and recreated is
 * told apart from the one a view was built from), and follows the stream
 * from an offset. amqplib does not reconnect: any connection or channel error
 * breaks a connection for good and is reported once; the store then fails
 * and the gateway's wrapper opens a new one, on the next node of the URL list
 * when it names several.
 *
 * The stream is declared without `x-initial-cluster-size`: RabbitMQ then
 * places a replica on every node of the cluster (all three of the matrix's
 * cluster topology), and a stream declared earlier with fewer members gets
 * more with `rabbitmq-streams add_replica`. Setting the argument would make
 * every existing `words` stream declared without it refuse the declare as
 * inequivalent.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import amqp from "amqplib";
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, SocketOptions } from "amqplib";
import { settlesWithin } from "./deadline.ts";
import { BrokerList } from "./rabbitmq_nodes.ts";
import type { StreamPosition, ViewEvent } from "./sqlite_worker.ts";
import type { NewWord, StoreConfig, WordRecord } from "./types.ts";

const QUEUE = "words";
const CLOSE_TIMEOUT_MS = 1_000;
const DECLARE_RETRY_MS = 200;
const TYPE_WORD = "word";
const TYPE_UPDATE = "update";
const TYPE_DELETE = "delete";
const TYPE_MARKER = "marker";

/** A RabbitMQ store failure; its message never holds the URL. */
export class RabbitStoreError extends Error {
  override name = "RabbitStoreError";
}

/**
 * The broker took the `words` stream away from this connection (the stream
 * was deleted, the consumer cancelled, a channel refused by the server):
 * another broker of the same cluster would not serve it either.
 */
export class StreamGoneError extends RabbitStoreError {}

/** A message as the stream delivered it. */
export interface Delivery {
  position: StreamPosition;
  /** What it changes in a view; undefined for a marker or a message that is not ours. */
  event?: ViewEvent;
  /** A marker's nonce (its message id); undefined for anything else. */
  marker?: string;
  /** The message itself, to acknowledge. */
  message: ConsumeMessage;
}

function isString(v: unknown): v is string {
  return typeof v === "string";
}

/** A record as stored, checked field by field; undefined for anything else. */
function parseRecord(v: Record<string, unknown> | undefined): WordRecord | undefined {
  if (
    !v || !isString(v.id) || !isString(v.word) || !isString(v.definition) ||
    !isString(v.createdAt)
  ) {
    return undefined;
  }
  return { id: v.id, word: v.word, definition: v.definition, createdAt: v.createdAt };
}

/** What a delivered message at `offset` of `type` changes, checked field by field. */
function parseEvent(type: unknown, content: Buffer, offset: number): ViewEvent | undefined {
  let v;
  try {
    v = JSON.parse(content.toString("utf8"));
  } catch {
    return undefined; // not ours
  }
  if (!v || typeof v !== "object") return undefined;
  if (type === TYPE_DELETE) {
    return isString(v.id) && isString(v.revision)
      ? { type: "delete", offset, id: v.id, revision: v.revision }
      : undefined;
  }
  if (type === TYPE_UPDATE) {
    const record = parseRecord(v.record);
    const { updatedAt, searchKey } = v.record ?? {};
    if (!record || !isString(v.revision) || !isString(searchKey)) return undefined;
    if (updatedAt !== undefined && !isString(updatedAt)) return undefined;
    return {
      type: "update",
      offset,
      record: { ...record, updatedAt, searchKey },
      revision: v.revision,
    };
  }
  const record = parseRecord(v);
  return record && { type: "add", offset, record };
}

/** A delivered message's place in the stream; undefined when it carries no offset. */
function positionOf(msg: ConsumeMessage): StreamPosition | undefined {
  const offset = msg.properties.headers?.["x-stream-offset"];
  if (typeof offset !== "number" || !Number.isSafeInteger(offset)) return undefined;
  const id = msg.properties.messageId;
  return { offset, id: typeof id === "string" ? id : "" };
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

/** One connection to the broker and its channels: publishing, operations, following. */
export class StreamConnection {
  #conn: ChannelModel;
  #pub!: ConfirmChannel;
  #ops!: Channel;
  #sub!: Channel;
  #onFailure: (e: Error) => void;
  /** Publishes awaiting their confirm, by message id: a returned message rejects its own. */
  #unconfirmed = new Map<string, (e: Error) => void>();
  #failure: Error | undefined;
  #closed = false;
  /**
   * Rejects once the connection failed or was closed. Every call to the
   * broker races it: amqplib answers a call pending when its connection
   * closes only once the socket's close is noticed, which after a failure can
   * take until the heartbeat gives up (15 s).
   */
  #broken: Promise<never>;
  #break!: (e: Error) => void;

  private constructor(conn: ChannelModel, onFailure: (e: Error) => void) {
    this.#conn = conn;
    this.#onFailure = onFailure;
    this.#broken = new Promise<never>((_, reject) => this.#break = reject);
    this.#broken.catch(() => {}); // raced by every call; never unhandled on its own
    conn.on("error", (e: Error) => this.#fail(e));
    conn.on("close", () => this.#fail(new RabbitStoreError("connection closed")));
  }

  /**
   * Connects to the first broker of the URL list that answers
   * (`rabbitmq_nodes.ts`), declares the stream (until `deadline` while a
   * restarted broker recovers it) and opens the channels. `onFailure` hears
   * of the first error that breaks the connection, once.
   */
  static async open(
    config: StoreConfig,
    deadline: number,
    onFailure: (e: Error) => void,
  ): Promise<StreamConnection> {
    const brokers = new BrokerList(config.url, RabbitStoreError);
    for (const url of brokers.urls) socketOptions(config, url.protocol); // every part, up front
    const { value: conn, node } = await brokers.first((url) =>
      amqp.connect(url.toString(), socketOptions(config, url.protocol))
    );
    const stream = new StreamConnection(conn, (e) => {
      brokers.lost(node);
      onFailure(e);
    });
    try {
      await stream.#declare(deadline);
      stream.#pub = await stream.#channel(stream.#conn.createConfirmChannel());
      stream.#ops = await stream.#channel(stream.#conn.createChannel());
      stream.#sub = await stream.#channel(stream.#conn.createChannel());
    } catch (e) {
      brokers.lost(node);
      await stream.close();
      throw e;
    }
    stream.#pub.on("return", (msg: ConsumeMessage) => {
      const id = msg.properties.messageId;
      const reject = stream.#unconfirmed.get(typeof id === "string" ? id : "");
      reject?.(new StreamGoneError(`the ${QUEUE} stream is missing`));
    });
    return stream;
  }

  /** Publishes `record` as a word message; resolves on the broker's confirm. */
  publishWord(record: WordRecord): Promise<void> {
    const { id, word, definition, createdAt } = record;
    return this.#publishJson(TYPE_WORD, id, { id, word, definition, createdAt });
  }

  /**
   * Publishes an `update` event: `record` (with its `updatedAt` and search
   * key) replaces the word if it is still at `revision` when a view applies
   * it. Resolves on the broker's confirm.
   */
  publishUpdate(record: NewWord, revision: string, nonce: string): Promise<void> {
    const { id, word, definition, createdAt, updatedAt, searchKey } = record;
    return this.#publishJson(TYPE_UPDATE, nonce, {
      revision,
      record: { id, word, definition, createdAt, updatedAt, searchKey },
    });
  }

  /** Publishes a `delete` event for word `id` at `revision`; resolves on the broker's confirm. */
  publishDelete(id: string, revision: string, nonce: string): Promise<void> {
    return this.#publishJson(TYPE_DELETE, nonce, { id, revision });
  }

  /** Publishes an empty marker message (ignored by every reader); resolves on the confirm. */
  publishMarker(nonce: string): Promise<void> {
    return this.#publish(Buffer.alloc(0), { type: TYPE_MARKER, messageId: nonce });
  }

  /** The stream's first message, read on a throw-away consumer (the stream must not be empty). */
  async peekHead(): Promise<StreamPosition> {
    this.#check();
    const ch = await this.#call(this.#conn.createChannel());
    ch.on("error", () => {});
    try {
      await this.#call(ch.prefetch(1));
      return await this.#call(
        new Promise<StreamPosition>((resolve, reject) => {
          ch.consume(QUEUE, (msg) => {
            if (msg === null) {
              return reject(new RabbitStoreError(`the ${QUEUE} consumer was cancelled`));
            }
            resolve(positionOf(msg) ?? { offset: -1, id: "" });
          }, { noAck: false, arguments: { "x-stream-offset": "first" } }).catch(reject);
        }),
      );
    } finally {
      await this.#call(ch.close()).catch(() => {});
    }
  }

  /**
   * Delivers every message from `offset` on (`"first"`: the stream's first)
   * to `deliver`, in stream order, at most `prefetch` of them unacknowledged.
   */
  async follow(
    offset: number | "first",
    prefetch: number,
    deliver: (d: Delivery) => void,
  ): Promise<void> {
    this.#check();
    await this.#call(this.#sub.prefetch(prefetch));
    await this.#call(this.#sub.consume(QUEUE, (msg) => {
      if (this.#failure || this.#closed) return;
      if (msg === null) {
        return this.#fail(new StreamGoneError(`the server cancelled the ${QUEUE} consumer`));
      }
      const position = positionOf(msg);
      if (!position) {
        return this.#fail(new RabbitStoreError(`a ${QUEUE} message came without its offset`));
      }
      const { type } = msg.properties;
      if (type === TYPE_MARKER) deliver({ position, marker: position.id, message: msg });
      else {deliver({
          position,
          event: parseEvent(type, msg.content, position.offset),
          message: msg,
        });}
    }, { noAck: false, arguments: { "x-stream-offset": offset } }));
  }

  /** Whether the connection failed (or was closed): nothing more goes through it. */
  get broken(): boolean {
    return this.#failure !== undefined || this.#closed;
  }

  /** Acknowledges `d` and every delivery before it: the broker may send that many more. */
  ack(d: Delivery): void {
    if (this.#failure || this.#closed) return;
    try {
      this.#sub.ack(d.message, true);
    } catch (e) {
      this.#fail(e as Error);
    }
  }

  /** One round trip: a passive declare of the stream. */
  async ping(): Promise<void> {
    this.#check();
    await this.#call(this.#ops.checkQueue(QUEUE));
    this.#check();
  }

  /** Closes the connection (within a second, then the socket); never rejects. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closed = new RabbitStoreError("store closed");
    this.#break(closed);
    this.#rejectUnconfirmed(closed);
    await settlesWithin(this.#conn.close(), CLOSE_TIMEOUT_MS); // closed, broken or slow: let it go
    this.#destroySocket();
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
      const ch = await this.#call(this.#conn.createChannel());
      ch.on("error", () => {});
      try {
        await this.#call(ch.assertQueue(QUEUE, {
          durable: true,
          exclusive: false,
          autoDelete: false,
          arguments: { "x-queue-type": "stream" },
        }));
        await this.#call(ch.close());
        return;
      } catch (e) {
        const recovering = /down or inaccessible/.test(String((e as Error)?.message));
        if (!recovering || Date.now() + DECLARE_RETRY_MS > deadline) throw e;
      }
      await new Promise((resolve) => setTimeout(resolve, DECLARE_RETRY_MS));
    }
  }

  async #channel<C extends Channel>(creating: Promise<C>): Promise<C> {
    const ch = await this.#call(creating);
    // 404: the stream is gone (deleted under the store).
    ch.on(
      "error",
      (e: Error & { code?: unknown }) =>
        this.#fail(e.code === 404 ? new StreamGoneError(e.message) : e),
    );
    ch.on("close", () => this.#fail(new RabbitStoreError("channel closed")));
    return ch;
  }

  /** Publishes `body` as a JSON message; resolves on the broker's confirm. */
  #publishJson(type: string, messageId: string, body: unknown): Promise<void> {
    return this.#publish(Buffer.from(JSON.stringify(body), "utf8"), {
      type,
      messageId,
      contentType: "application/json",
      contentEncoding: "utf-8",
    });
  }

  /** Publishes persistently and mandatorily; resolves on the broker's confirm. */
  #publish(body: Buffer, props: { type: string; messageId: string; [k: string]: string }) {
    return new Promise<void>((resolve, reject) => {
      try {
        this.#check();
        this.#unconfirmed.set(props.messageId, reject);
        this.#pub.sendToQueue(
          QUEUE,
          body,
          { ...props, persistent: true, mandatory: true },
          (err: unknown) => {
            this.#unconfirmed.delete(props.messageId);
            if (err) reject(new RabbitStoreError("the broker did not confirm the message"));
            else resolve();
          },
        );
      } catch (e) {
        this.#unconfirmed.delete(props.messageId);
        reject(e);
      }
    });
  }

  /** `call`, or the connection's failure if that comes first. */
  #call<T>(call: Promise<T>): Promise<T> {
    return Promise.race([call, this.#broken]);
  }

  #rejectUnconfirmed(e: Error): void {
    const all = [...this.#unconfirmed.values()];
    this.#unconfirmed.clear();
    for (const reject of all) reject(e);
  }

  #check(): void {
    if (this.#closed) throw new RabbitStoreError("store closed");
    if (this.#failure) throw this.#failure;
  }

  #fail(e: Error): void {
    if (this.#failure || this.#closed) return;
    this.#failure = e instanceof Error ? e : new RabbitStoreError(String(e));
    this.#break(this.#failure);
    this.#rejectUnconfirmed(this.#failure);
    this.#onFailure(this.#failure);
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
