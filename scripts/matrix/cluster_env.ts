/**
 * The environment of a cluster (a primary service and its further nodes in
 * {@linkcode CLUSTER_SERVICE_NAMES}): the `env()` of every running node
 * merged in node order, the keys the primary lists in `joinedEnv` joined with
 * commas. So `SCYLLA_URL` names exactly the nodes that run, whichever of them
 * `up` or `down` was given, and a key only a stopped node sets (such as
 * `SCYLLA_REPLICATION_FACTOR`) is removed.
 *
 * @module
 */
import { clusterOf, dependentsOf, type MatrixDirs, servicePaths } from "./paths.ts";
import { load, recordedPid } from "./state.ts";

/** The nodes of the cluster whose first node is `primary`, in node order (just it when it has none). */
export function nodesOf(primary: string): string[] {
  return [primary, ...dependentsOf(primary)];
}

/** True when `name` is a node of a cluster (a primary with further nodes, or one of those). */
export function inCluster(name: string): boolean {
  return nodesOf(clusterOf(name)).length > 1;
}

/** What the env files must set and remove for one cluster. */
export interface EnvChange {
  set: Record<string, string>;
  remove: string[];
}

/**
 * The env change of the cluster whose first node is `primary`. A node runs
 * when `running` says so (the services this `up` or `down` handled), else
 * when its recorded pid is alive.
 */
export async function clusterEnv(
  dirs: MatrixDirs,
  primary: string,
  running: ReadonlyMap<string, boolean>,
): Promise<EnvChange> {
  const nodes = await Promise.all(nodesOf(primary).map(load));
  const joined = new Set(nodes[0].svc?.joinedEnv ?? []);
  const lists = new Map<string, string[]>();
  const set: Record<string, string> = {};
  const every = new Set<string>();
  for (const n of nodes) {
    if (!n.svc) continue;
    let env: Record<string, string>;
    try {
      env = n.svc.env(servicePaths(dirs, n.name));
    } catch {
      continue;
    }
    for (const k of Object.keys(env)) every.add(k);
    const up = running.get(n.name) ?? (await recordedPid(dirs, n.name)) !== undefined;
    if (!up) continue;
    for (const [k, v] of Object.entries(env)) {
      if (joined.has(k)) lists.set(k, [...(lists.get(k) ?? []), v]);
      else set[k] = v;
    }
  }
  for (const [k, values] of lists) set[k] = values.join(",");
  return { set, remove: [...every].filter((k) => !(k in set)) };
}
