/**
 * The two server processes of a run, the real gateway (`main.ts`) and the
 * baseline (`scripts/bench/baseline.ts`), each started on a free port
 * (scripts/server_process.ts), and the gateway's peak resident memory.
 *
 * @module
 */
import { startArgs } from "../start_command.ts";
import { memoryOf, type ServerProcess, startProcess } from "../server_process.ts";
import type { StoreName } from "../../stores/types.ts";
import { ROOT } from "./stores.ts";

/** The gateway as `deno task start` runs it. */
export const GATEWAY_ARGS = startArgs();

/** The baseline server for `stores`. */
export function baselineArgs(stores: readonly StoreName[]): string[] {
  return ["run", "--allow-all", `${ROOT}scripts/bench/baseline.ts`, stores.join(",")];
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
