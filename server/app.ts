/**
 * HTTP routing with Hono: `/graphql` to graphql-yoga, `/healthz` and
 * `/readyz` probes, and the static frontend from `static/`.
 *
 * @module
 */
import { Hono } from "hono";
import { serveStatic } from "hono/deno";
import type { StoreRegistry } from "../stores/registry.ts";

/** The pieces the app routes to. */
export interface AppOptions {
  registry: StoreRegistry;
  graphql: { fetch: (request: Request) => Response | Promise<Response> };
}

const STATIC_ROOT = new URL("../static/", import.meta.url).pathname;

/** Builds the Hono app. */
export function createApp({ registry, graphql }: AppOptions): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    const stores = await registry.status();
    const ready = stores.every((s) => !s.configured || s.healthy);
    return c.json({ ready, stores }, ready ? 200 : 503);
  });
  app.all("/graphql", (c) => graphql.fetch(c.req.raw));
  app.use("/*", serveStatic({ root: relativeToCwd(STATIC_ROOT) }));
  return app;
}

/** Hono's Deno static handler takes a root relative to the working directory. */
function relativeToCwd(absolute: string): string {
  const cwd = Deno.cwd().replace(/\/?$/, "/");
  if (absolute.startsWith(cwd)) return "./" + absolute.slice(cwd.length);
  return absolute;
}
