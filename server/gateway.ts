/**
 * One gateway: its stores, GraphQL, live events and HTTP listener, wired
 * together from a parsed configuration. `main.ts` starts one in its own
 * thread, or one per worker (server/workers.ts, `WORKERS`); this module does
 * not know which, beyond the options it is given.
 *
 * @module
 */
import type { Config } from "./config.ts";
import { createApp } from "./app.ts";
import { BodyTimeout } from "./body_timeout.ts";
import type { Stoppable } from "./shutdown.ts";
import { createGraphQL } from "./graphql.ts";
import { EventBus } from "./events.ts";
import { WebSocketServer } from "./websocket.ts";
import { broadcastEventTarget, redisEventTarget } from "./event_targets.ts";
import { StoreRegistry } from "../stores/registry.ts";
import { secretsOfConfig } from "../stores/errors.ts";
import { type GatewayLog, gatewayLog, storeLog } from "./log.ts";
import { GatewayMetrics } from "./metrics.ts";
import { TrustedProxies } from "./client_address.ts";
import { traceStoreCall } from "./tracing.ts";
import { observeAll } from "../stores/managed.ts";
import { settlesWithin } from "../stores/deadline.ts";
import { keepServingThroughStrayErrors } from "./stray_errors.ts";
import type { Budgets } from "./rate_limit.ts";

/** How a gateway shares its host with others (server/workers.ts); defaults: alone. */
export interface GatewayOptions {
  /** Listen with `SO_REUSEPORT`, beside the other workers on the same port. */
  reusePort?: boolean;
  /** Which worker this is (1-based) and of how many, for the log and the stores. */
  worker?: { index: number; of: number };
  /**
   * The rate limit's counters when they are not in this isolate (the parent
   * thread's, for workers). Ignored with `RATE_LIMIT_REDIS_URL`.
   */
  budgets?: () => Budgets;
}

/** A started gateway. */
export interface Gateway {
  /** The log, with every configured secret redacted. */
  log: GatewayLog;
  /** What a SIGTERM stops, in order (server/shutdown.ts). */
  stoppable: Stoppable;
}

/** Thrown when the embedded SQLite store does not open: the gateway cannot serve. */
export class EmbeddedStoreError extends Error {
  override name = "EmbeddedStoreError";
}

/** The texts the log must never show: store URLs, passwords and tokens. */
export function secretsOf(config: Config): string[] {
  return [
    ...Object.values(config.stores).flatMap((s) => secretsOfConfig(s)),
    ...(config.rateLimitRedis ? secretsOfConfig(config.rateLimitRedis) : []),
    ...(config.events.redis ? secretsOfConfig(config.events.redis) : []),
    ...[config.security.writeToken, config.security.readToken, config.metrics.token]
      .filter((t) => t !== undefined),
  ];
}

/**
 * Opens the stores, builds GraphQL and the HTTP app, and listens. Resolves
 * once the embedded store is open and the listener is bound; rejects with
 * {@linkcode EmbeddedStoreError} when SQLite does not open.
 */
export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const secrets = secretsOf(config);
  const log = gatewayLog(config.logFormat, secrets);
  // A scrape pings every store, each within its own budget (<STORE>_TIMEOUT_MS or REQUEST_TIMEOUT_MS).
  const pingBoundMs = Math.max(
    config.requestTimeoutMs,
    ...Object.values(config.stores).map((s) => s.requestTimeoutMs ?? 0),
  );
  const metrics = config.metrics.enabled
    ? new GatewayMetrics(options.worker?.of, pingBoundMs)
    : undefined;
  keepServingThroughStrayErrors((kind, what) => {
    log.error(`${kind} (kept serving): ${what}`);
    metrics?.countStrayError(kind);
  });
  const registry = new StoreRegistry({
    ...config,
    log: storeLog(secrets, config.logFormat),
    // Without OTEL_DENO no span is even started: the API's tracer would be a no-op anyway.
    observe: observeAll(
      metrics?.observeStoreCall,
      config.tracing.enabled ? traceStoreCall : undefined,
    ),
    workers: options.worker?.of ?? 1,
  }).start();
  metrics?.watchStores(registry);
  try {
    await registry.embeddedReady();
  } catch {
    await registry.close().catch(() => {});
    throw new EmbeddedStoreError(
      `the embedded SQLite store did not open (SQLITE_PATH=${config.sqlitePath})`,
    );
  }
  // Word events: Redis pub/sub across instances with EVENTS_URL, else this process's isolates.
  const transport = config.events.redis
    ? redisEventTarget(config.events.redis, log.warn)
    : broadcastEventTarget();
  // Subscribed before listening, so no event published after start-up is missed (bounded wait).
  if (!await settlesWithin(transport.ready, config.connectTimeoutMs)) {
    log.warn("events: the Redis of EVENTS_URL is not reachable yet; subscribing in the background");
  }
  const events = new EventBus(transport.target, config.events, () => transport.close());
  metrics?.watchSubscriptions(() => events.open);
  const graphql = createGraphQL({
    registry,
    events,
    graphiql: config.graphiql,
    security: config.security,
    secrets,
    serverTiming: config.serverTiming,
    metrics,
    logFormat: config.logFormat,
    rateLimitRedis: config.rateLimitRedis,
    budgets: options.budgets,
  });
  const sockets = new WebSocketServer(graphql, config.security);
  const bodies = new BodyTimeout({
    idleMs: config.security.bodyIdleTimeoutMs,
    totalMs: config.security.bodyTimeoutMs,
  });
  let stopping = false;
  const app = createApp({
    registry,
    graphql,
    graphiql: config.graphiql,
    security: config.security,
    bodyTimeout: bodies.middleware,
    draining: () => stopping,
    metrics: metrics && { metrics, token: config.metrics.token },
    tracing: config.tracing.enabled,
    keepAliveMs: config.events.pingMs,
  });

  // Who a WebSocket client is, as the app finds it for HTTP requests (TRUSTED_PROXIES).
  const proxies = new TrustedProxies(config.security.trustedProxies);
  const worker = options.worker ? ` (worker ${options.worker.index} of ${options.worker.of})` : "";
  const listening = Promise.withResolvers<void>();
  const server = Deno.serve({
    port: config.port,
    hostname: config.hostname,
    reusePort: options.reusePort,
    onListen: ({ port }) => {
      const configured = ["SQLITE", ...Object.keys(config.stores)].join(", ");
      log.info(
        `Listening on http://localhost:${port}/ (GraphQL at /graphql; stores: ${configured})${worker}`,
      );
      listening.resolve();
    },
  }, (request, info) => {
    // GraphQL over WebSocket (graphql-ws): upgraded before Hono, which must not touch the 101.
    if (WebSocketServer.wants(request) && new URL(request.url).pathname === "/graphql") {
      const addr = info.remoteAddr;
      const peer = "hostname" in addr ? addr.hostname : undefined;
      return sockets.upgrade(
        request,
        proxies.clientOf(peer, request.headers.get("x-forwarded-for")),
      );
    }
    return app.fetch(request, info);
  });
  await listening.promise;

  return {
    log,
    stoppable: {
      drainMs: config.shutdownDrainMs,
      drain: () => {
        stopping = true;
        // Open subscriptions end now (a last SHUTTING_DOWN event), so the listener can close.
        events.close();
        sockets.close();
      },
      releaseBodies: () => bodies.release(),
      closeServer: () => server.shutdown(),
      closeStores: () => registry.close(),
    },
  };
}
