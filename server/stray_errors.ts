/**
 * One store's stray error must not end the gateway and every other store
 * with it. Drivers raise some errors from their own callbacks, where no
 * caller can catch them: an EventEmitter `error` nobody listens to (mysql2's
 * pool listens once per connection, and a connection it has already given up
 * can emit again), a socket error after a timeout, a rejection nobody awaits.
 * Deno ends the process on such an error by default (a fault-suite run lost
 * its gateway while a PostgreSQL primary was stalled, and nothing recorded
 * why).
 *
 * Here each is logged as one redacted line (its name and message, no stack)
 * and the gateway keeps serving; the store the error came from finds its
 * dead connection at its next call or ping and reconnects on its own
 * (stores/managed.ts).
 *
 * @module
 */

/** The kinds of stray error, as reported and counted. */
export const STRAY_ERROR_KINDS = ["uncaught error", "unhandled rejection"] as const;
/** One of {@linkcode STRAY_ERROR_KINDS}. */
export type StrayErrorKind = typeof STRAY_ERROR_KINDS[number];

/** What a stray error is reported as: "Error: connect ECONNREFUSED 127.0.0.1:1". */
function describe(value: unknown): string {
  return value instanceof Error ? `${value.name}: ${value.message}` : String(value);
}

/**
 * Keeps the process serving through uncaught errors and unhandled
 * rejections, telling `report` of each. Call once, at start-up.
 */
export function keepServingThroughStrayErrors(
  report: (kind: StrayErrorKind, description: string) => void,
): void {
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    report("unhandled rejection", describe(event.reason));
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    report("uncaught error", describe(event.error));
  });
}
