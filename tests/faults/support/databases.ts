/**
 * Hurting one real database of the local matrix: SIGKILL, SIGSTOP and
 * SIGCONT to its whole process tree (the pid the matrix recorded in
 * `${root}/run/<service>.pid`, its descendants and its session, e.g.
 * RabbitMQ's wrapper, epmd and beam, or Elasticsearch's launcher and JVM),
 * and restarting it with `scripts/matrix.ts up <service>`, noting the moment
 * the runner saw it ready.
 *
 * @module
 */
import { matrixDirs } from "../../../scripts/matrix/paths.ts";
import { running, treeOf } from "../../../scripts/matrix/ps.ts";
import { SERVICE_OF } from "../../support/matrix.ts";
import type { NetworkStoreName } from "../../../stores/types.ts";

const MATRIX = new URL("../../../scripts/matrix.ts", import.meta.url).pathname;
const ROOT = new URL("../../../", import.meta.url).pathname;

/**
 * Closes every inherited descriptor above 2, then runs the command: a server
 * started by `matrix up` must not inherit, say, the lock file descriptor of
 * a `flock` the suite runs under, or it would hold that lock for good.
 */
const CLOSE_FDS = 'for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done; ' +
  'exec "$@"';

/**
 * A killed database restarts under SCHED_IDLE (`chrt --idle 0`) until it is
 * ready: it gets only CPU time nobody else wants, and a waking gateway or
 * healthy database thread preempts it at once. The matrix shares two cores
 * with the gateway and the other databases; a server starting (an Erlang VM
 * and its `rabbitmqctl` probes, a JVM: seconds of one to two cores) would
 * otherwise sit in front of their threads for a scheduler slice at every
 * wake-up, which on a real deployment runs on other hosts. Niceness 10 was
 * not enough: a RabbitMQ restart still tripled MongoDB's and doubled
 * Redis's p99.
 */
const RESTART_SCHEDULING = ["chrt", "--idle", "0"];

/** `scripts/matrix.ts <args>` with no inherited descriptors, piped output; `idle`: under SCHED_IDLE. */
function matrixCommand(args: string[], idle = false): Deno.Command {
  const run = [Deno.execPath(), "run", "--allow-all", MATRIX, ...args];
  const command = idle ? [...RESTART_SCHEDULING, ...run] : run;
  return new Deno.Command("bash", {
    args: ["-c", CLOSE_FDS, "bash", ...command],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** The matrix service behind `store`. */
export function serviceOf(store: NetworkStoreName): string {
  return SERVICE_OF[store];
}

/** Every live pid of the server behind `store`; throws when the matrix has no running pid. */
export async function databaseTree(store: NetworkStoreName): Promise<number[]> {
  const file = `${matrixDirs().run}/${serviceOf(store)}.pid`;
  const pid = Number((await Deno.readTextFile(file)).trim());
  if (!(pid > 0) || !running(pid)) throw new Error(`${serviceOf(store)} is not running (${file})`);
  return treeOf(pid);
}

function signalAll(pids: readonly number[], signal: Deno.Signal): void {
  for (const pid of pids) {
    try {
      Deno.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** SIGKILLs the whole tree at once and waits (up to 10 s) until none of it runs. */
export async function killDatabase(store: NetworkStoreName): Promise<number[]> {
  const pids = await databaseTree(store);
  signalAll(pids, "SIGKILL");
  for (let i = 0; i < 50 && pids.some(running); i++) await sleep(200);
  if (pids.some(running)) throw new Error(`${serviceOf(store)} survived SIGKILL`);
  return pids;
}

/** SIGSTOPs the whole tree; returns the pids to resume. */
export async function pauseDatabase(store: NetworkStoreName): Promise<number[]> {
  const pids = await databaseTree(store);
  signalAll(pids, "SIGSTOP");
  return pids;
}

/** SIGCONTs the pids {@linkcode pauseDatabase} stopped. */
export function resumeDatabase(pids: readonly number[]): void {
  signalAll(pids, "SIGCONT");
}

/**
 * `scripts/matrix.ts up <service>` under SCHED_IDLE (see
 * {@linkcode RESTART_SCHEDULING}): starts the database and waits until it is
 * ready, then puts every thread of it back to the normal policy. Resolves with `readyAt`, the `Date.now()` at which the runner
 * printed its "ready" line (or the runner's exit, for a server it found running).
 */
export async function restartDatabase(
  store: NetworkStoreName,
): Promise<{ readyAt: number; output: string }> {
  const service = serviceOf(store);
  const child = matrixCommand(["up", service], true).spawn();
  let output = "";
  let readyAt: number | undefined;
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      output += decoder.decode(chunk, { stream: true });
      if (readyAt === undefined && output.includes(`${service}: ready in`)) readyAt = Date.now();
    }
  };
  const [status] = await Promise.all([child.status, pump(child.stdout), pump(child.stderr)]);
  if (!status.success) throw new Error(`matrix up ${service} failed:\n${output.slice(-3000)}`);
  await unidle(await databaseTree(store));
  return { readyAt: readyAt ?? Date.now(), output };
}

/**
 * Restarts every matrix server on empty data (`matrix down --wipe`, then
 * `matrix up`), as the benchmark's `--wipe-after` does: the suite writes tens
 * of thousands of words per store, which would slow every later search on
 * the scan-based stores and every reconnect of the RabbitMQ projection.
 */
export async function restoreMatrix(): Promise<void> {
  for (const args of [["down", "--wipe"], ["up"]]) {
    const out = await matrixCommand(args).output();
    if (!out.success) {
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      throw new Error(`matrix ${args.join(" ")} failed:\n${text.slice(-3000)}`);
    }
  }
}

/** SCHED_OTHER for every thread of `pids` (the policy is per thread on Linux). */
async function unidle(pids: readonly number[]): Promise<void> {
  // A process that ended meanwhile makes chrt fail for it alone.
  await Promise.all(pids.map((pid) =>
    new Deno.Command("chrt", {
      args: ["--all-tasks", "--other", "--pid", "0", String(pid)],
      stdout: "null",
      stderr: "null",
    }).output()
  ));
}

/** Promise-based sleep. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
