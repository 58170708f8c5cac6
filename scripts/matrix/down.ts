/**
 * `deno task matrix down`: stops servers by their recorded pid (the whole
 * process tree, SIGKILL after a grace period), removes their pid files and
 * env lines, and optionally wipes their data (never the cache).
 *
 * @module
 */
import { clusterEnv, inCluster, nodesOf } from "./cluster_env.ts";
import { updateEnvFile } from "./env_file.ts";
import { withLock } from "./lock.ts";
import {
  clusterOf,
  dependentsOf,
  type MatrixDirs,
  matrixDirs,
  servicePaths,
  uidOf,
} from "./paths.ts";
import { currentUser } from "./proc.ts";
import { processesOf, refersTo, rssMiB, stopTree, treeOf } from "./ps.ts";
import { baseRow, load, type Loaded, message, pidFile, recordedPid, say } from "./state.ts";
import type { Row } from "./table.ts";

/** Signal that makes a server shut down quickly but cleanly (PostgreSQL's SIGTERM waits for clients). */
const STOP_SIGNAL: Record<string, Deno.Signal> = {
  postgresql: "SIGINT",
  "postgresql-standby": "SIGINT",
};
const STOP_GRACE_MS = 30_000;
/**
 * Helpers a server leaves in their own session (the epmd all RabbitMQ nodes
 * share), stopped once no node of the cluster runs.
 */
const COMPANIONS: Record<string, string[]> = { rabbitmq: ["epmd"] };
/** Longest a `beforeStop` may take; the server is stopped anyway after it. */
const BEFORE_STOP_MS = 60_000;

async function stopCompanions(dirs: MatrixDirs, name: string): Promise<void> {
  const comms = COMPANIONS[name];
  if (!comms || dirs.user === currentUser()) return;
  for (const node of nodesOf(name)) if ((await recordedPid(dirs, node)) !== undefined) return;
  const uid = await uidOf(dirs.user);
  if (uid === undefined) return;
  for (const pid of processesOf(uid).filter((p) => refersTo(p, dirs.root))) {
    const comm = await Deno.readTextFile(`/proc/${pid}/comm`).catch(() => "");
    if (comms.includes(comm.trim())) await stopTree(pid, "SIGTERM", 5_000);
  }
}

async function downOne(l: Loaded, dirs: MatrixDirs): Promise<Row> {
  const paths = servicePaths(dirs, l.name);
  const row = { ...baseRow(l, paths), state: "not running" };
  const pid = await recordedPid(dirs, l.name);
  if (pid === undefined) {
    await Deno.remove(pidFile(dirs, l.name)).catch(() => {});
    return row;
  }
  const t0 = Date.now();
  const rss = rssMiB(treeOf(pid));
  if (l.svc?.beforeStop) {
    say(`${l.name}: leaving its cluster`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`took over ${BEFORE_STOP_MS} ms`)), BEFORE_STOP_MS);
    });
    await Promise.race([l.svc.beforeStop(paths), late])
      .catch((e) => say(`${l.name}: before stopping: ${message(e)}; stopping anyway`))
      .finally(() => clearTimeout(timer));
  }
  say(`${l.name}: stopping pid ${pid}`);
  const how = await stopTree(
    pid,
    STOP_SIGNAL[l.name] ?? STOP_SIGNAL[clusterOf(l.name)] ?? "SIGTERM",
    STOP_GRACE_MS,
  );
  await Deno.remove(pidFile(dirs, l.name)).catch(() => {});
  return { ...row, state: how, seconds: (Date.now() - t0) / 1000, rssMiB: rss };
}

/**
 * `down`: stops `names` by recorded pid (whole process tree; SIGKILL after
 * 30 s), removes their pid files and env lines. With `wipe`, deletes their
 * data and logs, or the whole root when every service is stopped (never the
 * cache). When `all` is set, also stops any other process of the matrix user
 * that works in or names `${root}` (a server started by hand, a stray helper).
 */
export async function down(
  names: readonly string[],
  wipe: boolean,
  all: boolean,
): Promise<Row[]> {
  const dirs = matrixDirs();
  if (wipe) names = withDependents(names);
  const loaded = await Promise.all(names.map(load));
  // A cluster's nodes one at a time, last node first, so each leaves while the nodes it leaves run.
  const byCluster = Map.groupBy(loaded, (l) => clusterOf(l.name));
  const done = new Map<Loaded, Row>();
  await Promise.all([...byCluster.values()].map(async (group) => {
    const order = nodesOf(clusterOf(group[0].name));
    group.sort((a, b) => order.indexOf(b.name) - order.indexOf(a.name));
    for (const l of group) done.set(l, await downOne(l, dirs));
  }));
  const rows = loaded.map((l) => done.get(l)!);
  const clusters = new Set(loaded.map((l) => clusterOf(l.name)));
  for (const primary of clusters) await stopCompanions(dirs, primary);
  if (all && dirs.user !== currentUser()) {
    const uid = await uidOf(dirs.user);
    const left = uid === undefined ? [] : processesOf(uid).filter((p) => refersTo(p, dirs.root));
    for (const pid of left) {
      say(`stopping leftover process ${pid} of ${dirs.user}`);
      await stopTree(pid, "SIGTERM", 10_000);
    }
  }
  const remove = loaded.flatMap((l) => {
    if (inCluster(l.name) && !all) return [];
    try {
      return l.svc ? Object.keys(l.svc.env(servicePaths(dirs, l.name))) : [];
    } catch {
      return [];
    }
  });
  // A cluster's lines list what still runs of it.
  const set: Record<string, string> = {};
  const stopped = new Map(loaded.map((l) => [l.name, false]));
  for (const primary of all ? [] : [...clusters].filter(inCluster)) {
    const change = await clusterEnv(dirs, primary, stopped);
    Object.assign(set, change.set);
    remove.push(...change.remove);
  }
  await Deno.mkdir(dirs.run, { recursive: true }).catch(() => {});
  await withLock(`${dirs.run}/env.lock`, async () => {
    for (const f of [`${dirs.root}/env`, `${Deno.cwd()}/.env.matrix`]) {
      await updateEnvFile(f, set, all ? [...remove, "MATRIX_CA_CERT"] : remove);
    }
  });
  if (wipe) await wipeData(dirs, names, all);
  return rows;
}

/**
 * `names` plus the cluster nodes of every primary among them: a primary whose
 * data is wiped starts as a new server, so its replicas and cluster nodes are
 * stopped and wiped with it (a replica clones, a node joins again at the next
 * `up --cluster`).
 */
function withDependents(names: readonly string[]): string[] {
  const out = [...names];
  for (const n of names) {
    for (const d of dependentsOf(n)) {
      if (out.includes(d)) continue;
      say(`${d}: stopped and wiped too, since it belongs to ${n}`);
      out.push(d);
    }
  }
  return out;
}

async function wipeData(dirs: MatrixDirs, names: readonly string[], all: boolean): Promise<void> {
  if (dirs.root.split("/").filter(Boolean).length < 2 || dirs.root === dirs.cache) {
    throw new Error(`refusing to wipe ${dirs.root}`);
  }
  const targets = all ? [dirs.root] : names.flatMap((n) => {
    const p = servicePaths(dirs, n);
    return [p.data, p.log];
  });
  for (const t of targets) {
    say(`wiping ${t}`);
    await Deno.remove(t, { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }
}
