/**
 * One wrapper that gives every store the same outage behaviour: it connects
 * in the background with capped exponential backoff (cockatiel), answers
 * {@linkcode StoreUnavailableError} at once while disconnected and within the
 * request timeout while connected, and reconnects on its own when a failed
 * call is followed by a failed ping. Store modules stay free of all this.
 *
 * @module
 */
import {
  ExponentialBackoff,
  handleAll,
  retry,
  TaskCancelledError,
  timeout,
  type TimeoutPolicy,
  TimeoutStrategy,
} from "cockatiel";
import { redact, StoreUnavailableError } from "./errors.ts";
import type { NodeStatus } from "./replicas.ts";
import type { ListQuery, NewWord, StoreName, WordRecord, WordStore } from "./types.ts";

/** Health of one store as reported to `/readyz` and the `stores` query. */
export interface StoreHealth {
  healthy: boolean;
  latencyMs?: number;
  message?: string;
  /** Each node the store reads from, where it has more than one (`WordStore.nodes`). */
  nodes?: NodeStatus[];
}

/** How a managed store connects and how long it waits. */
export interface ManagedStoreOptions {
  name: StoreName;
  /** Connects and prepares the database (a store module's `open`). */
  open: () => Promise<WordStore>;
  /** Milliseconds a call or ping may take before it counts as failed. */
  requestTimeoutMs: number;
  /** Milliseconds a connection attempt may take. */
  connectTimeoutMs: number;
  /** Upper bound of the reconnect backoff. */
  reconnectMaxMs: number;
  /** Strings never to be logged (passwords, URLs). */
  secrets: readonly string[];
  /** Where connection events go, with how much they matter; defaults to console.error. */
  log?: StoreLog;
  /** Told of every call and ping once it settled (the gateway's metrics); must not throw. */
  observe?: StoreCallObserver;
}

/** A store's log: one line, and `info` for good news, `warn` for the rest. */
export type StoreLog = (line: string, level: "info" | "warn") => void;

/** The operations a managed store passes to its database. */
export type StoreOperation = "add" | "get" | "replace" | "remove" | "list" | "ping";

/** One settled call: what, on which store, how long it took, and its error when it failed. */
export interface StoreCall {
  store: StoreName;
  operation: StoreOperation;
  /** Milliseconds from the call to its answer, including a refusal while disconnected. */
  ms: number;
  /** What the call threw (a {@linkcode StoreUnavailableError} from a managed store); absent on success. */
  error?: unknown;
}

/** Receives every {@linkcode StoreCall}; knows nothing of the store. */
export type StoreCallObserver = (call: StoreCall) => void;

/** One observer telling each of `observers` in turn (metrics, traces); undefined when none is given. */
export function observeAll(
  ...observers: (StoreCallObserver | undefined)[]
): StoreCallObserver | undefined {
  const given = observers.filter((o): o is StoreCallObserver => o !== undefined);
  if (given.length <= 1) return given[0];
  return (call) => {
    for (const observe of given) observe(call);
  };
}

/** Time on top of the connect timeout that creating the schema may take on first use. */
const OPEN_GRACE_MS = 15_000;
/** Failed reconnection attempts logged one by one; after them, one line per {@linkcode LOG_EVERY_ATTEMPTS}. */
const LOGGED_ATTEMPTS = 3;
const LOG_EVERY_ATTEMPTS = 30;

type State =
  | { kind: "connecting"; since: number; attempts: number }
  | { kind: "ready"; store: WordStore }
  | { kind: "closed" };

/** A store behind timeouts and background reconnection. */
export class ManagedStore {
  readonly name: StoreName;
  #opts: ManagedStoreOptions;
  #state: State = { kind: "connecting", since: Date.now(), attempts: 0 };
  #abort = new AbortController();
  #checking: Promise<void> | undefined;
  #connecting: Promise<void> | undefined;
  /** Built once: a timeout per call, without aborting a signal when the call returns in time. */
  #callTimeout: TimeoutPolicy;

  constructor(opts: ManagedStoreOptions) {
    this.name = opts.name;
    this.#opts = opts;
    this.#callTimeout = timeout(opts.requestTimeoutMs, {
      strategy: TimeoutStrategy.Aggressive,
      abortOnReturn: false,
    });
  }

  /** Starts connecting in the background; returns at once. */
  start(): void {
    this.#connect();
  }

  /** Resolves once connected (or rejects after `ms`); for tests and start-up logs. */
  async whenReady(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.#state.kind !== "ready") {
      if (this.#state.kind === "closed" || Date.now() > deadline) {
        throw new StoreUnavailableError(this.name, "not connected");
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Stores a record; see {@linkcode WordStore.add}. */
  add(record: NewWord): Promise<void> {
    return this.#call("add", (s) => s.add(record));
  }

  /** Reads one record; see {@linkcode WordStore.get}. */
  get(id: string): Promise<WordRecord | undefined> {
    return this.#call("get", (s) => s.get(id));
  }

  /** Compare-and-set; see {@linkcode WordStore.replace}. */
  replace(record: NewWord, revision: string): Promise<boolean> {
    return this.#call("replace", (s) => s.replace(record, revision));
  }

  /** Compare-and-delete; see {@linkcode WordStore.remove}. */
  remove(id: string, revision: string): Promise<boolean> {
    return this.#call("remove", (s) => s.remove(id, revision));
  }

  /** Lists records; see {@linkcode WordStore.list}. */
  list(query: ListQuery): Promise<WordRecord[]> {
    return this.#call("list", (s) => s.list(query));
  }

  /** Pings the database and reports whether it serves, with the round-trip time. */
  async health(): Promise<StoreHealth> {
    const state = this.#state;
    if (state.kind === "closed") return { healthy: false, message: "closed" };
    if (state.kind === "connecting") {
      return { healthy: false, message: `connecting (attempt ${state.attempts + 1})` };
    }
    const t0 = performance.now();
    let health: StoreHealth;
    try {
      await this.#ping(state.store);
      health = { healthy: true, latencyMs: round(performance.now() - t0) };
    } catch (e) {
      this.#suspect(state.store);
      const message = (e as StoreUnavailableError).reason;
      health = { healthy: false, latencyMs: round(performance.now() - t0), message };
    }
    const nodes = state.store.nodes?.() ?? [];
    return nodes.length ? { ...health, nodes } : health;
  }

  /** Stops reconnecting and closes the connection; never rejects. */
  async close(): Promise<void> {
    const state = this.#state;
    this.#state = { kind: "closed" };
    this.#abort.abort();
    if (state.kind === "ready") await closeQuietly(state.store, this.#opts.requestTimeoutMs);
  }

  /** Whether a connection is open (it may still fail its next ping). */
  get connected(): boolean {
    return this.#state.kind === "ready";
  }

  #call<T>(operation: StoreOperation, fn: (s: WordStore) => Promise<T>): Promise<T> {
    return this.#observed(operation, async () => {
      const state = this.#state;
      if (state.kind === "connecting") throw new StoreUnavailableError(this.name, "not connected");
      if (state.kind === "closed") throw new StoreUnavailableError(this.name, "shutting down");
      try {
        return await this.#withTimeout(() => fn(state.store));
      } catch (e) {
        this.#log(`call failed: ${this.#redact(e)}`);
        this.#suspect(state.store);
        throw new StoreUnavailableError(this.name, reason(e));
      }
    });
  }

  /** A bounded ping, observed like a call; rejects with {@linkcode StoreUnavailableError}. */
  #ping(store: WordStore): Promise<void> {
    return this.#observed("ping", async () => {
      try {
        await this.#withTimeout(() => store.ping());
      } catch (e) {
        throw new StoreUnavailableError(this.name, reason(e));
      }
    });
  }

  /** Runs `fn` and tells the observer, if any, how it went. */
  async #observed<T>(operation: StoreOperation, fn: () => Promise<T>): Promise<T> {
    const observe = this.#opts.observe;
    if (!observe) return fn();
    const t0 = performance.now();
    try {
      const result = await fn();
      observe({ store: this.name, operation, ms: performance.now() - t0 });
      return result;
    } catch (e) {
      observe({ store: this.name, operation, ms: performance.now() - t0, error: e });
      throw e;
    }
  }

  #withTimeout<T>(fn: () => Promise<T>): Promise<T> {
    return this.#callTimeout.execute(fn);
  }

  /** After a failed call: ping once; if that fails too, drop the connection and reconnect. */
  #suspect(store: WordStore): void {
    if (this.#checking) return;
    this.#checking = (async () => {
      try {
        await this.#ping(store);
      } catch {
        const state = this.#state;
        if (state.kind === "ready" && state.store === store) {
          this.#log("lost the database; reconnecting in the background");
          this.#state = { kind: "connecting", since: Date.now(), attempts: 0 };
          void closeQuietly(store, this.#opts.requestTimeoutMs);
          this.#connect();
        }
      } finally {
        this.#checking = undefined;
      }
    })();
  }

  #connect(): void {
    if (this.#connecting) return;
    const policy = retry(handleAll, {
      maxAttempts: Number.POSITIVE_INFINITY,
      backoff: new ExponentialBackoff({ initialDelay: 200, maxDelay: this.#opts.reconnectMaxMs }),
    });
    policy.onRetry(({ delay, ...rest }) => {
      const attempt = this.#state.kind === "connecting" ? ++this.#state.attempts : 0;
      // The first failures, then about one line a minute at the default cap, not one per attempt.
      if (attempt > LOGGED_ATTEMPTS && attempt % LOG_EVERY_ATTEMPTS !== 0) return;
      const err = "error" in rest ? rest.error : undefined;
      this.#log(
        `cannot connect (${this.#redact(err)}); attempt ${attempt}, next in ${
          Math.round(delay)
        } ms`,
      );
    });
    this.#connecting = policy.execute(async ({ signal }) => {
      if (signal.aborted) throw new TaskCancelledError();
      const store = await this.#open();
      if (this.#state.kind === "closed") {
        await closeQuietly(store, this.#opts.requestTimeoutMs);
        return;
      }
      this.#state = { kind: "ready", store };
      this.#log("connected", "info");
    }, this.#abort.signal).catch(() => {
      // only cancellation ends the loop
    }).finally(() => {
      this.#connecting = undefined;
    });
  }

  /** One connection attempt, bounded; a late success after the bound is closed, not leaked. */
  async #open(): Promise<WordStore> {
    const opening = this.#opts.open();
    try {
      return await timeout(this.#opts.connectTimeoutMs + OPEN_GRACE_MS, TimeoutStrategy.Aggressive)
        .execute(() => opening);
    } catch (e) {
      opening.then((s) => closeQuietly(s, this.#opts.requestTimeoutMs), () => {});
      throw e;
    }
  }

  #redact(e: unknown): string {
    const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return redact(text, this.#opts.secrets).slice(0, 300);
  }

  #log(line: string, level: "info" | "warn" = "warn"): void {
    const text = `[store ${this.name}] ${line}`;
    if (this.#opts.log) this.#opts.log(text, level);
    else console.error(text);
  }
}

/** A fixed, secret-free reason for a client-facing message. */
function reason(e: unknown): string {
  return e instanceof TaskCancelledError ? "timed out" : "database error";
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

async function closeQuietly(store: WordStore, ms: number): Promise<void> {
  try {
    await timeout(ms, TimeoutStrategy.Aggressive).execute(() => store.close());
  } catch {
    // closing is best effort
  }
}
