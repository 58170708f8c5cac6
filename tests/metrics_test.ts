/**
 * The gateway's metrics (server/metrics.ts) in-process: store calls by
 * outcome with the codes clients see, health and replica nodes read at
 * scrape time, GraphQL operations by type (a refused write counts as an
 * error), the process series and the event-loop delay sampler. No database
 * server: the embedded SQLite store and fakes.
 */
import { GraphQLError } from "graphql";
import { assertEquals, assertOk } from "./support/assert.ts";
import { valueOf } from "./support/prometheus.ts";
import { storeCall } from "../resolvers/errors.ts";
import { parseSecurity } from "../server/config.ts";
import { createGraphQL } from "../server/graphql.ts";
import { GatewayMetrics, storeCallOutcome, type StoreSource } from "../server/metrics.ts";
import { sampleEventLoopDelay } from "../server/process_metrics.ts";
import { ConflictError, NotFoundError } from "../stores/edits.ts";
import { StoreNotConfiguredError, StoreUnavailableError } from "../stores/errors.ts";
import { newRecord } from "../stores/records.ts";
import type { StoreStatus } from "../stores/registry.ts";
import { testRegistry } from "./support/gateway.ts";

Deno.test("a store failure counts under the extensions.code storeCall answers the client with", async () => {
  const failures: Error[] = [
    new StoreNotConfiguredError("MONGODB"),
    new NotFoundError("0190a5c8-0000-7000-8000-000000000000"),
    new ConflictError(newRecord("w", "d")),
    new StoreUnavailableError("REDIS", "timed out"),
  ];
  for (const failure of failures) {
    let code: unknown;
    try {
      await storeCall(() => Promise.reject(failure));
    } catch (e) {
      code = (e as GraphQLError).extensions.code;
    }
    assertEquals(storeCallOutcome(failure), code, failure.name);
  }
  assertEquals(storeCallOutcome(undefined), "ok");
  // storeCall passes anything else on for yoga to mask
  assertEquals(storeCallOutcome(new TypeError("x")), "INTERNAL_SERVER_ERROR");
});

Deno.test("store calls are counted by store, operation and outcome, and timed", async () => {
  const metrics = new GatewayMetrics();
  try {
    metrics.observeStoreCall({ store: "REDIS", operation: "add", ms: 3 });
    metrics.observeStoreCall({ store: "REDIS", operation: "add", ms: 1500 });
    metrics.observeStoreCall({
      store: "REDIS",
      operation: "list",
      ms: 2000,
      error: new StoreUnavailableError("REDIS", "timed out"),
    });
    const text = await metrics.scrape();
    const calls = (operation: string, outcome: string) =>
      valueOf(text, "grand_tour_store_calls_total", { store: "REDIS", operation, outcome });
    assertEquals(calls("add", "ok"), 2);
    assertEquals(calls("list", "STORE_UNAVAILABLE"), 1);
    const latency = (suffix: string, labels: Record<string, string>) =>
      valueOf(text, `grand_tour_store_call_duration_seconds_${suffix}`, {
        store: "REDIS",
        operation: "add",
        ...labels,
      });
    assertEquals(latency("count", {}), 2);
    assertEquals(latency("bucket", { le: "0.005" }), 1);
    assertEquals(latency("bucket", { le: "2.5" }), 2);
    assertOk(Math.abs(latency("sum", {})! - 1.503) < 1e-9);
  } finally {
    metrics.close();
  }
});

Deno.test("each scrape reads store health, connection and every replica node, and drops nodes gone", async () => {
  let nodes: StoreStatus["nodes"] = [
    { role: "primary", healthy: true, reads: 4 },
    { role: "replica", healthy: true, lagMs: 250, reads: 9 },
    { role: "replica", healthy: false, message: "not answering", reads: 0 },
  ];
  const stores: StoreSource = {
    configured: () => ["SQLITE", "POSTGRESQL"],
    get: (name) => ({ connected: name === "SQLITE" }) as ReturnType<StoreSource["get"]>,
    status: () =>
      Promise.resolve([
        { store: "SQLITE", configured: true, healthy: true },
        { store: "POSTGRESQL", configured: true, healthy: false, nodes },
        { store: "REDIS", configured: false, healthy: false },
      ]),
  };
  const metrics = new GatewayMetrics();
  try {
    metrics.watchStores(stores);
    let text = await metrics.scrape();
    const gauge = (name: string, labels: Record<string, string>) =>
      valueOf(text, `grand_tour_store_${name}`, labels);
    assertEquals(gauge("healthy", { store: "SQLITE" }), 1);
    assertEquals(gauge("healthy", { store: "POSTGRESQL" }), 0);
    assertEquals(gauge("healthy", { store: "REDIS" }), undefined, "unconfigured: no series");
    assertEquals(gauge("connected", { store: "SQLITE" }), 1);
    assertEquals(gauge("connected", { store: "POSTGRESQL" }), 0);
    const node = (n: string) => ({ store: "POSTGRESQL", node: n });
    assertEquals(gauge("node_healthy", { ...node("0"), role: "primary" }), 1);
    assertEquals(gauge("node_healthy", { ...node("1"), role: "replica" }), 1);
    assertEquals(gauge("node_healthy", { ...node("2"), role: "replica" }), 0);
    assertEquals(gauge("node_lag_seconds", node("1")), 0.25);
    assertEquals(gauge("node_lag_seconds", node("0")), undefined);
    // every operation of a configured store starts at 0
    assertEquals(
      valueOf(text, "grand_tour_store_calls_total", {
        store: "POSTGRESQL",
        operation: "remove",
        outcome: "ok",
      }),
      0,
    );
    nodes = [{ role: "primary", healthy: true, reads: 5 }];
    text = await metrics.scrape();
    assertEquals(gauge("node_healthy", node("1")), undefined);
    assertEquals(gauge("node_healthy", node("0")), 1);
  } finally {
    metrics.close();
  }
});

Deno.test("GraphQL operations are counted and timed by type; a write refused for its token is an error", async () => {
  const metrics = new GatewayMetrics();
  const registry = testRegistry({}, { observe: metrics.observeStoreCall });
  metrics.watchStores(registry);
  const graphql = createGraphQL({
    registry,
    graphiql: false,
    security: { ...parseSecurity({ WRITE_TOKEN: "w".repeat(20) }), rateLimitPerMinute: 0 },
    metrics,
  });
  const post = async (query: string, token?: string) => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await graphql.fetch("http://test/graphql", {
      method: "POST",
      headers,
      body: JSON.stringify({ query }),
    });
    return await res.json();
  };
  try {
    await registry.embeddedReady();
    const add = `mutation { addWord(store: SQLITE, word: "w", definition: "d") { id } }`;
    assertOk((await post(add, "w".repeat(20))).data?.addWord?.id);
    assertEquals((await post(add)).errors?.[0]?.extensions?.code, "UNAUTHENTICATED");
    await post(`{ words(store: SQLITE) { id } }`);
    await post(`{ words(store: MONGODB) { id } }`); // STORE_NOT_CONFIGURED
    await post(`{ nope }`); // never executed: fails validation
    const text = await metrics.scrape();
    const ops = (type: string, outcome: string) =>
      valueOf(text, "grand_tour_graphql_operations_total", { type, outcome });
    assertEquals(
      [ops("mutation", "ok"), ops("mutation", "error"), ops("query", "ok"), ops("query", "error")],
      [1, 1, 1, 1],
    );
    const count = (type: string) =>
      valueOf(text, "grand_tour_graphql_operation_duration_seconds_count", { type });
    assertEquals([count("mutation"), count("query")], [2, 2]);
    const sqlite = (operation: string) =>
      valueOf(text, "grand_tour_store_calls_total", { store: "SQLITE", operation, outcome: "ok" });
    assertEquals([sqlite("add"), sqlite("list")], [1, 1], "the refused write reached no store");
  } finally {
    metrics.close();
    await registry.close();
  }
});

Deno.test("the process series report memory and CPU time", async () => {
  const metrics = new GatewayMetrics();
  try {
    let spin = 0;
    for (const t = performance.now(); performance.now() - t < 30;) spin++;
    const text = await metrics.scrape();
    assertOk(spin > 0);
    for (const name of ["process_resident_memory_bytes", "deno_heap_used_bytes"]) {
      assertOk(valueOf(text, name)! > 1_000_000, `${name} ${valueOf(text, name)}`);
    }
    assertOk(valueOf(text, "process_cpu_seconds_total")! > 0.01);
    const started = valueOf(text, "process_start_time_seconds")!;
    assertOk(Math.abs(started - Date.now() / 1000) < 600, `start time ${started}`);
  } finally {
    metrics.close();
  }
});

Deno.test("the event-loop delay sampler sees the loop held for 150 ms", async () => {
  const delays: number[] = [];
  const stop = sampleEventLoopDelay((ms) => delays.push(ms), 10);
  try {
    await new Promise((r) => setTimeout(r, 50));
    for (const t = performance.now(); performance.now() - t < 150;) {
      // hold the event loop
    }
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    stop();
  }
  const longest = Math.max(...delays);
  assertOk(longest > 100 && longest < 400, `longest delay ${longest} ms of ${delays.length}`);
});

Deno.test("stray errors the gateway survived are counted by kind, from 0", async () => {
  const metrics = new GatewayMetrics();
  try {
    const count = async (kind: string) =>
      valueOf(await metrics.scrape(), "grand_tour_stray_errors_total", { kind });
    assertEquals(await count("uncaught error"), 0);
    metrics.countStrayError("uncaught error");
    metrics.countStrayError("uncaught error");
    metrics.countStrayError("unhandled rejection");
    assertEquals(await count("uncaught error"), 2);
    assertEquals(await count("unhandled rejection"), 1);
  } finally {
    metrics.close();
  }
});

Deno.test("open subscriptions are read at each scrape", async () => {
  const metrics = new GatewayMetrics();
  try {
    let open = 3;
    metrics.watchSubscriptions(() => open);
    assertEquals(valueOf(await metrics.scrape(), "grand_tour_subscriptions_open", {}), 3);
    open = 0;
    assertEquals(valueOf(await metrics.scrape(), "grand_tour_subscriptions_open", {}), 0);
  } finally {
    metrics.close();
  }
});
