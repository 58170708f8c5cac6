/**
 * Scenario 1, kill and restart: under a mixed load on every store
 * (concurrency 32; adds, lists, edits and deletions, support/mix.ts), one
 * database's whole process tree is SIGKILLed, the load
 * keeps going for 10 s, then the database is restarted with `matrix up`. The
 * gateway is never restarted.
 *
 * Judged: the other stores never fail, and keep their p99 within 2× (+ 25 ms)
 * of before the kill for the 10 s it is down (while it restarts their p99 is
 * only reported: see `judgeFault`); the killed store
 * answers only STORE_UNAVAILABLE within 2 s, never hangs; it serves again
 * within 15 s of its database being ready (answering adds, lists, edits and
 * deletions); afterwards, on every store, every acknowledged add is listed
 * exactly once unless its deletion was acknowledged (then it is not listed
 * at all), with the definition of its last acknowledged edit (or of a later
 * edit whose outcome is unknown): support/verify.ts.
 *
 * @module
 */
import type { NetworkStoreName, StoreName } from "../../../stores/types.ts";
import { killDatabase, restartDatabase, serviceOf, sleep } from "../support/databases.ts";
import { type Gateway, ProcessSampler } from "../support/gateway.ts";
import { describeWorst, judgeFault, waitServing } from "../support/judge.ts";
import { MixedLoad } from "../support/load.ts";
import { OK, windowOf } from "../support/samples.ts";
import { ms, type SummaryRow } from "../support/summary.ts";
import { checkDurability } from "../support/verify.ts";

/** Load concurrency of the scenario. */
export const CONNECTIONS = 32;
const WARM_MS = 3_000;
const BEFORE_MS = 10_000;
const DOWN_MS = 10_000;
/** The killed store must answer STORE_UNAVAILABLE this fast. */
export const UNAVAILABLE_WITHIN_MS = 2_000;
/** The killed store must serve again this soon after its database is ready. */
export const RECOVERY_MS = 15_000;
/** How long past the limit to keep waiting, to report the real figure. */
const RECOVERY_GRACE_MS = 60_000;
const TAIL_MS = 2_000;

/** Runs the scenario for `sick` with load on `stores`; returns its summary row. */
export async function killAndRestart(
  gateway: Gateway,
  stores: readonly StoreName[],
  sick: NetworkStoreName,
): Promise<SummaryRow> {
  const sampler = new ProcessSampler(gateway.pid);
  const load = new MixedLoad({
    url: gateway.url,
    stores,
    connections: CONNECTIONS,
    maxSeconds: 600,
  });
  const t: Record<string, number> = { start: Date.now() };
  let restarted = false;
  let readyAfterS = NaN;
  try {
    await sleep(WARM_MS);
    t.before = Date.now();
    await sleep(BEFORE_MS);
    t.kill = Date.now();
    await killDatabase(sick);
    await sleep(DOWN_MS);
    t.restart = Date.now();
    const { readyAt } = await restartDatabase(sick);
    restarted = true;
    t.ready = readyAt;
    readyAfterS = (readyAt - t.restart) / 1000;
    t.served = await waitServing(load, sick, readyAt, readyAt + RECOVERY_MS + RECOVERY_GRACE_MS) ??
      NaN;
    await sleep(TAIL_MS);
    t.end = Date.now();
  } finally {
    await load.stop();
    sampler.stop();
    if (!restarted) await restartDatabase(sick).catch(() => {});
  }
  const samples = load.samples;
  const recovered = Number.isFinite(t.served) ? t.served : t.end;
  const v = judgeFault(samples, stores, sick, sampler, {
    start: t.start,
    before: t.before,
    fault: t.kill,
    turn: t.restart,
    recovered,
    end: t.end,
  }, {
    before: "before the kill",
    sick: "down",
    phases: ["down", "restarting"],
  }, UNAVAILABLE_WITHIN_MS);
  const servedWhileDown = windowOf(samples, t.kill, t.restart, sick).filter((s) =>
    s.outcome === OK
  );
  const durability = await checkDurability(gateway.url, load);
  const servedAfter = (t.served - t.ready) / 1000;
  const breaches = [...v.breaches];
  if (!(servedAfter <= RECOVERY_MS / 1000)) {
    breaches.push(
      `${sick} served again ${
        Number.isFinite(servedAfter) ? `${servedAfter.toFixed(1)} s` : "never"
      } after ready (limit ${RECOVERY_MS / 1000} s)`,
    );
  }
  breaches.push(...durability.problems);
  return {
    scenario: `kill -9 ${serviceOf(sick)} (${sick})`,
    requests: samples.length,
    failures: v.failures,
    p99: describeWorst(v.others.worst),
    lost: durability.lost + durability.duplicated,
    changes: durability.changes,
    changesByStore: durability.changesByStore,
    notes:
      `${sick}: ${v.sick.unavailable} STORE_UNAVAILABLE (slowest ${
        ms(v.sick.slowest)
      }), ${servedWhileDown.length} served while down; db ready ${
        readyAfterS.toFixed(1)
      } s after restart, ` +
      `served ${Number.isFinite(servedAfter) ? servedAfter.toFixed(1) : "never"} s after ready; ` +
      `${v.cpu}; ${durability.acked} acked adds checked (${durability.deleted} deleted)`,
    breaches,
  };
}
