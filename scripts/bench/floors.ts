/**
 * Measures the floors (scripts/bench/floor_server.ts) once per run: 100 fixed
 * words from a bare handler, plain graphql-yoga and Yoga with the JIT, at
 * each of the run's concurrencies, before any store is seeded.
 *
 * @module
 */
import type { BenchOptions } from "./args.ts";
import { type Floor, floorTarget } from "./cells.ts";
import { FIRST_WARMUP_SECONDS, measure } from "./load.ts";
import { LOCKED, startServer } from "./processes.ts";
import { RUNTIME_FLAGS } from "../../server/launch.ts";
import { ROOT } from "./stores.ts";
import type { FloorCell } from "./types.ts";

/** The floors in the order they are measured. */
export const FLOORS: readonly Floor[] = ["bare", "yoga", "jit"];

/** What each floor is, for the tables. */
export const FLOOR_LABELS: Record<Floor, string> = {
  bare: "bare Deno.serve handler",
  yoga: "graphql-yoga, defaults",
  jit: "graphql-yoga + graphql-jit",
};

/** Starts the floor server in `cwd`, measures every floor, stops it. */
export async function measureFloors(
  cwd: string,
  opts: Pick<BenchOptions, "concurrencies" | "duration" | "warmup">,
): Promise<FloorCell[]> {
  const server = await startServer(
    [
      "run",
      ...LOCKED,
      "--allow-read",
      "--allow-net",
      "--allow-env",
      ...RUNTIME_FLAGS,
      `${ROOT}scripts/bench/floor_server.ts`,
    ],
    { PATH: Deno.env.get("PATH") ?? "", NO_COLOR: "1" },
    cwd,
  );
  console.log(`\n===== floors: 100 fixed words, no store =====`);
  const out: FloorCell[] = [];
  try {
    for (const floor of FLOORS) {
      for (const [i, concurrency] of opts.concurrencies.entries()) {
        const r = await measure(floorTarget(floor, server.url), {
          connections: concurrency,
          duration: opts.duration,
          warmup: i === 0 ? Math.max(opts.warmup, FIRST_WARMUP_SECONDS) : opts.warmup,
        });
        out.push({ floor, concurrency, ...r });
        console.log(
          `  ${FLOOR_LABELS[floor].padEnd(28)} c${String(concurrency).padEnd(3)} ${
            r.rps.toFixed(0).padStart(6)
          } req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms` +
            (r.failures ? `  ${r.failures} FAILED` : ""),
        );
      }
    }
  } finally {
    await server.stop();
  }
  return out;
}
