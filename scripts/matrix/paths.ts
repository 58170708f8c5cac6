/**
 * Where the matrix lives on this machine, and creating it: the cache and root
 * directories, the unprivileged user, and each service's {@linkcode MatrixPaths}.
 *
 * As root: cache /var/cache/grand-tour-matrix, root /var/lib/grand-tour-matrix,
 * user `gtmatrix`. Otherwise: `${XDG_CACHE_HOME:-~/.cache}/grand-tour-matrix`,
 * `${XDG_STATE_HOME:-~/.local/state}/grand-tour-matrix`, the current user.
 * `MATRIX_CACHE` and `MATRIX_ROOT` override the two directories.
 *
 * @module
 */
import { currentUser, run } from "./proc.ts";
import type { MatrixPaths } from "./types.ts";
import type { NetworkStoreName } from "../../stores/types.ts";

/** Every service of the matrix, in start order. */
export const SERVICE_NAMES = [
  "postgresql",
  "mariadb",
  "redis",
  "rabbitmq",
  "elasticsearch",
  "cassandra",
  "ferretdb",
] as const;

/** One of {@linkcode SERVICE_NAMES}. */
export type ServiceName = typeof SERVICE_NAMES[number];

/**
 * The further nodes of the cluster topology (`deno task matrix up --cluster`),
 * in start order, each after its primary (the service of
 * {@linkcode SERVICE_NAMES} it streams from or joins, which is node 1 of a
 * cluster) and after the node before it: `up` starts one only once the node
 * it follows answers (its service's `after`, else its primary).
 */
export const CLUSTER_SERVICE_NAMES = [
  "postgresql-standby",
  "mariadb-replica",
  "redis-replica",
  "rabbitmq-2",
  "rabbitmq-3",
  "elasticsearch-2",
  "elasticsearch-3",
  "cassandra-2",
  "cassandra-3",
] as const;

/** One of {@linkcode CLUSTER_SERVICE_NAMES}. */
export type ClusterServiceName = typeof CLUSTER_SERVICE_NAMES[number];

/** The single-topology service each cluster node joins (streams from, or clusters with). */
export const PRIMARY_OF: Readonly<Record<ClusterServiceName, ServiceName>> = {
  "postgresql-standby": "postgresql",
  "mariadb-replica": "mariadb",
  "redis-replica": "redis",
  "rabbitmq-2": "rabbitmq",
  "rabbitmq-3": "rabbitmq",
  "elasticsearch-2": "elasticsearch",
  "elasticsearch-3": "elasticsearch",
  "cassandra-2": "cassandra",
  "cassandra-3": "cassandra",
};

/** Every service either topology may run: {@linkcode SERVICE_NAMES}, then {@linkcode CLUSTER_SERVICE_NAMES}. */
export const ALL_SERVICE_NAMES: readonly string[] = [...SERVICE_NAMES, ...CLUSTER_SERVICE_NAMES];

/** The primary `name` depends on, or undefined for a service of the single topology. */
export function primaryOf(name: string): ServiceName | undefined {
  return (PRIMARY_OF as Record<string, ServiceName>)[name];
}

/** The first node of the group `name` belongs to: its primary, or itself for a single-topology service. */
export function clusterOf(name: string): string {
  return primaryOf(name) ?? name;
}

/** The cluster nodes that join `primary`, in start order. */
export function dependentsOf(primary: string): ClusterServiceName[] {
  return CLUSTER_SERVICE_NAMES.filter((n) => PRIMARY_OF[n] === primary);
}

/** The service that runs each network store's database (each service module says the same as `store`). */
export const SERVICE_OF: Readonly<Record<NetworkStoreName, ServiceName>> = {
  MONGODB: "ferretdb",
  POSTGRESQL: "postgresql",
  MYSQL: "mariadb",
  SCYLLA: "cassandra",
  ELASTICSEARCH: "elasticsearch",
  REDIS: "redis",
  RABBITMQ: "rabbitmq",
};

/** The directories and user shared by all services. */
export interface MatrixDirs {
  cache: string;
  root: string;
  certs: string;
  logs: string;
  /** Pid files: `${root}/run/<service>.pid`. */
  run: string;
  user: string;
}

const MATRIX_USER = "gtmatrix";

/** Resolves the matrix directories and user for the current process (nothing is created). */
export function matrixDirs(): MatrixDirs {
  const root0 = Deno.uid() === 0;
  const home = Deno.env.get("HOME") ?? "/tmp";
  const xdg = (v: string, fallback: string) => Deno.env.get(v) || `${home}/${fallback}`;
  const cache = Deno.env.get("MATRIX_CACHE") ||
    (root0
      ? "/var/cache/grand-tour-matrix"
      : `${xdg("XDG_CACHE_HOME", ".cache")}/grand-tour-matrix`);
  const root = Deno.env.get("MATRIX_ROOT") ||
    (root0
      ? "/var/lib/grand-tour-matrix"
      : `${xdg("XDG_STATE_HOME", ".local/state")}/grand-tour-matrix`);
  return {
    cache,
    root,
    certs: `${root}/certs`,
    logs: `${root}/logs`,
    run: `${root}/run`,
    user: root0 ? MATRIX_USER : currentUser(),
  };
}

/** The paths handed to service `name`. */
export function servicePaths(dirs: MatrixDirs, name: string): MatrixPaths {
  return {
    cache: dirs.cache,
    root: dirs.root,
    data: `${dirs.root}/data/${name}`,
    log: `${dirs.logs}/${name}.log`,
    certs: dirs.certs,
    user: dirs.user,
  };
}

/** Numeric uid of `user`, or undefined when it does not exist. */
export async function uidOf(user: string): Promise<number | undefined> {
  try {
    return Number((await run("id", ["-u", user])).trim());
  } catch {
    return undefined;
  }
}

/** Creates the matrix user (when root; idempotent, safe against a concurrent runner). */
async function ensureUser(dirs: MatrixDirs): Promise<void> {
  if (Deno.uid() !== 0 || (await uidOf(dirs.user)) !== undefined) return;
  try {
    await run("useradd", [
      "--system",
      "--user-group",
      "--home-dir",
      "/var/lib/grand-tour-matrix/home",
      "--shell",
      "/usr/sbin/nologin",
      dirs.user,
    ]);
  } catch (e) {
    if ((await uidOf(dirs.user)) === undefined) throw e;
  }
}

async function chownTo(path: string, user: string): Promise<void> {
  if (Deno.uid() === 0) await run("chown", [`${user}:${user}`, path]);
}

/**
 * Creates the user and the directories: cache, root, certs, logs, run, the
 * user's home and `data/<service>` for each of `services` (owned by the user).
 */
export async function prepareDirs(dirs: MatrixDirs, services: readonly string[]): Promise<void> {
  await ensureUser(dirs);
  for (const d of [dirs.cache, dirs.root, dirs.certs, dirs.logs, dirs.run, `${dirs.root}/data`]) {
    await Deno.mkdir(d, { recursive: true });
  }
  await Deno.chmod(dirs.root, 0o755);
  await chownTo(dirs.logs, dirs.user);
  if (Deno.uid() === 0) {
    const home = (await run("getent", ["passwd", dirs.user])).split(":")[5];
    if (home) {
      await Deno.mkdir(home, { recursive: true, mode: 0o750 });
      await chownTo(home, dirs.user);
    }
  }
  for (const s of services) {
    const data = servicePaths(dirs, s).data;
    await Deno.mkdir(data, { recursive: true });
    await chownTo(data, dirs.user);
  }
}
