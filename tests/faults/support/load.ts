/**
 * The fault suite's mixed load, driven by autocannon (pinned in deno.json):
 * one-connection autocannon instances spread over the stores, each sending
 * its store `addWord`, a first-page `words`, `updateWord` and `deleteWord`
 * of its own words (support/mix.ts: 4 : 4 : 3 : 1), so every store is read,
 * written and edited at once and every response is attributed to its store
 * and operation. Each word carries a random tag (a new one every 500 adds
 * of a connection) so it can be found again by search; every
 * acknowledged add is kept as an {@linkcode Ack}, every edit and deletion as
 * a {@linkcode Change} with how it ended.
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
 * Which request ended how: autocannon builds each request (`setupRequest`)
 * just before writing it, and a connection has one request in flight, so
 * the request set up last is the one a response answers. A request that
 * times out is not answered: autocannon reconnects and sets up the next
 * request, then reports the timeout (`reqError`); so a request replaced
 * without an answer is kept aside until its error (or, for a connection
 * closed without one, until the next replacement).
 *
 * Bounded: traffic goes to the gateway's 127.0.0.1 URL only, and every
 * instance stops after `maxSeconds` even if {@linkcode MixedLoad.stop} is
 * never called.
 *
 * @module
 */
import autocannonUntyped from "autocannon";
import { STORE_NAMES, type StoreName } from "../../../stores/types.ts";
import { splitNodes } from "../../../stores/settings.ts";
import { storeConfig } from "../../support/env.ts";
import { maxBudgetMs } from "./gateway.ts";
import { ConnectionMix, type Planned, WordNames } from "./mix.ts";
import {
  type Ack,
  type Change,
  classify,
  CONNECTION_ERROR,
  NO_ANSWER,
  type Op,
  type ReturnedWord,
  type Sample,
  serverTimingMs,
  TIMEOUT,
} from "./samples.ts";

/**
 * The suite's request rate over all stores on the single-node topology,
 * about a quarter of what the gateway and the seven databases serve together
 * here at full CPU (~1,000 req/s). It also keeps FerretDB, which sorts a
 * whole collection in memory for every page (~27 µs per stored word), well
 * inside its request timeout as the scenario's words pile up.
 */
export const SINGLE_NODE_RATE = 240;

/**
 * The rate on the cluster topology (three Cassandra, Elasticsearch and
 * RabbitMQ nodes, a replica each for PostgreSQL, MariaDB and Redis), where
 * every write of those stores is made on three JVMs or Erlang VMs sharing
 * the same two cores. The control scenario there (2026-11-29, this machine,
 * cluster just emptied): at 240 and at 120 req/s the machine was 98% busy,
 * the load got only ~95 req/s through (every connection waits for its
 * answer) and healthy stores' p99 was 1.4–2.7 s (Elasticsearch's), within
 * reach of the 2 s budget per call; at 90 req/s 78–82% busy, all of
 * it served, worst p99 117 ms; at 60, 75–77%, worst 234 ms. A saturated
 * machine makes every fault a timeout of some healthy store: the CI run of
 * stop 23 failed three scenarios that way (FerretDB edits at 2.2–2.4 s while
 * a killed Elasticsearch node booted). Below the knee, with headroom for
 * the JVM or database a scenario restarts.
 */
export const CLUSTER_RATE = 80;

/** Whether the suite runs on the cluster topology: some store's URL lists several nodes. */
const ON_CLUSTER = STORE_NAMES.some((s) => splitNodes(storeConfig(s)?.url ?? "").length > 1);

/** The default rate of {@linkcode MixedLoad}: {@linkcode CLUSTER_RATE} on the cluster topology. */
export const LOAD_RATE = ON_CLUSTER ? CLUSTER_RATE : SINGLE_NODE_RATE;

/**
 * Seconds without a response after which autocannon gives up on a request (a
 * hang): 3 s past the largest budget per call of the gateway under test (5 s
 * with the cluster topology's `ELASTICSEARCH_TIMEOUT_MS`), and at least 5 s.
 */
export const HANG_SECONDS = Math.max(5, Math.ceil(maxBudgetMs() / 1000) + 3);

/** The definition of every word the load adds. */
const DEFINITION = "written under the fault suite's load";

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

/** A running mixed load; read `samples`, `acks` and `changes` at any time. */
export class MixedLoad {
  readonly samples: Sample[] = [];
  readonly acks: Ack[] = [];
  readonly changes: Change[] = [];
  readonly startedAt = Date.now();
  #running: { instance: Instance; done: Promise<void>; abandon: () => void }[] = [];
  /** Connections whose phase has not come yet. */
  #pending = new Set<ReturnType<typeof setTimeout>>();
  #stopped = false;
  /** Once set, connections send only `/healthz` (ignored) so that in-flight writes can finish. */
  #draining = false;
  /** Adds, edits and deletions sent and not ended yet. */
  #writing = 0;
  #unanswered = 0;

  constructor(readonly options: LoadOptions) {
    const per = Math.max(1, Math.floor(options.connections / options.stores.length));
    const total = per * options.stores.length;
    const rates = spread(options.rate ?? LOAD_RATE, total);
    // Connection i starts at i/total of the second; stores interleave, so each gets every phase.
    for (let i = 0; i < total; i++) {
      const store = options.stores[i % options.stores.length];
      const timer = setTimeout(() => {
        this.#pending.delete(timer);
        if (!this.#stopped) this.#running.push(this.#start(store, rates[i], `c${i}`));
      }, Math.floor(i * 1000 / total));
      this.#pending.add(timer);
    }
  }

  /** Writes still unanswered when the load stopped (their outcome is unknown); 0 after a clean {@linkcode stop}. */
  get unansweredWrites(): number {
    return this.#unanswered;
  }

  /**
   * Stops sending reads and writes, waits until every write already sent has
   * ended (at most {@linkcode HANG_SECONDS} + 1 s), then stops every
   * instance; a write still unanswered then is recorded with the outcome
   * {@linkcode NO_ANSWER}.
   */
  async stop(): Promise<void> {
    this.#draining = true;
    const deadline = Date.now() + (HANG_SECONDS + 1) * 1000;
    while (this.#writing > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    this.#stopped = true;
    for (const timer of this.#pending) clearTimeout(timer);
    this.#pending.clear();
    for (const r of this.#running) r.instance.stop();
    await Promise.all(this.#running.map((r) => r.done));
    this.#unanswered = this.#writing;
    for (const r of this.#running) r.abandon();
  }

  /** One connection to `store`, named `name`, sending `rate` requests per second of the mix. */
  #start(
    store: StoreName,
    rate: number,
    name: string,
  ): { instance: Instance; done: Promise<void>; abandon: () => void } {
    const mix = new ConnectionMix(store, name, new WordNames(), DEFINITION, this);
    /** The request on the wire; `idle` while draining. */
    let sent: Planned | "idle" | undefined;
    /** A request replaced on the wire without an answer, until its `reqError`. */
    let unanswered: Planned | "idle" | undefined;
    const end = (request: Planned | "idle" | undefined, outcome: string, word?: ReturnedWord) => {
      if (request === undefined || request === "idle") return;
      if (request.op !== "list") this.#writing--;
      mix.end(request, outcome, word);
    };
    // autocannon records a response's body, then emits its latency, synchronously in that order.
    let last: { op: Op; status: number; outcome: string; storeMs?: number } | "ignore" | undefined;
    const request: RequestSpec = {
      method: "POST",
      path: "/graphql",
      headers: { "content-type": "application/json" },
      setupRequest: (req) => {
        // a connection closed without an error event: the request before the last one is lost
        end(unanswered, CONNECTION_ERROR);
        unanswered = sent;
        if (this.#draining) {
          sent = "idle";
          return { ...req, method: "GET", path: "/healthz", body: undefined };
        }
        const next = mix.next();
        if (next.op !== "list") this.#writing++;
        sent = next;
        return { ...req, method: "POST", path: "/graphql", body: next.body };
      },
      onResponse: (status, body, _context, responseHeaders) => {
        const answered = sent;
        sent = undefined;
        if (answered === "idle") {
          last = "ignore";
          return;
        }
        if (answered === undefined) return; // recorded as UNATTRIBUTED
        const { outcome, word } = classify(status, body);
        end(answered, outcome, word);
        last = {
          op: answered.op,
          status,
          outcome,
          storeMs: serverTimingMs(timingHeader(responseHeaders)),
        };
      },
    };
    let finish!: () => void;
    const done = new Promise<void>((r) => finish = r);
    const instance = autocannon({
      url: this.options.url,
      connections: 1,
      connectionRate: rate,
      duration: this.options.maxSeconds,
      timeout: HANG_SECONDS,
      requests: [request],
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
      const outcome = hang ? TIMEOUT : CONNECTION_ERROR;
      // the failed request: the one replaced by the reconnection's, else the one on the wire
      const failed = unanswered ?? sent;
      if (failed === unanswered) unanswered = undefined;
      else sent = undefined;
      end(failed, outcome);
      if (failed === "idle") return;
      this.samples.push({
        at: Date.now(),
        store,
        op: failed?.op ?? "unknown",
        ms: hang ? HANG_SECONDS * 1000 : 0,
        status: 0,
        outcome,
      });
    });
    const abandon = () => {
      end(unanswered, NO_ANSWER);
      end(sent, NO_ANSWER);
      unanswered = sent = undefined;
    };
    return { instance, done, abandon };
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
