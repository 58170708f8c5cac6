/**
 * What the matrix runner knows about one service: its module (imported
 * dynamically, so a missing or broken one becomes a FAILED row instead of
 * stopping the others), its recorded pid, whether it answers, its table row;
 * and `status`, which reports exactly that without starting anything.
 *
 * @module
 */
import { type MatrixDirs, matrixDirs, servicePaths, uidOf } from "./paths.ts";
import { listenerPid, refersTo, rssMiB, running, treeOf } from "./ps.ts";
import { maskUrl, type Row } from "./table.ts";
import { MATRIX, type MatrixPaths, type Service } from "./types.ts";

/** How long one `ready()` probe may take before it counts as "not ready". */
export const PROBE_TIMEOUT_MS = 10_000;

/** A service module as imported: the Service, or why it could not be loaded. */
export type Loaded = { name: string; svc: Service; error?: undefined } | {
  name: string;
  svc?: undefined;
  error: string;
};

const started = Date.now();

/** Progress line on stderr, prefixed with the seconds since the runner started. */
export function say(msg: string): void {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  console.error(`[${t}s] ${msg}`);
}

/** The first line of an error's message, shortened for a table cell. */
export function message(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0].slice(0, 160);
}

/** Services whose module is not `scripts/matrix/<name>.ts` (cluster nodes): name -> module, export. */
const MODULE_OF: Record<string, [module: string, exported: string]> = {
  "postgresql-standby": ["postgresql_standby", "default"],
  "mariadb-replica": ["mariadb_replica", "default"],
  "redis-replica": ["redis_replica", "default"],
  "cassandra-2": ["cassandra", "node2"],
  "cassandra-3": ["cassandra", "node3"],
  "elasticsearch-2": ["elasticsearch", "node2"],
  "elasticsearch-3": ["elasticsearch", "node3"],
  "rabbitmq-2": ["rabbitmq", "node2"],
  "rabbitmq-3": ["rabbitmq", "node3"],
};

/**
 * Imports `scripts/matrix/<name>.ts` (or the module {@linkcode MODULE_OF}
 * names) and checks that its default export (or the named one) looks like a Service.
 */
export async function load(name: string): Promise<Loaded> {
  try {
    const [module, exported] = MODULE_OF[name] ?? [name, "default"];
    const mod = await import(new URL(`./${module}.ts`, import.meta.url).href);
    const svc = mod[exported] as Service | undefined;
    for (const f of ["install", "start", "ready", "env"] as const) {
      if (typeof svc?.[f] !== "function") throw new Error(`default export has no ${f}()`);
    }
    return { name, svc: svc! };
  } catch (e) {
    return { name, error: `import: ${message(e)}` };
  }
}

/** Where the pid of `name` is recorded: `${root}/run/<name>.pid`. */
export function pidFile(dirs: MatrixDirs, name: string): string {
  return `${dirs.run}/${name}.pid`;
}

/** The recorded pid of `name` when that process still runs as the matrix user. */
export async function recordedPid(dirs: MatrixDirs, name: string): Promise<number | undefined> {
  try {
    const pid = Number((await Deno.readTextFile(pidFile(dirs, name))).trim());
    if (!(pid > 0 && running(pid))) return undefined;
    // A recycled pid of someone else's process is not our server.
    const owner = (await Deno.stat(`/proc/${pid}`)).uid;
    return owner === (await uidOf(dirs.user)) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** One `ready()` call that never throws and gives up after {@linkcode PROBE_TIMEOUT_MS}. */
export async function probe(svc: Service, paths: MatrixPaths): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      svc.ready(paths).then((v) => v === true),
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), PROBE_TIMEOUT_MS)),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** The service's main URL (its `<STORE>_URL`) with the password masked, for the table. */
export function mainUrl(svc: Service | undefined, paths: MatrixPaths): string {
  try {
    const env = svc?.env(paths) ?? {};
    const key = Object.keys(env).find((k) => k.endsWith("_URL") && !k.startsWith("MATRIX_")) ??
      Object.keys(env)[0];
    return key ? maskUrl(env[key]) : "-";
  } catch {
    return "-";
  }
}

/** The table row of a service before anything is known of its state. */
export function baseRow(l: Loaded, paths: MatrixPaths): Row {
  return {
    service: l.name,
    store: l.svc?.store ?? "?",
    version: l.svc?.version ?? "?",
    url: mainUrl(l.svc, paths),
    state: l.error ? `FAILED: ${l.error}` : "stopped",
  };
}

/**
 * A server of this matrix root that listens on the service's port although no
 * pid file names it (started by hand). Listeners that do not work in or name
 * `${root}` (another root, a system server) are never taken for ours.
 */
export function unmanagedPid(root: string, name: string): number | undefined {
  const port = (MATRIX.ports as Record<string, number>)[name];
  const pid = port === undefined ? undefined : listenerPid(port);
  return pid !== undefined && treeOf(pid).some((p) => refersTo(p, root)) ? pid : undefined;
}

/** `status`: the state of `names` without starting anything. */
export async function status(names: readonly string[]): Promise<Row[]> {
  const dirs = matrixDirs();
  const loaded = await Promise.all(names.map(load));
  return await Promise.all(loaded.map(async (l) => {
    const paths = servicePaths(dirs, l.name);
    const row = baseRow(l, paths);
    const pid = await recordedPid(dirs, l.name) ?? unmanagedPid(dirs.root, l.name);
    if (pid === undefined) return row;
    const managed = (await recordedPid(dirs, l.name)) === pid;
    const ok = l.svc ? await probe(l.svc, paths) : false;
    const state = (ok ? "ready" : "running-not-ready") + (managed ? "" : ` (unmanaged pid ${pid})`);
    return { ...row, state, rssMiB: rssMiB(treeOf(pid)) };
  }));
}
