/**
 * The control: the kill scenario's load and windows with no fault at all (the
 * baseline, then a window as long as a fault's), so the summary shows how far
 * a healthy store's p99 moves between them on this machine by itself (the noise under the 2× rule). Judged by the same
 * rules: no failure, p99 within 2× + 25 ms, no acknowledged add, edit or
 * deletion lost. With healthy replicas, at least
 * {@linkcode REPLICA_READ_SHARE}% of each such store's reads reach a
 * replica, as the replicas' own counters tell (support/replication.ts); each
 * such store's topology is checked first.
 *
 * @module
 */
import type { StoreName } from "../../../stores/types.ts";
import { sleep } from "../support/databases.ts";
import { type Gateway, ProcessSampler, readFigures, type Run } from "../support/gateway.ts";
import { checkReplication, storesWithReplicas } from "../support/replication.ts";
import {
  BEFORE_MS,
  cpuNote,
  describeWorst,
  FAULT_MS,
  judgeOthers,
  WARM_MS,
} from "../support/judge.ts";
import { MixedLoad } from "../support/load.ts";
import type { SummaryRow } from "../support/summary.ts";
import { checkDurability } from "../support/verify.ts";
import { CONNECTIONS } from "./kill.ts";

/** Least share of reads (%) a store with healthy replicas must serve on them. */
export const REPLICA_READ_SHARE = 80;

/** Runs the control with load on `stores`; returns its summary row. */
export async function control(
  gateway: Gateway,
  stores: readonly StoreName[],
  run: Run,
): Promise<SummaryRow> {
  const replicated = storesWithReplicas(stores);
  const topology = [];
  for (const s of replicated) topology.push(`${s} ${await checkReplication(s)}`);
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
    await sleep(BEFORE_MS);
    during = Date.now();
    await sleep(FAULT_MS);
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
  const reads = await readFigures(gateway, run, [load], replicated);
  const shares: string[] = [];
  for (const [store, f] of reads.figures) {
    if (!(f.replicaShare >= REPLICA_READ_SHARE)) {
      shares.push(
        `${store}: ${
          f.replicaShare.toFixed(1)
        }% of reads on replicas (${f.replica} of ${f.lists}; ` +
          `at least ${REPLICA_READ_SHARE}%)`,
      );
    }
  }
  const durability = await checkDurability(gateway.url, load);
  return {
    scenario: "control: no fault",
    requests: load.samples.length,
    failures: verdict.failures,
    p99: describeWorst(verdict.worst),
    lost: durability.lost + durability.duplicated,
    changes: durability.changes,
    changesByStore: durability.changesByStore,
    reads: reads.reads,
    waits: reads.waits,
    notes: (topology.length ? `${topology.join(", ")}; ` : "") +
      `a ${BEFORE_MS / 1000} s window, then a ${FAULT_MS / 1000} s one, nothing hurt; ${
        cpuNote(sampler, [first, second])
      }; ${
        (load.samples.length / ((end - start) / 1000)).toFixed(0)
      } req/s; ${durability.acked} acked adds checked (${durability.deleted} deleted)`,
    breaches: [...verdict.breaches, ...shares, ...durability.problems],
  };
}
