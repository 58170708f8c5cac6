/**
 * Command-line flags of `deno task bench`, parsed with `node:util`'s
 * `parseArgs` and validated into {@linkcode BenchOptions}.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { STORE_NAMES, type StoreName } from "../../stores/types.ts";

/** Everything a run is told from the command line. */
export interface BenchOptions {
  /** Stores to measure; undefined means SQLite plus every configured store. */
  stores?: StoreName[];
  sizes: number[];
  concurrencies: number[];
  /** Seconds measured per cell. */
  duration: number;
  /** Seconds of discarded load before each cell. */
  warmup: number;
  /** Words per `addMany` call while seeding. */
  seedBatch: number;
  /** `addMany` calls in flight while seeding one store. */
  seedParallel: number;
  /** Restore the seeded matrix servers afterwards (`matrix down --wipe` then `up`). */
  wipeAfter: boolean;
  /** Start the measured matrix servers on empty data first (the default), so every size step is exact. */
  wipeBefore: boolean;
  /** Directory of results.json, results.md and chart.svg. */
  out: string;
  /** Live updates: writes timed from B to a subscriber on A; 0 skips the measurement. */
  eventWrites: number;
  /** Live updates: SSE subscriptions held open on one instance for its memory. */
  eventSubscribers: number;
  help: boolean;
}

/** The usage text printed by `--help` and after a bad flag. */
export const USAGE = `usage: deno task bench [options]
  --stores LIST            comma-separated stores (default: SQLITE and every configured store);
                           every one must have addMany (the bulk path): the run refuses otherwise
  --sizes LIST             words per store, ascending (default: 1000,10000,100000,1000000)
  --concurrency LIST       connections of the first page, its baseline and addWord (default:
                           1,16,64); the cursor page runs at 16, the rare search at 1 and 16, the
                           mixed memory load at 64
  --duration SECONDS       measured seconds per cell (default: 3)
  --warmup SECONDS         discarded seconds before each cell (default: 1)
  --seed-batch N           words per addMany call while seeding (default: 2000)
  --seed-parallel N        addMany calls in flight while seeding a store (default: 4)
  --out DIR                where results go (default: bench/results)
  --event-writes N         live updates: adds timed from instance B to a subscriber on A, both
                           with EVENTS_URL on the matrix Redis (default: 200; 0 skips it)
  --event-subscribers N    live updates: SSE subscriptions held open on A (default: 1000)
  --wipe-before            first restore the measured matrix servers with
                           \`deno task matrix down --wipe <service>\` then \`up <service>\`, so every
                           store starts empty (default)
  --no-wipe-before         keep what the stores hold (counted by cursor pages; the checks then
                           look at this run's words only)
  --wipe-after             afterwards, restore every seeded matrix server the same way (default)
  --no-wipe-after          leave the seeded words in place
  --help`;

/** A flag that does not parse; the message says which and why. */
export class ArgsError extends Error {
  override name = "ArgsError";
}

/** Parses `args` (e.g. `Deno.args`); throws {@linkcode ArgsError}. */
export function parseBenchArgs(args: string[]): BenchOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      allowNegative: true,
      options: {
        stores: { type: "string" },
        sizes: { type: "string", default: "1000,10000,100000,1000000" },
        concurrency: { type: "string", default: "1,16,64" },
        duration: { type: "string", default: "3" },
        warmup: { type: "string", default: "1" },
        "seed-batch": { type: "string", default: "2000" },
        "seed-parallel": { type: "string", default: "4" },
        out: { type: "string", default: "bench/results" },
        "event-writes": { type: "string", default: "200" },
        "event-subscribers": { type: "string", default: "1000" },
        "wipe-after": { type: "boolean", default: true },
        "wipe-before": { type: "boolean", default: true },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (e) {
    throw new ArgsError((e as Error).message);
  }
  const sizes = list("--sizes", values.sizes, 1, 10_000_000);
  if (sizes.some((s, i) => i > 0 && s <= sizes[i - 1])) {
    throw new ArgsError("--sizes must be ascending (a store is only ever seeded upwards)");
  }
  return {
    stores: values.stores === undefined ? undefined : storeList(values.stores),
    sizes,
    concurrencies: list("--concurrency", values.concurrency, 1, 1024),
    duration: number("--duration", values.duration, 1, 600),
    warmup: number("--warmup", values.warmup, 0, 60),
    seedBatch: whole("--seed-batch", values["seed-batch"], 1, 100_000),
    seedParallel: whole("--seed-parallel", values["seed-parallel"], 1, 64),
    wipeAfter: values["wipe-after"],
    wipeBefore: values["wipe-before"],
    out: values.out,
    eventWrites: whole("--event-writes", values["event-writes"], 0, 100_000),
    eventSubscribers: whole("--event-subscribers", values["event-subscribers"], 1, 100_000),
    help: values.help,
  };
}

function storeList(raw: string): StoreName[] {
  const names = raw.split(",").map((s) => s.trim().toUpperCase()).filter(Boolean);
  if (names.length === 0) throw new ArgsError("--stores names no store");
  for (const n of names) {
    if (!(STORE_NAMES as readonly string[]).includes(n)) {
      throw new ArgsError(`--stores: unknown store ${n} (one of ${STORE_NAMES.join(", ")})`);
    }
  }
  return [...new Set(names)] as StoreName[];
}

function list(flag: string, raw: string, min: number, max: number): number[] {
  const parts = raw.split(",").map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) throw new ArgsError(`${flag} is empty`);
  return parts.map((p) => whole(flag, p.replaceAll("_", ""), min, max));
}

function whole(flag: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ArgsError(`${flag} takes whole numbers from ${min} to ${max}, got "${raw}"`);
  }
  return Number(raw);
}

function number(flag: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
    throw new ArgsError(`${flag} takes a number from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}
