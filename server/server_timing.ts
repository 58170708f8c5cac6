/**
 * `Server-Timing` for store calls (opt-in, `SERVER_TIMING=true`): each
 * response to a request that reached a store carries one entry per store
 * call, `store;desc="POSTGRESQL";dur=3.21` (milliseconds), so a browser's
 * devtools, an APM agent or a load test can tell the database's share of a
 * response time from the gateway's own. Off by default: timings of the
 * backends are information an operator may not want every client to see.
 *
 * @module
 */
import type { Plugin } from "graphql-yoga";
import type { StoreTiming } from "../resolvers/mod.ts";
import type { StoreName } from "../stores/types.ts";

/** The store calls of one request and how long each took. */
export class StoreTimer implements StoreTiming {
  readonly entries: { store: StoreName; ms: number }[] = [];

  /** Runs `fn`, recording how long it took (whether it resolved or threw). */
  async measure<T>(store: StoreName, fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.entries.push({ store, ms: performance.now() - start });
    }
  }

  /** The header value: `store;desc="REDIS";dur=0.84, store;desc="MYSQL";dur=2.10`. */
  header(): string {
    return this.entries.map((e) => `store;desc="${e.store}";dur=${e.ms.toFixed(2)}`).join(", ");
  }
}

/** Gives every request's context a {@linkcode StoreTimer} and its response the header. */
export function useServerTiming(): Plugin<{ timing?: StoreTiming }> {
  const timers = new WeakMap<Request, StoreTimer>();
  return {
    onContextBuilding({ context, extendContext }) {
      const timer = new StoreTimer();
      timers.set(context.request, timer);
      extendContext({ timing: timer });
    },
    onResponse({ request, response }) {
      const timer = timers.get(request);
      if (timer?.entries.length) response.headers.set("server-timing", timer.header());
    },
  };
}
