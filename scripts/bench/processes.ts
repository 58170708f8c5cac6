/**
 * The two server processes of a run, the real gateway (`main.ts`) and the
 * baseline (`scripts/bench/baseline.ts`), each started on a free port, and
 * their resident memory read from `/proc/<pid>/status`.
 *
 * @module
 */
import { startArgs } from "../start_command.ts";
import type { StoreName } from "../../stores/types.ts";
import { ROOT } from "./stores.ts";

/** A started server process. */
export interface ServerProcess {
  readonly url: string;
  readonly pid: number;
  /** The last lines it printed (for error messages). */
  output(): string;
  /** SIGTERM, then SIGKILL after 10 s; resolves once it has exited. */
  stop(): Promise<void>;
}

/** The gateway as `deno task start` runs it. */
export const GATEWAY_ARGS = startArgs();

/** The baseline server for `stores`. */
export function baselineArgs(stores: readonly StoreName[]): string[] {
  return ["run", "--allow-all", `${ROOT}scripts/bench/baseline.ts`, stores.join(",")];
}

const LISTENING = /Listening on http:\/\/(?:localhost|127\.0\.0\.1):(\d+)\//;
const KEEP_OUTPUT = 16_384;

/** Spawns `deno <args>` with exactly `env` in `cwd` and waits for its listening line. */
export async function startProcess(
  args: string[],
  env: Record<string, string>,
  cwd: string,
  startMs = 90_000,
): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      text = (text + decoder.decode(chunk, { stream: true })).slice(-KEEP_OUTPUT);
    }
  };
  const drained = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited = false;
  child.status.then(() => (exited = true));
  const deadline = Date.now() + startMs;
  let port: string | undefined;
  while (!(port = text.match(LISTENING)?.[1])) {
    if (exited || Date.now() > deadline) {
      if (!exited) child.kill("SIGKILL");
      await child.status;
      throw new Error(`${args.at(-1)} did not start:\n${text.slice(-2000)}`);
    }
    await sleep(50);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    output: () => text.slice(-2000),
    async stop() {
      if (!exited) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => !exited && child.kill("SIGKILL"), 10_000);
        await child.status;
        clearTimeout(timer);
      }
      await drained;
    },
  };
}

/** Polls the gateway's `/readyz` until every store in `stores` is healthy; returns the unhealthy ones. */
export async function waitForStores(
  gatewayUrl: string,
  stores: readonly StoreName[],
  ms = 60_000,
): Promise<Map<StoreName, string>> {
  const deadline = Date.now() + ms;
  const unhealthy = new Map<StoreName, string>();
  for (;;) {
    unhealthy.clear();
    try {
      const res = await fetch(`${gatewayUrl}/readyz`);
      const body = await res.json() as {
        stores: { store: StoreName; healthy: boolean; message?: string }[];
      };
      for (const s of body.stores) {
        if (stores.includes(s.store) && !s.healthy) {
          unhealthy.set(s.store, s.message ?? "unhealthy");
        }
      }
    } catch (e) {
      for (const s of stores) unhealthy.set(s, `readyz failed: ${(e as Error).name}`);
    }
    if (unhealthy.size === 0 || Date.now() > deadline) return unhealthy;
    await sleep(500);
  }
}

/** Resident memory of a process in MiB: current (VmRSS) and peak (VmHWM). */
export function memoryOf(pid: number): { rssMiB: number; peakMiB: number } | undefined {
  let status: string;
  try {
    status = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch {
    return undefined;
  }
  return { rssMiB: kibField(status, "VmRSS") / 1024, peakMiB: kibField(status, "VmHWM") / 1024 };
}

/** The kB value of `field` in a `/proc/<pid>/status` text, 0 when absent. */
export function kibField(status: string, field: string): number {
  const m = status.match(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, "m"));
  return m ? Number(m[1]) : 0;
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

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
