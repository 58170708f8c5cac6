/**
 * A bounded loop of `fetch` workers for the gateway-restart scenario, where
 * autocannon does not fit: it cannot tell which requests were already sent
 * when the gateway got SIGTERM (it neither exposes per-request send times nor
 * reports a request lost with a closed connection, and it reconnects in a
 * tight loop to a port that is gone). Each worker here alternates `addWord`
 * and a first-page `words` over every store, records when each request was
 * sent and how it ended, and stops at its first connection error once the
 * gateway is shutting down, or at `maxSeconds`.
 *
 * @module
 */
import type { StoreName } from "../../../stores/types.ts";
import { ADD, HANG_SECONDS, LIST, newTag, TAG_EVERY } from "./load.ts";
import { type Ack, classify, CONNECTION_ERROR, type Op, TIMEOUT } from "./samples.ts";

/** One request and how it ended. */
export interface Attempt {
  store: StoreName;
  op: Op;
  /** `Date.now()` when it was sent and when it ended. */
  sentAt: number;
  endedAt: number;
  status: number;
  outcome: string;
  /** The first GraphQL error's message, if any. */
  message?: string;
}

/** A running fetch load. */
export class FetchLoad {
  readonly attempts: Attempt[] = [];
  readonly acks: Ack[] = [];
  #closing = false;
  #done: Promise<void>;
  #deadline: number;
  #tags = new Map<StoreName, { tag: string; adds: number }>();

  constructor(
    readonly url: string,
    readonly stores: readonly StoreName[],
    workers: number,
    maxSeconds: number,
  ) {
    this.#deadline = Date.now() + maxSeconds * 1000;
    this.#done = Promise.all(Array.from({ length: workers }, (_, w) => this.#worker(w)))
      .then(() => {});
  }

  /** From now on a connection error ends a worker (the gateway is going away). */
  closing(): void {
    this.#closing = true;
  }

  /** Resolves once every worker has stopped. */
  finished(): Promise<void> {
    return this.#done;
  }

  async #worker(w: number): Promise<void> {
    for (let i = 0; Date.now() < this.#deadline; i++) {
      const store = this.stores[(w + i) % this.stores.length];
      const op: Op = i % 2 === 0 ? "add" : "list";
      const a = await this.#send(store, op);
      this.attempts.push(a);
      if (this.#closing && (a.outcome === CONNECTION_ERROR || a.outcome === TIMEOUT)) return;
    }
  }

  async #send(store: StoreName, op: Op): Promise<Attempt> {
    const body = op === "add"
      ? {
        query: ADD,
        variables: { store, word: this.#nextWord(store), definition: "sent around a SIGTERM" },
      }
      : { query: LIST, variables: { store } };
    const sentAt = Date.now();
    try {
      const res = await fetch(`${this.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(HANG_SECONDS * 1000),
      });
      const text = await res.text();
      const { outcome, message, word } = classify(res.status, text);
      if (word) {
        this.acks.push({
          store,
          id: word.id,
          tag: word.word.split(" ")[0],
          word: word.word,
          at: Date.now(),
        });
      }
      return { store, op, sentAt, endedAt: Date.now(), status: res.status, outcome, message };
    } catch (e) {
      const outcome = (e as Error).name === "TimeoutError" ? TIMEOUT : CONNECTION_ERROR;
      return { store, op, sentAt, endedAt: Date.now(), status: 0, outcome };
    }
  }

  #nextWord(store: StoreName): string {
    let t = this.#tags.get(store);
    if (!t || t.adds >= TAG_EVERY) this.#tags.set(store, t = { tag: newTag(), adds: 0 });
    return `${t.tag} ${t.adds++}`;
  }
}
