/**
 * A bounded loop of `fetch` workers for the gateway-restart scenario, where
 * autocannon does not fit: it cannot tell which requests were already sent
 * when the gateway got SIGTERM (it neither exposes per-request send times nor
 * reports a request lost with a closed connection, and it reconnects in a
 * tight loop to a port that is gone). Each worker here sends the same mix as
 * the autocannon load (support/mix.ts: add, list, edit and delete of its own
 * words) to every store in turn, records when each request was sent and how
 * it ended, and stops at its first connection error once the gateway is
 * shutting down, or at `maxSeconds`.
 *
 * @module
 */
import type { StoreName } from "../../../stores/types.ts";
import { HANG_SECONDS } from "./load.ts";
import { ConnectionMix, type Planned, WordNames } from "./mix.ts";
import { type Ack, type Change, classify, CONNECTION_ERROR, type Op, TIMEOUT } from "./samples.ts";

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
  readonly changes: Change[] = [];
  #closing = false;
  #done: Promise<void>;
  #deadline: number;
  /** One tag sequence per store, shared by the workers. */
  #words = new Map<StoreName, WordNames>();

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
    // one mix per store: a worker edits and deletes only the words it added to that store
    const mixes = this.stores.map((store) => {
      const words = this.#words.get(store) ?? new WordNames();
      this.#words.set(store, words);
      return new ConnectionMix(store, `w${w}`, words, "sent around a SIGTERM", this);
    });
    for (let i = 0; Date.now() < this.#deadline; i++) {
      const mix = mixes[(w + i) % mixes.length];
      const a = await this.#send(mix, mix.next());
      this.attempts.push(a);
      if (this.#closing && (a.outcome === CONNECTION_ERROR || a.outcome === TIMEOUT)) return;
    }
  }

  async #send(mix: ConnectionMix, request: Planned): Promise<Attempt> {
    const { store } = mix;
    const { op } = request;
    const sentAt = Date.now();
    try {
      const res = await fetch(`${this.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: request.body,
        signal: AbortSignal.timeout(HANG_SECONDS * 1000),
      });
      const text = await res.text();
      const { outcome, message, word } = classify(res.status, text);
      mix.end(request, outcome, word);
      return { store, op, sentAt, endedAt: Date.now(), status: res.status, outcome, message };
    } catch (e) {
      const outcome = (e as Error).name === "TimeoutError" ? TIMEOUT : CONNECTION_ERROR;
      mix.end(request, outcome);
      return { store, op, sentAt, endedAt: Date.now(), status: 0, outcome };
    }
  }
}
