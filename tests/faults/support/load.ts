/**
 * The fault suite's mixed load, driven by autocannon (pinned in deno.json):
 * one autocannon instance per store, its connections alternating `addWord`
 * and a first-page `words` on that store, so every store is read and written
 * at once and every response is attributed to its store. Each word carries a
 * random tag (a new one every {@linkcode TAG_EVERY} adds) so it can be found
 * again by search; every acknowledged add is kept as an {@linkcode Ack}.
 *
 * Paced: the whole load sends {@linkcode LoadOptions.rate} requests per
 * second, split evenly over the stores and their connections, whatever the
 * number of connections. An unpaced closed loop saturates this 2-core
 * machine, and then every other consumer of CPU (a JVM restarting next to
 * the gateway) shows up in every store's p99: that measures the machine's
 * scheduler, not the gateway's isolation. Paced, a store that fails fast
 * also does not free connections to pile more load on the healthy ones.
 *
 * Spread over the second: autocannon paces a connection by letting it send
 * its whole quota for the second back to back when a 1 s timer fires
 * (`reqsMadeThisSecond` in its httpClient.js), and every connection of an
 * instance shares that timer's phase. One instance with all connections
 * therefore sends the second's 240 requests as one burst, and what it
 * measures is how long that burst takes to drain (median 20–40 ms for a
 * Redis read that takes 2 ms alone). So each connection here is its own
 * one-connection instance, started at its own phase of the second.
 *
 * Bounded: traffic goes to the gateway's 127.0.0.1 URL only, and every
 * instance stops after `maxSeconds` even if {@linkcode MixedLoad.stop} is
 * never called.
 *
 * @module
 */
import autocannonUntyped from "autocannon";
import type { StoreName } from "../../../stores/types.ts";
import {
  type Ack,
  classify,
  CONNECTION_ERROR,
  type Op,
  type Sample,
  serverTimingMs,
  TIMEOUT,
} from "./samples.ts";

/**
 * The suite's request rate over all stores, about a quarter of what the
 * gateway and the seven databases serve together here at full CPU (~1,000
 * req/s). It also keeps FerretDB, which sorts a whole collection in memory
 * for every page (~27 µs per stored word), well inside its request timeout
 * as the scenario's words pile up.
 */
export const LOAD_RATE = 240;

/** Adds per tag: a tag's words fit in one search page (limit 1000). */
export const TAG_EVERY = 500;
/** Seconds without a response after which autocannon gives up on a request (a hang). */
export const HANG_SECONDS = 5;

/** The load's write: one `addWord`. */
export const ADD = `mutation($store: Store!, $word: String!, $definition: String!) {
  addWord(store: $store, word: $word, definition: $definition) { id word }
}`;
/** The load's read: the first page of `words`. */
export const LIST = `query($store: Store!) { words(store: $store, limit: 20) { id } }`;

/** The fields of autocannon's per-request options this module uses. */
interface RequestSpec {
  method: "POST" | "GET";
  path: string;
  headers: Record<string, string>;
  body?: string;
  setupRequest?: (req: RequestSpec) => RequestSpec;
  onResponse: (
    status: number,
    body: string,
    context: unknown,
    headers: Record<string, string | string[]>,
  ) => void;
}

interface Instance {
  on(
    event: "response",
    fn: (client: unknown, status: number, bytes: number, ms: number) => void,
  ): void;
  on(event: "reqError", fn: (error: Error) => void): void;
  stop(): void;
}

type Autocannon = (
  options: Record<string, unknown>,
  done: (err: Error | null, result: unknown) => void,
) => Instance;

const autocannon = autocannonUntyped as unknown as Autocannon;

/** Settings of one mixed load. */
export interface LoadOptions {
  /** The gateway's base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  stores: readonly StoreName[];
  /** Connections in total, spread evenly over `stores`. */
  connections: number;
  /** Requests per second in total, spread evenly over `stores` (default {@linkcode LOAD_RATE}). */
  rate?: number;
  /** Upper bound of the run in seconds. */
  maxSeconds: number;
}

/** A running mixed load; read `samples` and `acks` at any time. */
export class MixedLoad {
  readonly samples: Sample[] = [];
  readonly acks: Ack[] = [];
  readonly startedAt = Date.now();
  #running: { instance: Instance; done: Promise<void> }[] = [];
  /** Connections whose phase has not come yet. */
  #pending = new Set<ReturnType<typeof setTimeout>>();
  #stopped = false;
  /** Once set, connections send only `/healthz` (ignored) so that in-flight adds can finish. */
  #draining = false;
  #addsSent = 0;
  #addsEnded = 0;

  constructor(readonly options: LoadOptions) {
    const per = Math.max(1, Math.floor(options.connections / options.stores.length));
    const total = per * options.stores.length;
    const rates = spread(options.rate ?? LOAD_RATE, total);
    // Connection i starts at i/total of the second; stores interleave, so each gets every phase.
    for (let i = 0; i < total; i++) {
      const store = options.stores[i % options.stores.length];
      const timer = setTimeout(() => {
        this.#pending.delete(timer);
        if (!this.#stopped) this.#running.push(this.#start(store, rates[i]));
      }, Math.floor(i * 1000 / total));
      this.#pending.add(timer);
    }
  }

  /** Adds sent whose answer never came (unknown outcome); 0 after a clean {@linkcode stop}. */
  get unansweredAdds(): number {
    return Math.max(0, this.#addsSent - this.#addsEnded);
  }

  /**
   * Stops sending reads and writes, waits until every add already sent has
   * ended (at most {@linkcode HANG_SECONDS} + 1 s), then stops every instance.
   */
  async stop(): Promise<void> {
    this.#draining = true;
    const deadline = Date.now() + (HANG_SECONDS + 1) * 1000;
    while (this.#addsSent > this.#addsEnded && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    this.#stopped = true;
    for (const timer of this.#pending) clearTimeout(timer);
    this.#pending.clear();
    for (const r of this.#running) r.instance.stop();
    await Promise.all(this.#running.map((r) => r.done));
  }

  /** One connection to `store` sending `rate` requests per second, alternating add and list. */
  #start(store: StoreName, rate: number): { instance: Instance; done: Promise<void> } {
    const tags: string[] = [];
    let adds = 0;
    // autocannon records a response's body, then emits its latency, synchronously in that order.
    let last: { op: Op; status: number; outcome: string; storeMs?: number } | "ignore" | undefined;
    const headers = { "content-type": "application/json" };
    const record = (op: Op) =>
    (
      status: number,
      body: string,
      _context: unknown,
      responseHeaders: Record<string, string | string[]>,
    ) => {
      if (body === HEALTHZ_BODY) {
        last = "ignore";
        return;
      }
      const { outcome, word } = classify(status, body);
      last = { op, status, outcome, storeMs: serverTimingMs(timingHeader(responseHeaders)) };
      if (op === "add") this.#addsEnded++;
      if (op === "add" && word) {
        const tag = word.word.split(" ")[0];
        this.acks.push({ store, id: word.id, tag, word: word.word, at: Date.now() });
      }
    };
    const idle = (req: RequestSpec): RequestSpec => ({
      ...req,
      method: "GET",
      path: "/healthz",
      body: undefined,
    });
    const requests: RequestSpec[] = [
      {
        method: "POST",
        path: "/graphql",
        headers,
        setupRequest: (req) => {
          if (this.#draining) return idle(req);
          if (adds % TAG_EVERY === 0) tags.push(newTag());
          const word = `${tags.at(-1)} ${adds++}`;
          const variables = { store, word, definition: "written under the fault suite's load" };
          this.#addsSent++;
          return { ...req, body: JSON.stringify({ query: ADD, variables }) };
        },
        onResponse: record("add"),
      },
      {
        method: "POST",
        path: "/graphql",
        headers,
        setupRequest: (req) =>
          this.#draining
            ? idle(req)
            : { ...req, body: JSON.stringify({ query: LIST, variables: { store } }) },
        onResponse: record("list"),
      },
    ];
    let finish!: () => void;
    const done = new Promise<void>((r) => finish = r);
    const instance = autocannon({
      url: this.options.url,
      connections: 1,
      connectionRate: rate,
      duration: this.options.maxSeconds,
      timeout: HANG_SECONDS,
      requests,
    }, () => finish());
    instance.on("response", (_client, status, _bytes, ms) => {
      const r = last;
      last = undefined;
      if (r === "ignore") return;
      const known = r?.status === status ? r : undefined;
      this.samples.push({
        at: Date.now(),
        store,
        op: known?.op ?? "unknown",
        ms,
        status,
        outcome: known?.outcome ?? "UNATTRIBUTED",
        storeMs: known?.storeMs,
      });
    });
    instance.on("reqError", (error) => {
      const hang = /timed out/.test(error.message);
      // the request that failed may have been an add: its outcome is unknown, but it has ended
      if (this.#draining) this.#addsEnded++;
      this.samples.push({
        at: Date.now(),
        store,
        op: "unknown",
        ms: hang ? HANG_SECONDS * 1000 : 0,
        status: 0,
        outcome: hang ? TIMEOUT : CONNECTION_ERROR,
      });
    });
    return { instance, done };
  }
}

/** `total` split into `parts` whole numbers that differ by at most one (at least 1 each). */
function spread(total: number, parts: number): number[] {
  const base = Math.floor(total / parts);
  return Array.from({ length: parts }, (_, i) => Math.max(1, base + (i < total % parts ? 1 : 0)));
}

/** The `Server-Timing` header among autocannon's (raw-cased) response headers. */
function timingHeader(headers: Record<string, string | string[]>): string | string[] | undefined {
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (name.toLowerCase() === "server-timing") return value;
  }
  return undefined;
}

/** What `GET /healthz` answers; the drain's idle requests are recognised by it. */
const HEALTHZ_BODY = JSON.stringify({ status: "ok" });

/** A random tag that no other run's word contains. */
export function newTag(): string {
  return "f" + crypto.randomUUID().replaceAll("-", "").slice(0, 12);
}
