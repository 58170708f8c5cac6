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
import {
  ALL_SERVICE_NAMES,
  clusterOf,
  type MatrixDirs,
  matrixDirs,
  prepareDirs,
  primaryOf,
  servicePaths,
} from "./paths.ts";
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
  // Includes cloning / seeding from the primary the first time.
  "postgresql-standby": 180,
  "mariadb-replica": 180,
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
    READY_TIMEOUT_S[clusterOf(l.name)] || DEFAULT_READY_TIMEOUT_S;
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

function isUp(row: Row): boolean {
  return row.state === "ready" || row.state.startsWith("reused");
}

/** Brings one service up: reuse when already serving, else install (serially, via `installs`) and start. */
async function upOne(
  l: Loaded,
  dirs: MatrixDirs,
  installs: { chain: Promise<void> },
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
  return await startOne({ name: l.name, svc }, dirs, paths, row);
}

/**
 * Writes the env of every ready service (and drops failed ones') to
 * `${root}/env` and `.env.matrix`, a cluster's from all of its running nodes,
 * leaving the lines of `untouched` (still running, though this `up` failed it) as they are.
 */
async function writeEnv(
  dirs: MatrixDirs,
  loaded: Loaded[],
  rows: Row[],
  untouched: ReadonlySet<string>,
): Promise<void> {
  const set: Record<string, string> = {};
  const remove: string[] = [];
  // Nodes left out are looked up by pid: one still running keeps its place in the lists.
  const running = new Map(
    loaded.filter((l) => !untouched.has(l.name)).map((
      l,
    ) => [l.name, isUp(rows[loaded.indexOf(l)])]),
  );
  for (
    const primary of new Set(loaded.filter((l) => inCluster(l.name)).map((l) => clusterOf(l.name)))
  ) {
    const change = await clusterEnv(dirs, primary, running);
    Object.assign(set, change.set);
    remove.push(...change.remove);
  }
  loaded.forEach((l, i) => {
    if (!l.svc || inCluster(l.name) || untouched.has(l.name)) return;
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

/**
 * Why the cluster node `name` cannot start yet, or undefined once its primary
 * answers: waits for the primary's run in this `up` (`inRun`), or else for any
 * other runner holding the primary's lock, then asks the primary itself.
 */
async function primaryProblem(
  name: string,
  primary: string,
  inRun: Promise<Row> | undefined,
  dirs: MatrixDirs,
): Promise<string | undefined> {
  if (inRun) {
    const row = await inRun;
    if (isUp(row)) return undefined;
    return `primary ${primary} is not up (${row.state})`;
  }
  const l = await load(primary);
  if (!l.svc) return `primary ${primary}: ${l.error}`;
  const svc = l.svc;
  say(`${name}: waiting for ${primary}, which it follows`);
  const ok = await withLock(
    `${dirs.run}/${primary}.lock`,
    () => probe(svc, servicePaths(dirs, primary)),
    900_000,
  );
  return ok
    ? undefined
    : `primary ${primary} is not running: deno task matrix up ${primary} ${name}`;
}

/**
 * `up`: installs and starts `names`, waits for each to be ready, writes the
 * env files. Services start in parallel, except that a cluster node starts
 * only once the node it follows answers (its `after`, else its primary), so
 * a cluster's nodes join one at a time.
 */
export async function up(names: readonly string[]): Promise<Row[]> {
  const dirs = matrixDirs();
  const order = (n: string) => ALL_SERVICE_NAMES.indexOf(n);
  const sorted = [...names].sort((a, b) => order(a) - order(b));
  const loaded = await Promise.all(sorted.map(load));
  await prepareDirs(dirs, sorted);
  await withLock(`${dirs.run}/certs.lock`, () => ensureCerts(dirs.certs));
  const installs = { chain: Promise.resolve() };
  const runs = new Map<string, Promise<Row>>();
  const untouched = new Set<string>();
  for (const l of loaded) {
    // A cluster node follows the node before it (`after`), a replica its primary.
    const primary = l.svc?.after ?? primaryOf(l.name);
    runs.set(
      l.name,
      (async () => {
        const problem = primary && await primaryProblem(l.name, primary, runs.get(primary), dirs);
        if (problem) {
          say(`${l.name}: FAILED: ${problem}`);
          const pid = await recordedPid(dirs, l.name);
          // Still running, it serves what it has: its env lines stay.
          if (pid !== undefined) untouched.add(l.name);
          const still = pid === undefined ? "" : ` (still running as pid ${pid})`;
          return { ...baseRow(l, servicePaths(dirs, l.name)), state: `FAILED: ${problem}${still}` };
        }
        // One runner per service at a time: a second `up` waits, then reuses what the first started.
        return await withLock(
          `${dirs.run}/${l.name}.lock`,
          () => upOne(l, dirs, installs),
          900_000,
        );
      })(),
    );
  }
  const rows = await Promise.all(loaded.map((l) => runs.get(l.name)!));
  await writeEnv(dirs, loaded, rows, untouched);
  say(`env written to ${Deno.cwd()}/.env.matrix and ${dirs.root}/env`);
  return rows;
}
