/**
 * Scenario 4, gateway restart: under load on every store (32 fetch workers,
 * see support/fetch_load.ts for why not autocannon), the gateway gets
 * SIGTERM.
 *
 * Judged: every request sent before the signal gets its full answer (data);
 * requests sent after it get an answer or a refused connection, never a hang
 * or a bare 5xx; the process exits 0 within 10 s; a new gateway on the same
 * configuration lists every acknowledged add exactly once, with its last
 * acknowledged edit, and no word whose deletion was acknowledged.
 *
 * @module
 */
import type { StoreName } from "../../../stores/types.ts";
import { sleep } from "../support/databases.ts";
import { type Attempt, FetchLoad } from "../support/fetch_load.ts";
import { startGateway, waitHealthy } from "../support/gateway.ts";
import {
  BARE_5XX,
  CONNECTION_ERROR,
  describeCounts,
  MALFORMED,
  NO_CODE,
  OK,
  outcomes,
  TIMEOUT,
} from "../support/samples.ts";
import { ms, type SummaryRow } from "../support/summary.ts";
import { checkDurability } from "../support/verify.ts";
import { percentile } from "../../../scripts/bench/stats.ts";

const WORKERS = 32;
const LOAD_MS = 5_000;
/** The gateway must have exited this soon after SIGTERM. */
export const EXIT_WITHIN_MS = 10_000;
/** When to give up waiting and SIGKILL it. */
const KILL_AFTER_MS = 30_000;

/**
 * Runs the scenario with a gateway of `workers` workers on `sqliteDir` (each
 * must drain); returns its summary row.
 */
export async function sigtermUnderLoad(
  sqliteDir: string,
  stores: readonly StoreName[],
  workers = 1,
): Promise<SummaryRow> {
  const first = await startGateway(sqliteDir, workers);
  let load: FetchLoad | undefined;
  let exit: { code: number; afterMs: number; killed: boolean };
  let termAt: number;
  try {
    await waitHealthy(first.url, stores);
    load = new FetchLoad(first.url, stores, WORKERS, 60);
    await sleep(LOAD_MS);
    load.closing();
    termAt = Date.now();
    const status = await first.stop("SIGTERM", KILL_AFTER_MS);
    exit = { code: status.code, afterMs: Date.now() - termAt, killed: status.signal === "SIGKILL" };
    await load.finished();
  } finally {
    await first.stop();
  }
  const attempts = load.attempts;
  const finishedBefore = attempts.filter((a) => a.endedAt < termAt);
  const inFlight = attempts.filter((a) => a.sentAt < termAt && a.endedAt >= termAt);
  const later = attempts.filter((a) => a.sentAt >= termAt);
  const cut = [...finishedBefore, ...inFlight].filter(cutOff);
  const badLater = later.filter((a) => cutOff(a) && a.outcome !== CONNECTION_ERROR);
  const breaches: string[] = [];
  if (cut.length) {
    breaches.push(
      `${cut.length} requests sent before SIGTERM got no full answer: ${
        describeCounts(outcomes(cut))
      }`,
    );
  }
  if (badLater.length) breaches.push(`after SIGTERM: ${describeCounts(outcomes(badLater))}`);
  const drained = first.output().match(
    /SIGTERM: draining for \d+ ms, finishing in-flight requests, then closing stores/g,
  ) ?? [];
  if (drained.length !== workers) {
    breaches.push(`${drained.length} of ${workers} worker(s) logged their orderly shutdown`);
  }
  if (exit.code !== 0 || exit.afterMs > EXIT_WITHIN_MS) {
    breaches.push(
      `exit code ${exit.code}${exit.killed ? " (SIGKILLed)" : ""} after ${ms(exit.afterMs)}`,
    );
  }
  const second = await startGateway(sqliteDir);
  let durability;
  try {
    await waitHealthy(second.url, stores);
    durability = await checkDurability(second.url, load);
  } finally {
    await second.stop();
  }
  breaches.push(...durability.problems);
  const latencies = Float64Array.from(
    attempts.filter((a) => a.sentAt < termAt).map((a) => a.endedAt - a.sentAt),
  ).sort();
  const storeErrors = inFlight.filter((a) => a.outcome !== OK && !cutOff(a));
  return {
    scenario: workers > 1
      ? `SIGTERM the gateway of ${workers} workers under load`
      : "SIGTERM the gateway under load",
    requests: attempts.length,
    failures: cut.length + badLater.length,
    p99: ms(percentile(latencies, 99)),
    lost: durability.lost + durability.duplicated,
    changes: durability.changes,
    changesByStore: durability.changesByStore,
    notes: `${inFlight.length} requests in flight at SIGTERM: ${
      inFlight.length - cut.length - storeErrors.length
    } answered with data, ${storeErrors.length} with a store's own error (${
      describeCounts(outcomes(storeErrors)) || "none"
    }), ${inFlight.filter(cutOff).length} cut off; exit ${exit.code} ${
      ms(exit.afterMs)
    } after SIGTERM; ${later.length} sent after it (${
      describeCounts(outcomes(later)) || "none"
    }); ${durability.acked} acked adds checked (${durability.deleted} deleted) on a new gateway`,
    breaches,
  };
}

/** True when a request got no full GraphQL answer, or was refused because the gateway was stopping. */
function cutOff(a: Attempt): boolean {
  return [CONNECTION_ERROR, TIMEOUT, BARE_5XX, MALFORMED, NO_CODE].includes(a.outcome) ||
    /shutting down/.test(a.message ?? "");
}
