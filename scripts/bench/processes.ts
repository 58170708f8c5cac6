/**
 * The two server processes of a run, the real gateway (`main.ts`) and the
 * baseline (`scripts/bench/baseline.ts`), each started on a free port
 * (scripts/server_process.ts), and the gateway's peak resident memory.
 *
 * @module
 */
import { startArgs } from "../start_command.ts";
import { RUNTIME_FLAGS } from "../../server/launch.ts";
import { memoryOf, type ServerProcess, startProcess } from "../server_process.ts";
import type { StoreName } from "../../stores/types.ts";
import { ROOT } from "./stores.ts";

/** The gateway as `deno task start` runs it. */
export const GATEWAY_ARGS = startArgs();

/**
 * How the benchmark's own servers resolve their packages: from the lock the
 * benchmark runs on, frozen. Unlocked, a peer dependency resolves to the
 * newest release (graphql 17 for graphql-jit, 2026-11-30), which is not what
 * the gateway runs, and is fetched by a child that has no registry settings.
 */
export const LOCKED = [`--lock=${ROOT}deno.dev.lock`, "--frozen"] as const;

/** The baseline server for `stores`. */
export function baselineArgs(stores: readonly StoreName[]): string[] {
  return [
    "run",
    ...LOCKED,
    "--allow-all",
    ...RUNTIME_FLAGS,
    `${ROOT}scripts/bench/baseline.ts`,
    stores.join(","),
  ];
}

/** The benchmark keeps only this much of a server's output (it runs for many minutes). */
export const KEEP_OUTPUT = 16_384;

/** Starts `deno <args>` with exactly `env` in `cwd` (see {@linkcode startProcess}). */
export function startServer(
  args: string[],
  env: Record<string, string>,
  cwd: string,
): Promise<ServerProcess> {
  return startProcess({ args, env, cwd, keepOutput: KEEP_OUTPUT });
}

/**
 * Resets a process's VmHWM to its current VmRSS (`echo 5 > /proc/<pid>/clear_refs`,
 * Linux 4.0+); false where that is not allowed.
 */
export function resetPeak(pid: number): boolean {
  try {
    Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * The peak resident memory of a process over a span: VmHWM reset at the
 * start when the kernel allows it (exact), else the largest VmRSS a
 * {@linkcode RssSampler} saw (sampled).
 */
export class PeakMeter {
  #exact = false;

  constructor(readonly sampler: RssSampler) {}

  /** Starts a span. */
  start(): void {
    this.sampler.takeMax();
    this.#exact = resetPeak(this.sampler.pid);
  }

  /** The peak in MiB since {@linkcode start}, rounded to 0.1. */
  stop(): number {
    const sampled = this.sampler.takeMax();
    const hwm = this.#exact ? memoryOf(this.sampler.pid)?.peakMiB ?? 0 : 0;
    return Math.round(Math.max(sampled, hwm) * 10) / 10;
  }
}

/** Samples a process's VmRSS every `everyMs` and remembers the largest value since the last reset. */
export class RssSampler {
  #max = 0;
  #timer: ReturnType<typeof setInterval>;

  constructor(readonly pid: number, everyMs = 100) {
    this.#timer = setInterval(() => this.#sample(), everyMs);
  }

  #sample(): void {
    const m = memoryOf(this.pid);
    if (m) this.#max = Math.max(this.#max, m.rssMiB);
  }

  /** The largest VmRSS in MiB since the last call, then starts over. */
  takeMax(): number {
    this.#sample();
    const max = this.#max;
    this.#max = 0;
    return max;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
