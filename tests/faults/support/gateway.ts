/**
 * The real gateway (`main.ts`) as the fault suite runs it: its own process on
 * a free 127.0.0.1 port, with the matrix environment, the mutation rate
 * limit off, and its SQLite file and RabbitMQ's view in a directory that
 * outlives one process (so a restarted gateway finds what the first one
 * wrote). Also reads the
 * process's resident memory and open sockets from /proc.
 *
 * @module
 */
import { testEnv } from "../../support/env.ts";
import { type ServerProcess, startServer } from "../../support/gateway.ts";
import {
  cpuSecondsOf,
  freePort,
  machineCpuSeconds,
  memoryOf,
  waitForStores,
} from "../../../scripts/server_process.ts";
import { type NetworkStoreName, STORE_NAMES, type StoreName } from "../../../stores/types.ts";
import { describeReads, type NodeReads, type ReadFigures } from "./replication.ts";
import type { Sample } from "./samples.ts";
import { timeoutVariable } from "../../../stores/settings.ts";

/**
 * The gateway's budget per call to `store`, as the gateway under test reads
 * it: `<STORE>_TIMEOUT_MS`, else `REQUEST_TIMEOUT_MS`.
 */
export function budgetMs(store: StoreName): number {
  const own = store === "SQLITE" ? undefined : testEnv[timeoutVariable(store)];
  return Number(own || testEnv.REQUEST_TIMEOUT_MS || 2000);
}

/** The largest {@linkcode budgetMs} of any store. */
export function maxBudgetMs(): number {
  return Math.max(...STORE_NAMES.map(budgetMs));
}

/** A started gateway process. */
export type Gateway = ServerProcess;

/**
 * Starts `main.ts` in `sqliteDir` with the matrix environment,
 * `sqliteDir/words.db` and `sqliteDir/rabbitmq-view.db`, and
 * `SERVER_TIMING=true` so each sample tells the store's share of its latency;
 * `workers` gateways in the process (`WORKERS`, one by default).
 */
export async function startGateway(sqliteDir: string, workers = 1): Promise<Gateway> {
  const env = {
    ...testEnv,
    // Several workers share one port, so it is fixed (PORT=0 would give each its own).
    PORT: workers > 1 ? String(freePort()) : "0",
    WORKERS: String(workers),
    HOST: "127.0.0.1",
    RATE_LIMIT_PER_MINUTE: "0",
    SERVER_TIMING: "true",
    SQLITE_PATH: `${sqliteDir}/words.db`,
    RABBITMQ_VIEW_PATH: `${sqliteDir}/rabbitmq-view.db`,
    NO_COLOR: "1",
  };
  return await startServer(env, sqliteDir);
}

/** Polls `/readyz` until every store in `stores` is healthy; throws after `ms`. */
export async function waitHealthy(url: string, stores: readonly StoreName[], ms = 120_000) {
  const unhealthy = await waitForStores(url, stores, ms);
  if (unhealthy.size) {
    throw new Error(`stores not healthy after ${ms} ms: ${[...unhealthy.keys()].join(", ")}`);
  }
}

/** The stores this run can use: SQLite and every configured network store. */
export function configuredStores(): StoreName[] {
  return STORE_NAMES.filter((s) => s === "SQLITE" || Boolean(testEnv[`${s}_URL`]));
}

/** Resident memory (VmRSS) of `pid` in MiB; NaN once it has exited. */
export function rssMiB(pid: number): number {
  return memoryOf(pid)?.rssMiB ?? NaN;
}

/** Open sockets of `pid` (file descriptors that are sockets); NaN once it has exited. */
export function socketCount(pid: number): number {
  try {
    let n = 0;
    for (const fd of Deno.readDirSync(`/proc/${pid}/fd`)) {
      try {
        if (Deno.readLinkSync(`/proc/${pid}/fd/${fd.name}`).startsWith("socket:")) n++;
      } catch {
        // closed meanwhile
      }
    }
    return n;
  } catch {
    return NaN;
  }
}

interface Point {
  at: number;
  rssMiB: number;
  sockets: number;
  cpu: number;
  machine: { busy: number; total: number };
}

/** Samples a process's RSS, sockets and CPU, and the machine's CPU, every `everyMs` until stopped. */
export class ProcessSampler {
  readonly points: Point[] = [];
  #timer: ReturnType<typeof setInterval>;

  constructor(readonly pid: number, everyMs = 250) {
    this.sample();
    this.#timer = setInterval(() => this.sample(), everyMs);
  }

  /** Takes one sample now and returns it. */
  sample(): Point {
    const p = {
      at: Date.now(),
      rssMiB: rssMiB(this.pid),
      sockets: socketCount(this.pid),
      cpu: cpuSecondsOf(this.pid),
      machine: machineCpuSeconds(),
    };
    this.points.push(p);
    return p;
  }

  /** The largest RSS and socket count sampled in `[from, to)`. */
  peak(from: number, to: number): { rssMiB: number; sockets: number } {
    const inside = this.points.filter((p) => p.at >= from && p.at < to);
    return {
      rssMiB: Math.max(0, ...inside.map((p) => p.rssMiB)),
      sockets: Math.max(0, ...inside.map((p) => p.sockets)),
    };
  }

  /** In `[from, to)`: the process's CPU in % of one core, and the machine's busy % of all cores. */
  cpu(from: number, to: number): { process: number; machine: number } {
    // the samples that bracket the window, so a window shorter than the interval still counts
    const a = this.points.findLast((p) => p.at <= from) ?? this.points[0];
    const b = this.points.find((p) => p.at >= to) ?? this.points.at(-1);
    if (!a || !b || b.at <= a.at) return { process: NaN, machine: NaN };
    return {
      process: (b.cpu - a.cpu) / ((b.at - a.at) / 1000) * 100,
      machine: (b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total) * 100,
    };
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** One node line of the `stores` query (a store with read replicas). */
export interface NodeLine {
  role: "PRIMARY" | "REPLICA";
  healthy: boolean;
  reads: number;
  readWaits: { count: number; gaveUp: number; p50Ms: number | null; p99Ms: number | null } | null;
}

const NODES =
  `{ stores { store nodes { role healthy reads readWaits { count gaveUp p50Ms p99Ms } } } }`;

/** The node lines of `store` as the gateway at `url` reports them now (empty without replicas). */
export async function storeNodes(url: string, store: StoreName): Promise<NodeLine[]> {
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: NODES }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.json() as { data?: { stores: { store: string; nodes: NodeLine[] }[] } };
  const status = body.data?.stores.find((s) => s.store === store);
  if (!status) throw new Error(`the stores query did not answer for ${store}`);
  return status.nodes;
}

/**
 * Polls `store`'s node lines until every replica is healthy (back in
 * rotation); resolves with that moment, or undefined at `deadline`.
 */
export async function waitReplicasServing(
  url: string,
  store: StoreName,
  deadline: number,
): Promise<number | undefined> {
  while (Date.now() < deadline) {
    const nodes = await storeNodes(url, store).catch(() => []);
    const replicas = nodes.filter((n) => n.role === "REPLICA");
    if (replicas.length && replicas.every((n) => n.healthy)) return Date.now();
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

/**
 * The read-your-writes waits of `store`'s replicas, from the gateway's node
 * lines: "p50 1.2 ms, p99 9.8 ms over 812 waits (3 gave up; 1930 replica reads)".
 */
export function describeWaits(nodes: readonly NodeLine[]): string {
  const replicas = nodes.filter((n) => n.role === "REPLICA");
  if (!replicas.length) return "-";
  return replicas.map((r) => {
    const w = r.readWaits;
    if (!w || w.count === 0) return `no read waited (${r.reads} replica reads)`;
    const f = (ms: number | null) =>
      ms === null ? "-" : `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
    return `p50 ${f(w.p50Ms)}, p99 ${
      f(w.p99Ms)
    } over ${w.count} waits (${w.gaveUp} gave up; ${r.reads} replica reads)`;
  }).join("; ");
}

/** What a scenario gets beside its gateway (see faults_test.ts's `withGateway`). */
export interface Run {
  /** The warm-up's load, which this gateway served just before the scenario. */
  warm: { readonly samples: readonly Sample[] };
  /** Reads by node of every store with replicas, counted since before this gateway started. */
  reads?: NodeReads;
}

/**
 * For a scenario's row: each of `stores`' reads by node from the databases'
 * counters (ending `run.reads`: call once the load has stopped, before
 * anything else reads through the gateway) and its replicas' read-your-writes
 * waits from the gateway's node lines. Nothing for a store without replicas.
 */
export async function readFigures(
  gateway: Gateway,
  run: Run,
  loads: readonly { readonly samples: readonly Sample[] }[],
  stores: readonly NetworkStoreName[],
): Promise<{ figures: Map<NetworkStoreName, ReadFigures>; reads: string; waits: string }> {
  const counted = stores.filter((s) => run.reads?.stores.includes(s));
  if (!run.reads || !counted.length) return { figures: new Map(), reads: "", waits: "" };
  const figures = await run.reads.figures([run.warm, ...loads], counted);
  const waits = await Promise.all(counted.map(async (s) => {
    const nodes = await storeNodes(gateway.url, s).catch(() => []);
    return `${s} ${describeWaits(nodes)}`;
  }));
  return {
    figures,
    reads: counted.map((s) => `${s} ${describeReads(figures.get(s)!)}`).join("; "),
    waits: waits.join("; "),
  };
}
