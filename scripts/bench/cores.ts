/**
 * Every core (`WORKERS`): the gateway with one worker, then with one per
 * core, listing SQLite's first 100 words at each of {@linkcode CORES_CONCURRENCIES},
 * on the words the run seeded at its first size, while the databases are
 * still quiet (measured after the last size instead, 2026-11-29, one worker
 * served 883 req/s at c64 on 1.09 cores, against 1,195 in that size's own
 * cell minutes earlier). Each process is started fresh on a fixed port
 * (workers share it), with the run's gateway environment; besides req/s it
 * records the process's peak RSS and how many cores it, the load generator
 * (this process) and the rest of the machine (the databases) used over the
 * measured seconds, since on a small host those set the ceiling.
 *
 * @module
 */
import { targetFor } from "./cells.ts";
import { FIRST_WARMUP_SECONDS, measure } from "./load.ts";
import { round2 } from "./stats.ts";
import { cpuSecondsOf, freePort, machineCpuSeconds } from "../server_process.ts";
import { GATEWAY_ARGS, PeakMeter, RssSampler, startServer } from "./processes.ts";
import type { CoresCell } from "./types.ts";

/** The concurrencies of the comparison; the target is at 64. */
export const CORES_CONCURRENCIES = [16, 64] as const;

/** Measures one worker and one per core (`cores`); `env` is the gateway's, without PORT or WORKERS. */
export async function measureCores(
  cwd: string,
  env: Record<string, string>,
  opts: { duration: number; warmup: number },
  cores = navigator.hardwareConcurrency,
): Promise<CoresCell[]> {
  console.log(`\n===== every core: SQLite words(limit: 100), 1 and ${cores} workers =====`);
  const out: CoresCell[] = [];
  for (const workers of cores > 1 ? [1, cores] : [1]) {
    const port = freePort();
    const server = await startServer(
      GATEWAY_ARGS,
      { ...env, PORT: String(port), WORKERS: String(workers) },
      cwd,
    );
    const sampler = new RssSampler(server.pid);
    const meter = new PeakMeter(sampler);
    try {
      const target = targetFor("gateway-words", "SQLITE", { gateway: server.url, baseline: "" });
      for (const [i, concurrency] of CORES_CONCURRENCIES.entries()) {
        const warmup = i === 0 ? Math.max(opts.warmup, FIRST_WARMUP_SECONDS) : opts.warmup;
        if (warmup > 0) {
          await measure(target, { connections: concurrency, duration: warmup, warmup: 0 });
        }
        meter.start();
        const [gateway0, load0, machine0, t0] = [
          cpuSecondsOf(server.pid),
          cpuSecondsOf("self"),
          machineCpuSeconds().busy,
          performance.now(),
        ];
        const r = await measure(target, {
          connections: concurrency,
          duration: opts.duration,
          warmup: 0,
        });
        const wall = (performance.now() - t0) / 1000;
        const gateway = cpuSecondsOf(server.pid) - gateway0;
        const load = cpuSecondsOf("self") - load0;
        const rest = Math.max(0, machineCpuSeconds().busy - machine0 - gateway - load);
        const cell: CoresCell = {
          workers,
          concurrency,
          ...r,
          peakRssMiB: meter.stop(),
          gatewayCores: round2(gateway / wall),
          loadCores: round2(load / wall),
          otherCores: round2(rest / wall),
        };
        out.push(cell);
        console.log(
          `  ${workers} worker(s) c${String(concurrency).padEnd(3)} ${
            r.rps.toFixed(0).padStart(6)
          } req/s  p99 ${
            r.p99.toFixed(2)
          } ms  RSS ${cell.peakRssMiB} MiB  cores: gateway ${cell.gatewayCores}, load ${cell.loadCores}, rest ${cell.otherCores}` +
            (r.failures ? `  ${r.failures} FAILED` : ""),
        );
      }
    } finally {
      sampler.stop();
      await server.stop();
    }
  }
  return out;
}
