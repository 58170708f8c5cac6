/**
 * The control: the kill scenario's load and windows with no fault at all, so
 * the summary shows how far a healthy store's p99 moves between two windows
 * on this machine by itself (the noise under the 2× rule). Judged by the same
 * rules: no failure, p99 within 2× + 25 ms, no acknowledged add, edit or
 * deletion lost.
 *
 * @module
 */
import type { StoreName } from "../../../stores/types.ts";
import { sleep } from "../support/databases.ts";
import { type Gateway, ProcessSampler } from "../support/gateway.ts";
import { cpuNote, describeWorst, judgeOthers } from "../support/judge.ts";
import { MixedLoad } from "../support/load.ts";
import type { SummaryRow } from "../support/summary.ts";
import { checkDurability } from "../support/verify.ts";
import { CONNECTIONS } from "./kill.ts";

const WARM_MS = 3_000;
const WINDOW_MS = 10_000;

/** Runs the control with load on `stores`; returns its summary row. */
export async function control(gateway: Gateway, stores: readonly StoreName[]): Promise<SummaryRow> {
  const sampler = new ProcessSampler(gateway.pid);
  const load = new MixedLoad({
    url: gateway.url,
    stores,
    connections: CONNECTIONS,
    maxSeconds: 60,
  });
  const start = Date.now();
  let before = NaN, during = NaN, end = NaN;
  try {
    await sleep(WARM_MS);
    before = Date.now();
    await sleep(WINDOW_MS);
    during = Date.now();
    await sleep(WINDOW_MS);
    end = Date.now();
  } finally {
    await load.stop();
    sampler.stop();
  }
  const first = { name: "first window", from: before, to: during };
  const second = { name: "second window", from: during, to: end };
  const verdict = judgeOthers(load.samples, stores, { name: "run", from: start, to: end }, first, [
    { ...second, judged: true },
  ]);
  const durability = await checkDurability(gateway.url, load);
  return {
    scenario: "control: no fault",
    requests: load.samples.length,
    failures: verdict.failures,
    p99: describeWorst(verdict.worst),
    lost: durability.lost + durability.duplicated,
    changes: durability.changes,
    changesByStore: durability.changesByStore,
    notes: `two 10 s windows, nothing hurt; ${cpuNote(sampler, [first, second])}; ${
      (load.samples.length / ((end - start) / 1000)).toFixed(0)
    } req/s; ${durability.acked} acked adds checked (${durability.deleted} deleted)`,
    breaches: [...verdict.breaches, ...durability.problems],
  };
}
