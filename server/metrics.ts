/**
 * The gateway's Prometheus series (prom-client), scraped at `/metrics`:
 * store calls by store, operation and outcome, their latency, each store's
 * health and connection (and each node's, for stores with read replicas),
 * executed GraphQL operations by type, and the process's own series
 * (server/process_metrics.ts).
 *
 * Labels take a fixed, small set of values: store names, operation names,
 * error codes, node positions. Never a URL, id, word, search term, operation
 * name or client address. One scrape covers this process only.
 *
 * @module
 */
import { getOperationAST } from "graphql";
import type { Plugin } from "graphql-yoga";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { storeErrorCode } from "../resolvers/errors.ts";
import type { StoreCall } from "../stores/managed.ts";
import type { StoreRegistry } from "../stores/registry.ts";
import { registerProcessMetrics } from "./process_metrics.ts";
import { PeersSilent, WorkerScrapes } from "./metrics_workers.ts";

export { PeersSilent };
import { STRAY_ERROR_KINDS, type StrayErrorKind } from "./stray_errors.ts";

/** The `outcome` of a store call: `ok`, or the `extensions.code` its failure answers a client with. */
export function storeCallOutcome(error: unknown): string {
  if (error === undefined) return "ok";
  return storeErrorCode(error) ?? "INTERNAL_SERVER_ERROR";
}

/** What the metrics read of the stores at each scrape (a {@linkcode StoreRegistry}). */
export type StoreSource = Pick<StoreRegistry, "status" | "get" | "configured">;

/** Latency buckets of store calls and GraphQL operations, in seconds: 1 ms to the longest timeout. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The gateway's metrics: feed it store calls and GraphQL operations, scrape it for the text. */
export class GatewayMetrics {
  readonly #registry = new Registry();
  readonly #stopProcess: () => void;
  #stores: StoreSource | undefined;

  readonly #storeCalls = new Counter({
    name: "grand_tour_store_calls_total",
    help: "Store calls (pings included) by store, operation and outcome " +
      "(ok, or the GraphQL error code a failure answers with).",
    labelNames: ["store", "operation", "outcome"] as const,
    registers: [this.#registry],
  });
  readonly #storeLatency = new Histogram({
    name: "grand_tour_store_call_duration_seconds",
    help: "Time from a store call to its answer or failure, in seconds.",
    labelNames: ["store", "operation"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.#registry],
  });
  readonly #storeHealthy = new Gauge({
    name: "grand_tour_store_healthy",
    help: "1 when the configured store answered its ping during this scrape (as /readyz), else 0.",
    labelNames: ["store"] as const,
    aggregator: "min", // with several workers: healthy only if every worker's store answered
    registers: [this.#registry],
  });
  readonly #storeConnected = new Gauge({
    name: "grand_tour_store_connected",
    help: "1 while the store has an open connection, 0 while it is connecting.",
    labelNames: ["store"] as const,
    aggregator: "min",
    registers: [this.#registry],
  });
  readonly #nodeHealthy = new Gauge({
    name: "grand_tour_store_node_healthy",
    help: "Stores with read replicas: 1 when the node serves. node is its position in " +
      "/readyz's nodes (0 = primary, then the replicas in <STORE>_READ_URL order).",
    labelNames: ["store", "node", "role"] as const,
    aggregator: "min",
    registers: [this.#registry],
  });
  readonly #nodeLag = new Gauge({
    name: "grand_tour_store_node_lag_seconds",
    help: "Stores with read replicas: how far behind this gateway's writes the replica is.",
    labelNames: ["store", "node", "role"] as const,
    aggregator: "max",
    registers: [this.#registry],
  });
  readonly #operations = new Counter({
    name: "grand_tour_graphql_operations_total",
    help: "Executed GraphQL operations (past parsing and validation) by type and outcome " +
      "(ok, or error when the result has errors).",
    labelNames: ["type", "outcome"] as const,
    registers: [this.#registry],
  });
  readonly #operationLatency = new Histogram({
    name: "grand_tour_graphql_operation_duration_seconds",
    help: "Execution time of GraphQL operations, resolvers and store calls included, in seconds.",
    labelNames: ["type"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.#registry],
  });
  #subscriptions: (() => number) | undefined;
  readonly #subscriptionsOpen = new Gauge({
    name: "grand_tour_subscriptions_open",
    help: "Open wordEvents subscriptions of this process, over SSE and WebSocket.",
    registers: [this.#registry],
  });
  readonly #strayErrors = new Counter({
    name: "grand_tour_stray_errors_total",
    help: "Errors no caller could catch (a driver's unlistened error event, an unhandled " +
      "rejection), logged and survived (server/stray_errors.ts), by kind.",
    labelNames: ["kind"] as const,
    registers: [this.#registry],
  });

  readonly #workers: WorkerScrapes | undefined;

  /**
   * `workers`: the gateway workers of this process; with more than one, a
   * scrape covers them all, waiting for the others as long as the slowest
   * store's ping may take (`pingBoundMs`).
   */
  constructor(workers = 1, pingBoundMs = 0) {
    this.#stopProcess = registerProcessMetrics(this.#registry);
    if (workers > 1) {
      this.#workers = new WorkerScrapes(workers - 1, () => this.#collect(), pingBoundMs);
    }
    for (const kind of STRAY_ERROR_KINDS) this.#strayErrors.inc({ kind }, 0);
  }

  /** The scrape's `Content-Type`. */
  get contentType(): string {
    return this.#registry.contentType;
  }

  /** Counts and times one store call: the `observe` option of the store registry. */
  readonly observeStoreCall = (call: StoreCall): void => {
    const { store, operation } = call;
    this.#storeCalls.inc({ store, operation, outcome: storeCallOutcome(call.error) });
    this.#storeLatency.observe({ store, operation }, call.ms / 1000);
  };

  /** Reads how many subscriptions are open from `open` at every scrape (`EventBus.open`). */
  watchSubscriptions(open: () => number): void {
    this.#subscriptions = open;
  }

  /** Counts one error the gateway survived (`kind`: one of {@linkcode STRAY_ERROR_KINDS}). */
  readonly countStrayError = (kind: StrayErrorKind): void => {
    this.#strayErrors.inc({ kind });
  };

  /**
   * Reads health and connection state from `stores` at every scrape, and
   * starts each configured store's call counters at 0.
   */
  watchStores(stores: StoreSource): void {
    this.#stores = stores;
    for (const store of stores.configured()) {
      for (const operation of ["add", "get", "replace", "remove", "list", "ping"] as const) {
        this.#storeCalls.inc({ store, operation, outcome: "ok" }, 0);
      }
    }
  }

  /** A yoga plugin counting and timing every executed operation; goes first, so refusals count. */
  graphqlPlugin(): Plugin {
    return {
      onExecute: ({ args }) => {
        const type = getOperationAST(args.document, args.operationName)?.operation ?? "unknown";
        const t0 = performance.now();
        return {
          onExecuteDone: ({ result }) => {
            const failed = "errors" in result && !!result.errors?.length;
            this.#operations.inc({ type, outcome: failed ? "error" : "ok" });
            this.#operationLatency.observe({ type }, (performance.now() - t0) / 1000);
          },
        };
      },
    };
  }

  /**
   * The Prometheus text of every series, after pinging the stores (bounded
   * by their timeout); with several workers, of all of them
   * (server/metrics_workers.ts), or {@linkcode PeersSilent} when one did not answer.
   */
  async scrape(): Promise<string> {
    if (this.#workers) return await this.#workers.scrape();
    await this.#refresh();
    return await this.#registry.metrics();
  }

  /** Stops the event-loop delay sampler and the scrapes across workers. */
  close(): void {
    this.#stopProcess();
    this.#workers?.close();
  }

  async #refresh(): Promise<void> {
    if (this.#stores) await this.#readStores(this.#stores);
    if (this.#subscriptions) this.#subscriptionsOpen.set(this.#subscriptions());
  }

  async #collect() {
    await this.#refresh();
    return await this.#registry.getMetricsAsJSON();
  }

  async #readStores(stores: StoreSource): Promise<void> {
    const status = await stores.status();
    // Nodes come and go with reconnections: only those reported now are shown.
    this.#nodeHealthy.reset();
    this.#nodeLag.reset();
    for (const s of status) {
      if (!s.configured) continue;
      const store = s.store;
      this.#storeHealthy.set({ store }, s.healthy ? 1 : 0);
      this.#storeConnected.set({ store }, stores.get(store).connected ? 1 : 0);
      (s.nodes ?? []).forEach((n, i) => {
        const labels = { store, node: String(i), role: n.role };
        this.#nodeHealthy.set(labels, n.healthy ? 1 : 0);
        if (n.lagMs !== undefined) this.#nodeLag.set(labels, n.lagMs / 1000);
      });
    }
  }
}
