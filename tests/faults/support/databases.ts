/**
 * Hurting one real server of the local matrix, named by its matrix service
 * (`postgresql`, or a replica such as `postgresql-standby`): SIGKILL, SIGSTOP
 * and SIGCONT to its whole process tree (the pid the matrix recorded in
 * `${root}/run/<service>.pid`, its descendants and its session, e.g.
 * RabbitMQ's wrapper, epmd and beam, or Elasticsearch's launcher and JVM),
 * and restarting it with `scripts/matrix.ts up <service>`, noting the moment
 * the runner saw it ready.
 *
 * @module
 */
import { dependentsOf, matrixDirs } from "../../../scripts/matrix/paths.ts";
import { running, treeOf } from "../../../scripts/matrix/ps.ts";
import { SERVICE_OF } from "../../support/matrix.ts";
import type { NetworkStoreName } from "../../../stores/types.ts";
import type { FaultRole } from "./judge.ts";

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

/** What a scenario hurts: one matrix server of `store`, in `role`. */
export interface Target {
  store: NetworkStoreName;
  /** The matrix service: "postgresql", "postgresql-standby". */
  service: string;
  role: FaultRole;
}

/**
 * The store's own server: its database, or its primary where it has read
 * replicas (then its reads must keep being served while it is hurt).
 */
export function primaryTarget(store: NetworkStoreName, hasReplicas: boolean): Target {
  return { store, service: serviceOf(store), role: hasReplicas ? "primary" : "database" };
}

/** The store's first read replica (the matrix's cluster topology has one per store). */
export function replicaTarget(store: NetworkStoreName): Target {
  const service = replicaServicesOf(store)[0];
  if (!service) throw new Error(`${store} has no replica in the matrix`);
  return { store, service, role: "replica" };
}

/** "postgresql-standby (POSTGRESQL replica)", for a scenario's name. */
export function describeTarget(t: Target): string {
  return `${t.service} (${t.store}${t.role === "database" ? "" : ` ${t.role}`})`;
}

/** The matrix service behind `store` (its primary, where it has replicas). */
export function serviceOf(store: NetworkStoreName): string {
  return SERVICE_OF[store];
}

/** The matrix services of `store`'s read replicas in the cluster topology (`postgresql-standby`). */
export function replicaServicesOf(store: NetworkStoreName): string[] {
  return dependentsOf(SERVICE_OF[store]);
}

/** The pid the matrix recorded for `service`, when that process runs. */
async function runningPid(service: string): Promise<number | undefined> {
  const file = `${matrixDirs().run}/${service}.pid`;
  const pid = Number((await Deno.readTextFile(file).catch(() => "")).trim());
  return pid > 0 && running(pid) ? pid : undefined;
}

/** Whether the matrix server `service` runs (by its recorded pid). */
export async function serviceRunning(service: string): Promise<boolean> {
  return (await runningPid(service)) !== undefined;
}

/** Every live pid of the matrix server `service`; throws when the matrix has no running pid. */
export async function serviceTree(service: string): Promise<number[]> {
  const pid = await runningPid(service);
  if (pid === undefined) throw new Error(`${service} is not running (no live pid recorded)`);
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

/** SIGKILLs the whole tree of `service` at once and waits (up to 10 s) until none of it runs. */
export async function killService(service: string): Promise<number[]> {
  const pids = await serviceTree(service);
  signalAll(pids, "SIGKILL");
  for (let i = 0; i < 50 && pids.some(running); i++) await sleep(200);
  if (pids.some(running)) throw new Error(`${service} survived SIGKILL`);
  return pids;
}

/** SIGSTOPs the whole tree of `service`; returns the pids to resume. */
export async function pauseService(service: string): Promise<number[]> {
  const pids = await serviceTree(service);
  signalAll(pids, "SIGSTOP");
  return pids;
}

/** SIGCONTs the pids {@linkcode pauseService} stopped. */
export function resumeDatabase(pids: readonly number[]): void {
  signalAll(pids, "SIGCONT");
}

/**
 * `scripts/matrix.ts up <service>` under SCHED_IDLE (see
 * {@linkcode RESTART_SCHEDULING}): starts the server and waits until it is
 * ready, then puts every thread of it back to the normal policy. Resolves
 * with `readyAt`, the `Date.now()` at which the runner printed its "ready"
 * line (or the runner's exit, for a server it found running).
 *
 * `joined`, polled every 250 ms while it starts, tells when the server took
 * its part in serving before the runner calls it ready; it is put back to the
 * normal policy then. An Elasticsearch node joins its cluster and is handed a
 * replica to recover seconds before its own health check passes, and from
 * then on every write waits for it too: under SCHED_IDLE, on a machine busy
 * with the load, it got almost no CPU, and writes took 0.8–1.1 s here (and
 * more than the 2 s request timeout in a CI run) until it was called ready.
 */
export async function restartService(
  service: string,
  joined?: () => Promise<boolean>,
): Promise<{ readyAt: number; output: string }> {
  const child = matrixCommand(["up", service], true).spawn();
  let output = "";
  let readyAt: number | undefined;
  let done = false;
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      output += decoder.decode(chunk, { stream: true });
      if (readyAt === undefined && output.includes(`${service}: ready in`)) readyAt = Date.now();
    }
  };
  const watch = async () => {
    while (joined && !done) {
      if (await joined().catch(() => false)) return await unidle(await serviceTree(service));
      await sleep(250);
    }
  };
  const watching = watch();
  const [status] = await Promise.all([child.status, pump(child.stdout), pump(child.stderr)])
    .finally(() => done = true);
  await watching;
  if (!status.success) throw new Error(`matrix up ${service} failed:\n${output.slice(-3000)}`);
  await unidle(await serviceTree(service));
  return { readyAt: readyAt ?? Date.now(), output };
}

/**
 * Starts (`matrix up <service>`, one at a time, in the order given: a
 * primary before its replicas) every service of `services` that does not
 * run, e.g. after a scenario whose restart failed; restarts nothing that
 * runs. Returns the services it started.
 */
export async function startStopped(services: readonly string[]): Promise<string[]> {
  const started: string[] = [];
  for (const service of services) {
    if (await serviceRunning(service)) continue;
    await restartService(service);
    started.push(service);
  }
  return started;
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
