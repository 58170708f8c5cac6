/**
 * RabbitMQ's own command-line tools (`rabbitmqctl`, `rabbitmq-streams`) run
 * against one node of the matrix's RabbitMQ, as the matrix user with that
 * node's Erlang cookie and the matrix's private epmd: cluster membership and
 * the replicas of the store's stream.
 *
 * @module
 */
import { run } from "./proc.ts";
import type { MatrixPaths } from "./types.ts";

/** Where the Debian package keeps the real scripts (`/usr/sbin`'s wrappers insist on root or `rabbitmq`). */
const BIN = "/usr/lib/rabbitmq/bin";
/** The Erlang port mapper all nodes of the matrix share (system default: 4369). */
export const EPMD_PORT = 15683;

/** Runs `tool args` against node `nodename` whose data directory (HOME, cookie) is `paths.data`. */
export async function cli(
  tool: "rabbitmqctl" | "rabbitmq-streams",
  nodename: string,
  paths: MatrixPaths,
  args: string[],
): Promise<string> {
  return await run(`${BIN}/${tool}`, ["-n", nodename, "-q", ...args], {
    user: paths.user,
    cwd: paths.data,
    env: {
      HOME: paths.data,
      RABBITMQ_MNESIA_BASE: `${paths.data}/mnesia`,
      PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
      LANG: "C.UTF-8",
      LC_ALL: "C.UTF-8",
      ERL_EPMD_PORT: String(EPMD_PORT),
      RABBITMQ_USE_LONGNAME: "false",
      // Never an `epmd -daemon` of its own: without the matrix's epmd there is no node to talk to.
      RABBITMQ_CTL_ERL_ARGS: "-start_epmd false",
    },
  });
}

/** The names of the Erlang nodes registered with the matrix's epmd (none when it does not run). */
export async function registeredNodes(): Promise<string[]> {
  try {
    const out = await run("epmd", ["-port", String(EPMD_PORT), "-names"]);
    return [...out.matchAll(/^name (\S+) at port/gm)].map((m) => m[1]);
  } catch {
    return [];
  }
}

/** The cluster `nodename` belongs to: its members (`disk_nodes`) and those of them that run. */
export async function clusterStatus(
  nodename: string,
  paths: MatrixPaths,
): Promise<{ members: string[]; running: string[] }> {
  const out = await cli("rabbitmqctl", nodename, paths, ["cluster_status", "--formatter", "json"]);
  const status = JSON.parse(out) as { disk_nodes?: string[]; running_nodes?: string[] };
  return { members: status.disk_nodes ?? [], running: status.running_nodes ?? [] };
}

/** The members (nodes holding a replica) of stream `queue` in vhost `/`; undefined when it does not exist. */
export async function streamMembers(
  queue: string,
  nodename: string,
  paths: MatrixPaths,
): Promise<string[] | undefined> {
  const out = await cli("rabbitmqctl", nodename, paths, [
    "list_queues",
    "-p",
    "/",
    "name",
    "members",
    "--formatter",
    "json",
  ]);
  const rows = JSON.parse(out) as { name: string; members?: string[] | string }[];
  const row = rows.find((r) => r.name === queue);
  if (!row) return undefined;
  return Array.isArray(row.members) ? row.members : [];
}
