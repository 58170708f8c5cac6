/**
 * `deno task matrix up|down|status [--cluster] [--wipe] [service…]`: the local
 * matrix of real database servers (no Docker), in the single topology (one
 * server per store, the default) or the cluster topology (`up --cluster`:
 * also replicas and further cluster members). Without service names `up`
 * means the topology asked for, `status` the recorded one, `down` both. See
 * scripts/matrix/{up,down,state,topology}.ts for what each command does.
 *
 * @module
 */
import {
  ALL_SERVICE_NAMES,
  CLUSTER_SERVICE_NAMES,
  PRIMARY_OF,
  SERVICE_NAMES,
} from "./matrix/paths.ts";
import { down } from "./matrix/down.ts";
import { recordedPid, say, status } from "./matrix/state.ts";
import { up } from "./matrix/up.ts";
import { renderTable, type Row } from "./matrix/table.ts";
import {
  isClusterNode,
  readTopology,
  servicesOf,
  type Topology,
  upSelection,
  writeTopology,
} from "./matrix/topology.ts";
import { matrixDirs } from "./matrix/paths.ts";

const USAGE = `usage: deno task matrix up|down|status [--cluster] [--wipe] [service…]
  up      install what is missing, start every (or each named) server, wait until ready,
          write .env.matrix; reuses servers that already run. Without names: the single
          topology (one server per store), and any cluster node still running is stopped
  up --cluster
          the cluster topology: also every cluster node (${CLUSTER_SERVICE_NAMES.join(", ")}),
          each started once its primary answers; with names, the named primaries and their
          nodes. Records the topology in \${root}/topology
  down    stop by recorded pid (SIGKILL after 30 s); without names every service of both
          topologies; --wipe also deletes the data (never the cache); wiping a primary also
          stops its replicas, which clone it anew at the next up
  status  report without starting anything; without names the recorded topology
services: ${SERVICE_NAMES.join(", ")}
cluster nodes: ${CLUSTER_SERVICE_NAMES.map((n) => `${n} (of ${PRIMARY_OF[n]})`).join(", ")}`;

function fail(msg: string): never {
  console.error(`${msg}\n\n${USAGE}`);
  Deno.exit(2);
}

function totalRss(rows: Row[]): string {
  const mib = rows.reduce((s, r) => s + (r.rssMiB ?? 0), 0);
  return `total RSS ${mib.toFixed(0)} MiB (${(mib / 1024).toFixed(2)} GiB)`;
}

/** The cluster nodes that run now (by recorded pid). */
async function runningClusterNodes(): Promise<string[]> {
  const dirs = matrixDirs();
  const pids = await Promise.all(CLUSTER_SERVICE_NAMES.map((n) => recordedPid(dirs, n)));
  return CLUSTER_SERVICE_NAMES.filter((_, i) => pids[i] !== undefined);
}

/**
 * Records the topology `up` brings up and, for the single topology asked for
 * without names, stops the cluster nodes left from a cluster run.
 */
async function settleTopology(names: string[], cluster: boolean): Promise<void> {
  const dirs = matrixDirs();
  let topology: Topology | undefined;
  if (cluster || names.some(isClusterNode)) topology = "cluster";
  else if (names.length === 0) topology = "single";
  if (!topology) return;
  if (topology === "single") {
    const left = await runningClusterNodes();
    if (left.length) {
      say(
        `single topology: stopping the cluster nodes ${left.join(", ")} (keep them: up --cluster)`,
      );
      console.log(renderTable(await down(left, false, false)));
    }
  }
  await writeTopology(dirs, topology);
}

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  const wipe = rest.includes("--wipe");
  const cluster = rest.includes("--cluster");
  const flags = rest.filter((a) => a.startsWith("-"));
  const unknownFlag = flags.find((f) =>
    !((f === "--wipe" && command === "down") || (f === "--cluster" && command === "up"))
  );
  if (unknownFlag) fail(`unknown option ${unknownFlag}`);
  const names = [...new Set(rest.filter((a) => !a.startsWith("-")))];
  const unknown = names.find((n) => !ALL_SERVICE_NAMES.includes(n));
  if (unknown) fail(`unknown service ${unknown}`);
  const t0 = Date.now();
  switch (command) {
    case "up": {
      await settleTopology(names, cluster);
      const rows = await up(upSelection(names, cluster));
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      console.log(renderTable(rows));
      console.log(`up took ${secs} s; ${totalRss(rows)}`);
      return rows.every((r) => r.state === "ready" || r.state.startsWith("reused")) ? 0 : 1;
    }
    case "status": {
      const topology = await readTopology(matrixDirs());
      const selected = names.length
        ? names
        : [...new Set([...servicesOf(topology), ...(await runningClusterNodes())])];
      const rows = await status(selected);
      console.log(renderTable(rows));
      console.log(`${names.length ? "" : `topology ${topology}; `}${totalRss(rows)}`);
      return rows.every((r) => r.state === "ready") ? 0 : 3;
    }
    case "down": {
      const rows = await down(
        names.length ? names : servicesOf("cluster"),
        wipe,
        names.length === 0,
      );
      console.log(renderTable(rows));
      return rows.some((r) => r.state.startsWith("FAILED")) ? 1 : 0;
    }
    default:
      fail(command ? `unknown command ${command}` : "no command");
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
