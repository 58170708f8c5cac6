/**
 * The shapes the benchmark passes between its parts and writes as raw JSON
 * (`bench/results/results.json`).
 *
 * @module
 */
import type { EventsResult } from "./events.ts";
import type { LoadResult } from "./load.ts";
import type { Floor } from "./cells.ts";
import type { StoreName } from "../../stores/types.ts";

/**
 * What one cell measures: the first page `words(limit: 100)` through the
 * gateway, from the baseline and from the classic Express app (PostgreSQL
 * and Redis), a `wordsConnection` page 10,000 words deep, a search for the
 * size step's rare word, and adding a word through the gateway and the
 * Express app.
 */
export type Workload =
  | "gateway-words"
  | "baseline-words"
  | "express-words"
  | "gateway-cursor"
  | "gateway-search"
  | "gateway-addWord"
  | "express-addWord";

/** Every workload, in the order each (store, size) measures them (adding last: it adds words). */
export const WORKLOADS: readonly Workload[] = [
  "gateway-words",
  "baseline-words",
  "express-words",
  "gateway-cursor",
  "gateway-search",
  "gateway-addWord",
  "express-addWord",
];

/** The workloads served by the classic Express apps (scripts/bench/express.ts). */
export const EXPRESS_WORKLOADS: ReadonlySet<Workload> = new Set([
  "express-words",
  "express-addWord",
]);

/**
 * One floor measured once per run (scripts/bench/floors.ts): 100 fixed
 * words from a bare handler, plain graphql-yoga, or Yoga with the JIT.
 */
export interface FloorCell extends LoadResult {
  floor: Floor;
  concurrency: number;
}

/** The gateway with `workers` workers listing SQLite (scripts/bench/cores.ts). */
export interface CoresCell extends LoadResult {
  workers: number;
  concurrency: number;
  /** The process's peak RSS over the measured seconds, all workers together, in MiB. */
  peakRssMiB: number;
  /** Cores the gateway process used over the measured seconds (CPU seconds / seconds). */
  gatewayCores: number;
  /** Cores the load generator (the bench process) used over them. */
  loadCores: number;
  /** Cores the rest of the machine (the databases, mostly) used over them; absent in older runs. */
  otherCores?: number;
}

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
  /**
   * The gateway's peak resident memory while this cell ran, in MiB (gateway
   * workloads only): VmHWM, reset before the cell, or the largest VmRSS
   * sampled every 100 ms where the peak cannot be reset.
   */
  gatewayRssMiB?: number;
  /** Why the cell was not measured (its figures are then NaN, `null` in JSON). */
  notMeasured?: string;
}

/** How one store was brought to one size. */
export interface SeedResult {
  store: StoreName;
  /** The size asked for. */
  target: number;
  /** Words the store held before this step (see {@linkcode Cell.held}). */
  before: number;
  /** Words this step seeded through `addMany`. */
  added: number;
  /** Words held after seeding: before + added. */
  held: number;
  seconds: number;
  /** Seeded words per second. */
  wordsPerSecond: number;
  /** Words per `addMany` call. */
  batch: number;
  /** `addMany` calls in flight. */
  parallel: number;
}

/** A check through the gateway after seeding a size: listing and search return the seeded words. */
export interface SeedCheck {
  store: StoreName;
  size: number;
  /** False when an answer was wrong (the run then fails). */
  ok: boolean;
  /** What the store did not answer in time (STORE_UNAVAILABLE or a timeout): those cells are skipped. */
  unavailable?: string;
  /** What was checked, or what was wrong. */
  detail: string;
}

/**
 * The gateway's memory at one size, every configured store connected to it:
 * the concurrency-64 cells of the size, and a mixed concurrency-64 load over
 * the first page of every measured store at once.
 */
export interface MemoryAtSize {
  size: number;
  /** Largest {@linkcode Cell.gatewayRssMiB} of the size's concurrency-64 cells and the mixed load. */
  peakRssAtC64MiB: number;
  /** VmHWM over all of the size's cells (reset before its first cell), in MiB. */
  hwmMiB: number;
  /** VmRSS once the size's cells were done, in MiB. */
  rssAfterMiB: number;
  /** The mixed load: one autocannon run cycling through every listed store's first page. */
  mixed?: Omit<Cell, "store" | "workload" | "held">;
  /** The stores in the mixed load (those whose concurrency-64 first page was measured). */
  mixedStores: StoreName[];
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
    /** Warm-up before the first cell of each workload on each store, and of each floor. */
    firstWarmupSeconds?: number;
    /** Words per `addMany` call while seeding. */
    seedBatch: number;
    /** `addMany` calls in flight while seeding. */
    seedParallel: number;
    /** Milliseconds between two seeded words' ids. */
    seedSpacingMs: number;
    /** Concurrencies of each workload. */
    cellConcurrencies: Record<Workload, number[]>;
    /** A cell whose queue (one request's time × concurrency) would pass this is not measured. */
    queueBudgetMs: number;
    /** Whether the measured servers were restored to empty data before seeding. */
    wipedBefore: boolean;
    loadGenerator: string;
  };
  /** Seconds from start to the written results, seeding and wiping included. */
  durationSeconds: number;
  skipped: { store: StoreName; reason: string }[];
  seeds: SeedResult[];
  checks: SeedCheck[];
  cells: Cell[];
  /** Stores the gateway was configured with (all of them, measured or not). */
  gatewayStores: StoreName[];
  memory: MemoryAtSize[];
  gatewayMemory: {
    /** Largest VmHWM of the gateway over the sizes, in MiB. */
    peakRssMiB: number;
    /** Largest {@linkcode MemoryAtSize.peakRssAtC64MiB}, in MiB. */
    peakRssAtC64MiB?: number;
  };
  baselinePeakRssMiB: number;
  /** Live updates across two instances (scripts/bench/events.ts); absent when not measured. */
  events?: EventsResult;
  /** Why live updates were not measured, when they were not. */
  eventsSkipped?: string;
  /** The floors, measured before seeding (absent in runs older than 2026-11-29). */
  floors?: FloorCell[];
  /** One worker against one per core (absent in runs older than 2026-11-30). */
  cores?: CoresCell[];
  /** Node's version for the Express apps, or why they did not run. */
  express?: { node: string } | { why: string };
}
