/**
 * Entry point: configuration, stores, GraphQL and HTTP, wired together.
 * Start with `deno task start`.
 *
 * @module
 */
import { ConfigError, loadConfig, startupLogFormat } from "./server/config.ts";
import { createApp } from "./server/app.ts";
import { BodyTimeout } from "./server/body_timeout.ts";
import { exitOnSignal } from "./server/shutdown.ts";
import { createGraphQL } from "./server/graphql.ts";
import { EventBus } from "./server/events.ts";
import { WebSocketServer } from "./server/websocket.ts";
import { broadcastEventTarget, redisEventTarget } from "./server/event_targets.ts";
import { StoreRegistry } from "./stores/registry.ts";
import { secretsOfConfig } from "./stores/errors.ts";
import { gatewayLog, storeLog } from "./server/log.ts";
import { GatewayMetrics } from "./server/metrics.ts";
import { TrustedProxies } from "./server/client_address.ts";
import { traceStoreCall } from "./server/tracing.ts";
import { observeAll } from "./stores/managed.ts";
import { settlesWithin } from "./stores/deadline.ts";
import { keepServingThroughStrayErrors } from "./server/stray_errors.ts";

let config;
try {
  config = loadConfig();
} catch (e) {
  if (!(e instanceof ConfigError)) throw e;
  gatewayLog(startupLogFormat()).error(`configuration error: ${e.message}`);
  Deno.exit(1);
}

const secrets = [
  ...Object.values(config.stores).flatMap((s) => secretsOfConfig(s)),
  ...(config.rateLimitRedis ? secretsOfConfig(config.rateLimitRedis) : []),
  ...(config.events.redis ? secretsOfConfig(config.events.redis) : []),
  ...[config.security.writeToken, config.security.readToken, config.metrics.token]
    .filter((t) => t !== undefined),
];
const log = gatewayLog(config.logFormat, secrets);
const metrics = config.metrics.enabled ? new GatewayMetrics() : undefined;
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
}).start();
metrics?.watchStores(registry);
try {
  await registry.embeddedReady();
} catch {
  log.error(`the embedded SQLite store did not open (SQLITE_PATH=${config.sqlitePath})`);
  Deno.exit(1);
}
// Word events: Redis pub/sub across instances with EVENTS_URL, else this instance's isolates.
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

const server = Deno.serve({
  port: config.port,
  hostname: config.hostname,
  onListen: ({ port }) => {
    const configured = ["SQLITE", ...Object.keys(config.stores)].join(", ");
    log.info(
      `Listening on http://localhost:${port}/ (GraphQL at /graphql; stores: ${configured})`,
    );
  },
}, (request, info) => {
  // GraphQL over WebSocket (graphql-ws): upgraded before Hono, which must not touch the 101.
  if (WebSocketServer.wants(request) && new URL(request.url).pathname === "/graphql") {
    const addr = info.remoteAddr;
    const peer = "hostname" in addr ? addr.hostname : undefined;
    return sockets.upgrade(request, proxies.clientOf(peer, request.headers.get("x-forwarded-for")));
  }
  return app.fetch(request, info);
});

exitOnSignal({
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
}, log.info);
