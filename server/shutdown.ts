/**
 * Stopping on SIGTERM or SIGINT within a bound, whatever the clients do:
 * drain, answer the request bodies still arriving, close the listener, close
 * the stores, exit.
 *
 * Every step after the drain has a time limit, because Deno's graceful
 * `server.shutdown()` waits for every connection, and some are held by the
 * client alone: once a request is answered, Deno 2.9 waits without a
 * deadline for the rest of a body that nothing is reading any more, and for
 * a client to read its response. When a limit is spent the process exits
 * anyway, which closes those sockets.
 *
 * @module
 */
import { settlesWithin } from "../stores/deadline.ts";

/** What the gateway stops, in this order. */
export interface Stoppable {
  /** Milliseconds of serving with `Connection: close` first (`SHUTDOWN_DRAIN_MS`). */
  drainMs: number;
  /** Turns draining on: `Connection: close` on every response, `/readyz` 503. */
  drain(): void;
  /** Answers the request bodies still arriving; resolves once those answers are written. */
  releaseBodies(): Promise<void>;
  /** Closes the listener and finishes in-flight requests (`Deno.HttpServer.shutdown`). */
  closeServer(): Promise<void>;
  /** Closes every store. */
  closeStores(): Promise<void>;
}

/** Time limits of the steps after the drain, in milliseconds: 4.5 s together. */
export const STEP_LIMITS_MS = { bodies: 500, server: 2500, stores: 1500 } as const;

/**
 * Runs {@linkcode shutdown} on the first SIGINT or SIGTERM (later ones are
 * ignored) and exits with its code.
 */
export function exitOnSignal(target: Stoppable, log: (line: string) => void = console.log): void {
  let started = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, async () => {
      if (started) return;
      started = true;
      Deno.exit(await shutdown(target, signal, log));
    });
  }
}

/**
 * Drains, then runs each step within its limit of {@linkcode STEP_LIMITS_MS};
 * resolves with the exit code: 0 once the stores are closed, 1 if they did
 * not close in time. Connections still open when the listener's limit is
 * spent are left to close with the process.
 */
export async function shutdown(
  target: Stoppable,
  signal: Deno.Signal,
  log: (line: string) => void,
): Promise<number> {
  target.drain();
  log(
    `${signal}: draining for ${target.drainMs} ms, finishing in-flight requests, then closing stores`,
  );
  // Requests already on the wire (keep-alive connections) are still answered, with Connection: close.
  await new Promise((r) => setTimeout(r, target.drainMs));
  const step = async (name: string, limitMs: number, run: () => Promise<void>) => {
    const failed = (e: Error) => log(`${signal}: ${name} failed: ${e.message}`);
    const done = await settlesWithin(run().catch(failed), limitMs);
    if (!done) log(`${signal}: ${name} did not finish within ${limitMs} ms; going on`);
    return done;
  };
  await step("answering request bodies", STEP_LIMITS_MS.bodies, () => target.releaseBodies());
  await step("closing the listener", STEP_LIMITS_MS.server, () => target.closeServer());
  const closed = await step(
    "closing the stores",
    STEP_LIMITS_MS.stores,
    () => target.closeStores(),
  );
  return closed ? 0 : 1;
}
