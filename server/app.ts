/**
 * HTTP routing with Hono: `/graphql` to graphql-yoga, `/healthz` and
 * `/readyz` probes, `/metrics` for Prometheus, GraphiQL's files and the
 * static frontend from `static/`. Every response gets the security headers; `/graphql` gets the
 * body deadlines, the body limit and CORS.
 *
 * @module
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { serveStatic } from "hono/deno";
import type { StoreRegistry } from "../stores/registry.ts";
import { bearerCheck } from "./auth.ts";
import { limitBody } from "./body_limit.ts";
import type { SecurityConfig } from "./config.ts";
import { TrustedProxies } from "./client_address.ts";
import { corsFor } from "./cors.ts";
import { withGraphQLErrorBody } from "./error_response.ts";
import { GRAPHIQL_ASSETS, graphiqlAssets } from "./graphiql.ts";
import { securityHeaders, withGraphiQLPolicy } from "./headers.ts";
import { withKeepAlive } from "./sse_keepalive.ts";
import { type GatewayMetrics, PeersSilent } from "./metrics.ts";
import type { ClientContext } from "./rate_limit.ts";
import { requestSpans } from "./tracing.ts";

/** The pieces the app routes to. */
export interface AppOptions {
  registry: StoreRegistry;
  graphql: { fetch: (request: Request, context: ClientContext) => Response | Promise<Response> };
  /** Serve GraphiQL's files. */
  graphiql: boolean;
  security: Pick<SecurityConfig, "maxBodyBytes" | "corsOrigins" | "trustedProxies">;
  /** The request-body deadlines of `/graphql` (`BodyTimeout.middleware`). */
  bodyTimeout: MiddlewareHandler<Env>;
  /** True once the gateway is shutting down: every response then asks the client to close. */
  draining?: () => boolean;
  /** Serve `/metrics` (absent: 404), with the bearer token a scrape needs, if any. */
  metrics?: { metrics: GatewayMetrics; token?: string };
  /** Milliseconds between keep-alive comments on subscription streams (`SUBSCRIPTION_PING_MS`). */
  keepAliveMs?: number;
  /** Run each request in a server span of the gateway's own (`requestSpans`): Deno traces. */
  tracing?: boolean;
}

/** What `Deno.serve` passes next to the request (absent when the app is called directly). */
type Env = { Bindings: Partial<Deno.ServeHandlerInfo> | undefined };

const STATIC_ROOT = new URL("../static/", import.meta.url).pathname;

/** Builds the Hono app. */
export function createApp(
  {
    registry,
    graphql,
    graphiql,
    security,
    bodyTimeout,
    draining,
    metrics,
    tracing,
    keepAliveMs,
  }: AppOptions,
): Hono<Env> {
  const app = new Hono<Env>();
  const proxies = new TrustedProxies(security.trustedProxies);
  // First, so the span covers every other middleware and its status is the final one.
  if (tracing) app.use("*", requestSpans());
  if (draining) {
    app.use("*", async (c, next) => {
      await next();
      // Keep-alive clients learn to reconnect elsewhere before the listener goes away.
      if (draining()) c.header("Connection", "close");
    });
  }
  app.use("*", securityHeaders());
  // Before the body limit, which reads a chunked body whole: that read is timed too.
  app.use("/graphql", bodyTimeout);
  app.use("*", limitBody(security.maxBodyBytes));
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    const stores = await registry.status();
    // A draining gateway is not ready: load balancers stop sending before the listener closes.
    const ready = !draining?.() && stores.every((s) => !s.configured || s.healthy);
    return c.json({ ready, stores }, ready ? 200 : 503);
  });
  if (metrics) app.get("/metrics", metricsHandler(metrics.metrics, metrics.token));
  if (graphiql) app.route(GRAPHIQL_ASSETS, graphiqlAssets());
  app.use("/graphql", corsFor(security.corsOrigins));
  app.all("/graphql", async (c) => {
    const client = proxies.clientOf(peerAddress(c), c.req.header("x-forwarded-for") ?? null);
    const response = await graphql.fetch(c.req.raw, { clientAddress: client });
    const streamed = keepAliveMs ? withKeepAlive(response, keepAliveMs) : response;
    return withGraphiQLPolicy(withGraphQLErrorBody(streamed));
  });
  app.use("/*", serveStatic({ root: relativeToCwd(STATIC_ROOT) }));
  return app;
}

/** The Prometheus scrape, refused with 401 without the right bearer token when one is set. */
function metricsHandler(metrics: GatewayMetrics, token?: string) {
  const authorized = token ? bearerCheck(token) : () => true;
  return async (c: Context<Env>) => {
    if (!authorized(c.req.raw)) {
      c.header("WWW-Authenticate", 'Bearer realm="grand-tour-metrics"');
      return c.text("/metrics needs the bearer token METRICS_TOKEN\n", 401);
    }
    c.header("Cache-Control", "no-store");
    let text: string;
    try {
      text = await metrics.scrape();
    } catch (e) {
      if (!(e instanceof PeersSilent)) throw e;
      return c.text(`/metrics: ${e.message}\n`, 503);
    }
    c.header("Content-Type", metrics.contentType);
    return c.body(text);
  };
}

/** The TCP peer's address: the client, or the last proxy in front of it. */
function peerAddress(c: Context<Env>): string | undefined {
  const addr = c.env?.remoteAddr;
  return addr && "hostname" in addr ? addr.hostname : undefined;
}

/** Hono's Deno static handler takes a root relative to the working directory. */
function relativeToCwd(absolute: string): string {
  const cwd = Deno.cwd().replace(/\/?$/, "/");
  if (absolute.startsWith(cwd)) return "./" + absolute.slice(cwd.length);
  return absolute;
}
