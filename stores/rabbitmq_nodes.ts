/**
 * The brokers of `RABBITMQ_URL`: one `amqp(s)://` URL or several nodes of one
 * cluster separated by commas, each checked on its own. A connection goes to
 * the first node that answers, starting with the one that served last; once
 * that connection is lost ({@linkcode BrokerList.lost}), the next attempt
 * starts with the node after it, so a reconnect after a node's death does not
 * wait for the dead node's connect timeout first.
 *
 * @module
 */
import { settings } from "./rabbitmq_settings.ts";
import { schemeProblem, splitNodes } from "./settings.ts";

/** A store failure that never holds the URL. */
export type ErrorClass = new (message: string) => Error;

/** Heartbeat in seconds, so a silent broker is noticed even without traffic. */
const HEARTBEAT_S = 5;

/** Where the next connection to each list of brokers starts, by the list's text. */
const startAt = new Map<string, number>();

/** The brokers of one `RABBITMQ_URL`. */
export class BrokerList {
  readonly urls: readonly URL[];
  #key: string;

  /** Parses `raw`; throws `Err` (without the URL) when a part is not an amqp(s) URL. */
  constructor(raw: string, Err: ErrorClass) {
    this.#key = raw;
    const urls: URL[] = [];
    for (const part of splitNodes(raw)) {
      let url: URL;
      try {
        url = new URL(part);
      } catch {
        throw new Err("RABBITMQ_URL is not a valid amqp:// or amqps:// URL (or list of them)");
      }
      const problem = schemeProblem(settings, url);
      if (problem) throw new Err(problem);
      if (!url.searchParams.has("heartbeat")) {
        url.searchParams.set("heartbeat", String(HEARTBEAT_S));
      }
      urls.push(url);
    }
    if (urls.length === 0) throw new Err("RABBITMQ_URL names no broker");
    this.urls = urls;
  }

  /**
   * `connect(url)` on each broker in turn, from the one that served last,
   * until one succeeds; rejects with the last failure when none does.
   */
  async first<T>(connect: (url: URL) => Promise<T>): Promise<{ value: T; node: number }> {
    const start = (startAt.get(this.#key) ?? 0) % this.urls.length;
    let last: unknown;
    for (let i = 0; i < this.urls.length; i++) {
      const node = (start + i) % this.urls.length;
      try {
        const value = await connect(this.urls[node]);
        startAt.set(this.#key, node);
        return { value, node };
      } catch (e) {
        last = e;
      }
    }
    throw last;
  }

  /** The connection to `node` was lost: the next one starts with the node after it. */
  lost(node: number): void {
    if (this.urls.length > 1) startAt.set(this.#key, (node + 1) % this.urls.length);
  }
}
