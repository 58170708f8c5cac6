/**
 * Several gateways in one process, one per core (`WORKERS`): each worker
 * thread runs a whole gateway (server/worker.ts) and listens on the same port
 * with `SO_REUSEPORT`, so the kernel spreads connections among them, as
 * `deno serve --parallel` does. This thread only supervises, and keeps what
 * must be one for the whole process:
 *
 * - **Signals.** The first SIGTERM or SIGINT asks every worker to stop; each
 *   drains (`/readyz` 503, `Connection: close`) and closes as a lone gateway
 *   does (server/shutdown.ts). The process exits once all have, with the
 *   highest of their codes, or with 1 when one has not within the bound.
 * - **The rate limit.** Without `RATE_LIMIT_REDIS_URL` the counters live
 *   here ({@linkcode MemoryBudgets}) and every worker spends from them by
 *   message, so a client's budget is the same whichever worker it reaches.
 *
 * What the workers share without this thread: SQLite's file (and RabbitMQ's
 * view file), under WAL and a busy timeout; live events, on a
 * `BroadcastChannel`, which reaches every worker (server/event_targets.ts);
 * read-your-writes, whose routers share write positions (stores/replicas.ts).
 *
 * A worker that dies (an error its own stray-error handler could not keep)
 * ends the process with code 1: the service manager restarts it whole.
 *
 * @module
 */
import type { Config } from "./config.ts";
import type { GatewayLog } from "./log.ts";
import { MemoryBudgets, type Spent } from "./rate_limit.ts";
import { STEP_LIMITS_MS } from "./shutdown.ts";
import { settlesWithin } from "../stores/deadline.ts";

/** What the supervisor tells a worker. */
export type ToWorker =
  | { kind: "start"; config: Config; index: number; of: number }
  | { kind: "stop"; signal: Deno.Signal }
  | { kind: "spent"; id: number; spent: Spent };

/** What a worker tells the supervisor. */
export type FromWorker =
  | { kind: "listening" }
  | { kind: "failed"; message: string }
  | { kind: "spend"; id: number; key: string; writes: number }
  | { kind: "stopped"; code: number };

/** Margin over a worker's own shutdown bound before the supervisor exits anyway. */
const STOP_MARGIN_MS = 1_000;

/**
 * Starts `config.workers` gateways and supervises them until a signal; never
 * returns (the process exits). Resolves once every worker listens.
 */
export async function runWorkers(config: Config, log: GatewayLog): Promise<void> {
  const limit = config.security.rateLimitPerMinute;
  const budgets = limit > 0 && !config.rateLimitRedis ? new MemoryBudgets(limit) : undefined;
  const stopped: Promise<number>[] = [];
  const listening: Promise<void>[] = [];
  const workers: Worker[] = [];
  for (let index = 1; index <= config.workers; index++) {
    const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    const listen = Promise.withResolvers<void>();
    const stop = Promise.withResolvers<number>();
    worker.onmessage = (e: MessageEvent<FromWorker>) => {
      const m = e.data;
      if (m.kind === "listening") listen.resolve();
      else if (m.kind === "failed") {
        log.error(`worker ${index} did not start: ${m.message}`);
        Deno.exit(1);
      } else if (m.kind === "spend") {
        const spent = budgets?.spend(m.key, m.writes) ?? { accepted: true };
        worker.postMessage({ kind: "spent", id: m.id, spent } satisfies ToWorker);
      } else if (m.kind === "stopped") stop.resolve(m.code);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      log.error(`worker ${index} stopped: ${e.message}; exiting`);
      Deno.exit(1);
    };
    worker.postMessage({ kind: "start", config, index, of: config.workers } satisfies ToWorker);
    workers.push(worker);
    listening.push(listen.promise);
    stopped.push(stop.promise);
  }
  await Promise.all(listening);
  let started = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, async () => {
      if (started) return;
      started = true;
      for (const w of workers) w.postMessage({ kind: "stop", signal } satisfies ToWorker);
      const boundMs = config.shutdownDrainMs +
        Object.values(STEP_LIMITS_MS).reduce((a, b) => a + b, 0) + STOP_MARGIN_MS;
      const all = Promise.all(stopped);
      const inTime = await settlesWithin(all, boundMs);
      budgets?.close();
      Deno.exit(inTime ? Math.max(...await all) : 1);
    });
  }
}
