/**
 * The matrix topology recorded in `${root}/topology`: "single" (one server per
 * store, the default for quick local work) or "cluster" (also every node of
 * {@linkcode CLUSTER_SERVICE_NAMES}: replicas, standbys, more cluster members).
 * `status` without service names reports the recorded topology; `down`
 * without names stops both.
 *
 * @module
 */
import {
  CLUSTER_SERVICE_NAMES,
  type MatrixDirs,
  PRIMARY_OF,
  primaryOf,
  SERVICE_NAMES,
} from "./paths.ts";

/** Which nodes the matrix runs. */
export type Topology = "single" | "cluster";

/** The file the topology is recorded in. */
export function topologyFile(dirs: MatrixDirs): string {
  return `${dirs.root}/topology`;
}

/** The recorded topology; "single" when none was recorded yet. */
export async function readTopology(dirs: MatrixDirs): Promise<Topology> {
  try {
    const t = (await Deno.readTextFile(topologyFile(dirs))).trim();
    return t === "cluster" ? "cluster" : "single";
  } catch {
    return "single";
  }
}

/** Records `topology` (creating the root when needed). */
export async function writeTopology(dirs: MatrixDirs, topology: Topology): Promise<void> {
  await Deno.mkdir(dirs.root, { recursive: true });
  await Deno.writeTextFile(topologyFile(dirs), `${topology}\n`);
}

/** Every service of `topology`, in start order. */
export function servicesOf(topology: Topology): string[] {
  return topology === "cluster" ? [...SERVICE_NAMES, ...CLUSTER_SERVICE_NAMES] : [...SERVICE_NAMES];
}

/**
 * What `up` starts for `names` (all of the topology when empty): with
 * `cluster`, each named primary brings its cluster nodes along.
 */
export function upSelection(names: readonly string[], cluster: boolean): string[] {
  if (names.length === 0) return servicesOf(cluster ? "cluster" : "single");
  const wanted = new Set(names);
  if (cluster) {
    for (const [node, primary] of Object.entries(PRIMARY_OF)) {
      if (wanted.has(primary)) wanted.add(node);
    }
  }
  // Start order of the whole matrix, so a node comes after its primary.
  return servicesOf("cluster").filter((n) => wanted.has(n));
}

/** True when `name` is a node of the cluster topology only. */
export function isClusterNode(name: string): boolean {
  return primaryOf(name) !== undefined;
}
