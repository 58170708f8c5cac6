/**
 * Scenario 3, soak: 120 s of the mixed load on every store at concurrency 64,
 * after a 30 s warm-up at that load.
 *
 * Judged: no 5xx and no hang; every store lists exactly the acknowledged
 * adds of the run's tags that it did not acknowledge deleting (none lost,
 * none duplicated, none resurrected, and no write stored whose add was not
 * acknowledged), each with the definition of its last acknowledged edit;
 * the gateway's RSS at the end is within 20% of its RSS after the warm-up.
 *
 * @module
 */
import type { StoreName } from "../../../stores/types.ts";
import { sleep } from "../support/databases.ts";
import { type Gateway, ProcessSampler, rssMiB } from "../support/gateway.ts";
import { MixedLoad } from "../support/load.ts";
import { describeCounts, OK, outcomes, p99, TIMEOUT, windowOf } from "../support/samples.ts";
import { ms, type SummaryRow } from "../support/summary.ts";
import { checkDurability } from "../support/verify.ts";

/** Load concurrency of the soak. */
export const SOAK_CONNECTIONS = 64;
/** Measured seconds. */
export const SOAK_SECONDS = 120;
/** Long enough for the gateway's heap to reach its working size at this concurrency. */
const WARM_MS = 30_000;
/** How much the gateway's RSS may grow from the end of the warm-up to the end of the soak. */
export const RSS_GROWTH = 0.2;

/** Runs the soak against `stores`; returns its summary row. */
export async function soak(gateway: Gateway, stores: readonly StoreName[]): Promise<SummaryRow> {
  const load = new MixedLoad({
    url: gateway.url,
    stores,
    connections: SOAK_CONNECTIONS,
    maxSeconds: SOAK_SECONDS + 60,
  });
  const sampler = new ProcessSampler(gateway.pid, 1000);
  let warm = NaN, end = NaN, warmRss = NaN, midRss = NaN, endRss = NaN;
  try {
    await sleep(WARM_MS);
    warm = Date.now();
    warmRss = rssMiB(gateway.pid);
    await sleep(SOAK_SECONDS * 500);
    midRss = rssMiB(gateway.pid);
    await sleep(SOAK_SECONDS * 500);
    endRss = rssMiB(gateway.pid);
    end = Date.now();
  } finally {
    await load.stop();
    sampler.stop();
  }
  const peakRss = sampler.peak(warm, end).rssMiB;
  const samples = load.samples;
  const measured = windowOf(samples, warm, end);
  const fiveHundreds = samples.filter((s) => s.status >= 500);
  const hangs = samples.filter((s) => s.outcome === TIMEOUT);
  const failed = samples.filter((s) => s.outcome !== OK);
  const failedStores = [...new Set(failed.map((s) => s.store))];
  const failedWrites = failed.filter((s) => s.op !== "list").length;
  const durability = await checkDurability(gateway.url, load);
  const breaches: string[] = [];
  if (fiveHundreds.length) breaches.push(`${fiveHundreds.length} responses with a 5xx status`);
  if (hangs.length) breaches.push(`${hangs.length} requests hung`);
  breaches.push(...durability.problems);
  if (durability.unacknowledged) {
    breaches.push(
      `${durability.unacknowledged} stored words whose add was not acknowledged (${
        durability.unacknowledgedByStore.join(", ")
      }): listed ${durability.listed} ≠ acked ${durability.acked} − deleted ${durability.deleted}`,
    );
  }
  if (endRss > warmRss * (1 + RSS_GROWTH)) {
    breaches.push(`gateway RSS ${warmRss.toFixed(0)} → ${endRss.toFixed(0)} MiB`);
  }
  const perStore = stores.map((s) => `${s} ${ms(p99(windowOf(measured, warm, end, s)))}`);
  return {
    scenario: `soak ${SOAK_SECONDS} s, concurrency ${SOAK_CONNECTIONS}`,
    requests: samples.length,
    failures: failed.length,
    p99: `${ms(p99(measured))} (${perStore.join(", ")})`,
    lost: durability.lost + durability.duplicated,
    changes: durability.changes,
    changesByStore: durability.changesByStore,
    notes:
      `${(measured.length / SOAK_SECONDS).toFixed(0)} req/s; ${durability.acked} acked adds, ` +
      `${durability.deleted} deleted, ${durability.listed} listed (${failedWrites} writes failed, ${load.unansweredWrites} unanswered); gateway RSS ${
        warmRss.toFixed(0)
      } MiB after warm-up → ${midRss.toFixed(0)} at half time → ${
        endRss.toFixed(0)
      } MiB at end (peak ${peakRss.toFixed(0)})${
        failed.length
          ? `; failures: ${describeCounts(outcomes(failed))} (${failedStores.join(", ")})`
          : ""
      }`,
    breaches,
  };
}
