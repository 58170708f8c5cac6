/**
 * The machine a run happened on, stated with its results: CPU model and
 * cores, memory, OS, Deno and V8 versions, load average and the commit.
 *
 * @module
 */
import type { Machine } from "./types.ts";
import { ROOT } from "./stores.ts";

/** Describes this machine now. */
export async function describeMachine(): Promise<Machine> {
  let cpuModel = "unknown";
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    cpuModel = info.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? cpuModel;
  } catch {
    // not Linux
  }
  return {
    cpuModel,
    cores: navigator.hardwareConcurrency,
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30 * 10) / 10,
    os: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    loadAverage: Deno.loadavg().map((n) => Math.round(n * 100) / 100),
    commit: await commit(),
  };
}

async function commit(): Promise<string> {
  const git = async (...args: string[]) => {
    const out = await new Deno.Command("git", { args, cwd: ROOT, stdout: "piped", stderr: "null" })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  };
  try {
    const head = await git("rev-parse", "--short", "HEAD");
    if (!head) return "unknown";
    const dirty = await git("status", "--porcelain");
    return dirty ? `${head}+dirty` : head;
  } catch {
    return "unknown";
  }
}

/** One line for the console and the Markdown table's heading. */
export function machineLine(m: Machine): string {
  return `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, Deno ${m.deno} (V8 ${m.v8}), ` +
    `load ${m.loadAverage.join("/")} at start, commit ${m.commit}`;
}
