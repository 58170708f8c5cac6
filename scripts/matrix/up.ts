/**
 * `deno task matrix up`: installs what is missing (one service at a time,
 * because apt and dpkg take a global lock), starts the servers that are not
 * already serving (in parallel), waits until each answers, and writes the
 * environment to `${root}/env` and `.env.matrix`.
 *
 * @module
 */
import { ensureCerts } from "./certs.ts";
import { clusterEnv, inCluster } from "./cluster_env.ts";
import { updateEnvFile } from "./env_file.ts";
import { withLock } from "./lock.ts";
import { type MatrixDirs, matrixDirs, prepareDirs, primaryOf, servicePaths } from "./paths.ts";
import { rssMiB, treeOf } from "./ps.ts";
import {
  baseRow,
  load,
  type Loaded,
  message,
  pidFile,
  probe,
  recordedPid,
  say,
  unmanagedPid,
} from "./state.ts";
import type { Row } from "./table.ts";
import type { MatrixPaths, Service } from "./types.ts";

/** Seconds each service may take from start to ready (override all with MATRIX_READY_TIMEOUT). */
const READY_TIMEOUT_S: Record<string, number> = {
  cassandra: 180,
  // A joining node streams its share of the data before it serves.
  "cassandra-2": 300,
  "cassandra-3": 300,
  elasticsearch: 180,
  rabbitmq: 120,
};
const DEFAULT_READY_TIMEOUT_S = 60;

/** Waits until `svc` is ready, failing early when the server's process tree is gone. */
async function waitReady(
  l: { name: string; svc: Service },
  paths: MatrixPaths,
  pid: number,
  t0: number,
): Promise<number> {
  const limit = Number(Deno.env.get("MATRIX_READY_TIMEOUT")) || READY_TIMEOUT_S[l.name] ||
    READY_TIMEOUT_S[primaryOf(l.name)] || DEFAULT_READY_TIMEOUT_S;
  const deadline = t0 + limit * 1000;
  for (;;) {
    if (await probe(l.svc, paths)) return pid;
    if (treeOf(pid).length === 0) {
      // A wrapper that daemonised is fine if the server answers; otherwise it died.
      if (await probe(l.svc, paths)) return unmanagedPid(paths.root, l.name) ?? pid;
      throw new Error(`exited; see ${paths.log}`);
    }
    if (Date.now() > deadline) throw new Error(`not ready after ${limit} s; see ${paths.log}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function startOne(
  l: { name: string; svc: Service },
  dirs: MatrixDirs,
  paths: MatrixPaths,
  row: Row,
): Promise<Row> {
  const t0 = Date.now();
  try {
    say(`${l.name}: starting`);
    let pid = await l.svc.start(paths);
    await Deno.writeTextFile(pidFile(dirs, l.name), `${pid}\n`);
    pid = await waitReady(l, paths, pid, t0);
    await Deno.writeTextFile(pidFile(dirs, l.name), `${pid}\n`);
    const seconds = (Date.now() - t0) / 1000;
    say(`${l.name}: ready in ${seconds.toFixed(1)} s (pid ${pid})`);
    return { ...row, state: "ready", seconds, rssMiB: rssMiB(treeOf(pid)) };
  } catch (e) {
    say(`${l.name}: FAILED: ${message(e)}`);
    return { ...row, state: `FAILED: ${message(e)}`, seconds: (Date.now() - t0) / 1000 };
  }
}

/** The rows of this `up`, by service, as each settles: a cluster node waits for its `after`. */
type Pending = Map<string, Promise<Row>>;

function isUp(row: Row): boolean {
  return row.state === "ready" || row.state.startsWith("reused");
}

/**
 * Resolves once the service `after` is ready: as this `up` brings it up, or
 * already running; throws when it failed or runs nowhere.
 */
async function awaitAfter(after: string, dirs: MatrixDirs, pending: Pending): Promise<void> {
  const row = pending.get(after);
  if (row) {
    if (!isUp(await row)) throw new Error(`${after} is not up`);
    return;
  }
  const l = await load(after);
  if (!l.svc || !(await probe(l.svc, servicePaths(dirs, after)))) {
    throw new Error(`${after} is not ready: start it first, or name it too`);
  }
}

/** Brings one service up: reuse when already serving, else install (serially, via `installs`) and start. */
async function upOne(
  l: Loaded,
  dirs: MatrixDirs,
  installs: { chain: Promise<void> },
  pending: Pending,
): Promise<Row> {
  const paths = servicePaths(dirs, l.name);
  const row = baseRow(l, paths);
  if (!l.svc) return row;
  const svc = l.svc;
  const pid = await recordedPid(dirs, l.name);
  if (pid !== undefined) {
    const t0 = Date.now();
    if (await probe(svc, paths)) return { ...row, state: "reused", rssMiB: rssMiB(treeOf(pid)) };
    say(`${l.name}: pid ${pid} is running but not ready yet; waiting`);
    try {
      await waitReady({ name: l.name, svc }, paths, pid, t0);
      return { ...row, state: "reused", rssMiB: rssMiB(treeOf(pid)) };
    } catch (e) {
      return { ...row, state: `FAILED: running (pid ${pid}) but ${message(e)}` };
    }
  }
  const other = unmanagedPid(dirs.root, l.name);
  if (other !== undefined && await probe(svc, paths)) {
    await Deno.writeTextFile(pidFile(dirs, l.name), `${other}\n`);
    say(`${l.name}: already served by pid ${other}; adopted`);
    return { ...row, state: "reused (adopted)", rssMiB: rssMiB(treeOf(other)) };
  }
  const installed = installs.chain.then(async () => {
    const t0 = Date.now();
    say(`${l.name}: installing`);
    await svc.install(paths);
    say(`${l.name}: installed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
  installs.chain = installed.catch(() => {});
  try {
    await installed;
  } catch (e) {
    say(`${l.name}: install FAILED: ${message(e)}`);
    return { ...row, state: `FAILED: install: ${message(e)}` };
  }
  if (svc.after) {
    say(`${l.name}: waiting for ${svc.after} before it joins`);
    try {
      await awaitAfter(svc.after, dirs, pending);
    } catch (e) {
      say(`${l.name}: FAILED: ${message(e)}`);
      return { ...row, state: `FAILED: ${message(e)}` };
    }
  }
  return await startOne({ name: l.name, svc }, dirs, paths, row);
}

/**
 * Writes the env of every ready service (and drops failed ones') to
 * `${root}/env` and `.env.matrix`; a cluster's from all of its running nodes.
 */
async function writeEnv(dirs: MatrixDirs, loaded: Loaded[], rows: Row[]): Promise<void> {
  const set: Record<string, string> = {};
  const remove: string[] = [];
  const running = new Map(loaded.map((l, i) => [l.name, isUp(rows[i])]));
  for (
    const primary of new Set(loaded.filter((l) => inCluster(l.name)).map((l) => primaryOf(l.name)))
  ) {
    const change = await clusterEnv(dirs, primary, running);
    Object.assign(set, change.set);
    remove.push(...change.remove);
  }
  loaded.forEach((l, i) => {
    if (!l.svc || inCluster(l.name)) return;
    let env: Record<string, string> = {};
    try {
      env = l.svc.env(servicePaths(dirs, l.name));
    } catch {
      return;
    }
    if (rows[i].state.startsWith("FAILED")) remove.push(...Object.keys(env));
    else Object.assign(set, env);
  });
  if (Object.keys(set).length) set.MATRIX_CA_CERT = `${dirs.certs}/ca.pem`;
  await withLock(`${dirs.run}/env.lock`, async () => {
    for (const f of [`${dirs.root}/env`, `${Deno.cwd()}/.env.matrix`]) {
      await updateEnvFile(f, set, remove);
    }
  });
}

/** `up`: installs and starts `names`, waits for each to be ready, writes the env files. */
export async function up(names: readonly string[]): Promise<Row[]> {
  const dirs = matrixDirs();
  const loaded = await Promise.all(names.map(load));
  await prepareDirs(dirs, names);
  await withLock(`${dirs.run}/certs.lock`, () => ensureCerts(dirs.certs));
  const installs = { chain: Promise.resolve() };
  const pending: Pending = new Map();
  // One runner per service at a time: a second `up` waits, then reuses what the first started.
  for (const l of loaded) {
    const row = withLock(
      `${dirs.run}/${l.name}.lock`,
      () => upOne(l, dirs, installs, pending),
      900_000,
    );
    pending.set(l.name, row);
  }
  const rows = await Promise.all(loaded.map((l) => pending.get(l.name)!));
  await writeEnv(dirs, loaded, rows);
  say(`env written to ${Deno.cwd()}/.env.matrix and ${dirs.root}/env`);
  return rows;
}
