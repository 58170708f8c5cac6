/**
 * The shapes the benchmark passes between its parts and writes as raw JSON
 * (`bench/results/results.json`).
 *
 * @module
 */
import type { StoreName } from "../../stores/types.ts";

/** What one cell measures. */
export type Workload = "gateway-words" | "baseline-words" | "gateway-addWord";

/** Every workload, in the order each (store, size) measures them. */
export const WORKLOADS: readonly Workload[] = [
  "gateway-words",
  "baseline-words",
  "gateway-addWord",
];

/** One measured cell: one workload against one store at one size and concurrency. */
export interface Cell {
  store: StoreName;
  /** The size step (`--sizes`) this cell belongs to. */
  size: number;
  /** Words the store held when the step's cells began (≥ size; see {@linkcode SeedResult.held}). */
  held: number;
  concurrency: number;
  workload: Workload;
  /** Seconds of measurement (after the warm-up). */
  seconds: number;
  /** Verified successful responses. */
  requests: number;
  /** Verified successful responses per second. */
  rps: number;
  /** Latency percentiles in milliseconds over every verified response. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Failed requests: transport errors, timeouts, non-2xx and bodies that were not the expected data. */
  failures: number;
  /** Largest gateway VmRSS seen while this cell ran, in MiB (gateway workloads only). */
  gatewayRssMiB?: number;
  /** Why the cell was not measured (its figures are then NaN, `null` in JSON). */
  notMeasured?: string;
}

/** How one store was brought to one size. */
export interface SeedResult {
  store: StoreName;
  /** The size asked for. */
  target: number;
  /** Words counted before seeding, within 1% (a lower bound when the store cannot page that deep). */
  before: number;
  /** Words this run added. */
  added: number;
  /** Words held after seeding: before + added, within 1% (a lower bound). */
  held: number;
  seconds: number;
  /** Added words per second. */
  wordsPerSecond: number;
  concurrency: number;
}

/** The machine the run happened on. */
export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  deno: string;
  v8: string;
  /** 1, 5 and 15 minute load averages when the run started (other work on the machine shows here). */
  loadAverage: number[];
  /** `git rev-parse HEAD`, with `+dirty` when the work tree has changes. */
  commit: string;
}

/** The whole run, as written to results.json. */
export interface BenchRun {
  startedAt: string;
  finishedAt: string;
  machine: Machine;
  settings: {
    stores: StoreName[];
    sizes: number[];
    concurrencies: number[];
    durationSeconds: number;
    warmupSeconds: number;
    seedConcurrency: number;
    loadGenerator: string;
  };
  skipped: { store: StoreName; reason: string }[];
  seeds: SeedResult[];
  cells: Cell[];
  gatewayMemory: {
    /** VmHWM of the gateway process at the end of the run, in MiB. */
    peakRssMiB: number;
    /** Largest VmRSS sampled while the concurrency-64 cells ran, in MiB. */
    peakRssAtC64MiB?: number;
  };
  baselinePeakRssMiB: number;
}
