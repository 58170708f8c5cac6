/**
 * `deno task matrix down`: stops servers by their recorded pid (the whole
 * process tree, SIGKILL after a grace period), removes their pid files and
 * env lines, and optionally wipes their data (never the cache).
 *
 * @module
 */
import { updateEnvFile } from "./env_file.ts";
import { withLock } from "./lock.ts";
import { dependentsOf, type MatrixDirs, matrixDirs, servicePaths, uidOf } from "./paths.ts";
import { currentUser } from "./proc.ts";
import { processesOf, refersTo, rssMiB, stopTree, treeOf } from "./ps.ts";
import { baseRow, load, type Loaded, pidFile, recordedPid, say } from "./state.ts";
import type { Row } from "./table.ts";

/** Signal that makes a server shut down quickly but cleanly (PostgreSQL's SIGTERM waits for clients). */
const STOP_SIGNAL: Record<string, Deno.Signal> = {
  postgresql: "SIGINT",
  "postgresql-standby": "SIGINT",
};
const STOP_GRACE_MS = 30_000;
/** Helpers a server leaves in their own session (epmd daemonises), stopped with it. */
const COMPANIONS: Record<string, string[]> = { rabbitmq: ["epmd"] };

async function stopCompanions(dirs: MatrixDirs, name: string): Promise<void> {
  const comms = COMPANIONS[name];
  if (!comms || dirs.user === currentUser()) return;
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
  await Deno.remove(pidFile(dirs, l.name)).catch(() => {});
  if (pid === undefined) {
    await stopCompanions(dirs, l.name);
    return row;
  }
  const t0 = Date.now();
  const rss = rssMiB(treeOf(pid));
  say(`${l.name}: stopping pid ${pid}`);
  const how = await stopTree(pid, STOP_SIGNAL[l.name] ?? "SIGTERM", STOP_GRACE_MS);
  await stopCompanions(dirs, l.name);
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
  const wiped = names;
  names = wipe ? await withRunningDependents(dirs, names) : names;
  const loaded = await Promise.all(names.map(load));
  const rows = await Promise.all(loaded.map((l) => downOne(l, dirs)));
  if (all && dirs.user !== currentUser()) {
    const uid = await uidOf(dirs.user);
    const left = uid === undefined ? [] : processesOf(uid).filter((p) => refersTo(p, dirs.root));
    for (const pid of left) {
      say(`stopping leftover process ${pid} of ${dirs.user}`);
      await stopTree(pid, "SIGTERM", 10_000);
    }
  }
  const remove = loaded.flatMap((l) => {
    try {
      return l.svc ? Object.keys(l.svc.env(servicePaths(dirs, l.name))) : [];
    } catch {
      return [];
    }
  });
  await Deno.mkdir(dirs.run, { recursive: true }).catch(() => {});
  await withLock(`${dirs.run}/env.lock`, async () => {
    for (const f of [`${dirs.root}/env`, `${Deno.cwd()}/.env.matrix`]) {
      await updateEnvFile(f, {}, all ? [...remove, "MATRIX_CA_CERT"] : remove);
    }
  });
  if (wipe) await wipeData(dirs, wiped, all);
  return rows;
}

/**
 * `names` plus the running cluster nodes of every primary among them: a
 * primary whose data is wiped starts as a new server, so its replicas are
 * stopped too (their data is kept; at the next `up` they see the new primary
 * and clone or seed themselves again).
 */
async function withRunningDependents(
  dirs: MatrixDirs,
  names: readonly string[],
): Promise<string[]> {
  const out = [...names];
  for (const n of names) {
    for (const d of dependentsOf(n)) {
      if (out.includes(d) || (await recordedPid(dirs, d)) === undefined) continue;
      say(`${d}: stopping it too, since its primary ${n} is wiped; it re-seeds at the next up`);
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
