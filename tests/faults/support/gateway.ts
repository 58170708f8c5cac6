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
import { memoryOf, waitForStores } from "../../../scripts/server_process.ts";
import { STORE_NAMES, type StoreName } from "../../../stores/types.ts";

/** A started gateway process. */
export type Gateway = ServerProcess;

/**
 * Starts `main.ts` in `sqliteDir` with the matrix environment,
 * `sqliteDir/words.db` and `sqliteDir/rabbitmq-view.db`, and
 * `SERVER_TIMING=true` so each sample tells the store's share of its latency.
 */
export async function startGateway(sqliteDir: string): Promise<Gateway> {
  const env = {
    ...testEnv,
    PORT: "0",
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

/** CPU time of `pid` (user + system) in clock ticks; NaN once it has exited. */
export function cpuTicks(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  } catch {
    return NaN;
  }
}

/** The machine's busy and total CPU ticks (all CPUs) from /proc/stat. */
export function machineTicks(): { busy: number; total: number } {
  const cpu = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1)
    .map(Number);
  const total = cpu.reduce((a, b) => a + b, 0);
  const idle = cpu[3] + (cpu[4] ?? 0);
  return { busy: total - idle, total };
}

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

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
      cpu: cpuTicks(this.pid),
      machine: machineTicks(),
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
      process: ((b.cpu - a.cpu) / USER_HZ) / ((b.at - a.at) / 1000) * 100,
      machine: (b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total) * 100,
    };
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
