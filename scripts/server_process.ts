/**
 * A server process on a free port, as the benchmark and the tests start the
 * gateway (and the benchmark its baseline): `deno <args>` spawned with exactly
 * the given environment, ready once it prints its "Listening on" line, and
 * stopped with a signal (SIGKILL after a grace period). Also what `/proc` and
 * the gateway's `/readyz` tell about it.
 *
 * @module
 */
import type { StoreName } from "../stores/types.ts";

/** A started server process. */
export interface ServerProcess {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /**
   * The process that serves: the one spawned, or its only child when the
   * spawned one is a launcher (`deno task start` runs server/launch.ts,
   * which runs `main.ts`). Memory, sockets and CPU are measured on it.
   */
  readonly pid: number;
  /** What it printed so far (only the last {@linkcode StartOptions.keepOutput} characters when set). */
  output(): string;
  /**
   * Sends `signal` (SIGTERM by default), then SIGKILL if it still runs after
   * `killAfterMs`; resolves with its exit status once its output is drained.
   */
  stop(signal?: Deno.Signal, killAfterMs?: number): Promise<Deno.CommandStatus>;
}

/** How to start a {@linkcode ServerProcess}. */
export interface StartOptions {
  /** Arguments to the command. */
  args: string[];
  /** The program to run (default: this `deno`, `Deno.execPath()`). */
  command?: string;
  /** The whole environment (nothing is inherited). */
  env: Record<string, string>;
  cwd: string;
  /** How long to wait for the listening line (default 90 s). */
  startMs?: number;
  /** Keep only the last this many characters of output (default: all of it). */
  keepOutput?: number;
}

const LISTENING = /Listening on http:\/\/(?:localhost|127\.0\.0\.1):(\d+)\//;
/** Characters of output an error message quotes. */
const ERROR_OUTPUT = 3000;
/** Default grace between the stop signal and SIGKILL. */
const KILL_AFTER_MS = 10_000;

/**
 * Spawns `deno <args>` (or `command <args>`) and waits for its listening line; fails at once, with
 * its output, if it exits first, and kills it if the line does not come
 * within `startMs`.
 */
export async function startProcess(options: StartOptions): Promise<ServerProcess> {
  const { args, env, cwd, startMs = 90_000, keepOutput = Infinity } = options;
  const child = new Deno.Command(options.command ?? Deno.execPath(), {
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
      text += decoder.decode(chunk, { stream: true });
      if (text.length > keepOutput) text = text.slice(-keepOutput);
    }
  };
  const drained = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited: Deno.CommandStatus | undefined;
  child.status.then((s) => exited = s);
  const deadline = Date.now() + startMs;
  let port: string | undefined;
  while (!(port = text.match(LISTENING)?.[1])) {
    if (exited) {
      await drained;
      throw new Error(
        `${args.at(-1)} exited with code ${exited.code} before listening:\n${
          text.slice(-ERROR_OUTPUT)
        }`,
      );
    }
    if (Date.now() > deadline) {
      killAll([...childrenOf(child.pid), child.pid]);
      await child.status;
      throw new Error(
        `${args.at(-1)} did not listen within ${startMs / 1000} s:\n${text.slice(-ERROR_OUTPUT)}`,
      );
    }
    await sleep(50);
  }
  const children = childrenOf(child.pid);
  const pid = children.length === 1 ? children[0] : child.pid;
  return {
    url: `http://127.0.0.1:${port}`,
    pid,
    output: () => text,
    async stop(signal: Deno.Signal = "SIGTERM", killAfterMs = KILL_AFTER_MS) {
      if (!exited) {
        try {
          // A launcher cannot pass SIGKILL on: its child gets it too.
          if (signal === "SIGKILL") killAll([pid, child.pid]);
          else child.kill(signal);
        } catch {
          // exited meanwhile
        }
      }
      const timer = setTimeout(() => !exited && killAll([pid, child.pid]), killAfterMs);
      const status = await child.status;
      clearTimeout(timer);
      await drained;
      return status;
    },
  };
}

/** The pids of `pid`'s child processes, whichever thread spawned them (Linux `/proc`); empty when unknown. */
export function childrenOf(pid: number): number[] {
  const pids: number[] = [];
  try {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      const text = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/children`);
      pids.push(...text.trim().split(/\s+/).filter(Boolean).map(Number));
    }
  } catch {
    // exited, or no /proc
  }
  return pids;
}

function killAll(pids: number[]): void {
  for (const pid of new Set(pids)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // exited meanwhile
    }
  }
}

/**
 * Polls the gateway's `/readyz` every 500 ms until every store in `stores`
 * is healthy or `ms` passed; resolves with the ones still unhealthy and why
 * (empty when all are healthy).
 */
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

/** Resident memory of a process in MiB: current (VmRSS) and peak (VmHWM); undefined once it has exited. */
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

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** CPU seconds (user + system) `pid` has used so far, from `/proc/<pid>/stat`; NaN once it has exited. */
export function cpuSecondsOf(pid: number | "self"): number {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return NaN;
  }
  // Fields after the command (which may hold spaces), from the closing parenthesis on.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ; // utime, stime
}

/**
 * The whole machine's CPU seconds so far (all CPUs), from `/proc/stat`:
 * `busy` (neither idle nor iowait) and `total`.
 */
export function machineCpuSeconds(): { busy: number; total: number } {
  // user nice system idle iowait irq softirq steal (guest time is inside user already)
  const cpu = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1, 9)
    .map(Number);
  const total = cpu.reduce((a, b) => a + b, 0);
  return { busy: (total - cpu[3] - cpu[4]) / USER_HZ, total: total / USER_HZ };
}

/** A free TCP port on 127.0.0.1, for a server that needs a fixed one (workers share it). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
