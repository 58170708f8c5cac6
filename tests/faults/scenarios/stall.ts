/**
 * Scenario 2, slow store: under the mixed load (concurrency 32), one
 * matrix server's process tree (a store's database; with read replicas, its
 * primary or a replica) is SIGSTOPped for 10 s, so it accepts TCP but
 * answers nothing, then SIGCONTed.
 *
 * Judged: the stalled store answers only STORE_UNAVAILABLE, each within the
 * gateway's request timeout plus {@linkcode SCHEDULING_MS}, never hangs; the
 * other stores as in the kill scenario (p99 judged for the 10 s stall, only
 * reported while the database resumes); the gateway's peak open sockets and
 * RSS while stalled stay within {@linkcode SOCKET_ALLOWANCE} and
 * {@linkcode RSS_FACTOR} of their peaks before; the store serves again
 * within 15 s of SIGCONT; no acknowledged add or edit is lost and no
 * acknowledged deletion undone (support/verify.ts). A stalled primary: only
 * its writes may answer STORE_UNAVAILABLE (same bound), every read is
 * served. A stalled replica: its store fails no request at all, and the
 * replica is back in rotation within 15 s of SIGCONT.
 *
 * @module
 */
import type { StoreName } from "../../../stores/types.ts";
import {
  describeTarget,
  pauseService,
  resumeDatabase,
  sleep,
  type Target,
} from "../support/databases.ts";
import {
  budgetMs,
  type Gateway,
  ProcessSampler,
  readFigures,
  type Run,
} from "../support/gateway.ts";
import { BEFORE_MS, describeWorst, FAULT_MS, judgeFault, WARM_MS } from "../support/judge.ts";
import { MixedLoad } from "../support/load.ts";
import { checkReplication } from "../support/replication.ts";
import { ms, type SummaryRow } from "../support/summary.ts";
import { checkDurability } from "../support/verify.ts";
import { CONNECTIONS, RECOVERY_GRACE_MS, RECOVERY_MS, waitRecovered } from "./kill.ts";

const TAIL_MS = 2_000;
/** Time on top of the request timeout for HTTP and scheduling on a loaded machine. */
export const SCHEDULING_MS = 500;
/** Sockets the gateway may hold beyond its peak before the stall: one per client connection. */
export const SOCKET_ALLOWANCE = CONNECTIONS;
/** How much the gateway's peak RSS may grow while a store is stalled. */
export const RSS_FACTOR = 1.25;

/** Runs the scenario on `target` with load on `stores`; returns its summary row. */
export async function stallStore(
  gateway: Gateway,
  stores: readonly StoreName[],
  target: Target,
  run: Run,
): Promise<SummaryRow> {
  const sick = target.store;
  const topology = target.role === "database" ? "" : `${await checkReplication(sick)}; `;
  const load = new MixedLoad({
    url: gateway.url,
    stores,
    connections: CONNECTIONS,
    maxSeconds: 300,
  });
  const sampler = new ProcessSampler(gateway.pid);
  const t: Record<string, number> = { start: Date.now() };
  let paused: number[] = [];
  try {
    await sleep(WARM_MS);
    t.before = Date.now();
    await sleep(BEFORE_MS);
    t.stop = Date.now();
    paused = await pauseService(target.service);
    await sleep(FAULT_MS);
    resumeDatabase(paused);
    paused = [];
    t.cont = Date.now();
    t.served = await waitRecovered(
      gateway,
      load,
      target,
      t.cont,
      t.cont + RECOVERY_MS + RECOVERY_GRACE_MS,
    ) ?? NaN;
    await sleep(TAIL_MS);
    t.end = Date.now();
  } finally {
    resumeDatabase(paused);
    await load.stop();
    sampler.stop();
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
      fault: t.stop,
      turn: t.cont,
      recovered,
      end: t.end,
    },
    {
      before: "before the stall",
      sick: "stalled",
      phases: ["stalled", "resuming"],
    },
    budgetMs(sick) + SCHEDULING_MS,
    target.role,
  );
  const before = sampler.peak(t.before, t.stop);
  const during = sampler.peak(t.stop, recovered);
  const breaches = [...v.breaches];
  if (during.sockets > before.sockets + SOCKET_ALLOWANCE) {
    breaches.push(`gateway sockets ${before.sockets} → ${during.sockets} while stalled`);
  }
  if (during.rssMiB > before.rssMiB * RSS_FACTOR) {
    breaches.push(
      `gateway RSS ${before.rssMiB.toFixed(0)} → ${during.rssMiB.toFixed(0)} MiB while stalled`,
    );
  }
  const servedAfter = (t.served - t.cont) / 1000;
  const back = target.role === "replica" ? "back in rotation" : "served";
  if (!(servedAfter <= RECOVERY_MS / 1000)) {
    breaches.push(`${describeTarget(target)} not ${back} ${RECOVERY_MS / 1000} s after SIGCONT`);
  }
  const reads = await readFigures(gateway, run, [load], [sick]);
  const durability = await checkDurability(gateway.url, load);
  breaches.push(...durability.problems);
  return {
    scenario: `SIGSTOP 10 s ${describeTarget(target)}`,
    requests: samples.length,
    failures: v.failures,
    p99: describeWorst(v.others.worst),
    lost: durability.lost + durability.duplicated,
    changes: durability.changes,
    changesByStore: durability.changesByStore,
    reads: reads.reads,
    waits: reads.waits,
    notes: topology +
      `${sick}: ${v.sick.unavailable} STORE_UNAVAILABLE (slowest ${ms(v.sick.slowest)}), ` +
      `${back} ${
        Number.isFinite(servedAfter) ? servedAfter.toFixed(1) : "never"
      } s after SIGCONT; ` +
      `gateway peak sockets ${before.sockets} → ${during.sockets}, peak RSS ${
        before.rssMiB.toFixed(0)
      } → ${
        during.rssMiB.toFixed(0)
      } MiB; ${v.cpu}; ${durability.acked} acked adds checked (${durability.deleted} deleted)`,
    breaches,
  };
}
