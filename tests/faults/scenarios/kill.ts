/**
 * Scenario 1, kill and restart: under a mixed load on every store
 * (concurrency 32; adds, lists, edits and deletions, support/mix.ts), one
 * matrix server's whole process tree is SIGKILLed (a store's database; with
 * read replicas, its primary or a replica: see `Target`), the load keeps
 * going for 10 s, then the server is restarted with `matrix up`. The gateway
 * is never restarted. A scenario on a node of a store with replicas first
 * checks that topology (every replica replicating) and fails if it is not
 * there.
 *
 * Judged: the other stores never fail, and keep their p99 within 2× (+ 25 ms)
 * of before the kill for the 10 s it is down (while it restarts their p99 is
 * only reported: see `judgeFault`); the killed store
 * answers only STORE_UNAVAILABLE within 2 s, never hangs; it serves again
 * within 15 s of its database being ready (answering adds, lists, edits and
 * deletions); afterwards, on every store, every acknowledged add is listed
 * exactly once unless its deletion was acknowledged (then it is not listed
 * at all), with the definition of its last acknowledged edit (or of a later
 * edit whose outcome is unknown): support/verify.ts. A killed primary: only
 * its writes may answer STORE_UNAVAILABLE (within 2 s), its reads must all
 * be served (by the replica), writes serve again within 15 s of ready. A
 * killed replica: its store must not fail a single request; the replica is
 * back in rotation within 15 s of ready. Rows of stores with replicas also
 * report reads by node (databases' counters) and read-your-writes waits.
 *
 * @module
 */
import type { StoreName } from "../../../stores/types.ts";
import {
  describeTarget,
  killService,
  restartService,
  sleep,
  type Target,
} from "../support/databases.ts";
import {
  type Gateway,
  ProcessSampler,
  readFigures,
  type Run,
  waitReplicasServing,
} from "../support/gateway.ts";
import {
  BEFORE_MS,
  describeWorst,
  FAULT_MS,
  judgeFault,
  waitServing,
  WARM_MS,
} from "../support/judge.ts";
import { MixedLoad } from "../support/load.ts";
import { checkReplication } from "../support/replication.ts";
import { OK, windowOf } from "../support/samples.ts";
import { ms, type SummaryRow } from "../support/summary.ts";
import { checkDurability } from "../support/verify.ts";

/** Load concurrency of the scenario. */
export const CONNECTIONS = 32;
/** The killed store must answer STORE_UNAVAILABLE this fast. */
export const UNAVAILABLE_WITHIN_MS = 2_000;
/** The killed store must serve again this soon after its database is ready. */
export const RECOVERY_MS = 15_000;
/** How long past the limit to keep waiting, to report the real figure. */
export const RECOVERY_GRACE_MS = 60_000;
const TAIL_MS = 2_000;

/**
 * When the hurt store serves again after `since` (restart ready, SIGCONT),
 * or undefined at the deadline: its database or primary once it answered an
 * add, a list, an edit and a deletion; a replica once the gateway has it
 * back in rotation (its node line healthy).
 */
export function waitRecovered(
  gateway: Gateway,
  load: MixedLoad,
  target: Target,
  since: number,
  deadline: number,
): Promise<number | undefined> {
  return target.role === "replica"
    ? waitReplicasServing(gateway.url, target.store, deadline)
    : waitServing(load, target.store, since, deadline);
}

/** Runs the scenario on `target` with load on `stores`; returns its summary row. */
export async function killAndRestart(
  gateway: Gateway,
  stores: readonly StoreName[],
  target: Target,
  run: Run,
): Promise<SummaryRow> {
  const sick = target.store;
  const topology = target.role === "database" ? "" : `${await checkReplication(sick)}; `;
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
    // Its read counter restarts with the server: what it counted so far, just before.
    await run.reads?.snapshot(sick).catch(() => {});
    t.kill = Date.now();
    await killService(target.service);
    await sleep(FAULT_MS);
    t.restart = Date.now();
    const { readyAt } = await restartService(target.service);
    restarted = true;
    t.ready = readyAt;
    readyAfterS = (readyAt - t.restart) / 1000;
    await run.reads?.snapshot(sick).catch(() => {});
    t.served = await waitRecovered(
      gateway,
      load,
      target,
      readyAt,
      readyAt + RECOVERY_MS + RECOVERY_GRACE_MS,
    ) ?? NaN;
    await sleep(TAIL_MS);
    t.end = Date.now();
  } finally {
    await load.stop();
    sampler.stop();
    if (!restarted) await restartService(target.service).catch(() => {});
  }
  const samples = load.samples;
  const recovered = Number.isFinite(t.served) ? t.served : t.end;
  const v = judgeFault(
    samples,
    stores,
    sick,
    sampler,
    {
      start: t.start,
      before: t.before,
      fault: t.kill,
      turn: t.restart,
      recovered,
      end: t.end,
    },
    {
      before: "before the kill",
      sick: "down",
      phases: ["down", "restarting"],
    },
    UNAVAILABLE_WITHIN_MS,
    target.role,
  );
  const servedWhileDown = windowOf(samples, t.kill, t.restart, sick).filter((s) =>
    s.outcome === OK
  );
  const reads = await readFigures(gateway, run, [load], [sick]);
  const durability = await checkDurability(gateway.url, load);
  const servedAfter = (t.served - t.ready) / 1000;
  const breaches = [...v.breaches];
  const back = target.role === "replica" ? "back in rotation" : "served again";
  if (!(servedAfter <= RECOVERY_MS / 1000)) {
    breaches.push(
      `${describeTarget(target)} ${back} ${
        Number.isFinite(servedAfter) ? `${servedAfter.toFixed(1)} s` : "never"
      } after ready (limit ${RECOVERY_MS / 1000} s)`,
    );
  }
  breaches.push(...durability.problems);
  return {
    scenario: `kill -9 ${describeTarget(target)}`,
    requests: samples.length,
    failures: v.failures,
    p99: describeWorst(v.others.worst),
    lost: durability.lost + durability.duplicated,
    changes: durability.changes,
    changesByStore: durability.changesByStore,
    reads: reads.reads,
    waits: reads.waits,
    notes: topology +
      `${sick}: ${v.sick.unavailable} STORE_UNAVAILABLE (slowest ${
        ms(v.sick.slowest)
      }), ${servedWhileDown.length} served while down; ${target.service} ready ${
        readyAfterS.toFixed(1)
      } s after restart, ` +
      `${back} ${Number.isFinite(servedAfter) ? servedAfter.toFixed(1) : "never"} s after ready; ` +
      `${v.cpu}; ${durability.acked} acked adds checked (${durability.deleted} deleted)`,
    breaches,
  };
}
